<?php
// A PHP files-handler write frozen half-way, the state a reader meets when PHP is descheduled under
// load between the steps of php-src ext/session/mod_files.c: ps_files_open (open O_CREAT|O_RDWR,
// flock LOCK_EX, held until the request ends), ps_files_write (ftruncate(fd, 0) when the new data is
// shorter than the file, then one pwrite at offset 0).
//
// Usage: php stalled-write.php FILE MODE DATA READYFILE GOFILE
//   MODE truncate: lock, ftruncate to 0, then stall (the file is 0 bytes, locked).
//   MODE partial:  lock, ftruncate to 0, write the first half of DATA, then stall (a prefix of the
//                  new version, as a reader can see while the kernel copies a large pwrite).
// Creates READYFILE once the file is in that state, waits for GOFILE (at most 120 s), then writes
// DATA whole at offset 0 and releases the lock, as the real write would have.
declare(strict_types=1);

[, $file, $mode, $data, $ready, $go] = $argv;

$fp = fopen($file, 'c+');
if ($fp === false || !flock($fp, LOCK_EX)) {
    fwrite(STDERR, "cannot open and lock the session file\n");
    exit(2);
}
ftruncate($fp, 0);
if ($mode === 'partial') {
    fwrite($fp, substr($data, 0, intdiv(strlen($data), 2)));
    fflush($fp);
} elseif ($mode !== 'truncate') {
    fwrite(STDERR, "unknown mode\n");
    exit(2);
}
touch($ready);
$deadline = microtime(true) + 120;
while (!file_exists($go) && microtime(true) < $deadline) {
    usleep(5000);
}
fseek($fp, 0);
fwrite($fp, $data);
fflush($fp);
flock($fp, LOCK_UN);
fclose($fp);

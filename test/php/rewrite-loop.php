<?php
// Rewrites session files in place, the way PHP's files save handler does (php-src
// ext/session/mod_files.c: open O_CREAT|O_RDWR, flock(LOCK_EX), ftruncate(fd, 0) when the new data is
// shorter, one pwrite at 0),
// with versions of different lengths, until the stop file appears.
// Usage: php rewrite-loop.php DIR COUNT STOPFILE
declare(strict_types=1);

[$script, $dir, $count, $stop] = $argv;
$count = (int) $count;

/** Version $k of a session: its length varies, so a torn read is visible. */
function version(int $k): string
{
    $len = 50 + ($k % 7) * 400;
    return 'v|i:' . $k . ';pad|s:' . $len . ':"' . str_repeat(chr(97 + $k % 26), $len) . '";';
}

$k = 0;
while (!file_exists($stop)) {
    for ($i = 0; $i < $count; $i++) {
        $path = sprintf('%s/sess_torn%022d', $dir, $i);
        $fp = fopen($path, 'c+');
        flock($fp, LOCK_EX);
        $data = version($k + $i);
        // ps_files_write: truncate only when the new data is shorter than the file, then one
        // pwrite at offset 0 (a longer version overwrites the old one in place).
        if (strlen($data) < fstat($fp)['size']) {
            ftruncate($fp, 0);
        }
        fseek($fp, 0);
        fwrite($fp, $data);
        fflush($fp);
        flock($fp, LOCK_UN);
        fclose($fp);
    }
    $k++;
}

<?php

/**
 * Test helper: an application process that keeps writing sessions through the generated bootstrap
 * (auto_prepend_file from the ini fragment) while `session-migrate rotate` runs.
 *
 *   php -n -c 99-session-migrate.ini -d extension=igbinary -d extension=redis rotate-writer.php STOPFILE PROGRESSFILE ID...
 *
 * Loops over the session IDs: session_start(), bump a counter, session_write_close(). After each
 * pass it writes the number of passes to PROGRESSFILE. Makes at least one full pass, then stops once
 * STOPFILE exists (or after 5000 passes). Prints one JSON line:
 * {"passes": n, "writes": n, "failures": n, "last": {"<id>": "<hex of the last session_encode() written>"}}.
 */

declare(strict_types=1);

$stopFile = $argv[1];
$progressFile = $argv[2];
$ids = array_slice($argv, 3);
$last = [];
$writes = 0;
$failures = 0;
$passes = 0;
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
do {
    foreach ($ids as $id) {
        session_id($id);
        if (!@session_start()) {
            $failures++;
            continue;
        }
        if (session_id() !== $id) {
            $failures++; // strict mode replaced an unknown ID: the session was not found
        }
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        $_SESSION['pid'] = getmypid();
        $encoded = session_encode();
        if (session_write_close()) {
            $last[$id] = bin2hex((string) $encoded);
            $writes++;
        } else {
            $failures++;
        }
    }
    $passes++;
    file_put_contents($progressFile . '.tmp', (string) $passes);
    rename($progressFile . '.tmp', $progressFile);
    clearstatcache();
} while (!file_exists($stopFile) && $passes < 5000);

echo json_encode(['passes' => $passes, 'writes' => $writes, 'failures' => $failures, 'last' => $last]), "\n";

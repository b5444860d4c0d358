<?php

/**
 * Test helper: one PHP process of a fleet in read-through mode. Run it with the generated ini
 * fragment (-c), which auto-prepends the generated bootstrap; every session_start() goes through the
 * real handler registration.
 *
 *   php -n -c 99-session-migrate.ini ... read-through-worker.php IDS_FILE STOP_FILE PAUSE_US
 *
 * IDS_FILE holds the session IDs this worker owns, one per line (no other worker touches them, so
 * every update of a session is ordered: any lost update is the migration's fault). The worker walks
 * its sessions round after round; each visit increments $_SESSION['n'] and records the value it wrote.
 * It stops after the round in which STOP_FILE appears, and prints {"writes": {id: last n written},
 * "visits": N, "errors": [...]} as one JSON line. PAUSE_US microseconds between visits.
 */

declare(strict_types=1);

ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');

[, $idsFile, $stopFile, $pause] = $argv;
$ids = array_values(array_filter(array_map('trim', (array) file($idsFile)), 'strlen'));
$writes = [];
$errors = [];
$visits = 0;
do {
    $stopAfterRound = file_exists($stopFile);
    foreach ($ids as $id) {
        session_id($id);
        if (!session_start()) {
            $errors[] = 'session_start failed';
            continue;
        }
        if (session_id() !== $id) {
            $errors[] = 'session ID was replaced (strict mode rejected it)';
        }
        $n = (int) ($_SESSION['n'] ?? -1000000);
        if (isset($writes[$id]) && $n !== $writes[$id]) {
            $errors[] = sprintf('read n=%d after writing n=%d (lost update)', $n, $writes[$id]);
        }
        $_SESSION['n'] = $n + 1;
        $writes[$id] = $n + 1;
        if (!session_write_close()) {
            $errors[] = 'session_write_close failed';
        }
        $visits++;
        usleep((int) $pause);
    }
} while (!$stopAfterRound);

echo json_encode(['writes' => $writes, 'visits' => $visits, 'errors' => $errors], JSON_THROW_ON_ERROR), "\n";

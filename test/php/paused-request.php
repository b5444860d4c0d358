<?php

/**
 * Test helper: one request that holds its session (and its lock) while the test changes Redis under
 * it (a fail-over, a restart), then writes. Run with the generated ini fragment (-c), like
 * session-request.php.
 *
 *   ARGS: --id=ID --set=JSON --ready=FILE --go=FILE
 *
 * Starts the session, assigns --set, creates --ready, waits (at most 60 s) until --go exists, then
 * session_write_close(). Prints one JSON line: started, idAfter, session (after start), closed.
 */

declare(strict_types=1);

$args = [];
foreach (array_slice($argv, 1) as $arg) {
    if (preg_match('/^--([a-z-]+)(?:=(.*))?$/s', $arg, $m) === 1) {
        $args[$m[1]] = $m[2] ?? true;
    }
}
if (isset($args['id'])) {
    session_id((string) $args['id']);
}
$started = session_start();
$session = $started ? $_SESSION : null;
if ($started && isset($args['set'])) {
    foreach (json_decode((string) $args['set'], true, 512, JSON_THROW_ON_ERROR) as $k => $v) {
        $_SESSION[$k] = $v;
    }
}
touch((string) $args['ready']);
for ($i = 0; $i < 6000 && !file_exists((string) $args['go']); $i++) {
    usleep(10000);
}
$closed = $started ? session_write_close() : null;
echo json_encode([
    'started' => $started,
    'idAfter' => session_id(),
    'session' => $session,
    'closed' => $closed,
], JSON_THROW_ON_ERROR), "\n";

<?php

/**
 * Test helper: one "request" of an application that uses sessions. Run it with the generated ini
 * fragment (-c), which auto-prepends the generated bootstrap, so everything goes through the real
 * handler registration and session_start().
 *
 *   php -n -c 99-session-migrate.ini -d extension=igbinary -d extension=redis session-request.php [ARGS]
 *
 * ARGS (all optional):
 *   --id=ID                 session ID the client presents (as a cookie would)
 *   --set=JSON              object of $_SESSION entries to assign after the start
 *   --delete-mid-request=K  DEL the Redis key K (port --port) between session_start() and the close
 *   --port=N                Redis port for --delete-mid-request
 *   --regenerate            session_regenerate_id(true) after the start (a login)
 *   --destroy               session_destroy() after the start (a logout)
 *
 * Prints one JSON line: started (session_start() result), idBefore/idAfter, session ($_SESSION after
 * start, or null), encoded (session_encode() after start), closed (session_write_close() result),
 * regenerated / destroyed (results of those calls, null when not asked).
 * Nothing is printed before the end, so no output precedes the session headers.
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
$idBefore = session_id();
$started = session_start();
$session = $started ? $_SESSION : null;
$encoded = $started ? session_encode() : null;
if ($started && isset($args['set'])) {
    foreach (json_decode((string) $args['set'], true, 512, JSON_THROW_ON_ERROR) as $k => $v) {
        $_SESSION[$k] = $v;
    }
}
if ($started && isset($args['delete-mid-request'])) {
    $other = new Redis();
    $other->connect('127.0.0.1', (int) $args['port'], 2.0);
    $other->del((string) $args['delete-mid-request']);
}
$regenerated = null;
if ($started && isset($args['regenerate'])) {
    $regenerated = session_regenerate_id(true);
}
$destroyed = null;
if ($started && isset($args['destroy'])) {
    $destroyed = session_destroy();
}
$closed = $started && $destroyed === null ? session_write_close() : null;

echo json_encode([
    'started' => $started,
    'idBefore' => $idBefore,
    'idAfter' => session_id(),
    'session' => $session,
    'encoded' => $encoded,
    'closed' => $closed,
    'regenerated' => $regenerated,
    'destroyed' => $destroyed,
], JSON_THROW_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE), "\n";

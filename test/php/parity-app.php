<?php

/**
 * Test application of the phpredis parity suite (test/php-parity.test.ts): the same script runs under
 * php-fpm with phpredis's native `redis` save handler (the oracle) and with the generated handler.
 * Every answer is one JSON object with `started` (session_start() result), `id` (session_id() at the
 * end) and what the action reports. Raw Redis observations go through a separate connection to the
 * session's own key and lock key, whose names each handler forms its own way (probeKeys()).
 *
 *   ?a=set&k=K&v=V     $_SESSION[K] = V
 *   ?a=get             read
 *   ?a=incr&sleep=MS   n = n + 1, with MS ms between reading and writing (concurrency)
 *   ?a=regen&del=0|1   session_regenerate_id(del): old and new ID, result, whether the old key exists
 *   ?a=abort           change $_SESSION, then session_abort(): is the lock gone at once?
 *   ?a=rac             session_start(['read_and_close' => true]): is the lock gone at once?
 *   ?a=reset           change $_SESSION, then session_reset(): the stored data again (and the
 *                      loaded phpredis version, whose native handler differs here)
 *   ?a=destroy         session_destroy(): result, whether the key exists afterwards
 *   ?a=gc              session_gc() (its result's type and value)
 *   ?a=create&p=P      session_create_id(P) while a session is active, and after it is closed
 *   ?a=raw             read_and_close, then TTL and SHA-1 of the stored value (raw)
 *   ?a=expire&ttl=S    read_and_close, then EXPIRE the stored key to S seconds (raw)
 *   ?a=sleepwrite&sleep=MS&k=K&v=V  set, sleep MS ms (the test may stop Redis meanwhile), then
 *                      session_write_close(): its result and PHP's last error
 *   ?a=none            never starts a session
 *
 * Environment: PARITY_REDIS_PORT (Redis on 127.0.0.1, for the raw observations).
 */

declare(strict_types=1);

header('Content-Type: application/json');
header('Cache-Control: no-store');

/** A separate connection for raw observations (never the handler's). */
function raw(): Redis
{
    static $redis = null;
    if ($redis === null) {
        $redis = new Redis();
        $redis->connect('127.0.0.1', (int) getenv('PARITY_REDIS_PORT'), 2.0);
    }

    return $redis;
}

/**
 * The session key and lock key of $id, as the active save handler names them.
 *
 * @return array{0: string, 1: string}
 */
function probeKeys(string $id): array
{
    if (ini_get('session.save_handler') === 'redis') {
        // phpredis redis_session.c: prefix PHPREDIS_SESSION:, lock key = session key . '_LOCK'
        return ['PHPREDIS_SESSION:' . $id, 'PHPREDIS_SESSION:' . $id . '_LOCK'];
    }
    $lazy = \SessionMigrate\EncryptedRedisSessionHandler::registeredHandler();
    $envelope = $lazy->handler()->envelope();

    return [$envelope->keyName($id), $envelope->lockName($id)];
}

function out(array $data): void
{
    echo json_encode($data + ['id' => session_id(), 'status' => session_status()], JSON_THROW_ON_ERROR), "\n";
    exit;
}

$a = (string) ($_GET['a'] ?? 'get');
if ($a === 'none') {
    out(['started' => null]);
}

$options = $a === 'rac' || $a === 'raw' || $a === 'expire' ? ['read_and_close' => true] : [];
$cookieId = (string) ($_COOKIE[session_name()] ?? '');
$started = @session_start($options);
if ($started === false) {
    http_response_code(503);
    out(['started' => false, 'error' => (error_get_last() ?? [])['message'] ?? null]);
}

switch ($a) {
    case 'set':
        $_SESSION[(string) $_GET['k']] = (string) $_GET['v'];
        out(['started' => true, 'session' => $_SESSION]);
        // no break: out() exits
    case 'get':
        out(['started' => true, 'session' => $_SESSION, 'cookieId' => $cookieId]);
        // no break
    case 'incr':
        $n = (int) ($_SESSION['n'] ?? 0);
        usleep((int) ($_GET['sleep'] ?? 0) * 1000);
        $_SESSION['n'] = $n + 1;
        out(['started' => true, 'n' => $n + 1]);
        // no break
    case 'regen':
        $old = session_id();
        $result = session_regenerate_id((bool) (int) ($_GET['del'] ?? 0));
        $_SESSION['regenerated'] = 1;
        $oldKey = probeKeys($old)[0];
        out(['started' => true, 'old' => $old, 'result' => $result, 'changed' => session_id() !== $old,
            'oldExists' => (int) raw()->exists($oldKey), 'session' => $_SESSION]);
        // no break
    case 'abort':
        $_SESSION['aborted'] = 1;
        $id = session_id();
        session_abort();
        out(['started' => true, 'lockAfter' => (int) raw()->exists(probeKeys($id)[1]), 'status' => session_status()]);
        // no break
    case 'rac':
        $id = session_id();
        out(['started' => true, 'session' => $_SESSION, 'lockAfter' => (int) raw()->exists(probeKeys($id)[1])]);
        // no break
    case 'reset':
        $before = $_SESSION;
        $_SESSION['x'] = 'changed in this request';
        $reset = session_reset();
        out(['started' => true, 'reset' => $reset, 'before' => $before, 'session' => $_SESSION,
            'phpredis' => (string) phpversion('redis')]);
        // no break
    case 'destroy':
        [$key] = probeKeys(session_id());
        $result = session_destroy();
        out(['started' => true, 'result' => $result, 'keyExists' => (int) raw()->exists($key)]);
        // no break
    case 'gc':
        $gc = session_gc();
        out(['started' => true, 'gc' => $gc, 'type' => gettype($gc)]);
        // no break
    case 'create':
        $prefix = (string) ($_GET['p'] ?? '');
        $active = session_create_id($prefix);
        session_write_close();
        $inactive = session_create_id($prefix);
        $valid = static function ($id) use ($prefix): bool {
            return is_string($id) && strncmp($id, $prefix, strlen($prefix)) === 0
                && preg_match('/\A[A-Za-z0-9,-]+\z/', $id) === 1;
        };
        out(['started' => true, 'active' => $valid($active), 'inactive' => $valid($inactive),
            'distinct' => $active !== $inactive, 'length' => is_string($active) ? strlen($active) : null]);
        // no break
    case 'raw':
    case 'expire':
        [$key] = probeKeys(session_id());
        if ($a === 'expire') {
            raw()->expire($key, (int) $_GET['ttl']);
        }
        $value = raw()->get($key);
        out(['started' => true, 'ttl' => raw()->ttl($key), 'sha1' => is_string($value) ? sha1($value) : null]);
        // no break
    case 'sleepwrite':
        $_SESSION[(string) $_GET['k']] = (string) $_GET['v'];
        usleep((int) ($_GET['sleep'] ?? 0) * 1000);
        error_clear_last();
        $closed = @session_write_close();
        $error = error_get_last();
        out(['started' => true, 'closed' => $closed, 'error' => $error['message'] ?? null]);
        // no break
    default:
        http_response_code(400);
        out(['started' => true, 'error' => 'unknown action']);
}

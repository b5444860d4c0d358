<?php

/**
 * Test helper: builds the handler from its classes (as Bootstrap::build() does, with the keys given
 * here) and runs a list of operations on it.
 *
 *   php -n -d extension=igbinary -d extension=redis envelope-ops.php AUTOLOAD_FILE < request.json
 *
 * request.json: {
 *   "namespace": "SessionMigrate",            (optional)
 *   "keys": ["<base64>", ...],                master keys, current first
 *   "prefix": "smsess:",                      (optional)
 *   "redisPort": 6379,                        Redis on 127.0.0.1 (a new connection, not persistent)
 *   "locking": {...},                         (optional) SessionLock options; default: locking off, so
 *                                             the operations below are the plain storage steps
 *   "readThrough": {"dir": "/legacy/sessions", "depth": 2},              (optional: LegacySessionFiles)
 *   "ops": [{"op": "...", ...}, ...]
 * }
 * Prints {"construct": null|"<exception message>", "results": [...], "logs": [...]} as JSON.
 * Binary strings travel as hex. The script computes; the TypeScript tests assert.
 */

declare(strict_types=1);

$request = json_decode((string) stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
require $argv[1];
$ns = ($request['namespace'] ?? 'SessionMigrate') . '\\';

$keys = array_map(static function (string $b64): string {
    return (string) base64_decode($b64, true);
}, $request['keys']);
$logs = [];
$logger = static function (string $message) use (&$logs): void {
    $logs[] = $message;
};

$out = ['construct' => null, 'results' => [], 'logs' => &$logs];
try {
    $ring = ($ns . 'KeyRing')::fromMasterKeys($keys);
    $envelopeClass = $ns . 'Envelope';
    $envelope = new $envelopeClass($ring, $request['prefix'] ?? 'smsess:');
    $factoryClass = $ns . 'ConnectionFactory';
    $factory = new $factoryClass(['host' => '127.0.0.1', 'port' => (int) $request['redisPort'], 'persistent' => false], $ring, $logger);
    $storeClass = $ns . 'SessionStore';
    $lockClass = $ns . 'SessionLock';
    $legacyClass = $ns . 'LegacySessionFiles';
    $handlerClass = $ns . 'EncryptedRedisSessionHandler';
    $legacy = isset($request['readThrough'])
        ? new $legacyClass($request['readThrough']['dir'], (int) $request['readThrough']['depth'], $logger)
        : null;
    $lock = isset($request['locking']) ? new $lockClass($request['locking']) : $lockClass::disabled();
    $handler = new $handlerClass(new $storeClass($factory), $envelope, $lock, $legacy, $logger);
} catch (Throwable $e) {
    $out['construct'] = get_class($e) . ': ' . $e->getMessage();
    echo json_encode($out, JSON_THROW_ON_ERROR), "\n";
    exit(0);
}

$hexOrFalse = static function ($value) {
    return is_string($value) ? bin2hex($value) : $value;
};

foreach ($request['ops'] as $op) {
    switch ($op['op']) {
        case 'keyIds':
            $result = ['keyId' => bin2hex($ring->currentKeyId()), 'keyIds' => $ring->keyIds()];
            break;
        case 'keyName':
            $result = $envelope->keyName($op['sessionId']);
            break;
        case 'lockName':
            $result = $envelope->lockName($op['sessionId']);
            break;
        case 'seal':
            $nonce = isset($op['nonceHex']) ? hex2bin($op['nonceHex']) : null;
            $result = bin2hex($envelope->seal($op['redisKey'], (string) hex2bin($op['plaintextHex']), $nonce));
            break;
        case 'open':
            $opened = $envelope->open($op['redisKey'], (string) hex2bin($op['envelopeHex']));
            $opened['plaintext'] = $hexOrFalse($opened['plaintext']);
            $result = $opened;
            break;
        case 'read':
            $result = $hexOrFalse($handler->read($op['sessionId']));
            break;
        case 'write':
            $result = $handler->write($op['sessionId'], (string) hex2bin($op['dataHex']));
            break;
        case 'validateId':
            $result = $handler->validateId($op['sessionId']);
            break;
        case 'updateTimestamp':
            $result = $handler->updateTimestamp($op['sessionId'], (string) hex2bin($op['dataHex']));
            break;
        case 'destroy':
            $result = $handler->destroy($op['sessionId']);
            break;
        case 'tombstoneName':
            $result = $envelope->tombstoneName($op['sessionId']);
            break;
        case 'gc':
            $result = $handler->gc(1440);
            break;
        case 'handlerOpen':
            $result = $handler->open('', 'PHPSESSID');
            break;
        case 'handlerClose':
            $result = $handler->close();
            break;
        case 'rawGet':
            // a separate, option-free connection: what phpredis sees on the wire
            $raw = new Redis();
            $raw->connect('127.0.0.1', (int) $request['redisPort'], 2.0);
            $result = $hexOrFalse($raw->get($op['redisKey']));
            break;
        case 'shutdownRedis':
            $admin = new Redis();
            $admin->connect('127.0.0.1', (int) $request['redisPort'], 2.0);
            try {
                $admin->rawCommand('SHUTDOWN', 'NOSAVE');
            } catch (RedisException $e) {
                // the server closes the connection instead of answering
            }
            $result = true;
            break;
        case 'sessionStart':
            // a real session_start() through this handler, with PHP's warnings captured
            ini_set('session.use_cookies', '0');
            ini_set('session.cache_limiter', '');
            ini_set('session.save_path', '/dev/null/no-files-sessions');
            session_set_save_handler($handler, true);
            session_id($op['sessionId']);
            $warnings = [];
            set_error_handler(static function (int $no, string $str) use (&$warnings): bool {
                $warnings[] = $str;
                return true;
            });
            $started = session_start();
            restore_error_handler();
            $result = ['started' => $started, 'active' => session_status() === PHP_SESSION_ACTIVE, 'warnings' => $warnings];
            break;
        default:
            throw new InvalidArgumentException('unknown op ' . $op['op']);
    }
    $out['results'][] = $result;
}

echo json_encode($out, JSON_THROW_ON_ERROR), "\n";

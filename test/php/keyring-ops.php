<?php

/**
 * Test helper: reads key texts with the generated handler class and reports what it derives.
 *
 *   php -n -d extension=igbinary -d extension=redis keyring-ops.php HANDLER_FILE < request.json
 *
 * request.json: {"redisPort": 6379, "prefix": "smsess:", "sessionId": "...", "texts": ["...", ...],
 *                "fromEnvironment": false}
 * For each text (or, with fromEnvironment, once from keyRingFromEnvironment()): builds the handler
 * from the ring and prints {"ok": {lookupId, keyId, keyIds, lookupKeyHex, redisKey}} or
 * {"error": "<class>: <message>"}, as one JSON line with a "results" list.
 */

declare(strict_types=1);

$request = json_decode((string) stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
require $argv[1];
$class = 'SessionMigrate\\EncryptedRedisSessionHandler';

$redis = new Redis();
$redis->connect('127.0.0.1', (int) $request['redisPort'], 2.0);

$results = [];
$inputs = ($request['fromEnvironment'] ?? false) ? [null] : $request['texts'];
foreach ($inputs as $text) {
    try {
        $ring = $text === null ? $class::keyRingFromEnvironment() : $class::keyRingFromText($text, 'vector');
        $lookupKeyHex = bin2hex($ring['lookup']);
        $handler = new $class($redis, $ring, $request['prefix'] ?? 'smsess:');
        $class::wipeKeyRing($ring);
        $results[] = ['ok' => [
            'lookupId' => $handler->lookupId(),
            'keyId' => $handler->keyId(),
            'keyIds' => $handler->keyIds(),
            'lookupKeyHex' => $lookupKeyHex,
            'redisKey' => $handler->keyName($request['sessionId'] ?? 'abc'),
            'wiped' => $ring === [],
        ]];
    } catch (Throwable $e) {
        $results[] = ['error' => get_class($e) . ': ' . $e->getMessage()];
    }
}
echo json_encode(['results' => $results], JSON_THROW_ON_ERROR), "\n";

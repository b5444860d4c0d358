<?php

/**
 * Test helper: reads key texts with the handler's KeyRing / KeyRingLoader and reports what they derive.
 *
 *   php -n -d extension=igbinary -d extension=redis keyring-ops.php AUTOLOAD_FILE < request.json
 *
 * request.json: {"prefix": "smsess:", "sessionId": "...", "texts": ["...", ...], "fromEnvironment": false}
 * For each text (or, with fromEnvironment, once from KeyRingLoader::fromEnvironment()): prints
 * {"ok": {lookupId, keyId, keyIds, lookupKeyHex, redisKey, wiped}} or {"error": "<class>: <message>"},
 * as one JSON line with a "results" list. "wiped": KeyRing::wipe() zeroed the lookup key.
 */

declare(strict_types=1);

use SessionMigrate\Envelope;
use SessionMigrate\KeyRing;
use SessionMigrate\KeyRingLoader;

$request = json_decode((string) stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
require $argv[1];

$results = [];
$inputs = ($request['fromEnvironment'] ?? false) ? [null] : $request['texts'];
foreach ($inputs as $text) {
    try {
        $ring = $text === null ? KeyRingLoader::fromEnvironment() : KeyRing::fromText($text, 'vector');
        $envelope = new Envelope($ring, $request['prefix'] ?? 'smsess:');
        $ok = [
            'lookupId' => $ring->lookupId(),
            'keyId' => bin2hex($ring->currentKeyId()),
            'keyIds' => $ring->keyIds(),
            'lookupKeyHex' => bin2hex($ring->lookupKey()),
            'redisKey' => $envelope->keyName($request['sessionId'] ?? 'abc'),
        ];
        $ring->wipe();
        $ok['wiped'] = $ring->lookupKey() === str_repeat("\0", 32) && $ring->isWiped();
        $results[] = ['ok' => $ok];
    } catch (Throwable $e) {
        $results[] = ['error' => get_class($e) . ': ' . $e->getMessage()];
    }
}
echo json_encode(['results' => $results], JSON_THROW_ON_ERROR), "\n";

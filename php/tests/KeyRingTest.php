<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use PHPUnit\Framework\TestCase;
use SessionMigrate\KeyRing;

/**
 * KeyRing against docs/keyring-vectors.json (the vectors the TypeScript reader passes too).
 */
final class KeyRingTest extends TestCase
{
    /** @return iterable<string, array{array<string, mixed>}> */
    public function validVectors(): iterable
    {
        foreach (sessionMigrateVectors('keyring-vectors.json')['valid'] as $v) {
            yield $v['name'] => [$v];
        }
    }

    /** @return iterable<string, array{array<string, mixed>}> */
    public function invalidVectors(): iterable
    {
        foreach (sessionMigrateVectors('keyring-vectors.json')['invalid'] as $v) {
            yield $v['name'] => [$v];
        }
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $v
     */
    public function testDerivesTheVectorIds(array $v): void
    {
        $ring = KeyRing::fromText($v['text'], 'vector');
        self::assertSame($v['lookup_id'], $ring->lookupId());
        self::assertSame($v['lookup_key_hex'], bin2hex($ring->lookupKey()));
        self::assertSame($v['current_key_id'], bin2hex($ring->currentKeyId()));
        self::assertSame(array_merge([$v['current_key_id']], $v['previous_key_ids']), $ring->keyIds());
    }

    /**
     * @dataProvider invalidVectors
     * @param array<string, mixed> $v
     */
    public function testRefusesTheInvalidVectorWithoutEchoingKeyText(array $v): void
    {
        try {
            KeyRing::fromText($v['text'], 'vector');
            self::fail('accepted ' . $v['name']);
        } catch (\RuntimeException $e) {
            self::assertStringStartsWith('session-migrate: vector: ', $e->getMessage());
            self::assertStringContainsString($v['expect'], $e->getMessage());
            preg_match_all('/[A-Za-z0-9+\/_-]{40,}={0,2}/', $v['text'], $m);
            foreach ($m[0] as $keyLike) {
                self::assertStringNotContainsString(substr($keyLike, 0, 16), $e->getMessage());
            }
        }
    }

    public function testEncryptionKeysAreDerivedOnlyForKeyIdsTheRingHolds(): void
    {
        $vectors = sessionMigrateVectors('envelope-vectors.json');
        $ring = KeyRing::fromMasterKeys([
            (string) base64_decode($vectors['other_master_key_base64'], true),
            (string) base64_decode($vectors['master_key_base64'], true),
        ]);
        self::assertSame([$vectors['other_key_id'], $vectors['key_id']], $ring->keyIds());
        self::assertSame($vectors['encryption_key_hex'], bin2hex((string) $ring->encryptionKey((string) hex2bin($vectors['key_id']))));
        self::assertNull($ring->encryptionKey(str_repeat("\0", 8)));
    }

    public function testWipeZeroesTheKeysAndMarksTheRing(): void
    {
        $ring = KeyRing::fromText(sessionMigrateVectors('keyring-vectors.json')['valid'][1]['text'], 'vector');
        $keyId = $ring->currentKeyId();
        $ring->wipe();
        self::assertTrue($ring->isWiped());
        self::assertSame(str_repeat("\0", 32), $ring->lookupKey());
        self::assertNull($ring->encryptionKey($keyId));
        self::assertSame([], $ring->keyIds());
    }

    public function testPurposeKeysAreSeparateFromTheEnvelopeKeys(): void
    {
        $ring = KeyRing::fromText(sessionMigrateVectors('keyring-vectors.json')['valid'][0]['text'], 'vector');
        self::assertNotSame($ring->lookupKey(), $ring->purposeKey(100));
        self::assertNotSame($ring->purposeKey(100), $ring->purposeKey(101));
        $this->expectException(\InvalidArgumentException::class);
        $ring->purposeKey(4);
    }

    public function testRefusesKeysThatAreNot32Bytes(): void
    {
        $this->expectExceptionMessage('master key #1 is not 32 raw bytes');
        new KeyRing(str_repeat('l', 32), str_repeat('c', 32), [str_repeat('p', 31)]);
    }
}

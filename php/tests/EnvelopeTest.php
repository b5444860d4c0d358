<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use PHPUnit\Framework\TestCase;
use SessionMigrate\Envelope;
use SessionMigrate\KeyRing;

/**
 * Envelope against docs/envelope-vectors.json: key names (session, tombstone, lock: one hash tag),
 * sealing with the vector nonce, opening, and every invalid vector's failure name.
 */
final class EnvelopeTest extends TestCase
{
    /** @var array<string, mixed> */
    private array $v;

    protected function setUp(): void
    {
        $this->v = sessionMigrateVectors('envelope-vectors.json');
    }

    private function envelope(string $prefix = 'smsess:'): Envelope
    {
        return new Envelope(KeyRing::fromMasterKeys([(string) base64_decode($this->v['master_key_base64'], true)]), $prefix);
    }

    public function testNamesSealsAndOpensEveryValidVector(): void
    {
        foreach ($this->v['valid'] as $vector) {
            $envelope = $this->envelope($vector['prefix']);
            self::assertSame($vector['redis_key'], $envelope->keyName($vector['session_id']), $vector['name']);
            self::assertSame($vector['tombstone_key'], $envelope->tombstoneName($vector['session_id']), $vector['name']);
            self::assertSame($vector['lock_key'], $envelope->lockName($vector['session_id']), $vector['name']);
            $sealed = $envelope->seal($vector['redis_key'], (string) hex2bin($vector['plaintext_hex']), (string) hex2bin($vector['nonce_hex']));
            self::assertSame($vector['envelope_hex'], bin2hex($sealed), $vector['name']);
            $opened = $envelope->open($vector['redis_key'], (string) hex2bin($vector['envelope_hex']));
            self::assertSame(['ok' => true, 'plaintext' => hex2bin($vector['plaintext_hex']), 'reason' => null, 'keyId' => $this->v['key_id']], $opened);
        }
    }

    public function testRejectsEveryInvalidVectorWithItsFailureName(): void
    {
        $envelope = $this->envelope();
        foreach ($this->v['invalid'] as $vector) {
            $opened = $envelope->open($vector['redis_key'], (string) hex2bin($vector['envelope_hex']));
            self::assertFalse($opened['ok'], $vector['name']);
            self::assertSame($vector['expect'], $opened['reason'], $vector['name']);
            self::assertNull($opened['plaintext']);
        }
    }

    public function testAFreshNonceEveryTimeAndTheKeyNameIsBound(): void
    {
        $envelope = $this->envelope();
        $a = $envelope->seal('smsess:{a}', 'x|i:1;');
        $b = $envelope->seal('smsess:{a}', 'x|i:1;');
        self::assertNotSame(substr($a, 11, 24), substr($b, 11, 24));
        self::assertSame('auth-failed', $envelope->open('smsess:{b}', $a)['reason']);
    }

    public function testTheKeyNamesOfOneSessionShareOneHashTag(): void
    {
        $envelope = $this->envelope();
        $tag = static function (string $key): string {
            return (string) preg_replace('/^[^{]*\{([^}]*)\}.*$/', '$1', $key);
        };
        $id = 'abcDEF0123456789,-';
        self::assertSame($tag($envelope->keyName($id)), $tag($envelope->lockName($id)));
        self::assertSame($tag($envelope->keyName($id)), $tag($envelope->tombstoneName($id)));
        self::assertMatchesRegularExpression('/^[0-9a-f]{64}$/', $tag($envelope->keyName($id)));
        self::assertNotSame($envelope->keyName($id), $envelope->keyName($id . 'x'));
    }

    public function testRefusesAPrefixWithABrace(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->envelope('a{b');
    }
}

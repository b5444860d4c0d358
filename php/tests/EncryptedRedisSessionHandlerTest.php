<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use SessionMigrate\Envelope;
use SessionMigrate\KeyRing;
use SessionMigrate\Tests\Support\RedisTestCase;

/**
 * The handler's steps in the order PHP calls them (php-src ext/session/session.c), against a real
 * Redis: validateId() locks and reads in one round trip and read() uses it; an error never makes a
 * new session ID; write() releases the lock; close() releases a lock nobody wrote.
 */
final class EncryptedRedisSessionHandlerTest extends RedisTestCase
{
    private const ID = 'abcdefghijklmnopqrstuvwxyz012345';

    private function names(): Envelope
    {
        return new Envelope($this->keys());
    }

    public function testAReturningRequestCostsTwoRoundTrips(): void
    {
        $handler = $this->handler();
        self::assertTrue($handler->open('', 'PHPSESSID'));
        self::assertSame('', $handler->read(self::ID)); // a new session: PHP reads before it writes
        self::assertTrue($handler->write(self::ID, 'a|i:1;'));
        $handler->close();

        $next = $this->handler();
        $next->open('', 'PHPSESSID');
        self::assertTrue($next->validateId(self::ID));
        self::assertSame(1, $this->admin->exists($this->names()->lockName(self::ID)), 'validateId took the lock');
        self::assertSame('a|i:1;', $next->read(self::ID));
        self::assertTrue($next->write(self::ID, 'a|i:2;'));
        self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)), 'write released it');
        self::assertTrue($next->close());
        self::assertSame(2, $next->roundTrips());
    }

    public function testAnUnknownIdKeepsNoLock(): void
    {
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertFalse($handler->validateId(self::ID));
        self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)));
    }

    public function testCloseReleasesALockNobodyWroteUnder(): void
    {
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertSame('', $handler->read(self::ID));
        self::assertSame(1, $this->admin->exists($this->names()->lockName(self::ID)));
        self::assertTrue($handler->close());
        self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)));
    }

    public function testARedisErrorIsNeverANewSessionId(): void
    {
        $this->admin->hSet($this->names()->keyName(self::ID), 'f', 'v'); // WRONGTYPE
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertTrue($handler->validateId(self::ID), 'an error must not look like an unknown ID');
        self::assertFalse($handler->read(self::ID), 'read() fails, so session_start() fails');
        self::assertCount(1, $this->logs);
        self::assertStringContainsString('WRONGTYPE', $this->logs[0]);
        self::assertStringNotContainsString(self::ID, $this->logs[0]);
    }

    public function testTheReadOfAnotherIdDropsTheLockValidateIdTook(): void
    {
        $this->handler(['enabled' => false])->write(self::ID, 'a|i:1;');
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertTrue($handler->validateId(self::ID));
        self::assertSame('', $handler->read('other0000000000000000000000000001'));
        self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)));
    }

    public function testAValueThatDoesNotOpenIsAnEmptySessionAndOneWarning(): void
    {
        $this->admin->set($this->names()->keyName(self::ID), 'uid|i:1;admin|b:1;');
        $handler = $this->handler(['enabled' => false]);
        self::assertSame('', $handler->read(self::ID));
        self::assertCount(1, $this->logs);
        self::assertStringContainsString('did not open (not-envelope', $this->logs[0]);
        self::assertStringNotContainsString('uid|i:1', $this->logs[0]);
    }

    public function testAValueThatDoesNotOpenIsReadAgainOnANewConnectionBeforeAnEmptySessionReplacesIt(): void
    {
        // What a connection out of step brings: another session's envelope, which does not open
        // under this key name (auth-failed). validateId() reads it; the stored value is the good one
        // by the time read() decides, as when the first reply was meant for another command.
        $key = $this->names()->keyName(self::ID);
        $this->handler(['enabled' => false])->write(self::ID, 'uid|i:7;');
        $good = (string) $this->admin->get($key);
        $this->admin->set($key, $this->names()->seal($this->names()->keyName('other0000000000000000000000000001'), 'uid|i:8;'));
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertTrue($handler->validateId(self::ID));
        $this->admin->set($key, $good);
        self::assertSame('uid|i:7;', $handler->read(self::ID));
        self::assertSame([], $this->logs, 'no warning: nothing was replaced');
        self::assertTrue($handler->write(self::ID, 'uid|i:7;n|i:1;'));
        self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)), 'write released the lock');
    }

    public function testAValueThatDoesNotOpenTwiceIsReplacedWithOneWarning(): void
    {
        $key = $this->names()->keyName(self::ID);
        $this->admin->set($key, $this->names()->seal($this->names()->keyName('other0000000000000000000000000001'), 'uid|i:8;'));
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertSame('', $handler->read(self::ID));
        self::assertCount(1, $this->logs);
        self::assertStringContainsString('did not open (auth-failed', $this->logs[0]);
        self::assertTrue($handler->write(self::ID, 'uid|i:9;'));
    }

    public function testAValueUnderAKeyIdThisHostLacksFailsTheReadAndStaysUntouched(): void
    {
        $vectors = sessionMigrateVectors('envelope-vectors.json');
        $other = KeyRing::fromMasterKeys([(string) base64_decode($vectors['other_master_key_base64'], true)]);
        $key = $this->names()->keyName(self::ID);
        $sealed = (new Envelope($other))->seal($key, 'uid|i:3;');
        $this->admin->set($key, $sealed);
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertTrue($handler->validateId(self::ID), 'the session exists: never a new ID');
        self::assertFalse($handler->read(self::ID), 'an error, not "no session": session_start() fails');
        self::assertTrue($handler->close());
        self::assertSame($sealed, $this->admin->get($key));
        self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)));
        self::assertCount(1, $this->logs);
        self::assertStringContainsString($key . ' (key ID ' . $vectors['other_key_id'] . ')', $this->logs[0]);
        self::assertStringContainsString('unknown-key-id', $this->logs[0]);
        self::assertStringContainsString('the value is left untouched', $this->logs[0]);
    }

    public function testAWriteWithoutTheLockIsRefusedAndLogged(): void
    {
        $handler = $this->handler();
        $handler->open('', 'PHPSESSID');
        self::assertFalse($handler->write(self::ID, 'a|i:1;'), 'no read, so no lock: never an unguarded write');
        self::assertSame(0, $this->admin->exists($this->names()->keyName(self::ID)));
        self::assertCount(1, $this->logs);
        self::assertStringContainsString('expired or was taken over before this request wrote', $this->logs[0]);
    }
}

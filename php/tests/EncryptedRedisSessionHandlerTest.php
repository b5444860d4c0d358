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

    /**
     * Locking off: request A read the session, request B destroyed it (session_destroy(), a logout),
     * then A's write or lazy_write refresh comes. phpredis (PS_WRITE_FUNC: an unconditional SETEX)
     * brings the session back: the logout is undone. Ours takes B's tombstone as the last word: A's
     * write is dropped (one log line), as if it had come before the destroy.
     *
     * @return array<string, array{0: bool}>
     */
    public function lockingModes(): array
    {
        return ['locking off' => [false], 'locking on' => [true]];
    }

    /** @dataProvider lockingModes */
    public function testAConcurrentDestroyIsNotUndoneByALaterWrite(bool $locking): void
    {
        $key = $this->names()->keyName(self::ID);
        $this->handler(['enabled' => false])->write(self::ID, 'uid|i:7;');
        foreach (['write', 'updateTimestamp'] as $step) {
            $this->handler(['enabled' => false])->write(self::ID, 'uid|i:7;');
            $a = $this->handler(['enabled' => $locking]);
            $a->open('', 'PHPSESSID');
            self::assertSame('uid|i:7;', $a->read(self::ID));
            $b = $this->handler(['enabled' => false]);
            $b->open('', 'PHPSESSID');
            self::assertTrue($b->destroy(self::ID), 'B logs out (without the lock: locking off, or a read-only request)');
            $this->logs = [];
            self::assertTrue($a->{$step}(self::ID, $step === 'write' ? 'uid|i:7;n|i:1;' : 'uid|i:7;'), $step);
            self::assertSame(0, $this->admin->exists($key), $step . ' must not bring the destroyed session back');
            self::assertSame(0, $this->admin->exists($this->names()->lockName(self::ID)), $step . ' released the lock');
            self::assertCount(1, $this->logs, $step);
            self::assertStringContainsString($key . ' was destroyed by another request', $this->logs[0]);
            $a->close();
        }
    }

    /** @dataProvider lockingModes */
    public function testARequestThatDestroysAndStartsAgainUnderTheSameIdStoresItsNewSession(bool $locking): void
    {
        // session_destroy(); session_start(); without strict mode PHP keeps the cookie's ID: phpredis
        // and the files handler store the new session under it, and so do we. session_regenerate_id(true)
        // destroys the old ID and writes the new one.
        $key = $this->names()->keyName(self::ID);
        $new = 'newid000000000000000000000000001';
        $this->handler(['enabled' => false])->write(self::ID, 'uid|i:7;');
        $h = $this->handler(['enabled' => $locking]);
        $h->open('', 'PHPSESSID');
        self::assertSame('uid|i:7;', $h->read(self::ID));
        self::assertTrue($h->destroy(self::ID));
        self::assertTrue($h->close());
        $h->open('', 'PHPSESSID');
        self::assertSame('', $h->read(self::ID));
        self::assertTrue($h->write(self::ID, 'guest|b:1;'));
        self::assertTrue($h->close());
        self::assertSame(1, $this->admin->exists($key));

        $h->open('', 'PHPSESSID');
        self::assertSame('guest|b:1;', $h->read(self::ID));
        // session_regenerate_id(true) (php-src ext/session/session.c): destroy the old ID, close,
        // open, read the new ID, and at the end of the request write it.
        self::assertTrue($h->destroy(self::ID));
        self::assertTrue($h->close());
        $h->open('', 'PHPSESSID');
        self::assertSame('', $h->read($new));
        self::assertTrue($h->write($new, 'guest|b:1;uid|i:8;'));
        self::assertTrue($h->close());
        self::assertSame(0, $this->admin->exists($key));
        self::assertSame(1, $this->admin->exists($this->names()->keyName($new)));
        self::assertSame([], $this->logs);
    }

    public function testStrictModeRefusesANewSessionWhoseLockAnotherRequestHoldsAsPhpredisDoes(): void
    {
        // Request A, a new visitor, read() the ID PHP created for it (lock taken, nothing stored yet);
        // request B arrives with that ID before A wrote (A flushed its Set-Cookie early). phpredis
        // (PS_VALIDATE_SID_FUNC: EXISTS) answers "no such session", and so do we: PHP gives B a new ID.
        // The files handler answers "exists" (A's read created the file: ps_files_open O_CREAT, and
        // ps_files_key_exists is a stat) and B waits for A's flock: documented in docs/handler.md.
        $a = $this->handler();
        $a->open('', 'PHPSESSID');
        self::assertSame('', $a->read(self::ID));
        $b = $this->handler();
        $b->open('', 'PHPSESSID');
        self::assertFalse($b->validateId(self::ID));
        self::assertTrue($b->close());
        self::assertSame(1, $this->admin->exists($this->names()->lockName(self::ID)), 'A still holds its lock');
        self::assertTrue($a->write(self::ID, 'uid|i:7;'));
        self::assertTrue($a->close());
        $c = $this->handler();
        $c->open('', 'PHPSESSID');
        self::assertTrue($c->validateId(self::ID), 'once A stored it, the ID is valid');
        self::assertSame('uid|i:7;', $c->read(self::ID));
        self::assertTrue($c->close());
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

<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use SessionMigrate\ConnectionFactory;
use SessionMigrate\SessionStore;
use SessionMigrate\StorageException;
use SessionMigrate\Tests\Support\RedisTestCase;

/**
 * SessionStore's scripts against a real Redis: the lock is SET NX PX with the caller's token, writes
 * and touches only while the token holds it, compare-and-delete release, errors are never a miss,
 * and a dropped connection is retried once.
 */
final class SessionStoreTest extends RedisTestCase
{
    private const KEY = 'p:{aa}';
    private const LOCK = 'p:lock:{aa}';
    private const TOMB = 'p:destroyed:{aa}';

    public function testTheWrittenOutShasAreThoseOfTheScriptsAndEachRunsInOneRoundTrip(): void
    {
        $class = new \ReflectionClass(SessionStore::class);
        $scripts = ['READ' => 'READ', 'LOCK+GET' => 'LOCK_AND_READ', 'SET' => 'WRITE', 'EXPIRE' => 'TOUCH', 'UNLOCK' => 'UNLOCK', 'DEL' => 'DESTROY'];
        self::assertSame(array_keys($scripts), array_keys(SessionStore::SCRIPT_SHAS));
        foreach ($scripts as $step => $constant) {
            self::assertSame(sha1((string) $class->getConstant($constant)), SessionStore::SCRIPT_SHAS[$step], $step);
        }
        // a wrong SHA would still work (NOSCRIPT, then EVAL) but cost two round trips on every call
        // (the first pair may load the scripts into this server; the second must find them)
        $store = new SessionStore($this->factory());
        for ($i = 0; $i < 2; $i++) {
            $before = $store->roundTrips();
            $store->lockAndRead(self::KEY, self::LOCK, self::TOMB, 'tok-1', 5000, false, false);
            $store->write(self::KEY, self::LOCK, 'tok-1', 'v', 60);
        }
        self::assertSame($before + 2, $store->roundTrips());
    }

    public function testLockAndReadTakesAPxLockReadsAndIsReentrantForItsOwnToken(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set(self::KEY, 'v');
        $r = $store->lockAndRead(self::KEY, self::LOCK, self::TOMB, 'tok-1', 5000, false, false);
        self::assertSame(['locked' => true, 'value' => 'v', 'exists' => true, 'destroyed' => false], $r);
        self::assertSame('tok-1', $this->admin->get(self::LOCK));
        $pttl = $this->admin->pttl(self::LOCK);
        self::assertGreaterThan(4000, $pttl);
        self::assertLessThanOrEqual(5000, $pttl);
        self::assertTrue($store->lockAndRead(self::KEY, self::LOCK, self::TOMB, 'tok-1', 5000, false, false)['locked'], 'a retry after a lost reply');
        $busy = $store->lockAndRead(self::KEY, self::LOCK, self::TOMB, 'tok-2', 5000, false, false);
        self::assertSame(['locked' => false, 'value' => false, 'exists' => true, 'destroyed' => false], $busy);
    }

    public function testAMissingSessionCanGiveItsLockBackAtOnceAndReportsItsTombstone(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set(self::TOMB, '1');
        $r = $store->lockAndRead(self::KEY, self::LOCK, self::TOMB, 'tok', 5000, true, true);
        self::assertSame(['locked' => false, 'value' => false, 'exists' => false, 'destroyed' => true], $r);
        self::assertSame(0, $this->admin->exists(self::LOCK));
        self::assertSame([false, true], $store->read(self::KEY, self::TOMB, true));
        self::assertSame([false, false], $store->read(self::KEY, self::TOMB, false), 'strict mode never asks');
    }

    public function testGetReadsOneKeyAloneInOneRoundTripAndAnErrorIsNeverAMiss(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set('PHPREDIS_SESSION:x', 'uid|i:7;');
        $store->connect();
        $before = $store->roundTrips();
        self::assertSame('uid|i:7;', $store->get('PHPREDIS_SESSION:x'));
        self::assertFalse($store->get('PHPREDIS_SESSION:none'));
        self::assertSame(2, $store->roundTrips() - $before, 'one GET each');
        $this->admin->rawCommand('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        self::assertSame('uid|i:7;', $store->get('PHPREDIS_SESSION:x'), 'retried on a new connection');
        $this->admin->hSet('PHPREDIS_SESSION:h', 'f', 'v');
        $this->expectException(StorageException::class);
        $this->expectExceptionMessageMatches('/^Redis GET of PHPREDIS_SESSION:h failed: WRONGTYPE/');
        $store->get('PHPREDIS_SESSION:h');
    }

    /**
     * get() is a plain GET, no script: a user with read-only access to the old keys (`%R~`, redis 7)
     * reads them, which a script would not (Redis checks a script's declared keys as read-write:
     * NOPERM). The SELECT of a database other than 0 travels with it, and an error reply after that
     * SELECT is still an error, never a miss.
     */
    public function testGetNeedsOnlyReadAccessAndCarriesTheSelectOfANewConnection(): void
    {
        $user = 'session-migrate-get-test';
        $this->admin->rawCommand(
            'ACL', 'SETUSER', $user, 'reset', 'on', '>get-test-pw', 'resetkeys', '~p:*', '%R~PHPREDIS_SESSION:*',
            '-@all', '+eval', '+evalsha', '+get', '+set', '+del', '+exists', '+expire', '+select'
        );
        putenv(ConnectionFactory::PASSWORD_ENV . '=get-test-pw');
        try {
            $this->admin->select(3);
            $this->admin->set('PHPREDIS_SESSION:x', 'uid|i:7;');
            $this->admin->hSet('PHPREDIS_SESSION:h', 'f', 'v');
            $store = new SessionStore($this->factory(['username' => $user, 'database' => 3]));
            self::assertSame('uid|i:7;', $store->get('PHPREDIS_SESSION:x'));
            self::assertSame(1, $store->roundTrips(), 'SELECT and GET in one pipeline');
            self::assertFalse($store->get('PHPREDIS_SESSION:none'));
            $store = new SessionStore($this->factory(['username' => $user, 'database' => 3]));
            try {
                $store->get('PHPREDIS_SESSION:h');
                self::fail('a hash read as a session');
            } catch (StorageException $e) {
                self::assertStringStartsWith('Redis GET of PHPREDIS_SESSION:h failed: WRONGTYPE', $e->getMessage());
            }
            try {
                $store->write('PHPREDIS_SESSION:x', 'p:lock:{x}', '', 'v', 60);
                self::fail('the user wrote a key it may only read');
            } catch (StorageException $e) {
                self::assertStringContainsString('NOPERM', $e->getMessage());
            }
        } finally {
            putenv(ConnectionFactory::PASSWORD_ENV);
            $this->admin->flushDB();
            $this->admin->select(0);
            $this->admin->rawCommand('ACL', 'DELUSER', $user);
        }
    }

    public function testWriteAndTouchOnlyWhileTheTokenHoldsTheLockThenRelease(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set(self::LOCK, 'someone-else');
        self::assertSame(SessionStore::LOCK_LOST, $store->write(self::KEY, self::LOCK, 'mine', 'new', 100));
        self::assertSame(0, $this->admin->exists(self::KEY), 'never overwrites');
        self::assertSame(SessionStore::LOCK_LOST, $store->touch(self::KEY, self::LOCK, 'mine', 100));
        self::assertFalse($store->unlock(self::LOCK, 'mine'));
        self::assertSame('someone-else', $this->admin->get(self::LOCK), 'compare-and-delete leaves another lock alone');

        $this->admin->set(self::LOCK, 'mine');
        self::assertSame(SessionStore::DONE, $store->write(self::KEY, self::LOCK, 'mine', 'new', 100));
        self::assertSame('new', $this->admin->get(self::KEY));
        self::assertSame(100, $this->admin->ttl(self::KEY));
        self::assertSame(0, $this->admin->exists(self::LOCK));

        $this->admin->set(self::LOCK, 'mine');
        self::assertSame(SessionStore::DONE, $store->touch(self::KEY, self::LOCK, 'mine', 300));
        self::assertSame(300, $this->admin->ttl(self::KEY));
        self::assertSame('new', $this->admin->get(self::KEY));
        self::assertSame(0, $this->admin->exists(self::LOCK));

        $this->admin->del(self::KEY);
        $this->admin->set(self::LOCK, 'mine');
        self::assertSame(SessionStore::MISSING, $store->touch(self::KEY, self::LOCK, 'mine', 300));
        self::assertSame('mine', $this->admin->get(self::LOCK), 'kept for the write that follows');
    }

    public function testWithoutLockingWritesAreUnconditionalOrNx(): void
    {
        $store = new SessionStore($this->factory());
        self::assertSame(SessionStore::DONE, $store->write(self::KEY, self::LOCK, '', 'a', 100));
        self::assertSame(SessionStore::DONE, $store->write(self::KEY, self::LOCK, '', 'b', 100, true));
        self::assertSame('a', $this->admin->get(self::KEY), 'NX: a newer write wins');
    }

    public function testAWriteAskedToHonourATombstoneWritesNothingForADestroyedSession(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set(self::TOMB, '1');
        $this->admin->set(self::LOCK, 'mine');
        self::assertSame(SessionStore::DESTROYED, $store->write(self::KEY, self::LOCK, 'mine', 'a', 100, false, self::TOMB, true));
        self::assertSame([0, 0], [$this->admin->exists(self::KEY), $this->admin->exists(self::LOCK)], 'nothing written, lock released');
        self::assertSame(SessionStore::DESTROYED, $store->write(self::KEY, self::LOCK, '', 'a', 100, true, self::TOMB, true));
        self::assertSame(SessionStore::DONE, $store->write(self::KEY, self::LOCK, '', 'a', 100), 'not asked: written');
        self::assertSame(SessionStore::DONE, $store->write(self::KEY, self::LOCK, '', 'b', 100, false, self::TOMB, true), 'the key is there: written');
        self::assertSame('b', $this->admin->get(self::KEY));
    }

    public function testDestroyLeavesATombstoneOnlyWhenAskedAndReleasesItsOwnLock(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set(self::KEY, 'v');
        $this->admin->set(self::LOCK, 'mine');
        $store->destroy(self::KEY, self::LOCK, self::TOMB, 'mine', 0);
        self::assertSame([0, 0, 0], [$this->admin->exists(self::KEY), $this->admin->exists(self::LOCK), $this->admin->exists(self::TOMB)]);
        $this->admin->set(self::KEY, 'v');
        $store->destroy(self::KEY, self::LOCK, self::TOMB, 'mine', 60);
        self::assertSame('1', $this->admin->get(self::TOMB));
        self::assertSame(60, $this->admin->ttl(self::TOMB));
    }

    public function testAnErrorReplyIsAStorageExceptionNeverAMiss(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->hSet(self::KEY, 'f', 'v'); // WRONGTYPE for GET
        $this->expectException(StorageException::class);
        $this->expectExceptionMessageMatches('/^Redis READ of p:\{aa\} failed: WRONGTYPE/');
        $store->read(self::KEY, self::TOMB, false);
    }

    public function testADroppedConnectionIsRetriedOnceOnANewOne(): void
    {
        $store = new SessionStore($this->factory());
        $this->admin->set(self::KEY, 'v');
        self::assertSame(['v', false], $store->read(self::KEY, self::TOMB, false));
        $this->admin->rawCommand('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        // phpredis reconnects by itself where it can; where it throws, the store retries once
        self::assertSame(['v', false], $store->read(self::KEY, self::TOMB, false));
        self::assertContains($store->roundTrips(), [2, 3]);
    }

    public function testAnUnreachableServerFailsWithItsAddress(): void
    {
        $store = new SessionStore($this->factory(['port' => 1]));
        $this->expectException(StorageException::class);
        $this->expectExceptionMessageMatches('/^Redis at redis:\/\/127\.0\.0\.1:1\/0: .*refused/i');
        $store->connect();
    }
}

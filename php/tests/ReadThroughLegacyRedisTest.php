<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use SessionMigrate\EncryptedRedisSessionHandler;
use SessionMigrate\Envelope;
use SessionMigrate\LegacyRedisSessions;
use SessionMigrate\LegacySessionFiles;
use SessionMigrate\SessionLock;
use SessionMigrate\SessionStore;
use SessionMigrate\Tests\Support\RedisTestCase;

/**
 * Read-through of the old phpredis keys (LegacyRedisSessions) in the handler's steps, in the order
 * PHP calls them (php-src ext/session/session.c: validateId, read, and on a failed read
 * php_session_abort(), which calls close()), against a real Redis.
 */
final class ReadThroughLegacyRedisTest extends RedisTestCase
{
    private const ID = 'abcdefghijklmnopqrstuvwxyz012345';

    private const LEGACY_PREFIX = 'PHPREDIS_SESSION:';

    private string $dir = '';

    protected function setUp(): void
    {
        parent::setUp();
        $dir = sys_get_temp_dir() . '/sm-rt-legacy-' . bin2hex(random_bytes(6));
        mkdir($dir, 0700);
        $this->dir = $dir;
    }

    protected function tearDown(): void
    {
        if ($this->dir !== '' && is_dir($this->dir)) {
            rmdir($this->dir);
        }
        parent::tearDown();
    }

    /** @param array<string, mixed> $locking SessionLock options */
    private function readThroughHandler(array $locking = []): EncryptedRedisSessionHandler
    {
        $store = new SessionStore($this->factory());
        $legacy = new LegacySessionFiles(
            $this->dir,
            0,
            $this->logger(),
            new LegacyRedisSessions($store, [self::LEGACY_PREFIX], $this->logger())
        );

        return new EncryptedRedisSessionHandler(
            $store,
            new Envelope($this->keys()),
            new SessionLock($locking),
            $legacy,
            $this->logger()
        );
    }

    private function lockName(): string
    {
        return (new Envelope($this->keys()))->lockName(self::ID);
    }

    public function testTheOldKeyIsReadAndNeverWritten(): void
    {
        $this->admin->setex(self::LEGACY_PREFIX . self::ID, 1300, 'uid|i:7;');
        $handler = $this->readThroughHandler();
        self::assertTrue($handler->open('', 'PHPSESSID'));
        self::assertTrue($handler->validateId(self::ID));
        self::assertSame('uid|i:7;', $handler->read(self::ID));
        self::assertTrue($handler->write(self::ID, 'uid|i:7;n|i:1;'));
        self::assertTrue($handler->close());
        self::assertSame('uid|i:7;', $this->admin->get(self::LEGACY_PREFIX . self::ID));
        self::assertLessThanOrEqual(1300, $this->admin->ttl(self::LEGACY_PREFIX . self::ID));
        self::assertSame(0, $this->admin->exists($this->lockName()));
        self::assertCount(1, $this->logs, implode("\n", $this->logs));
        // Names the source it came from (the old key's prefix, "<ID>" as such) and the encrypted key,
        // never the session ID or the value.
        self::assertSame(
            'session-migrate: read-through: took over the old phpredis key ' . self::LEGACY_PREFIX . '<ID> of '
            . (new Envelope($this->keys()))->keyName(self::ID),
            $this->logs[0]
        );
        self::assertStringNotContainsString('uid', $this->logs[0]);
    }

    public function testAFailedReadOfTheOldKeyInValidateIdLeavesNoLock(): void
    {
        // The old key cannot be read (WRONGTYPE here; a connection lost after the lock was taken
        // alike): validateId() answers "exists" (never a new ID because of an error), read() fails,
        // PHP aborts (close()). phpredis's PS_READ_FUNC, whose GET fails after its lock_acquire(),
        // leaves the lock to PS_CLOSE_FUNC's lock_release(): after a failed read no lock is held, and
        // the user's next request does not wait for the lock's TTL.
        $this->admin->hSet(self::LEGACY_PREFIX . self::ID, 'f', 'v');
        $handler = $this->readThroughHandler();
        self::assertTrue($handler->open('', 'PHPSESSID'));
        self::assertTrue($handler->validateId(self::ID), 'an error must not look like an unknown ID');
        self::assertSame(0, $this->admin->exists($this->lockName()), 'the lock validateId() took is released');
        self::assertFalse($handler->read(self::ID), 'read() fails, so session_start() fails');
        $handler->close();
        self::assertSame(0, $this->admin->exists($this->lockName()), 'no lock after the failed read');
        self::assertCount(1, $this->logs, implode("\n", $this->logs));
        self::assertStringContainsString('WRONGTYPE', $this->logs[0]);
        self::assertStringNotContainsString(self::ID, $this->logs[0]);

        // The next request is not kept waiting by a leftover lock: it fails at once the same way.
        $this->logs = [];
        $next = $this->readThroughHandler(['retries' => 0]);
        self::assertTrue($next->open('', 'PHPSESSID'));
        self::assertTrue($next->validateId(self::ID));
        self::assertFalse($next->read(self::ID));
        $next->close();
        self::assertCount(1, $this->logs, implode("\n", $this->logs));
        self::assertStringContainsString('WRONGTYPE', $this->logs[0]);
        self::assertSame(0, $this->admin->exists($this->lockName()));
    }

    public function testAFailedReadOfTheOldKeyInReadLeavesNoLockAfterClose(): void
    {
        // Without strict mode PHP calls read() alone: the lock is taken there, and released by close().
        $this->admin->hSet(self::LEGACY_PREFIX . self::ID, 'f', 'v');
        $handler = $this->readThroughHandler();
        self::assertTrue($handler->open('', 'PHPSESSID'));
        self::assertFalse($handler->read(self::ID));
        $handler->close();
        self::assertSame(0, $this->admin->exists($this->lockName()));
        self::assertCount(1, $this->logs, implode("\n", $this->logs));
        self::assertStringContainsString('WRONGTYPE', $this->logs[0]);
    }
}

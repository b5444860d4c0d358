<?php

declare(strict_types=1);

namespace SessionMigrate\Tests\Support;

use PHPUnit\Framework\TestCase;
use SessionMigrate\ConnectionFactory;
use SessionMigrate\EncryptedRedisSessionHandler;
use SessionMigrate\Envelope;
use SessionMigrate\KeyRing;
use SessionMigrate\SessionLock;
use SessionMigrate\SessionStore;

/**
 * Base of the tests that need a real Redis: SESSION_MIGRATE_TEST_REDIS_PORT names a redis-server on
 * 127.0.0.1 (test/phpunit.test.ts starts one with --save ''); without it these tests are skipped.
 * Each test starts with an empty database.
 */
abstract class RedisTestCase extends TestCase
{
    protected int $port = 0;

    protected \Redis $admin;

    /** @var string[] */
    protected array $logs = [];

    protected function setUp(): void
    {
        $port = (int) getenv('SESSION_MIGRATE_TEST_REDIS_PORT');
        if ($port <= 0) {
            $this->markTestSkipped('SESSION_MIGRATE_TEST_REDIS_PORT is not set (test/phpunit.test.ts sets it)');
        }
        $this->port = $port;
        $this->admin = new \Redis();
        $this->admin->connect('127.0.0.1', $port, 2.0);
        $this->admin->flushDB();
        $this->logs = [];
    }

    protected function tearDown(): void
    {
        if (isset($this->admin)) {
            $this->admin->close();
        }
    }

    /** The master key of docs/envelope-vectors.json as a ring. */
    protected function keys(): KeyRing
    {
        $vectors = sessionMigrateVectors('envelope-vectors.json');

        return KeyRing::fromMasterKeys([(string) base64_decode($vectors['master_key_base64'], true)]);
    }

    /** @param array<string, mixed> $config */
    protected function factory(array $config = []): ConnectionFactory
    {
        return new ConnectionFactory($config + ['host' => '127.0.0.1', 'port' => $this->port, 'persistent' => false], null, $this->logger());
    }

    /** @param array<string, mixed> $locking SessionLock options */
    protected function handler(array $locking = [], ?SessionStore $store = null): EncryptedRedisSessionHandler
    {
        return new EncryptedRedisSessionHandler(
            $store ?? new SessionStore($this->factory()),
            new Envelope($this->keys()),
            new SessionLock($locking),
            null,
            $this->logger()
        );
    }

    protected function logger(): callable
    {
        return function (string $line): void {
            $this->logs[] = $line;
        };
    }
}

<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use SessionMigrate\ConnectionFactory;
use SessionMigrate\StorageException;
use SessionMigrate\Tests\Support\RedisTestCase;

/**
 * AUTH as each phpredis version's path sends it (ConnectionFactory::nodeConnectArguments()): the
 * context 'auth' of connect() for 5.x, \Redis::auth() right after connecting for 6.x (which sends the
 * context's AUTH only before the first command). Both paths run against the real Redis with whatever
 * phpredis is loaded: an accepted ACL user is the user the commands run as, a refused password fails
 * connect() with the server's reply, never the password. The loaded phpredis's own path is the
 * default (no version injected), which the rest of the suite runs.
 */
final class ConnectionAuthTest extends RedisTestCase
{
    private const USER = 'session-migrate-auth-test';

    private const PASSWORD = 'the-auth-test-password';

    private const NOPASS_USER = 'session-migrate-nopass-test';

    protected function setUp(): void
    {
        parent::setUp();
        $this->admin->rawCommand('ACL', 'SETUSER', self::USER, 'reset', 'on', '>' . self::PASSWORD, '~*', '+@all');
    }

    protected function tearDown(): void
    {
        putenv(ConnectionFactory::PASSWORD_ENV);
        if (isset($this->admin)) {
            $this->admin->rawCommand('ACL', 'DELUSER', self::USER, self::NOPASS_USER);
        }
        parent::tearDown();
    }

    /**
     * The 6.x path (auth() after connect()) works with any phpredis; the 5.x path (the context's
     * 'auth') is sound with phpredis 5.x only: 6.x would connect without asking (the bug it fixes).
     *
     * @return array<string, array{0: string}>
     */
    public function versions(): array
    {
        $paths = ['phpredis 6.0.2 path' => ['6.0.2'], 'phpredis 6.1.0 path' => ['6.1.0']];
        if (version_compare((string) phpversion('redis'), '6.0.0', '<')) {
            $paths['phpredis 5.3.7 path'] = ['5.3.7'];
        }

        return $paths;
    }

    /** @dataProvider versions */
    public function testAnAcceptedUserIsTheUserTheCommandsRunAs(string $version): void
    {
        putenv(ConnectionFactory::PASSWORD_ENV . '=' . self::PASSWORD);
        $redis = $this->versionedFactory($version)->connect();
        $this->assertInstanceOf(\Redis::class, $redis);
        $this->assertSame(self::USER, $redis->rawCommand('ACL', 'WHOAMI'));
        $redis->close();
    }

    /** @dataProvider versions */
    public function testARefusedPasswordFailsTheConnectionWithTheServersReply(string $version): void
    {
        putenv(ConnectionFactory::PASSWORD_ENV . '=not-the-password');
        try {
            $this->versionedFactory($version)->connect();
            $this->fail('connect() succeeded with a wrong password');
        } catch (StorageException $e) {
            $this->assertMatchesRegularExpression(
                '/^Redis at redis:\/\/' . self::USER . '@127\.0\.0\.1:\d+\/0: '
                . 'authentication failed \(WRONGPASS [^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD and the ACL user '
                . self::USER . '$/',
                $e->getMessage()
            );
            $this->assertStringNotContainsString('not-the-password', $e->getMessage());
            $this->assertNotSame(ConnectionFactory::CONNECT_FAILED, $e->getCode());
        }
    }

    /**
     * An ACL user without SESSION_MIGRATE_REDIS_PASSWORD (unset or empty) is sent an empty password,
     * AUTH <user> "" (ConnectionFactory::auth(), as the CLI): a nopass user is the user the commands
     * run as, never `default` (whose rule here would let them run too).
     *
     * @dataProvider versions
     */
    public function testANopassUserWithoutThePasswordVariableIsTheUserTheCommandsRunAs(string $version): void
    {
        $this->admin->rawCommand('ACL', 'SETUSER', self::NOPASS_USER, 'reset', 'on', 'nopass', '~*', '+@all');
        foreach ([null, ''] as $password) {
            putenv(ConnectionFactory::PASSWORD_ENV . ($password === null ? '' : '=' . $password));
            $redis = $this->versionedFactory($version, self::NOPASS_USER)->connect();
            $this->assertSame(self::NOPASS_USER, $redis->rawCommand('ACL', 'WHOAMI'));
            $redis->close();
        }
    }

    /**
     * A user with a password and the variable unset or empty: Redis refuses AUTH <user> "" (WRONGPASS),
     * and the message names the server, the user and the variable.
     *
     * @dataProvider versions
     */
    public function testAUserWithAPasswordAndTheVariableUnsetIsRefusedNamingTheVariable(string $version): void
    {
        foreach (['' => 'is empty', 'unset' => 'is not set'] as $password => $why) {
            putenv(ConnectionFactory::PASSWORD_ENV . ($password === 'unset' ? '' : '=' . $password));
            try {
                $this->versionedFactory($version)->connect();
                $this->fail('connect() succeeded without the password');
            } catch (StorageException $e) {
                $this->assertMatchesRegularExpression(
                    '/^Redis at redis:\/\/' . self::USER . '@127\.0\.0\.1:\d+\/0: authentication failed '
                    . '\(WRONGPASS [^)]*\): SESSION_MIGRATE_REDIS_PASSWORD ' . $why . ', and ACL user ' . self::USER
                    . ' needs a password \(only a nopass user connects without one\)$/',
                    $e->getMessage()
                );
                $this->assertNotSame(ConnectionFactory::CONNECT_FAILED, $e->getCode());
            }
        }
    }

    private function versionedFactory(string $version, string $user = self::USER): ConnectionFactory
    {
        $config = ['host' => '127.0.0.1', 'port' => $this->port, 'persistent' => false];
        $config['username'] = $user;

        return new ConnectionFactory($config, null, $this->logger(), $version);
    }
}

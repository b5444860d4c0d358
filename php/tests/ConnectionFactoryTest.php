<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use PHPUnit\Framework\TestCase;
use SessionMigrate\ConnectionFactory;
use SessionMigrate\SentinelMasterLocator;

/**
 * ConnectionFactory without a server: persistent IDs, TLS options, messages, when SELECT is needed.
 */
final class ConnectionFactoryTest extends TestCase
{
    /** @param array<string, mixed> $config */
    private static function factory(array $config = []): ConnectionFactory
    {
        return new ConnectionFactory($config + ['host' => 'redis.internal', 'port' => 6379]);
    }

    public function testThePersistentIdCoversHostPortDatabaseUserAndTls(): void
    {
        $base = self::factory()->persistentId('redis.internal', 6379);
        self::assertMatchesRegularExpression('/^session-migrate:[0-9a-f]{16}$/', $base);
        self::assertSame($base, self::factory()->persistentId('redis.internal', 6379));
        $different = [
            self::factory()->persistentId('other.internal', 6379),
            self::factory()->persistentId('redis.internal', 6380),
            self::factory(['database' => 1])->persistentId('redis.internal', 6379),
            self::factory(['username' => 'sessions'])->persistentId('redis.internal', 6379),
            self::factory(['tls' => []])->persistentId('redis.internal', 6379),
            self::factory(['tls' => ['caFile' => '/etc/ca.pem']])->persistentId('redis.internal', 6379),
            self::factory(['tls' => ['serverName' => 'x']])->persistentId('redis.internal', 6379),
        ];
        self::assertCount(count($different), array_unique($different));
        self::assertNotContains($base, $different);
    }

    /**
     * phpredis 5.x takes the credentials in connect()'s context; 6.x only sends those before the first
     * command, so the handler sends them itself with auth() right after connecting (redis.c
     * redis_connect() and library.c redis_sock_server_open() of each version).
     */
    public function testNodeConnectArgumentsPerPhpredisVersion(): void
    {
        $ssl = ['verify_peer' => true, 'cafile' => '/etc/ca.pem'];
        $this->assertSame([['auth' => ['pw']], null], ConnectionFactory::nodeConnectArguments(null, ['pw'], '5.3.7'));
        $this->assertSame(
            [['stream' => $ssl, 'auth' => ['app', 'pw']], null],
            ConnectionFactory::nodeConnectArguments($ssl, ['app', 'pw'], '5.3.7')
        );
        foreach (['6.0.0', '6.0.2', '6.1.0', '6.2.0'] as $version) {
            $this->assertSame([[], ['pw']], ConnectionFactory::nodeConnectArguments(null, ['pw'], $version));
            $this->assertSame(
                [['stream' => $ssl], ['app', 'pw']],
                ConnectionFactory::nodeConnectArguments($ssl, ['app', 'pw'], $version)
            );
        }
        $this->assertSame([[], null], ConnectionFactory::nodeConnectArguments(null, null, '6.1.0'));
        $this->assertSame([['stream' => $ssl], null], ConnectionFactory::nodeConnectArguments($ssl, null, '5.3.7'));
    }

    /**
     * One rule decides "phpredis 6 or later" for both version-shaped calls: ConnectionFactory's
     * connect() context and RedisSentinel's constructor (SentinelMasterLocator::sentinelArguments()).
     * version_compare() order: a 6.0 pre-release is still 5.x-shaped.
     */
    public function testOneRuleDecidesPhpredis6OrLaterForNodesAndSentinels(): void
    {
        $cases = ['5.3.7' => false, '5.99.99' => false, '6.0.0RC1' => false, '6.0.0' => true, '6.0.2' => true,
            '6.1.0' => true, '7.0.0' => true];
        foreach ($cases as $version => $six) {
            $version = (string) $version;
            self::assertSame($six, ConnectionFactory::isPhpredis6OrLater($version), $version);
            [, $authLater] = ConnectionFactory::nodeConnectArguments(null, ['pw'], $version);
            self::assertSame($six, $authLater !== null, $version);
            $sentinel = SentinelMasterLocator::sentinelArguments('s1', 26379, 0.5, null, null, $version);
            self::assertSame($six, count($sentinel) === 1 && is_array($sentinel[0]), $version);
        }
    }

    public function testCapturesTheWarningsOfNativeCallsOnly(): void
    {
        $seenOutside = [];
        set_error_handler(static function (int $type, string $message) use (&$seenOutside): bool {
            $seenOutside[] = $message;
            return true;
        });
        try {
            $warnings = [];
            $result = ConnectionFactory::capturingWarnings($warnings, static function () {
                // A native function's warning (as phpredis's connection warnings): captured.
                $handle = fopen('/nonexistent-session-migrate-dir/file', 'r');
                // A defect in PHP code: reported as usual, to the handler that was there before.
                $missing = [];
                return [$handle, $missing['key']];
            });
        } finally {
            restore_error_handler();
        }
        self::assertSame([false, null], $result);
        self::assertCount(1, $warnings);
        self::assertStringStartsWith('fopen(/nonexistent-session-migrate-dir/file): Failed to open stream', $warnings[0]);
        self::assertSame(['Undefined array key "key"'], $seenOutside);
    }

    public function testTlsAlwaysVerifiesThePeer(): void
    {
        $options = self::factory(['tls' => ['caFile' => '/ca.pem', 'certFile' => '/c.pem', 'keyFile' => '/k.pem', 'serverName' => 'r']])->sslOptions();
        self::assertSame([
            'verify_peer' => true, 'verify_peer_name' => true, 'allow_self_signed' => false,
            'cafile' => '/ca.pem', 'local_cert' => '/c.pem', 'local_pk' => '/k.pem', 'peer_name' => 'r',
        ], $options);
        self::assertSame(['verify_peer' => true, 'verify_peer_name' => true, 'allow_self_signed' => false], self::factory(['tls' => []])->sslOptions());
    }

    public function testDescribeNamesTheServerNeverAPassword(): void
    {
        putenv('SESSION_MIGRATE_REDIS_PASSWORD=s3cret-pw');
        try {
            self::assertSame('Redis at rediss://app@redis.internal:6379/2', self::factory(['tls' => [], 'username' => 'app', 'database' => 2])->describe());
            self::assertSame('Redis Cluster redis://a:1,b:2', self::factory(['topology' => 'cluster', 'seeds' => [['host' => 'a', 'port' => 1], ['host' => 'b', 'port' => 2]]])->describe());
            self::assertSame('NOAUTH *** rejected', ConnectionFactory::redact("NOAUTH s3cret-pw rejected\nsecond line"));
        } finally {
            putenv('SESSION_MIGRATE_REDIS_PASSWORD');
        }
    }

    public function testRedactMasksThePasswordOnlyAsATokenOfItsOwn(): void
    {
        putenv('SESSION_MIGRATE_REDIS_PASSWORD=b');
        try {
            self::assertSame('disabled: ***', ConnectionFactory::redact('disabled: b'));
        } finally {
            putenv('SESSION_MIGRATE_REDIS_PASSWORD');
        }
    }

    public function testSelectIsNeededForADatabaseOrAPoolSharedWithTheApplication(): void
    {
        $pooling = ini_get('redis.pconnect.pooling_enabled');
        $pattern = ini_get('redis.pconnect.pool_pattern');
        try {
            ini_set('redis.pconnect.pooling_enabled', '1');
            ini_set('redis.pconnect.pool_pattern', '');
            self::assertTrue(self::factory(['database' => 3, 'persistent' => false])->needsSelect());
            self::assertFalse(self::factory(['persistent' => false])->needsSelect());
            self::assertTrue(self::factory()->needsSelect(), 'phpredis pools by host and port only');
            self::assertFalse(self::factory()->ownsItsConnections());
            self::assertTrue(self::factory(['persistent' => false])->ownsItsConnections());
            ini_set('redis.pconnect.pool_pattern', 'i');
            self::assertTrue(self::factory()->ownsItsConnections(), 'the persistent ID names the pool');
            self::assertFalse(self::factory()->needsSelect());
            self::assertTrue(self::factory(['database' => 2])->needsSelect(), 'a new connection starts on database 0');
            self::assertFalse(self::factory(['topology' => 'cluster', 'seeds' => [['host' => 'a', 'port' => 1]]])->needsSelect());
        } finally {
            ini_set('redis.pconnect.pooling_enabled', (string) $pooling);
            ini_set('redis.pconnect.pool_pattern', (string) $pattern);
        }
    }

    /** @return iterable<string, array{array<string, mixed>}> */
    public function badConfigurations(): iterable
    {
        yield 'unknown topology' => [['topology' => 'ring']];
        yield 'cluster without seeds' => [['topology' => 'cluster', 'seeds' => []]];
        yield 'sentinel without sentinels' => [['topology' => 'sentinel', 'masterName' => 'm']];
        yield 'sentinel without master name' => [['topology' => 'sentinel', 'sentinels' => [['host' => 's', 'port' => 1]]]];
    }

    /**
     * @dataProvider badConfigurations
     * @param array<string, mixed> $config
     */
    public function testRefusesConfigurationsThatCannotWork(array $config): void
    {
        $this->expectException(\InvalidArgumentException::class);
        self::factory($config);
    }
}

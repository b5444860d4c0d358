<?php

declare(strict_types=1);

namespace SessionMigrate\Tests;

use PHPUnit\Framework\TestCase;
use SessionMigrate\KeyRing;
use SessionMigrate\SentinelMasterLocator;
use SessionMigrate\StorageException;

/**
 * The Sentinel master cache: an authentic cache file is used without asking a sentinel; a planted or
 * stale one is not followed; forget() asks the sentinels again. The sentinel here is unreachable
 * (port 1), so "asked" shows as the StorageException that lists it.
 */
final class SentinelMasterLocatorTest extends TestCase
{
    private string $tmp;

    private KeyRing $keys;

    /** @var array<string, mixed> */
    private array $config = ['sentinels' => [['host' => '127.0.0.1', 'port' => 1]], 'masterName' => 'sessions', 'timeout' => 0.5, 'database' => 0];

    protected function setUp(): void
    {
        $this->tmp = sys_get_temp_dir();
        $this->keys = KeyRing::fromText(sessionMigrateVectors('keyring-vectors.json')['valid'][0]['text'], 'vector');
        foreach ((array) glob($this->tmp . '/session-migrate-sentinel-*') as $f) {
            unlink((string) $f);
        }
    }

    protected function tearDown(): void
    {
        foreach ((array) glob($this->tmp . '/session-migrate-sentinel-*') as $f) {
            unlink((string) $f);
        }
    }

    private function cacheFile(): string
    {
        $identity = (string) json_encode([$this->config['sentinels'], 'sessions', 0]);

        return rtrim($this->tmp, '/') . '/session-migrate-sentinel-' . substr(hash('sha256', $identity), 0, 16);
    }

    /**
     * The cache line format, authenticated as SentinelMasterLocator writes it for the sentinel
     * credentials $auth (null: none; a password; [user, password]).
     *
     * @param string|array{0: string, 1: string}|null $auth
     */
    private function plant(string $host, int $port, ?string $mac = null, $auth = null): void
    {
        $mac = $mac ?? bin2hex(sodium_crypto_generichash(
            "session-migrate sentinel master\nsessions\n" . $host . "\n" . $port . "\n" . json_encode($auth),
            $this->keys->purposeKey(100),
            16
        ));
        file_put_contents($this->cacheFile(), sprintf("%s\n%d\n%s\n", $host, $port, $mac));
    }

    /**
     * RedisSentinel's constructor per phpredis version (redis_sentinel.c of 5.3.7, 6.0.2, 6.1.0): the
     * options array of 6.x, with TLS and [user, password]; the positional arguments of 5.x, with no 7th
     * argument at all without a password.
     */
    public function testSentinelArgumentsPerPhpredisVersion(): void
    {
        $ssl = ['verify_peer' => true, 'cafile' => '/etc/ca.pem'];
        foreach (['6.0.0', '6.0.2', '6.1.0'] as $version) {
            $this->assertSame(
                [['host' => 's1', 'port' => 26379, 'connectTimeout' => 0.5, 'readTimeout' => 0.5]],
                SentinelMasterLocator::sentinelArguments('s1', 26379, 0.5, null, null, $version)
            );
            $this->assertSame(
                [['host' => 'tls://s1', 'port' => 26379, 'connectTimeout' => 0.5, 'readTimeout' => 0.5,
                    'auth' => ['user', 'pw'], 'ssl' => $ssl]],
                SentinelMasterLocator::sentinelArguments('s1', 26379, 0.5, ['user', 'pw'], $ssl, $version)
            );
        }
        $this->assertSame(
            ['s1', 26379, 0.5, null, 0, 0.5],
            SentinelMasterLocator::sentinelArguments('s1', 26379, 0.5, null, null, '5.3.7')
        );
        $this->assertSame(
            ['s1', 26379, 0.5, null, 0, 0.5, 'pw'],
            SentinelMasterLocator::sentinelArguments('s1', 26379, 0.5, 'pw', null, '5.3.7')
        );
        $this->assertSame(
            ['s1', 26379, 0.5, null, 0, 0.5, ['user', 'pw']],
            SentinelMasterLocator::sentinelArguments('s1', 26379, 0.5, ['user', 'pw'], null, '5.3.7')
        );
    }

    public function testAnAuthenticCacheIsUsedWithoutAskingASentinel(): void
    {
        $this->plant('10.0.0.9', 6390);
        $locator = new SentinelMasterLocator($this->config, null, $this->keys);
        self::assertSame(['10.0.0.9', 6390], $locator->master());
    }

    public function testACacheOlderThanItsMaxAgeIsNotTaken(): void
    {
        // After a fail-over the old master may still answer as a master: an old answer is asked again.
        $this->plant('10.0.0.9', 6390);
        touch($this->cacheFile(), time() - SentinelMasterLocator::CACHE_MAX_AGE - 1);
        clearstatcache();
        $this->expectException(StorageException::class);
        $this->expectExceptionMessageMatches('/^Sentinel: no master for "sessions" \(127\.0\.0\.1:1 /');
        (new SentinelMasterLocator($this->config, null, $this->keys))->master();
    }

    public function testACacheGotWithOtherSentinelCredentialsIsNotTaken(): void
    {
        $this->plant('10.0.0.9', 6390, null, ['sentinel-user', 'the-right-one']);
        putenv('SESSION_MIGRATE_SENTINEL_USERNAME=sentinel-user');
        putenv('SESSION_MIGRATE_SENTINEL_PASSWORD=the-right-one');
        try {
            $locator = new SentinelMasterLocator($this->config, null, $this->keys);
            self::assertSame(['10.0.0.9', 6390], $locator->master());
            putenv('SESSION_MIGRATE_SENTINEL_PASSWORD=a-wrong-one');
            $other = new SentinelMasterLocator($this->config, null, $this->keys);
            try {
                $other->master();
                self::fail('a cached answer was taken with other credentials');
            } catch (StorageException $e) {
                self::assertStringStartsWith('Sentinel: no master for "sessions" (127.0.0.1:1 ', $e->getMessage());
            }
            // the user without its password is asked as [user, ''] (AUTH <user> ""): other credentials too
            putenv('SESSION_MIGRATE_SENTINEL_PASSWORD');
            $this->expectException(StorageException::class);
            $this->expectExceptionMessageMatches('/^Sentinel: no master for "sessions" \(127\.0\.0\.1:1 /');
            (new SentinelMasterLocator($this->config, null, $this->keys))->master();
        } finally {
            putenv('SESSION_MIGRATE_SENTINEL_USERNAME');
            putenv('SESSION_MIGRATE_SENTINEL_PASSWORD');
        }
    }

    public function testAPlantedCacheIsNeverFollowed(): void
    {
        $this->plant('attacker.example', 6379, str_repeat('0', 32));
        $locator = new SentinelMasterLocator($this->config, null, $this->keys);
        $this->expectException(StorageException::class);
        $this->expectExceptionMessageMatches('/^Sentinel: no master for "sessions" \(127\.0\.0\.1:1 /');
        $locator->master();
    }

    public function testWithoutKeysNothingIsCachedOrRead(): void
    {
        $this->plant('10.0.0.9', 6390);
        $locator = new SentinelMasterLocator($this->config, null, null);
        $this->expectException(StorageException::class);
        $locator->master();
    }

    public function testForgetAsksTheSentinelsAgainWhateverTheCacheSays(): void
    {
        $this->plant('10.0.0.9', 6390);
        $locator = new SentinelMasterLocator($this->config, null, $this->keys);
        self::assertSame(['10.0.0.9', 6390], $locator->master());
        $locator->forget();
        $this->expectException(StorageException::class);
        $locator->master();
    }
}

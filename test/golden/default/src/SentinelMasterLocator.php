<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * Finds the current master of a Redis Sentinel deployment (SENTINEL get-master-addr-by-name, asked of
 * each sentinel in turn until one answers; https://redis.io/docs/management/sentinel/) and caches the
 * answer, so a request does not ask a sentinel at all:
 *
 *   - in the object, for the rest of the request;
 *   - in a small file in the system temporary directory, shared by the PHP workers of the host, until
 *     a connection error or a READONLY reply says the master moved (ConnectionFactory::forgetServer(),
 *     then one retry). PHP keeps no user state from one request to the next, so this file is what lets
 *     a worker keep the master "for its lifetime". Its contents are authenticated with a key derived
 *     from the lookup key (KeyRing::purposeKey()), so a file planted by another local user is ignored
 *     rather than followed to the planter's server.
 *
 * RedisSentinel takes positional arguments in phpredis 5.x (host, port, timeout, persistent,
 * retry_interval, read_timeout, auth) and one options array in 6.x (redis_sentinel.c of each
 * version); both are supported. phpredis 5.x has no TLS for RedisSentinel, so with TLS there the
 * sentinel is asked through \Redis::rawCommand() over a verified TLS connection instead.
 */
final class SentinelMasterLocator
{
    /** KeyRing::purposeKey() ID of the cache authentication key. */
    private const CACHE_KEY_PURPOSE = 100;

    /** @var array<int, array{host: string, port: int}> */
    private array $sentinels;

    private string $masterName;

    private float $timeout;

    /** @var array<string, mixed>|null stream context SSL options; null without TLS */
    private ?array $ssl;

    private ?KeyRing $keys;

    /** @var callable(string): void */
    private $logger;

    /** @var array{0: string, 1: int}|null */
    private ?array $master = null;

    /** True after forget(): the next master() asks the sentinels, whatever the cache file says. */
    private bool $stale = false;

    private string $cacheFile;

    /**
     * @param array<string, mixed>      $config ConnectionFactory's configuration (sentinels, masterName,
     *                                          timeout, database)
     * @param array<string, mixed>|null $ssl    ConnectionFactory::sslOptions() with TLS, else null
     * @param KeyRing|null              $keys   authenticates the cache file; without it nothing is
     *                                          cached beyond the request
     */
    public function __construct(array $config, ?array $ssl, ?KeyRing $keys = null, ?callable $logger = null)
    {
        $this->sentinels = [];
        foreach ($config['sentinels'] as $sentinel) {
            $this->sentinels[] = ['host' => (string) $sentinel['host'], 'port' => (int) $sentinel['port']];
        }
        $this->masterName = (string) $config['masterName'];
        $this->timeout = (float) ($config['timeout'] ?? 2.5);
        $this->ssl = $ssl;
        $this->keys = $keys;
        $this->logger = $logger ?? static function (string $message): void {
            error_log($message);
        };
        $identity = (string) json_encode([$this->sentinels, $this->masterName, $config['database'] ?? 0]);
        $this->cacheFile = rtrim(sys_get_temp_dir(), '/') . '/session-migrate-sentinel-'
            . substr(hash('sha256', $identity), 0, 16);
    }

    /**
     * The master's address.
     *
     * @return array{0: string, 1: int} host and port
     *
     * @throws StorageException when no sentinel answers, or none knows a master of that name
     */
    public function master(): array
    {
        if ($this->master !== null) {
            return $this->master;
        }
        if (!$this->stale) {
            $cached = $this->readCache();
            if ($cached !== null) {
                return $this->master = $cached;
            }
        }
        $this->master = $this->ask();
        $this->stale = false;
        $this->writeCache($this->master);

        return $this->master;
    }

    /** The master moved (or may have): the next master() asks the sentinels again. */
    public function forget(): void
    {
        $this->master = null;
        $this->stale = true;
    }

    /**
     * @return array{0: string, 1: int}
     *
     * @throws StorageException
     */
    private function ask(): array
    {
        $reasons = [];
        foreach ($this->sentinels as $sentinel) {
            $where = $sentinel['host'] . ':' . $sentinel['port'];
            $warnings = [];
            try {
                $answer = ConnectionFactory::capturingWarnings($warnings, function () use ($sentinel) {
                    return $this->askOne($sentinel['host'], $sentinel['port']);
                });
            } catch (\RedisException $e) {
                $detail = $warnings !== [] ? implode('; ', $warnings) : $e->getMessage();
                $reasons[] = $where . ' ' . ConnectionFactory::redact($detail);
                continue;
            }
            if (is_array($answer) && count($answer) === 2 && is_string($answer[0])) {
                if (preg_match('/\A\d{1,5}\z/', (string) $answer[1]) === 1) {
                    return [$answer[0], (int) $answer[1]];
                }
            }
            $reasons[] = $where . ' knows no master named "' . $this->masterName . '"';
        }
        throw new StorageException(sprintf(
            'Sentinel: no master for "%s" (%s)',
            $this->masterName,
            implode('; ', $reasons)
        ));
    }

    /**
     * @return mixed the reply: [host, port], or false/null when the sentinel knows no such master
     *
     * @throws \RedisException when the sentinel cannot be reached
     */
    private function askOne(string $host, int $port)
    {
        $password = getenv(ConnectionFactory::SENTINEL_PASSWORD_ENV);
        $auth = is_string($password) && $password !== '' ? $password : null;
        $ssl = $this->ssl;
        $modern = version_compare((string) phpversion('redis'), '6.0.0', '>=');
        if ($ssl !== null && !$modern) {
            $redis = new \Redis();
            $context = ['stream' => $ssl];
            if ($auth !== null) {
                $context['auth'] = [$auth];
            }
            if (!$redis->connect('tls://' . $host, $port, $this->timeout, null, 0, $this->timeout, $context)) {
                throw new \RedisException('cannot connect');
            }
            try {
                return $redis->rawCommand('SENTINEL', 'get-master-addr-by-name', $this->masterName);
            } finally {
                $redis->close();
            }
        }
        if ($modern) {
            $options = ['host' => ($ssl !== null ? 'tls://' : '') . $host, 'port' => $port,
                'connectTimeout' => $this->timeout, 'readTimeout' => $this->timeout];
            if ($auth !== null) {
                $options['auth'] = $auth;
            }
            if ($ssl !== null) {
                $options['ssl'] = $ssl;
            }
            $sentinel = new \RedisSentinel($options);
        } else {
            /** @psalm-suppress TooManyArguments phpredis 5.x signature */
            $sentinel = new \RedisSentinel($host, $port, $this->timeout, null, 0, $this->timeout, $auth);
        }

        return $sentinel->getMasterAddrByName($this->masterName);
    }

    /** @return array{0: string, 1: int}|null the cached master; null when none or not authentic */
    private function readCache(): ?array
    {
        if ($this->keys === null) {
            return null;
        }
        $text = @file_get_contents($this->cacheFile, false, null, 0, 512);
        if (!is_string($text) || preg_match('/\A([^\s]{1,255})\n(\d{1,5})\n([0-9a-f]{32})\n\z/', $text, $m) !== 1) {
            return null;
        }
        if (!hash_equals($this->mac($m[1], (int) $m[2]), $m[3])) {
            return null;
        }

        return [$m[1], (int) $m[2]];
    }

    /** @param array{0: string, 1: int} $master */
    private function writeCache(array $master): void
    {
        if ($this->keys === null || preg_match('/\A[^\s]{1,255}\z/', $master[0]) !== 1) {
            return;
        }
        $text = sprintf("%s\n%d\n%s\n", $master[0], $master[1], $this->mac($master[0], $master[1]));
        $temp = $this->cacheFile . '.' . bin2hex(random_bytes(6));
        if (@file_put_contents($temp, $text) === strlen($text) && @rename($temp, $this->cacheFile)) {
            return;
        }
        @unlink($temp);
        ($this->logger)(sprintf(
            'session-migrate: cannot cache the Sentinel master in %s; asking Sentinel per request',
            $this->cacheFile
        ));
    }

    private function mac(string $host, int $port): string
    {
        return bin2hex(sodium_crypto_generichash(
            "session-migrate sentinel master\n" . $this->masterName . "\n" . $host . "\n" . $port,
            $this->keys !== null ? $this->keys->purposeKey(self::CACHE_KEY_PURPOSE) : '',
            16
        ));
    }
}

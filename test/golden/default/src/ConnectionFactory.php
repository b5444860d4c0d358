<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * Opens the handler's own phpredis connection, as the generated bootstrap's configuration says:
 *
 *   topology    'standalone' (\Redis), 'cluster' (\RedisCluster, seeds) or 'sentinel' (\RedisSentinel
 *               finds the master, then \Redis to it; see SentinelMasterLocator)
 *   host, port  the node (standalone; a host starting with '/' is a unix socket)
 *   database    SELECT index (standalone and sentinel; a cluster has database 0 only)
 *   username    Redis 6 ACL user; the password comes from SESSION_MIGRATE_REDIS_PASSWORD
 *   timeout     connect and read timeout in seconds
 *   persistent  pconnect (default): one connection per PHP-FPM worker, reused by its requests
 *   tls         null, or ['caFile' => ?, 'certFile' => ?, 'keyFile' => ?, 'serverName' => ?]: TLS through
 *               phpredis's stream context, always with peer verification (caFile null = system CAs)
 *   seeds       cluster: list of ['host' => ..., 'port' => ...]
 *   sentinels   sentinel: list of ['host' => ..., 'port' => ...]; masterName: the monitored master;
 *               the sentinels' password comes from SESSION_MIGRATE_SENTINEL_PASSWORD
 *
 * Persistent connections carry a persistent ID that covers everything that makes a connection
 * different (host, port, database, user, TLS settings), so two configurations never share one; see
 * persistentId(). Every client is raw: no serializer, no compression, no key prefix (the values are
 * binary envelopes and the key names are computed by Envelope).
 *
 * Sources: phpredis README (connect/pconnect arguments and the context array), redis.c and
 * library.c of phpredis 5.3.7 / 6.0 (redis_connect, redis_sock_connect, persistent pools),
 * redis_cluster.c (RedisCluster::__construct), redis_sentinel.c (RedisSentinel::__construct).
 */
final class ConnectionFactory
{
    public const PASSWORD_ENV = 'SESSION_MIGRATE_REDIS_PASSWORD';
    public const SENTINEL_PASSWORD_ENV = 'SESSION_MIGRATE_SENTINEL_PASSWORD';

    /** StorageException code: the connection could not be made (as opposed to a failed command). */
    public const CONNECT_FAILED = 1;

    private const TOPOLOGIES = ['standalone', 'cluster', 'sentinel'];

    /** @var array<string, mixed> */
    private array $config;

    private ?SentinelMasterLocator $sentinel = null;

    /**
     * @param array<string, mixed> $config   see the class comment
     * @param KeyRing|null         $keys     sentinel only: authenticates the master address cache
     * @param callable|null        $logger   receives one line per problem (sentinel fail-over notes)
     *
     * @throws \InvalidArgumentException for a configuration that cannot work (unknown topology, no
     *                                   seeds for a cluster, no sentinels or master name)
     */
    public function __construct(array $config, ?KeyRing $keys = null, ?callable $logger = null)
    {
        $topology = $config['topology'] ?? 'standalone';
        if (!in_array($topology, self::TOPOLOGIES, true)) {
            throw new \InvalidArgumentException(
                sprintf('session-migrate: unknown Redis topology "%s"', (string) $topology)
            );
        }
        $config['topology'] = $topology;
        $config['port'] = (int) ($config['port'] ?? 6379);
        $config['database'] = (int) ($config['database'] ?? 0);
        $config['username'] = (string) ($config['username'] ?? '');
        $config['timeout'] = (float) ($config['timeout'] ?? 2.5);
        $config['persistent'] = (bool) ($config['persistent'] ?? true);
        $config['tls'] = isset($config['tls']) && is_array($config['tls']) ? $config['tls'] : null;
        if ($topology === 'cluster' && ($config['seeds'] ?? []) === []) {
            throw new \InvalidArgumentException('session-migrate: a Redis Cluster needs at least one seed');
        }
        $this->config = $config;
        if ($topology === 'sentinel') {
            if (($config['sentinels'] ?? []) === [] || (string) ($config['masterName'] ?? '') === '') {
                throw new \InvalidArgumentException('session-migrate: Sentinel needs sentinels and a master name');
            }
            $ssl = $config['tls'] !== null ? $this->sslOptions() : null;
            $this->sentinel = new SentinelMasterLocator($config, $ssl, $keys, $logger);
        }
    }

    /** 'standalone', 'cluster' or 'sentinel'. */
    public function topology(): string
    {
        return $this->config['topology'];
    }

    /**
     * Connects (or, when persistent, reuses this worker's connection).
     *
     * @return \Redis|\RedisCluster
     *
     * @throws StorageException naming the server and phpredis's reason (never the password)
     */
    public function connect()
    {
        try {
            if ($this->config['topology'] === 'cluster') {
                return $this->connectCluster();
            }
            if ($this->sentinel !== null) {
                [$host, $port] = $this->sentinel->master();

                return $this->connectNode($host, $port);
            }

            return $this->connectNode((string) $this->config['host'], $this->config['port']);
        } catch (\RedisException | \RedisClusterException $e) {
            $message = $this->describe() . ': ' . self::redact($e->getMessage());
            throw new StorageException($message, self::CONNECT_FAILED, $e);
        }
    }

    /**
     * Called after a connection error or a READONLY reply, before the one retry: with Sentinel, the
     * cached master is forgotten and asked again (a fail-over moved it).
     */
    public function forgetServer(): void
    {
        if ($this->sentinel !== null) {
            $this->sentinel->forget();
        }
    }

    /**
     * Whether every session command must be preceded by SELECT database: the database is not 0, or
     * the connection is persistent and may come from phpredis's shared pool (with
     * redis.pconnect.pooling_enabled=1 and a pool_pattern without 'i', phpredis pools connections
     * by host and port only, so the application's own pconnect() to the same server, on another
     * database, can hand its connection to the handler).
     */
    public function needsSelect(): bool
    {
        if ($this->config['topology'] === 'cluster') {
            return false;
        }
        if ($this->config['database'] !== 0) {
            return true;
        }
        if (!$this->config['persistent']) {
            return false;
        }
        $pooling = (string) ini_get('redis.pconnect.pooling_enabled');

        $pattern = (string) ini_get('redis.pconnect.pool_pattern');

        return $pooling !== '' && $pooling !== '0' && strpos($pattern, 'i') === false;
    }

    /** The SELECT index. */
    public function database(): int
    {
        return $this->config['database'];
    }

    /**
     * Persistent ID of this configuration's connections: 'session-migrate:' and 16 hex characters of
     * SHA-256 over host, port, database, user, TLS settings (and the seeds or sentinels), so a
     * connection made for one of them is never reused for another.
     */
    public function persistentId(string $host = '', int $port = 0): string
    {
        $c = $this->config;
        $identity = [
            $c['topology'], $host, $port, $c['database'], $c['username'], $c['tls'],
            $c['seeds'] ?? null, $c['sentinels'] ?? null, $c['masterName'] ?? null,
        ];

        return 'session-migrate:' . substr(hash('sha256', (string) json_encode($identity)), 0, 16);
    }

    /**
     * The stream context options of TLS: peer verification always on, the plan's CA, client
     * certificate and server name (PHP manual, "SSL context options").
     *
     * @return array<string, mixed>
     */
    public function sslOptions(): array
    {
        $tls = $this->config['tls'] ?? [];
        $options = ['verify_peer' => true, 'verify_peer_name' => true, 'allow_self_signed' => false];
        if (($tls['caFile'] ?? '') !== '') {
            $options['cafile'] = $tls['caFile'];
        }
        if (($tls['certFile'] ?? '') !== '') {
            $options['local_cert'] = $tls['certFile'];
        }
        if (($tls['keyFile'] ?? '') !== '') {
            $options['local_pk'] = $tls['keyFile'];
        }
        if (($tls['serverName'] ?? '') !== '') {
            $options['peer_name'] = $tls['serverName'];
        }

        return $options;
    }

    /** Names the server for error messages: topology, address, database and user, never a password. */
    public function describe(): string
    {
        $c = $this->config;
        $scheme = $c['tls'] !== null ? 'rediss' : 'redis';
        $user = $c['username'] !== '' ? $c['username'] . '@' : '';
        if ($c['topology'] === 'cluster') {
            return sprintf('Redis Cluster %s://%s%s', $scheme, $user, self::addresses($c['seeds']));
        }
        if ($c['topology'] === 'sentinel') {
            return sprintf(
                'Redis master "%s" from Sentinel %s (%s://%s..., db %d)',
                (string) $c['masterName'],
                self::addresses($c['sentinels']),
                $scheme,
                $user,
                $c['database']
            );
        }
        $host = (string) $c['host'];
        if ($host !== '' && $host[0] === '/') {
            $as = $user !== '' ? ', user ' . $c['username'] : '';

            return sprintf('Redis at unix:%s (db %d%s)', $host, $c['database'], $as);
        }

        return sprintf('Redis at %s://%s%s:%d/%d', $scheme, $user, $host, $c['port'], $c['database']);
    }

    /**
     * One node (standalone, or the master Sentinel named).
     *
     * @throws \RedisException|StorageException
     */
    private function connectNode(string $host, int $port): \Redis
    {
        $c = $this->config;
        $isSocket = $host !== '' && $host[0] === '/';
        $context = [];
        if ($c['tls'] !== null) {
            $context['stream'] = $this->sslOptions();
        }
        $auth = $this->auth(self::PASSWORD_ENV);
        if ($auth !== null) {
            $context['auth'] = $auth;
        }
        $address = $c['tls'] !== null && !$isSocket ? 'tls://' . $host : $host;
        $port = $isSocket ? 0 : $port;
        $redis = new \Redis();
        $persistentId = $this->persistentId($host, $port);
        $warnings = [];
        $timeout = $c['timeout'];
        $persistent = $c['persistent'];
        $open = static function () use ($redis, $persistent, $address, $port, $timeout, $persistentId, $context) {
            return $persistent
                ? $redis->pconnect($address, $port, $timeout, $persistentId, 0, $timeout, $context)
                : $redis->connect($address, $port, $timeout, null, 0, $timeout, $context);
        };
        $connected = self::capturingWarnings($warnings, $open);
        if ($connected !== true) {
            $why = $warnings !== [] ? ': ' . self::redact(implode('; ', $warnings)) : self::lastError($redis);
            throw new StorageException($this->describe() . ': cannot connect' . $why, self::CONNECT_FAILED);
        }
        // phpredis keeps options per object, so a pooled connection starts raw; set them explicitly.
        $redis->setOption(\Redis::OPT_SERIALIZER, \Redis::SERIALIZER_NONE);
        $redis->setOption(\Redis::OPT_PREFIX, '');
        if (defined('Redis::OPT_COMPRESSION')) {
            $redis->setOption(\Redis::OPT_COMPRESSION, \Redis::COMPRESSION_NONE);
        }

        return $redis;
    }

    /** @throws \RedisException|StorageException */
    private function connectCluster(): \RedisCluster
    {
        $c = $this->config;
        $seeds = [];
        foreach ($c['seeds'] as $seed) {
            $format = strpos((string) $seed['host'], ':') !== false ? '[%s]:%d' : '%s:%d'; // IPv6 in brackets
            $seeds[] = sprintf($format, $seed['host'], (int) $seed['port']);
        }
        $auth = $this->auth(self::PASSWORD_ENV);
        // redis.clusters.cache_slots keeps the slot map in the worker (no CLUSTER SLOTS per request);
        // it is read only while the object is built, so it is turned on for this construction alone.
        $previous = ini_set('redis.clusters.cache_slots', '1');
        $warnings = [];
        $ssl = $c['tls'] !== null ? $this->sslOptions() : null;
        try {
            $open = static function () use ($seeds, $c, $auth, $ssl): \RedisCluster {
                return new \RedisCluster(null, $seeds, $c['timeout'], $c['timeout'], $c['persistent'], $auth, $ssl);
            };
            $cluster = self::capturingWarnings($warnings, $open);
        } catch (\RedisClusterException $e) {
            $why = self::redact($e->getMessage() . ($warnings !== [] ? ' (' . implode('; ', $warnings) . ')' : ''));
            throw new StorageException($this->describe() . ': ' . $why, self::CONNECT_FAILED, $e);
        } finally {
            if ($previous !== false) {
                ini_set('redis.clusters.cache_slots', $previous);
            }
        }
        $cluster->setOption(\Redis::OPT_SERIALIZER, \Redis::SERIALIZER_NONE);
        $cluster->setOption(\Redis::OPT_PREFIX, '');
        // A failed node answers with an error: never read sessions from replicas (they may lag).
        $cluster->setOption(\RedisCluster::OPT_SLAVE_FAILOVER, \RedisCluster::FAILOVER_NONE);

        return $cluster;
    }

    /**
     * phpredis credentials from the environment: [user, password], [password], or null without one.
     *
     * @return string[]|null
     */
    private function auth(string $env): ?array
    {
        $password = getenv($env);
        if (!is_string($password) || $password === '') {
            return null;
        }
        $user = $env === self::PASSWORD_ENV ? $this->config['username'] : '';

        return $user !== '' ? [$user, $password] : [$password];
    }

    /**
     * Runs $fn with PHP warnings collected into $warnings instead of printed or logged: phpredis reports
     * why a connection failed (refused, TLS verification, ...) only as warnings, and the handler puts
     * that reason into its own one log line. Each warning loses its "Redis::connect(): " prefix.
     *
     * @param string[] $warnings
     *
     * @return mixed what $fn returns
     */
    public static function capturingWarnings(array &$warnings, callable $fn)
    {
        set_error_handler(static function (int $type, string $message) use (&$warnings): bool {
            $warnings[] = (string) preg_replace('/^[A-Za-z]+::[A-Za-z]+\(\): /', '', str_replace("\n", ' ', $message));
            return true;
        }, E_WARNING | E_NOTICE);
        try {
            return $fn();
        } finally {
            restore_error_handler();
        }
    }

    /** @param array<int, array{host: string, port: int}> $nodes */
    private static function addresses(array $nodes): string
    {
        $parts = [];
        foreach ($nodes as $node) {
            $parts[] = $node['host'] . ':' . $node['port'];
        }

        return implode(',', $parts);
    }

    /** phpredis's last error, prefixed with ': ', or ''. */
    private static function lastError(\Redis $redis): string
    {
        try {
            $error = $redis->getLastError();
        } catch (\RedisException $e) {
            $error = null;
        }

        return is_string($error) && $error !== '' ? ': ' . self::redact($error) : '';
    }

    /**
     * The first line of a phpredis message with the configured passwords masked wherever they stand
     * as a token of their own (the rule of redactedMessage() in packages/target: a one-letter password
     * must not garble words).
     */
    public static function redact(string $message): string
    {
        $message = explode("\n", $message)[0];
        foreach ([self::PASSWORD_ENV, self::SENTINEL_PASSWORD_ENV] as $env) {
            $password = getenv($env);
            if (is_string($password) && $password !== '') {
                $pattern = '/(?<![A-Za-z0-9])' . preg_quote($password, '/') . '(?![A-Za-z0-9])/';
                $message = (string) preg_replace($pattern, '***', $message);
            }
        }

        return $message;
    }
}

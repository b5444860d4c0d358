<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * Every Redis command of the handler, each one Lua script in the session's hash slot (the session,
 * its lock and its tombstone share one hash tag, docs/envelope.md), so each handler step costs one
 * round trip and works unchanged on Redis Cluster (a script is routed by its first key):
 *
 *   read          GET the session (and whether its tombstone exists)
 *   lockAndRead   SET lock NX PX, then GET the session, atomically; a lock already holding our token
 *                 counts as taken (a retry after a lost reply)
 *   write         SET session EX, only while the lock holds our token, then DEL the lock
 *   touch         EXPIRE session, only while the lock holds our token, then DEL the lock
 *   unlock        DEL the lock if it holds our token (compare-and-delete, as phpredis's
 *                 LOCK_RELEASE_LUA_STR in redis_session.c)
 *   destroy       SET tombstone EX (read-through mode), DEL session, DEL the lock if ours
 *
 * Scripts run with EVALSHA, and with EVAL once when the server answers NOSCRIPT (which loads them).
 * When the connection needs SELECT (ConnectionFactory::needsSelect()), the SELECT travels in one
 * pipeline with the first script of the request.
 *
 * Errors are never a miss: a connection error or an error reply throws StorageException. A
 * connection error, READONLY or LOADING reply (a fail-over, a restarted server, a stale persistent
 * connection) closes the connection, lets the factory forget the server (Sentinel asks for the new
 * master) and retries the script once on a new connection.
 */
final class SessionStore
{
    private const READ = <<<'LUA'
local value = redis.call('GET', KEYS[1])
local destroyed = 0
if not value and ARGV[1] == '1' then
  destroyed = redis.call('EXISTS', KEYS[2])
end
return {value, destroyed}
LUA;

    private const LOCK_AND_READ = <<<'LUA'
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then
    return {0, redis.call('EXISTS', KEYS[1])}
  end
end
local value = redis.call('GET', KEYS[1])
local destroyed = 0
if not value then
  if ARGV[4] == '1' then
    destroyed = redis.call('EXISTS', KEYS[3])
  end
  if ARGV[3] == '1' then
    redis.call('DEL', KEYS[2])
    return {2, false, destroyed}
  end
end
return {1, value, destroyed}
LUA;

    private const WRITE = <<<'LUA'
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
if ARGV[4] == 'nx' then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2], 'NX')
else
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
end
if ARGV[1] ~= '' then
  redis.call('DEL', KEYS[2])
end
return 1
LUA;

    private const TOUCH = <<<'LUA'
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
if redis.call('EXPIRE', KEYS[1], ARGV[2]) == 0 then
  return 2
end
if ARGV[1] ~= '' then
  redis.call('DEL', KEYS[2])
end
return 1
LUA;

    private const UNLOCK = <<<'LUA'
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
LUA;

    private const DESTROY = <<<'LUA'
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
end
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
LUA;

    /** Result of write() and touch(): the lock no longer holds our token; nothing was written. */
    public const LOCK_LOST = 0;

    /** Result of write() and touch(): done (and the lock, if any, released). */
    public const DONE = 1;

    /** Result of touch(): the session key no longer exists; nothing was changed, the lock is still held. */
    public const MISSING = 2;

    private ConnectionFactory $factory;

    /** @var \Redis|\RedisCluster|null */
    private $client = null;

    private bool $selectPending = false;

    /** Round trips made (scripts, retries and pipelined SELECTs count one each; for profiling). */
    private int $roundTrips = 0;

    public function __construct(ConnectionFactory $factory)
    {
        $this->factory = $factory;
    }

    /**
     * Connects now (the bootstrap calls it in open(), so an unreachable Redis fails session_start()
     * before an ID is looked at).
     *
     * @throws StorageException
     */
    public function connect(): void
    {
        if ($this->client === null) {
            $this->client = $this->factory->connect();
            $this->selectPending = $this->factory->needsSelect();
        }
    }

    /**
     * GET a session without a lock.
     *
     * @param bool $readThrough also tell whether its tombstone exists (only when the session is missing)
     *
     * @return array{0: string|false, 1: bool} the value (false: no such key) and whether the
     *                                         tombstone exists
     *
     * @throws StorageException
     */
    public function read(string $key, string $tombstoneKey, bool $readThrough): array
    {
        $reply = $this->script('READ', self::READ, [$key, $tombstoneKey], [$readThrough ? '1' : '0'], $key);
        if (!is_array($reply) || count($reply) !== 2 || !(is_string($reply[0]) || $reply[0] === false)) {
            throw $this->shapeError('READ', $key);
        }

        return [$reply[0], (int) $reply[1] === 1];
    }

    /**
     * Takes the lock and reads the session in one step.
     *
     * @param string $token           the request's owner token
     * @param int    $ttlMillis       lock TTL in milliseconds (more than 0)
     * @param bool   $releaseIfMissing give the lock back at once when the session does not exist
     *                                (validateId() of an unknown ID keeps no lock)
     * @param bool   $readThrough      also tell whether the tombstone exists (when the session is missing)
     *
     * @return array{locked: bool, value: string|false, exists: bool, destroyed: bool}
     *         locked false: another request holds the lock (value false; exists: the session key
     *         exists); locked true: value is the session (false: no such key), and the lock is held
     *         unless $releaseIfMissing gave it back for a missing session
     *
     * @throws StorageException
     */
    public function lockAndRead(
        string $key,
        string $lockKey,
        string $tombstoneKey,
        string $token,
        int $ttlMillis,
        bool $releaseIfMissing,
        bool $readThrough
    ): array {
        $reply = $this->script(
            'LOCK+GET',
            self::LOCK_AND_READ,
            [$key, $lockKey, $tombstoneKey],
            [$token, (string) $ttlMillis, $releaseIfMissing ? '1' : '0', $readThrough ? '1' : '0'],
            $key
        );
        if (!is_array($reply) || !isset($reply[0]) || !in_array((int) $reply[0], [0, 1, 2], true)) {
            throw $this->shapeError('LOCK+GET', $key);
        }
        if ((int) $reply[0] === 0) {
            $exists = (int) ($reply[1] ?? 0) === 1;

            return ['locked' => false, 'value' => false, 'exists' => $exists, 'destroyed' => false];
        }
        $value = $reply[1] ?? false;
        if (!is_string($value) && $value !== false) {
            throw $this->shapeError('LOCK+GET', $key);
        }

        return [
            'locked' => (int) $reply[0] === 1,
            'value' => $value,
            'exists' => $value !== false,
            'destroyed' => (int) ($reply[2] ?? 0) === 1,
        ];
    }

    /**
     * Stores a sealed session with a TTL.
     *
     * @param string $token '' without locking; otherwise written only while the lock holds it, then
     *                      the lock is released
     * @param bool   $onlyIfMissing SET NX (a concurrent newer write wins)
     *
     * @return int DONE or LOCK_LOST
     *
     * @throws StorageException
     */
    public function write(
        string $key,
        string $lockKey,
        string $token,
        string $value,
        int $ttl,
        bool $onlyIfMissing = false
    ): int {
        $reply = $this->script(
            'SET',
            self::WRITE,
            [$key, $lockKey],
            [$token, (string) $ttl, $value, $onlyIfMissing ? 'nx' : ''],
            $key
        );
        if (!in_array($reply, [self::LOCK_LOST, self::DONE], true)) {
            throw $this->shapeError('SET', $key);
        }

        return $reply;
    }

    /**
     * Refreshes a session's TTL.
     *
     * @param string $token '' without locking; otherwise only while the lock holds it, then released
     *
     * @return int DONE, LOCK_LOST, or MISSING (the key is gone; the lock is kept for a following write())
     *
     * @throws StorageException
     */
    public function touch(string $key, string $lockKey, string $token, int $ttl): int
    {
        $reply = $this->script('EXPIRE', self::TOUCH, [$key, $lockKey], [$token, (string) $ttl], $key);
        if (!in_array($reply, [self::LOCK_LOST, self::DONE, self::MISSING], true)) {
            throw $this->shapeError('EXPIRE', $key);
        }

        return $reply;
    }

    /**
     * Releases a lock that holds our token.
     *
     * @return bool whether it held our token (false: it had expired or another request has it)
     *
     * @throws StorageException
     */
    public function unlock(string $lockKey, string $token): bool
    {
        $reply = $this->script('UNLOCK', self::UNLOCK, [$lockKey], [$token], $lockKey);
        if (!is_int($reply)) {
            throw $this->shapeError('UNLOCK', $lockKey);
        }

        return $reply === 1;
    }

    /**
     * Deletes a session; with $tombstoneTtl > 0 first sets its tombstone (read-through mode); releases
     * the lock when it holds $token.
     *
     * @throws StorageException
     */
    public function destroy(string $key, string $lockKey, string $tombstoneKey, string $token, int $tombstoneTtl): void
    {
        $keys = [$key, $lockKey, $tombstoneKey];
        $reply = $this->script('DEL', self::DESTROY, $keys, [$token, (string) $tombstoneTtl], $key);
        if ($reply !== 1) {
            throw $this->shapeError('DEL', $key);
        }
    }

    /** Round trips to Redis so far (for profiling). */
    public function roundTrips(): int
    {
        return $this->roundTrips;
    }

    /**
     * The script's SHA-1 (EVALSHA's argument).
     */
    public static function sha(string $script): string
    {
        static $shas = [];

        return $shas[$script] ?? ($shas[$script] = sha1($script));
    }

    /**
     * Runs a script: EVALSHA, EVAL on NOSCRIPT, one retry on a new connection after a connection
     * error or a READONLY/LOADING reply.
     *
     * @param string   $name   names the step in error messages
     * @param string[] $keys
     * @param string[] $args
     * @param string   $key    the key named in error messages
     *
     * @return mixed the script's reply
     *
     * @throws StorageException
     */
    private function script(string $name, string $script, array $keys, array $args, string $key)
    {
        for ($attempt = 1;; $attempt++) {
            try {
                return $this->evalOnce($script, $keys, $args);
            } catch (\RedisException | \RedisClusterException | StorageException $e) {
                $message = ConnectionFactory::redact($e->getMessage());
                if ($attempt > 1 || !$this->retryable($e, $message)) {
                    $message = sprintf('Redis %s of %s failed: %s%s', $name, $key, $message, self::hint($message));
                    throw new StorageException($message, 0, $e);
                }
                $this->reset();
                $this->factory->forgetServer();
            }
        }
    }

    /**
     * @param string[] $keys
     * @param string[] $args
     *
     * @return mixed
     *
     * @throws \RedisException|\RedisClusterException|StorageException
     */
    private function evalOnce(string $script, array $keys, array $args)
    {
        $this->connect();
        $client = $this->client;
        $sha = self::sha($script);
        $params = array_merge($keys, $args);
        if ($this->selectPending && $client instanceof \Redis) {
            $this->roundTrips++;
            $client->multi(\Redis::PIPELINE);
            $client->select($this->factory->database());
            $client->evalSha($sha, $params, count($keys));
            $replies = $client->exec();
            if (!is_array($replies) || ($replies[0] ?? null) !== true) {
                throw new StorageException('SELECT ' . $this->factory->database() . ' failed' . $this->lastError());
            }
            $this->selectPending = false;
            $reply = $replies[1] ?? false;
        } else {
            $this->roundTrips++;
            $client->clearLastError();
            $reply = $client->evalSha($sha, $params, count($keys));
        }
        if ($reply === false) {
            $error = $this->lastError();
            if (strpos($error, 'NOSCRIPT') === false) {
                throw new StorageException(ltrim($error, ': ') !== '' ? ltrim($error, ': ') : 'no reply');
            }
            $this->roundTrips++;
            $client->clearLastError();
            $reply = $client->eval($script, $params, count($keys));
            if ($reply === false) {
                $error = ltrim($this->lastError(), ': ');
                throw new StorageException($error !== '' ? $error : 'no reply');
            }
        }

        return $reply;
    }

    /**
     * Whether a failure is worth one retry on a new connection: a connection error (phpredis throws),
     * a READONLY/LOADING/MASTERDOWN reply (fail-over, restart), or, with Sentinel, a master that
     * cannot be reached (the cached address may be the old master).
     *
     * @param \RedisException|\RedisClusterException|StorageException $e
     */
    private function retryable(\Throwable $e, string $message): bool
    {
        if (!$e instanceof StorageException) {
            return true;
        }
        if (preg_match('/^(READONLY|LOADING|MASTERDOWN)\b/', $message) === 1) {
            return true;
        }

        return $e->getCode() === ConnectionFactory::CONNECT_FAILED && $this->factory->topology() === 'sentinel';
    }

    /** Drops the connection (closed, so a broken persistent one is not reused). */
    private function reset(): void
    {
        if ($this->client !== null) {
            try {
                $this->client->close();
            } catch (\RedisException | \RedisClusterException $e) {
                // already gone
            }
        }
        $this->client = null;
    }

    private function lastError(): string
    {
        try {
            $error = $this->client !== null ? $this->client->getLastError() : null;
        } catch (\RedisException | \RedisClusterException $e) {
            $error = null;
        }

        return is_string($error) && $error !== '' ? ': ' . $error : '';
    }

    private function shapeError(string $name, string $key): StorageException
    {
        return new StorageException(
            sprintf('Redis %s of %s failed: unexpected reply (is this a Redis server?)', $name, $key)
        );
    }

    /** What an operator should do about a few errors that mean a wrong configuration. */
    private static function hint(string $message): string
    {
        if (strncmp($message, 'MOVED', 5) === 0 || strncmp($message, 'ASK', 3) === 0) {
            return ' (the server is a Redis Cluster node: generate the handler with the cluster topology)';
        }
        if (strncmp($message, 'NOPERM', 6) === 0) {
            return ' (the ACL user needs +get +set +del +exists +expire +eval +evalsha +select on the session keys)';
        }

        return '';
    }
}

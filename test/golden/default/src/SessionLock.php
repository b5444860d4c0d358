<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace SessionMigrate;

/**
 * Session locking policy and the lock state of one request. On by default, because PHP's files
 * handler, which these applications are leaving, locks every session (flock in php-src
 * ext/session/mod_files.c) and loses no concurrent update.
 *
 * The semantics follow phpredis's redis_session.c (lock_acquire, write_allowed, lock_release), with
 * three deliberate differences: the lock always has a TTL, the owner token is random per request
 * (phpredis uses host name and PID), and the write checks the token in the same script that writes.
 *
 *   enabled         lock at all (default true; phpredis: redis.session.locking_enabled, default 0)
 *   waitMicros      pause between two attempts, microseconds (default 20000: phpredis 6's
 *                   redis.session.lock_wait_time)
 *   retries         attempts after the first (default 100: phpredis 6's redis.session.lock_retries;
 *                   phpredis's -1, "forever", is refused: waiting is always bounded)
 *   ttlSeconds      lock TTL when max_execution_time is 0 (the CLI default), seconds (default 30);
 *                   otherwise the TTL is max_execution_time, as phpredis's lock_expire=0 does
 *   onFailure       'fail': read() fails, so session_start() fails (phpredis 6); 'readonly': the
 *                   session opens without the lock and its writes are refused (phpredis 5 and
 *                   phpredis 6's lock_failure_readonly)
 *
 * The owner token is 16 random bytes as hex, drawn once per request.
 */
final class SessionLock
{
    public const FAIL = 'fail';
    public const READ_ONLY = 'readonly';

    public const DEFAULT_WAIT_MICROS = 20000;
    public const DEFAULT_RETRIES = 100;
    public const DEFAULT_TTL_SECONDS = 30;

    private bool $enabled;

    private int $waitMicros;

    private int $retries;

    private int $ttlSeconds;

    private string $onFailure;

    private string $token = '';

    /** Lock key this request holds; '' when none. */
    private string $held = '';

    /** The session opened without its lock (onFailure 'readonly'): writes are refused. */
    private bool $readOnly = false;

    /**
     * @param array{enabled?: bool, waitMicros?: int, retries?: int, ttlSeconds?: int, onFailure?: string} $options
     *
     * @throws \InvalidArgumentException for a value out of range
     */
    public function __construct(array $options = [])
    {
        $this->enabled = (bool) ($options['enabled'] ?? true);
        $this->waitMicros = (int) ($options['waitMicros'] ?? self::DEFAULT_WAIT_MICROS);
        $this->retries = (int) ($options['retries'] ?? self::DEFAULT_RETRIES);
        $this->ttlSeconds = (int) ($options['ttlSeconds'] ?? self::DEFAULT_TTL_SECONDS);
        $this->onFailure = (string) ($options['onFailure'] ?? self::FAIL);
        if ($this->waitMicros < 1 || $this->waitMicros > 10000000) {
            throw new \InvalidArgumentException('session-migrate: lock waitMicros must be 1 to 10000000');
        }
        if ($this->retries < 0 || $this->retries > 100000) {
            throw new \InvalidArgumentException(
                'session-migrate: lock retries must be 0 to 100000 (waiting is always bounded)'
            );
        }
        if ($this->ttlSeconds < 1 || $this->ttlSeconds > 86400) {
            throw new \InvalidArgumentException('session-migrate: lock ttlSeconds must be 1 to 86400');
        }
        if (!in_array($this->onFailure, [self::FAIL, self::READ_ONLY], true)) {
            throw new \InvalidArgumentException('session-migrate: lock onFailure must be "fail" or "readonly"');
        }
    }

    /** A policy that never locks. */
    public static function disabled(): self
    {
        return new self(['enabled' => false]);
    }

    public function enabled(): bool
    {
        return $this->enabled;
    }

    /** What happens when the lock cannot be taken: FAIL or READ_ONLY. */
    public function onFailure(): string
    {
        return $this->onFailure;
    }

    /** Attempts after the first. */
    public function retries(): int
    {
        return $this->retries;
    }

    /**
     * The lock's TTL in milliseconds: max_execution_time when it is more than 0, else ttlSeconds.
     * Never 0: there is no lock without a TTL.
     */
    public function ttlMillis(): int
    {
        $max = (int) ini_get('max_execution_time');

        return ($max > 0 ? $max : $this->ttlSeconds) * 1000;
    }

    /** This request's owner token ('' when locking is off). */
    public function token(): string
    {
        if (!$this->enabled) {
            return '';
        }
        if ($this->token === '') {
            $this->token = bin2hex(random_bytes(16));
        }

        return $this->token;
    }

    /**
     * Tries $attempt until it takes the lock: at most 1 + retries attempts, waitMicros apart.
     *
     * @param callable(): array{locked: bool} $attempt one try (SessionStore::lockAndRead())
     *
     * @return array{locked: bool} the last attempt's result
     */
    public function acquire(callable $attempt): array
    {
        for ($i = 0;; $i++) {
            $result = $attempt();
            if ($result['locked'] || $i >= $this->retries) {
                return $result;
            }
            usleep($this->waitMicros);
        }
    }

    /** The lock key this request holds, '' for none. */
    public function held(): string
    {
        return $this->held;
    }

    public function markHeld(string $lockKey): void
    {
        $this->held = $lockKey;
        $this->readOnly = false;
    }

    public function markReleased(): void
    {
        $this->held = '';
    }

    /** The current session is open without its lock: its writes are refused. */
    public function markReadOnly(): void
    {
        $this->held = '';
        $this->readOnly = true;
    }

    public function isReadOnly(): bool
    {
        return $this->readOnly;
    }

    /** The session was closed: no lock, not read-only. */
    public function reset(): void
    {
        $this->held = '';
        $this->readOnly = false;
    }
}

<?php

/**
 * Copied by session-migrate (`session-migrate generate php`, `apply`) from its php/ folder, like every
 * file beside it: do not edit this copy; regenerate instead.
 */

declare(strict_types=1);

namespace Acme\Session;

/**
 * PHP's save handler interface over encrypted sessions in Redis: what PHP calls, and in which order
 * things happen. The pieces it composes do the work: Envelope (key names, seal, open), SessionStore
 * (the Redis scripts), SessionLock (the locking policy and state), LegacySessionFiles (read-through
 * mode).
 *
 * Round trips per request with locking on (the default): validateId() takes the lock and reads the
 * session in one script, and read() uses that result; write() or updateTimestamp() store and unlock in
 * one script. A request that arrives without a session cookie: read() locks and reads, write() stores
 * and unlocks. So two round trips either way (phpredis's native handler with locking needs five:
 * EXISTS, SET NX, GET, SETEX and the unlock script).
 *
 * Failure behaviour:
 *   - A Redis error is never taken for a missing session: read() returns false (session_start() fails
 *     with PHP's warning), validateId() answers true so that PHP never issues a new session ID
 *     because of an error, and the read() that follows fails; one line naming the cause goes to the
 *     PHP error log.
 *   - A value that does not open (not an envelope, unknown version, unknown key ID, failed
 *     authentication) gives an empty session and one logged warning naming the Redis key name, the
 *     failure and the key ID; the value itself is never logged, and plaintext is never accepted.
 *   - The lock not taken within the retries: read() fails (or, configured 'readonly', the session
 *     opens and its writes are refused). A write whose lock expired or was taken over is refused and
 *     logged: it never overwrites another request's write.
 *
 * Interface method parameters are untyped because PHP 7.4's SessionHandlerInterface declares them
 * untyped; read() and gc() carry #[\ReturnTypeWillChange] because their PHP 8 return types are unions.
 * php-src references: ext/session/session.c (php_session_initialize, session_regenerate_id,
 * session_create_id, php_session_save_current_state) and ext/session/mod_user.c.
 */
final class EncryptedRedisSessionHandler implements \SessionHandlerInterface, \SessionUpdateTimestampHandlerInterface
{
    /** TTL in seconds used when session.gc_maxlifetime is 0 or less (what phpredis does). */
    public const FALLBACK_TTL = 1440;

    private SessionStore $store;

    private Envelope $envelope;

    private SessionLock $lock;

    private ?LegacySessionFiles $legacy;

    /** @var callable(string): void */
    private $logger;

    /**
     * What validateId() read for the read() of the same ID that PHP calls next.
     *
     * @var array{id: string, value: string|false, destroyed: bool}|null
     */
    private ?array $pending = null;

    /** validateId() met a Redis error for this ID (already logged): read() of it fails at once. */
    private ?string $failedId = null;

    /** The handler the generated bootstrap registered with PHP in this request; null until it ran. */
    private static ?\SessionHandlerInterface $registeredHandler = null;

    /**
     * @param SessionStore            $store    the handler's own Redis connection
     * @param Envelope                $envelope key names and sealing
     * @param SessionLock|null        $lock     locking policy; default: on, with the defaults of SessionLock
     * @param LegacySessionFiles|null $legacy   read-through mode: the old files a Redis miss falls back to
     * @param callable|null           $logger   receives one line per problem (never key material, session
     *                                          IDs or session data); default error_log()
     */
    public function __construct(
        SessionStore $store,
        Envelope $envelope,
        ?SessionLock $lock = null,
        ?LegacySessionFiles $legacy = null,
        ?callable $logger = null
    ) {
        $this->store = $store;
        $this->envelope = $envelope;
        $this->lock = $lock ?? new SessionLock();
        $this->legacy = $legacy;
        $this->logger = $logger ?? static function (string $message): void {
            error_log($message);
        };
    }

    /**
     * The save handler the generated session-migrate-bootstrap.php registered with PHP (a lazy
     * handler that builds this class on the first open()). Application code that must call
     * session_set_save_handler() itself registers this one, so it keeps the encrypted Redis storage:
     * `session_set_save_handler(\Acme\Session\EncryptedRedisSessionHandler::registeredHandler(), true)`
     * (what `session-migrate codemod php --replace-custom-handler` writes).
     *
     * @throws \LogicException when the bootstrap has not run in this request (require it first)
     */
    public static function registeredHandler(): \SessionHandlerInterface
    {
        if (self::$registeredHandler === null) {
            throw new \LogicException(
                'session-migrate: no encrypted session handler is registered yet;'
                . ' require session-migrate-bootstrap.php before this call'
            );
        }

        return self::$registeredHandler;
    }

    /** Records the handler the generated bootstrap registered (called by Bootstrap only). */
    public static function rememberRegisteredHandler(\SessionHandlerInterface $handler): void
    {
        self::$registeredHandler = $handler;
    }

    /**
     * TTL for new and refreshed keys: session.gc_maxlifetime at call time, FALLBACK_TTL if <= 0
     * (phpredis's session_gc_maxlifetime() in redis_session.c).
     */
    public static function ttl(): int
    {
        $ttl = (int) ini_get('session.gc_maxlifetime');

        return $ttl > 0 ? $ttl : self::FALLBACK_TTL;
    }

    /** The envelope (key names, key IDs). */
    public function envelope(): Envelope
    {
        return $this->envelope;
    }

    /** Round trips to Redis so far in this process (for profiling). */
    public function roundTrips(): int
    {
        return $this->store->roundTrips();
    }

    /**
     * Connects to Redis (or takes this worker's persistent connection).
     *
     * @param string $path session.save_path (unused: the connection comes from the bootstrap)
     * @param string $name session name (unused)
     */
    public function open($path, $name): bool
    {
        try {
            $this->store->connect();
        } catch (StorageException $e) {
            $this->log('sessions are unavailable: ' . $e->getMessage());
            return false;
        }

        return true;
    }

    /** Releases the session lock if this request still holds it (session_abort(), read_and_close, ...). */
    public function close(): bool
    {
        $ok = true;
        $this->dropPending();
        $held = $this->lock->held();
        if ($held !== '') {
            try {
                if (!$this->store->unlock($held, $this->lock->token())) {
                    $this->log(sprintf('the lock %s had expired or was taken over before close', $held));
                }
            } catch (StorageException $e) {
                $this->log($e->getMessage() . ' (the lock expires by its TTL)');
                $ok = false;
            }
        }
        $this->lock->reset();

        return $ok;
    }

    /**
     * Reads and decrypts a session, taking its lock first when locking is on.
     *
     * @param string $id session ID
     *
     * @return string|false the session payload; '' for a session that does not exist or whose value
     *                      does not open (logged); false when Redis fails or the lock cannot be
     *                      taken, so session_start() fails
     */
    #[\ReturnTypeWillChange]
    public function read($id)
    {
        $id = (string) $id;
        $key = $this->envelope->keyName($id);
        if ($this->failedId === $id) {
            $this->failedId = null;
            return false;
        }
        if ($this->pending !== null && $this->pending['id'] === $id) {
            $found = $this->pending;
            $this->pending = null;
        } else {
            $this->dropPending();
            try {
                $found = $this->fetch($id, $key);
            } catch (StorageException $e) {
                $this->log($e->getMessage());
                return false;
            }
            if ($found === null) {
                return false;
            }
        }
        if ($found['value'] === false) {
            return $this->legacy !== null && !$found['destroyed'] ? $this->readLegacy($id, $key) : '';
        }

        return $this->openValue($key, $found['value']);
    }

    /**
     * Encrypts and stores a session with TTL = session.gc_maxlifetime, then releases its lock. With
     * locking on, it writes only while the lock still holds this request's token.
     *
     * @param string $id   session ID
     * @param string $data session payload as PHP's serializer wrote it
     */
    public function write($id, $data): bool
    {
        $id = (string) $id;
        $key = $this->envelope->keyName($id);
        if ($this->lock->isReadOnly()) {
            $this->log(sprintf('%s was opened read-only (another request held its lock): write refused', $key));
            return false;
        }

        return $this->store($id, $key, (string) $data, false);
    }

    /**
     * Called instead of write() when session.lazy_write=1 and the data did not change: refreshes the
     * TTL to session.gc_maxlifetime and releases the lock. If the key vanished meanwhile (expired or
     * deleted), the session is stored again.
     *
     * @param string $id   session ID
     * @param string $data session payload as PHP's serializer wrote it
     */
    public function updateTimestamp($id, $data): bool
    {
        $id = (string) $id;
        $key = $this->envelope->keyName($id);
        $token = $this->lock->isReadOnly() ? '' : $this->lock->token();
        try {
            $result = $this->store->touch($key, $this->envelope->lockName($id), $token, self::ttl());
        } catch (StorageException $e) {
            $this->log($e->getMessage());
            return false;
        }
        if ($result === SessionStore::DONE) {
            $this->releasedIfHeld($id);
            return true;
        }
        if ($result === SessionStore::LOCK_LOST) {
            return $this->lockLost($key);
        }
        if ($this->lock->isReadOnly()) {
            return true; // gone meanwhile, and this request may not write: nothing to refresh
        }
        if ((string) $data === '') {
            // Nothing to keep (phpredis's EXPIRE of a missing key stores nothing either): an empty
            // session that was never written stays unwritten, so strict mode refuses its ID later.
            $this->dropLock($id);
            return true;
        }

        // Stored again, so a session that expired or was deleted during a read-only request is kept.
        // Without locking, SET NX: a concurrent newer write wins.
        return $this->store($id, $key, (string) $data, !$this->lock->enabled());
    }

    /**
     * Deletes a session and releases its lock. In read-through mode it first leaves a tombstone (TTL
     * session.gc_maxlifetime) and afterwards removes the legacy file, so that no bulk copy brings the
     * session back (docs/runbook.md).
     *
     * @param string $id session ID
     */
    public function destroy($id): bool
    {
        $id = (string) $id;
        $key = $this->envelope->keyName($id);
        try {
            $this->store->destroy(
                $key,
                $this->envelope->lockName($id),
                $this->envelope->tombstoneName($id),
                $this->lock->token(),
                $this->legacy !== null ? self::ttl() : 0
            );
        } catch (StorageException $e) {
            $this->log($e->getMessage());
            return false;
        }
        $this->releasedIfHeld($id);
        if ($this->legacy !== null && LegacySessionFiles::validId($id)) {
            $this->legacy->delete($id, $key);
        }

        return true;
    }

    /**
     * Nothing to collect: every key carries a Redis TTL.
     *
     * @param int $max_lifetime session.gc_maxlifetime in seconds (unused)
     *
     * @return int|false number of sessions deleted: always 0
     */
    #[\ReturnTypeWillChange]
    public function gc($max_lifetime)
    {
        return 0;
    }

    /**
     * Tells PHP whether a session ID exists (session.use_strict_mode): its key exists (in read-through
     * mode also: a live legacy file of a session that was not destroyed). Before a session starts, it
     * takes the lock and reads the session in the same script, for the read() that follows.
     *
     * @param string $id session ID
     */
    public function validateId($id): bool
    {
        $id = (string) $id;
        $key = $this->envelope->keyName($id);
        $this->dropPending();
        try {
            if (!$this->lock->enabled() || $this->lock->held() !== '') {
                // No locking, or a collision check of session_create_id()/session_regenerate_id()
                // while a session is active: a plain read; only the former is kept for read().
                $tombstone = $this->envelope->tombstoneName($id);
                [$value, $destroyed] = $this->store->read($key, $tombstone, $this->legacy !== null);
                $exists = $value !== false || $this->legacyExists($id, $destroyed);
                if ($exists && $this->lock->held() === '') {
                    $this->pending = ['id' => $id, 'value' => $value, 'destroyed' => $destroyed];
                }

                return $exists;
            }
            $lockKey = $this->envelope->lockName($id);
            $found = $this->store->lockAndRead(
                $key,
                $lockKey,
                $this->envelope->tombstoneName($id),
                $this->lock->token(),
                $this->lock->ttlMillis(),
                $this->legacy === null,
                $this->legacy !== null
            );
            if (!$found['locked']) {
                return $found['exists']; // busy: read() waits for the lock
            }
            if ($found['value'] === false && !$this->legacyExists($id, $found['destroyed'])) {
                if ($this->legacy !== null) {
                    $this->store->unlock($lockKey, $this->lock->token());
                }
                return false;
            }
            $this->lock->markHeld($lockKey);
            $this->pending = ['id' => $id, 'value' => $found['value'], 'destroyed' => $found['destroyed']];

            return true;
        } catch (StorageException $e) {
            // Never a new session ID because of an error: PHP goes on to read(), which fails.
            $this->log($e->getMessage());
            $this->failedId = $id;

            return true;
        }
    }

    /**
     * Reads a session for read(), locking it first when locking is on.
     *
     * @return array{id: string, value: string|false, destroyed: bool}|null null when the lock could
     *                                                                         not be taken (logged)
     *
     * @throws StorageException
     */
    private function fetch(string $id, string $key): ?array
    {
        $lockKey = $this->envelope->lockName($id);
        $tombstone = $this->envelope->tombstoneName($id);
        $readThrough = $this->legacy !== null;
        if (!$this->lock->enabled() || $this->lock->held() === $lockKey) {
            // No locking, or read again under the lock we hold (session_reset()).
            [$value, $destroyed] = $this->store->read($key, $tombstone, $readThrough);

            return ['id' => $id, 'value' => $value, 'destroyed' => $destroyed];
        }
        $token = $this->lock->token();
        $ttl = $this->lock->ttlMillis();
        $found = $this->lock->acquire(function () use ($key, $lockKey, $tombstone, $token, $ttl, $readThrough): array {
            return $this->store->lockAndRead($key, $lockKey, $tombstone, $token, $ttl, false, $readThrough);
        });
        if ($found['locked']) {
            $this->lock->markHeld($lockKey);

            return ['id' => $id, 'value' => $found['value'], 'destroyed' => $found['destroyed']];
        }
        if ($this->lock->onFailure() === SessionLock::FAIL) {
            $this->log(sprintf(
                'the lock %s is held by another request; not taken after %d attempts: session_start() fails',
                $lockKey,
                $this->lock->retries() + 1
            ));

            return null;
        }
        $this->log(sprintf(
            'the lock %s is held by another request; not taken after %d attempts: the session opens read-only',
            $lockKey,
            $this->lock->retries() + 1
        ));
        $this->lock->markReadOnly();
        [$value, $destroyed] = $this->store->read($key, $tombstone, $readThrough);

        return ['id' => $id, 'value' => $value, 'destroyed' => $destroyed];
    }

    /**
     * Seals and stores, releasing the lock (see write()).
     */
    private function store(string $id, string $key, string $data, bool $onlyIfMissing): bool
    {
        try {
            $result = $this->store->write(
                $key,
                $this->envelope->lockName($id),
                $this->lock->token(),
                $this->envelope->seal($key, $data),
                self::ttl(),
                $onlyIfMissing
            );
        } catch (StorageException $e) {
            $this->log($e->getMessage());
            return false;
        }
        if ($result === SessionStore::LOCK_LOST) {
            return $this->lockLost($key);
        }
        $this->releasedIfHeld($id);

        return true;
    }

    private function lockLost(string $key): bool
    {
        $this->log(sprintf(
            'the lock of %s expired or was taken over before this request wrote (it ran longer than the lock TTL'
            . ' of %d s): write refused, the other request\'s session is kept',
            $key,
            intdiv($this->lock->ttlMillis(), 1000)
        ));
        $this->lock->markReleased();

        return false;
    }

    /** The lock of this session was released by a script (write, touch, destroy). */
    private function releasedIfHeld(string $id): void
    {
        if ($this->lock->held() === $this->envelope->lockName($id)) {
            $this->lock->markReleased();
        }
    }

    /** A lock taken by validateId() for a read() that did not come: released. */
    private function dropPending(): void
    {
        if ($this->pending === null) {
            return;
        }
        $id = $this->pending['id'];
        $this->pending = null;
        $this->dropLock($id);
    }

    /** Releases the lock of this session if this request holds it (a failure is logged; the TTL ends it). */
    private function dropLock(string $id): void
    {
        $lockKey = $this->envelope->lockName($id);
        if ($this->lock->held() !== $lockKey) {
            return;
        }
        try {
            $this->store->unlock($lockKey, $this->lock->token());
        } catch (StorageException $e) {
            $this->log($e->getMessage() . ' (the lock expires by its TTL)');
        }
        $this->lock->markReleased();
    }

    /** Opens a stored value; a value that does not open is an empty session (logged). */
    private function openValue(string $key, string $value): string
    {
        $opened = $this->envelope->open($key, $value);
        if ($opened['ok'] === true && is_string($opened['plaintext'])) {
            return $opened['plaintext'];
        }
        $this->log(sprintf(
            'warning: the value stored under %s did not open (%s; key ID of the value: %s; key IDs held: %s);'
            . ' starting an empty session',
            $key,
            (string) $opened['reason'],
            $opened['keyId'] ?? 'none',
            implode(',', $this->envelope->keys()->keyIds())
        ));

        return '';
    }

    /** Read-through mode: a live legacy file of a session that was not destroyed. */
    private function legacyExists(string $id, bool $destroyed): bool
    {
        return $this->legacy !== null && !$destroyed && LegacySessionFiles::validId($id) && $this->legacy->exists($id);
    }

    /** read() after a Redis miss in read-through mode: the legacy file's bytes, or ''. */
    private function readLegacy(string $id, string $key): string
    {
        if ($this->legacy === null || !LegacySessionFiles::validId($id)) {
            return '';
        }
        $data = $this->legacy->read($id, $key);
        if ($data !== null) {
            $this->log(sprintf('read-through: took over the legacy session file of %s', $key));
        }

        return $data ?? '';
    }

    private function log(string $message): void
    {
        ($this->logger)('session-migrate: ' . $message);
    }
}

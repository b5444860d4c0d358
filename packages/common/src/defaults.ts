/**
 * Defaults shared by several packages, in one place (as ioredis keeps its option defaults in one
 * module): change one here and every command and generated file follows.
 */

/**
 * PHP's compiled default of session.gc_maxlifetime, in seconds (php-src ext/session/session.c:
 * `PHP_INI_ENTRY("session.gc_maxlifetime", "1440", ...)`): what a host that never sets it uses, and
 * the default of every command's `--gc-maxlifetime`.
 */
export const DEFAULT_GC_MAXLIFETIME = 1440;

/** Redis key prefix of the encrypted sessions session-migrate writes (`<prefix><lookup ID>...`, docs/envelope.md). */
export const DEFAULT_PREFIX = 'smsess:';

/**
 * phpredis's default key prefix of its own (plaintext) sessions (phpredis redis_session.c:
 * `"PHPREDIS_SESSION:"`, changed with `prefix=` in session.save_path).
 */
export const PHPREDIS_DEFAULT_PREFIX = 'PHPREDIS_SESSION:';

/**
 * The session.serialize_handler values session-migrate reads and writes (php-src ext/session:
 * `php`, `php_binary`, `php_serialize`; the igbinary extension's `igbinary`). Here rather than in
 * @session-migrate/php-session (which re-exports it with its type) so that the CLI's --help lists the
 * choices without loading the decoders.
 */
export const SERIALIZE_HANDLERS = ['php', 'php_binary', 'php_serialize', 'igbinary'] as const;

/**
 * Output formats of `generate iac` (@session-migrate/generate/iac, which re-exports them). Here so
 * that the CLI's --help lists the choices without loading the generator.
 */
export const IAC_FORMATS = ['terraform', 'cloudformation'] as const;

/** Default resource-name prefix of `generate iac`; gives the secret `session-migrate/redis-auth-token`, the codemod's default. */
export const DEFAULT_IAC_NAME = 'session-migrate';

/** The plan file `plan` writes and `apply`/`generate php` read, relative to the working directory. */
export const DEFAULT_PLAN_FILE = 'session-migrate.plan.json';

/** Where `apply` writes the PHP artifacts, relative to the working directory (plan --artifacts-dir). */
export const DEFAULT_ARTIFACTS_DIR = 'session-migrate-artifacts';

/** Bytes: larger session files (or values) are reported, not migrated (plan --max-session-bytes). */
export const DEFAULT_MAX_SESSION_BYTES = 8 * 1024 * 1024;

/**
 * Defaults of the generated handler's session locking (generate's LockingOptions; the same as
 * php/src/SessionLock.php): on, 20 000 µs between 100 retries (phpredis 6's
 * redis.session.lock_wait_time and lock_retries), lock TTL 30 s when max_execution_time is 0, and
 * session_start() fails when the lock cannot be taken.
 */
export const DEFAULT_LOCKING: Readonly<{
  enabled: boolean;
  waitMicros: number;
  retries: number;
  ttlSeconds: number;
  onFailure: 'fail' | 'readonly';
}> = Object.freeze({
  enabled: true,
  waitMicros: 20_000,
  retries: 100,
  ttlSeconds: 30,
  onFailure: 'fail' as const,
});

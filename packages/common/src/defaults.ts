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

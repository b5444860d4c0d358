/**
 * The options of `plan` and `generate php` that choose how the generated PHP handler locks sessions and
 * connects (php/src/SessionLock.php, php/src/ConnectionFactory.php). `plan` stores them in the plan
 * (`artifacts.locking`, `artifacts.persistent`, `artifacts.handlerUser`); `generate php` overrides the plan's and records its
 * choices for a later apply to keep (packages/migrate/src/artifacts.ts GENERATE_CHOICES_FILE).
 * Register with handlerOptions(), read with handlerChoicesFromArgs().
 */
import type { Argv } from 'yargs';
import { DEFAULT_LOCKING, UserFacingError, checkAclUserName, checkWholeNumber } from '@session-migrate/common';
import type { LockingOptions } from '@session-migrate/generate';

/** The parsed option values (yargs names). */
export interface HandlerOptionArgs {
  locking?: boolean | undefined;
  'lock-wait-micros'?: number | undefined;
  'lock-retries'?: number | undefined;
  'lock-ttl'?: number | undefined;
  'lock-failure'?: string | undefined;
  persistent?: boolean | undefined;
  'handler-user'?: string | undefined;
}

/** Adds the handler options to a yargs command; none has a default here (absent: the plan's, or the handler's default). */
export function handlerOptions<T>(y: Argv<T>) {
  return y
    .option('locking', {
      type: 'boolean',
      describe: `lock each session while a request uses it, as the files handler does (default on; --no-locking: the last write wins)`,
    })
    .option('lock-wait-micros', {
      type: 'number',
      describe: `pause between two attempts to take a session lock, microseconds (default ${DEFAULT_LOCKING.waitMicros}, phpredis's lock_wait_time)`,
    })
    .option('lock-retries', {
      type: 'number',
      describe: `attempts after the first before giving up (default ${DEFAULT_LOCKING.retries}, phpredis's lock_retries; never unbounded)`,
    })
    .option('lock-ttl', {
      type: 'number',
      describe: `lock TTL in seconds when max_execution_time is 0 (default ${DEFAULT_LOCKING.ttlSeconds}); otherwise max_execution_time`,
    })
    .option('lock-failure', {
      type: 'string',
      choices: ['fail', 'readonly'],
      describe: 'when the lock cannot be taken: fail session_start() (default, as phpredis 6) or open the session read-only',
    })
    .option('persistent', {
      type: 'boolean',
      describe: 'persistent Redis connections, one per PHP worker (default on; --no-persistent: one per request)',
    })
    .option('handler-user', {
      type: 'string',
      describe:
        "the Redis ACL user the PHP handler connects as, with only the handler's rule (docs/redis.md); its password in SESSION_MIGRATE_REDIS_PASSWORD on the PHP hosts (default: the plan's user, the migration's)",
    });
}

/**
 * The handler choices given on the command line (only those given).
 * @throws UserFacingError for a value out of range (the same ranges the generator enforces), or a
 *   --handler-user Redis cannot take as a user name (checkAclUserName).
 */
export function handlerChoicesFromArgs(a: HandlerOptionArgs): { locking?: LockingOptions; persistent?: boolean; handlerUser?: string } {
  const locking: LockingOptions = {};
  const whole = (name: string, value: number | undefined, min: number, max: number, unit?: string): number | undefined =>
    value === undefined ? undefined : checkWholeNumber(name, value, min, max, unit);
  if (a.locking !== undefined) locking.enabled = a.locking;
  const wait = whole('lock-wait-micros', a['lock-wait-micros'], 1, 10_000_000, 'microseconds');
  if (wait !== undefined) locking.waitMicros = wait;
  const retries = whole('lock-retries', a['lock-retries'], 0, 100_000);
  if (retries !== undefined) locking.retries = retries;
  const ttl = whole('lock-ttl', a['lock-ttl'], 1, 86_400, 'seconds');
  if (ttl !== undefined) locking.ttlSeconds = ttl;
  if (a['lock-failure'] !== undefined) {
    if (a['lock-failure'] !== 'fail' && a['lock-failure'] !== 'readonly')
      throw new UserFacingError('--lock-failure must be fail or readonly');
    locking.onFailure = a['lock-failure'];
  }
  return {
    ...(Object.keys(locking).length > 0 ? { locking } : {}),
    ...(a.persistent !== undefined ? { persistent: a.persistent } : {}),
    ...(a['handler-user'] !== undefined ? { handlerUser: checkAclUserName(String(a['handler-user']), '--handler-user') } : {}),
  };
}

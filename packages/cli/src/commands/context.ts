/**
 * What every command module (one file per command in this folder) shares: how it prints and
 * returns its exit code, and the option groups several commands declare the same way. This module
 * and the command modules' builders load nothing heavy: each handler imports its use case with
 * `await import()`, so `--help` and `--version` stay fast (scripts/package/build.ts checks it).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import {
  DEFAULT_GC_MAXLIFETIME,
  DEFAULT_PREFIX,
  SERIALIZE_HANDLERS,
  StoppedRunError,
  redactSessionFileNames,
} from '@session-migrate/common';
import { keyProviderOptions } from '../key-options.ts';

/** Writes one line of a command's output on stdout. */
export type Print = (line: string) => void;

/**
 * Runs a command's body and records its exit code (0 success, 1 a check failed); errors propagate to
 * main(). `interrupted`: a command that writes for a long time (apply, purge, rollback, rotate) says
 * on SIGINT (Ctrl-C), SIGTERM or SIGHUP what state it leaves and how to finish, in one stderr line,
 * and exits 130, 143 or 129 (128 + the signal, the shells' convention: main.ts whileSaying).
 */
export type Run = (fn: () => Promise<number> | number, interrupted?: string) => () => Promise<void>;

/** What main() gives each command module. */
export interface CommandContext {
  run: Run;
  print: Print;
}

/** A command module factory: yargs' CommandModule for one command, bound to main()'s run and print. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CommandFactory = (ctx: CommandContext) => CommandModule<any, any>;

/**
 * A yargs CommandModule whose handler's arguments are typed from what its builder declares (a
 * CommandModule literal alone would leave them `any`).
 */
export function defineCommand<U>(module: {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<U>;
  handler: (args: ArgumentsCamelCase<U>) => void | Promise<void>;
}): CommandModule<object, U> {
  return module as CommandModule<object, U>;
}

/**
 * The parsed arguments a handler gets from the options builder `B` declares (a function such as
 * planOptions: `(y: Argv) => Argv<U>`), so a command's handler can turn them into its use case's
 * options in a function of its own, apart from the declarations.
 */
export type OptionArgs<B> = B extends (y: Argv) => Argv<infer U> ? ArgumentsCamelCase<U> : never;

/** session.serialize_handler values the tools read and write (their one home: common's SERIALIZE_HANDLERS). */
export const HANDLERS = SERIALIZE_HANDLERS;

/** The help text of every `--target` option. */
export const TARGET_DESCRIBE =
  'redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...; a cluster is detected (password: SESSION_MIGRATE_REDIS_PASSWORD; sentinels: SESSION_MIGRATE_SENTINEL_PASSWORD, SESSION_MIGRATE_SENTINEL_USERNAME)';

/** `--target`: the Redis URL (plan demands it; verify, purge, rollback and rotate take the plan's by default). */
export const TARGET_OPTION = { type: 'string', describe: TARGET_DESCRIBE } as const;

/** `--prefix` of a command that takes the plan's by default (verify, purge, rollback); the default is resolved by the use case. */
export const PREFIX_OVERRIDE_OPTION = { type: 'string', describe: `Redis key prefix (default ${DEFAULT_PREFIX})` } as const;

/**
 * `--php-user` of verify and purge: the user PHP runs as, for the files sources given now (plan has
 * its own, recorded in the plan). Resolved as plan's (packages/sources resolvePhpUser).
 */
export const PHP_USER_GIVEN_NOW_OPTION = {
  type: 'string',
  array: true,
  describe:
    "with --source files:DIR: the user PHP runs as, a name or a uid (repeatable: several pools); only its session files and root's are PHP's (files of other owners are left alone, as PHP's files handler refuses them); default: the plan's, else the owner of most session files",
} as const;

/** `--gc-maxlifetime` of a command that takes the plan's by default (verify, purge, rollback). */
export const GC_MAXLIFETIME_OVERRIDE_OPTION = {
  type: 'number',
  describe: `session.gc_maxlifetime in seconds (default ${DEFAULT_GC_MAXLIFETIME})`,
} as const;

/**
 * `--master-wait-ms` of every command with a target (plan, apply, verify, purge, rollback, rotate):
 * how long to wait for a failover to finish, behind Sentinel and in a Redis Cluster alike (one
 * operator concept: its value and bounds are checked by migrate's checkMasterWaitMs; the default is
 * DEFAULT_FAILOVER_WAIT_MS of packages/redis). What a wait that ends with no master does: a cluster
 * SCAN, and behind Sentinel the wait when the target or a Redis source is opened (every command: migrate's commandRedisWait)
 * and verify's before its scan and after a failover mid-scan, throw one line, exit 2, nothing written; apply's end check behind
 * Sentinel counts the sessions it could not confirm (UNCONFIRMED, UNVERIFIED: exit 1). Its help names
 * only what `command` does.
 */
export function masterWaitOption(command: 'plan' | 'apply' | 'verify' | 'purge' | 'rollback' | 'rotate') {
  const source = ' when a failover cuts the SCAN of a redis: source short (then reads it again from the beginning on the new master)';
  const later =
    command === 'apply'
      ? `; apply waits again${source}, and at its end check behind Sentinel, where sessions not confirmed in time count as UNCONFIRMED or UNVERIFIED (exit 1)`
      : command === 'verify'
        ? '; verify waits again before its scan, and when a failover cuts its scan short (then starts again from the beginning on the new master)'
        : command === 'plan'
          ? `; plan waits again${source}`
          : '';
  return {
    type: 'number',
    describe: `how long to wait for a failover to finish, in ms: in a Redis Cluster (the target or a redis: source) for a replica to take over a master lost mid-scan; behind Sentinel for the master the sentinels report, when the target or a redis: source is opened${later}; none in time: exit 2, nothing written, run again once the failover is over; sentinels that cannot be reached at all fail at once (0 to 600000, default 30000; 0: look once, no wait)`,
  } as const;
}

/**
 * Calls a use case that may stop part-way (purge, rotate, rollback): with `--json`, a run stopped
 * after it changed something (StoppedRunError, exit 1) prints its JSON document (counts so far and
 * the stop reason: StoppedRunError.report, docs/operator-guide.md Exit codes) on stdout, where the
 * report would have been, then the error goes on to main(): its one line on stderr, exit 1. A run
 * stopped before any change stays one line on stderr, exit 2, as apply's. Session file names in the
 * reason are shortened as on the error line (redactSessionFileNames: a system error quotes the path).
 */
export async function jsonWhenStopped<T>(json: boolean, print: Print, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (json && err instanceof StoppedRunError) print(redactSessionFileNames(JSON.stringify(err.report, null, 2)));
    throw err;
  }
}

/** `--json` of the commands that print a report (verify, purge, rollback, rotate). */
export const JSON_REPORT_OPTION = { type: 'boolean', default: false, describe: 'print a JSON report' } as const;

/** `--target`, `--prefix` and `--gc-maxlifetime`, in that order, each defaulting to the plan's (purge, rollback). */
export function planTargetOptions<T>(y: Argv<T>) {
  return y
    .option('target', TARGET_OPTION)
    .option('prefix', PREFIX_OVERRIDE_OPTION)
    .option('gc-maxlifetime', GC_MAXLIFETIME_OVERRIDE_OPTION);
}

/** The key provider options and `--prefix` with its default. */
export function keyOptions<T>(y: Argv<T>) {
  return keyProviderOptions(y).option('prefix', { type: 'string', default: DEFAULT_PREFIX, describe: 'Redis key prefix' });
}

/** `--gc-maxlifetime` and `--serialize-handler` with their defaults (plan). */
export function phpOptions<T>(y: Argv<T>) {
  return y
    .option('gc-maxlifetime', {
      type: 'number',
      default: DEFAULT_GC_MAXLIFETIME,
      describe: "session.gc_maxlifetime in seconds, as in the PHP application's php.ini",
    })
    .option('serialize-handler', {
      type: 'string',
      choices: HANDLERS,
      default: 'php',
      describe: "session.serialize_handler, as in the application's php.ini",
    });
}

/** `{ [name]: value }` when the value is given, `{}` otherwise (for exactOptionalPropertyTypes). */
export function given<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value !== undefined ? { [name]: value } : {}) as { [P in K]?: V };
}

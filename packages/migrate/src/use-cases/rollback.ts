/**
 * The rollback use case, the way back (docs/rollback.md): write the Redis sessions back as plaintext
 * files (to one save_path, or to every files source of a plan), or remove the migrated keys. The
 * rules: ../rollback.ts. Prints nothing; the warnings an operator must read before it acts go to
 * `onNotice` first.
 */
import { resolve } from 'node:path';
import { UserFacingError, addCounts, printable } from '@session-migrate/common';
import type { EnvelopeCodec, KeyProvider } from '@session-migrate/envelope';
import { SAVE_PATH_FAILS_AT, parseFilesSavePath } from '@session-migrate/php-ini';
import { openSource, sourceLabel } from '@session-migrate/sources';
import type { RedisConnection, TlsFiles } from '@session-migrate/redis';
import type { Plan, PlanSource } from '../plan.ts';
import {
  checkBaseDir,
  rollbackRemoveKeys,
  rollbackToFiles,
  rollbackToFilesMany,
  type RemoveKeysReport,
  type RollbackManyReport,
  type RollbackToFilesReport,
} from '../rollback.ts';
import {
  checkMasterWaitMs,
  checkTargetGivenNow,
  withCodecForPlan,
  openTarget,
  targetFrom,
  resolvePlanDefaults,
  sourceRowLabel,
  warnToProcess,
  withWarnings,
  type OnWarning,
  type ResolvedPlanDefaults,
} from './shared.ts';

export const WARNING_TO_FILES =
  'WARNING: rollback to files writes session contents to disk in PLAINTEXT again (as before the migration). ' +
  'Only sessions whose IDs are listed (the sess_<id> files of --ids-from, default --to) can be written back: ' +
  'the Redis key names are a keyed hash and do not reveal the ID; sessions created only in Redis are lost for PHP on files (those users log in again).';
export const WARNING_REMOVE_KEYS =
  'WARNING: --remove-keys deletes the migrated sessions from Redis. Users whose session exists only in Redis ' +
  '(logged in or updated since the cutover) are logged out; PHP must be back on the files handler first.';

/**
 * The --remove-keys warning for a plan's sources: WARNING_REMOVE_KEYS (the files handler) without a
 * plan or when every source is a files directory; for a plan whose sources are phpredis keys, PHP
 * must be back on the phpredis handler (its plaintext keys, gone after purge); both kinds: the
 * handler each source was served by.
 * @param sources the plan's sources (undefined: no plan given)
 * @param filesPurged no files source of the plan holds a session file now (filesSourcesPurged): adds that
 *   every user they served logs in again
 */
export function removeKeysWarning(sources: ReadonlyArray<Pick<PlanSource, 'kind'>> | undefined, filesPurged = false): string {
  return baseRemoveKeysWarning(sources) + (filesPurged ? ` ${FILES_PURGED}` : '');
}

/** removeKeysWarning's clause when no files source of the plan holds a session file any more (filesSourcesPurged). */
const FILES_PURGED =
  "The plan's files source directories hold no session file now (purge ran?): every user of those sources logs in again.";

/**
 * Whether the plan has a files source and none of its files sources holds a session file (a
 * `sess_<id>` name, a symlink so named included) now: after purge, every session exists only in
 * Redis. False when a directory (or a subdirectory of its layout) cannot be read, or its save_path
 * is bad: the clause is said only when known. Stops at the first session file.
 * @param sources the plan's sources (undefined: no plan given)
 */
function filesSourcesPurged(sources: readonly PlanSource[] | undefined): boolean {
  const files = (sources ?? []).filter((d): d is Extract<PlanSource, { kind: 'files' }> => d.kind === 'files');
  const empty = (savePath: string): boolean => {
    try {
      for (const c of openSource(`files:${savePath}`).candidates())
        if (c.kind === 'candidate' || c.reason === 'unreadable' || c.reason === 'symlink') return false;
      return true;
    } catch {
      return false;
    }
  };
  return files.length > 0 && files.every((d) => empty(d.savePath));
}

/** removeKeysWarning without its purge clause. */
function baseRemoveKeysWarning(sources: ReadonlyArray<Pick<PlanSource, 'kind'>> | undefined): string {
  if (sources?.some((d) => d.kind === 'redis') !== true) return WARNING_REMOVE_KEYS;
  if (sources.some((d) => d.kind === 'files'))
    return WARNING_REMOVE_KEYS.replace(
      'PHP must be back on the files handler first.',
      "PHP must be back on each source's own handler first (files for the files sources, phpredis on its plaintext keys for the Redis sources).",
    );
  return (
    'WARNING: --remove-keys deletes the migrated sessions from Redis. PHP must be back on the phpredis handler ' +
    '(its plaintext keys) first: users whose session exists only in the migrated keys (logged in or updated since ' +
    'the cutover, and every user once purge deleted the plaintext keys) are logged out.'
  );
}

export interface RollbackOptions {
  /** A plan file whose target, key provider, prefix and gc_maxlifetime are the defaults. */
  plan?: string;
  target?: string;
  /** Where the key comes from; default: the plan's provider. */
  key?: KeyProvider;
  prefix?: string;
  /** Seconds: the written files' mtime is now + remaining TTL - gc_maxlifetime. */
  gcMaxlifetime?: number;
  /** `files:SAVE_PATH` to write the sessions back to (layout and mode from the save_path). */
  to?: string;
  /** With `to` only: `files:DIR` whose `sess_<id>` names give the session IDs (default: the `to` directory). */
  idsFrom?: string;
  /** Write back to every files source of the plan, each to its own save_path with the IDs it lists. */
  toSources?: boolean;
  /** Delete the migrated keys instead. */
  removeKeys: boolean;
  dryRun: boolean;
  /** TLS files of the target (replace the plan's). */
  tls?: TlsFiles;
  /**
   * How long to wait for a failover to finish, ms, 0 to 600000 (checkMasterWaitMs; default 30000,
   * DEFAULT_FAILOVER_WAIT_MS; 0 looks once): behind Sentinel, for the master the sentinels report
   * when the target is opened (openTarget); in a Redis Cluster (the target), for a replica to take
   * over the slots of a master lost mid-scan. None in time: one line, nothing written or deleted, exit 2 (run again).
   */
  masterWaitMs?: number;
  /** Warning lines as they arise (OnWarning): the target connection's notes. Default: warnToProcess (`process.emitWarning(line, { type: 'SessionMigrateWarning' })`); pass a function to take them instead. */
  onWarning?: OnWarning;
  /**
   * The warnings to read before anything is done (WARNING_TO_FILES, removeKeysWarning, Redis sources
   * not written back). Default: warnToProcess, as onWarning's.
   */
  onNotice?: (line: string) => void;
}

/**
 * What rollback did, by mode. `ok` is false when some session failed or a file was held by PHP, or
 * no session in Redis had a listed ID while a stale file was removed (checkSomeIdListed): the CLI's exit 1.
 */
export type RollbackReport =
  | { mode: 'remove-keys'; prefix: string; report: RemoveKeysReport; ok: true }
  | {
      mode: 'to';
      prefix: string;
      to: string;
      layout: { dir: string; depth: number; mode: number };
      gcMaxlifetime: number;
      report: RollbackToFilesReport;
      ok: boolean;
    }
  | { mode: 'to-sources'; prefix: string; labels: string[]; report: RollbackManyReport; ok: boolean };

type Connect = (command: 'rollback-to-files' | 'rollback-remove-keys') => Promise<RedisConnection>;

/**
 * Runs a rollback in one of three modes (exactly one of `to`, `toSources`, `removeKeys`).
 * @throws UserFacingError for bad options (not exactly one mode, toSources without plan, idsFrom
 *   without to), an unreadable key, a bad save_path, a plan with no files source (toSources), a
 *   failed connect, or (to files, exit 2) no session in Redis with a listed ID and nothing else
 *   changed (checkSomeIdListed), or (--remove-keys, exit 2) no value under the prefix opened with the key
 *   while some are sealed under a key ID it does not hold (checkSomeKeyOpened).
 */
export async function rollback(given: RollbackOptions): Promise<RollbackReport> {
  const options = withWarnings(given);
  if ([options.to !== undefined, options.removeKeys, options.toSources === true].filter(Boolean).length !== 1) {
    throw new UserFacingError(
      'rollback needs exactly one of --to files:SAVE_PATH, --to-sources (with --plan) or --remove-keys (see --help)',
    );
  }
  if (options.toSources === true && options.plan === undefined)
    throw new UserFacingError('--to-sources writes the sessions back to the sources of a plan: give --plan');
  // "--ids-from needs --to" is this use case's rule, not the CLI's (packages/cli/src/option-needs.ts):
  // a library caller's idsFrom must not be ignored either (with removeKeys every migrated key would go,
  // not only the sessions it lists). The CLI does not check it again.
  if (options.idsFrom !== undefined && options.to === undefined) {
    throw new UserFacingError(
      `--ids-from needs --to files:SAVE_PATH; ${options.removeKeys ? '--remove-keys removes every migrated key' : '--to-sources takes the IDs of each source directory'}`,
    );
  }
  checkMasterWaitMs(options.masterWaitMs); // bad input: exit 2 before anything is read
  const r = resolvePlanDefaults(options, {
    missing: 'rollback needs --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)',
  });
  checkTargetGivenNow(r, options.tls); // bad URL or TLS options: exit 2 before anything is opened
  const connect: Connect = (command) =>
    openTarget(targetFrom(r, options.tls), {
      command,
      prefix: r.prefix,
      // A dry run is refused where the real run is (a replica), not counted as if it could delete.
      write: command === 'rollback-remove-keys',
      ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
      ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
    });
  const notice = options.onNotice ?? warnToProcess;
  // The key's codec is wiped when the rollback ends, however it ends (withCodecForPlan).
  return withCodecForPlan(r, ({ codec }) => rollbackWithCodec(options, r, connect, codec, notice));
}

/** rollback once its options are checked, in its mode, with the key's codec (wiped by the caller). */
async function rollbackWithCodec(
  options: RollbackOptions,
  r: ResolvedPlanDefaults,
  connect: Connect,
  codec: EnvelopeCodec,
  notice: (line: string) => void,
): Promise<RollbackReport> {
  if (options.removeKeys) {
    // Bad input first (a failed connect is one line), the warning after, before anything is deleted.
    const client = await connect('rollback-remove-keys');
    try {
      notice(removeKeysWarning(r.plan?.sources, filesSourcesPurged(r.plan?.sources)));
      const report = await rollbackRemoveKeys({ client, codec, prefix: r.prefix, dryRun: options.dryRun });
      checkSomeKeyOpened(report, r.prefix, codec.keyIds);
      return { mode: 'remove-keys', prefix: r.prefix, report, ok: true };
    } finally {
      client.close();
    }
  }
  if (options.toSources === true) return rollbackToSources(options, r, connect, codec, notice);
  return rollbackToSavePath(options, r, connect, codec, notice);
}

/**
 * --remove-keys's rule for a key that opens none of the migrated values: when no value under the
 * prefix opened with the key given (none removed, rewritten or gone meanwhile) while some are sealed
 * under a key ID it does not hold (RemoveKeysReport.leftKeyIds), nothing was rolled back and the
 * likely cause is the wrong key (or a ring whose key that sealed them was retired): exit 2, one line
 * naming how many did not open, the key IDs (public, docs/keys.md) and the fix. Values left while
 * some opened stay a success (they may not be ours: the `left N that do not open` count).
 * test/rollback.test.ts "--remove-keys with a key that opens none".
 * @param keyIds the key IDs of the key given (current first: EnvelopeCodec.keyIds)
 * @throws UserFacingError (exit 2) as said
 */
function checkSomeKeyOpened(report: RemoveKeysReport, prefix: string, keyIds: readonly string[]): void {
  if (report.leftKeyIds === undefined || report.removed + report.leftChanged + report.goneMeanwhile > 0) return;
  const sealed = Object.entries(report.leftKeyIds)
    .map(([id, n]) => `${id} (${n})`)
    .join(', ');
  throw new UserFacingError(
    `rollback ${report.dryRun ? 'would remove' : 'removed'} nothing: none of the ${report.leftNotOpening} key(s) under "${printable(prefix)}" opens with the key given ` +
      `(key ID ${keyIds.join(', ')}); sealed under key ID ${sealed}: give the key or key ring that sealed them: --key-file FILE or --key-ring FILE`,
    2,
  );
}

/** A `files:` save_path as a layout (absolute directory, depth, file mode). @throws UserFacingError naming `what`. */
function layoutOf(savePath: string, what: string): { dir: string; depth: number; mode: number } {
  const parsed = parseFilesSavePath(savePath);
  const fatal = parsed.findings.find((f) => f.severity === SAVE_PATH_FAILS_AT);
  if (fatal !== undefined) throw new UserFacingError(`${what}: ${fatal.message}`);
  return { dir: resolve(parsed.path), depth: parsed.depth, mode: parsed.mode };
}

/** The session IDs a directory lists (names only; a symlink named sess_<id> too, so rollback reports it refused). */
function* idsOf(idSource: ReturnType<typeof openSource>): Generator<string> {
  for (const c of idSource.candidates()) {
    if (c.kind === 'candidate') yield c.id;
    else if (c.reason === 'symlink') {
      const m = /(?:^|\/)sess_([^/]+)$/.exec(c.location);
      if (m !== null) yield m[1]!;
    }
  }
}

/** rollback --to files:SAVE_PATH: the sessions whose IDs `idsFrom` (default: the same directory) lists. */
async function rollbackToSavePath(
  options: RollbackOptions,
  r: ResolvedPlanDefaults,
  connect: Connect,
  codec: EnvelopeCodec,
  notice: (line: string) => void,
): Promise<RollbackReport> {
  const to = options.to!;
  if (!to.startsWith('files:') || to.length === 'files:'.length)
    throw new UserFacingError(
      `--to must be files:SAVE_PATH (for example files:/var/lib/php/sessions or 'files:2;0600;/var/lib/php/sessions')`,
    );
  const layout = layoutOf(to.slice('files:'.length), `--to ${to}`);
  // Everything checked before the warning (bad input gets one line): the directory written to (also
  // when the IDs come from --ids-from), the listing, the target.
  checkBaseDir(layout);
  // The IDs come from a directory listing (names only; contents are not read).
  const ids = idsOf(openSource(options.idsFrom ?? to));
  const client = await connect('rollback-to-files');
  try {
    notice(WARNING_TO_FILES);
    const report = await rollbackToFiles({
      client,
      codec,
      prefix: r.prefix,
      layout,
      ids,
      gcMaxlifetime: r.gcMaxlifetime,
      dryRun: options.dryRun,
    });
    const someListed = checkSomeIdListed(report, report.counts, {
      dryRun: options.dryRun,
      prefix: r.prefix,
      listing: printable(options.idsFrom ?? to),
      retry: `rollback ${planOrOptions(options)} --to '${printable(to)}' --ids-from files:LISTING`,
      removeKeys: `rollback ${planOrOptions(options)} --remove-keys`,
    });
    return {
      mode: 'to',
      prefix: r.prefix,
      to,
      layout,
      gcMaxlifetime: r.gcMaxlifetime,
      report,
      ok: report.counts.failed === 0 && report.counts['held-by-php'] === 0 && someListed,
    };
  } finally {
    client.close();
  }
}

/**
 * rollback --to-sources: every files source of the plan gets its sessions back, each in its own
 * save_path (layout and mode from it) for the IDs it lists; a key is without a known ID only when no
 * source listed it. Redis sources of the plan are not written back (there is no way back to
 * plaintext phpredis keys; docs/rollback.md).
 */
async function rollbackToSources(
  options: RollbackOptions,
  r: ResolvedPlanDefaults,
  connect: Connect,
  codec: EnvelopeCodec,
  notice: (line: string) => void,
): Promise<RollbackReport> {
  const plan: Plan = r.plan!;
  const files = plan.sources
    .map((d, i) => ({ d, i }))
    .filter((x): x is { d: Extract<PlanSource, { kind: 'files' }>; i: number } => x.d.kind === 'files');
  if (files.length === 0)
    throw new UserFacingError(
      `plan ${options.plan}: no files: source to write back to (rollback to plaintext Redis keys is not supported; see docs/rollback.md)`,
    );
  // Everything checked before the warnings (bad input gets one line): each directory, its listing, the target.
  const targets = files.map(({ d }) => {
    const layout = layoutOf(d.savePath, `plan ${options.plan}: source files:${printable(d.savePath)}`);
    checkBaseDir(layout);
    return { layout, ids: idsOf(openSource(`files:${d.savePath}`)) };
  });
  const client = await connect('rollback-to-files');
  try {
    notice(WARNING_TO_FILES);
    const skipped = plan.sources.filter((d) => d.kind === 'redis');
    if (skipped.length > 0)
      notice(
        `note: ${skipped.length} Redis source(s) of the plan are not written back (${skipped.map(sourceLabel).join(', ')}): their sessions stay only in Redis`,
      );
    const report = await rollbackToFilesMany({
      client,
      codec,
      prefix: plan.target.prefix,
      targets,
      gcMaxlifetime: r.gcMaxlifetime,
      dryRun: options.dryRun,
    });
    const counts = report.targets.reduce<Record<string, number>>((sum, t) => addCounts(sum, t.counts), {});
    const one = files.length === 1 ? files[0]!.d.savePath : undefined;
    const someListed = checkSomeIdListed(report, counts, {
      dryRun: options.dryRun,
      prefix: plan.target.prefix,
      listing: one !== undefined ? `the plan's source files:${printable(one)}` : `any of the plan's ${files.length} files sources`,
      // --ids-from goes with --to, one directory at a time.
      retry: `${one !== undefined ? '' : 'for each files source, '}rollback ${planOrOptions(options)} --to '${one !== undefined ? `files:${printable(one)}` : 'files:SAVE_PATH'}' --ids-from files:LISTING`,
      removeKeys: `rollback ${planOrOptions(options)} --remove-keys`,
    });
    return {
      mode: 'to-sources',
      prefix: plan.target.prefix,
      labels: files.map(({ d, i }) => sourceRowLabel(d, i)),
      report,
      ok: (counts.failed ?? 0) + (counts['held-by-php'] ?? 0) === 0 && someListed,
    };
  } finally {
    client.close();
  }
}

/** The plan option of a command to suggest (`--plan PLAN`), or a placeholder for the options given without one. */
function planOrOptions(options: RollbackOptions): string {
  return options.plan !== undefined ? `--plan ${printable(options.plan)}` : '<the same --target and key options>';
}

/**
 * After a rollback to files: whether some session in Redis had its ID listed (or Redis holds none
 * under the prefix). When none had (`keysWithoutKnownId` = `keysInRedis` > 0), the listing read is
 * empty or unrelated, typically because purge deleted the session files, the only place the IDs
 * were (the key names are a keyed hash; docs/rollback.md): nothing was written back, and PHP on
 * files would log every one of those users out. Then, if the run changed nothing else either (no
 * stale file of a destroyed session removed, no failure or held file to report), one line naming
 * the count and the fix, exit 2 (docs/operator-guide.md, Exit codes: nothing changed); else false
 * (exit 1: done in part; the report's NOT WRITTEN line says why).
 * @param report the Redis counts; `counts` the outcome counts over every directory
 * @param o `listing`: where the IDs were read, as the line names it; `retry` and `removeKeys`: the
 *   commands the line suggests
 * @throws UserFacingError (exit 2) as said
 */
function checkSomeIdListed(
  report: Pick<RollbackManyReport, 'keysInRedis' | 'keysWithoutKnownId'>,
  counts: Readonly<Record<string, number>>,
  o: { dryRun: boolean; prefix: string; listing: string; retry: string; removeKeys: string },
): boolean {
  if (report.keysInRedis === 0 || report.keysWithoutKnownId < report.keysInRedis) return true;
  const other = (counts['destroyed-file-removed'] ?? 0) + (counts.failed ?? 0) + (counts['held-by-php'] ?? 0);
  if (other > 0) return false;
  throw new UserFacingError(
    `rollback ${o.dryRun ? 'would write' : 'wrote'} nothing: none of the ${report.keysInRedis} session(s) under "${printable(o.prefix)}" in Redis ` +
      `has its session ID listed by ${o.listing} (no sess_<id> file there names it: deleted by purge?), so PHP on files would log all of those users out. ` +
      `Give the IDs from a copy of the session directory's sess_<id> names made before purge (empty files are enough): ${o.retry}; ` +
      `without one, the only way back to files is ${o.removeKeys} with PHP on files (every user logs in again)`,
    2,
  );
}

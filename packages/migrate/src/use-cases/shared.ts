/**
 * What every use case (plan, apply, verify, purge, rollback, rotate) shares: the checks of a prefix
 * and of gc_maxlifetime, the key provider a plan recorded, opening the target and the sources
 * (given now or recorded in a plan), and "plan defaults, options override" (resolvePlanDefaults),
 * in one place. Nothing here prints: warnings go to the caller's `onWarning`.
 */
import { resolve } from 'node:path';
import { DEFAULT_GC_MAXLIFETIME, DEFAULT_PREFIX, UserFacingError, printable, checkWholeNumber } from '@session-migrate/common';
import {
  EnvelopeCodec,
  describeKeyProvider,
  keyRingIds,
  loadKeyRing,
  loadSodium,
  prefixProblem,
  wipeKeyRing,
  type KeyProvider,
  type KeyRingIds,
} from '@session-migrate/envelope';
import type { SerializeHandler } from '@session-migrate/php-session';
import {
  DEFAULT_MAX_SESSION_BYTES,
  FilesSource,
  checkDistinctSources,
  checkSourceTargetPrefixes,
  decidePhpUids,
  describeUid,
  openAnySource,
  openRecordedRedisSource,
  openSource,
  resolvePhpUser,
  sourceLabel,
  type OpenRedisSourceOptions,
  type RedisSourceDescription,
  type Source,
  type SourceDescription,
} from '@session-migrate/sources';
import {
  classifiedLine,
  RedisConnection,
  aclRuleFor,
  specFromRecorded,
  specFromUrl,
  tlsFilesEmpty,
  urlWithUser,
  type AclCommand,
  type ClassifiedError,
  type ConnectionDescription,
  type OpenOptions,
  type RedisSpec,
  type TlsFiles,
} from '@session-migrate/redis';
import { keyMismatch, readPlanFile, type Plan, type PlanKey, type PlanSource } from '../plan.ts';

/**
 * Receives one warning line (no `session-migrate:` prefix, no newline): a password in a URL, options
 * that override a plan, a connection's notes (an ACL user without CLUSTER NODES, keys in slots a
 * master does not serve), a shard whose replicas apply could not compare with the plan, ... Lines
 * name files, servers and counts, never a session's contents, a key or a password. A use case given
 * none sends each line to warnToProcess.
 */
export type OnWarning = (line: string) => void;

/** The `type` (the Error's `name`) of the process warnings warnToProcess emits. */
export const WARNING_TYPE = 'SessionMigrateWarning';

/**
 * The use cases' default OnWarning: `process.emitWarning(line, { type: 'SessionMigrateWarning' })`,
 * Node's channel for a library's warnings (https://nodejs.org/api/process.html#processemitwarningwarning-options).
 * Node prints each on stderr as `(node:PID) SessionMigrateWarning: LINE` unless the program listens
 * to `process.on('warning')` (the warning's `name` is WARNING_TYPE) or runs with `--no-warnings`.
 * A caller who passes `onWarning` (the CLI does) gets every line there instead, and none here.
 */
export function warnToProcess(line: string): void {
  process.emitWarning(line, { type: WARNING_TYPE });
}

/**
 * The options of a use case with its warnings routed: `onWarning` as given, else warnToProcess (the
 * one home of that default, so no warning of a use case is dropped for want of a listener).
 */
export function withWarnings<T extends { onWarning?: OnWarning }>(options: T): T & { onWarning: OnWarning } {
  return { ...options, onWarning: options.onWarning ?? warnToProcess };
}

// ---------------------------------------------------------------- checks

/**
 * Checks a key prefix: printable, no spaces, not empty; a target prefix (`layout`, the default) also
 * without `{` or `}`, which would move key layout 2's hash tag (docs/envelope.md).
 * @returns the prefix. @throws UserFacingError naming the problem.
 */
export function checkPrefix(prefix: string, layout = true): string {
  if (prefix === '' || !/^[\x21-\x7e]{1,128}$/.test(prefix)) {
    throw new UserFacingError(`prefix "${printable(prefix)}" must be 1 to 128 printable ASCII characters without spaces`);
  }
  const problem = layout ? prefixProblem(prefix) : undefined;
  if (problem !== undefined) throw new UserFacingError(`prefix "${printable(prefix)}" ${problem}`);
  return prefix;
}

/**
 * session.gc_maxlifetime as a TTL: a whole number of seconds from 1 to 2^31-1 (Redis EXPIRE takes a
 * signed 64-bit value; PHP's ini value is a zend_long, and phpredis passes it as an int).
 * @returns the seconds. @throws UserFacingError.
 */
export function checkGcMaxlifetime(seconds: number): number {
  return checkWholeNumber('gc-maxlifetime', seconds, 1, 2 ** 31 - 1, 'seconds');
}

/** The longest `--master-wait-ms` a command takes, ms (10 minutes). */
export const MAX_MASTER_WAIT_MS = 600_000;

/**
 * `--master-wait-ms` of every command with a target (plan, apply, verify, purge, rollback, rotate):
 * how long a command waits for a failover to finish, ms. One operator concept, one value for both
 * topologies that fail over by themselves: behind Sentinel, the wait for the master the sentinels
 * report (when the target or a Redis source is opened: commandRedisWait; apply's end check and verify's scan:
 * RedisConnection.followSentinelMaster); in a Redis
 * Cluster, the wait for a replica to take over the slots of a master lost during a SCAN
 * (OpenOptions.failoverWaitMs, RedisConnection.scan). Absent: their default, DEFAULT_FAILOVER_WAIT_MS
 * (30 s); 0: look once, no wait.
 * @returns the value (undefined when not given). @throws UserFacingError naming the option.
 */
export function checkMasterWaitMs(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : checkWholeNumber('master-wait-ms', ms, 0, MAX_MASTER_WAIT_MS, 'milliseconds');
}

/**
 * Wraps an error from Redis in the middle of a use case into a one-line UserFacingError with its fix:
 * `Redis at <url> failed during <during>: <message> (<fix>)` (classifiedFailure). `err`: as thrown,
 * classified by `conn` (or, given only a URL, its first line without a fix); a UserFacingError is
 * returned unchanged.
 */
export function redisFailure(err: unknown, conn: RedisConnection | string, during: string): UserFacingError {
  if (err instanceof UserFacingError) return err;
  if (typeof conn !== 'string') return classifiedFailure(conn.classify(err), conn.url, during);
  return classifiedFailure({ message: ((err as Error).message ?? String(err)).split('\n')[0] ?? '', fix: undefined }, conn, during);
}

/**
 * redisFailure's line for an error classified already (classifyRedisError's result, e.g. verify's
 * refusedCommand): `Redis at <url> failed during <during>: <message> (<fix>)`.
 */
export function classifiedFailure(c: Pick<ClassifiedError, 'message' | 'fix'>, url: string, during: string): UserFacingError {
  return new UserFacingError(`Redis at ${url} failed during ${during}: ${classifiedLine(c)}`);
}

// ---------------------------------------------------------------- keys

/** What a plan records about a provider (never the key, never a command line). */
export function planKeyFor(p: KeyProvider, ids: { keyId: string; lookupId: string }): PlanKey {
  switch (p.kind) {
    case 'file':
      return { provider: 'file', file: resolve(p.path), ...ids };
    case 'ring':
      return { provider: 'ring', file: resolve(p.path), ...ids };
    case 'env':
      return { provider: 'env', env: p.name, ...ids };
    case 'command':
      return { provider: 'command', ...ids };
  }
}

/**
 * The provider a plan was made with, to read the key again.
 * @throws UserFacingError for a plan made with --key-command (the command is not stored).
 */
export function providerFromPlan(key: PlanKey, planPath: string): KeyProvider {
  switch (key.provider) {
    case 'file':
      return { kind: 'file', path: key.file ?? '' };
    case 'ring':
      return { kind: 'ring', path: key.file ?? '' };
    case 'env':
      return { kind: 'env', name: key.env ?? '' };
    case 'command':
      throw new UserFacingError(
        `plan ${planPath} was made with --key-command, which plans do not store; give --key-command (or another key option) again`,
      );
  }
}

/**
 * Loads a provider's ring and builds a codec; the ring's key buffers are zeroed before returning.
 * @returns the codec (wipe it when done) and the ring's IDs (current key ID, lookup ID).
 * @throws UserFacingError for a missing, unreadable or malformed key (envelope/src/key-file.ts).
 */
export async function codecFromProvider(p: KeyProvider): Promise<{ codec: EnvelopeCodec; ids: KeyRingIds }> {
  const ring = await loadKeyRing(p);
  try {
    const ids = keyRingIds(await loadSodium(), ring);
    return { codec: await EnvelopeCodec.fromRing(ring), ids };
  } finally {
    wipeKeyRing(ring);
  }
}

/**
 * codecFromProvider for a use case that took its defaults from resolvePlanDefaults, refusing a key
 * that does not name sessions as the plan's did (apply refuses the same: keyMismatch): with another
 * lookup key every session gets another name, so verify would call them all missing, purge would
 * prove none, rollback and rotate would find none.
 * @throws UserFacingError as codecFromProvider, and one line naming the key and both IDs on a mismatch
 */
export async function codecForPlan(
  r: Pick<ResolvedPlanDefaults, 'plan' | 'planPath' | 'provider'>,
): Promise<{ codec: EnvelopeCodec; ids: KeyRingIds }> {
  const opened = await codecFromProvider(r.provider);
  const mismatch =
    r.plan !== undefined
      ? keyMismatch(r.plan, { keyId: opened.codec.keyId, lookupId: opened.codec.lookupId, keyDescription: describeKeyProvider(r.provider) })
      : undefined;
  if (mismatch !== undefined) {
    opened.codec.wipe();
    throw new UserFacingError(
      `plan ${r.planPath ?? ''} no longer matches: ${mismatch}; give the key the plan was made with, or re-run plan`,
    );
  }
  return opened;
}

/**
 * Runs `use` with codecForPlan's codec and wipes the codec (its derived keys, EnvelopeCodec.wipe)
 * when `use` returns or throws: the one place the use cases that read a plan's key (verify, purge,
 * rollback, rotate) let go of key material, so that no path keeps it.
 * @throws UserFacingError as codecForPlan (nothing to wipe then), and whatever `use` throws
 */
export async function withCodecForPlan<T>(
  r: Pick<ResolvedPlanDefaults, 'plan' | 'planPath' | 'provider'>,
  use: (opened: { codec: EnvelopeCodec; ids: KeyRingIds }) => Promise<T>,
): Promise<T> {
  const opened = await codecForPlan(r);
  try {
    return await use(opened);
  } finally {
    opened.codec.wipe();
  }
}

// ---------------------------------------------------------------- plan defaults, options override

/** The options verify, purge and rollback take either from a plan or given now (given now wins). */
export interface PlanDefaultsInput {
  /** Path of a plan file; its target, key provider, prefix, gc_maxlifetime and serialize_handler are the defaults. */
  plan?: string;
  /** Target URL given now (replaces the plan's recorded target). */
  target?: string;
  key?: KeyProvider;
  prefix?: string;
  /** Seconds. */
  gcMaxlifetime?: number;
  serializeHandler?: SerializeHandler;
}

/** What resolvePlanDefaults settled on. */
export interface ResolvedPlanDefaults {
  /** The plan read from `input.plan`, if given. */
  plan?: Plan;
  planPath?: string;
  /** The target URL (given now, else the plan's). */
  target: string;
  /** True when the target is the plan's recorded one (open it with `{ recorded: plan.target }`). */
  fromPlan: boolean;
  provider: KeyProvider;
  prefix: string;
  /** Seconds, checked (1 to 2^31-1). */
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  /** Bytes: the plan's limit, else DEFAULT_MAX_SESSION_BYTES. */
  maxSessionBytes: number;
  /** Options given now that differ from the plan's values, e.g. `--gc-maxlifetime 60 (plan: 1440)`; empty without a plan. */
  overrides: string[];
}

/**
 * "Plan defaults, options override", the one rule verify, purge and rollback follow: each value is
 * the option given now, else the plan's, else the built-in default (prefix DEFAULT_PREFIX,
 * gc_maxlifetime DEFAULT_GC_MAXLIFETIME s, serialize_handler php). Checks, in order: the plan file is
 * read; a target and a key provider exist (else `missing`); `between()` (the caller's own checks);
 * the prefix; gc_maxlifetime.
 * @param missing the error message when there is no target or no key provider (or `alsoMissing`).
 * @throws UserFacingError for an unreadable plan, `missing`, a bad prefix or gc_maxlifetime.
 */
export function resolvePlanDefaults(
  input: PlanDefaultsInput,
  checks: { missing: string; alsoMissing?: (plan: Plan | undefined) => boolean; between?: () => void },
): ResolvedPlanDefaults {
  const plan = input.plan !== undefined ? readPlanFile(input.plan) : undefined;
  const target = input.target ?? plan?.target.url;
  const provider = input.key ?? (plan !== undefined && input.plan !== undefined ? providerFromPlan(plan.key, input.plan) : undefined);
  if (checks.alsoMissing?.(plan) === true || target === undefined || provider === undefined) throw new UserFacingError(checks.missing);
  checks.between?.();
  const prefix = checkPrefix(input.prefix ?? plan?.target.prefix ?? DEFAULT_PREFIX);
  const gcMaxlifetime = checkGcMaxlifetime(input.gcMaxlifetime ?? plan?.php.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME);
  const serializeHandler = input.serializeHandler ?? plan?.php.serializeHandler ?? 'php';
  const overrides =
    plan === undefined
      ? []
      : [
          input.gcMaxlifetime !== undefined && input.gcMaxlifetime !== plan.php.gcMaxlifetime
            ? `--gc-maxlifetime ${input.gcMaxlifetime} (plan: ${plan.php.gcMaxlifetime})`
            : '',
          input.serializeHandler !== undefined && input.serializeHandler !== plan.php.serializeHandler
            ? `--serialize-handler ${input.serializeHandler} (plan: ${plan.php.serializeHandler})`
            : '',
          input.prefix !== undefined && input.prefix !== plan.target.prefix ? `--prefix (plan: ${printable(plan.target.prefix)})` : '',
          targetOverride(input.target, plan.target),
        ].filter((d) => d !== '');
  return {
    ...(plan !== undefined ? { plan, planPath: input.plan! } : {}),
    target,
    fromPlan: input.target === undefined && plan !== undefined,
    provider,
    prefix,
    gcMaxlifetime,
    serializeHandler,
    maxSessionBytes: plan?.limits.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES,
    overrides,
  };
}

/**
 * resolvePlanDefaults' note of a --target other than the plan's, or '' when it names the same server
 * and user. Both sides in one form (urlWithUser: canonical, with the user name, never a password):
 * the plan records its URL without the user name and the user beside it, so `redis://app@h:6379/0`
 * (or with a password) against a plan made with it was taken for another target. Only the plan's
 * URL is printed: the operator typed the other, and a user part written as `redis://SECRET@host`
 * (a password where the user name goes, RFC 3986 userinfo without ':') would be echoed (the rule of
 * packages/redis/src/connection.ts connectFailure); the plan's user is the one plan connected as.
 * @throws UserFacingError for a --target that does not parse (parseRedisUrl's line, as checkTargetGivenNow's)
 */
function targetOverride(given: string | undefined, planned: Plan['target']): string {
  if (given === undefined) return '';
  const plan = urlWithUser(planned.url, planned.username);
  return urlWithUser(given) === plan ? '' : `--target (plan: ${plan})`;
}

/**
 * Checks the target URL and TLS options given now (not the plan's) before anything is opened.
 * @throws UserFacingError for a bad URL or TLS option.
 */
export function checkTargetGivenNow(r: Pick<ResolvedPlanDefaults, 'fromPlan' | 'target'>, tls: TlsFiles | undefined): void {
  if (!r.fromPlan) specFromUrl(r.target, tls ?? {}, 'target');
}

// ---------------------------------------------------------------- the target

/**
 * How every command opens a Redis server, its target (openTarget) and its Redis sources (openSources,
 * openPlanSources): behind Sentinel it waits for a master during a failover in progress (the old
 * master down or demoted, no replica promoted yet): OpenOptions.waitForSentinelMaster, for
 * `failoverWaitMs` ms (the command's --master-wait-ms, checkMasterWaitMs; absent: the default,
 * DEFAULT_FAILOVER_WAIT_MS, 30 s), the same value that is a Redis Cluster SCAN's failover wait. The
 * choice lives here, not at each call site nor as the default of RedisConnection.open or of the
 * sources package: every command opens its servers through these three functions, so none can
 * forget it, while library callers keep the documented fail-at-once open. A host that answers and
 * refuses (password, ACL, TLS) still fails at once.
 * @param failoverWaitMs the command's --master-wait-ms, ms (checked), or undefined
 * @returns the open options to spread into RedisConnection.open's or a Redis source's options
 */
export function commandRedisWait(failoverWaitMs: number | undefined): { waitForSentinelMaster: true; failoverWaitMs?: number } {
  return { waitForSentinelMaster: true, ...(failoverWaitMs !== undefined ? { failoverWaitMs } : {}) };
}

/**
 * Where openTarget opens the target: a URL given now with the TLS files given now (`--tls-*`; absent:
 * none); what a plan recorded, with the TLS files given now replacing the recorded ones (absent or
 * empty: the recorded ones); or a spec already parsed from a URL (plan checks its URL before it
 * opens anything), which holds its TLS files already, so this form takes none (`tls?: never`).
 */
export type TargetFrom =
  { url: string; tls?: TlsFiles } | { recorded: ConnectionDescription; tls?: TlsFiles } | { spec: RedisSpec; tls?: never };

/**
 * The target of a command that takes `--target` or `--plan` (resolvePlanDefaults): the URL given now,
 * else what the plan recorded; with the TLS files given now (`--tls-*`).
 */
export function targetFrom(r: Pick<ResolvedPlanDefaults, 'fromPlan' | 'target' | 'plan'>, tls: TlsFiles | undefined): TargetFrom {
  return r.fromPlan ? { recorded: r.plan!.target, tls: tls ?? {} } : { url: r.target, tls: tls ?? {} };
}

/**
 * Opens the target of a use case (TargetFrom: a URL given now, a spec parsed from one, or what a plan
 * recorded). Behind Sentinel it waits for a master during a failover, up to `failoverWaitMs`
 * (commandRedisWait).
 * @param options.command the ACL rule of this command is named in NOPERM advice.
 * @param options.failoverWaitMs the command's --master-wait-ms, ms (also a cluster SCAN's wait).
 * @throws UserFacingError (exit 2) for a bad URL, bad TLS files or a failed connect, and (one line
 *   naming the master name) when no Sentinel master answers within the wait.
 */
export async function openTarget(
  from: TargetFrom,
  options: Omit<OpenOptions, 'aclRule' | 'waitForSentinelMaster'> & { command: AclCommand; prefix: string; onWarning?: OnWarning },
): Promise<RedisConnection> {
  const { command, prefix, onWarning, failoverWaitMs, ...open } = options;
  const tls = from.tls ?? {};
  const spec =
    'spec' in from
      ? from.spec
      : 'url' in from
        ? specFromUrl(from.url, tls, 'target', onWarning !== undefined ? { onWarning } : {})
        : specFromRecorded(from.recorded, 'target', tlsFilesEmpty(tls) ? {} : { override: tls });
  const topology = 'recorded' in from ? from.recorded.topology : spec.address.kind === 'sentinel' ? 'sentinel' : 'standalone';
  return RedisConnection.open(spec, {
    ...open,
    ...commandRedisWait(failoverWaitMs),
    aclRule: aclRuleFor(command, prefix, topology, spec.address.db),
    ...(onWarning !== undefined ? { onWarning } : {}),
  });
}

// ---------------------------------------------------------------- sources

export interface OpenSourcesOptions {
  /** Bytes: larger sessions are reported, not read. */
  maxSessionBytes: number;
  /** `--source-tls-*` (every Redis source of the command). */
  tls?: TlsFiles;
  /** purge deletes source keys: write access, the source-purge ACL rule. */
  write?: boolean;
  onWarning?: OnWarning;
  /**
   * The command's --master-wait-ms, ms: how long a Redis source waits for a failover, behind Sentinel
   * at open (commandRedisWait), in a Redis Cluster during its SCAN (OpenOptions.failoverWaitMs).
   */
  failoverWaitMs?: number;
}

/** The options every Redis source of a command is opened with (openSources, openPlanSources). */
function redisSourceOptions(options: OpenSourcesOptions): OpenRedisSourceOptions & { maxSessionBytes: number } {
  return {
    maxSessionBytes: options.maxSessionBytes,
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
    ...commandRedisWait(options.failoverWaitMs),
    ...(options.write === true ? { write: true, aclCommand: 'source-purge' as const } : {}),
  };
}

/** Closes every source (errors of one do not keep the others open). */
export async function closeSources(sources: readonly Source[]): Promise<void> {
  await Promise.allSettled(sources.map((s) => s.close()));
}

/**
 * Opens the sources given now (`files:DIR`, `redis:URL`), in order.
 * @throws UserFacingError for a source given twice (the same words), two that are the same directory
 *   (a symbolic link or bind mount) or the same keys, or one that cannot be opened; nothing stays open.
 */
export async function openSources(specs: readonly string[], options: OpenSourcesOptions): Promise<Source[]> {
  const seen = new Set<string>();
  for (const spec of specs) {
    const words = spec.trim();
    if (seen.has(words))
      throw new UserFacingError(`--source ${printable(words.replace(/[?].*$/s, ''))} is given twice: give each source once`);
    seen.add(words);
  }
  const opened: Source[] = [];
  try {
    for (const spec of specs) {
      opened.push(await openAnySource(spec, redisSourceOptions(options)));
    }
    checkDistinctSources(opened.map((s) => s.describe()));
    return opened;
  } catch (err) {
    await closeSources(opened);
    throw err;
  }
}

/**
 * Opens every source a plan recorded, in the plan's order: a files source by its save_path (its
 * directory and depth must still be what the plan says), a Redis source by its recorded connection.
 * @throws UserFacingError as openSources; nothing stays open.
 */
export async function openPlanSources(plan: Plan, planPath: string, options: OpenSourcesOptions): Promise<Source[]> {
  const opened: Source[] = [];
  try {
    for (const recorded of plan.sources) {
      if (recorded.kind === 'redis') {
        opened.push(await openRecordedRedisSource(recorded, redisSourceOptions(options)));
        continue;
      }
      const files = openSource(`files:${recorded.savePath}`, {
        maxSessionBytes: options.maxSessionBytes,
        ...(recorded.phpUids !== undefined ? { phpUids: recorded.phpUids } : {}),
      });
      opened.push(files);
      const now = files.describe();
      if (now.dir !== recorded.dir || now.depth !== recorded.depth) {
        throw new UserFacingError(`plan ${planPath}: source.savePath and source.dir disagree (edited by hand?); re-run plan`);
      }
    }
    return opened;
  } catch (err) {
    await closeSources(opened);
    throw err;
  }
}

/**
 * The files sources of a plan made before plans recorded the uids PHP runs as (`phpUids`), as
 * `files:DIR` labels: without it every owner's files would be taken, also ones PHP's files handler
 * refuses (packages/sources phpAcceptsOwner). apply refuses such a plan (it would copy a file another
 * user planted into a valid session); verify and purge warn and take every owner's files, as before.
 */
export function filesSourcesWithoutOwners(plan: Pick<Plan, 'sources'>): string[] {
  return plan.sources.filter((s) => s.kind === 'files' && !Array.isArray(s.phpUids)).map((s) => sourceLabel(s));
}

/** The warning of verify and purge for filesSourcesWithoutOwners (empty: none). */
export function ownersNotRecordedWarning(plan: Pick<Plan, 'sources'>, planPath: string): string | undefined {
  const old = filesSourcesWithoutOwners(plan);
  if (old.length === 0) return undefined;
  return `plan ${planPath} does not record the user PHP runs as for ${old.join(', ')} (made before session-migrate checked file owners): session files of every owner are taken; re-run plan (with --php-user if needed) so that only those PHP's files handler accepts are`;
}

/**
 * Sources given now (--source files:DIR) of a use case that also has a plan: a files source that is
 * one of the plan's directories takes the uids PHP runs as that the plan recorded for it, so verify
 * and purge skip the same foreign-owned files as apply did.
 */
export function takePlanOwners(sources: readonly Source[], plan: Pick<Plan, 'sources'> | undefined): void {
  if (plan === undefined) return;
  for (const s of sources) {
    if (!(s instanceof FilesSource)) continue;
    const d = s.describe();
    const recorded = plan.sources.find((p) => p.kind === 'files' && p.dir === d.dir && p.depth === d.depth);
    if (recorded?.kind === 'files' && Array.isArray(recorded.phpUids)) {
      s.acceptOwners(recorded.phpUids, recorded.phpUidsFrom ?? 'files');
    }
  }
}

/**
 * The uids of `--php-user NAME|UID` (repeatable) of verify and purge, resolved before anything is
 * opened (packages/sources resolvePhpUser, the resolver of plan --php-user); undefined when none.
 * @param planGiven whether a plan is given (`--plan`): only then does the refusal add that the plan
 *   records the user PHP runs as for its own sources.
 * @throws UserFacingError for an unknown user or a bad uid, or when no files source is given now
 *   (with a plan: the plan records the user PHP runs as for its own sources, plan --php-user changes it)
 */
export function phpUidsGivenNow(
  phpUsers: readonly string[] | undefined,
  specs: readonly string[],
  command: string,
  planGiven: boolean,
): number[] | undefined {
  if (phpUsers === undefined || phpUsers.length === 0) return undefined;
  if (!specs.some((s) => s.trim().startsWith('files:')))
    throw new UserFacingError(
      `${command} --php-user applies to a --source files:DIR given now` +
        (planGiven ? '; the plan records the user PHP runs as for its own sources (run plan again with --php-user to change it)' : ''),
    );
  return phpUsers.map(resolvePhpUser);
}

/**
 * The uids PHP runs as for the files sources given now (--source files:DIR) of verify and purge, the
 * same rule as plan's: `--php-user` (`given`) when given, else the plan's record for that directory
 * (takePlanOwners), else the owner of most session files, root aside (decidePhpUids). So a file
 * another local user planted in a shared session directory (Debian's 1733 /var/lib/php/sessions) is
 * `foreign-owner` there too: verify does not look for it in Redis, purge never deletes it (php-src
 * ext/session/mod_files.c, ps_files_open, refuses a file owned by neither root nor PHP's uid).
 * When files are left alone for their owner, says on `onWarning` which user was taken and how many
 * files other users own (counts and uids only, nothing read).
 * @param owners session files per owner of a source (default FilesSource.countOwners: lstat, names only)
 * @throws UserFacingError as decidePhpUids: owners in similar numbers and no --php-user, or users
 *   given that own none of the session files while others do
 */
export function decideOwnersGivenNow(
  sources: readonly Source[],
  plan: Pick<Plan, 'sources'> | undefined,
  given: readonly number[] | undefined,
  onWarning: OnWarning | undefined,
  owners: (s: FilesSource) => ReadonlyMap<number, number> = (s) => s.countOwners(),
): void {
  takePlanOwners(sources, plan);
  for (const s of sources) {
    if (!(s instanceof FilesSource)) continue;
    const d = s.describe();
    if (given === undefined && d.phpUids !== undefined) continue; // the plan's record
    const where = `source files:${d.savePath}`;
    const decision = decidePhpUids(owners(s), given, where, describeUid);
    if (given !== undefined && d.phpUids !== undefined && d.phpUids.join() !== decision.uids.join())
      onWarning?.(`note: --php-user overrides the plan's user for ${where} (uid ${d.phpUids.map(describeUid).join(', uid ')})`);
    s.acceptOwners(decision.uids, decision.inferred ? 'files' : 'php-user');
    const line = ownersDecisionNote(decision);
    if (line !== undefined) onWarning?.(`note: ${where}: ${line}`);
  }
}

/**
 * decideOwnersGivenNow's note when files are left alone for their owner: which user PHP is taken to
 * run as, and how many files other users own; undefined when every file is PHP's (one owner, root's
 * only, or none: nothing to say).
 */
function ownersDecisionNote(decision: ReturnType<typeof decidePhpUids>): string | undefined {
  if (decision.refused === 0) return undefined;
  const users = decision.uids.map((u) => `uid ${describeUid(u)}`).join(', ');
  const from = decision.inferred ? 'the owner of most of them: check it, or give --php-user' : '--php-user';
  return `session files owned by ${users} (${from}) and root's are PHP's; ${decision.refused} file(s) owned by other users are left alone: PHP's files handler refuses them, so they are no sessions of this application`;
}

/**
 * Whether the plan knows no user PHP runs as for this source: a files source whose plan saw no
 * session file (`phpUids: []`), so only root's files are taken (packages/sources decidePhpUids).
 *
 * The one home of the owner-unknown rule: in such a source, session files of a non-root owner are
 * most likely PHP's own sessions, written since the plan under a user it could not know. apply fails
 * on them (ApplyResult.ownerUnknown), verify fails (`owner-unknown`), purge keeps them and fails;
 * the fix is plan --php-user NAME, then apply. Each counts them in the walk it makes anyway (verify.ts
 * checkSources, purge's purgeAll with PurgeOptions.nonRootFiles); verify --no-presence walks nothing
 * and reports the check as not made (ownerUnknownNotChecked).
 */
export function phpUserUnknown(d: { readonly kind: string; readonly phpUids?: readonly number[] | undefined }): boolean {
  return d.kind === 'files' && Array.isArray(d.phpUids) && d.phpUids.length === 0;
}

/** Refuses a Redis source whose keys overlap the target's prefix on the same data. @throws UserFacingError. */
export function checkSourcesAgainstTarget(sources: readonly Source[], target: ConnectionDescription & { prefix: string }): void {
  for (const s of sources) {
    const d = s.describe();
    if (d.kind === 'redis') checkSourceTargetPrefixes(d as RedisSourceDescription, target);
  }
}

/**
 * The source the generated handler reads through (plan --read-through): the plan's one files
 * source. The handler reads one legacy save_path (docs/runbook.md); Redis sources are never read
 * through (apply copies them).
 * @throws UserFacingError with no files source, or more than one.
 */
export function readThroughSource(sources: readonly SourceDescription[]): SourceDescription {
  const files = sources.filter((d) => d.kind === 'files');
  if (files.length === 1) return files[0]!;
  if (files.length === 0)
    throw new UserFacingError(
      '--read-through: the generated handler reads through a legacy session directory, and no --source is a files: source; plan without --read-through (apply copies the Redis source)',
    );
  throw new UserFacingError(
    `--read-through: the generated handler reads through one legacy save_path, and ${files.length} sources are files: sources (${files.map(sourceLabel).join(', ')}); plan without --read-through (apply copies every source; deploy the handler in strict mode once apply and verify pass), or give --read-through only the directory PHP writes to now (copy the others with their own plan, before the switch)`,
  );
}

/** A source in a one-line table: `#N files:...` or `#N redis:...` (never a password). */
export function sourceRowLabel(d: SourceDescription | PlanSource, index: number): string {
  return `#${index + 1} ${sourceLabel(d)}`;
}

/** The `--source` values of a use case as a list (one string or several). */
export function sourceList(source: string | readonly string[] | undefined): string[] {
  return source === undefined ? [] : typeof source === 'string' ? [source] : [...source];
}

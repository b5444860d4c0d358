/**
 * `plan`: look at the source and the target, count what would move, and write a plan file that
 * `apply` carries out. The plan names the key file and key ID, never the key.
 */
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { SERIALIZE_HANDLERS, classifySession, type SerializeHandler, type SessionClassification } from '@session-migrate/php-session';
import { UserFacingError, checkAclUserName, describeFsError, printable, redactSessionPath, writeFileAtomic } from '@session-migrate/common';
import type { EffectiveSetting, EnvOrigin, EnvVarSite } from '@session-migrate/php-ini';
import {
  foreignOwner,
  phpAcceptsOwner,
  type FilesSource,
  type SkipReason,
  type Source,
  type SourceDescription,
  type SourceItem,
  type SourceSession,
} from '@session-migrate/sources';
import { MIN_ENVELOPE_BYTES } from '@session-migrate/envelope';
import { parseRedisUrl, type ConnectionDescription, type NodeMemory } from '@session-migrate/redis';
import type { LockingOptions } from '@session-migrate/generate';
import { remainingTtlSeconds } from '@session-migrate/common';
import type { DuplicatesReport } from './several-sources.ts';

export const PLAN_FORMAT = 'session-migrate-plan';
/**
 * Plan format version. 2: the target (and a Redis source) records its topology (standalone,
 * cluster with its nodes, sentinel with its sentinels and master name), the ACL user name and the TLS
 * file paths; and the expected memory use. 3: several sources (`sources`, each with its summary) and
 * the session IDs found in more than one (`duplicates`). Plans of version 2 are still read (as one
 * source). A files source may record `phpUids`, the uids PHP runs as (packages/sources files.ts
 * phpAcceptsOwner); plans made before have none: apply refuses them, verify and purge warn
 * (use-cases/shared.ts filesSourcesWithoutOwners).
 */
export const PLAN_VERSION = 3;
/** Plan versions readPlanFile accepts. */
const READABLE_VERSIONS = [2, 3];
/** Defined in @session-migrate/common (defaults.ts), where the CLI's --help reads them without loading this package. */
export { DEFAULT_PLAN_FILE, DEFAULT_ARTIFACTS_DIR } from '@session-migrate/common';
/** The serialize_handlers a plan accepts: @session-migrate/php-session's list, their one home. */
export { SERIALIZE_HANDLERS };

/** How many skipped files a plan lists by name (the counts are always complete). */
const SKIPPED_SAMPLE = 50;

/** Counts over one scan of the source. Byte counts are payload bytes. */
export interface SourceSummary {
  /** Session files found (readable, valid name), including empty, expired and corrupt ones. */
  found: number;
  /** Sessions that apply will copy: live, non-empty, and loadable by PHP. */
  live: number;
  liveBytes: number;
  /** mtime older than gc_maxlifetime: PHP already treats them as gone. */
  expired: number;
  /** 0-byte files: valid empty sessions, nothing to migrate. */
  empty: number;
  /** Payloads PHP itself would reject under the configured serialize_handler: not migrated. */
  corrupt: number;
  /** Sessions whose format differs from the configured serialize_handler (test/fixtures/cases/BUG-08). */
  serializerMismatch: number;
  /** Live sessions per sniffed format. */
  formats: Record<string, number>;
  /** Decoder warnings (e.g. trailing-bytes-ignored-by-php) with counts. */
  warnings: Record<string, number>;
  /** Entries that are not migrated, by reason, with a sample of file names. */
  skipped: Record<string, number>;
  skippedSample: Array<{ location: string; reason: SkipReason | 'corrupt'; detail?: string }>;
  /** Redis source keys without a TTL: they are given gc_maxlifetime. */
  noTtl?: number;
}

/**
 * Where the key comes from and which key it is; never the key. `provider` is how apply and verify
 * read it again: `file` and `ring` name a file, `env` an environment variable; a `command` is not
 * stored (it may hold a token) and must be given again. Plans written before key rings have only
 * `file` and `keyId` (read as provider `file`, without a lookup ID).
 */
export interface PlanKey {
  provider: 'file' | 'ring' | 'env' | 'command';
  /** Absolute path, for `file` and `ring`. */
  file?: string;
  /** Variable name, for `env`. */
  env?: string;
  /** Current key ID at plan time (16 hex characters). */
  keyId: string;
  /** Lookup ID of the ring (docs/keys.md): what the PHP bootstrap checks; absent in old plans. */
  lookupId?: string;
}

/** Memory of the target at plan time (INFO memory of every master) and what the sessions will take. */
export interface PlanMemory {
  /** Estimated bytes the planned sessions take in Redis (keys, envelopes, per-key overhead). */
  expectedBytes: number;
  nodes: NodeMemory[];
  /** Warnings with their fix (eviction policy, headroom). */
  warnings: string[];
}

/**
 * The target of a plan: the connection layer's description (URL without credentials, topology, user,
 * TLS file paths, cluster nodes or sentinels and master name), the key prefix, and what plan saw.
 * `runId` (a single node) and `nodeIds` (a cluster) let apply tell a replaced server from the same one.
 */
export interface PlanTarget extends ConnectionDescription {
  prefix: string;
  existingKeysUnderPrefix: number;
  /**
   * Replicas connected to each master when the plan was made (INFO replication `connected_slaves`);
   * apply names a master that has fewer now. Keyed by `*` (the one master of a single node or
   * Sentinel), by the master's node ID in a cluster (a failover changes a master's `host:port`;
   * mastersAtPlan says which node is which), or by `host:port` in cluster plans made before node
   * IDs were recorded. Absent in plans made before it.
   */
  replicasAtPlan?: Record<string, number>;
  /**
   * A cluster: each master at plan by node ID, with its `host:port` and the node IDs of its replicas
   * (RedisConnection.clusterMasters), so apply finds the shard's master after a failover promoted
   * one of them. Absent for a single node or Sentinel, and in older plans.
   */
  mastersAtPlan?: Record<string, { node: string; replicaIds: string[] }>;
  memory?: PlanMemory;
}

/** Redis bytes per session beside its payload: key name, envelope header/nonce/tag, per-key and expiry overhead (~96 bytes in redis 7 with jemalloc). */
const PER_KEY_OVERHEAD = 96;

/**
 * Estimated memory the planned sessions take in Redis: per session its key name (prefix + 66), the
 * envelope overhead (MIN_ENVELOPE_BYTES) and ~96 bytes of Redis bookkeeping (dict entry, object,
 * expiry entry), plus the payload bytes.
 */
export function expectedMemoryBytes(summary: Pick<SourceSummary, 'live' | 'liveBytes'>, prefix: string): number {
  return summary.live * (Buffer.byteLength(prefix) + 66 + MIN_ENVELOPE_BYTES + PER_KEY_OVERHEAD) + summary.liveBytes;
}

/** One source of a plan, with what plan counted in it. */
export type PlanSource = SourceDescription & { summary: SourceSummary };

/**
 * Where a plan's TTL (php.gcMaxlifetime) came from: plan --gc-maxlifetime (`option`, also when
 * --php-ini was read and its value compared), DEFAULT_GC_MAXLIFETIME (`default`: neither option), or
 * the effective session.gc_maxlifetime of the PHP configuration given (`php-ini`: phpIni is the
 * --php-ini file, pool the FPM pool applied if any, file/line/origin the line that set the value as
 * readSessionIni reports it, file and line null for PHP's compiled default; its EnvOrigin the `${NAME}`
 * environment variables the value was expanded from in plan's environment, which PHP takes from its
 * own, and the earlier ini keys they came through (each key's file and line, not its variables);
 * envVars and envVarsVia are absent when none, and in plans made before they were recorded).
 */
export type GcMaxlifetimeFrom =
  | { kind: 'option' }
  | { kind: 'default' }
  | ({
      kind: 'php-ini';
      phpIni: string;
      pool?: string;
      file: string | null;
      line: number | null;
      origin: EffectiveSetting['origin'];
    } & EnvOrigin<EnvVarSite>);

/**
 * The PHP version whose ini rules plan read --php-ini (and --fpm-pool) by (readSessionIni
 * phpVersion: from 8.3 on, `${NAME:-fallback}`), as major.minor, and how plan knew it: `option`
 * (--php-version), `php-binary` (the `php` on plan's PATH), `assumed` (neither: 8.2).
 */
export interface PhpIniRules {
  phpVersion: string;
  from: 'option' | 'php-binary' | 'assumed';
}

/**
 * PhpIniRules in words, for plan's output and inside the parentheses of its errors, so without
 * brackets of its own: "read by PHP 8.2's ini rules; 8.2 is the version of php on the PATH".
 */
export function describePhpIniRules(r: PhpIniRules): string {
  const v = r.phpVersion;
  const how =
    r.from === 'option'
      ? 'the --php-version given'
      : r.from === 'php-binary'
        ? 'the version of php on the PATH'
        : 'assumed, as there is no --php-version and no php on the PATH: give --php-version if PHP runs another version';
  return `read by PHP ${v}'s ini rules; ${v} is ${how}`;
}

/**
 * An EnvOrigin in words: `${A}, ${B}` for its environment variable names, and the earlier ini keys
 * they came through (`through ${key} (FILE:LINE)`), as plan's warnings and the TTL line name them;
 * '' when it has no envVars.
 */
export function describeEnvVars({ envVars = [], envVarsVia: via }: EnvOrigin<EnvVarSite>): string {
  const names = envVars.map((n) => `\${${printable(n)}}`).join(', ');
  if (via === undefined || via.length === 0) return names;
  return `${names} through ${via.map((v) => `\${${printable(v.key)}} (${printable(v.file)}:${v.line})`).join(', ')}`;
}

/**
 * Where an effective PHP setting was set, in words: `FILE:LINE`, with `(pool php_value)` or
 * `(pool php_admin_value)` for a pool's line, or PHP's default when no file read sets it.
 */
export function describeIniSetting(v: { file: string | null; line: number | null; origin: EffectiveSetting['origin'] }): string {
  if (v.file === null) return "PHP's default, set in no file read";
  return `${printable(v.file)}${v.line !== null && v.line > 0 ? `:${v.line}` : ''}${v.origin === 'pool php_admin_value' || v.origin === 'pool php_value' ? ` (${v.origin})` : ''}`;
}

/** A plan's GcMaxlifetimeFrom in words, for plan's and apply's output ('unknown' for an older plan). */
export function describeGcMaxlifetimeFrom(from: GcMaxlifetimeFrom | undefined): string {
  switch (from?.kind) {
    case 'option':
      return '--gc-maxlifetime';
    case 'default':
      return 'the default (no --gc-maxlifetime or --php-ini)';
    case 'php-ini':
      return `session.gc_maxlifetime from ${describeIniSetting(from)}; --php-ini ${printable(from.phpIni)}${from.pool !== undefined ? `, pool ${printable(from.pool)}` : ''}${from.envVars !== undefined && from.envVars.length > 0 ? `; expanded from ${describeEnvVars(from)} of plan's environment (PHP takes them from its own: check the value PHP runs with)` : ''}`;
    default:
      return 'not recorded (plan made by an older version)';
  }
}

/** Whether a recorded GcMaxlifetimeFrom is well formed (absent is: plans made before it). */
function validGcMaxlifetimeFrom(f: unknown): boolean {
  if (f === undefined) return true;
  if (typeof f !== 'object' || f === null) return false;
  const o = f as Record<string, unknown>;
  if (o.kind === 'option' || o.kind === 'default') return true;
  return (
    o.kind === 'php-ini' &&
    typeof o.phpIni === 'string' &&
    (o.pool === undefined || typeof o.pool === 'string') &&
    (o.file === null || typeof o.file === 'string') &&
    (o.line === null || Number.isInteger(o.line)) &&
    typeof o.origin === 'string' &&
    (o.envVars === undefined || (Array.isArray(o.envVars) && o.envVars.every((n) => typeof n === 'string'))) &&
    (o.envVarsVia === undefined ||
      (Array.isArray(o.envVarsVia) &&
        o.envVarsVia.every(
          (v: unknown) =>
            typeof v === 'object' &&
            v !== null &&
            typeof (v as Record<string, unknown>).key === 'string' &&
            typeof (v as Record<string, unknown>).file === 'string' &&
            Number.isInteger((v as Record<string, unknown>).line),
        )))
  );
}

/** Whether a recorded PhpIniRules is well formed (absent is: plans without --php-ini, or made before it). */
function validPhpIniRules(r: unknown): boolean {
  if (r === undefined) return true;
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  return (
    typeof o.phpVersion === 'string' &&
    /^\d+\.\d+$/.test(o.phpVersion) &&
    (o.from === 'option' || o.from === 'php-binary' || o.from === 'assumed')
  );
}

/** The plan file (JSON). */
export interface Plan {
  format: typeof PLAN_FORMAT;
  version: typeof PLAN_VERSION;
  createdAt: string;
  /**
   * The source the generated handler reads through in read-through mode (the plan's one `files`
   * source), else the first source: `files` (a save_path) or `redis` (plaintext phpredis keys; no
   * credentials). Every source is in `sources`.
   */
  source: SourceDescription;
  /** Every source in the order given (plan --source, repeatable), each with its own counts. */
  sources: PlanSource[];
  /** Session IDs found in more than one source, and which copy wins (several-sources.ts). */
  duplicates?: DuplicatesReport;
  target: PlanTarget;
  key: PlanKey;
  /**
   * gcMaxlifetime: seconds, the TTL migrated sessions get; gcMaxlifetimeFrom: where that value came
   * from (absent in plans made before it was recorded); iniRules: the PHP version whose ini rules
   * --php-ini was read by (absent without --php-ini, and in plans made before it was recorded).
   */
  php: { gcMaxlifetime: number; serializeHandler: SerializeHandler; gcMaxlifetimeFrom?: GcMaxlifetimeFrom; iniRules?: PhpIniRules };
  limits: { maxSessionBytes: number };
  /**
   * Summary at plan time, over every source (superseded copies of a session in several sources not
   * counted as live); apply re-scans, because sessions keep changing under live traffic.
   */
  summary: SourceSummary;
  ttlPolicy: string;
  /**
   * readThrough: the handler is generated in read-through (migrating) mode (plan --read-through);
   * locking: its session locking options (plan --lock-*; absent: the defaults of LockingOptions);
   * persistent: persistent Redis connections (plan --no-persistent; absent: true);
   * handlerUser: the Redis ACL user the handler connects as (plan --handler-user; absent: the target's
   * user, the one plan and apply connect as).
   */
  artifacts: {
    outDir: string;
    installDir: string;
    files: string[];
    readThrough?: boolean;
    locking?: LockingOptions;
    persistent?: boolean;
    handlerUser?: string;
  };
}

export interface SummaryOptions {
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  /** Seconds since the epoch; defaults to the current time. */
  nowSeconds?: number;
}

/** A SourceSummary with nothing counted yet: where one source's summary, and the sum of several, start. */
export function emptySourceSummary(): SourceSummary {
  return {
    found: 0,
    live: 0,
    liveBytes: 0,
    expired: 0,
    empty: 0,
    corrupt: 0,
    serializerMismatch: 0,
    formats: {},
    warnings: {},
    skipped: {},
    skippedSample: [],
    noTtl: 0,
  };
}

/** Adds the plain counts of `from` (found, live, bytes, expired, empty, corrupt, mismatches, noTtl) to `into`. */
export function addSummaryNumbers(into: SourceSummary, from: SourceSummary): void {
  into.found += from.found;
  into.live += from.live;
  into.liveBytes += from.liveBytes;
  into.expired += from.expired;
  into.empty += from.empty;
  into.corrupt += from.corrupt;
  into.serializerMismatch += from.serializerMismatch;
  into.noTtl = (into.noTtl ?? 0) + (from.noTtl ?? 0);
}

/**
 * Scans a source once and counts what `apply` would do.
 * Reads each session's bytes only to classify its format; never prints them.
 */
export async function summarizeSource(source: Source, options: SummaryOptions): Promise<SourceSummary> {
  const tally = new SummaryTally({ ...options, nowSeconds: options.nowSeconds ?? Date.now() / 1000 });
  let seq = 0;
  for await (const batch of source.sessions({ read: { looksComplete: looksCompleteFor(options.serializeHandler) } }))
    for (const item of batch) tally.add(item, seq++);
  return SummaryTally.merge([tally]);
}

/** How long past gc_maxlifetime a session file outlives any cleanup that runs (summarizeFilesByOwner's `pastCleanup`), seconds. */
export const CLEANUP_MARGIN_SECONDS = 3600;

/** summarizeFilesByOwner's result: the summary, and the evidence plan's gc_maxlifetime check reads. */
export interface FilesSummary {
  summary: SourceSummary;
  /**
   * Session files taken (owner accepted) whose mtime is more than gc_maxlifetime plus
   * CLEANUP_MARGIN_SECONDS old: counted in `summary.expired`, yet still there (use-cases/plan.ts
   * gcMaxlifetimeEvidence reads it).
   */
  pastCleanup: number;
}

/**
 * summarizeSource for a files source whose PHP user is decided from the same walk: every session file
 * is read once whatever its owner (FilesSource.sessionsWithOwners), counted per owner, then
 * `decideUids` gets the session files per uid (what FilesSource.countOwners would give) and the
 * files of the owners it refuses (phpAcceptsOwner) count as `foreign-owner`: the summary is the one
 * summarizeSource gives after FilesSource.acceptOwners(uids), counts, sample and key order alike,
 * with one walk instead of two (docs/performance.md).
 * @param decideUids the uids PHP runs as (decidePhpUids); what it throws, this throws
 */
export async function summarizeFilesByOwner(
  source: FilesSource,
  options: SummaryOptions,
  decideUids: (owners: ReadonlyMap<number, number>) => readonly number[],
): Promise<FilesSummary> {
  const opts = { ...options, nowSeconds: options.nowSeconds ?? Date.now() / 1000 };
  // Entries the owner rule does not decide, then per uid: as read, and as `foreign-owner`.
  const common = new SummaryTally(opts);
  const byUid = new Map<number, { read: SummaryTally; foreign: SummaryTally }>();
  const owners = new Map<number, number>();
  let seq = 0;
  for await (const batch of source.sessionsWithOwners({ read: { looksComplete: looksCompleteFor(options.serializeHandler) } }))
    for (const { item, uid, ownerDecides } of batch) {
      const n = seq++;
      if (uid !== undefined) owners.set(uid, (owners.get(uid) ?? 0) + 1);
      if (uid === undefined || !ownerDecides) {
        common.add(item, n);
        continue;
      }
      let t = byUid.get(uid);
      if (t === undefined) byUid.set(uid, (t = { read: new SummaryTally(opts), foreign: new SummaryTally(opts) }));
      t.read.add(item, n);
      t.foreign.addSkip(item.location, 'foreign-owner', n, () => foreignOwner(item.location, uid).detail);
    }
  const uids = decideUids(owners);
  const parts = [common];
  for (const [uid, t] of byUid) parts.push(phpAcceptsOwner(uid, uids) ? t.read : t.foreign);
  return { summary: SummaryTally.merge(parts), pastCleanup: parts.reduce((a, t) => a + t.pastCleanup, 0) };
}

/**
 * The counts of summarizeSource, item by item, with the scan position (`seq`) where each count key
 * first appeared and of each sampled skip, so tallies of parts of one scan merge into the summary
 * of the whole scan in scan order (SummaryTally.merge).
 */
class SummaryTally {
  private readonly s = emptySourceSummary();
  /** `field:key` (skipped, formats, warnings) -> seq of its first count. */
  private readonly first = new Map<string, number>();
  private readonly samples: Array<{ seq: number; entry: SourceSummary['skippedSample'][number] }> = [];
  /** Files sessions more than gc_maxlifetime + CLEANUP_MARGIN_SECONDS old (FilesSummary.pastCleanup). */
  pastCleanup = 0;

  constructor(private readonly options: SummaryOptions & { nowSeconds: number }) {}

  private bump(field: 'skipped' | 'formats' | 'warnings', key: string, seq: number): void {
    const rec = this.s[field];
    if (rec[key] === undefined) this.first.set(`${field}:${key}`, seq);
    rec[key] = (rec[key] ?? 0) + 1;
  }

  /** Counts a skipped entry; its detail is made only while the sample has room. */
  addSkip(location: string, reason: SkipReason | 'corrupt', seq: number, detail: () => string | undefined): void {
    this.bump('skipped', reason, seq);
    if (this.samples.length >= SKIPPED_SAMPLE) return;
    const d = detail();
    this.samples.push({ seq, entry: { location: redactSessionPath(location), reason, ...(d !== undefined ? { detail: d } : {}) } });
  }

  add(item: SourceItem, seq: number): void {
    const s = this.s;
    const options = this.options;
    if (item.kind === 'skipped') {
      this.addSkip(item.location, item.reason, seq, () => item.detail);
      return;
    }
    s.found++;
    if (item.noTtl === true) s.noTtl = (s.noTtl ?? 0) + 1;
    const decision = decideSourceSession(item, options);
    if (decision.action === 'expired') {
      s.expired++;
      if (
        item.ttlMs === undefined &&
        item.noTtl !== true &&
        options.nowSeconds - item.mtimeMs / 1000 > options.gcMaxlifetime + CLEANUP_MARGIN_SECONDS
      )
        this.pastCleanup++;
      return;
    }
    if (decision.action === 'empty') {
      s.empty++;
      return;
    }
    const c = decision.classification;
    if (c.serializerMismatch) s.serializerMismatch++;
    for (const w of c.warnings) this.bump('warnings', w, seq);
    if (decision.action === 'corrupt') {
      s.corrupt++;
      this.addSkip(item.location, 'corrupt', seq, () =>
        c.serializerMismatch
          ? `looks like ${c.format}, configured ${options.serializeHandler}`
          : `not loadable as ${options.serializeHandler}`,
      );
      return;
    }
    s.live++;
    s.liveBytes += item.data.length;
    this.bump('formats', c.format, seq);
  }

  /** The summary of the parts together: sums, count keys in order of first appearance, the first SKIPPED_SAMPLE skips. */
  static merge(parts: readonly SummaryTally[]): SourceSummary {
    const out = emptySourceSummary();
    const keys: Array<{ field: 'skipped' | 'formats' | 'warnings'; key: string; seq: number; n: number }> = [];
    const samples: SummaryTally['samples'] = [];
    for (const t of parts) {
      const s = t.s;
      addSummaryNumbers(out, s);
      for (const field of ['skipped', 'formats', 'warnings'] as const)
        for (const [key, n] of Object.entries(s[field])) keys.push({ field, key, n, seq: t.first.get(`${field}:${key}`)! });
      samples.push(...t.samples);
    }
    keys.sort((a, b) => a.seq - b.seq);
    for (const { field, key, n } of keys) out[field][key] = (out[field][key] ?? 0) + n;
    samples.sort((a, b) => a.seq - b.seq);
    out.skippedSample = samples.slice(0, SKIPPED_SAMPLE).map((x) => x.entry);
    return out;
  }
}

export type SessionDecision =
  | { action: 'expired'; ttlSeconds: number }
  | { action: 'empty' }
  | { action: 'corrupt'; classification: ReturnType<typeof classifySession> }
  | { action: 'migrate'; ttlSeconds: number; ttlMs: number; classification: ReturnType<typeof classifySession> };

/**
 * What happens to one session file: expired (TTL <= 0, test/fixtures/cases/BUG-25), empty (nothing to
 * migrate), corrupt (PHP would not load it: not migrated, not deleted; BUG-07/BUG-08), or migrate with
 * its remaining TTL in seconds.
 * @param known classifySession(data, handler) when the caller has it already (looksCompleteFor's
 *   `remember`), so a session is parsed once
 */
export function decideSession(
  data: Buffer,
  mtimeMs: number,
  gcMaxlifetime: number,
  handler: SerializeHandler,
  nowSeconds: number,
  exactTtlMs?: number,
  known?: SessionClassification,
): SessionDecision {
  // A Redis source knows the remaining lifetime to the millisecond (PTTL): it is kept exactly.
  const ttlMs = exactTtlMs ?? remainingTtlSeconds(mtimeMs / 1000, gcMaxlifetime, nowSeconds) * 1000;
  const ttlSeconds = Math.ceil(ttlMs / 1000);
  if (ttlMs <= 0) return { action: 'expired', ttlSeconds };
  if (data.length === 0) return { action: 'empty' };
  const classification = known ?? classifySession(data, handler);
  if (!classification.phpAccepts) return { action: 'corrupt', classification };
  return { action: 'migrate', ttlSeconds, ttlMs, classification };
}

/**
 * Why the key read now does not name sessions as the plan's did (one clause), or undefined when it
 * does. With a lookup ID (key ring plans) only the lookup key must match: the master key may have
 * rotated since the plan, and sessions still get the same names (docs/keys.md). Pure.
 * @param now.keyDescription where the key was read from now, for the message (default: the plan's)
 */
export function keyMismatch(
  plan: Pick<Plan, 'key'>,
  now: { keyId: string; lookupId?: string; keyDescription?: string },
): string | undefined {
  const where = now.keyDescription ?? (plan.key.file !== undefined && plan.key.file !== '' ? `key file ${plan.key.file}` : 'the key');
  if (plan.key.lookupId !== undefined) {
    if (now.lookupId === plan.key.lookupId) return undefined;
    return `${where} now has lookup ID ${now.lookupId ?? 'unknown'}, the plan was made for lookup ID ${plan.key.lookupId}`;
  }
  if (now.keyId === plan.key.keyId) return undefined;
  return `${where} now holds key ID ${now.keyId}, the plan was made for ${plan.key.keyId}`;
}

/**
 * decideSession for a session read from a source: its bytes and mtime, and its exact PTTL when it has
 * one (exactTtlMsOf). `p.nowSeconds`: seconds since the epoch.
 */
export function decideSourceSession(
  item: SourceSession,
  p: { gcMaxlifetime: number; serializeHandler: SerializeHandler; nowSeconds: number },
  known?: SessionClassification,
): SessionDecision {
  return decideSession(
    item.data,
    item.mtimeMs,
    p.gcMaxlifetime,
    p.serializeHandler,
    p.nowSeconds,
    exactTtlMsOf(item, p.gcMaxlifetime),
    known,
  );
}

/** The TTL a session from a source gets, in ms: its exact PTTL, or gc_maxlifetime for a Redis key without one. */
export function exactTtlMsOf(item: SourceSession, gcMaxlifetime: number): number | undefined {
  if (item.ttlMs !== undefined) return item.ttlMs;
  if (item.noTtl === true) return gcMaxlifetime * 1000;
  return undefined;
}

/**
 * Whether the bytes of a stable read look like a complete session (readSessionFile's looksComplete):
 * not empty and loadable by PHP under `handler`. A read that fails it is not taken as empty or
 * corrupt while PHP may be writing the file (packages/sources/src/files.ts, readSessionFile: the
 * quiet period, the shared flock, or `unstable`). The one content check of plan, apply and verify.
 * @param remember called with the bytes and their classification, for decideSession's `known`
 */
export function looksCompleteFor(
  handler: SerializeHandler,
  remember?: (data: Buffer, classification: SessionClassification) => void,
): (data: Buffer) => boolean {
  return (data) => {
    if (data.length === 0) return false;
    const classification = classifySession(data, handler);
    remember?.(data, classification);
    return classification.phpAccepts;
  };
}

/**
 * Writes a plan file with the one atomic write (@session-migrate/common writeFileAtomic: unpredictable
 * temporary name in the same directory, O_EXCL|O_NOFOLLOW, fsync, rename, fsync of the directory),
 * mode 0644: it holds no secret.
 * @throws UserFacingError when the file cannot be written (nothing is changed then, no temporary file is left).
 */
export function writePlanFile(path: string, plan: Plan): void {
  refuseToReplaceNonPlan(path);
  try {
    writeFileAtomic(path, JSON.stringify(plan, null, 2) + '\n', { mode: 0o644 });
  } catch (err) {
    throw new UserFacingError(`cannot write plan ${path}: ${describeFsError(err)}`);
  }
}

/**
 * A plan may replace an earlier plan, never anything else: `--out` pointed at a key file or a live
 * session file by mistake must not destroy it.
 */
function refuseToReplaceNonPlan(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isFile()) throw new UserFacingError(`plan ${path} exists and is not a regular file; refusing to replace it`);
  let format: unknown;
  try {
    format = (JSON.parse(readFileSync(path, 'utf8')) as { format?: unknown } | null)?.format;
  } catch {
    format = undefined;
  }
  if (format !== PLAN_FORMAT)
    throw new UserFacingError(`${path} exists and is not a session-migrate plan; refusing to replace it (choose another --out)`);
}

/**
 * Reads and checks a plan file.
 * @throws UserFacingError when it is missing, not JSON, or not a session-migrate plan of this version.
 */
export function readPlanFile(path: string): Plan {
  const p = readPlanJson(path);
  // Version 2: one source, counted in `summary`.
  const sources = ((p.version as number) === 2 ? [{ ...(p.source as SourceDescription), summary: p.summary }] : p.sources) as unknown;
  if (!planSourcesOk(sources, p.source) || !planFieldsOk(p))
    throw new UserFacingError(`plan ${path}: missing or malformed fields; re-run plan`);
  const handlerUser: unknown = p.artifacts!.handlerUser;
  if (handlerUser !== undefined) {
    try {
      checkAclUserName(typeof handlerUser === 'string' ? handlerUser : '', 'artifacts.handlerUser');
    } catch {
      throw new UserFacingError(`plan ${path}: artifacts.handlerUser is not a Redis ACL user name (edited by hand?); re-run plan`);
    }
  }
  // The URL is what apply connects to; the fields beside it are what the PHP bootstrap is built from.
  checkRecordedRedis(p.target as unknown as Record<string, unknown>, `plan ${path}`, 'target');
  for (const src of sources as PlanSource[])
    if (src.kind === 'redis') checkRecordedRedis(src as unknown as Record<string, unknown>, `plan ${path}`, 'source');
  const key: PlanKey = p.key!.provider === undefined ? { ...p.key!, provider: 'file' } : p.key!;
  return {
    ...(p as Plan),
    version: PLAN_VERSION,
    sources: sources as PlanSource[],
    key,
    artifacts: { ...p.artifacts!, outDir: resolve(p.artifacts!.outDir) },
  };
}

/**
 * A plan file's JSON object, of this format and a version this build reads (READABLE_VERSIONS); its
 * fields are not checked yet.
 * @throws UserFacingError when the file is missing or not regular, not JSON, not a plan, or of another version.
 */
function readPlanJson(path: string): Partial<Plan> {
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new UserFacingError(`plan ${path}: not a regular file`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    throw new UserFacingError(`plan ${path}: ${describeFsError(err)}; create one with 'session-migrate plan'`);
  }
  let plan: unknown;
  try {
    plan = JSON.parse(text);
  } catch {
    throw new UserFacingError(`plan ${path}: not valid JSON`);
  }
  if (typeof plan !== 'object' || plan === null || Array.isArray(plan))
    throw new UserFacingError(`plan ${path}: not a session-migrate plan`);
  const p = plan as Partial<Plan>;
  if (p.format !== PLAN_FORMAT) throw new UserFacingError(`plan ${path}: not a session-migrate plan`);
  if (!READABLE_VERSIONS.includes(p.version as number))
    throw new UserFacingError(`plan ${path}: plan version ${String(p.version)} is not supported (expected ${PLAN_VERSION}); re-run plan`);
  return p;
}

/** Whether a recorded source has the fields its kind needs (files: a uid list, if any, of valid uids). */
function validPlanSource(src: Partial<SourceDescription> | undefined): boolean {
  return src?.kind === 'redis'
    ? typeof src.url === 'string' &&
        typeof src.prefix === 'string' &&
        src.prefix !== '' &&
        typeof src.spec === 'string' &&
        Number.isInteger(src.port) &&
        Number.isInteger(src.db)
    : src?.kind === 'files' &&
        typeof src.dir === 'string' &&
        typeof src.savePath === 'string' &&
        Number.isInteger(src.depth) &&
        (src.phpUids === undefined ||
          (Array.isArray(src.phpUids) && src.phpUids.every((u) => Number.isInteger(u) && u >= 0 && u < 2 ** 32)));
}

/** Whether the plan's sources (at least one, each counted) and its first `source` are well formed. */
function planSourcesOk(sources: unknown, first: unknown): boolean {
  return (
    Array.isArray(sources) &&
    sources.length > 0 &&
    sources.every((x) => validPlanSource(x as Partial<SourceDescription>) && typeof (x as PlanSource).summary?.found === 'number') &&
    validPlanSource(first as Partial<SourceDescription> | undefined)
  );
}

/** Whether the plan's target, key, PHP settings, artifacts, limits and summary are well formed. */
function planFieldsOk(p: Partial<Plan>): boolean {
  return (
    typeof p.target?.url === 'string' &&
    typeof p.target.prefix === 'string' &&
    validPlanKey(p.key) &&
    Number.isInteger(p.php?.gcMaxlifetime) &&
    p.php!.gcMaxlifetime > 0 &&
    p.php!.gcMaxlifetime <= 2 ** 31 - 1 &&
    /^[\x21-\x7e]{1,128}$/.test(p.target.prefix) &&
    SERIALIZE_HANDLERS.includes(p.php?.serializeHandler as SerializeHandler) &&
    validGcMaxlifetimeFrom(p.php?.gcMaxlifetimeFrom) &&
    validPhpIniRules(p.php?.iniRules) &&
    typeof p.artifacts?.outDir === 'string' &&
    typeof p.artifacts.installDir === 'string' &&
    Number.isInteger(p.limits?.maxSessionBytes) &&
    p.limits!.maxSessionBytes > 0 &&
    typeof p.summary?.found === 'number'
  );
}

const HOST_PORT_LIST = (v: unknown): boolean =>
  Array.isArray(v) &&
  v.every((h) => typeof (h as { host?: unknown }).host === 'string' && Number.isInteger((h as { port?: unknown }).port));

/**
 * Checks a recorded Redis description of a plan (target or Redis source) against its URL.
 * @throws UserFacingError when fields are missing or disagree with the URL (edited by hand?).
 */
function checkRecordedRedis(t: Record<string, unknown>, where: string, what: 'target' | 'source'): void {
  const bad = (why: string): never => {
    throw new UserFacingError(`${where}: ${what} ${why} (edited by hand?); re-run plan`);
  };
  let a;
  try {
    a = parseRedisUrl(String(t.url), what);
  } catch {
    return bad('URL does not parse');
  }
  if (a.urlPassword !== undefined || a.username !== undefined) bad('URL holds credentials');
  const topology = t.topology;
  if (topology !== 'standalone' && topology !== 'cluster' && topology !== 'sentinel') return bad('topology is missing');
  if ((topology === 'sentinel') !== (a.kind === 'sentinel')) bad('topology disagrees with the URL');
  if (t.db !== a.db || t.tls !== a.tls || (topology !== 'sentinel' && (t.host !== a.host || t.port !== a.port)))
    bad('fields disagree with the URL');
  if (t.username !== undefined && (typeof t.username !== 'string' || t.username === '')) bad('user name is malformed');
  if (t.tlsFiles !== undefined) {
    const f = t.tlsFiles as Record<string, unknown>;
    if (!a.tls) bad('has TLS files but a redis:// URL');
    for (const k of ['caFile', 'certFile', 'keyFile'])
      if (f[k] !== undefined && (typeof f[k] !== 'string' || !String(f[k]).startsWith('/'))) bad(`TLS ${k} is not an absolute path`);
    if (f.serverName !== undefined && typeof f.serverName !== 'string') bad('TLS server name is malformed');
  }
  if (topology === 'cluster' && (!HOST_PORT_LIST(t.nodes) || !Array.isArray(t.nodeIds))) bad('cluster nodes are missing');
  if (topology === 'sentinel' && (!HOST_PORT_LIST(t.sentinels) || typeof t.masterName !== 'string')) bad('sentinels are missing');
}

function validPlanKey(k: Partial<PlanKey> | undefined): boolean {
  if (k === undefined || typeof k.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(k.keyId)) return false;
  if (k.lookupId !== undefined && !/^[0-9a-f]{16}$/.test(k.lookupId)) return false;
  switch (k.provider) {
    case undefined:
      return typeof k.file === 'string'; // a plan from before key rings
    case 'file':
    case 'ring':
      return typeof k.file === 'string' && k.file !== '';
    case 'env':
      return typeof k.env === 'string' && k.env !== '';
    case 'command':
      return true;
    default:
      return false;
  }
}

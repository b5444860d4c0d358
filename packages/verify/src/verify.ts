/**
 * `verify`: prove that no plaintext session is left in the database and that everything under the
 * prefix is an authentic envelope with a TTL (or a well-formed tombstone or handler lock), and (with a
 * source) that every live source session is in Redis with the same bytes, or (with `presence`, the
 * plan's source) at least present. Every key of the database is classified (classify.ts; scan.ts
 * reads them in bounded memory), or only the prefix's with scope `prefix`. On a Redis Cluster every
 * master is scanned; behind Sentinel the master the sentinels report now. Reports name Redis keys
 * (session IDs in them shortened) and files, never values.
 */
import { availableParallelism } from 'node:os';
import type { ChainableCommander } from 'ioredis';
import type { ClassifiedError, RedisConnection, Reply } from '@session-migrate/redis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import {
  DEFAULT_GC_MAXLIFETIME,
  UserFacingError,
  isNewerInRedis,
  isTtlAboveGcMaxlifetime,
  redactSessionPath,
  ttlAboveGcMaxlifetimeMessage,
} from '@session-migrate/common';
import type { FilesSource, SessionCandidate, SkippedEntry, Source, SourceSession } from '@session-migrate/sources';
import { readBackPresence, type Presence } from '@session-migrate/target';
import { NOT_COPIED_SKIPS, RedisSource, SESSION_ID_PATTERN, ownerOfCandidate, sameRedisData, sourceLabel } from '@session-migrate/sources';
import { tombstoneKeyFor } from '@session-migrate/envelope';
import { SCAN_RESTARTS_AFTER_FAILOVER, aclRuleFor, classifiedLine, isConnectionLost, keyNameForDisplay } from '@session-migrate/redis';
import {
  PreparePool,
  decideSourceSession,
  emptyPresenceBatch,
  looksCompleteFor,
  namesBatch,
  phpUserUnknown,
  presenceBatch,
  classifiedFailure,
  resolveDuplicates,
  type DuplicatesReport,
  type PrepareContext,
  type PresenceBatch,
} from '@session-migrate/migrate';
import type { SerializeHandler } from '@session-migrate/php-session';
import {
  KEY_CLASSES,
  PHPREDIS_PREFIXES,
  classifyKey,
  phpredisName,
  redactKeyName,
  type KeyClass,
  type KeyContext,
  type KeyFailureReason,
  type KeyValue,
  type KeyVerdict,
} from './classify.ts';
import { scanKeys, type ScannedKey } from './scan.ts';

/** Why one key or one source session fails verification. */
export type VerifyFailureReason =
  | KeyFailureReason
  | 'missing-in-redis'
  | 'different-content'
  | 'read-error'
  | 'plaintext-remains'
  /**
   * With a source: a session file that was not read (permissions, kept changing, larger than the
   * plan's --max-session-bytes: NOT_COPIED_SKIPS), so not copied.
   */
  | 'source-unreadable'
  /** With a plan that found live sessions: no key at all under the prefix. */
  | 'no-keys'
  /**
   * Session files of a non-root owner while the plan knows no user PHP runs as (it saw no session
   * file): maybe PHP's own sessions, not copied (migrate's phpUserUnknown). Counted per file.
   */
  | 'owner-unknown';

export interface VerifyFailure {
  /** Redis key name. */
  key: string;
  reason: VerifyFailureReason;
  /** For source checks: the source file, with the session ID shortened. */
  file?: string;
  /**
   * `source-unreadable` of a session larger than the plan's --max-session-bytes: its size and that
   * limit, in bytes (the sizes only, never content).
   */
  oversized?: { bytes: number; maxBytes: number };
}

export interface VerifyReport {
  ok: boolean;
  prefix: string;
  /** `database`: every key of the database was scanned (the default); `prefix`: only the prefix (--prefix-only). */
  scope?: 'database' | 'prefix';
  /** The target's topology and the masters scanned (`host:port`): every master of a cluster. */
  topology?: string;
  nodes?: string[];
  /** Keys classified: every key of the database (scope `database`), or the keys under the prefix. */
  keysTotal?: number;
  /** Keys classified per class (classify.ts: envelope, plaintext-session, empty-session, lock, ...). */
  classes?: Record<KeyClass, number>;
  /** `other` keys by Redis type (string, hash, list, set, zset, stream, ...). */
  otherTypes?: Record<string, number>;
  /** Strings outside the prefix longer than verify reads (maxValueBytes): counted as `other`, not read. */
  largeValues?: number;
  /** Plaintext sessions by the serialize_handler PHP would load them with. */
  plaintextFormats?: Record<string, number>;
  /**
   * phpredis session locks without a TTL (`<key>_LOCK`): they never expire if the request holding
   * them died. A warning (with the fix), not a failure. Key names with the session ID shortened.
   */
  staleLocks?: { count: number; keys: string[] };
  /**
   * Set by verifyMigration (use-case.ts): what it told the caller on the side, for a JSON reader, in
   * the words the CLI prints on stderr: its notes and warnings (`note: verify overrides the plan:
   * ...`, `note: ... is not the server the plan was made against ...`, a password in a URL, ...) and
   * the memory warnings (`warning: ...`). The stale-lock warning is not repeated (see staleLocks).
   */
  notes?: string[];
  /** Keys found under the prefix. */
  keysScanned: number;
  /** Keys that opened under the key ring and have a TTL. */
  keysValid: number;
  /** Valid keys per key ID (rotation progress). */
  keyIds: Record<string, number>;
  /**
   * Values under the prefix sealed under a key ID the key given does not hold (`unknown-key-id`), by
   * that key ID (from their headers: public identifiers, docs/keys.md); absent when there is none.
   */
  unknownKeyIds?: Record<string, number>;
  /** With `unknownKeyIds`: the key IDs the key given holds (current first), to name beside them. */
  keyRingIds?: string[];
  /**
   * Tombstones of destroyed sessions (`<prefix>destroyed:{<64 hex>}` = `1` with a TTL), counted apart
   * from sessions; any other key under `<prefix>destroyed:` fails as `bad-tombstone`.
   */
  tombstones?: number;
  /**
   * Session locks the generated handler holds right now (`<prefix>lock:{<64 hex>}`, always with a
   * TTL); a lock without a TTL fails as `lock-without-ttl` (the handler never makes one).
   */
  locks?: number;
  /**
   * With a plaintext source to check: keys still under its prefix (phpredis `PHPREDIS_SESSION:<id>`).
   * Any of them fails verification as `plaintext-remains` (named with the session ID shortened).
   */
  plaintext?: PlaintextReport;
  /** With several plaintext prefixes (a plan with several Redis sources): each one's count; `plaintext` is their sum. */
  plaintextSources?: PlaintextReport[];
  /**
   * Set by verifyMigration (use-case.ts): session files of a non-root owner in a source whose plan
   * knows no user PHP runs as (`owner-unknown`, a failure): re-run plan with --php-user, then apply.
   */
  ownerUnknown?: number;
  /**
   * Set by verifyMigration: the plan's files sources (`files:DIR`) that know no user PHP runs as
   * (the `owner-unknown` check applies to them) but were not looked at, because --no-presence
   * (`presence: false`) reads no source file: files of a non-root owner there were not counted.
   * Not a failure; absent when every such source was checked or there is none.
   */
  ownerUnknownNotChecked?: string[];
  /** Failures by reason (complete counts). */
  failureCounts: Record<string, number>;
  /**
   * Failures listed by key name. Listing rule: the reasons of SUMMARIZED_REASONS (said on one summary
   * line: `plaintext-remains`, `unknown-key-id`) are listed at most SUMMARIZED_LISTED times each, apart from every other
   * failure, which is listed up to `maxListed` (in the order met: the scan's, then the sources'). So
   * thousands of plaintext keys left until purge, or every value sealed under a key not given (after
   * a rotation), never hide the one failure to fix first.
   */
  failures: VerifyFailure[];
  /**
   * With a source: live sessions checked and found identical, and the source sessions not checked
   * because gc_maxlifetime says they expired, they are empty, or PHP would reject them under the
   * serialize_handler (many of those usually mean the options do not match the plan).
   */
  source?: CompareCounts;
  /**
   * With `presence` (verify --plan without --source): live sessions of the plan's source checked for
   * presence only (contents change once PHP writes); a missing one fails as `missing-in-redis`.
   */
  presence?: PresenceCounts;
  /**
   * With several sources (a plan's, or --source repeated): each one's own counts (`source` and
   * `presence` above are their sums), and the session IDs found in more than one.
   */
  sources?: SourceCheckReport[];
  duplicates?: DuplicatesReport;
}

/** Counts of comparing one source with Redis byte for byte (verify --source). */
export interface CompareCounts {
  checked: number;
  matching: number;
  expired: number;
  empty: number;
  corrupt: number;
  destroyed?: number;
  /** Different in Redis, but written there after the source copy last changed (the handler's update). */
  newer?: number;
  /** Copies of a session ID another source holds a later copy of: not compared (several-sources.ts). */
  superseded?: number;
}

/** Counts of checking the presence of one source's sessions (verify --plan). */
export interface PresenceCounts {
  checked: number;
  present: number;
  destroyed: number;
  missing: number;
  expired: number;
  empty: number;
  corrupt: number;
  superseded?: number;
}

/** Plaintext keys left under one prefix. */
export interface PlaintextReport {
  prefix: string;
  url: string;
  remaining: number;
  /** Other keys under the prefix (phpredis `_LOCK` keys, names that are no session ID): not counted. */
  otherKeys: number;
}

/** One source's own result, when verify checks several. */
export interface SourceCheckReport {
  /** `#N files:...` / `#N redis:...` (no password). */
  source: string;
  check: 'compare' | 'presence';
  compare?: CompareCounts;
  presence?: PresenceCounts;
}

/** A source verify checks against Redis. */
export interface SourceCheck {
  source: Source;
  /** `compare`: every live session byte for byte (--source); `presence`: only present (--plan). */
  check: 'compare' | 'presence';
  /** How reports name it (default: its description). */
  label?: string;
}

export interface VerifyOptions {
  /** The target, on any topology. */
  client: RedisConnection;
  codec: EnvelopeCodec;
  prefix: string;
  /**
   * `database` (default): classify every key of the database (every master of a cluster), so a
   * plaintext session anywhere fails; `prefix`: only the keys under the prefix (verify --prefix-only,
   * for a database shared with other applications).
   */
  scope?: 'database' | 'prefix';
  /** Longest string read outside the prefix, bytes (default 8 MiB); longer ones are counted as `other`. */
  maxValueBytes?: number;
  /** With a source, every live session of it must be present and decrypt to the same bytes. */
  source?: Source;
  /**
   * Check only that every live session of this source is present (EXISTS, or its tombstone): the
   * plan's source when verify runs with --plan and no --source, so a lost batch fails verify.
   */
  presence?: Source;
  /**
   * Several sources to check (a plan's, or --source repeated), each on its own; `source` and
   * `presence` add one each. A session ID in more than one is checked in the source whose copy wins
   * (packages/migrate several-sources.ts); the other copies are counted `superseded`.
   */
  sources?: SourceCheck[];
  gcMaxlifetime?: number;
  serializeHandler?: SerializeHandler;
  /**
   * Failures listed by key name in VerifyReport.failures (default 1,000), not counting those of
   * SUMMARIZED_REASONS (at most SUMMARIZED_LISTED each, and never more than this); the counts are complete.
   */
  maxListed?: number;
  /** SCAN COUNT hint. */
  scanCount?: number;
  /**
   * Behind Sentinel: how long to wait for the master the sentinels report before the scan, and after
   * a failover that cut the scan short (verify then starts again: scanAgainAfterFailover), ms
   * (RedisConnection.followSentinelMaster; default DEFAULT_FAILOVER_WAIT_MS, 30 s; 0 looks once). A
   * cluster's SCAN failover wait is the connection's (OpenOptions.failoverWaitMs), set when it is opened.
   */
  masterWaitMs?: number;
  /**
   * Key ID (16 hex characters) every value must be sealed under, e.g. the current key after
   * `rotate`: a value that opens under another key of the ring fails with `other-key-id`, so a key
   * can be retired from the ring only once nothing uses it.
   */
  requireKeyId?: string;
  /**
   * Sessions the plan found live: with some expected, an empty prefix fails (`no-keys`) instead of
   * passing (a wrong target URL, database or prefix would otherwise look like success).
   */
  expectedSessions?: number;
  /**
   * Also fail while plaintext session keys remain under this prefix (a Redis source, or
   * --plaintext-prefix). `client` may be the target's connection (same server) or another one;
   * `url` names the server in reports.
   */
  plaintext?: PlaintextCheck | PlaintextCheck[];
  /**
   * Worker threads that read and classify the session files of a presence check (PreparePool, as
   * apply's); 0: on this thread. Default: from VERIFY_WORKERS_FROM_SESSIONS `expectedSessions`, one
   * per core beside this thread's, at most 2 (this thread scans the database meanwhile, which takes
   * longer than reading the files: more workers would only add memory), else 0.
   */
  workers?: number;
}

/**
 * Failure reasons verify's CLI says on one summary line (count, a few keys, the next step) instead of
 * one line per key: `plaintext-remains`, a Redis source's keys left until purge (the expected state
 * after apply: docs/runbook.md, phase 4), and `unknown-key-id`, values sealed under a key the key given
 * does not hold (usually every value, after `keys ring rotate` and `rotate` while the plan still names
 * the old key file). VerifyReport.failures lists at most SUMMARIZED_LISTED of each, so they never use
 * up the `maxListed` the other failures are listed within.
 */
export const SUMMARIZED_REASONS: ReadonlySet<VerifyFailureReason> = new Set<VerifyFailureReason>(['plaintext-remains', 'unknown-key-id']);

/** Failures listed per reason of SUMMARIZED_REASONS (the CLI names 3 of them as examples). */
export const SUMMARIZED_LISTED = 10;

/** Live sessions of the plan from which verify's presence check reads files on worker threads by default (as apply). */
export const VERIFY_WORKERS_FROM_SESSIONS = 100_000;

/** A plaintext prefix that must be empty in the end (see VerifyOptions.plaintext). */
export interface PlaintextCheck {
  client: RedisConnection;
  prefix: string;
  url: string;
}

/**
 * Session files of a non-root owner counted in a source whose plan knows no PHP user
 * (migrate's phpUserUnknown), as checkSources walks it.
 */
interface OwnerCount {
  unknown: number;
}

/**
 * Session files of an owner the plan does not know as PHP's (`ownerUnknown`, a count of files) fail
 * the report: `ok` false, `ownerUnknown` and the `owner-unknown` failure count added to. None: unchanged.
 */
export function failOwnerUnknown(report: VerifyReport, ownerUnknown: number): void {
  if (ownerUnknown > 0) {
    report.ok = false;
    report.ownerUnknown = (report.ownerUnknown ?? 0) + ownerUnknown;
    report.failureCounts['owner-unknown'] = (report.failureCounts['owner-unknown'] ?? 0) + ownerUnknown;
  }
}

/**
 * Verifies a target. Never throws for bad values; throws only when Redis itself fails, and with a
 * UserFacingError (exit 2) when Redis refuses a command verify needs (an ACL rule). Behind Sentinel a
 * scan cut short by a failover is run again from the start, with a new report, once the new master
 * answers (scanAgainAfterFailover); with none within `masterWaitMs` it throws the SCAN_INTERRUPTED error.
 */
export async function verifyTarget(options: VerifyOptions): Promise<VerifyReport> {
  const scope = options.scope ?? 'database';
  // Behind Sentinel: read the master the sentinels report now, never a demoted one.
  await options.client.followSentinelMaster(options.masterWaitMs);
  for (let restarts = 0; ; restarts++) {
    // A new report for each run: one restarted after a failover counts nothing of the one cut short
    // (whose keys were read on the old master, and whose SCAN cursor means nothing on the new one).
    const report = emptyVerifyReport(options.prefix, scope, options.client.topology);
    const check = new TargetCheck(options, report, scope);
    try {
      await check.scan();
      await check.finishPlaintext();
    } catch (err) {
      await check.sourcesStopped(); // the cut-short run's source checks have ended before another starts
      if (restarts >= SCAN_RESTARTS_AFTER_FAILOVER || !(await scanAgainAfterFailover(options, err))) throw err;
      continue;
    }
    failOwnerUnknown(report, check.owners.unknown);
    return report;
  }
}

/**
 * Whether verify may start again after `err`: a SCAN of one of its Sentinel connections (the target,
 * a plaintext prefix's server, a Redis source) cut short by a failover, and the sentinels named a
 * master that serves within masterWaitMs (RedisConnection.scanAgainAfterFailover, which says so).
 */
async function scanAgainAfterFailover(options: VerifyOptions, err: unknown): Promise<boolean> {
  const plaintext = options.plaintext === undefined ? [] : Array.isArray(options.plaintext) ? options.plaintext : [options.plaintext];
  const sources = [...(options.sources ?? []).map((c) => c.source), options.source, options.presence];
  const connections = new Set([
    options.client,
    ...plaintext.map((p) => p.client),
    ...sources.flatMap((x) => (x instanceof RedisSource ? [x.connection] : [])),
  ]);
  for (const c of connections) if (await c.scanAgainAfterFailover(err, 'verify', options.masterWaitMs)) return true;
  return false;
}

/** A report with nothing counted yet. */
function emptyVerifyReport(prefix: string, scope: 'database' | 'prefix', topology: VerifyReport['topology']): VerifyReport {
  return {
    ok: true,
    prefix,
    scope,
    topology,
    nodes: [],
    keysTotal: 0,
    keysScanned: 0,
    keysValid: 0,
    keyIds: {},
    tombstones: 0,
    locks: 0,
    classes: Object.fromEntries(KEY_CLASSES.map((c) => [c, 0])) as Record<KeyClass, number>,
    otherTypes: {},
    largeValues: 0,
    plaintextFormats: {},
    staleLocks: { count: 0, keys: [] },
    failureCounts: {},
    failures: [],
  };
}

/** A plaintext prefix being checked, and whether the main scan covers it (merged). */
interface PlaintextTally {
  p: PlaintextCheck;
  bytes: Buffer;
  counts: { remaining: number; otherKeys: number };
  merged: boolean;
}

/** One verifyTarget run: the report it fills and what classifying the scanned keys needs. */
class TargetCheck {
  private readonly client: RedisConnection;
  private readonly prefix: string;
  private readonly maxListed: number;
  private readonly prefixBytes: Buffer;
  private readonly plaintexts: PlaintextTally[];
  private readonly merged: PlaintextTally[];
  private readonly ctx: KeyContext;
  /** Session files of a non-root owner in sources whose plan knows no PHP user, counted in the sources' walks. */
  readonly owners: OwnerCount = { unknown: 0 };
  /**
   * gc_maxlifetime (s) when a presence check runs beside the scan: it counts a session file missing
   * from Redis as expired by it. A key under the prefix whose TTL is longer (isTtlAboveGcMaxlifetime:
   * a gc_maxlifetime smaller than PHP's) is noted in `ttlAboveGc`, and verify stops once the check
   * counted any file expired: such a file may be a live session that is lost.
   */
  private readonly presenceGc: number | undefined;
  private ttlAboveGc: string | undefined;

  /** Works out the plaintext prefixes and the classification context. */
  constructor(
    private readonly options: VerifyOptions,
    private readonly report: VerifyReport,
    private readonly scope: 'database' | 'prefix',
  ) {
    const { client, codec, prefix } = options;
    this.client = client;
    this.prefix = prefix;
    this.maxListed = options.maxListed ?? 1000;
    this.prefixBytes = Buffer.from(prefix, 'utf8');
    // A plaintext prefix on the data scanned anyway is checked in the same scan (one SCAN, no key twice).
    this.plaintexts = (
      options.plaintext === undefined ? [] : Array.isArray(options.plaintext) ? options.plaintext : [options.plaintext]
    ).map((p) => ({
      p,
      bytes: Buffer.from(p.prefix, 'utf8'),
      counts: { remaining: 0, otherKeys: 0 },
      merged: scope === 'database' && (p.client === client || sameRedisData(p.client.description, client.description)),
    }));
    this.merged = this.plaintexts.filter((x) => x.merged);
    const presence = options.presence !== undefined || (options.sources ?? []).some((x) => x.check === 'presence');
    this.presenceGc = presence ? (options.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME) : undefined;
    this.ctx = {
      prefix: this.prefixBytes,
      codec,
      phpredisPrefixes: [...new Set([...PHPREDIS_PREFIXES, ...this.plaintexts.map((x) => x.p.prefix)])].map((x) => Buffer.from(x, 'utf8')),
      ...(options.requireKeyId !== undefined ? { requireKeyId: options.requireKeyId } : {}),
    };
  }

  /** Failures listed so far: of each reason of SUMMARIZED_REASONS, and of all others together. */
  private readonly listedSummarized = new Map<VerifyFailureReason, number>();
  private listedOthers = 0;

  /**
   * Counts a failure of `reason`; true when it is to be listed (VerifyReport.failures' listing rule:
   * SUMMARIZED_LISTED of each summarized reason, `maxListed` of all others).
   */
  private count(reason: VerifyFailureReason): boolean {
    const report = this.report;
    report.ok = false;
    report.failureCounts[reason] = (report.failureCounts[reason] ?? 0) + 1;
    if (SUMMARIZED_REASONS.has(reason)) {
      const n = this.listedSummarized.get(reason) ?? 0;
      if (n >= Math.min(SUMMARIZED_LISTED, this.maxListed)) return false;
      this.listedSummarized.set(reason, n + 1);
      return true;
    }
    if (this.listedOthers >= this.maxListed) return false;
    this.listedOthers++;
    return true;
  }

  /** Records a failure (listed as VerifyReport.failures says). */
  private fail(f: VerifyFailure): void {
    if (this.count(f.reason)) this.report.failures.push(f);
  }

  /** A failing key of the scan; its name is formatted only when it is listed. */
  private failKey(key: Buffer, underPrefix: boolean, reason: VerifyFailureReason): void {
    if (this.count(reason)) this.report.failures.push({ key: shownKey(key, underPrefix), reason });
  }

  /** The source checks scan() started beside the database scan. */
  private sourcesDone: Promise<void> | undefined;

  /** Settles once the source checks scan() started have ended (they stop soon once the scan failed: `run.stopped`). */
  async sourcesStopped(): Promise<void> {
    await this.sourcesDone?.catch(() => undefined);
  }

  /** Scans the database (or prefix) while the sources are checked, then reports the sources' failures. */
  async scan(): Promise<void> {
    const { options, report, client, prefix } = this;
    // The sources are checked while the database is scanned (their files are read on worker threads,
    // the scan keeps this thread and Redis busy); their failures are held back and reported after the
    // scan's, in the order they came, as when the two ran one after the other.
    const held = new HeldFailures(this.maxListed);
    const run = { stopped: false };
    const sourcesDone = checkSources(options, report, (f) => held.add(f), run, this.owners);
    sourcesDone.catch(() => undefined); // awaited after the scan
    this.sourcesDone = sourcesDone;
    const scan = stopsOnThrow(
      run,
      scanKeys(client, {
        match: this.scope === 'database' ? '' : prefix,
        fullRead: this.prefixBytes,
        count: options.scanCount ?? 1000,
        ...(options.maxValueBytes !== undefined ? { maxValueBytes: options.maxValueBytes } : {}),
        onNode: (node) => report.nodes!.push(node),
        ttlWanted: (key) => phpredisName(key, this.ctx.phpredisPrefixes) === 'lock',
      }),
    );
    for await (const batch of scan) for (const item of batch) this.checkKey(item);

    if (options.expectedSessions !== undefined && options.expectedSessions > 0 && report.keysScanned === 0) {
      // Nothing at all where the plan copied sessions: a wrong target, database or prefix, not success.
      this.fail({ key: `${prefix}*`, reason: 'no-keys' });
    }
    await sourcesDone;
    held.replay(report, (f) => this.fail(f));
    // Files counted expired under a gc_maxlifetime shown too small: no verdict is possible.
    const expired = report.presence?.expired ?? 0;
    if (this.ttlAboveGc !== undefined && expired > 0)
      throw new UserFacingError(`verify stopped: ${this.ttlAboveGc}; ${expired} session file(s) were counted expired with it`);
  }

  /** Classifies and counts one scanned key. */
  private checkKey(item: ScannedKey): void {
    const report = this.report;
    const underPrefix = startsWith(item.key, this.prefixBytes);
    report.keysTotal!++;
    if (underPrefix) report.keysScanned++;
    if (item.error !== undefined) {
      stopOnPermanent(this.client, item.error, this.scope, this.prefix);
      this.failKey(item.key, underPrefix, /WRONGTYPE/.test(item.error.message) ? 'wrong-type' : 'read-error');
      return;
    }
    // A TTL above the gc_maxlifetime the presence check counts expiry with: a live session missing
    // from Redis would pass for expired (lifecycle.ts isTtlAboveGcMaxlifetime); see scan().
    if (
      underPrefix &&
      this.presenceGc !== undefined &&
      this.ttlAboveGc === undefined &&
      isTtlAboveGcMaxlifetime(item.pttlMs, this.presenceGc)
    )
      this.ttlAboveGc = ttlAboveGcMaxlifetimeMessage(shownKey(item.key, true), item.pttlMs, this.presenceGc);
    const verdict = classifyKey(item.key, item.value, item.pttlMs, this.ctx);
    this.countVerdict(item.key, item.value, verdict, underPrefix);
    const merged = this.merged;
    const plain = merged.length > 0 && !underPrefix ? merged.find((x) => startsWith(item.key, x.bytes)) : undefined;
    if (plain !== undefined) {
      // A key of a declared plaintext source: every string named like a session fails until purged
      // (whatever it holds, as in the separate count below); anything else there is no session.
      const rest = item.key.toString('latin1', plain.bytes.length);
      if (item.value.kind !== 'other-type' && SESSION_ID_PATTERN.test(rest)) {
        plain.counts.remaining++;
        this.fail({ key: `${plain.p.prefix}${rest.slice(0, 6)}…`, reason: 'plaintext-remains' });
        return;
      }
      plain.counts.otherKeys++;
    }
    if (verdict.failure === 'unknown-key-id') {
      const ids = (report.unknownKeyIds ??= {});
      ids[verdict.keyId!] = (ids[verdict.keyId!] ?? 0) + 1;
      report.keyRingIds ??= this.options.codec.keyIds;
    }
    if (verdict.failure !== undefined) this.failKey(item.key, underPrefix, verdict.failure);
  }

  /** Counts a key by its class. */
  private countVerdict(key: Buffer, value: KeyValue, verdict: KeyVerdict, underPrefix: boolean): void {
    const report = this.report;
    report.classes![verdict.class]++;
    switch (verdict.class) {
      case 'envelope':
        report.keysValid++;
        report.keyIds[verdict.keyId!] = (report.keyIds[verdict.keyId!] ?? 0) + 1;
        break;
      case 'tombstone':
        report.tombstones!++;
        break;
      case 'handler-lock':
        report.locks!++;
        break;
      case 'other': {
        const type = value.kind === 'other-type' ? value.type : 'string';
        report.otherTypes![type] = (report.otherTypes![type] ?? 0) + 1;
        if (value.kind === 'large-string') report.largeValues!++;
        break;
      }
      case 'plaintext-session':
        report.plaintextFormats![verdict.format!] = (report.plaintextFormats![verdict.format!] ?? 0) + 1;
        break;
      case 'stale-lock':
        report.staleLocks!.count++;
        if (report.staleLocks!.keys.length < 20) report.staleLocks!.keys.push(shownKey(key, underPrefix));
        break;
      default:
        break;
    }
  }

  /** Counts the plaintext prefixes the scan did not cover and puts every prefix's counts in the report. */
  async finishPlaintext(): Promise<void> {
    const report = this.report;
    const plaintextReports: PlaintextReport[] = [];
    for (const x of this.plaintexts) {
      plaintextReports.push(
        x.merged ? { prefix: x.p.prefix, url: x.p.url, ...x.counts } : await countPlaintext(x.p, this.prefix, (f) => this.fail(f)),
      );
    }
    if (plaintextReports.length === 1) report.plaintext = plaintextReports[0]!;
    else if (plaintextReports.length > 1) {
      report.plaintextSources = plaintextReports;
      report.plaintext = {
        prefix: plaintextReports.map((r) => r.prefix).join(', '),
        url: [...new Set(plaintextReports.map((r) => r.url))].join(', '),
        remaining: plaintextReports.reduce((a, r) => a + r.remaining, 0),
        otherKeys: plaintextReports.reduce((a, r) => a + r.otherKeys, 0),
      };
    }
  }
}

/**
 * The scan's batches; when the scan or the loop over it throws, `run.stopped` tells the source checks
 * running alongside to stop too (verifyTarget is failing; their result would not be read).
 */
async function* stopsOnThrow<T>(run: { stopped: boolean }, batches: AsyncGenerator<T>): AsyncGenerator<T> {
  let done = false;
  try {
    for await (const batch of batches) yield batch;
    done = true;
  } finally {
    if (!done) run.stopped = true;
  }
}

/**
 * Failures of the source checks, held while the scan runs: the first `maxListed` of them, and the
 * count of every one by reason; replay() reports them as if `fail` had been called for each, in order.
 */
class HeldFailures {
  private readonly listed: VerifyFailure[] = [];
  /** Reasons of the failures beyond `listed`, in order of first appearance, with counts. */
  private readonly beyond = new Map<VerifyFailureReason, number>();
  constructor(private readonly max: number) {}

  add(f: VerifyFailure): void {
    if (this.listed.length < this.max) this.listed.push(f);
    else this.beyond.set(f.reason, (this.beyond.get(f.reason) ?? 0) + 1);
  }

  replay(report: VerifyReport, fail: (f: VerifyFailure) => void): void {
    for (const f of this.listed) fail(f);
    // Not listable any more (the list already holds at least `max`): counted only, as fail() would.
    for (const [reason, n] of this.beyond) {
      report.ok = false;
      report.failureCounts[reason] = (report.failureCounts[reason] ?? 0) + n;
    }
  }
}

/**
 * Checks every source given (compare or presence), each on its own, after deciding which copy of a
 * session ID in several sources counts (the others are `superseded`). Sets report.source /
 * report.presence (sums) and, with several, report.sources and report.duplicates.
 */
async function checkSources(
  options: VerifyOptions,
  report: VerifyReport,
  fail: (f: VerifyFailure) => void,
  run: { stopped: boolean },
  owners: OwnerCount,
): Promise<void> {
  const checks: SourceCheck[] = [
    ...(options.sources ?? []),
    ...(options.source !== undefined ? [{ source: options.source, check: 'compare' as const }] : []),
    ...(options.source === undefined && options.presence !== undefined ? [{ source: options.presence, check: 'presence' as const }] : []),
  ];
  if (checks.length === 0) return;
  const resolution = await resolveDuplicates(
    checks.map((c) => c.source),
    { gcMaxlifetime: options.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME, serializeHandler: options.serializeHandler ?? 'php' },
  );
  const each: SourceCheckReport[] = [];
  for (const [i, c] of checks.entries()) {
    const superseded = resolution.superseded[i]!;
    const label = c.label ?? `#${i + 1} ${sourceLabel(c.source.describe())}`;
    // The plan knows no PHP user for this directory: its files of a non-root owner are counted as
    // they are walked (one walk of the directory, not a countOwners walk before it).
    const onOwner = phpUserUnknown(c.source.describe()) ? (uid: number) => void (uid !== 0 && owners.unknown++) : undefined;
    if (c.check === 'compare')
      each.push({ source: label, check: 'compare', compare: await verifySource(options, c.source, superseded, fail, onOwner) });
    else each.push({ source: label, check: 'presence', presence: await verifyPresence(options, c.source, superseded, fail, run, onOwner) });
  }
  const sum = <T extends object>(parts: T[]): T | undefined => {
    if (parts.length === 0) return undefined;
    const out = {} as Record<string, number>;
    for (const part of parts) for (const [k, v] of Object.entries(part)) out[k] = (out[k] ?? 0) + (v as number);
    return out as T;
  };
  const compared = sum(each.flatMap((e) => (e.compare !== undefined ? [e.compare] : [])));
  const present = sum(each.flatMap((e) => (e.presence !== undefined ? [e.presence] : [])));
  if (compared !== undefined) report.source = compared;
  if (present !== undefined) report.presence = present;
  if (checks.length > 1) {
    report.sources = each;
    report.duplicates = resolution.report;
  }
}

/**
 * A key name for reports, made only for the few keys reported: under the prefix as it is (key layout
 * 2 names are hashes), elsewhere with session IDs shortened (redactKeyName).
 */
function shownKey(key: Buffer, underPrefix: boolean): string {
  return underPrefix ? keyNameForDisplay(key) : redactKeyName(keyNameForDisplay(key));
}

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/**
 * A permanent error (an ACL rule without GET, say) is the same for every key: stop with what to fix.
 * @throws UserFacingError (exit 2) naming the server and the fix: `Redis at URL refused a command
 *   verify needs: ...` for an answer of Redis, `Redis at URL failed during verify: ...` (classifiedFailure)
 *   for a connection it kept closing under the commands.
 */
function stopOnPermanent(
  client: RedisConnection,
  err: Error | ClassifiedError,
  scope: 'database' | 'prefix' = 'prefix',
  prefix = '',
): void {
  const c = err instanceof Error ? client.classify(err) : err;
  if (c.kind !== 'permanent' || c.code === 'WRONGTYPE') return;
  if (scope === 'database' && c.code === 'NOPERM' && /key/i.test(c.message)) {
    // The rule allows only the prefix's keys: the whole-database scan cannot read the others.
    throw new UserFacingError(
      `Redis at ${client.url} refused to read a key outside the prefix (${c.message}): verify reads every key of the database; allow the user to read every key (${aclRuleFor('verify', prefix, client.topology, client.description.db)}, docs/redis.md), or run verify --prefix-only on a database shared with other applications`,
    );
  }
  // Redis refused nothing when it closed the connection under these commands at every re-send
  // (CLOSED_UNDER_COMMANDS of packages/redis/src/errors.ts, a lost connection classified permanent):
  // it failed, and the classified line says why.
  if (isConnectionLost(c)) throw classifiedFailure(c, client.url, 'verify');
  throw new UserFacingError(`Redis at ${client.url} refused a command verify needs: ${classifiedLine(c)}`);
}

/** Live sessions of a source sent to Redis in one batch (one pipeline per slot group). */
const SOURCE_BATCH = 1000;

/** Counts of source sessions not looked for in Redis, which compare and presence checks both keep. */
interface NotLookedFor {
  expired: number;
  empty: number;
  corrupt: number;
  superseded?: number;
}

/**
 * The failure of a source session that could not be read, or was larger than the plan's limit (so
 * was not copied: its user would be logged out).
 */
function notRead(item: Pick<SkippedEntry, 'location' | 'size'>): VerifyFailure {
  return {
    key: '(not read)',
    file: redactSessionPath(item.location),
    reason: 'source-unreadable',
    ...(item.size !== undefined ? { oversized: { bytes: item.size.bytes, maxBytes: item.size.maxBytes } } : {}),
  };
}

/**
 * One source's sessions() checked against Redis, SOURCE_BATCH live sessions at a time (verifySource;
 * verifyPresence of a source other than files). Each item is decided as plan and apply decide it
 * (decideSession, with gc_maxlifetime and the serialize_handler of the options): unreadable files fail
 * as they come, superseded, expired, empty and corrupt sessions are counted, the live ones are
 * batched; a subclass says what a batch entry holds and how a batch is checked. Failures come in the
 * order of the source (a batch's when it is checked).
 */
abstract class LiveSessionsCheck<Entry, Counts extends NotLookedFor> {
  protected readonly client: RedisConnection;
  protected readonly codec: EnvelopeCodec;
  protected readonly prefix: string;
  protected readonly gc: number;
  private readonly handler: SerializeHandler;
  /** Seconds since the epoch the sessions' ages are counted at. */
  private readonly now = Date.now() / 1000;

  constructor(
    options: VerifyOptions,
    private readonly source: Source,
    private readonly superseded: ReadonlySet<string>,
    protected readonly fail: (f: VerifyFailure) => void,
    protected readonly counts: Counts,
    /** Called with each session file's owner as it is read (OwnerCount; FilesSource.sessions onOwner). */
    private readonly onOwner?: (uid: number) => void,
  ) {
    this.client = options.client;
    this.codec = options.codec;
    this.prefix = options.prefix;
    this.gc = options.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME;
    this.handler = options.serializeHandler ?? 'php';
  }

  /** Checks every live session of the source, batch by batch; returns the counts. */
  async run(): Promise<Counts> {
    let batch: Entry[] = [];
    // The stable-read rule of plan and apply: a file PHP is rewriting is never taken for an empty or
    // corrupt session (which would not be looked for in Redis); it is read whole or reported unstable.
    const read = { looksComplete: looksCompleteFor(this.handler) };
    for await (const items of this.source.sessions({ read, ...(this.onOwner !== undefined ? { onOwner: this.onOwner } : {}) }))
      for (const item of items) {
        if (item.kind === 'skipped') {
          if (NOT_COPIED_SKIPS.has(item.reason)) this.fail(notRead(item));
          continue;
        }
        const ttlMs = this.liveTtlMs(item);
        if (ttlMs === undefined) continue;
        batch.push(this.entry(item, ttlMs));
        if (batch.length >= SOURCE_BATCH) {
          await this.checkBatch(batch);
          batch = [];
        }
      }
    if (batch.length > 0) await this.checkBatch(batch);
    return this.counts;
  }

  /** Counts a session not looked for in Redis (undefined); for a live one, its remaining lifetime in ms. */
  private liveTtlMs(item: SourceSession): number | undefined {
    if (this.superseded.has(item.id)) {
      this.counts.superseded!++; // another source's copy of this session is the one in Redis
      return undefined;
    }
    const decision = decideSourceSession(item, { gcMaxlifetime: this.gc, serializeHandler: this.handler, nowSeconds: this.now });
    if (decision.action !== 'migrate') {
      this.counts[decision.action]++;
      return undefined;
    }
    return decision.ttlMs;
  }

  /** What a batch keeps of a live session (`ttlMs`: its remaining lifetime, ms). */
  protected abstract entry(item: SourceSession, ttlMs: number): Entry;

  /** Reads a batch's keys from Redis, then counts and reports each session in order. */
  protected abstract checkBatch(batch: Entry[]): Promise<void>;
}

/**
 * Presence of every live session of a source (EXISTS of its key, else of its tombstone), in pipelines
 * grouped by slot. Contents are not compared: PHP changes them once it serves from Redis. A files
 * source is checked with apply's machinery (verifyFilesPresence); `run.stopped` stops that one.
 */
async function verifyPresence(
  options: VerifyOptions,
  source: Source,
  superseded: ReadonlySet<string>,
  fail: (f: VerifyFailure) => void,
  run: { stopped: boolean },
  onOwner?: (uid: number) => void,
): Promise<PresenceCounts> {
  if ('candidates' in source) return verifyFilesPresence(options, source as FilesSource, superseded, fail, run, onOwner);
  return new SourcePresence(options, source, superseded, fail, presenceCounts(superseded), onOwner).run();
}

/** Presence counts with nothing counted yet (`superseded` only when some session is). */
function presenceCounts(superseded: ReadonlySet<string>): PresenceCounts {
  return {
    checked: 0,
    present: 0,
    destroyed: 0,
    missing: 0,
    expired: 0,
    empty: 0,
    corrupt: 0,
    ...(superseded.size > 0 ? { superseded: 0 } : {}),
  };
}

/** A live session verifyPresence looks for: its key name and its file. */
interface PresenceEntry {
  key: string;
  file: string;
}

/** verifyPresence of a source other than files: per live session EXISTS of its key and of its tombstone. */
class SourcePresence extends LiveSessionsCheck<PresenceEntry, PresenceCounts> {
  protected entry(item: SourceSession): PresenceEntry {
    return { key: this.codec.keyName(this.prefix, item.id), file: item.location };
  }

  protected async checkBatch(batch: PresenceEntry[]): Promise<void> {
    const replies = await this.client.runGrouped(
      batch.map((b) => ({
        key: b.key,
        build: (pipe: ChainableCommander) => {
          pipe.exists(b.key);
          pipe.exists(tombstoneKeyFor(this.prefix, b.key));
        },
      })),
    );
    batch.forEach((b, i) => this.look(b, replies[i]));
  }

  /** Counts or reports one session from its replies: [EXISTS key, EXISTS tombstone]. */
  private look(b: PresenceEntry, replies: Reply[] | undefined): void {
    const counts = this.counts;
    counts.checked++;
    const [e1, present] = replies?.[0] ?? [new Error('no reply'), null];
    const [e2, tomb] = replies?.[1] ?? [new Error('no reply'), null];
    const err = e1 ?? e2;
    if (err) {
      stopOnPermanent(this.client, err);
      return this.fail({ key: b.key, file: redactSessionPath(b.file), reason: 'read-error' });
    }
    if (Number(present) === 1) counts.present++;
    else if (Number(tomb) === 1) counts.destroyed++;
    else {
      counts.missing++;
      this.fail({ key: b.key, file: redactSessionPath(b.file), reason: 'missing-in-redis' });
    }
  }
}

/** Session files per presence batch, and batches read ahead of the one being checked. */
const PRESENCE_BATCH = 1000;
const PRESENCE_IN_FLIGHT = 4;

/**
 * verifyPresence for a directory of session files, with apply's machinery, in two steps per batch
 * of files:
 * 1. every session is named from its ID (its file name), without reading the file (namesBatch), and
 *    Redis is asked for the keys (readBackPresence: one multi-key EXISTS per 1,000 keys on a single
 *    node or Sentinel; only a short count checks key and tombstone one by one; per slot in a
 *    cluster). A session whose key is there is present, and one whose tombstone is there was
 *    destroyed, whatever its file holds now: neither file is read.
 * 2. only the files of the sessions not in Redis are read with the stable-read rule and classified
 *    (presenceBatch: expired, empty, corrupt, unreadable), and the live ones among them are asked
 *    for again: still not there, they are missing (a failure).
 * Both steps run on worker threads (PreparePool) when `workers` > 0, several batches in flight. So
 * `expired`, `empty` and `corrupt` count the files whose session is not in Redis (the ones that
 * explain an absence), `checked` the sessions found in Redis plus the live ones among the others,
 * and a file that cannot be read fails only when its session is not in Redis. Failures are reported
 * batch by batch in the order of the files.
 */
async function verifyFilesPresence(
  options: VerifyOptions,
  source: FilesSource,
  superseded: ReadonlySet<string>,
  fail: (f: VerifyFailure) => void,
  run: { stopped: boolean },
  onOwner: ((uid: number) => void) | undefined,
): Promise<PresenceCounts> {
  return new FilesPresence(options, source, superseded, fail, run, onOwner).run();
}

/**
 * Worker threads for a files presence check: `options.workers`, else from VERIFY_WORKERS_FROM_SESSIONS
 * live sessions one per core beside this thread's, at most 2 (see VerifyOptions.workers), else 0.
 */
function presenceWorkers(options: VerifyOptions): number {
  return (
    options.workers ??
    ((options.expectedSessions ?? 0) >= VERIFY_WORKERS_FROM_SESSIONS ? Math.max(1, Math.min(2, availableParallelism() - 1)) : 0)
  );
}

/** What FilesSource.candidates() yields: a session file to read, or an entry skipped while listing. */
type FileEntry = SessionCandidate | SkippedEntry;

/** The presence read of one PresenceBatch: its key names and, per key, what Redis said. */
interface PresenceRead {
  batch: PresenceBatch;
  /** Key names of the batch's sessions (views into `batch.names`), in the order of `batch.index`. */
  keys: Buffer[];
  /** Per key: present, destroyed (its tombstone), missing, or the error of reading it. */
  presence: Presence[];
}

/** One batch of files whose presence was read: what FilesPresence.tally() counts and reports. */
interface CheckedBatch {
  /** The entries of the batch in the order of the files (PRESENCE_BATCH candidates, and the skipped between them). */
  entries: FileEntry[];
  candidates: SessionCandidate[];
  /** Step 1: every candidate not superseded, named from its ID (namesBatch); indexes into `candidates`. */
  named: PresenceRead;
  /** Step 2: the candidates step 1 found missing, read and classified (presenceBatch); indexes into `absent`. */
  read: PresenceRead;
  /** Indexes into `candidates` of the candidates step 2 read, ascending. */
  absent: number[];
}

/**
 * One verifyFilesPresence run. The directory is listed on this thread (FilesSource.candidates());
 * every PRESENCE_BATCH candidates a batch starts (named on the pool, or here, then its presence read),
 * and once PRESENCE_IN_FLIGHT batches are in flight the oldest is awaited and tallied: memory stays
 * bounded by the batches in flight, and the tallies come in the order of the files. Stops listing when
 * the database scan beside it has stopped (`scan.stopped`).
 */
class FilesPresence {
  private readonly client: RedisConnection;
  private readonly prefix: string;
  private readonly ctx: PrepareContext;
  private readonly counts: PresenceCounts;
  private readonly inFlight: Array<Promise<CheckedBatch>> = [];
  private pool: PreparePool | undefined;

  /** Works out the classification context (gc_maxlifetime, serialize_handler, now) and the counts. */
  constructor(
    private readonly options: VerifyOptions,
    private readonly source: FilesSource,
    private readonly superseded: ReadonlySet<string>,
    private readonly fail: (f: VerifyFailure) => void,
    private readonly scan: { stopped: boolean },
    /** Called with each session file's owner as it is listed (lstat: ownerOfCandidate); most files are never opened here. */
    private readonly onOwner: ((uid: number) => void) | undefined,
  ) {
    this.client = options.client;
    this.prefix = options.prefix;
    this.ctx = {
      prefix: options.prefix,
      gcMaxlifetime: options.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME,
      serializeHandler: options.serializeHandler ?? 'php',
      nowSeconds: Date.now() / 1000,
      maxSessionBytes: source.maxSessionBytes,
      ...(source.phpUids !== undefined ? { phpUids: source.phpUids } : {}),
      dryRun: true,
    };
    this.counts = presenceCounts(superseded);
  }

  /** Checks every session file; returns the counts. The pool (if any) is closed whatever happens. */
  async run(): Promise<PresenceCounts> {
    this.pool = this.startPool(presenceWorkers(this.options));
    try {
      await this.checkAll();
    } finally {
      await this.pool?.close();
    }
    return this.counts;
  }

  /** apply's worker pool for `workers` > 0 (else none), naming sessions only: the lookup key, no master key (prepare-worker.ts). */
  private startPool(workers: number): PreparePool | undefined {
    if (workers > 0) {
      const lookupKey = this.options.codec.lookupKeyCopy();
      try {
        return new PreparePool(workers, [], this.ctx, lookupKey);
      } finally {
        lookupKey.fill(0);
      }
    }
    return undefined;
  }

  /** Lists the files into batches, keeps at most PRESENCE_IN_FLIGHT in flight, and tallies each in order. */
  private async checkAll(): Promise<void> {
    let entries: FileEntry[] = [];
    let candidates = 0;
    for (const e of this.source.candidates()) {
      if (this.scan.stopped) break;
      if (this.onOwner !== undefined && e.kind === 'candidate') {
        const uid = ownerOfCandidate(e);
        if (uid !== undefined) this.onOwner(uid);
      }
      entries.push(e);
      if (e.kind === 'candidate' && ++candidates >= PRESENCE_BATCH) {
        this.start(entries);
        entries = [];
        candidates = 0;
        if (this.inFlight.length >= PRESENCE_IN_FLIGHT) this.tally(await this.inFlight.shift()!);
      }
    }
    if (entries.length > 0) this.start(entries);
    while (this.inFlight.length > 0) this.tally(await this.inFlight.shift()!);
  }

  /** Starts checking a batch; its result is awaited (and any error thrown) when its turn comes in checkAll. */
  private start(entries: FileEntry[]): void {
    const p = this.check(entries);
    p.catch(() => undefined); // observed when its turn comes
    this.inFlight.push(p);
  }

  /**
   * Step 1: names every candidate not superseded (on the pool, or on this thread at once, so the
   * read below starts before start() returns) and reads their presence; step 2: reads, classifies
   * and names the files of those missing, and reads the live ones' presence again. Nothing is read
   * from Redis once the scan has stopped.
   */
  private async check(entries: FileEntry[]): Promise<CheckedBatch> {
    const candidates = entries.filter((e): e is SessionCandidate => e.kind === 'candidate');
    let flags: Uint8Array | undefined;
    if (this.superseded.size > 0) flags = Uint8Array.from(candidates, (c) => (this.superseded.has(c.id) ? 1 : 0));
    const named = await this.readPresence(
      this.pool !== undefined ? this.pool.presence(candidates, flags, true) : namesBatch(candidates, flags, this.options.codec, this.ctx),
    );
    const absent: number[] = [];
    named.presence.forEach((p, k) => {
      if (p === 'missing') absent.push(named.batch.index[k]!);
    });
    const files = absent.map((i) => candidates[i]!);
    const read = await this.readPresence(
      files.length === 0
        ? emptyPresenceBatch(this.ctx.prefix)
        : this.pool !== undefined
          ? this.pool.presence(files)
          : presenceBatch(files, undefined, this.options.codec, this.ctx),
    );
    return { entries, candidates, named, read, absent };
  }

  /** Reads the presence of a batch's sessions (none once the scan has stopped). */
  private async readPresence(batch: PresenceBatch | Promise<PresenceBatch>): Promise<PresenceRead> {
    const b = await batch;
    const { keys, tombstones } = namesOf(b);
    const presence = b.count > 0 && !this.scan.stopped ? await readBackPresence(this.client, this.prefix, keys, tombstones) : [];
    return { batch: b, keys, presence };
  }

  /** Counts and reports one checked batch (in the order of the files). */
  private tally(checked: CheckedBatch): void {
    const { named, read, absent } = checked;
    this.failUnreadable(
      checked.entries,
      read.batch.unreadable.map((u) => absent[u]!),
      new Map(read.batch.oversized.map((o) => [absent[o.index]!, o.bytes])),
    );
    const { counts } = this;
    counts.expired += read.batch.expired;
    counts.empty += read.batch.empty;
    counts.corrupt += read.batch.corrupt;
    if (named.batch.superseded > 0) counts.superseded = (counts.superseded ?? 0) + named.batch.superseded;
    this.countPresence(checked.candidates, named, (k) => named.batch.index[k]!, true);
    this.countPresence(checked.candidates, read, (k) => absent[read.batch.index[k]!]!, false);
  }

  /**
   * Reports the files that could not be read, in order: skipped while listing (NOT_COPIED_SKIPS)
   * or when read (`unreadable`: candidate indexes, ascending; `oversized`: the size in bytes of those
   * larger than the plan's limit, by candidate index). They were not copied either: their users would
   * be logged out.
   */
  private failUnreadable(entries: FileEntry[], unreadable: number[], oversized: ReadonlyMap<number, number>): void {
    let u = 0;
    let c = 0;
    for (const e of entries) {
      if (e.kind === 'skipped') {
        if (NOT_COPIED_SKIPS.has(e.reason)) this.fail(notRead(e));
        continue;
      }
      if (unreadable[u] === c) {
        const bytes = oversized.get(c);
        this.fail(
          notRead({ location: e.location, ...(bytes !== undefined ? { size: { bytes, maxBytes: this.ctx.maxSessionBytes } } : {}) }),
        );
        u++;
      }
      c++;
    }
  }

  /**
   * Counts each session of a presence read present, destroyed or missing (a failure), or reports its
   * read error; `candidate(k)` is the index in `candidates` of key `k`. With `firstStep`, a missing
   * session is left to step 2 (its file decides).
   */
  private countPresence(
    candidates: SessionCandidate[],
    { keys, presence }: PresenceRead,
    candidate: (k: number) => number,
    firstStep: boolean,
  ): void {
    const counts = this.counts;
    const file = (k: number): string => redactSessionPath(candidates[candidate(k)]!.location);
    presence.forEach((p, k) => {
      if (p === 'missing' && firstStep) return;
      counts.checked++;
      if (typeof p === 'object') {
        stopOnPermanent(this.client, p.error);
        return this.fail({ key: keys[k]!.toString('utf8'), file: file(k), reason: 'read-error' });
      }
      if (p === 'present') counts.present++;
      else if (p === 'destroyed') counts.destroyed++;
      else {
        counts.missing++;
        this.fail({ key: keys[k]!.toString('utf8'), file: file(k), reason: 'missing-in-redis' });
      }
    });
  }
}

/**
 * The key and tombstone names of a batch's live sessions, as views into `batch.names` (no copy):
 * per session `keyBytes` of key name, then `tombstoneBytes` of tombstone name (PresenceBatch).
 */
function namesOf(batch: PresenceBatch): { keys: Buffer[]; tombstones: Buffer[] } {
  const names = Buffer.from(batch.names.buffer, batch.names.byteOffset, batch.names.byteLength);
  const stride = batch.keyBytes + batch.tombstoneBytes;
  const keys: Buffer[] = new Array(batch.count);
  const tombstones: Buffer[] = new Array(batch.count);
  for (let k = 0; k < batch.count; k++) {
    keys[k] = names.subarray(k * stride, k * stride + batch.keyBytes);
    tombstones[k] = names.subarray(k * stride + batch.keyBytes, (k + 1) * stride);
  }
  return { keys, tombstones };
}

/**
 * SCANs the plaintext prefix; every key there is a session still readable without the key. Keys under
 * the target prefix (same server, nested prefixes) are not counted.
 */
async function countPlaintext(p: PlaintextCheck, targetPrefix: string, fail: (f: VerifyFailure) => void): Promise<PlaintextReport> {
  let remaining = 0;
  let other = 0;
  const target = Buffer.from(targetPrefix, 'utf8');
  const plain = Buffer.from(p.prefix, 'utf8');
  for await (const keys of p.client.scan(p.prefix)) {
    const named: Array<{ key: Buffer; rest: string }> = [];
    for (const k of keys) {
      if (k.subarray(0, target.length).equals(target) && target.length > plain.length) continue;
      const rest = k.subarray(plain.length).toString('latin1');
      // Only string keys named like phpredis sessions count (<prefix><session ID>); its `<id>_LOCK`
      // keys and anything else under the prefix are not sessions, and purge leaves them alone too.
      if (SESSION_ID_PATTERN.test(rest)) named.push({ key: k, rest });
      else other++;
    }
    const types = await p.client.runGrouped(
      named.map((n) => ({
        key: n.key,
        build: (pipe: ChainableCommander) => {
          pipe.type(n.key);
        },
      })),
    );
    named.forEach((n, i) => {
      const [err, type] = types[i]?.[0] ?? [new Error('no reply'), null];
      if (err === null && type !== 'string' && type !== 'none') {
        other++;
        return;
      }
      if (type === 'none') return; // expired or purged since the SCAN
      remaining++;
      // Never print a full session ID: it is a replayable credential.
      fail({ key: `${p.prefix}${n.rest.slice(0, 6)}…`, reason: 'plaintext-remains' });
    });
  }
  return { prefix: p.prefix, url: p.url, remaining, otherKeys: other };
}

/**
 * Every live session of a source compared with Redis byte for byte (verify --source): its key must
 * open under the key ring to the same bytes, unless the session was logged out since (its tombstone)
 * or the handler wrote it after the copy (`newer`).
 */
async function verifySource(
  options: VerifyOptions,
  source: Source,
  superseded: ReadonlySet<string>,
  fail: (f: VerifyFailure) => void,
  onOwner?: (uid: number) => void,
): Promise<CompareCounts> {
  return new SourceCompare(options, source, superseded, fail, onOwner).run();
}

/** A live session verifySource compares: its key name, its bytes, its file, its remaining lifetime (ms). */
interface CompareEntry {
  key: string;
  data: Buffer;
  file: string;
  ttlMs: number;
}

/** verifySource's counts, `newer` and `destroyed` always there. */
type CompareTally = CompareCounts & { newer: number; destroyed: number };

/** verifySource: per live session GET of its key, EXISTS of its tombstone and PTTL, in pipelines grouped by slot. */
class SourceCompare extends LiveSessionsCheck<CompareEntry, CompareTally> {
  constructor(
    options: VerifyOptions,
    source: Source,
    superseded: ReadonlySet<string>,
    fail: (f: VerifyFailure) => void,
    onOwner: ((uid: number) => void) | undefined,
  ) {
    const counts: CompareTally = {
      checked: 0,
      matching: 0,
      newer: 0,
      expired: 0,
      empty: 0,
      corrupt: 0,
      destroyed: 0,
      ...(superseded.size > 0 ? { superseded: 0 } : {}),
    };
    super(options, source, superseded, fail, counts, onOwner);
  }

  protected entry(item: SourceSession, ttlMs: number): CompareEntry {
    return { key: this.codec.keyName(this.prefix, item.id), data: item.data, file: item.location, ttlMs };
  }

  protected async checkBatch(batch: CompareEntry[]): Promise<void> {
    const replies = await this.client.runGrouped(
      batch.map((b) => ({
        key: b.key,
        build: (pipe: ChainableCommander) => {
          pipe.getBuffer(b.key);
          pipe.exists(tombstoneKeyFor(this.prefix, b.key));
          pipe.pttl(b.key);
        },
      })),
    );
    batch.forEach((b, i) => this.compare(b, replies[i]));
  }

  /** Counts or reports one session from its replies: [GET key, EXISTS tombstone, PTTL key]. */
  private compare(b: CompareEntry, replies: Reply[] | undefined): void {
    const counts = this.counts;
    counts.checked++;
    const [err, value] = replies?.[0] ?? [new Error('no reply'), null];
    const [, tombstone] = replies?.[1] ?? [null, 0];
    const [, pttl] = replies?.[2] ?? [null, -2];
    const file = redactSessionPath(b.file);
    if (err) {
      stopOnPermanent(this.client, err);
      return this.fail({ key: b.key, file, reason: /WRONGTYPE/.test(err.message) ? 'wrong-type' : 'read-error' });
    }
    if (value === null && tombstone === 1) {
      counts.destroyed++; // logged out through the handler after the copy: gone on purpose
      return;
    }
    if (value === null) return this.fail({ key: b.key, file, reason: 'missing-in-redis' });
    const opened = this.codec.open(b.key, value as Buffer);
    if (!opened.ok) return; // already reported by the scan of the prefix
    if (!opened.plaintext.equals(b.data)) {
      // A TTL above gc_maxlifetime: the gc_maxlifetime given is too small, and an older copy would
      // pass for newer (lifecycle.ts isTtlAboveGcMaxlifetime). No verdict is possible: stop.
      if (typeof pttl === 'number' && isTtlAboveGcMaxlifetime(pttl, this.gc))
        throw new UserFacingError(`verify stopped: ${ttlAboveGcMaxlifetimeMessage(b.key, pttl, this.gc)}`);
      // Written by the handler after the file last changed (read-through mode): newer, by the same
      // rule as apply's newerInRedis and purge's `newer` (the lifecycle policy, packages/common/src/lifecycle.ts); otherwise the copy is wrong or stale.
      if (typeof pttl === 'number' && isNewerInRedis(pttl, b.ttlMs)) {
        counts.newer++;
        return;
      }
      return this.fail({ key: b.key, file, reason: 'different-content' });
    }
    counts.matching++;
  }
}

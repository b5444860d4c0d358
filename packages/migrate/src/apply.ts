/**
 * `apply`: carry out a plan. Generates the PHP artifacts, then copies every live session into Redis
 * as an envelope with its remaining TTL, without ever overwriting a key that already exists.
 * Re-running is safe and changes nothing: keys already holding the same session are counted as
 * `alreadyPresent`, keys holding anything else are `conflicts`, reported and left alone.
 *
 * Ordering rule under live traffic (agreed with the generated handler, docs/runbook.md): each session
 * is written by one Lua script (target.GUARDED_WRITE_LUA): if the handler destroyed the session
 * (tombstone `<prefix>destroyed:{<hash>}`) nothing is written (`destroyed`); else `SET .. NX`, so a
 * session the handler already wrote (always newer than the file) is never overwritten. Several hosts
 * may run apply on their own directories into one Redis at once.
 *
 * Transient failures of Redis (restart, dropped connection, LOADING, a resharding, a failover) are
 * retried with exponential backoff, bounded by `retry`; each retry is counted. When the budget is
 * spent apply stops and reports what is not done (`notDone`); because every write is no-clobber,
 * running it again finishes the job. A permanent error (an ACL rule, a replica, OOM; see
 * @session-migrate/redis errors.ts) is never retried: apply stops at once with what to fix (`stopped`).
 *
 * Writes are confirmed: on a target with replicas, WAIT after each batch (`confirm.minReplicas`,
 * `confirm.waitTimeoutMs`); a batch fewer replicas acknowledged is counted `unconfirmed`. Sessions
 * found already present were written by another run, which WAIT on this connection cannot speak for:
 * at the end apply checks that each master's replicas reached the master's replication offset
 * (RedisConnection.replicasCaughtUp), and counts the present sessions of a master whose replicas did
 * not `unconfirmed` (all of them when they cannot be attributed to a master). At the end
 * the presence of every session written (or found already there) is read back (EXISTS, grouped by
 * slot; behind Sentinel from the master the sentinels report now): a session missing then, e.g. lost
 * in a failover, is counted `missingAfterWrite`. Either makes apply exit 1; running it again writes
 * what is missing.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import {
  SCAN_RESTARTS_AFTER_FAILOVER,
  isConnectionLost,
  type ClassifiedError,
  type RedisConnection,
  type Topology,
} from '@session-migrate/redis';
import {
  UserFacingError,
  isNewerInRedis,
  isTtlAboveGcMaxlifetime,
  notDoneSentence,
  redactSessionPath,
  ttlAboveGcMaxlifetimeMessage,
} from '@session-migrate/common';
import type { SessionSource } from '@session-migrate/sources';
import type { SessionCandidate } from '@session-migrate/sources';
import type { Source } from '@session-migrate/sources';
import {
  lookupGuardedWrite,
  readBackPresence,
  writeBatchGuarded,
  writeEncodedGuarded,
  type GuardedWriteOutcome,
} from '@session-migrate/target';
import { keyMismatch, type Plan } from './plan.ts';
import { prepareBatch, prepareSessions, PreparedSessions, type PrepareContext, type PreparedBatch } from './prepare.ts';
import { PackBuffers, PreparePool } from './prepare-pool.ts';

/** Sessions per pipeline. */
const BATCH_SIZE = 1000;

/** A reason apply refuses to run because the world no longer matches the plan. */
export interface Drift {
  what: 'source' | 'target' | 'key';
  message: string;
}

/** What apply observed now, to compare with the plan. */
export interface CurrentState {
  keyId: string;
  /** Lookup ID of the ring read now (docs/keys.md). */
  lookupId?: string;
  /** Where the key was read from now, for messages (e.g. `key file /etc/sm/master.key`); default: the plan's. */
  keyDescription?: string;
  sourceIdentity: { dev: number; ino: number } | undefined;
  /** What the target is now: its topology, run_id (single node), node IDs (cluster). */
  target: { topology: Topology; runId?: string; nodeIds?: string[] };
}

/** Compares a plan with the current state; an empty list means no drift. Pure. */
export function detectDrift(plan: Plan, now: CurrentState): Drift[] {
  const drift: Drift[] = [];
  const key = keyMismatch(plan, now);
  if (key !== undefined) drift.push({ what: 'key', message: key });
  if (plan.source.kind === 'redis') {
    // A Redis source has no directory identity; its server is checked when apply connects.
  } else if (now.sourceIdentity === undefined) {
    drift.push({ what: 'source', message: `source directory ${plan.source.dir} no longer exists` });
  } else if (now.sourceIdentity.dev !== plan.source.dev || now.sourceIdentity.ino !== plan.source.ino) {
    drift.push({ what: 'source', message: `source directory ${plan.source.dir} was replaced since the plan (different inode)` });
  }
  const t = plan.target;
  if (now.target.topology !== t.topology) {
    drift.push({
      what: 'target',
      message: `Redis at ${t.url} is now ${now.target.topology === 'cluster' ? 'a Redis Cluster' : `a ${now.target.topology} server`}, the plan was made for ${t.topology === 'cluster' ? 'a Redis Cluster' : `a ${t.topology} server`}`,
    });
  } else if (t.topology === 'standalone' && now.target.runId !== t.runId) {
    drift.push({ what: 'target', message: `Redis at ${t.url} is not the server the plan was made against (restarted or replaced)` });
  } else if (t.topology === 'cluster' && !(now.target.nodeIds ?? []).some((id) => (t.nodeIds ?? []).includes(id))) {
    // A resharding or a failover keeps node IDs; only another cluster shares none.
    drift.push({
      what: 'target',
      message: `the Redis Cluster at ${t.url} shares no node with the cluster the plan was made against (replaced)`,
    });
  }
  // Sentinel: the master behind the name may change (a failover); re-running apply is how an
  // interrupted apply finishes, so the plan stays valid.
  return drift;
}

/**
 * "Newer in Redis" (isNewerInRedis, NEWER_MARGIN_MS) is the one session-lifecycle policy's
 * (packages/common/src/lifecycle.ts), re-exported here for the migrate API.
 */
export { NEWER_MARGIN_MS, isNewerInRedis } from '@session-migrate/common';

export interface SessionCounts {
  /** Written now. */
  migrated: number;
  /** Already in Redis with the same session bytes (an earlier apply). */
  alreadyPresent: number;
  /**
   * Key exists with another session, written after the source copy was last changed: the handler
   * (read-through mode) already took the session over and updated it. Left alone, by design.
   */
  newerInRedis: number;
  /**
   * Key exists with other contents that are not newer, or another type, or a TTL longer than the
   * plan's gc_maxlifetime (isTtlAboveGcMaxlifetime: newer cannot be told): left alone and reported.
   */
  conflicts: number;
  /** A command failed: reported, and apply exits non-zero. */
  failed: number;
  /** The handler destroyed the session (tombstone): not written, by design. */
  destroyed: number;
  /** Redis commands retried after a connection failure (each batch attempt counts once). */
  retries: number;
  /** Sessions not written because the retry budget ran out or a permanent error stopped apply (re-run apply to finish). */
  notDone: number;
  /** Sessions of batches fewer replicas than asked acknowledged (WAIT) in time (re-run apply). */
  unconfirmed: number;
  /** Sessions written (or found present) that the read-back at the end did not find (lost, e.g. in a failover): re-run apply. */
  missingAfterWrite: number;
  /** Sessions whose read-back failed (Redis errors): their presence is not proven (re-run apply). */
  unverified: number;
  /**
   * Of `migrated` (written by this run), those the read-back did not find (also in `missingAfterWrite`):
   * written, then lost. `migrated` counts writes Redis acknowledged; `migrated - migratedMissing -
   * migratedUnverified` of them were seen in Redis at the end.
   */
  migratedMissing: number;
  /** Of `migrated`, those the read-back could not read (also in `unverified`). */
  migratedUnverified: number;
  /** Files that kept changing while read: not copied (re-run apply). */
  unstable: number;
  /** Redis source keys without a TTL, given gc_maxlifetime. */
  noTtl: number;
  expired: number;
  empty: number;
  corrupt: number;
  /** Entries skipped by the source, by reason. */
  skipped: Record<string, number>;
  migratedBytes: number;
}

/** Failed sessions with one reason: how many, and the key names (never values) of the first FAILURE_GROUP_KEYS. */
export interface FailureGroup {
  reason: string;
  count: number;
  keys: string[];
}

/** Key names kept per failure reason. */
export const FAILURE_GROUP_KEYS = 3;
/** Distinct failure reasons kept; failures for any further reason are counted under OTHER_FAILURE_REASONS. */
const MAX_FAILURE_GROUPS = 20;
/** The group of failures beyond MAX_FAILURE_GROUPS distinct reasons. */
export const OTHER_FAILURE_REASONS = 'other errors (not listed)';

/**
 * Counts `count` failed sessions under `reason` in `groups` (in place): the group of that reason, or
 * a new one (at most MAX_FAILURE_GROUPS distinct reasons; failures for any further reason go to one
 * last group, OTHER_FAILURE_REASONS), keeping the first FAILURE_GROUP_KEYS key names. Used by apply
 * per session and to add several sources' reports up.
 */
export function addFailure(groups: FailureGroup[], reason: string, keys: readonly string[], count = keys.length): void {
  const named = groups.filter((g) => g.reason !== OTHER_FAILURE_REASONS).length;
  const as = groups.some((g) => g.reason === reason) || named < MAX_FAILURE_GROUPS ? reason : OTHER_FAILURE_REASONS;
  let group = groups.find((g) => g.reason === as);
  if (group === undefined) groups.push((group = { reason: as, count: 0, keys: [] }));
  group.count += count;
  for (const k of keys) if (group.keys.length < FAILURE_GROUP_KEYS) group.keys.push(k);
}

/**
 * Lists a replica shortfall once: the same master, wanted and acknowledged count is listed once
 * however many batches it cost (at most MAX_LISTED entries).
 */
export function addShortfall(list: ApplySessionsReport['replicaShortfalls'], s: ApplySessionsReport['replicaShortfalls'][number]): void {
  if (list.length >= MAX_LISTED || list.some((x) => x.node === s.node && x.wanted === s.wanted && x.acked === s.acked)) return;
  list.push(s);
}

/** A SessionCounts with every count at 0: where apply starts, and the sum of several sources starts. */
export function emptySessionCounts(): SessionCounts {
  return {
    migrated: 0,
    alreadyPresent: 0,
    newerInRedis: 0,
    conflicts: 0,
    failed: 0,
    destroyed: 0,
    retries: 0,
    notDone: 0,
    unconfirmed: 0,
    missingAfterWrite: 0,
    unverified: 0,
    migratedMissing: 0,
    migratedUnverified: 0,
    unstable: 0,
    noTtl: 0,
    expired: 0,
    empty: 0,
    corrupt: 0,
    skipped: {},
    migratedBytes: 0,
  };
}

export interface KeyProblem {
  /** Redis key name (safe to print). */
  key: string;
  /** Source file, with the session ID shortened. */
  file: string;
  reason: string;
}

export interface ApplySessionsReport {
  dryRun: boolean;
  counts: SessionCounts;
  conflicts: KeyProblem[];
  failures: KeyProblem[];
  /**
   * Every failed session (all of `counts.failed`, not only the `failures` listed), grouped by reason:
   * how many, and the key names of the first few (FailureGroup, addFailure). Absent in reports made
   * before it existed.
   */
  failureGroups?: FailureGroup[];
  /** Files that never gave a stable read (paths with the session ID shortened). */
  unstable: string[];
  /**
   * Files not copied because PHP's files handler refuses their owner (skip reason `foreign-owner`,
   * at most 100, paths with the session ID shortened): PHP never served them, so apply does not fail.
   */
  foreignOwned?: string[];
  /** True when apply stopped early (retry budget spent, or a permanent error): `counts.notDone` sessions remain. */
  aborted: boolean;
  /** The permanent error that stopped apply, with its fix. */
  stopped?: ClassifiedError;
  /**
   * The source failed while apply read it (a Redis source's master lost mid-SCAN, ...), after this
   * run had started copying: what it said (one printable line, never a value) and how many sessions
   * this run had written when it stopped (`counts.migrated` then). apply reads the source no further,
   * finishes the batches in flight, reads back what it wrote, and reports; the run is not ok (exit 1
   * when it wrote any session, else the error alone, exit 2: use-cases/apply.ts summarize). One per
   * source that failed (the sum of several sources' reports keeps each). Absent when none failed.
   */
  sourceFailures?: SourceFailure[];
  /**
   * Why the entries a Redis source (any source read on this thread) counted `unreadable` in
   * `counts.skipped` could not be read, by the source's detail (RedisSource unreadableDetail: the
   * connection lost, or the error's code; never a value), with how many each. Absent when none.
   */
  unreadableReasons?: Record<string, number>;
  /** Key names the read-back did not find (at most 100). */
  missing: string[];
  /** Masters that acknowledged fewer replicas than asked, with counts (at most 100 lines). */
  replicaShortfalls: Array<{ node: string; wanted: number; acked: number }>;
}

/** A source that failed while apply read it (ApplySessionsReport.sourceFailures). */
export interface SourceFailure {
  /** The source's one-line error (a UserFacingError's message: names the source, never a value). */
  message: string;
  /** Sessions this run wrote from that source before it failed (its `counts.migrated`). */
  written: number;
}

/**
 * apply's NOT DONE sentence for a source that failed after sessions were written (the report's line
 * after its `NOT DONE` label): `<written> session(s) written, then the source failed: <reason>; the
 * sessions written are complete and valid: run apply again ...`. Built by notDoneSentence, the one
 * home of purge's, rotate's and rollback's NOT DONE lines (packages/common/src/errors.ts), which
 * drops the source's own trailing "run again". Whether it is said at all (exit 1) or the source's
 * line alone (exit 2, nothing written) is use-cases/apply.ts summarize's, by changedSomething.
 */
export function sourceFailureNotDone(f: SourceFailure): string {
  return notDoneSentence({
    reason: f.message,
    done: f.written,
    what: 'session(s) written',
    stoppedBy: ', then the source failed',
    rerun: 'the sessions written are complete and valid: run apply again to copy the rest (it writes only what is missing)',
  });
}

/**
 * The failure reason of writes whose replies Redis never sent: it closed the connection under them
 * at every re-send (CLOSED_UNDER_COMMANDS of packages/redis/src/errors.ts, a permanent error that
 * stops apply). The guarded write (one Lua script per session) may have run before the close, so
 * each may be in Redis (mayHaveRun); a re-run's guarded write finds those as the same session
 * (`already present`: recordExisting) and writes the others, as test/reconnect-bound.test.ts sees
 * with a real Redis. Said on apply's FAILED line and in the report's failures.
 * @param error the connection's one-line error, e.g. `Redis closed the connection 3 times while the
 *   same commands waited for their replies`
 * @returns `<error>: the replies were lost, so they may have been written; once the cause is fixed,
 *   run apply again: it counts those written as already present and writes the others`
 */
export function lostReplyFailure(error: string): string {
  return `${error}: the replies were lost, so they may have been written; once the cause is fixed, run apply again: it counts those written as already present and writes the others`;
}

/** How apply confirms writes. */
export interface ConfirmOptions {
  /** Replicas that must acknowledge each batch, per master `host:port` (`*`: every master); 0 or absent: no WAIT. */
  minReplicas: Map<string, number>;
  /** WAIT timeout in ms; also how long the end check waits for replicas to reach their master's offset. */
  waitTimeoutMs: number;
  /**
   * Behind Sentinel: how long, in ms, the end check waits for the master the sentinels report to be
   * reachable as master, and the read-back when the end check did not wait
   * (RedisConnection.followSentinelMaster; absent: its default, 30 s). 0: look once, no wait.
   */
  masterWaitMs?: number;
  /** Read back the presence of every session at the end (default true). */
  readBack?: boolean;
}

/** Bounded exponential backoff for Redis failures. */
export interface RetryPolicy {
  /** Retries per batch before apply gives up (default 8). */
  attempts: number;
  /** First pause in ms, doubled each retry (default 250). */
  baseDelayMs: number;
  /** Longest pause in ms (default 5000). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 250, maxDelayMs: 5000 };

export interface ApplySessionsOptions {
  plan: Plan;
  /** A FilesSource (read on worker threads when there are any) or any Source (e.g. RedisSource). */
  source: SessionSource | Source;
  codec: EnvelopeCodec;
  /**
   * The target connection. In a dry run it is only read (lookupGuardedWrite: what the guarded write
   * would decide for each session, counted as a real run counts it); undefined there: nothing is
   * looked up and every session counts as would-be migrated.
   */
  target: RedisConnection | undefined;
  /** WAIT and read-back (default: no WAIT, read-back on). */
  confirm?: ConfirmOptions;
  dryRun: boolean;
  /**
   * Worker threads that read and seal sessions in parallel (0 = all on this thread). Workers need
   * `masterKeys` and `lookupKey` (the same ring as `codec`); each gets its own copy.
   */
  workers?: number;
  masterKeys?: Uint8Array[];
  /** The ring's 32-byte lookup key (default: derived from the first master key). */
  lookupKey?: Uint8Array;
  /** Called after every batch with sessions handled so far. */
  onProgress?: (handled: number) => void;
  /** Seconds since the epoch; defaults to the current time (tests pin it). */
  nowSeconds?: number;
  /** Backoff for Redis failures (default DEFAULT_RETRY). */
  retry?: RetryPolicy;
  /** Called before each retry with the attempt number and the error (one line, no values). */
  onRetry?: (attempt: number, error: string) => void;
  /**
   * Asked when the source failed while read (its UserFacingError, `err`) and the run's writes did not
   * stop: true runs apply over the source again from the beginning, with a new report (a Redis source
   * behind Sentinel whose SCAN a failover cut short: sourceScanAgain, which waits for the new master
   * and says so). Absent: never (the report's sourceFailures says the source failed).
   */
  scanAgainAfterFailover?: (err: UserFacingError) => Promise<boolean>;
}

/**
 * A source's own UserFacingError, met while apply walked it (not a write's): ApplyRun.run tells it
 * apart from any other error by this wrapper, set where the source is read (readingSource).
 */
class SourceReadFailed extends Error {
  constructor(readonly error: UserFacingError) {
    super(error.message);
  }
}

/** `items` as they come, a UserFacingError the source throws while read wrapped in SourceReadFailed. */
function* readingSource<T>(items: Iterable<T>): Generator<T> {
  const it = items[Symbol.iterator]();
  for (;;) {
    let next: IteratorResult<T>;
    try {
      next = it.next();
    } catch (err) {
      throw err instanceof UserFacingError ? new SourceReadFailed(err) : err;
    }
    if (next.done === true) return;
    yield next.value;
  }
}

/** readingSource for an asynchronous source (a Redis source's batches). */
async function* readingSourceAsync<T>(items: AsyncIterable<T>): AsyncGenerator<T> {
  const it = items[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<T>;
      try {
        next = await it.next();
      } catch (err) {
        throw err instanceof UserFacingError ? new SourceReadFailed(err) : err;
      }
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    await it.return?.();
  }
}

/** Lists reported per kind of problem; counts are always complete. */
const MAX_LISTED = 100;

/**
 * Copies every live session of the source into Redis (or, with dryRun, counts what the copy would
 * do, looking up each session in Redis without writing: no WAIT, no read-back).
 * A source that fails while read (its UserFacingError) does not throw: the report's sourceFailures
 * says so, with the sessions written before (everything written so far stays valid, and a re-run
 * continues where it stopped).
 * @throws UserFacingError from the target when the connection is lost; everything written so far stays
 *   valid, and a re-run continues where it stopped.
 */
export async function applySessions(options: ApplySessionsOptions): Promise<ApplySessionsReport> {
  for (let restarts = 0; ; restarts++) {
    const run = new ApplyRun(options);
    const report = await run.run();
    // The source's SCAN cut short by a failover (scanAgainAfterFailover), the target still writing:
    // the pass cut short has ended whole (its batches written, WAITed for, read back), and a new one
    // reads the source from the beginning on the new master with a report of its own. What the first
    // wrote, the second's guarded write finds holding the same session: counted `alreadyPresent` (as a
    // re-run counts it: recordExisting) and read back again; nothing is counted twice, and no Set of
    // IDs is kept (memory stays flat). A session only the lost master had (written by the first pass,
    // absent from the second) is no longer a session of the source: neither counted nor claimed.
    const err = run.sourceError;
    if (
      err === undefined ||
      report.aborted ||
      report.stopped !== undefined ||
      restarts >= SCAN_RESTARTS_AFTER_FAILOVER ||
      options.scanAgainAfterFailover === undefined ||
      !(await options.scanAgainAfterFailover(err))
    )
      return report;
  }
}

/** A write sent again whose key holds the envelope this run sealed (ApplyRun.sortOutcomes). */
const WRITTEN_AGAIN: GuardedWriteOutcome = Object.freeze({ status: 'written' });

/** What one write attempt of a batch left (ApplyRun.sortOutcomes). */
interface AttemptTally {
  /** Indexes (into the batch) of the sessions that failed, to send again. */
  again: number[];
  /** The last failure's message ('' when none failed). */
  lastError: string;
  /** The first permanent error (retrying cannot help), if any. */
  permanent: ClassifiedError | undefined;
  /** Sessions written (status `written`). */
  written: number;
  /** The connection closed during the attempt: ioredis may have sent its calls twice (set by writeAttempts). */
  sentAgain?: boolean;
}

/** One run of applySessions: the state its steps share (counts, ledger, problems, pool, options). */
class ApplyRun {
  private readonly plan: Plan;
  private readonly codec: EnvelopeCodec;
  private readonly dryRun: boolean;
  private readonly client: RedisConnection | undefined;
  private readonly confirm: ConfirmOptions;
  private readonly waitWanted: boolean;
  private readonly ledger: PresenceLedger;
  private readonly replicaShortfalls: ApplySessionsReport['replicaShortfalls'] = [];
  /** Cluster, with WAIT wanted: sessions found already present, by the master (`host:port`) serving their slot then ('?': unknown). */
  private readonly presentByMaster = new Map<string, number>();
  private stopped: ClassifiedError | undefined;
  /** Whether Redis is gone: set and read by the write phase, the end check and the read-back. */
  private readonly gone: RedisGone;
  private readonly retry: RetryPolicy;
  private readonly ctx: PrepareContext;
  private readonly counts = emptySessionCounts();
  private readonly conflicts: KeyProblem[] = [];
  private readonly failures: KeyProblem[] = [];
  private readonly failureGroups: FailureGroup[] = [];
  /** Batches now between their first failed write and their end (writeWithRetry). */
  private retryingBatches = 0;
  /** The highest retry announced (onRetry) since a batch last began retrying with none other retrying. */
  private announcedRetry = 0;
  private readonly unstable: string[] = [];
  private readonly foreignOwned: string[] = [];
  /** ApplySessionsReport.unreadableReasons, as counted (walkSource). */
  private readonly unreadableReasons = new Map<string, number>();
  private handled = 0;
  private readonly filesSource: SessionSource | undefined;
  private readonly pool: PreparePool | undefined;
  /** Without workers, this thread reuses its own pack buffers the same way. */
  private readonly inlineBuffers = new PackBuffers();
  /** Batches being written; at most maxInFlight, so memory stays flat whatever the number of sessions. */
  private readonly inFlight: Promise<void>[] = [];
  private readonly maxInFlight: number;
  /** The source's error when it failed while read (run(); applySessions asks whether to start again). */
  sourceError: UserFacingError | undefined;

  /** Sets up the run's state and, with workers, the pool that prepares batches. */
  constructor(private readonly options: ApplySessionsOptions) {
    const { plan, dryRun } = options;
    this.plan = plan;
    this.codec = options.codec;
    this.dryRun = dryRun;
    this.client = options.target;
    this.confirm = options.confirm ?? { minReplicas: new Map(), waitTimeoutMs: 1000 };
    this.waitWanted = [...this.confirm.minReplicas.values()].some((n) => n > 0);
    this.ledger = new PresenceLedger(plan.target.prefix);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.gone = new RedisGone(options.target?.topology);
    this.ctx = {
      prefix: plan.target.prefix,
      gcMaxlifetime: plan.php.gcMaxlifetime,
      serializeHandler: plan.php.serializeHandler,
      nowSeconds: options.nowSeconds ?? Date.now() / 1000,
      maxSessionBytes: options.source.maxSessionBytes,
      ...(options.source.phpUids !== undefined ? { phpUids: options.source.phpUids } : {}),
      dryRun,
    };
    const workers = options.workers ?? 0;
    this.filesSource = 'candidates' in options.source ? options.source : undefined;
    this.pool =
      workers > 0 && options.masterKeys !== undefined && this.filesSource !== undefined
        ? new PreparePool(workers, options.masterKeys, this.ctx, options.lookupKey)
        : undefined;
    this.maxInFlight = Math.max(2, workers * 2);
  }

  /**
   * Walks the source writing every batch, reads back what was written, and reports. A source that
   * fails while read (a UserFacingError from its walk, not from a write) ends the walk: the batches in
   * flight are finished and read back as usual, and the report says so (sourceFailures).
   */
  async run(): Promise<ApplySessionsReport> {
    let sourceFailed: string | undefined;
    try {
      try {
        if (this.filesSource !== undefined) await this.walkFiles(this.filesSource);
        else await this.walkSource(this.options.source as Source);
      } catch (err) {
        if (!(err instanceof SourceReadFailed)) throw err;
        sourceFailed = err.error.message;
        this.sourceError = err.error;
      }
      await Promise.all(this.inFlight);
    } catch (err) {
      this.ledger.close();
      throw err;
    } finally {
      await this.pool?.close();
    }
    const missing: string[] = [];
    try {
      const client = this.client;
      if (!this.dryRun && client !== undefined && this.waitWanted && this.counts.alreadyPresent > 0) await this.confirmPresent(client);
      if (!this.dryRun && client !== undefined && this.confirm.readBack !== false && this.ledger.size > 0)
        await readBack(
          client,
          this.plan.target.prefix,
          this.ledger,
          this.counts,
          missing,
          this.retry,
          this.gone,
          this.confirm.masterWaitMs,
        );
    } finally {
      this.ledger.close();
    }
    return {
      dryRun: this.dryRun,
      counts: this.counts,
      conflicts: this.conflicts,
      failures: this.failures,
      failureGroups: this.failureGroups,
      unstable: this.unstable,
      foreignOwned: this.foreignOwned,
      aborted: this.gone.writesStopped,
      ...(this.stopped !== undefined ? { stopped: this.stopped } : {}),
      ...(sourceFailed !== undefined ? { sourceFailures: [{ message: sourceFailed, written: this.counts.migrated }] } : {}),
      ...(this.unreadableReasons.size > 0 ? { unreadableReasons: Object.fromEntries(this.unreadableReasons) } : {}),
      missing,
      replicaShortfalls: this.replicaShortfalls,
    };
  }

  /** Sends a files source's candidates in batches of BATCH_SIZE, counting the entries it skipped. */
  private async walkFiles(filesSource: SessionSource): Promise<void> {
    let chunk: SessionCandidate[] = [];
    const send = async (): Promise<void> => {
      const candidates = chunk;
      chunk = [];
      await this.dispatch(this.prepare(candidates), (i) => candidates[i]?.location ?? '?');
    };
    for (const c of readingSource(filesSource.candidates())) {
      if (c.kind === 'skipped') {
        this.counts.skipped[c.reason] = (this.counts.skipped[c.reason] ?? 0) + 1;
        continue;
      }
      chunk.push(c);
      if (chunk.length >= BATCH_SIZE) await send();
    }
    if (chunk.length > 0) await send();
  }

  /** Sends any other source's sessions batch by batch, prepared on this thread. */
  private async walkSource(source: Source): Promise<void> {
    for await (const items of readingSourceAsync(source.sessions({ batchSize: BATCH_SIZE }))) {
      for (const i of items) {
        if (i.kind === 'session' && i.noTtl === true) this.counts.noTtl++;
        else if (i.kind === 'skipped' && i.reason === 'unreadable') {
          const why = i.detail ?? 'unknown';
          this.unreadableReasons.set(why, (this.unreadableReasons.get(why) ?? 0) + 1);
        }
      }
      await this.dispatch(
        Promise.resolve(prepareSessions(items, this.codec, this.ctx, this.inlineBuffers.allocate)),
        (i) => items[i]?.location ?? '?',
      );
    }
  }

  /** Prepares candidates on the pool when there is one, else on this thread. */
  private prepare(candidates: SessionCandidate[]): Promise<PreparedBatch> {
    return this.pool !== undefined
      ? this.pool.prepare(candidates)
      : Promise.resolve(prepareBatch(candidates, this.codec, this.ctx, this.inlineBuffers.allocate));
  }

  /** Hands a written batch's buffers back for reuse (see writeWithRetry for when that is safe). */
  private recycle(batch: PreparedBatch): void {
    if (this.pool !== undefined) this.pool.recycle(batch);
    else this.inlineBuffers.give(batch.packs.map((p) => p.bytes.buffer as ArrayBuffer));
  }

  /** Writes a batch once prepared, waiting for the oldest batch in flight when maxInFlight are. */
  private async dispatch(next: Promise<PreparedBatch>, locationOf: (index: number) => string): Promise<void> {
    const pending = next.then(async (batch) => {
      // The batch's buffers go back to the worker that filled them, once nothing can send them again.
      if (await this.write(batch, locationOf)) this.recycle(batch);
    });
    pending.catch(() => undefined); // observed when awaited below; avoids an unhandled rejection meanwhile
    this.inFlight.push(pending);
    if (this.inFlight.length >= this.maxInFlight) await this.inFlight.shift();
  }

  /** Counts a batch and writes it; returns true when its buffers may be reused (see writeWithRetry). */
  private async write(batch: PreparedBatch, locationOf: (index: number) => string): Promise<boolean> {
    const counts = this.counts;
    counts.expired += batch.expired;
    counts.empty += batch.empty;
    counts.corrupt += batch.corrupt;
    counts.unstable += batch.unstable.length;
    for (const u of batch.unstable) if (this.unstable.length < MAX_LISTED) this.unstable.push(u);
    for (const u of batch.foreign) if (this.foreignOwned.length < MAX_LISTED) this.foreignOwned.push(u);
    for (const [reason, n] of Object.entries(batch.skipped)) counts.skipped[reason] = (counts.skipped[reason] ?? 0) + n;
    const items = new PreparedSessions(batch.packs, locationOf);
    let reusable = true;
    if (this.dryRun && this.client === undefined) {
      counts.migrated += items.length;
      for (let i = 0; i < items.length; i++) counts.migratedBytes += items.plaintextLength(i);
    } else if (items.length > 0) {
      reusable = await this.writeWithRetry(items);
    }
    this.handled += items.length + batch.expired + batch.empty + batch.corrupt;
    this.options.onProgress?.(this.handled);
    return reusable;
  }

  /**
   * Writes the sessions of a batch, retrying the failed ones with backoff; gives up (aborted) when the
   * budget is spent, and at once on a permanent error (stopped). Then WAITs for replicas when asked.
   * @returns true when every write got its answer from Redis (no failure): then no command can be
   *   sent again later (ioredis re-sends unanswered ones after a reconnect), and the batch's buffers
   *   may be reused.
   */
  private async writeWithRetry(items: PreparedSessions): Promise<boolean> {
    // A retry is announced once for the run, not once per batch in flight (at least 2 are: a Redis
    // restart printed each "retry N of M" line once per batch).
    const retrying = { now: false };
    try {
      return await this.writeAttempts(items, retrying);
    } finally {
      if (retrying.now) this.retryingBatches--;
    }
  }

  /**
   * writeWithRetry's attempts: sends the pending sessions, records each answer (sortOutcomes), and
   * retries the failed ones with exponential backoff (baseDelayMs * 2^attempt, at most maxDelayMs)
   * until none fail or shouldRetry says stop; then WAITs for replicas when asked.
   * @param retrying the batch's state for announceRetry.
   * @returns true when every write got its answer from Redis (see writeWithRetry).
   */
  private async writeAttempts(items: PreparedSessions, retrying: { now: boolean }): Promise<boolean> {
    const client = this.client;
    if (client === undefined) throw new Error('no Redis client');
    const retry = this.retry;
    let pending = Array.from({ length: items.length }, (_, i) => i);
    let written = 0;
    let answered = true;
    // WAIT speaks only for writes on the same connection: note it before writing.
    const generation = this.waitWanted && !this.dryRun ? await client.generation() : undefined;
    // In a cluster, the sessions written per master (the slot map's at the write), so a master whose
    // replicas fall short leaves only its own sessions unconfirmed.
    const writtenByMaster = this.waitWanted && !this.dryRun && client.topology === 'cluster' ? new Map<string, number>() : undefined;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (this.gone.writesStopped) {
        this.counts.notDone += pending.length;
        return answered;
      }
      const sentOn = await client.generationBefore();
      const tally = this.sortOutcomes(client, items, pending, await this.send(client, items, pending, attempt), writtenByMaster);
      written += tally.written;
      if (tally.again.length > 0) answered = false;
      // An error reply to a send that ioredis made again after the connection closed says nothing of
      // the first send, which may have written (RedisConnection.closedSince).
      if (tally.permanent !== undefined && (await client.closedSince(sentOn))) tally.sentAgain = true;
      if (!this.shouldRetry(items, tally, attempt)) break;
      this.counts.retries++;
      this.announceRetry(retrying, attempt + 1, tally.lastError);
      await sleep(Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt));
      pending = tally.again;
    }
    if (this.waitWanted && written > 0 && !this.dryRun) await this.waitForReplicas(client, written, generation, writtenByMaster);
    return answered;
  }

  /**
   * One attempt's answers, in `pending` order: a failed session goes to `again` (the last error
   * kept, the first permanent one noted); any other answer is recorded (record), and a `written` one
   * counted, per master too when `writtenByMaster` is given. One tally per attempt; nothing is
   * allocated per session beyond `again`'s entries.
   */
  private sortOutcomes(
    client: RedisConnection,
    items: PreparedSessions,
    pending: readonly number[],
    outcomes: readonly GuardedWriteOutcome[],
    writtenByMaster: Map<string, number> | undefined,
  ): AttemptTally {
    const tally: AttemptTally = { again: [], lastError: '', permanent: undefined, written: 0 };
    for (let idx = 0; idx < outcomes.length; idx++) {
      let o = outcomes[idx]!;
      const i = pending[idx]!;
      // The key holds the very envelope this run sealed for the session (its nonce drawn at random
      // for this run: no other writer has these bytes): this run's own write, whose reply was lost
      // and which was sent again, by ioredis after a reconnect (autoResendUnfulfilledCommands; a
      // SENTINEL FAILOVER's +switch-master reconnects) or by a retry of the batch. It is counted
      // written (the batch's WAIT, seeing the connection changed, asks the same server's replicas'
      // offsets instead, or counts the batch unconfirmed after a failover: RedisConnection.waitForReplicas),
      // and a re-run still counts it already present (a new seal, a new nonce).
      // test/stopped-part-way.test.ts "apply whose write ran but whose reply was lost".
      if (o.status === 'exists' && !this.dryRun && o.existing.equals(items.value(i))) o = WRITTEN_AGAIN;
      if (o.status === 'failed') {
        if (o.classified.kind === 'permanent') tally.permanent ??= o.classified;
        tally.again.push(i);
        tally.lastError = o.error;
        continue;
      }
      if (o.status === 'written') {
        tally.written++;
        if (writtenByMaster !== undefined) {
          const m = client.masterNameOfKey(items.key(i)) ?? '?';
          writtenByMaster.set(m, (writtenByMaster.get(m) ?? 0) + 1);
        }
      }
      this.record(items, i, o);
    }
    return tally;
  }

  /**
   * Whether the failed sessions of an attempt are sent again. Not when none failed; not after a
   * permanent error (the run stops: `stopped`, RedisGone 'stopped', the failed ones counted not
   * done, or failed when the error is a connection Redis closed under them or answered a second
   * send: they may have run, lostReplyFailure); not when the retry budget is spent (each failed one recorded as failed, by
   * key name, with the last error, and RedisGone 'writes' stops the rest of the run).
   */
  private shouldRetry(items: PreparedSessions, tally: AttemptTally, attempt: number): boolean {
    if (tally.permanent !== undefined) {
      // Retrying cannot help: stop the run, say what to fix.
      this.stopped ??= tally.permanent;
      this.gone.markGone('stopped');
      // An answer of Redis refused the writes: not written. A connection Redis closed under them at
      // every re-send (CLOSED_UNDER_COMMANDS) lost their replies: they may have run, so failed (by key);
      // so may an answer to a second send, after the connection closed under the first (sentAgain:
      // before, exit 2 "nothing was written" with the sessions in Redis; test/stopped-part-way.test.ts
      // "the write sent again gets an error reply").
      if (isConnectionLost(tally.permanent) || tally.sentAgain === true) {
        const error = lostReplyFailure(tally.lastError);
        for (const i of tally.again) this.record(items, i, { status: 'failed', error });
      } else this.counts.notDone += tally.again.length;
      return false;
    }
    if (tally.again.length === 0) return false;
    if (attempt >= this.retry.attempts) {
      // Budget spent: these are reported as failed (by key name) and the rest of the run stops.
      const error = `${tally.lastError} (after ${this.retry.attempts} retries)`;
      for (const i of tally.again) this.record(items, i, { status: 'failed', error });
      this.gone.markGone('writes');
      return false;
    }
    return true;
  }

  /**
   * Calls onRetry for retry `retry` of a batch unless another batch retrying at the same time has
   * announced it already: batches in flight meet the same Redis failure, and the operator wants one
   * line per retry of the run. The count starts again once no batch is retrying.
   * @param batch the batch's state: `now` is set on its first retry (writeWithRetry counts the batch out at its end).
   */
  private announceRetry(batch: { now: boolean }, retry: number, error: string): void {
    if (!batch.now) {
      batch.now = true;
      if (this.retryingBatches++ === 0) this.announcedRetry = 0;
    }
    if (retry <= this.announcedRetry) return;
    this.announcedRetry = retry;
    this.options.onRetry?.(retry, error);
  }

  /** One attempt at writing the `pending` sessions of a batch: their outcomes, in the same order. */
  private async send(client: RedisConnection, items: PreparedSessions, pending: number[], attempt: number): Promise<GuardedWriteOutcome[]> {
    // A dry run asks what the guarded write would decide, reading only.
    if (this.dryRun)
      return lookupGuardedWrite(
        client,
        this.plan.target.prefix,
        pending.map((i) => ({ key: items.key(i), tombstone: items.tombstone(i) })),
      );
    if (attempt === 0 && client.topology !== 'cluster') {
      // First attempt on one node: the calls the workers encoded, sent as they are (their sessions
      // are all of the batch, in order, as `pending` is now).
      const calls = items.calls();
      return writeEncodedGuarded(
        client,
        calls.map((c) => c.command),
        calls.map((c) => c.count),
      );
    }
    return writeBatchGuarded(
      client,
      this.plan.target.prefix,
      pending.map((i) => ({ key: items.key(i), tombstone: items.tombstone(i), value: items.value(i), ttlMs: items.ttlMs(i) })),
    );
  }

  /**
   * WAITs for replicas after a batch wrote `written` sessions; counts unconfirmed those of the masters
   * too few replicas acknowledged (`writtenByMaster`, in a cluster), or all of them when they cannot be
   * attributed (one master, a reconnection, an error, a session whose master was not known).
   */
  private async waitForReplicas(
    client: RedisConnection,
    written: number,
    generation: string | undefined,
    writtenByMaster?: ReadonlyMap<string, number>,
  ): Promise<void> {
    let short: Awaited<ReturnType<RedisConnection['waitForReplicas']>>;
    try {
      short = await client.waitForReplicas(this.confirm.minReplicas, this.confirm.waitTimeoutMs, generation);
    } catch (err) {
      const c = client.classify(err);
      if (c.kind === 'permanent') {
        this.stopped ??= c;
        this.gone.markGone('stopped');
      }
      short = [{ node: '?', wanted: 1, acked: 0 }];
    }
    if (short.length > 0) {
      // Awaited first, then added: `x += await y` reads x before the await, and another batch's WAIT
      // may add to it meanwhile (two batches in flight), whose count would then be lost.
      const unconfirmed = (await this.unconfirmedOf(client, short, writtenByMaster)) ?? written;
      this.counts.unconfirmed += unconfirmed;
      for (const s of short) addShortfall(this.replicaShortfalls, s);
    }
  }

  /**
   * The sessions of a batch that masters short of replicas leave unconfirmed, by the master each was
   * written to; undefined when they cannot be attributed (one master, a reconnection or an error, a
   * session whose master was not known, a master written to that is no longer one: a failover).
   */
  private async unconfirmedOf(
    client: RedisConnection,
    short: ReadonlyArray<{ node: string }>,
    writtenByMaster: ReadonlyMap<string, number> | undefined,
  ): Promise<number | undefined> {
    if (writtenByMaster === undefined || writtenByMaster.has('?') || short.some((s) => s.node === '?' || s.node === '(reconnected)'))
      return undefined;
    let now: Set<string>;
    try {
      now = new Set((await client.masters()).map((m) => client.nodeName(m)));
    } catch {
      return undefined;
    }
    if (![...writtenByMaster.keys()].every((m) => now.has(m))) return undefined;
    return short.reduce((n, s) => n + (writtenByMaster.get(s.node) ?? 0), 0);
  }

  /**
   * Confirms the sessions found already present (this run did not write them, so no WAIT of its own
   * speaks for them): each master's replicas must reach its `master_repl_offset` within the WAIT
   * timeout (RedisConnection.replicasCaughtUp). The present sessions of a master whose replicas stay
   * behind are counted `unconfirmed`, with the shortfall; all present sessions when they cannot be
   * attributed (one master, a slot map that changed since, or an error).
   */
  private async confirmPresent(client: RedisConnection): Promise<void> {
    const total = this.counts.alreadyPresent;
    let short: ApplySessionsReport['replicaShortfalls'];
    let attributable = false;
    try {
      // Behind Sentinel: check the master the sentinels report now (else its replica answers role:slave: short).
      // None reachable as master within the wait: every present session is unconfirmed (one master).
      const noMaster = await client.followSentinelMaster(this.confirm.masterWaitMs).then(
        () => false,
        () => true,
      );
      if (noMaster) this.gone.markGone('no master');
      short = noMaster
        ? [{ node: '?', wanted: 1, acked: 0 }]
        : await client.replicasCaughtUp(this.confirm.minReplicas, this.confirm.waitTimeoutMs);
      if (client.topology === 'cluster') {
        const now = new Set((await client.masters()).map((m) => client.nodeName(m)));
        attributable = [...this.presentByMaster.keys()].every((n) => now.has(n));
      }
    } catch (err) {
      const c = client.classify(err);
      if (c.kind === 'permanent') this.stopped ??= c;
      short = [{ node: '?', wanted: 1, acked: 0 }];
    }
    const found = (node: string): number => (attributable ? (this.presentByMaster.get(node) ?? 0) : total);
    const counted = short.filter((s) => found(s.node) > 0);
    if (counted.length === 0) return;
    this.counts.unconfirmed += attributable ? counted.reduce((a, s) => a + found(s.node), 0) : total;
    for (const s of counted) addShortfall(this.replicaShortfalls, s);
  }

  /** Counts the outcome of one session's write, noting it for the read-back or listing its problem. */
  private record(items: PreparedSessions, i: number, o: GuardedWriteOutcomeLike): void {
    const counts = this.counts;
    switch (o.status) {
      case 'written': {
        counts.migrated++;
        counts.migratedBytes += items.plaintextLength(i);
        if (this.dryRun) break; // nothing written, nothing to read back
        const [bytes, at] = items.keyAt(i);
        this.ledger.addFrom(bytes, at, items.ttlMs(i)); // written by this run
        break;
      }
      case 'destroyed':
        counts.destroyed++;
        break;
      case 'exists':
        this.recordExisting(items, i, o);
        break;
      case 'wrong-type':
        counts.conflicts++;
        if (this.conflicts.length < MAX_LISTED) this.conflicts.push(this.problem(items, i, 'key holds another Redis type'));
        break;
      case 'failed':
        counts.failed++;
        if (this.failures.length < MAX_LISTED) this.failures.push(this.problem(items, i, o.error));
        addFailure(this.failureGroups, o.error, [items.keyName(i)]);
        break;
    }
  }

  /** Counts a session whose key already exists: the same session, a newer one, or a conflict. */
  private recordExisting(items: PreparedSessions, i: number, o: { existing: Buffer; pttlMs: number }): void {
    const counts = this.counts;
    const ttlMs = items.ttlMs(i);
    const opened = this.codec.open(items.key(i), o.existing);
    if (opened.ok && opened.plaintext.equals(items.plaintext(i))) {
      counts.alreadyPresent++;
      if (this.dryRun) return;
      this.ledger.add(items.key(i), Math.min(ttlMs, o.pttlMs > 0 ? o.pttlMs : ttlMs));
      if (this.waitWanted && this.client?.topology === 'cluster') {
        const m = this.client.masterNameOfKey(items.key(i)) ?? '?';
        this.presentByMaster.set(m, (this.presentByMaster.get(m) ?? 0) + 1);
      }
    } else if (opened.ok && isTtlAboveGcMaxlifetime(o.pttlMs, this.ctx.gcMaxlifetime)) {
      // Written under a larger session.gc_maxlifetime than the plan's: its write time cannot be told
      // from the source's (an older copy would pass for newer), so it is a conflict, not newerInRedis.
      counts.conflicts++;
      if (this.conflicts.length < MAX_LISTED)
        this.conflicts.push(
          this.problem(
            items,
            i,
            `key holds a different session and ${ttlAboveGcMaxlifetimeMessage('it', o.pttlMs, this.ctx.gcMaxlifetime, "make the plan again with PHP's session.gc_maxlifetime (plan --gc-maxlifetime) and re-run apply")}`,
          ),
        );
    } else if (opened.ok && isNewerInRedis(o.pttlMs, ttlMs)) counts.newerInRedis++;
    else {
      counts.conflicts++;
      if (this.conflicts.length < MAX_LISTED) {
        this.conflicts.push(
          this.problem(
            items,
            i,
            opened.ok
              ? this.filesSource === undefined && (this.options.source as Source).kind === 'redis'
                ? 'key holds a different session that is not newer than the source (was the source key changed by a host still on the phpredis handler?)'
                : 'key holds a different session that is not newer than the source (was the file changed by a host still on the files handler?)'
              : `key holds a value that does not open (${opened.reason})`,
          ),
        );
      }
    }
  }

  /** A listed problem for session `i`: its key name and its file, with the session ID shortened. */
  private problem(items: PreparedSessions, i: number, reason: string): KeyProblem {
    return { key: items.keyName(i), file: redactSessionPath(items.file(i)), reason };
  }
}

/**
 * "Redis is gone": the one state apply's write phase, its end check and its read-back share about a
 * target that stopped answering, so none of them spends again what another has just spent.
 *
 * It is set when the write phase spends its retry budget (`writes`) or meets a permanent error
 * (`stopped`: Redis answers, but the run is not ok whatever follows), when the end check waits for
 * the master the sentinels report and none is reachable as master (`no master`; cleared when the
 * read-back finds one again), and when a read on one server (or Sentinel's master) finds the
 * connection lost with no retries left, or still no Sentinel master (`no answer`).
 * Once set:
 * - the write phase stops: the sessions it had left are counted notDone (`aborted`);
 * - nothing retries (retryPolicy): the run is not ok whatever the read-back finds, and each attempt
 *   against a dead server waits for ioredis's reconnects (with Redis dead for good the read-back's
 *   retries added about a minute at 100k sessions after the write phase gave up);
 * - the read-back does not wait for a Sentinel master again after the end check waited for one
 *   (sentinelWaitMs), and when there is still none, it asks no more;
 * - `no answer`: the read-back asks no more (askable), every session left is counted unverified (it
 *   asked group after group before, each attempt waiting for ioredis's reconnects: about 5 minutes
 *   for 17,000 sessions written, when one answer already said the server was gone).
 * In a cluster a lost connection speaks for one node only: the others are still asked, once each
 * after the write phase gave up, with retries otherwise.
 */
export class RedisGone {
  /** Why, by cause: several may hold (the write phase gave up, then the end check found no master). */
  private readonly causes = new Set<'writes' | 'stopped' | 'no master' | 'no answer'>();

  /** @param topology the target's (a cluster's nodes fail one by one; one server fails whole). */
  constructor(private readonly topology: Topology | undefined) {}

  /** Whether Redis is gone (any cause). */
  get isGone(): boolean {
    return this.causes.size > 0;
  }

  /**
   * The write phase spent its retry budget (`writes`) or met a permanent error (`stopped`: Redis
   * answers, but the run is not ok whatever follows, so nothing is retried either), or the end check
   * found no Sentinel master (`no master`).
   */
  markGone(why: 'writes' | 'stopped' | 'no master'): void {
    this.causes.add(why);
  }

  /** Whether the write phase stopped (`writes`, `stopped`): what it has left is notDone (the report's `aborted`). */
  get writesStopped(): boolean {
    return this.causes.has('writes') || this.causes.has('stopped');
  }

  /**
   * A read found the connection lost and had no retries left: on one server (or Sentinel's master)
   * Redis is gone and the read-back asks no more; in a cluster, only that node's sessions are lost.
   */
  connectionLost(): void {
    if (this.topology !== 'cluster') this.causes.add('no answer');
  }

  /**
   * The read-back's look for a Sentinel master: one reachable again (`found`) is read as usual; still
   * none after the end check's wait: nothing to read from, ask no more.
   */
  sentinelMasterLooked(found: boolean): void {
    if (!this.causes.has('no master')) return;
    if (found) this.causes.delete('no master');
    else this.causes.add('no answer');
  }

  /** Whether to ask Redis at all. */
  get askable(): boolean {
    return !this.causes.has('no answer');
  }

  /** How long the read-back waits for a Sentinel master: not again (0) after the end check found none. */
  get sentinelWaitMs(): number | undefined {
    return this.causes.has('no master') ? 0 : undefined;
  }

  /** The backoff to use now: `policy`, or no retry at all once Redis is gone. */
  retryPolicy(policy: RetryPolicy): RetryPolicy {
    return this.isGone ? { ...policy, attempts: 0 } : policy;
  }
}

/**
 * Reads back the presence of every session in the ledger (EXISTS of the key and its tombstone,
 * grouped by slot). Behind Sentinel it first makes sure the connection is on the master the sentinels
 * report now, so a write lost in a failover is seen as missing (waiting up to `masterWaitMs`,
 * ConfirmOptions; not again after the end check found none). Sessions whose TTL ran out since are
 * not counted; transient errors are retried with the same backoff until Redis is gone (RedisGone,
 * shared with the write phase and the end check, says when to stop asking or retrying). Nothing is
 * counted present that was not read. Each session not found, or not read, is also counted against
 * `migrated` when this run wrote it (migratedMissing, migratedUnverified).
 */
async function readBack(
  client: RedisConnection,
  prefix: string,
  ledger: PresenceLedger,
  counts: SessionCounts,
  missing: string[],
  retry: RetryPolicy,
  gone: RedisGone,
  masterWaitMs: number | undefined,
): Promise<void> {
  // The read-back below then fails or finds what this master has; either way nothing is hidden.
  // Still no master after the end check's wait: nothing to read from; nothing is proven present.
  gone.sentinelMasterLooked(
    await client.followSentinelMaster(gone.sentinelWaitMs ?? masterWaitMs).then(
      () => true,
      () => false,
    ),
  );
  const unverified = (e: LedgerEntry): void => {
    counts.unverified++;
    if (e.written) counts.migratedUnverified++;
  };
  for (const chunk of ledger.chunks(BATCH_SIZE)) {
    if (!gone.askable) {
      const now = Date.now();
      for (const e of chunk) if (e.deadlineMs - 1000 > now) unverified(e);
      continue;
    }
    const policy = gone.retryPolicy(retry);
    let pending = chunk;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const presence = await readBackPresence(
        client,
        prefix,
        pending.map((e) => e.key),
      );
      const again: typeof pending = [];
      const now = Date.now();
      presence.forEach((p, i) => {
        const e = pending[i]!;
        if (p === 'present' || p === 'destroyed') return;
        if (e.deadlineMs - 1000 <= now) return; // expired meanwhile, as it should
        if (p === 'missing') {
          counts.missingAfterWrite++;
          if (e.written) counts.migratedMissing++;
          if (missing.length < MAX_LISTED) missing.push(e.key);
          return;
        }
        if (p.error.kind === 'transient' && attempt < policy.attempts) again.push(e);
        else {
          unverified(e);
          if (isConnectionLost(p.error)) gone.connectionLost();
        }
      });
      if (again.length > 0) await sleep(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
      pending = again;
    }
  }
}

/** A session of the ledger: its key name, the time its TTL ends (ms since the epoch), whether this run wrote it. */
export interface LedgerEntry {
  key: string;
  deadlineMs: number;
  written: boolean;
}

/**
 * Sessions apply wrote or found present, kept compactly for the read-back: the 32 digest bytes of
 * each key name (layout 2: `<prefix>{<64 hex>}`) and the time its TTL ends (ms since the epoch),
 * 40 bytes a session. Entries are kept in blocks of BLOCK; full blocks go to a temporary file that
 * is unlinked as soon as it is open (nothing stays on disk, even after a crash), so memory stays flat
 * however many sessions a run copies. Where no temporary file can be written, blocks stay in memory.
 * Key names are not secret (keyed hashes, printed in reports); the file is mode 0600 all the same.
 */
export class PresenceLedger {
  /** Entries per block (640 KiB). */
  static readonly BLOCK = 16384;
  private digests = Buffer.alloc(32 * PresenceLedger.BLOCK);
  private deadlines = new Float64Array(PresenceLedger.BLOCK);
  private inBlock = 0;
  /** Full blocks: in the file (by position) or, without one, in memory. */
  private readonly blocks: Array<{ at: number } | { digests: Buffer; deadlines: Float64Array }> = [];
  private fd: number | undefined;
  private noFile = false;
  private fileBytes = 0;
  private readonly prefixBytes: number;

  constructor(private readonly prefix: string) {
    this.prefixBytes = Buffer.byteLength(prefix, 'utf8');
  }

  get size(): number {
    return this.blocks.length * PresenceLedger.BLOCK + this.inBlock;
  }

  /** add() of the key name at `offset` in `bytes` (no view or string made) of a session this run wrote. */
  addFrom(bytes: Buffer, offset: number, ttlMs: number): void {
    const hex = offset + this.prefixBytes + 1;
    const out = this.digests;
    const at = this.inBlock * 32;
    for (let k = 0; k < 32; k++) out[at + k] = (HEX_VALUE[bytes[hex + 2 * k]!]! << 4) | HEX_VALUE[bytes[hex + 2 * k + 1]!]!;
    this.deadlines[this.inBlock] = Date.now() + ttlMs;
    if (++this.inBlock === PresenceLedger.BLOCK) this.spill();
  }

  /**
   * Adds a session key `<prefix>{<64 hex>}` (text or bytes) whose TTL is `ttlMs` from now.
   * @param written true: this run wrote it (migrated); false (default): found present.
   */
  add(key: string | Buffer, ttlMs: number, written = false): void {
    const hex =
      typeof key === 'string'
        ? key.slice(this.prefix.length + 1, this.prefix.length + 65)
        : key.toString('latin1', this.prefixBytes + 1, this.prefixBytes + 65);
    this.digests.write(hex, this.inBlock * 32, 32, 'hex');
    // Found present: the deadline is kept negative (deadlines are positive ms since the epoch).
    this.deadlines[this.inBlock] = written ? Date.now() + ttlMs : -(Date.now() + ttlMs);
    if (++this.inBlock === PresenceLedger.BLOCK) this.spill();
  }

  private spill(): void {
    const digests = this.digests;
    const deadlines = this.deadlines;
    if (!this.noFile) {
      try {
        this.fd ??= openUnlinkedTempFile();
        const at = this.fileBytes;
        writeFully(this.fd, digests, at);
        writeFully(this.fd, Buffer.from(deadlines.buffer, deadlines.byteOffset, deadlines.byteLength), at + digests.length);
        this.fileBytes += digests.length + deadlines.byteLength;
        this.blocks.push({ at });
        this.inBlock = 0;
        return;
      } catch {
        // No temporary file (read-only /tmp, disk full): from now on blocks stay in memory.
        this.noFile = true;
      }
    }
    this.blocks.push({ digests, deadlines });
    this.digests = Buffer.alloc(32 * PresenceLedger.BLOCK);
    this.deadlines = new Float64Array(PresenceLedger.BLOCK);
    this.inBlock = 0;
  }

  /** The entries in chunks of at most `size`, in the order added: key name, TTL deadline, whether this run wrote it. */
  *chunks(size: number): Generator<LedgerEntry[]> {
    const B = PresenceLedger.BLOCK;
    const digests = Buffer.alloc(32 * B);
    const deadlines = new Float64Array(B);
    for (const block of this.blocks) {
      if ('at' in block) {
        readFully(this.fd!, digests, block.at);
        readFully(this.fd!, Buffer.from(deadlines.buffer), block.at + digests.length);
        yield* this.chunksOf({ digests, deadlines, n: B }, size);
      } else yield* this.chunksOf({ ...block, n: B }, size);
    }
    yield* this.chunksOf({ digests: this.digests, deadlines: this.deadlines, n: this.inBlock }, size);
  }

  private *chunksOf(block: { digests: Buffer; deadlines: Float64Array; n: number }, size: number): Generator<LedgerEntry[]> {
    for (let start = 0; start < block.n; start += size) {
      const out: LedgerEntry[] = [];
      for (let i = start; i < Math.min(block.n, start + size); i++) {
        const d = block.deadlines[i]!;
        out.push({ key: `${this.prefix}{${block.digests.toString('hex', i * 32, i * 32 + 32)}}`, deadlineMs: Math.abs(d), written: d > 0 });
      }
      yield out;
    }
  }

  /** Closes the temporary file (it is already unlinked). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Value of a lowercase hex digit by its character code. */
const HEX_VALUE = (() => {
  const t = new Uint8Array(256);
  for (let d = 0; d < 16; d++) t['0123456789abcdef'.charCodeAt(d)] = d;
  return t;
})();

/** A new file in a private temporary directory, open for reading and writing, already unlinked (and its directory removed). */
function openUnlinkedTempFile(): number {
  const dir = mkdtempSync(join(tmpdir(), 'sm-ledger-'));
  try {
    const path = join(dir, 'ledger');
    const fd = openSync(path, 'wx+', 0o600);
    unlinkSync(path);
    return fd;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeFully(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done, position + done);
}

function readFully(fd: number, into: Buffer, position: number): void {
  for (let done = 0; done < into.length;) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error('the read-back ledger file is shorter than written');
    done += n;
  }
}

type GuardedWriteOutcomeLike =
  | { status: 'written' }
  | { status: 'destroyed' }
  | { status: 'wrong-type' }
  | { status: 'exists'; existing: Buffer; pttlMs: number }
  | { status: 'failed'; error: string };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

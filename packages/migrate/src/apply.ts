/**
 * `apply`: carry out a plan. Generates the PHP artifacts, then copies every live session into Redis
 * as an envelope with its remaining TTL, without ever overwriting a key that already exists.
 * Re-running is safe and changes nothing: keys already holding the same session are counted as
 * `alreadyPresent`, keys holding anything else are `conflicts`, reported and left alone.
 */
import type { Redis } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { UserFacingError, redactSessionPath } from '@session-migrate/common';
import type { SessionSource } from '@session-migrate/sources';
import type { SessionCandidate } from '@session-migrate/sources';
import { writeBatchNoClobber } from '@session-migrate/target';
import type { Plan } from './plan.ts';
import { prepareBatch, type PrepareContext, type PreparedBatch } from './prepare.ts';
import { PreparePool } from './prepare-pool.ts';

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
  sourceIdentity: { dev: number; ino: number } | undefined;
  serverRunId: string;
}

/** Compares a plan with the current state; an empty list means no drift. Pure. */
export function detectDrift(plan: Plan, now: CurrentState): Drift[] {
  const drift: Drift[] = [];
  // With a lookup ID (key ring plans), only the lookup key must match: the master key may have
  // rotated since the plan, and sessions still get the same names.
  const where = plan.key.file !== undefined && plan.key.file !== '' ? `key file ${plan.key.file}` : 'the key';
  if (plan.key.lookupId !== undefined) {
    if (now.lookupId !== plan.key.lookupId) {
      drift.push({ what: 'key', message: `${where} now has lookup ID ${now.lookupId ?? 'unknown'}, the plan was made for lookup ID ${plan.key.lookupId}` });
    }
  } else if (now.keyId !== plan.key.keyId) {
    drift.push({ what: 'key', message: `${where} now holds key ID ${now.keyId}, the plan was made for ${plan.key.keyId}` });
  }
  if (now.sourceIdentity === undefined) {
    drift.push({ what: 'source', message: `source directory ${plan.source.dir} no longer exists` });
  } else if (now.sourceIdentity.dev !== plan.source.dev || now.sourceIdentity.ino !== plan.source.ino) {
    drift.push({ what: 'source', message: `source directory ${plan.source.dir} was replaced since the plan (different inode)` });
  }
  if (now.serverRunId !== plan.target.serverRunId) {
    drift.push({ what: 'target', message: `Redis at ${plan.target.url} is not the server the plan was made against (restarted or replaced)` });
  }
  return drift;
}

export interface SessionCounts {
  /** Written now. */
  migrated: number;
  /** Already in Redis with the same session bytes (an earlier apply). */
  alreadyPresent: number;
  /** Key exists with other contents or another type: left alone and reported. */
  conflicts: number;
  /** A command failed: reported, and apply exits non-zero. */
  failed: number;
  expired: number;
  empty: number;
  corrupt: number;
  /** Entries skipped by the source, by reason. */
  skipped: Record<string, number>;
  migratedBytes: number;
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
}

export interface ApplySessionsOptions {
  plan: Plan;
  source: SessionSource;
  codec: EnvelopeCodec;
  /** Not used (may be undefined) in a dry run. */
  client: Redis | undefined;
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
}

/** Lists reported per kind of problem; counts are always complete. */
const MAX_LISTED = 100;

/**
 * Copies every live session of the source into Redis (or, with dryRun, only counts them).
 * @throws UserFacingError from the target when the connection is lost; everything written so far stays
 *   valid, and a re-run continues where it stopped.
 */
export async function applySessions(options: ApplySessionsOptions): Promise<ApplySessionsReport> {
  const { plan, codec, client, dryRun } = options;
  const ctx: PrepareContext = {
    prefix: plan.target.prefix,
    gcMaxlifetime: plan.php.gcMaxlifetime,
    serializeHandler: plan.php.serializeHandler,
    nowSeconds: options.nowSeconds ?? Date.now() / 1000,
    maxSessionBytes: options.source.maxSessionBytes,
    dryRun,
  };
  const counts: SessionCounts = { migrated: 0, alreadyPresent: 0, conflicts: 0, failed: 0, expired: 0, empty: 0, corrupt: 0, skipped: {}, migratedBytes: 0 };
  const conflicts: KeyProblem[] = [];
  const failures: KeyProblem[] = [];
  let handled = 0;

  const workers = options.workers ?? 0;
  const pool = workers > 0 && options.masterKeys !== undefined ? new PreparePool(workers, options.masterKeys, ctx, options.lookupKey) : undefined;
  const prepare = (candidates: SessionCandidate[]): Promise<PreparedBatch> =>
    pool !== undefined ? pool.prepare(candidates) : Promise.resolve(prepareBatch(candidates, codec, ctx));

  const write = async (batch: PreparedBatch): Promise<void> => {
    counts.expired += batch.expired;
    counts.empty += batch.empty;
    counts.corrupt += batch.corrupt;
    for (const [reason, n] of Object.entries(batch.skipped)) counts.skipped[reason] = (counts.skipped[reason] ?? 0) + n;
    const items = batch.sessions;
    if (dryRun || items.length === 0) {
      if (dryRun) {
        counts.migrated += items.length;
        for (const i of items) counts.migratedBytes += i.plaintext.length;
      }
      handled += items.length + batch.expired + batch.empty + batch.corrupt;
      options.onProgress?.(handled);
      return;
    }
    if (client === undefined) throw new Error('no Redis client');
    const outcomes = await writeBatchNoClobber(client, items.map((i) => ({ key: i.key, value: i.value, ttlSeconds: i.ttlSeconds })));
    const first = outcomes[0];
    if (first?.status === 'failed' && outcomes.every((o) => o.status === 'failed')) {
      throw new UserFacingError(`Redis at ${plan.target.url} failed every command of a batch (${first.error}); keys already written are complete and valid: re-run apply to continue (re-run plan first if Redis restarted)`);
    }
    outcomes.forEach((o, idx) => {
      const item = items[idx]!;
      const problem = (reason: string): KeyProblem => ({ key: item.key, file: redactSessionPath(item.file), reason });
      switch (o.status) {
        case 'written':
          counts.migrated++;
          counts.migratedBytes += item.plaintext.length;
          break;
        case 'exists': {
          const opened = codec.open(item.key, o.existing);
          if (opened.ok && opened.plaintext.equals(item.plaintext)) counts.alreadyPresent++;
          else {
            counts.conflicts++;
            if (conflicts.length < MAX_LISTED) conflicts.push(problem(opened.ok ? 'key holds a different session (newer write?)' : `key holds a value that does not open (${opened.reason})`));
          }
          break;
        }
        case 'wrong-type':
          counts.conflicts++;
          if (conflicts.length < MAX_LISTED) conflicts.push(problem('key holds another Redis type'));
          break;
        case 'failed':
          counts.failed++;
          if (failures.length < MAX_LISTED) failures.push(problem(o.error));
          break;
      }
    });
    handled += items.length + batch.expired + batch.empty + batch.corrupt;
    options.onProgress?.(handled);
  };

  // Batches are prepared (on workers when there are any) and written with a bounded number in flight,
  // so memory stays flat whatever the number of sessions.
  const maxInFlight = Math.max(2, workers * 2);
  const inFlight: Promise<void>[] = [];
  const dispatch = async (candidates: SessionCandidate[]): Promise<void> => {
    const pending = prepare(candidates).then(write);
    pending.catch(() => undefined); // observed when awaited below; avoids an unhandled rejection meanwhile
    inFlight.push(pending);
    if (inFlight.length >= maxInFlight) await inFlight.shift();
  };
  try {
    let chunk: SessionCandidate[] = [];
    for (const c of options.source.candidates()) {
      if (c.kind === 'skipped') {
        counts.skipped[c.reason] = (counts.skipped[c.reason] ?? 0) + 1;
        continue;
      }
      chunk.push(c);
      if (chunk.length >= BATCH_SIZE) {
        await dispatch(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) await dispatch(chunk);
    await Promise.all(inFlight);
  } finally {
    await pool?.close();
  }
  return { dryRun, counts, conflicts, failures };
}

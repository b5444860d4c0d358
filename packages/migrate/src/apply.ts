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
import { writeBatchNoClobber, type WriteRequest } from '@session-migrate/target';
import { decideSession, type Plan } from './plan.ts';

/** Sessions per pipeline. */
const BATCH_SIZE = 1000;
/** Pipelines in flight at once while the next batch is read and sealed. */
const MAX_IN_FLIGHT = 3;

/** A reason apply refuses to run because the world no longer matches the plan. */
export interface Drift {
  what: 'source' | 'target' | 'key';
  message: string;
}

/** What apply observed now, to compare with the plan. */
export interface CurrentState {
  keyId: string;
  sourceIdentity: { dev: number; ino: number } | undefined;
  serverRunId: string;
}

/** Compares a plan with the current state; an empty list means no drift. Pure. */
export function detectDrift(plan: Plan, now: CurrentState): Drift[] {
  const drift: Drift[] = [];
  if (now.keyId !== plan.key.keyId) {
    drift.push({ what: 'key', message: `key file ${plan.key.file} now holds key ID ${now.keyId}, the plan was made for ${plan.key.keyId}` });
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
  const now = options.nowSeconds ?? Date.now() / 1000;
  const counts: SessionCounts = { migrated: 0, alreadyPresent: 0, conflicts: 0, failed: 0, expired: 0, empty: 0, corrupt: 0, skipped: {}, migratedBytes: 0 };
  const conflicts: KeyProblem[] = [];
  const failures: KeyProblem[] = [];
  let handled = 0;

  type Pending = { request: WriteRequest; plaintext: Buffer; file: string };
  let batch: Pending[] = [];
  const inFlight: Promise<void>[] = [];

  const settle = async (items: Pending[]): Promise<void> => {
    if (client === undefined) throw new Error('no Redis client');
    const outcomes = await writeBatchNoClobber(client, items.map((i) => i.request));
    const first = outcomes[0];
    if (first?.status === 'failed' && outcomes.every((o) => o.status === 'failed')) {
      throw new UserFacingError(`Redis at ${plan.target.url} failed every command of a batch (${first.error}); keys already written are complete and valid: re-run apply to continue`);
    }
    outcomes.forEach((o, idx) => {
      const item = items[idx]!;
      const problem = (reason: string): KeyProblem => ({ key: item.request.key, file: redactSessionPath(item.file), reason });
      switch (o.status) {
        case 'written':
          counts.migrated++;
          counts.migratedBytes += item.plaintext.length;
          break;
        case 'exists': {
          const opened = codec.open(item.request.key, o.existing);
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
    handled += items.length;
    options.onProgress?.(handled);
  };

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const items = batch;
    batch = [];
    if (dryRun) {
      counts.migrated += items.length;
      for (const i of items) counts.migratedBytes += i.plaintext.length;
      handled += items.length;
      options.onProgress?.(handled);
      return;
    }
    const pending = settle(items);
    pending.catch(() => undefined); // observed when awaited below; avoids an unhandled rejection meanwhile
    inFlight.push(pending);
    if (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
  };

  for (const item of options.source.scan()) {
    if (item.kind === 'skipped') {
      counts.skipped[item.reason] = (counts.skipped[item.reason] ?? 0) + 1;
      continue;
    }
    const decision = decideSession(item.data, item.mtimeMs, plan.php.gcMaxlifetime, plan.php.serializeHandler, now);
    if (decision.action === 'expired') { counts.expired++; continue; }
    if (decision.action === 'empty') { counts.empty++; continue; }
    if (decision.action === 'corrupt') { counts.corrupt++; continue; }
    const key = codec.keyName(plan.target.prefix, item.id);
    const value = dryRun ? item.data : codec.seal(key, item.data);
    batch.push({ request: { key, value, ttlSeconds: decision.ttlSeconds }, plaintext: item.data, file: item.location });
    if (batch.length >= BATCH_SIZE) await flush();
  }
  await flush();
  await Promise.all(inFlight);
  return { dryRun, counts, conflicts, failures };
}

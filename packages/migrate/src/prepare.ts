/**
 * Turns session-file candidates into envelopes ready to write: read, decide (expired, empty, corrupt,
 * migrate), name the key, seal. Pure CPU and file reads, no Redis: it runs inline or in worker
 * threads (prepare-pool.ts) with the same code.
 */
import type { EnvelopeCodec } from '@session-migrate/envelope';
import type { SerializeHandler } from '@session-migrate/php-session';
import { readSessionFile, type SessionCandidate, type SourceItem } from '@session-migrate/sources';
import { redactSessionPath } from '@session-migrate/common';
import { decideSession, exactTtlMsOf, looksCompleteFor } from './plan.ts';

/** What preparing needs to know; plain data so it can be sent to a worker. */
export interface PrepareContext {
  prefix: string;
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  /** Seconds since the epoch that TTLs are measured against. */
  nowSeconds: number;
  maxSessionBytes: number;
  /** When true, nothing is sealed (the value is left empty). */
  dryRun: boolean;
}

/** One session ready for the guarded write (`SET key value PX ttlMs NX` unless a tombstone exists). */
export interface PreparedSession {
  key: string;
  value: Buffer;
  ttlSeconds: number;
  /** Remaining lifetime in milliseconds (files: whole seconds x 1000; Redis source: its PTTL). */
  ttlMs: number;
  /** The file's bytes, to compare with a value already in Redis. */
  plaintext: Buffer;
  /** The source file's path. */
  file: string;
}

export interface PreparedBatch {
  sessions: PreparedSession[];
  expired: number;
  empty: number;
  corrupt: number;
  /** Candidates that could not be read, by reason. */
  skipped: Record<string, number>;
  /** Files that kept changing while read (redacted paths): not copied, reported, apply exits 1. */
  unstable: string[];
}

/** Reads, classifies and seals a batch of candidates. Never throws for a bad file. */
export function prepareBatch(candidates: readonly SessionCandidate[], codec: EnvelopeCodec, ctx: PrepareContext): PreparedBatch {
  const looksComplete = looksCompleteFor(ctx.serializeHandler);
  return prepareSessions(candidates.map((c) => readSessionFile(c, ctx.maxSessionBytes, { looksComplete })), codec, ctx);
}

/** Classifies and seals sessions already read (any Source). Never throws for a bad session. */
export function prepareSessions(items: readonly SourceItem[], codec: EnvelopeCodec, ctx: PrepareContext): PreparedBatch {
  const batch: PreparedBatch = { sessions: [], expired: 0, empty: 0, corrupt: 0, skipped: {}, unstable: [] };
  for (const item of items) {
    if (item.kind === 'skipped') {
      batch.skipped[item.reason] = (batch.skipped[item.reason] ?? 0) + 1;
      if (item.reason === 'unstable') batch.unstable.push(redactSessionPath(item.location));
      continue;
    }
    const decision = decideSession(item.data, item.mtimeMs, ctx.gcMaxlifetime, ctx.serializeHandler, ctx.nowSeconds, exactTtlMsOf(item, ctx.gcMaxlifetime));
    if (decision.action === 'expired') batch.expired++;
    else if (decision.action === 'empty') batch.empty++;
    else if (decision.action === 'corrupt') batch.corrupt++;
    else {
      const key = codec.keyName(ctx.prefix, item.id);
      batch.sessions.push({
        key,
        value: ctx.dryRun ? Buffer.alloc(0) : codec.seal(key, item.data),
        ttlSeconds: decision.ttlSeconds,
        ttlMs: decision.ttlMs,
        plaintext: item.data,
        file: item.location,
      });
    }
  }
  return batch;
}

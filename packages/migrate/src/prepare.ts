/**
 * Turns session-file candidates into envelopes ready to write: read, decide (expired, empty, corrupt,
 * migrate), name the key, seal. Pure CPU and file reads, no Redis: it runs inline or in worker
 * threads (prepare-pool.ts) with the same code.
 */
import type { EnvelopeCodec } from '@session-migrate/envelope';
import type { SerializeHandler } from '@session-migrate/php-session';
import { readSessionFile, type SessionCandidate } from '@session-migrate/sources';
import { decideSession } from './plan.ts';

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

/** One session ready for `SET key value EX ttlSeconds NX`. */
export interface PreparedSession {
  key: string;
  value: Buffer;
  ttlSeconds: number;
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
}

/** Reads, classifies and seals a batch of candidates. Never throws for a bad file. */
export function prepareBatch(candidates: readonly SessionCandidate[], codec: EnvelopeCodec, ctx: PrepareContext): PreparedBatch {
  const batch: PreparedBatch = { sessions: [], expired: 0, empty: 0, corrupt: 0, skipped: {} };
  for (const candidate of candidates) {
    const item = readSessionFile(candidate, ctx.maxSessionBytes);
    if (item.kind === 'skipped') {
      batch.skipped[item.reason] = (batch.skipped[item.reason] ?? 0) + 1;
      continue;
    }
    const decision = decideSession(item.data, item.mtimeMs, ctx.gcMaxlifetime, ctx.serializeHandler, ctx.nowSeconds);
    if (decision.action === 'expired') batch.expired++;
    else if (decision.action === 'empty') batch.empty++;
    else if (decision.action === 'corrupt') batch.corrupt++;
    else {
      const key = codec.keyName(ctx.prefix, item.id);
      batch.sessions.push({
        key,
        value: ctx.dryRun ? Buffer.alloc(0) : codec.seal(key, item.data),
        ttlSeconds: decision.ttlSeconds,
        plaintext: item.data,
        file: item.location,
      });
    }
  }
  return batch;
}

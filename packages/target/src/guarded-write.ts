/**
 * The Redis target's write path: the guarded no-clobber write of envelopes, and the checks that
 * confirm it (WAIT for replicas, then a read-back of presence). Connections, topologies, pipelines
 * grouped by slot and the error classifier live in @session-migrate/redis.
 *
 * Values are always Buffers, read back with the *Buffer commands (test/fixtures/cases/BUG-24), and every
 * reply of a pipeline is inspected (test/fixtures/cases/BUG-25: exec() resolves even when commands failed).
 */
import type { ChainableCommander } from 'ioredis';
import { tombstoneKeyFor } from '@session-migrate/envelope';
import type { ClassifiedError, RedisConnection } from '@session-migrate/redis';

/** Key names of layout 2 (their one home is @session-migrate/envelope's key-layout.ts). */
export { TOMBSTONE_INFIX, tombstoneKeyFor } from '@session-migrate/envelope';

/**
 * Outcome of one no-clobber write. `exists` carries the value already there and its PTTL in ms
 * (-1: no TTL), so the caller can tell a newer write by the handler (it sets TTL = gc_maxlifetime at
 * every write) from a stale copy. `failed` carries the classified error (transient ones are worth
 * retrying, permanent ones stop the run).
 */
export type WriteOutcome =
  | { status: 'written' }
  | { status: 'exists'; existing: Buffer; pttlMs: number }
  | { status: 'wrong-type' }
  | { status: 'failed'; error: string; classified: ClassifiedError };

/** Outcome of one guarded write: the no-clobber outcomes, plus `destroyed` (a tombstone blocked it). */
export type GuardedWriteOutcome = WriteOutcome | { status: 'destroyed' };

/** One value to store with a TTL in milliseconds (> 0): PX keeps a Redis source's PTTL exactly. */
export interface GuardedWriteRequest {
  key: string;
  value: Buffer;
  ttlMs: number;
}

/**
 * The write of one session, atomic in Redis (a Lua script runs alone): a tombstone wins, then
 * `SET key value PX ttl NX`; when the key exists its type and value come back for the caller to compare.
 * KEYS[1] session key, KEYS[2] tombstone key (same hash slot: key layout 2); ARGV[1] value, ARGV[2]
 * TTL in milliseconds. Replies: 'destroyed' | 'written' | 'wrong-type' | ['exists', value, pttl ms].
 */
export const GUARDED_WRITE_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 'destroyed' end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 'written' end
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return 'vanished' end
if t ~= 'string' then return 'wrong-type' end
return {'exists', redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
`;

type GuardedWriteCommander = ChainableCommander & { smGuardedWriteBuffer(k1: string, k2: string, v: Buffer, ttl: string): ChainableCommander };

/**
 * Registers the guarded-write script on a client (ioredis defineCommand: EVAL once per connection,
 * then EVALSHA, and EVAL again on NOSCRIPT, which also covers a Redis restarted mid-run). Idempotent.
 */
function ensureGuardedWrite(conn: RedisConnection): void {
  const c = conn.client as unknown as { smGuardedWriteBuffer?: unknown };
  if (typeof c.smGuardedWriteBuffer === 'function') return;
  conn.client.defineCommand('smGuardedWrite', { numberOfKeys: 2, lua: GUARDED_WRITE_LUA });
}

/**
 * Writes a batch of sessions with the guarded-write script (GUARDED_WRITE_LUA), in pipelines grouped
 * by hash slot (RedisConnection.runGrouped): a session whose tombstone exists is `destroyed` (not
 * written), an existing key is never overwritten (`exists` with its value, or `wrong-type`).
 * @param prefix the key prefix, to name each session's tombstone
 * @returns one outcome per request, in order; never throws for a failed command (a dropped
 *   connection makes every command of its pipeline `failed`, with the error classified).
 * @throws RangeError for a TTL that is not a positive integer of milliseconds.
 */
export async function writeBatchGuarded(conn: RedisConnection, prefix: string, batch: GuardedWriteRequest[]): Promise<GuardedWriteOutcome[]> {
  if (batch.length === 0) return [];
  for (const r of batch) {
    if (!Number.isInteger(r.ttlMs) || r.ttlMs <= 0) throw new RangeError(`TTL must be a positive integer for ${r.key}`);
  }
  ensureGuardedWrite(conn);
  const replies = await conn.runGrouped(batch.map((r) => ({
    key: r.key,
    build: (pipe: ChainableCommander) => { (pipe as GuardedWriteCommander).smGuardedWriteBuffer(r.key, tombstoneKeyFor(prefix, r.key), r.value, String(r.ttlMs)); },
  })));
  return batch.map((_, i): GuardedWriteOutcome => {
    const [err, result] = replies[i]?.[0] ?? [new Error('no reply'), null];
    if (err) {
      const classified = conn.classify(err);
      return { status: 'failed', error: classified.message, classified };
    }
    const text = Buffer.isBuffer(result) ? result.toString('latin1') : typeof result === 'string' ? result : undefined;
    if (text === 'written') return { status: 'written' };
    if (text === 'destroyed') return { status: 'destroyed' };
    if (text === 'wrong-type') return { status: 'wrong-type' };
    if (text === 'vanished') {
      const error = 'key expired during the write; retrying';
      return { status: 'failed', error, classified: { kind: 'transient', code: 'VANISHED', message: error } };
    }
    if (Array.isArray(result) && result.length === 3 && Buffer.isBuffer(result[1]) && typeof result[2] === 'number') {
      return { status: 'exists', existing: result[1], pttlMs: result[2] };
    }
    const error = 'unexpected reply from the write script';
    return { status: 'failed', error, classified: { kind: 'permanent', code: 'UNEXPECTED', message: error, fix: 'a proxy or module changed the reply' } };
  });
}

/** Presence of a session written earlier: there, gone on purpose (tombstone), missing, or unknown (error). */
export type Presence = 'present' | 'destroyed' | 'missing' | { error: ClassifiedError };

/**
 * Reads back whether sessions are in Redis: EXISTS of the key and of its tombstone, in pipelines
 * grouped by hash slot. A missing key whose tombstone exists was logged out meanwhile (`destroyed`).
 */
export async function readBackPresence(conn: RedisConnection, prefix: string, keys: string[]): Promise<Presence[]> {
  const replies = await conn.runGrouped(keys.map((key) => ({
    key,
    build: (pipe: ChainableCommander) => { pipe.exists(key); pipe.exists(tombstoneKeyFor(prefix, key)); },
  })));
  return keys.map((_, i): Presence => {
    const [e1, present] = replies[i]?.[0] ?? [new Error('no reply'), null];
    const [e2, tomb] = replies[i]?.[1] ?? [new Error('no reply'), null];
    const err = e1 ?? e2;
    if (err) return { error: conn.classify(err) };
    if (Number(present) === 1) return 'present';
    return Number(tomb) === 1 ? 'destroyed' : 'missing';
  });
}

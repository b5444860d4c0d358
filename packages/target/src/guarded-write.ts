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
import { hashSlot, type ClassifiedError, type RedisConnection } from '@session-migrate/redis';
import { GUARDED_WRITE_LUA } from './script.ts';
import { Command } from 'ioredis';
import { GUARDED_WRITE_SHA1, groupSizes } from './encode.ts';

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
  /** The session key name (text, or its bytes). */
  key: string | Buffer;
  /** Its tombstone's name when the caller has it already (tombstoneKeyFor(prefix, key)); derived otherwise. */
  tombstone?: string | Buffer;
  value: Buffer;
  ttlMs: number;
}

export { GUARDED_WRITE_LUA } from './script.ts';
export {
  GUARDED_WRITE_SHA1,
  WRITE_GROUP_BYTES,
  WRITE_GROUP_SESSIONS,
  encodeGuardedWrite,
  encodedGuardedWriteSize,
  groupSizes,
  startsNewGroup,
  type EncodableSession,
  type EncodedSessionPositions,
} from './encode.ts';

/** ioredis's callBuffer on a pipeline (a command by name, bulk replies as Buffers; not in its typings). */
type BufferCaller = ChainableCommander & { callBuffer(command: string, ...args: Array<string | Buffer | number>): ChainableCommander };

/**
 * Registers the guarded-write script on a client (ioredis defineCommand: EVAL once per connection,
 * then EVALSHA, and EVAL again on NOSCRIPT, which also covers a Redis restarted mid-run). Idempotent.
 */
function ensureGuardedWrite(conn: RedisConnection): void {
  const c = conn.client as unknown as { smGuardedWriteBuffer?: unknown };
  if (typeof c.smGuardedWriteBuffer === 'function') return;
  // numberOfKeys per call (the group's size): given as the first argument.
  conn.client.defineCommand('smGuardedWrite', { lua: GUARDED_WRITE_LUA });
}

/**
 * Splits requests into script calls: on a single node or Sentinel consecutive runs within
 * WRITE_GROUP_SESSIONS sessions and WRITE_GROUP_BYTES bytes (groupSizes, as workers encode them); in
 * a Redis Cluster one hash slot per call (a script's keys must share a slot), with the same limits.
 */
function groupForScript(conn: RedisConnection, batch: GuardedWriteRequest[]): number[][] {
  const groups: number[][] = [];
  if (conn.topology !== 'cluster') {
    let at = 0;
    for (const size of groupSizes(batch.map((r) => r.value.length))) {
      groups.push(Array.from({ length: size }, (_, k) => at + k));
      at += size;
    }
    return groups;
  }
  const bySlot = new Map<number, GuardedWriteRequest[]>();
  const indexOf = new Map<GuardedWriteRequest, number>();
  batch.forEach((r, i) => {
    indexOf.set(r, i);
    const slot = hashSlot(r.key);
    let list = bySlot.get(slot);
    if (list === undefined) bySlot.set(slot, (list = []));
    list.push(r);
  });
  for (const list of bySlot.values()) {
    let at = 0;
    for (const size of groupSizes(list.map((r) => r.value.length))) {
      groups.push(list.slice(at, at + size).map((r) => indexOf.get(r)!));
      at += size;
    }
  }
  return groups;
}

/**
 * Writes a batch of sessions with the guarded-write script (GUARDED_WRITE_LUA), many sessions per
 * script call, in pipelines grouped by hash slot owner (RedisConnection.runGrouped): a session whose
 * tombstone exists is `destroyed` (not written), an existing key is never overwritten (`exists` with
 * its value, or `wrong-type`).
 * @param prefix the key prefix, to name each session's tombstone (when the request has none)
 * @returns one outcome per request, in order; never throws for a failed command (a dropped
 *   connection, or an error of the whole call, makes every session of its call `failed`, with the
 *   error classified).
 * @throws RangeError for a TTL that is not a positive integer of milliseconds, or a key that is not a
 *   session key under the prefix.
 */
export async function writeBatchGuarded(
  conn: RedisConnection,
  prefix: string,
  batch: GuardedWriteRequest[],
): Promise<GuardedWriteOutcome[]> {
  if (batch.length === 0) return [];
  for (const r of batch) {
    if (!Number.isInteger(r.ttlMs) || r.ttlMs <= 0) throw new RangeError(`TTL must be a positive integer for ${String(r.key)}`);
  }
  const tombstones = batch.map((r) => r.tombstone ?? tombstoneKeyFor(prefix, typeof r.key === 'string' ? r.key : r.key.toString('utf8')));
  const groups = groupForScript(conn, batch);
  const argsOf = (idx: number[]): Array<string | Buffer | number> => {
    const args: Array<string | Buffer | number> = [idx.length * 2];
    for (const i of idx) args.push(batch[i]!.key);
    for (const i of idx) args.push(tombstones[i]!);
    for (const i of idx) args.push(batch[i]!.value);
    for (const i of idx) args.push(String(batch[i]!.ttlMs));
    return args;
  };
  let replies: Array<[Error | null, unknown]>;
  if (conn.topology === 'cluster') {
    // Each call to the node that owns its slot; redirections followed by runGrouped. EVALSHA, then EVAL
    // for the calls a node refused with NOSCRIPT (a node restarted, a new master, or one that refused
    // the connection's first EVAL, e.g. with CLUSTERDOWN), as writeEncodedGuarded does. Not ioredis's
    // script command: inside a pipeline it marks the script loaded on a connection once it has sent an
    // EVAL, even one the node refused, and then reports its EVALSHA's NOSCRIPT as the call's reply
    // (https://github.com/redis/ioredis lib/Script.ts), which cost apply a retry and a stderr line after
    // a cluster restart (test/prod-redis-cluster.test.ts "NOSCRIPT").
    const send = (which: number[], command: 'EVALSHA' | 'EVAL'): Promise<Array<[Error | null, unknown]>> =>
      conn
        .runGrouped(
          which.map((g) => ({
            key: batch[groups[g]![0]!]!.key,
            build: (pipe: ChainableCommander) => {
              (pipe as BufferCaller).callBuffer(
                command,
                command === 'EVAL' ? GUARDED_WRITE_LUA : GUARDED_WRITE_SHA1,
                ...argsOf(groups[g]!),
              );
            },
          })),
        )
        .then((rs) => rs.map((r) => r[0] ?? [new Error('no reply'), null]));
    replies = await send(
      groups.map((_, g) => g),
      'EVALSHA',
    );
    const refused = replies.flatMap(([err], g) => (err !== null && /^NOSCRIPT\b/.test(err.message) ? [g] : []));
    if (refused.length > 0) {
      const again = await send(refused, 'EVAL');
      refused.forEach((g, k) => {
        replies[g] = again[k]!;
      });
    }
  } else {
    // One node: each call is one large command, sent as it is (a pipeline would copy its bytes once more).
    ensureGuardedWrite(conn);
    const client = conn.client as unknown as { smGuardedWriteBuffer(...args: Array<string | Buffer | number>): Promise<unknown> };
    const settled = await Promise.allSettled(groups.map((idx) => client.smGuardedWriteBuffer(...argsOf(idx))));
    replies = settled.map((r) =>
      r.status === 'fulfilled' ? [null, r.value] : [r.reason instanceof Error ? r.reason : new Error(String(r.reason)), null],
    );
  }
  const out: GuardedWriteOutcome[] = new Array(batch.length);
  groups.forEach((idx, g) => {
    const [err, result] = replies[g] ?? [new Error('no reply'), null];
    const outcomes: GuardedWriteOutcome[] = [];
    outcomesOfCall(conn, err, result, idx.length, outcomes);
    idx.forEach((i, k) => {
      out[i] = outcomes[k]!;
    });
  });
  return out;
}

const WRITTEN: GuardedWriteOutcome = Object.freeze({ status: 'written' });
const DESTROYED: GuardedWriteOutcome = Object.freeze({ status: 'destroyed' });
const WRONG_TYPE: GuardedWriteOutcome = Object.freeze({ status: 'wrong-type' });

/** One session's entry of the script's reply (shared objects for the common outcomes: do not modify them). */
function outcomeOf(conn: RedisConnection, r: unknown): GuardedWriteOutcome {
  if (r === 1) return WRITTEN;
  if (r === 0) return DESTROYED;
  if (r === 2) return WRONG_TYPE;
  if (r === 3) {
    const error = 'key expired during the write; retrying';
    return { status: 'failed', error, classified: { kind: 'transient', code: 'VANISHED', message: error } };
  }
  if (r instanceof Error) {
    const classified = conn.classify(r);
    return { status: 'failed', error: classified.message, classified };
  }
  if (Array.isArray(r) && r.length === 2 && Buffer.isBuffer(r[0]) && typeof r[1] === 'number') {
    return { status: 'exists', existing: r[0], pttlMs: r[1] };
  }
  const error = 'unexpected reply from the write script';
  return {
    status: 'failed',
    error,
    classified: { kind: 'permanent', code: 'UNEXPECTED', message: error, fix: 'a proxy or module changed the reply' },
  };
}

/** Outcomes of a whole script call, one per session (its `count` sessions), from its reply or error. */
function outcomesOfCall(conn: RedisConnection, err: Error | null, result: unknown, count: number, into: GuardedWriteOutcome[]): void {
  if (err) {
    const classified = conn.classify(err);
    for (let k = 0; k < count; k++) into.push({ status: 'failed', error: classified.message, classified });
    return;
  }
  const list = Array.isArray(result) && result.length === count ? (result as unknown[]) : undefined;
  for (let k = 0; k < count; k++) into.push(outcomeOf(conn, list !== undefined ? list[k] : undefined));
}

/**
 * A command whose bytes are encoded already (encodeGuardedWrite): ioredis writes them as they are
 * (Command.toWritable) and parses the reply as for any command, values as Buffers.
 */
class EncodedCommand extends Command {
  constructor(private readonly encoded: Buffer) {
    super('evalsha', [], { replyEncoding: null });
  }

  override toWritable(): Buffer {
    return this.encoded;
  }
}

/**
 * Sends guarded-write calls encoded ahead of time (encodeGuardedWrite, e.g. by apply's worker
 * threads), each as one command, on a single node or behind Sentinel. A server that does not know
 * the script (NOSCRIPT: restarted, or a new master after a failover; scripts are not replicated) gets
 * the calls it refused again as EVAL with the script's text, once, which also caches the script
 * there for the EVALSHA that follow (EVAL, not SCRIPT LOAD: apply's ACL rule allows EVAL and EVALSHA
 * only, packages/redis/src/acl.ts).
 * @param commands the encoded calls; their bytes must stay as they are until this resolves (and,
 *   after a call failed without an answer, for as long as the connection may send it again)
 * @param counts sessions of each call
 * @returns one outcome per session, in order over all calls; never throws for a failed command
 * @throws RangeError on a Redis Cluster (calls there are grouped by slot: writeBatchGuarded)
 */
export async function writeEncodedGuarded(
  conn: RedisConnection,
  commands: readonly Buffer[],
  counts: readonly number[],
): Promise<GuardedWriteOutcome[]> {
  if (conn.topology === 'cluster')
    throw new RangeError('encoded calls are for a single node or Sentinel; a cluster needs writeBatchGuarded');
  const client = conn.client as unknown as { sendCommand(c: Command): Promise<unknown> };
  const send = (bytes: Buffer): Promise<[Error | null, unknown]> =>
    client.sendCommand(new EncodedCommand(bytes)).then(
      (r): [null, unknown] => [null, r],
      (e: unknown): [Error, null] => [e instanceof Error ? e : new Error(String(e)), null],
    );
  const replies = await Promise.all(commands.map(send));
  const refused = replies.flatMap(([err], i) => (err !== null && /^NOSCRIPT\b/.test(err.message) ? [i] : []));
  if (refused.length > 0) {
    const again = await Promise.all(refused.map((i) => send(asEval(commands[i]!))));
    refused.forEach((i, k) => {
      replies[i] = again[k]!;
    });
  }
  const out: GuardedWriteOutcome[] = [];
  replies.forEach(([err, result], i) => outcomesOfCall(conn, err, result, counts[i]!, out));
  return out;
}

/** The bytes of EVALSHA's name and the SHA-1 at the start of an encoded call (after the array header). */
const EVALSHA_HEAD = Buffer.from(`$7\r\nEVALSHA\r\n$40\r\n${GUARDED_WRITE_SHA1}\r\n`, 'latin1');
/** What replaces them for EVAL: the name and the script's text. */
const EVAL_HEAD = Buffer.concat([
  Buffer.from(`$4\r\nEVAL\r\n$${Buffer.byteLength(GUARDED_WRITE_LUA)}\r\n`, 'latin1'),
  Buffer.from(GUARDED_WRITE_LUA, 'utf8'),
  Buffer.from('\r\n'),
]);

/** An encoded EVALSHA call as EVAL of the script's text (same arguments). */
function asEval(command: Buffer): Buffer {
  const headerEnd = command.indexOf('\r\n') + 2;
  if (!command.subarray(headerEnd, headerEnd + EVALSHA_HEAD.length).equals(EVALSHA_HEAD))
    throw new RangeError('not an encoded guarded-write call');
  return Buffer.concat([command.subarray(0, headerEnd), EVAL_HEAD, command.subarray(headerEnd + EVALSHA_HEAD.length)]);
}

/** One session a read-only lookup asks about: its key name and, when the caller has it, its tombstone's. */
export interface GuardedLookupRequest {
  key: string | Buffer;
  tombstone?: string | Buffer;
}

/**
 * What the guarded write (GUARDED_WRITE_LUA) would decide for each session now, without writing:
 * `written` (it would be written: no tombstone, no key), `destroyed` (its tombstone exists), `exists`
 * (the value there and its PTTL in ms, for the caller to compare as after a write), `wrong-type`, or
 * `failed` (the classified error). Per session one pipeline entry of `EXISTS tombstone`, `TYPE key`,
 * `GET key`, `PTTL key`, grouped by hash slot owner (RedisConnection.runGrouped; a tombstone shares its
 * session's slot). Unlike the script these four reads are not atomic: a key written or expired between
 * them is reported as what GET saw (a key gone by then: `written`). For apply --dry-run; the commands
 * are all in apply's ACL rule (packages/redis/src/acl.ts).
 * @param prefix the key prefix, to name each session's tombstone (when the request has none)
 * @returns one outcome per request, in order; never throws for a failed command
 */
export async function lookupGuardedWrite(
  conn: RedisConnection,
  prefix: string,
  batch: readonly GuardedLookupRequest[],
): Promise<GuardedWriteOutcome[]> {
  const replies = await conn.runGrouped(
    batch.map((r) => ({
      key: r.key,
      build: (pipe: ChainableCommander) => {
        pipe.exists(r.tombstone ?? tombstoneKeyFor(prefix, typeof r.key === 'string' ? r.key : r.key.toString('utf8')));
        pipe.type(r.key);
        pipe.getBuffer(r.key);
        pipe.pttl(r.key);
      },
    })),
  );
  const failed = (err: Error): GuardedWriteOutcome => {
    const classified = conn.classify(err);
    return { status: 'failed', error: classified.message, classified };
  };
  return batch.map((_, i) => {
    const entry = replies[i] ?? [];
    const reply = (k: number): [Error | null, unknown] => entry[k] ?? [new Error('no reply'), null];
    // In the script's order: a tombstone wins, then the key's type, then its value.
    const [tombErr, tomb] = reply(0);
    if (tombErr !== null) return failed(tombErr);
    if (Number(tomb) > 0) return DESTROYED;
    const [typeErr, type] = reply(1);
    if (typeErr !== null) return failed(typeErr);
    if (type === 'none') return WRITTEN;
    if (type !== 'string') return WRONG_TYPE; // GET answered WRONGTYPE: the script would not write either
    const [getErr, value] = reply(2);
    const [pttlErr, pttl] = reply(3);
    if (getErr !== null || pttlErr !== null) return failed((getErr ?? pttlErr)!);
    return Buffer.isBuffer(value) ? { status: 'exists', existing: value, pttlMs: Number(pttl) } : WRITTEN; // expired since TYPE
  });
}

/** Presence of a session written earlier: there, gone on purpose (tombstone), missing, or unknown (error). */
export type Presence = 'present' | 'destroyed' | 'missing' | { error: ClassifiedError };

/** Keys per multi-key EXISTS of the read-back (a single node or Sentinel). */
const READ_BACK_GROUP = 1000;

/**
 * Reads back whether sessions are in Redis. On a single node or Sentinel one `EXISTS k1 .. kn` per
 * READ_BACK_GROUP keys first: it counts the keys that exist, so a count of n proves every one is
 * there (an error gives every key of the group that error). Sessions of a group with a shorter count, and every session in a Redis Cluster
 * (whose multi-key commands need one slot), are then checked one by one: EXISTS of the key and of its
 * tombstone, in pipelines grouped by hash slot. A missing key whose tombstone exists was logged out
 * meanwhile (`destroyed`).
 * @param keys session key names (text or bytes)
 * @param tombstones their tombstones' names, same order (default: derived from the keys)
 */
export async function readBackPresence(
  conn: RedisConnection,
  prefix: string,
  keys: Array<string | Buffer>,
  tombstones?: Array<string | Buffer>,
): Promise<Presence[]> {
  const out: Presence[] = new Array(keys.length);
  let pending = keys.map((_, i) => i);
  if (conn.topology !== 'cluster' && keys.length > 0) {
    const groups: number[][] = [];
    for (let s = 0; s < pending.length; s += READ_BACK_GROUP) groups.push(pending.slice(s, s + READ_BACK_GROUP));
    const replies = await conn.runGrouped(
      groups.map((idx) => ({
        key: keys[idx[0]!]!,
        build: (pipe: ChainableCommander) => {
          pipe.exists(...idx.map((i) => keys[i]!));
        },
      })),
    );
    pending = [];
    groups.forEach((idx, g) => {
      const [err, count] = replies[g]?.[0] ?? [new Error('no reply'), null];
      if (err !== null) {
        // Redis failed: the caller retries these; checking them one by one now would fail the same way.
        const error = conn.classify(err);
        for (const i of idx) out[i] = { error };
      } else if (count === idx.length) for (const i of idx) out[i] = 'present';
      else pending.push(...idx);
    });
  }
  if (pending.length === 0) return out;
  const tombstoneOf = (i: number): string | Buffer =>
    tombstones?.[i] ?? tombstoneKeyFor(prefix, typeof keys[i] === 'string' ? (keys[i] as string) : (keys[i] as Buffer).toString('utf8'));
  const replies = await conn.runGrouped(
    pending.map((i) => ({
      key: keys[i]!,
      build: (pipe: ChainableCommander) => {
        pipe.exists(keys[i]!);
        pipe.exists(tombstoneOf(i));
      },
    })),
  );
  pending.forEach((i, n) => {
    const [e1, present] = replies[n]?.[0] ?? [new Error('no reply'), null];
    const [e2, tomb] = replies[n]?.[1] ?? [new Error('no reply'), null];
    const err = e1 ?? e2;
    if (err) out[i] = { error: conn.classify(err) };
    else if (Number(present) === 1) out[i] = 'present';
    else out[i] = Number(tomb) === 1 ? 'destroyed' : 'missing';
  });
  return out;
}

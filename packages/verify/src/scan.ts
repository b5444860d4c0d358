/**
 * Reads every key of a database (or every key under a prefix) for `verify`, in bounded memory: SCAN on
 * every master, then per SCAN batch one pipeline (grouped by slot) of `PTTL key` + `GETRANGE key 0
 * CAP-1`, i.e. the same two commands per key as a prefix scan with GET + PTTL. GETRANGE caps what one
 * key can bring into memory, so a batch holds at most `count` x `readCap` bytes whatever the values.
 * Only the rare keys that need it get a second round:
 *
 * - GETRANGE answered WRONGTYPE: TYPE names the type (hash, list, set, zset, stream, ...);
 * - the value filled the cap: STRLEN, then GET when it is under the prefix (every value there is read
 *   whole) or at most `maxValueBytes` long, in pipelines of at most `groupBytes`; a longer string
 *   outside the prefix is reported as `large-string` (counted, not read);
 * - GETRANGE gave an empty string, which it also gives for a key deleted after the PTTL: GET tells the
 *   two apart (nil: gone, not reported).
 *
 * Keys gone between SCAN and the read (PTTL -2, TYPE none, GET nil) are dropped: under live traffic
 * sessions expire and logouts delete keys. SCAN may return a key twice (https://redis.io/commands/scan).
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisConnection, Reply } from '@session-migrate/redis';
import type { KeyValue } from './classify.ts';

/** One key read by the scan. `error` instead of a value when Redis refused a command for it. */
export type ScannedKey =
  | { key: Buffer; value: KeyValue; pttlMs: number; error?: undefined }
  | { key: Buffer; error: Error };

export interface ScanOptions {
  /** '' = every key of the database (SCAN without MATCH); else the keys under this prefix. */
  match: string;
  /** Keys under this prefix are always read whole (the target prefix). */
  fullRead: Buffer;
  /** SCAN COUNT hint (default 1000). */
  count?: number;
  /** Bytes GETRANGE reads of each key (default 16 KiB). */
  readCap?: number;
  /** Longest string read outside `fullRead` (default 8 MiB). */
  maxValueBytes?: number;
  /** Bytes of values fetched in one follow-up pipeline (default 32 MiB). */
  groupBytes?: number;
  /** Called before each master is scanned, with its `host:port`. */
  onNode?: (node: string) => void;
}

export const DEFAULT_READ_CAP = 16 * 1024;
const DEFAULT_GROUP_BYTES = 32 * 1024 * 1024;

const NO_REPLY: Reply = [new Error('no reply'), null];

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/**
 * Yields the keys of each SCAN batch with what they hold (see the module comment).
 * @throws what the connection throws when Redis itself fails (SCAN, a lost connection)
 */
export async function* scanKeys(client: RedisConnection, options: ScanOptions): AsyncGenerator<ScannedKey[]> {
  const cap = options.readCap ?? DEFAULT_READ_CAP;
  const maxValueBytes = options.maxValueBytes ?? 8 * 1024 * 1024;
  const groupBytes = options.groupBytes ?? DEFAULT_GROUP_BYTES;
  for await (const keys of client.scan(options.match, options.count ?? 1000, options.onNode)) {
    const replies = await client.runGrouped(keys.map((key) => ({
      key,
      build: (pipe: ChainableCommander) => { pipe.pttl(key); pipe.getrangeBuffer(key, 0, cap - 1); },
    })));
    const out: Array<ScannedKey | undefined> = new Array(keys.length);
    const needType: number[] = [];
    const needLength: number[] = [];
    const needGet: number[] = [];
    const pttls: number[] = new Array(keys.length);
    /** STRLEN of the values longer than the cap. */
    const lengths: number[] = new Array(keys.length);
    keys.forEach((key, i) => {
      const [pttlErr, pttl] = replies[i]?.[0] ?? NO_REPLY;
      const [getErr, value] = replies[i]?.[1] ?? NO_REPLY;
      if (pttlErr !== null) {
        out[i] = { key, error: pttlErr };
        return;
      }
      const ttl = Number(pttl);
      if (ttl === -2) return; // gone since the SCAN
      pttls[i] = ttl;
      if (getErr !== null) {
        if (/^WRONGTYPE/.test(getErr.message)) needType.push(i);
        else out[i] = { key, error: getErr };
        return;
      }
      const data = value as Buffer;
      if (data.length === 0) needGet.push(i);
      else if (data.length >= cap) needLength.push(i);
      else out[i] = { key, value: { kind: 'string', value: data }, pttlMs: ttl };
    });

    if (needType.length > 0) {
      const types = await client.runGrouped(needType.map((i) => ({ key: keys[i]!, build: (pipe: ChainableCommander) => { pipe.type(keys[i]!); } })));
      needType.forEach((i, n) => {
        const [err, type] = types[n]?.[0] ?? NO_REPLY;
        if (err !== null) out[i] = { key: keys[i]!, error: err };
        else if (type === 'string') needGet.push(i); // replaced by a string meanwhile: read it again
        else if (type !== 'none') out[i] = { key: keys[i]!, value: { kind: 'other-type', type: String(type) }, pttlMs: pttls[i]! };
      });
    }

    if (needLength.length > 0) {
      const strlens = await client.runGrouped(needLength.map((i) => ({ key: keys[i]!, build: (pipe: ChainableCommander) => { pipe.strlen(keys[i]!); } })));
      needLength.forEach((i, n) => {
        const [err, length] = strlens[n]?.[0] ?? NO_REPLY;
        const key = keys[i]!;
        if (err !== null) {
          // Replaced by another type since the first read: reported as what it is now.
          out[i] = /^WRONGTYPE/.test(err.message) ? { key, value: { kind: 'other-type', type: 'unknown' }, pttlMs: pttls[i]! } : { key, error: err };
          return;
        }
        const len = Number(length);
        if (len === 0) return; // deleted meanwhile (STRLEN of a missing key is 0)
        lengths[i] = len;
        if (startsWith(key, options.fullRead) || len <= maxValueBytes) needGet.push(i);
        else out[i] = { key, value: { kind: 'large-string', length: len }, pttlMs: pttls[i]! };
      });
    }

    // GET in groups of at most groupBytes (by STRLEN, or the cap for a value read again).
    let group: number[] = [];
    let groupSize = 0;
    const flush = async (): Promise<void> => {
      if (group.length === 0) return;
      const got = await client.runGrouped(group.map((i) => ({ key: keys[i]!, build: (pipe: ChainableCommander) => { pipe.getBuffer(keys[i]!); } })));
      group.forEach((i, n) => {
        const [err, value] = got[n]?.[0] ?? NO_REPLY;
        const key = keys[i]!;
        if (err !== null) out[i] = /^WRONGTYPE/.test(err.message) ? { key, value: { kind: 'other-type', type: 'unknown' }, pttlMs: pttls[i]! } : { key, error: err };
        else if (value !== null) out[i] = { key, value: { kind: 'string', value: value as Buffer }, pttlMs: pttls[i]! };
        // nil: deleted since the first read
      });
      group = [];
      groupSize = 0;
    };
    for (const i of needGet) {
      const size = lengths[i] ?? cap;
      if (groupSize + size > groupBytes) await flush();
      group.push(i);
      groupSize += size;
    }
    await flush();
    const result: ScannedKey[] = [];
    for (const s of out) if (s !== undefined) result.push(s);
    yield result;
  }
}

/**
 * Reads every key of a database (or every key under a prefix) for `verify`, in bounded memory: SCAN
 * on every master, then per SCAN batch one pipeline grouped by slot:
 *
 * - a key under the target prefix (`fullRead`): `PTTL` + `GET`, what the prefix scan always sent
 *   (every value there is an envelope of ours, read whole and opened);
 * - any other key: `GETRANGE key 0 CAP-1` (with `PTTL` only where the caller needs it: phpredis
 *   locks). GETRANGE caps what one key of another application can bring into memory, so a batch
 *   holds at most `count` x `readCap` bytes of them, whatever their size.
 *
 * Only the keys that need it get a second round: GETRANGE answered WRONGTYPE: `TYPE` (hash, list, set,
 * zset, stream, ...); the value filled the cap: `STRLEN`, then `GET` when it is at most
 * `maxValueBytes` long (in pipelines of at most `groupBytes`; a longer string is reported as
 * `large-string`, counted, not read); GETRANGE gave an empty string, which it also gives for a key
 * deleted after the PTTL: `GET` tells the two apart. Error replies are expensive for the client
 * (ioredis builds an Error for each), so when a batch held many keys of other types the next batch
 * asks `TYPE` first (then `GETRANGE` for the strings only), and goes back once they are rare again.
 *
 * Keys gone between SCAN and the read (PTTL -2, TYPE none, GET nil; GETRANGE gives '' for them,
 * which GET checks) are dropped: under live traffic
 * sessions expire and logouts delete keys. SCAN may return a key twice (https://redis.io/commands/scan).
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisConnection, Reply } from '@session-migrate/redis';
import type { KeyValue } from './classify.ts';

/**
 * One key read by the scan. `error` instead of a value when Redis refused a command for it. `pttlMs`
 * (-1: no TTL) is NaN where it was not read (see ScanOptions.ttlWanted).
 */
export type ScannedKey = { key: Buffer; value: KeyValue; pttlMs: number; error?: undefined } | { key: Buffer; error: Error };

export interface ScanOptions {
  /** '' = every key of the database (SCAN without MATCH); else the keys under this prefix. */
  match: string;
  /** Keys under this prefix are always read whole with GET (the target prefix). */
  fullRead: Buffer;
  /** SCAN COUNT hint (default 1000). */
  count?: number;
  /** Bytes GETRANGE reads of each other key (default 16 KiB). */
  readCap?: number;
  /** Longest string read outside `fullRead` (default 8 MiB). */
  maxValueBytes?: number;
  /** Bytes of values fetched in one follow-up pipeline (default 32 MiB). */
  groupBytes?: number;
  /**
   * Keys outside `fullRead` whose PTTL is read too (default none): `pttlMs` of the others is NaN
   * (verify needs it only for phpredis locks, to tell a stale one).
   */
  ttlWanted?: (key: Buffer) => boolean;
  /** Called before each master is scanned, with its `host:port`. */
  onNode?: (node: string) => void;
}

export const DEFAULT_READ_CAP = 16 * 1024;
const DEFAULT_GROUP_BYTES = 32 * 1024 * 1024;
/** Share of keys of other types in a batch from which the next batch asks TYPE first, and below which it stops. */
const TYPE_FIRST_FROM = 0.25;
const TYPE_FIRST_UNTIL = 0.1;

const NO_REPLY: Reply = [new Error('no reply'), null];
const WRONGTYPE = /^WRONGTYPE/;

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/**
 * Yields the keys of each SCAN batch with what they hold (see the module comment). The next batch is
 * read (its SCAN, then its pipelines) while the caller works on the one yielded: Redis and this
 * thread work at the same time, and at most one batch more is held.
 * @throws what the connection throws when Redis itself fails (SCAN, a lost connection)
 */
export async function* scanKeys(client: RedisConnection, options: ScanOptions): AsyncGenerator<ScannedKey[]> {
  const batches = readBatches(client, options);
  let next = batches.next();
  let finished = false;
  try {
    for (;;) {
      const r = await next;
      if (r.done === true) {
        finished = true;
        return;
      }
      next = batches.next();
      next.catch(() => undefined); // awaited at the top of the loop, unless the caller stops first
      yield r.value;
    }
  } finally {
    // The caller stopped early (or a read failed): close the reader once its last read settles.
    if (!finished)
      void next
        .then(
          () => batches.return(undefined),
          () => undefined,
        )
        .catch(() => undefined);
  }
}

/** The batches of scanKeys, one read after the other (see the module comment). */
async function* readBatches(client: RedisConnection, options: ScanOptions): AsyncGenerator<ScannedKey[]> {
  const cap = options.readCap ?? DEFAULT_READ_CAP;
  const capEnd = String(cap - 1);
  const maxValueBytes = options.maxValueBytes ?? 8 * 1024 * 1024;
  const groupBytes = options.groupBytes ?? DEFAULT_GROUP_BYTES;
  const fullRead = options.fullRead;
  const ttlWanted = options.ttlWanted ?? ((): boolean => false);
  let typeFirst = false;
  for await (const keys of client.scan(options.match, options.count ?? 1000, options.onNode)) {
    const n = keys.length;
    const out: Array<ScannedKey | undefined> = new Array(n).fill(undefined);
    const pttls = new Float64Array(n);
    /** STRLEN of values longer than the cap (0: not known). */
    const lengths = new Float64Array(n);
    const full = keys.map((k) => startsWith(k, fullRead));
    const askType = typeFirst;
    const needRange: number[] = [];
    const needType: number[] = [];
    const needLength: number[] = [];
    const needGet: number[] = [];
    let otherTypes = 0;
    let others = 0;

    const setError = (i: number, err: Error): void => {
      out[i] = { key: keys[i]!, error: err };
    };
    const setOtherType = (i: number, type: string): void => {
      otherTypes++;
      out[i] = { key: keys[i]!, value: { kind: 'other-type', type }, pttlMs: pttls[i]! };
    };
    /** What GETRANGE gave: the value, or a reason to read again. */
    const ranged = (i: number, data: Buffer): void => {
      if (data.length === 0) needGet.push(i);
      else if (data.length >= cap) needLength.push(i);
      else out[i] = { key: keys[i]!, value: { kind: 'string', value: data }, pttlMs: pttls[i]! };
    };

    // Per key: [PTTL, GET] under the prefix; elsewhere [GETRANGE] or [TYPE], with PTTL in front only
    // where the class depends on it (ttlWanted: phpredis lock names). Each command costs the client
    // about as much as the server, so a key of another application gets one.
    const withTtl = keys.map((k, i) => full[i]! || ttlWanted(k));
    const first = await client.runGrouped(
      keys.map((key, i) => ({
        key,
        build: full[i]
          ? (pipe: ChainableCommander) => {
              pipe.pttl(key);
              pipe.getBuffer(key);
            }
          : withTtl[i]
            ? askType
              ? (pipe: ChainableCommander) => {
                  pipe.pttl(key);
                  pipe.type(key);
                }
              : (pipe: ChainableCommander) => {
                  pipe.pttl(key);
                  pipe.getrangeBuffer(key, '0', capEnd);
                }
            : askType
              ? (pipe: ChainableCommander) => {
                  pipe.type(key);
                }
              : (pipe: ChainableCommander) => {
                  pipe.getrangeBuffer(key, '0', capEnd);
                },
      })),
    );
    for (let i = 0; i < n; i++) {
      const replies = first[i] ?? [NO_REPLY];
      if (withTtl[i]) {
        const [pttlErr, pttl] = replies[0] ?? NO_REPLY;
        if (pttlErr !== null) {
          setError(i, pttlErr);
          continue;
        }
        const ttl = Number(pttl);
        if (ttl === -2) continue; // gone since the SCAN
        pttls[i] = ttl;
      } else {
        pttls[i] = NaN; // not read: the class does not depend on it
      }
      const [err, reply] = replies[withTtl[i] ? 1 : 0] ?? NO_REPLY;
      if (!full[i]) others++;
      if (err !== null) {
        if (WRONGTYPE.test(err.message)) needType.push(i);
        else setError(i, err);
      } else if (full[i]) {
        // GET nil: deleted since the PTTL.
        if (reply !== null) out[i] = { key: keys[i]!, value: { kind: 'string', value: reply as Buffer }, pttlMs: pttls[i]! };
      } else if (askType) {
        if (reply === 'string') needRange.push(i);
        else if (reply !== 'none') setOtherType(i, String(reply));
      } else {
        ranged(i, reply as Buffer);
      }
    }

    if (needRange.length > 0) {
      const got = await client.runGrouped(
        needRange.map((i) => ({
          key: keys[i]!,
          build: (pipe: ChainableCommander) => {
            pipe.getrangeBuffer(keys[i]!, '0', capEnd);
          },
        })),
      );
      needRange.forEach((i, k) => {
        const [err, data] = got[k]?.[0] ?? NO_REPLY;
        if (err === null) ranged(i, data as Buffer);
        else if (WRONGTYPE.test(err.message))
          needType.push(i); // replaced by another type meanwhile
        else setError(i, err);
      });
    }

    if (needType.length > 0) {
      const types = await client.runGrouped(
        needType.map((i) => ({
          key: keys[i]!,
          build: (pipe: ChainableCommander) => {
            pipe.type(keys[i]!);
          },
        })),
      );
      needType.forEach((i, k) => {
        const [err, type] = types[k]?.[0] ?? NO_REPLY;
        if (err !== null) setError(i, err);
        else if (type === 'string')
          needGet.push(i); // replaced by a string meanwhile: read it again
        else if (type !== 'none') setOtherType(i, String(type));
      });
    }

    if (needLength.length > 0) {
      const strlens = await client.runGrouped(
        needLength.map((i) => ({
          key: keys[i]!,
          build: (pipe: ChainableCommander) => {
            pipe.strlen(keys[i]!);
          },
        })),
      );
      needLength.forEach((i, k) => {
        const [err, length] = strlens[k]?.[0] ?? NO_REPLY;
        if (err !== null) {
          // Replaced by another type since the first read: reported as what it is now.
          if (WRONGTYPE.test(err.message)) setOtherType(i, 'unknown');
          else setError(i, err);
          return;
        }
        const len = Number(length);
        if (len === 0) return; // deleted meanwhile (STRLEN of a missing key is 0)
        lengths[i] = len;
        if (len <= maxValueBytes) needGet.push(i);
        else out[i] = { key: keys[i]!, value: { kind: 'large-string', length: len }, pttlMs: pttls[i]! };
      });
    }

    // GET in groups of at most groupBytes (by STRLEN, or the cap for a value read again).
    for (let start = 0; start < needGet.length;) {
      let size = 0;
      let end = start;
      while (end < needGet.length && (end === start || size + (lengths[needGet[end]!] || cap) <= groupBytes))
        size += lengths[needGet[end++]!] || cap;
      const group = needGet.slice(start, end);
      const got = await client.runGrouped(
        group.map((i) => ({
          key: keys[i]!,
          build: (pipe: ChainableCommander) => {
            pipe.getBuffer(keys[i]!);
          },
        })),
      );
      group.forEach((i, k) => {
        const [err, value] = got[k]?.[0] ?? NO_REPLY;
        if (err !== null) {
          if (WRONGTYPE.test(err.message)) setOtherType(i, 'unknown');
          else setError(i, err);
        } else if (value !== null) {
          out[i] = { key: keys[i]!, value: { kind: 'string', value: value as Buffer }, pttlMs: pttls[i]! };
        }
        // nil: deleted since the first read
      });
      start = end;
    }

    // Many keys of other types (each an error reply to GETRANGE): ask TYPE first in the next batch.
    const share = others > 0 ? otherTypes / others : 0;
    typeFirst = typeFirst ? share > TYPE_FIRST_UNTIL : share > TYPE_FIRST_FROM;
    const result: ScannedKey[] = [];
    for (const s of out) if (s !== undefined) result.push(s);
    yield result;
  }
}

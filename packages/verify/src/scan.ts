/**
 * Reads every key of a database (or every key under a prefix) for `verify`, in bounded memory: SCAN
 * on every master, then per SCAN batch one pipeline grouped by slot:
 *
 * - a key under the target prefix (`fullRead`): `PTTL`, then its value: on a single node or behind
 *   Sentinel one `MGET` of the batch's prefix keys at the end of the same pipeline (after every
 *   PTTL); on a cluster (where MGET needs one hash slot and every session has its own) or for a user
 *   whose ACL rule has no MGET (NOPERM: the scan goes on with GET), `GET` per key. Every value there
 *   is an envelope of ours, read whole and opened. MGET gives nil for a key of another type as for
 *   a deleted one: such a key gets `TYPE`, as a GET's WRONGTYPE would;
 * - any other key: `GETRANGE key 0 CAP-1` (with `PTTL` only where the caller needs it: phpredis
 *   locks). GETRANGE caps what one key of another application can bring into memory, so a batch
 *   holds at most `count` x `readCap` bytes of them, whatever their size.
 *
 * Only the keys that need it get a second round: GETRANGE answered WRONGTYPE: `TYPE` (hash, list, set,
 * zset, stream, ...); the value filled the cap: `STRLEN`, then `GET` when it is at most
 * `maxValueBytes` long (in pipelines of at most `groupBytes`; a longer string is reported as
 * `large-string`, counted, not read, unless its first bytes begin like a PHP session and it is at most
 * `sessionLikeMaxBytes` long: then it is read whole too); GETRANGE gave an empty string, which it also gives for a key
 * deleted after the PTTL: `GET` tells the two apart. Error replies are expensive for the client
 * (ioredis builds an Error for each), so when a batch held many keys of other types the next batch
 * asks `TYPE` first (then `GETRANGE` for the strings only), and goes back once they are rare again.
 *
 * Keys gone between SCAN and the read (PTTL -2, TYPE none, GET nil; GETRANGE gives '' for them,
 * which GET checks) are dropped: under live traffic
 * sessions expire and logouts delete keys. SCAN may return a key twice (https://redis.io/commands/scan).
 */
import { isAscii } from 'node:buffer';
import type { ChainableCommander } from 'ioredis';
import type { RedisConnection, Reply } from '@session-migrate/redis';
import { headLooksLikeSession } from '@session-migrate/php-session';
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
  /**
   * Longest string read outside `fullRead` when its first `readCap` bytes begin like a PHP session
   * (headLooksLikeSession), so a large plaintext session is classified, not skipped (default 64 MiB,
   * at least maxValueBytes).
   */
  sessionLikeMaxBytes?: number;
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
/** ScanOptions.sessionLikeMaxBytes by default. */
export const DEFAULT_SESSION_LIKE_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_GROUP_BYTES = 32 * 1024 * 1024;
/** Share of keys of other types in a batch from which the next batch asks TYPE first, and below which it stops. */
const TYPE_FIRST_FROM = 0.25;
const TYPE_FIRST_UNTIL = 0.1;

const NO_REPLY: Reply = [new Error('no reply'), null];
const WRONGTYPE = /^WRONGTYPE/;
/** A command the user's ACL rule does not allow (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/). */
const NOPERM = /^NOPERM/;
/** The value of a key whose batch's MGET was refused (NOPERM): TYPE, then GET for a string. */
const READ_AGAIN = Symbol('read again');

/**
 * A key name as ioredis sends it most cheaply: an ASCII name (every session key: prefix, braces,
 * hex) as a string, which ioredis appends to the pipeline's text; any other as its bytes, which
 * ioredis copies into a buffer of its own per command (about 2 us a command, measured with
 * --cpu-prof on verify's scan).
 */
function asArgument(key: Buffer): string | Buffer {
  return isAscii(key) ? key.toString('latin1') : key;
}

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

/** What readBatches reads with, fixed for a whole scan (but `mget`, switched off by a NOPERM). */
interface ReadSettings {
  /** Values under the prefix by one MGET per batch (a single node or Sentinel, and allowed by the user's rule). */
  mget: boolean;
  cap: number;
  capEnd: string;
  maxValueBytes: number;
  sessionLikeMaxBytes: number;
  groupBytes: number;
  fullRead: Buffer;
  ttlWanted: (key: Buffer) => boolean;
}

/** The batches of scanKeys, one read after the other (see the module comment). */
async function* readBatches(client: RedisConnection, options: ScanOptions): AsyncGenerator<ScannedKey[]> {
  const cap = options.readCap ?? DEFAULT_READ_CAP;
  const settings: ReadSettings = {
    mget: client.topology !== 'cluster',
    cap,
    capEnd: String(cap - 1),
    maxValueBytes: options.maxValueBytes ?? 8 * 1024 * 1024,
    sessionLikeMaxBytes: Math.max(options.sessionLikeMaxBytes ?? DEFAULT_SESSION_LIKE_MAX_BYTES, options.maxValueBytes ?? 0),
    groupBytes: options.groupBytes ?? DEFAULT_GROUP_BYTES,
    fullRead: options.fullRead,
    ttlWanted: options.ttlWanted ?? ((): boolean => false),
  };
  let typeFirst = false;
  for await (const keys of client.scan(options.match, options.count ?? 1000, options.onNode)) {
    const batch: BatchRead = new BatchRead(client, settings, keys, typeFirst);
    await batch.read();
    // Many keys of other types (each an error reply to GETRANGE): ask TYPE first in the next batch.
    const share: number = batch.others > 0 ? batch.otherTypes / batch.others : 0;
    typeFirst = typeFirst ? share > TYPE_FIRST_UNTIL : share > TYPE_FIRST_FROM;
    yield batch.result();
  }
}

/** The reads of one SCAN batch: a first pipeline per key, then the reads again some keys need. */
class BatchRead {
  private readonly n: number;
  private readonly out: Array<ScannedKey | undefined>;
  private readonly pttls: Float64Array;
  /** STRLEN of values longer than the cap (0: not known). */
  private readonly lengths: Float64Array;
  private readonly full: boolean[];
  private readonly needRange: number[] = [];
  private readonly needType: number[] = [];
  private readonly needLength: number[] = [];
  private readonly needGet: number[] = [];
  /** The first readCap bytes of values longer than that (needLength), until their length is known. */
  private readonly heads = new Map<number, Buffer>();
  otherTypes = 0;
  others = 0;
  /** This batch's values under the prefix came by MGET (readFirst). */
  private viaMget = false;

  /** Sets up the batch of `keys`; `askType`: TYPE rather than GETRANGE first for keys outside fullRead. */
  constructor(
    private readonly client: RedisConnection,
    private readonly s: ReadSettings,
    private readonly keys: Buffer[],
    private readonly askType: boolean,
  ) {
    const n = keys.length;
    this.n = n;
    this.out = new Array(n).fill(undefined);
    this.pttls = new Float64Array(n);
    this.lengths = new Float64Array(n);
    this.full = keys.map((k) => startsWith(k, s.fullRead));
  }

  /** Reads every key of the batch: the first pipeline, then GETRANGE, TYPE, STRLEN and GET where needed. */
  async read(): Promise<void> {
    await this.readFirst();
    if (this.needRange.length > 0) await this.readRanges();
    if (this.needType.length > 0) await this.readTypes();
    if (this.needLength.length > 0) await this.readLengths();
    await this.readValues();
  }

  /** The keys read, in SCAN order (those gone meanwhile left out). */
  result(): ScannedKey[] {
    const result: ScannedKey[] = [];
    for (const s of this.out) if (s !== undefined) result.push(s);
    return result;
  }

  private setError(i: number, err: Error): void {
    this.out[i] = { key: this.keys[i]!, error: err };
  }

  private setOtherType(i: number, type: string): void {
    this.otherTypes++;
    this.out[i] = { key: this.keys[i]!, value: { kind: 'other-type', type }, pttlMs: this.pttls[i]! };
  }

  /** What GETRANGE gave: the value, or a reason to read again. */
  private ranged(i: number, data: Buffer): void {
    if (data.length === 0) this.needGet.push(i);
    else if (data.length >= this.s.cap) {
      this.needLength.push(i);
      this.heads.set(i, data);
    } else this.out[i] = { key: this.keys[i]!, value: { kind: 'string', value: data }, pttlMs: this.pttls[i]! };
  }

  /**
   * Per key: [PTTL, GET] under the prefix; elsewhere [GETRANGE] or [TYPE], with PTTL in front only
   * where the class depends on it (ttlWanted: phpredis lock names). Each command costs the client
   * about as much as the server, so a key of another application gets one.
   */
  private async readFirst(): Promise<void> {
    const { keys, full, askType } = this;
    const { capEnd, ttlWanted } = this.s;
    const mget = this.s.mget;
    const withTtl = keys.map((k, i) => full[i]! || ttlWanted(k));
    const prefixed: number[] = [];
    if (mget) for (let i = 0; i < this.n; i++) if (full[i]) prefixed.push(i);
    this.viaMget = prefixed.length > 0;
    // Per key, in one closure: PTTL where the class depends on it, then the value: none here for a
    // prefix key read by the MGET below, GET for one that is not, TYPE or GETRANGE for any other.
    const items = keys.map((key, i) => ({
      key,
      build: (pipe: ChainableCommander) => {
        const arg = asArgument(key);
        if (withTtl[i]) pipe.pttl(arg);
        if (full[i]) {
          if (!mget) pipe.getBuffer(arg);
        } else if (askType) pipe.type(arg);
        else pipe.getrangeBuffer(arg, '0', capEnd);
      },
    }));
    // Not a cluster (runGrouped sends one pipeline, in order): the MGET goes after every PTTL.
    if (prefixed.length > 0)
      items.push({
        key: keys[prefixed[0]!]!,
        build: (pipe: ChainableCommander) => {
          pipe.mgetBuffer(...prefixed.map((i) => asArgument(keys[i]!)));
        },
      });
    const first = await this.client.runGrouped(items);
    if (prefixed.length > 0) this.spreadMget(prefixed, first, first[this.n]?.[0] ?? NO_REPLY);
    for (let i = 0; i < this.n; i++) this.takeFirst(i, first[i] ?? [NO_REPLY], withTtl[i]!);
  }

  /**
   * Gives each key of the MGET its own reply after its PTTL's, as a GET would have: its value, or
   * the MGET's error. A NOPERM (a rule without MGET, as documented before it was added) switches MGET
   * off for the rest of the scan, and this batch's keys are read again (TYPE, then GET for a string).
   */
  private spreadMget(prefixed: number[], first: Reply[][], [err, values]: Reply): void {
    const noPermission = err !== null && NOPERM.test(err.message);
    if (noPermission) this.s.mget = false;
    prefixed.forEach((i, k) => {
      const replies = first[i] ?? (first[i] = [NO_REPLY]);
      if (noPermission) replies.push([null, READ_AGAIN]);
      else replies.push(err !== null ? [err, null] : [null, (values as Array<Buffer | null>)[k] ?? null]);
    });
  }

  /** Sorts the first replies of key `i`: a value, an error, or what to read next. */
  private takeFirst(i: number, replies: Reply[], withTtl: boolean): void {
    const { keys, full, pttls } = this;
    if (withTtl) {
      const [pttlErr, pttl] = replies[0] ?? NO_REPLY;
      if (pttlErr !== null) {
        this.setError(i, pttlErr);
        return;
      }
      const ttl = Number(pttl);
      if (ttl === -2) return; // gone since the SCAN
      pttls[i] = ttl;
    } else {
      pttls[i] = NaN; // not read: the class does not depend on it
    }
    const [err, reply] = replies[withTtl ? 1 : 0] ?? NO_REPLY;
    if (!full[i]) this.others++;
    if (err !== null) {
      if (WRONGTYPE.test(err.message)) this.needType.push(i);
      else this.setError(i, err);
    } else if (full[i]) {
      if (reply === READ_AGAIN) this.needType.push(i);
      else if (reply !== null) this.out[i] = { key: keys[i]!, value: { kind: 'string', value: reply as Buffer }, pttlMs: pttls[i]! };
      // GET nil: deleted since the PTTL. MGET nil: deleted, or another type: TYPE tells.
      else if (this.viaMget) this.needType.push(i);
    } else if (this.askType) {
      if (reply === 'string') this.needRange.push(i);
      else if (reply !== 'none') this.setOtherType(i, String(reply));
    } else {
      this.ranged(i, reply as Buffer);
    }
  }

  /** GETRANGE of the keys TYPE found to be strings. */
  private async readRanges(): Promise<void> {
    const { keys } = this;
    const got = await this.client.runGrouped(
      this.needRange.map((i) => ({
        key: keys[i]!,
        build: (pipe: ChainableCommander) => {
          pipe.getrangeBuffer(keys[i]!, '0', this.s.capEnd);
        },
      })),
    );
    this.needRange.forEach((i, k) => {
      const [err, data] = got[k]?.[0] ?? NO_REPLY;
      if (err === null) this.ranged(i, data as Buffer);
      else if (WRONGTYPE.test(err.message))
        this.needType.push(i); // replaced by another type meanwhile
      else this.setError(i, err);
    });
  }

  /** TYPE of the keys that are not strings. */
  private async readTypes(): Promise<void> {
    const { keys } = this;
    const types = await this.client.runGrouped(
      this.needType.map((i) => ({
        key: keys[i]!,
        build: (pipe: ChainableCommander) => {
          pipe.type(keys[i]!);
        },
      })),
    );
    this.needType.forEach((i, k) => {
      const [err, type] = types[k]?.[0] ?? NO_REPLY;
      if (err !== null) this.setError(i, err);
      else if (type === 'string')
        this.needGet.push(i); // replaced by a string meanwhile: read it again
      else if (type !== 'none') this.setOtherType(i, String(type));
    });
  }

  /** STRLEN of the values longer than the cap: read whole, or reported as large. */
  private async readLengths(): Promise<void> {
    const { keys } = this;
    const strlens = await this.client.runGrouped(
      this.needLength.map((i) => ({
        key: keys[i]!,
        build: (pipe: ChainableCommander) => {
          pipe.strlen(keys[i]!);
        },
      })),
    );
    this.needLength.forEach((i, k) => {
      const [err, length] = strlens[k]?.[0] ?? NO_REPLY;
      if (err !== null) {
        // Replaced by another type since the first read: reported as what it is now.
        if (WRONGTYPE.test(err.message)) this.setOtherType(i, 'unknown');
        else this.setError(i, err);
        return;
      }
      const len = Number(length);
      if (len === 0) return; // deleted meanwhile (STRLEN of a missing key is 0)
      this.lengths[i] = len;
      const head = this.heads.get(i);
      if (len <= this.s.maxValueBytes) this.needGet.push(i);
      // A long value that begins like a PHP session is read whole (one at a time by readValues'
      // groups), so a plaintext session is not let through for its size.
      else if (len <= this.s.sessionLikeMaxBytes && head !== undefined && headLooksLikeSession(head)) this.needGet.push(i);
      else this.out[i] = { key: keys[i]!, value: { kind: 'large-string', length: len }, pttlMs: this.pttls[i]! };
    });
    this.heads.clear();
  }

  /** GET in groups of at most groupBytes (by STRLEN, or the cap for a value read again). */
  private async readValues(): Promise<void> {
    const { keys, needGet, lengths } = this;
    const { cap, groupBytes } = this.s;
    for (let start = 0; start < needGet.length;) {
      let size = 0;
      let end = start;
      while (end < needGet.length && (end === start || size + (lengths[needGet[end]!] || cap) <= groupBytes))
        size += lengths[needGet[end++]!] || cap;
      const group = needGet.slice(start, end);
      const got = await this.client.runGrouped(
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
          if (WRONGTYPE.test(err.message)) this.setOtherType(i, 'unknown');
          else this.setError(i, err);
        } else if (value !== null) {
          this.out[i] = { key: keys[i]!, value: { kind: 'string', value: value as Buffer }, pttlMs: this.pttls[i]! };
        }
        // nil: deleted since the first read
      });
      start = end;
    }
  }
}

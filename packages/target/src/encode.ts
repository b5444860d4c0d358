/**
 * The guarded-write script's call, encoded ahead of time as a RESP command (the Redis
 * serialization protocol, https://redis.io/docs/latest/develop/reference/protocol-spec/): an array
 * of bulk strings `EVALSHA <sha1> <numkeys> <keys..> <tombstones..> <values..> <ttls..>`.
 *
 * apply's worker threads encode each group of sessions straight into the buffer they hand to the
 * main thread (the envelope sealed in place, its key name bound as associated data from the bytes
 * just written), so the main thread sends those bytes as they are (EncodedCommand) instead of
 * passing several arguments per session through ioredis's command serializer, which copied every
 * value and dominated the main thread's profile. No ioredis here: this module runs in workers.
 *
 * Groups follow the same limits as writeBatchGuarded: WRITE_GROUP_SESSIONS sessions and
 * WRITE_GROUP_BYTES value bytes at most (one larger session goes alone).
 */
import { createHash } from 'node:crypto';
import { GUARDED_WRITE_LUA } from './script.ts';

/** SHA-1 of GUARDED_WRITE_LUA, as EVALSHA names it (https://redis.io/docs/latest/commands/evalsha/). */
export const GUARDED_WRITE_SHA1 = createHash('sha1').update(GUARDED_WRITE_LUA).digest('hex');

/** Sessions per script call at most (a single node or Sentinel). Redis runs a call alone: 128 sessions of 1 KiB take well under a millisecond. */
export const WRITE_GROUP_SESSIONS = 128;
/** Value bytes per script call at most (a larger session goes alone): keeps each call's arguments and run time small. */
export const WRITE_GROUP_BYTES = 4 * 1024 * 1024;

/** One session of a group to encode. */
export interface EncodableSession {
  /** Key name and tombstone name, as bytes. */
  key: Uint8Array;
  tombstone: Uint8Array;
  /** Length of the value (the envelope) that `writeValue` writes. */
  valueLength: number;
  /**
   * Writes the value at `offset` of `out`; `keyAt` is where the session's key name was just
   * written in `out` (the envelope binds it).
   */
  writeValue(out: Buffer, offset: number, keyAt: number): void;
  /** TTL in milliseconds, a positive integer. */
  ttlMs: number;
}

/** Where a session's parts landed in the encoded command (absolute offsets in `out`). */
export interface EncodedSessionPositions {
  key: number;
  tombstone: number;
  value: number;
}

const CRLF = 2;
/** Decimal digits of a non-negative integer (exact up to 2^53). */
function digits(n: number): number {
  let count = 1;
  for (let limit = 10; n >= limit; limit *= 10) count++;
  return count;
}
const bulkSize = (length: number): number => 1 + digits(length) + CRLF + length + CRLF;

/** The fixed bulk strings after the array header: `$7 EVALSHA`, `$40 <sha1>`, each with its CRLFs. */
const EVALSHA_HEAD = Buffer.from(`$7\r\nEVALSHA\r\n$40\r\n${GUARDED_WRITE_SHA1}\r\n`, 'latin1');

/** Writes a non-negative integer (at most 2^53) in ASCII decimal at `p`; returns the end offset. */
function writeUint(out: Buffer, p: number, n: number): number {
  const end = p + digits(n);
  for (let i = end - 1; i >= p; i--) {
    const d = n % 10;
    out[i] = 0x30 + d;
    n = (n - d) / 10; // exact: n - d is a multiple of 10
  }
  return end;
}

/** CRLF at `p`; returns the offset after it. */
function crlf(out: Buffer, p: number): number {
  out[p] = 0x0d;
  out[p + 1] = 0x0a;
  return p + 2;
}

/** A bulk string's header `$<length>` CRLF at `p`; returns where its bytes go. */
function bulkHeader(out: Buffer, p: number, length: number): number {
  out[p] = 0x24; // $
  return crlf(out, writeUint(out, p + 1, length));
}

/**
 * The grouping rule: whether a session whose value has `length` bytes starts a new call after a
 * call of `count` sessions with `bytes` value bytes.
 */
export function startsNewGroup(count: number, bytes: number, length: number): boolean {
  return count > 0 && (count >= WRITE_GROUP_SESSIONS || bytes + length > WRITE_GROUP_BYTES);
}

/**
 * Splits sessions (by their value lengths) into consecutive groups within the limits (startsNewGroup).
 * @returns the number of sessions of each group, in order
 */
export function groupSizes(valueLengths: readonly number[]): number[] {
  const sizes: number[] = [];
  let count = 0;
  let bytes = 0;
  for (const length of valueLengths) {
    if (startsNewGroup(count, bytes, length)) {
      sizes.push(count);
      count = 0;
      bytes = 0;
    }
    count++;
    bytes += length;
  }
  if (count > 0) sizes.push(count);
  return sizes;
}

/** Bytes encodeGuardedWrite writes for these sessions. */
export function encodedGuardedWriteSize(sessions: readonly EncodableSession[]): number {
  const n = sessions.length;
  let size = 1 + digits(3 + 4 * n) + CRLF + bulkSize(7) + bulkSize(40) + bulkSize(digits(2 * n));
  for (const s of sessions)
    size += bulkSize(s.key.length) + bulkSize(s.tombstone.length) + bulkSize(s.valueLength) + bulkSize(digits(s.ttlMs));
  return size;
}

/**
 * Encodes one call of the guarded-write script for `sessions` into `out` at `at`.
 * @returns the end offset and where each session's key, tombstone and value are
 * @throws RangeError for an empty group, a TTL that is not a positive integer, or a buffer too small
 */
export function encodeGuardedWrite(
  out: Buffer,
  at: number,
  sessions: readonly EncodableSession[],
): { end: number; positions: EncodedSessionPositions[] } {
  const n = sessions.length;
  if (n === 0) throw new RangeError('a guarded write needs at least one session');
  for (const s of sessions)
    if (!Number.isInteger(s.ttlMs) || s.ttlMs <= 0) throw new RangeError('TTL must be a positive integer of milliseconds');
  if (at + encodedGuardedWriteSize(sessions) > out.length) throw new RangeError('the output buffer is too small for the command');
  // Byte by byte (ASCII digits, CRLF, the fixed head copied): a Buffer.write of a template string per
  // short piece, seven a session, cost more than the bytes it wrote (docs/performance.md, "Tenth session").
  let p = at;
  out[p++] = 0x2a; // *
  p = crlf(out, writeUint(out, p, 3 + 4 * n));
  out.set(EVALSHA_HEAD, p);
  p += EVALSHA_HEAD.length;
  p = crlf(out, writeUint(out, bulkHeader(out, p, digits(2 * n)), 2 * n));
  const positions = new Array<EncodedSessionPositions>(n);
  for (let i = 0; i < n; i++) {
    const key = sessions[i]!.key;
    p = bulkHeader(out, p, key.length);
    positions[i] = { key: p, tombstone: 0, value: 0 };
    out.set(key, p);
    p = crlf(out, p + key.length);
  }
  for (let i = 0; i < n; i++) {
    const tombstone = sessions[i]!.tombstone;
    p = bulkHeader(out, p, tombstone.length);
    positions[i]!.tombstone = p;
    out.set(tombstone, p);
    p = crlf(out, p + tombstone.length);
  }
  for (let i = 0; i < n; i++) {
    const s = sessions[i]!;
    const position = positions[i]!;
    p = bulkHeader(out, p, s.valueLength);
    position.value = p;
    s.writeValue(out, p, position.key);
    p = crlf(out, p + s.valueLength);
  }
  for (let i = 0; i < n; i++) {
    const ttl = sessions[i]!.ttlMs;
    p = crlf(out, writeUint(out, bulkHeader(out, p, digits(ttl)), ttl));
  }
  return { end: p, positions };
}

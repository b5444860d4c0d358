/**
 * The one session-lifecycle policy (packages/common/src/lifecycle.ts), as tables: live or expired,
 * newer in Redis (against a source TTL and against a file's mtime), a file newer than the Redis copy,
 * destroyed after the file, and the mtime of a restored file. apply, purge, verify and rollback use
 * these functions and nothing else for these rules.
 */
import { describe, expect, it } from 'vitest';
import {
  NEWER_MARGIN_MS,
  fileMtimeForRedisCopy,
  isDestroyedAfterFile,
  isExpired,
  isFileNewerThanRedis,
  isNewerInRedis,
  isRedisNewerThanFile,
  lastWriteMs,
  remainingTtlSeconds,
} from '../src/index.ts';

const GC = 1440; // seconds
const NOW = 1_700_000_000_000; // ms
const S = 1000;

describe("live or expired (whole seconds, as PHP's files GC)", () => {
  const table: Array<[string, number, boolean, number]> = [
    // what, file mtime (ms), expired?, remaining TTL (s)
    ['written now', NOW, false, GC],
    ['one second of life left', NOW - (GC - 1) * S, false, 1],
    ['exactly gc_maxlifetime old', NOW - GC * S, true, 0],
    ['older than gc_maxlifetime', NOW - (GC + 60) * S, true, -60],
    ['fractions of a second are ignored', NOW - GC * S + 999, true, 0],
  ];
  for (const [what, mtimeMs, expired, ttl] of table) {
    it(what, () => {
      expect(isExpired(mtimeMs, GC, NOW)).toBe(expired);
      expect(remainingTtlSeconds(mtimeMs / 1000, GC, NOW / 1000)).toBe(ttl);
    });
  }
});

describe('newer in Redis', () => {
  const gc = GC * S;
  const table: Array<[string, number, number, boolean]> = [
    // what, Redis PTTL (ms), source TTL (ms), newer?
    ['written by the handler after the copy', gc - 5 * S, gc - 60 * S, true],
    ['older than the source copy', gc - 60 * S, gc - 10 * S, false],
    ["the same write (apply's own copy)", gc - 10 * S, gc - 10 * S, false],
    ['just inside the margin', gc - 10 * S + NEWER_MARGIN_MS - 1, gc - 10 * S, false],
    ['exactly the margin later', gc - 10 * S + NEWER_MARGIN_MS, gc - 10 * S, true],
    ['no TTL is never newer', -1, 1000, false],
  ];
  for (const [what, pttl, sourceTtl, newer] of table) {
    it(`${what} (apply, verify)`, () => expect(isNewerInRedis(pttl, sourceTtl)).toBe(newer));
    it(`${what} (purge, against the file's mtime)`, () => {
      // The source TTL of a file is mtime + gc_maxlifetime - now: the same verdict from the mtime.
      const mtimeMs = NOW + sourceTtl - gc;
      expect(isRedisNewerThanFile(pttl, mtimeMs, GC, NOW)).toBe(newer);
    });
  }
  it('the inferred last write of a value is now + PTTL - gc_maxlifetime', () => {
    expect(lastWriteMs(gc, GC, NOW)).toBe(NOW);
    expect(lastWriteMs(gc - 30 * S, GC, NOW)).toBe(NOW - 30 * S);
  });
});

describe('a file newer than the Redis copy (rollback keeps it)', () => {
  const table: Array<[string, number, boolean]> = [
    // what, file mtime minus the Redis copy's time (ms), file newer?
    ['written the same second', 0, false],
    ['within the margin', NEWER_MARGIN_MS, false],
    ['just past the margin', NEWER_MARGIN_MS + 1, true],
    ['older than the copy', -60 * S, false],
  ];
  for (const [what, delta, newer] of table) it(what, () => expect(isFileNewerThanRedis(NOW + delta, NOW)).toBe(newer));
});

describe('destroyed after the file (tombstone)', () => {
  const gc = GC * S;
  const table: Array<[string, number, number, boolean]> = [
    // what, tombstone PTTL (ms), file mtime (ms), destroyed after the file?
    ['destroyed 10 s ago, file 30 s old', gc - 10 * S, NOW - 30 * S, true],
    ['file rewritten after the destroy', gc - 30 * S, NOW - 10 * S, false],
    ['no tombstone', -2, NOW - 30 * S, false],
    ['tombstone without TTL is not trusted', -1, NOW - 30 * S, false],
  ];
  for (const [what, tombPttl, mtimeMs, destroyed] of table)
    it(what, () => expect(isDestroyedAfterFile(tombPttl, mtimeMs, GC, NOW)).toBe(destroyed));
});

describe('the mtime of a file restored from Redis', () => {
  const gc = GC * S;
  const table: Array<[string, number, number]> = [
    // what, Redis PTTL (ms), mtime (ms)
    ['written 100 s ago', gc - 100 * S, NOW - 100 * S],
    ['written now', gc, NOW],
    ['a TTL longer than gc_maxlifetime is never in the future', gc + 60 * S, NOW],
    ['no TTL: as written now', -1, NOW],
  ];
  for (const [what, pttl, mtime] of table) it(what, () => expect(fileMtimeForRedisCopy(pttl, GC, NOW)).toBe(mtime));
});

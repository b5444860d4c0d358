/**
 * writeBatchGuarded against a real redis-server: the agreed ordering rule (a tombstone wins, then
 * SET PX NX), every outcome, binary values (test/fixtures/cases/BUG-24), EVAL fallback after SCRIPT FLUSH
 * (what a restarted server looks like), and failures reported per command, never thrown (BUG-25).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/servers.ts';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { readBackPresence, tombstoneKeyFor, writeBatchGuarded } from '../src/index.ts';

const connect = (url: string) => RedisConnection.open(specFromUrl(url, {}, 'target', { env: {} }));

let redis: RedisServer;
beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => { await redis.stop(); });

const P = 'g:';
const key = (c: string) => `${P}{${c.repeat(64)}}`;

describe('tombstoneKeyFor', () => {
  it('names <prefix>destroyed:{<hash>} (key layout 2: same hash tag as the session)', () => {
    expect(tombstoneKeyFor(P, key('a'))).toBe(`g:destroyed:{${'a'.repeat(64)}}`);
    expect(() => tombstoneKeyFor('other:', key('a'))).toThrow(RangeError);
  });
});

describe('writeBatchGuarded', () => {
  it('writes, leaves existing keys and tombstoned sessions alone, reports other types', async () => {
    const client = await connect(redis.url);
    try {
      const binary = Buffer.from([0x53, 0x4d, 0x01, 0xff, 0x00, 0xc3, 0x28, 0x80]);
      await redis.client.set(key('b'), 'older-or-newer', 'EX', 100);
      await redis.client.set(tombstoneKeyFor(P, key('c')), '1', 'EX', 100);
      await redis.client.rpush(key('d'), 'x');
      const out = await writeBatchGuarded(client, P, [
        { key: key('a'), value: binary, ttlMs: 123_456 },
        { key: key('b'), value: binary, ttlMs: 1000 },
        { key: key('c'), value: binary, ttlMs: 1000 },
        { key: key('d'), value: binary, ttlMs: 1000 },
      ]);
      expect(out.map((o) => o.status)).toEqual(['written', 'exists', 'destroyed', 'wrong-type']);
      expect((out[1] as { existing: Buffer }).existing.toString()).toBe('older-or-newer');
      expect((await redis.client.getBuffer(key('a')))!.equals(binary)).toBe(true);
      const pttl = await redis.client.pttl(key('a'));
      expect(pttl).toBeGreaterThan(100_000);
      expect(pttl).toBeLessThanOrEqual(123_456);
      expect(await redis.client.get(key('b'))).toBe('older-or-newer');
      expect(await redis.client.exists(key('c'))).toBe(0);

      // A restarted server has no scripts: EVALSHA fails with NOSCRIPT and the script is sent again.
      await redis.client.script('FLUSH');
      const again = await writeBatchGuarded(client, P, [{ key: key('e'), value: binary, ttlMs: 5000 }]);
      expect(again).toEqual([{ status: 'written' }]);

      // The read-back: present, gone on purpose (tombstone), missing.
      expect(await readBackPresence(client, P, [key('a'), key('c'), key('9')])).toEqual(['present', 'destroyed', 'missing']);

      await expect(writeBatchGuarded(client, P, [{ key: key('f'), value: binary, ttlMs: 0 }])).rejects.toThrow(RangeError);
      await expect(writeBatchGuarded(client, P, [{ key: key('f'), value: binary, ttlMs: 1.5 }])).rejects.toThrow(RangeError);
    } finally {
      client.close();
    }
  });

  it('a server that is gone gives failed outcomes, not an exception', async () => {
    const other = await startRedis();
    const client = await connect(other.url);
    try {
      await other.stop();
      const out = await writeBatchGuarded(client, P, [{ key: key('a'), value: Buffer.from('x'), ttlMs: 1000 }]);
      expect(out).toHaveLength(1);
      expect(out[0]!.status).toBe('failed');
      // A lost connection is worth retrying: classified transient.
      expect(out[0]!.status === 'failed' && out[0]!.classified.kind).toBe('transient');
    } finally {
      client.close();
    }
  });
});

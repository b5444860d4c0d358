/**
 * writeBatchGuarded against a real redis-server: the agreed ordering rule (a tombstone wins, then
 * SET PX NX), every outcome, binary values (test/fixtures/cases/BUG-24), EVAL fallback after SCRIPT FLUSH
 * (what a restarted server looks like), and failures reported per command, never thrown (BUG-25).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/servers.ts';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import {
  GUARDED_WRITE_LUA,
  GUARDED_WRITE_SHA1,
  WRITE_GROUP_BYTES,
  WRITE_GROUP_SESSIONS,
  encodeGuardedWrite,
  encodedGuardedWriteSize,
  groupSizes,
  readBackPresence,
  tombstoneKeyFor,
  writeBatchGuarded,
  writeEncodedGuarded,
  type EncodableSession,
} from '../src/index.ts';
import { createHash } from 'node:crypto';

const connect = (url: string) => RedisConnection.open(specFromUrl(url, {}, 'target', { env: {} }));

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

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

  it('many sessions per script call: every outcome lands on its own session, in order', async () => {
    const client = await connect(redis.url);
    try {
      await redis.client.flushdb();
      const n = WRITE_GROUP_SESSIONS * 2 + 37;
      const hex = (i: number) => i.toString(16).padStart(64, '0');
      const k = (i: number) => `${P}{${hex(i)}}`;
      // Every 7th session destroyed, every 11th already there, every 13th another type.
      for (let i = 0; i < n; i++) {
        if (i % 7 === 3) await redis.client.set(tombstoneKeyFor(P, k(i)), '1', 'EX', 100);
        else if (i % 11 === 5) await redis.client.set(k(i), `old-${i}`, 'PX', 50_000 + i);
        else if (i % 13 === 6) await redis.client.sadd(k(i), 'x');
      }
      // One value larger than a call's byte budget goes alone; the rest still share calls.
      const big = Buffer.alloc(WRITE_GROUP_BYTES + 1, 7);
      const value = (i: number) => (i === 100 ? big : Buffer.from(`v-${i}`));
      const out = await writeBatchGuarded(
        client,
        P,
        Array.from({ length: n }, (_, i) => ({ key: i % 2 === 0 ? k(i) : Buffer.from(k(i)), value: value(i), ttlMs: 60_000 + i })),
      );
      expect(out).toHaveLength(n);
      for (let i = 0; i < n; i++) {
        const o = out[i]!;
        if (i % 7 === 3) expect(o.status).toBe('destroyed');
        else if (i % 11 === 5) {
          expect(o).toMatchObject({ status: 'exists' });
          expect((o as { existing: Buffer }).existing.toString()).toBe(`old-${i}`);
          expect((o as { pttlMs: number }).pttlMs).toBeGreaterThan(40_000);
        } else if (i % 13 === 6) expect(o.status).toBe('wrong-type');
        else {
          expect(o.status).toBe('written');
          expect((await redis.client.getBuffer(k(i)))!.equals(value(i))).toBe(true);
          const pttl = await redis.client.pttl(k(i));
          expect(pttl).toBeGreaterThan(50_000);
          expect(pttl).toBeLessThanOrEqual(60_000 + i);
        }
      }
      // Read-back in groups: one group fully present, the others with gaps, checked one by one.
      const keys = Array.from({ length: 2500 }, (_, i) => k(i));
      const presence = await readBackPresence(client, P, keys);
      presence.forEach((p, i) => {
        if (i >= n) expect(p).toBe('missing');
        else if (i % 7 === 3) expect(p).toBe('destroyed');
        else expect(p).toBe('present');
      });
      const all = Array.from({ length: 30 }, (_, i) => Buffer.from(k(i * 7 + 1)));
      expect(await readBackPresence(client, P, all)).toEqual(all.map(() => 'present'));
    } finally {
      client.close();
    }
  });

  it('an error of one SET (here NOPERM) fails that session only; a tombstone still wins', async () => {
    await redis.client.flushdb();
    await redis.client.call('ACL', 'SETUSER', 'noset', 'on', '>pw-noset', 'resetkeys', `~${P}*`, '+@all', '-set');
    const client = await RedisConnection.open(
      specFromUrl(redis.url.replace('redis://', 'redis://noset@'), {}, 'target', { env: { SESSION_MIGRATE_REDIS_PASSWORD: 'pw-noset' } }),
    );
    try {
      await redis.client.set(tombstoneKeyFor(P, key('c')), '1', 'EX', 100);
      const out = await writeBatchGuarded(client, P, [
        { key: key('a'), value: Buffer.from('x'), ttlMs: 1000 },
        { key: key('c'), value: Buffer.from('x'), ttlMs: 1000 },
      ]);
      expect(out[0]).toMatchObject({ status: 'failed', classified: { kind: 'permanent', code: 'NOPERM' } });
      expect(out[1]).toEqual({ status: 'destroyed' });
      expect(await redis.client.exists(key('a'))).toBe(0);
    } finally {
      client.close();
      await redis.client.call('ACL', 'DELUSER', 'noset');
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

describe('encoded calls (encode.ts) and writeEncodedGuarded', () => {
  const encodable = (k: string, value: Buffer, ttlMs: number): EncodableSession => ({
    key: Buffer.from(k),
    tombstone: Buffer.from(tombstoneKeyFor(P, k)),
    valueLength: value.length,
    ttlMs,
    writeValue: (out, offset, keyAt) => {
      // The key name is where the encoder says it wrote it.
      expect(out.subarray(keyAt, keyAt + k.length).toString()).toBe(k);
      value.copy(out, offset);
    },
  });

  it('groups within the limits, sizes exactly, refuses what Redis would refuse', () => {
    expect(GUARDED_WRITE_SHA1).toBe(createHash('sha1').update(GUARDED_WRITE_LUA).digest('hex'));
    expect(groupSizes(Array(WRITE_GROUP_SESSIONS * 2 + 1).fill(10))).toEqual([WRITE_GROUP_SESSIONS, WRITE_GROUP_SESSIONS, 1]);
    expect(groupSizes([1, WRITE_GROUP_BYTES, 1, 1])).toEqual([1, 1, 2]);
    expect(groupSizes([])).toEqual([]);
    const sessions = [encodable(key('a'), Buffer.from('x'.repeat(1000)), 1000), encodable(key('b'), Buffer.alloc(0), 99_999_999)];
    const out = Buffer.alloc(encodedGuardedWriteSize(sessions) + 4, 0x2e);
    const { end, positions } = encodeGuardedWrite(out, 2, sessions);
    expect(end).toBe(2 + encodedGuardedWriteSize(sessions));
    expect(
      out
        .subarray(2, end)
        .toString('latin1')
        .startsWith(`*11\r\n$7\r\nEVALSHA\r\n$40\r\n${GUARDED_WRITE_SHA1}\r\n$1\r\n4\r\n$${key('a').length}\r\n${key('a')}\r\n`),
    ).toBe(true);
    expect(out.subarray(2, end).toString('latin1').endsWith('$4\r\n1000\r\n$8\r\n99999999\r\n')).toBe(true);
    expect(out.subarray(positions[1]!.tombstone, positions[1]!.tombstone + 12).toString()).toBe(`${P}destroyed:`);
    expect(out[1]).toBe(0x2e);
    expect(out[end]).toBe(0x2e);
    expect(() => encodeGuardedWrite(out, 0, [])).toThrow(RangeError);
    expect(() => encodeGuardedWrite(out, 0, [encodable(key('a'), Buffer.from('x'), 0)])).toThrow(RangeError);
    expect(() => encodeGuardedWrite(Buffer.alloc(10), 0, sessions)).toThrow(RangeError);
  });

  it('writes the same bytes as the RESP spec spelled out with strings, at every digit-count boundary', () => {
    // The reference: the command as text (https://redis.io/docs/latest/develop/reference/protocol-spec/).
    const bulk = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
    const reference = (list: Array<{ k: string; value: Buffer; ttlMs: number }>): Buffer =>
      Buffer.concat([
        Buffer.from(`*${3 + 4 * list.length}\r\n`),
        ...[Buffer.from('EVALSHA'), Buffer.from(GUARDED_WRITE_SHA1), Buffer.from(String(2 * list.length))].map(bulk),
        ...list.map((s) => bulk(Buffer.from(s.k))),
        ...list.map((s) => bulk(Buffer.from(tombstoneKeyFor(P, s.k)))),
        ...list.map((s) => bulk(s.value)),
        ...list.map((s) => bulk(Buffer.from(String(s.ttlMs)))),
      ]);
    const ttls = [1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 86_400_000, 999_999_999_999, 2 ** 53 - 1];
    const lengths = [0, 1, 9, 10, 99, 100, 999, 1000, 10_000];
    for (const n of [1, 2, 3, 4, 9, 10, 11, 49, 50, 128]) {
      const list = Array.from({ length: n }, (_, i) => ({
        k: key('0123456789abcdef'[i % 16]!),
        value: Buffer.alloc(lengths[i % lengths.length]!, i),
        ttlMs: ttls[(i * 7 + n) % ttls.length]!,
      }));
      const out = Buffer.alloc(encodedGuardedWriteSize(list.map((s) => encodable(s.k, s.value, s.ttlMs))) + 6, 0x2e);
      const { end } = encodeGuardedWrite(
        out,
        3,
        list.map((s) => encodable(s.k, s.value, s.ttlMs)),
      );
      expect(out.subarray(3, end).equals(reference(list))).toBe(true);
      expect(out.subarray(0, 3).toString()).toBe('...');
      expect(out.subarray(end).toString()).toBe('...');
    }
  });

  it('sends encoded calls as they are: every outcome, in order; after NOSCRIPT once more as EVAL', async () => {
    const client = await connect(redis.url);
    try {
      await redis.client.flushdb();
      await redis.client.set(key('b'), 'older', 'EX', 100);
      await redis.client.set(tombstoneKeyFor(P, key('c')), '1', 'EX', 100);
      await redis.client.rpush(key('d'), 'x');
      const binary = Buffer.from([0x53, 0x4d, 0x01, 0xff, 0x00, 0x0d, 0x0a, 0x24]);
      const encode = (list: EncodableSession[]): Buffer => {
        const out = Buffer.alloc(encodedGuardedWriteSize(list));
        encodeGuardedWrite(out, 0, list);
        return out;
      };
      const first = encode([encodable(key('a'), binary, 123_456), encodable(key('b'), binary, 1000)]);
      const second = encode([
        encodable(key('c'), binary, 1000),
        encodable(key('d'), binary, 1000),
        encodable(key('e'), Buffer.alloc(0), 5000),
      ]);
      // A server that never saw the script (as after a restart or a failover): NOSCRIPT, then EVAL.
      await redis.client.script('FLUSH');
      const out = await writeEncodedGuarded(client, [first, second], [2, 3]);
      expect(out.map((o) => o.status)).toEqual(['written', 'exists', 'destroyed', 'wrong-type', 'written']);
      expect((out[1] as { existing: Buffer }).existing.toString()).toBe('older');
      expect((await redis.client.getBuffer(key('a')))!.equals(binary)).toBe(true);
      expect(await redis.client.pttl(key('a'))).toBeGreaterThan(100_000);
      expect((await redis.client.getBuffer(key('e')))!.length).toBe(0);
      // EVAL cached the script: EVALSHA works now. Everything exists, nothing is overwritten.
      expect(await redis.client.script('EXISTS', GUARDED_WRITE_SHA1)).toEqual([1]);
      const again = await writeEncodedGuarded(client, [first], [2]);
      expect(again.map((o) => o.status)).toEqual(['exists', 'exists']);
      expect(await redis.client.get(key('b'))).toBe('older');
    } finally {
      client.close();
    }
  });

  it('a server that is gone gives failed outcomes for every session of every call', async () => {
    const other = await startRedis();
    const client = await connect(other.url);
    try {
      await other.stop();
      const out = Buffer.alloc(1000);
      const { end } = encodeGuardedWrite(out, 0, [
        encodable(key('a'), Buffer.from('x'), 1000),
        encodable(key('b'), Buffer.from('y'), 1000),
      ]);
      const outcomes = await writeEncodedGuarded(client, [out.subarray(0, end)], [2]);
      expect(outcomes.map((o) => o.status === 'failed' && o.classified.kind)).toEqual(['transient', 'transient']);
    } finally {
      client.close();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/servers.ts';
import { connectTarget, parseTargetUrl, scanPatternForPrefix, writeBatchGuarded } from '../src/index.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
  await redis.client.config('SET', 'requirepass', 'pa,ss+w&rd');
});
afterAll(async () => { await redis.stop(); });

describe('parseTargetUrl', () => {
  it('strips credentials from the printable URL', () => {
    const t = parseTargetUrl('redis://user:s%3Acret@10.1.2.3:6380/4', {});
    expect(t.description).toEqual({ url: 'redis://10.1.2.3:6380/4', host: '10.1.2.3', port: 6380, db: 4, tls: false, auth: true });
    expect(t.password).toBe('s:cret');
    expect(t.username).toBe('user');
    expect(parseTargetUrl('rediss://[::1]/', {}).description).toMatchObject({ url: 'rediss://[::1]:6379/0', host: '::1', tls: true, auth: false });
  });
  it('takes the password from SESSION_MIGRATE_REDIS_PASSWORD', () => {
    expect(parseTargetUrl('redis://h', { SESSION_MIGRATE_REDIS_PASSWORD: 'x' }).password).toBe('x');
  });
  it('rejects other schemes and bad databases in one line', () => {
    expect(() => parseTargetUrl('http://h', {})).toThrow(/unsupported target scheme/);
    expect(() => parseTargetUrl('redis://h/x', {})).toThrow(/not a number/);
    expect(() => parseTargetUrl('nonsense', {})).toThrow(/not a valid URL/);
  });
  it('escapes glob characters of a prefix for SCAN MATCH', () => {
    expect(scanPatternForPrefix('a*b?[c]\\:')).toBe('a\\*b\\?\\[c\\]\\\\:*');
  });
});

describe('connectTarget and writeBatchGuarded against a real redis-server with AUTH', () => {
  it('names a missing password without printing any', async () => {
    await expect(connectTarget(parseTargetUrl(`redis://127.0.0.1:${redis.port}/0`, {}))).rejects.toThrow(/NOAUTH.*SESSION_MIGRATE_REDIS_PASSWORD/);
    await expect(connectTarget(parseTargetUrl(`redis://127.0.0.1:${redis.port}/0`, { SESSION_MIGRATE_REDIS_PASSWORD: 'wrong-secret' }))).rejects.toThrow(/^(?!.*wrong-secret)/);
  });

  // Session key names of layout 2 (the guarded write names each one's tombstone).
  const K_NEW = `t:{${'1'.repeat(64)}}`;
  const K_OLD = `t:{${'2'.repeat(64)}}`;
  const K_LIST = `t:{${'3'.repeat(64)}}`;

  it('writes Buffers byte for byte, never clobbers, and reports every failed command (BUG-24, BUG-25)', async () => {
    const client = await connectTarget(parseTargetUrl(`redis://127.0.0.1:${redis.port}/0`, { SESSION_MIGRATE_REDIS_PASSWORD: 'pa,ss+w&rd' }));
    try {
      const binary = Buffer.from(Array.from({ length: 65 }, (_, i) => 0xa0 + (i % 0x60)));
      await client.rpush(K_LIST, 'x');
      await client.set(K_OLD, 'previous');
      await client.set(K_OLD, 'previous', 'EX', 50);
      const out = await writeBatchGuarded(client, 't:', [
        { key: K_NEW, value: binary, ttlMs: 100_000 },
        { key: K_OLD, value: binary, ttlMs: 100_000 },
        { key: K_LIST, value: binary, ttlMs: 100_000 },
      ]);
      expect(out[0]).toEqual({ status: 'written' });
      expect(out[1]).toMatchObject({ status: 'exists', existing: Buffer.from('previous') });
      // The PTTL of the value already there comes back with it (50 s set above, not the 100 s asked for).
      expect(out[1]!.status === 'exists' && out[1]!.pttlMs).toBeGreaterThan(40_000);
      expect(out[1]!.status === 'exists' && out[1]!.pttlMs).toBeLessThanOrEqual(50_000);
      expect(out[2]).toEqual({ status: 'wrong-type' });
      const back = await client.getBuffer(K_NEW);
      expect(back?.length).toBe(65);
      expect(back?.equals(binary)).toBe(true);
      expect(await client.ttl(K_NEW)).toBeGreaterThan(90);
      expect(await client.get(K_OLD)).toBe('previous');
      await expect(writeBatchGuarded(client, 't:', [{ key: K_NEW, value: binary, ttlMs: 0 }])).rejects.toThrow(/TTL must be a positive integer/);
    } finally {
      client.disconnect();
    }
  });
});

describe('database index', () => {
  it('refuses a database the server does not have instead of writing to db 0', async () => {
    const plain = await startRedis();
    try {
      await expect(connectTarget(parseTargetUrl(`redis://127.0.0.1:${plain.port}/99`, {}))).rejects.toThrow(/refused SELECT 99/);
      const c = await connectTarget(parseTargetUrl(`redis://127.0.0.1:${plain.port}/3`, {}));
      await c.set('in-db-3', '1');
      c.disconnect();
      await plain.client.select(3);
      expect(await plain.client.exists('in-db-3')).toBe(1);
    } finally {
      await plain.stop();
    }
  });

  it('times out on a server that accepts connections but never answers', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const blackhole = createServer((s) => { sockets.push(s); });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', () => r()));
    const port = (blackhole.address() as import('node:net').AddressInfo).port;
    try {
      await expect(connectTarget(parseTargetUrl(`redis://127.0.0.1:${port}/0`, {}), { commandTimeoutMs: 300 })).rejects.toThrow(/cannot connect to Redis/);
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
    }
  });
});

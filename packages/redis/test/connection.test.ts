import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { startRedis, type RedisServer } from '../../../test/support/servers.ts';
import { startCluster, type ClusterTopology } from '../../../test/support/redis-topologies.ts';
import { writeBatchGuarded } from '../../target/src/index.ts';
import {
  RedisConnection,
  hashSlot,
  mayHaveRun,
  parseRedisUrl,
  scanPatternForPrefix,
  specFromUrl,
  credentialsFor,
  redactUrl,
} from '../src/index.ts';

const connectTarget = (url: string, env: NodeJS.ProcessEnv = {}, options: { commandTimeoutMs?: number } = {}) =>
  RedisConnection.open(specFromUrl(url, {}, 'target', { env }), options);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
  await redis.client.config('SET', 'requirepass', 'pa,ss+w&rd');
});
afterAll(async () => {
  await redis.stop();
});

describe('parseRedisUrl', () => {
  it('strips credentials from the printable URL and keeps the user name', () => {
    const a = parseRedisUrl('redis://user:s%3Acret@10.1.2.3:6380/4');
    expect(a).toMatchObject({
      kind: 'node',
      url: 'redis://10.1.2.3:6380/4',
      host: '10.1.2.3',
      port: 6380,
      db: 4,
      tls: false,
      username: 'user',
      urlPassword: 's:cret',
    });
    expect(parseRedisUrl('rediss://[::1]/')).toMatchObject({ url: 'rediss://[::1]:6379/0', host: '::1', tls: true });
    expect(redactUrl('redis://u:secret@h:1/0')).toBe('redis://u:***@h:1/0');
  });
  it('parses Sentinel URLs: several sentinels, master name, database', () => {
    expect(parseRedisUrl('redis+sentinel://10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2')).toMatchObject({
      kind: 'sentinel',
      tls: false,
      masterName: 'mymaster',
      db: 2,
      url: 'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,[::1]:26380/mymaster/2',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
    });
    expect(parseRedisUrl('rediss+sentinel://app@s1:5000/m')).toMatchObject({ tls: true, username: 'app', db: 0 });
    expect(() => parseRedisUrl('redis+sentinel://s1:5000')).toThrow(/names no Sentinel master/);
  });
  it('refuses a query string or fragment instead of ignoring it (never printing it: it may hold a password)', () => {
    for (const url of [
      'redis://127.0.0.1:6379/0?prefix=myapp:',
      'redis://h/0?db=3',
      'redis://h?tls=true',
      'rediss://h/0?password=s3cret',
      'redis://h/0#frag',
      'redis://h/0?',
      'redis+sentinel://s1:26379/m/0?prefix=x',
    ]) {
      let message = '';
      try {
        parseRedisUrl(url);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, url).toMatch(/query string|not understood/);
      expect(message, url).not.toContain('s3cret');
      expect(message, url).not.toContain('myapp');
    }
    expect(parseRedisUrl('redis://h:1/3').db).toBe(3);
  });
  it('takes passwords from the environment, by role', () => {
    const a = parseRedisUrl('redis://app@h');
    expect(credentialsFor(a, 'target', { SESSION_MIGRATE_REDIS_PASSWORD: 'x', SESSION_MIGRATE_SENTINEL_PASSWORD: 's' })).toEqual({
      username: 'app',
      password: 'x',
      sentinelPassword: 's',
      passwordInUrl: false,
    });
    expect(credentialsFor(a, 'source', { SESSION_MIGRATE_REDIS_PASSWORD: 'x', SESSION_MIGRATE_SOURCE_REDIS_PASSWORD: 'y' }).password).toBe(
      'y',
    );
    expect(credentialsFor(parseRedisUrl('redis://:p@h'), 'target', {})).toMatchObject({ password: 'p', passwordInUrl: true });
  });
  it('takes the sentinel ACL user from the environment, by role; a user without a password is kept (sent AUTH <user> "")', () => {
    const sentinel = parseRedisUrl('redis+sentinel://h:26379/mymaster');
    expect(
      credentialsFor(sentinel, 'target', { SESSION_MIGRATE_SENTINEL_USERNAME: 'su', SESSION_MIGRATE_SENTINEL_PASSWORD: 'sp' }),
    ).toEqual({ sentinelUsername: 'su', sentinelPassword: 'sp', passwordInUrl: false });
    expect(
      credentialsFor(sentinel, 'source', {
        SESSION_MIGRATE_SENTINEL_USERNAME: 'target-user',
        SESSION_MIGRATE_SOURCE_SENTINEL_USERNAME: 'su2',
        SESSION_MIGRATE_SOURCE_SENTINEL_PASSWORD: 'sp2',
      }),
    ).toMatchObject({ sentinelUsername: 'su2', sentinelPassword: 'sp2' });
    // an empty variable counts as unset
    expect(credentialsFor(sentinel, 'target', { SESSION_MIGRATE_SENTINEL_USERNAME: '' })).toEqual({ passwordInUrl: false });
    expect(credentialsFor(sentinel, 'target', { SESSION_MIGRATE_SENTINEL_USERNAME: 'su' })).toEqual({
      sentinelUsername: 'su',
      passwordInUrl: false,
    });
    // ... and is remembered as empty, for the wording of a refused login ("is empty", not "is not set")
    expect(credentialsFor(sentinel, 'target', { SESSION_MIGRATE_SENTINEL_USERNAME: 'su', SESSION_MIGRATE_SENTINEL_PASSWORD: '' })).toEqual({
      sentinelUsername: 'su',
      sentinelPasswordEmpty: true,
      passwordInUrl: false,
    });
    // the target's sentinel password is not the source's
    expect(
      credentialsFor(sentinel, 'source', { SESSION_MIGRATE_SOURCE_SENTINEL_USERNAME: 'su', SESSION_MIGRATE_SENTINEL_PASSWORD: 'sp' }),
    ).toEqual({ sentinelUsername: 'su', passwordInUrl: false });
    // a node URL does not use the sentinels: the variable is not an error there
    expect(credentialsFor(parseRedisUrl('redis://h'), 'target', { SESSION_MIGRATE_SENTINEL_USERNAME: 'su' })).toEqual({
      sentinelUsername: 'su',
      passwordInUrl: false,
    });
  });
  it('rejects other schemes and bad databases in one line', () => {
    expect(() => parseRedisUrl('http://h')).toThrow(/unsupported target scheme "http:"/);
    expect(() => parseRedisUrl('memcached://h', 'source')).toThrow(/unsupported source scheme/);
    expect(() => parseRedisUrl('redis://h/x')).toThrow(/not a number/);
    expect(() => parseRedisUrl('nonsense')).toThrow(/not a URL/);
  });
  it('escapes glob characters of a prefix for SCAN MATCH', () => {
    expect(scanPatternForPrefix('a*b?[c]\\:')).toBe('a\\*b\\?\\[c\\]\\\\:*');
  });
});

describe('connectTarget and writeBatchGuarded against a real redis-server with AUTH', () => {
  it('names a missing password without printing any', async () => {
    await expect(connectTarget(`redis://127.0.0.1:${redis.port}/0`)).rejects.toThrow(/NOAUTH.*SESSION_MIGRATE_REDIS_PASSWORD/);
    await expect(connectTarget(`redis://127.0.0.1:${redis.port}/0`, { SESSION_MIGRATE_REDIS_PASSWORD: 'wrong-secret' })).rejects.toThrow(
      /^(?!.*wrong-secret)/,
    );
  });

  // Session key names of layout 2 (the guarded write names each one's tombstone).
  const K_NEW = `t:{${'1'.repeat(64)}}`;
  const K_OLD = `t:{${'2'.repeat(64)}}`;
  const K_LIST = `t:{${'3'.repeat(64)}}`;

  it('writes Buffers byte for byte, never clobbers, and reports every failed command (BUG-24, BUG-25)', async () => {
    const conn = await connectTarget(`redis://127.0.0.1:${redis.port}/0`, { SESSION_MIGRATE_REDIS_PASSWORD: 'pa,ss+w&rd' });
    const client = conn.client;
    try {
      const binary = Buffer.from(Array.from({ length: 65 }, (_, i) => 0xa0 + (i % 0x60)));
      await client.rpush(K_LIST, 'x');
      await client.set(K_OLD, 'previous');
      await client.set(K_OLD, 'previous', 'EX', 50);
      const out = await writeBatchGuarded(conn, 't:', [
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
      await expect(writeBatchGuarded(conn, 't:', [{ key: K_NEW, value: binary, ttlMs: 0 }])).rejects.toThrow(
        /TTL must be a positive integer/,
      );
    } finally {
      conn.close();
    }
  });
});

describe('database index', () => {
  it('refuses a database the server does not have instead of writing to db 0', async () => {
    const plain = await startRedis();
    try {
      await expect(connectTarget(`redis://127.0.0.1:${plain.port}/99`)).rejects.toThrow(/refused SELECT 99/);
      const c = await connectTarget(`redis://127.0.0.1:${plain.port}/3`);
      await c.client.set('in-db-3', '1');
      c.close();
      await plain.client.select(3);
      expect(await plain.client.exists('in-db-3')).toBe(1);
    } finally {
      await plain.stop();
    }
  });

  it('times out on a server that accepts connections but never answers', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const blackhole = createServer((s) => {
      sockets.push(s);
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', () => r()));
    const port = (blackhole.address() as import('node:net').AddressInfo).port;
    try {
      await expect(connectTarget(`redis://127.0.0.1:${port}/0`, {}, { commandTimeoutMs: 300 })).rejects.toThrow(/cannot connect to Redis/);
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
    }
  });
});

describe('scan', () => {
  it('throws when the connection closes during the scan (a restarted server would skip keys under the old cursor), instead of ending as if complete', async () => {
    const conn = await connectTarget(`redis://127.0.0.1:${redis.port}/15`, { SESSION_MIGRATE_REDIS_PASSWORD: 'pa,ss+w&rd' });
    try {
      const pipe = conn.client.pipeline();
      for (let i = 0; i < 3000; i++) pipe.set(`scan-test:${i}`, 'x');
      await pipe.exec();
      // Undisturbed: every key, no error.
      const seen = new Set<string>();
      for await (const keys of conn.scan('scan-test:', 100)) for (const k of keys) seen.add(k.toString());
      expect(seen.size).toBe(3000);
      // The connection killed after the first batch: ioredis reconnects and the cursor would go on.
      const interrupted = (async () => {
        let batches = 0;
        for await (const _keys of conn.scan('scan-test:', 100)) {
          if (++batches === 1) await redis.client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        }
        return batches;
      })();
      await expect(interrupted).rejects.toThrow(
        /^the connection closed during SCAN of 127\.0\.0\.1:\d+ \(a restart or fail-over\?\): keys may have been skipped; run again$/,
      );
      expect(conn.classify(await interrupted.catch((e: unknown) => e))).toMatchObject({ kind: 'transient', code: 'CONNECTION' });
    } finally {
      await conn.client.flushdb();
      await conn.close();
    }
  });
});

describe('keepConnected', () => {
  const pendingTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('close() right after an end that armed the reconnect timer cancels it: nothing keeps the process, the client is never re-created', async () => {
    const conn = await RedisConnection.open(
      specFromUrl(`redis://127.0.0.1:${redis.port}/0`, {}, 'target', { env: { SESSION_MIGRATE_REDIS_PASSWORD: 'pa,ss+w&rd' } }),
      { keepReconnecting: true },
    );
    const client = conn.client;
    const before = pendingTimers();
    // The client ended for good, as ioredis ends it when a reconnect races with a disconnect: status
    // `end`, one 'end' event, on which keepConnected arms its reconnect timer (listeners run in order,
    // so it is armed once this one runs).
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.disconnect();
    await ended;
    expect(pendingTimers()).toBe(before + 1);
    conn.close();
    expect(pendingTimers()).toBe(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(client.status).toBe('end');
  });
});

describe('a server that closes the connection at every reply', () => {
  // Redis closes a client whose pending replies exceed client-output-buffer-limit (its `normal`
  // class: here 1 KiB, a GET of 64 KiB exceeds it; src/networking.c, "scheduled to be closed ASAP
  // for overcoming of output buffer limits"). ioredis reconnects and sends the unanswered command
  // again, and again: before failRepeatedResends it looped until the 30 s command timeout.
  let server: RedisServer;
  const BIG = 'x'.repeat(64 * 1024);
  beforeAll(async () => {
    server = await startRedis();
    await server.client.set('big', BIG);
    await server.client.config('SET', 'client-output-buffer-limit', 'normal 1024 1024 0');
  });
  afterAll(async () => {
    await server.stop();
  });

  for (const keepReconnecting of [false, true]) {
    it(`fails the command after maxRetriesPerRequest re-sends, in well under the command timeout${keepReconnecting ? ' (keepReconnecting, as apply opens it)' : ''}`, async () => {
      const conn = await RedisConnection.open(specFromUrl(`redis://127.0.0.1:${server.port}/0`, {}, 'target', { env: {} }), {
        keepReconnecting,
      });
      try {
        const started = performance.now();
        const err = await conn.client.get('big').then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        const ms = performance.now() - started;
        expect(err?.message).toMatch(/^Redis closed the connection 3 times while the same commands waited for their replies$/);
        expect(ms).toBeLessThan(5000);
        expect(conn.classify(err)).toMatchObject({
          kind: 'permanent',
          code: 'CONNECTION',
          fix: expect.stringMatching(/overcoming of output buffer limits.*client-output-buffer-limit/),
        });
        // Not an answer of Redis: a write failed so may have run.
        expect(mayHaveRun(err)).toBe(true);
        // The connection itself goes on: a command whose reply fits is answered.
        expect(await conn.client.ping()).toBe('PONG');
      } finally {
        conn.close();
      }
    }, 20_000);
  }

  it('a write whose reply is lost so is reported as one that may have run, and it did run', async () => {
    const conn = await RedisConnection.open(specFromUrl(`redis://127.0.0.1:${server.port}/0`, {}, 'target', { env: {} }), {});
    try {
      await conn.client.del('written');
      // SET, then a reply over the limit: Redis ran the write and closed the connection.
      const err = await conn.client.eval("redis.call('SET', KEYS[1], '1') return redis.call('GET', KEYS[2])", 2, 'written', 'big').then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/^Redis closed the connection/);
      expect(mayHaveRun(err)).toBe(true);
      expect(await server.client.get('written')).toBe('1');
    } finally {
      conn.close();
    }
  }, 20_000);

  it('a connection closed once under a pending command: the command is still sent again and answered', async () => {
    const conn = await RedisConnection.open(specFromUrl(`redis://127.0.0.1:${server.port}/0`, {}, 'target', { env: {} }), {
      keepReconnecting: true,
    });
    try {
      // One close under a pending command (CLIENT KILL of this very connection from another), then answered.
      const id = await conn.client.client('ID');
      const blocked = conn.client.blpop('never-pushed', 1);
      await server.client.client('KILL', 'ID', String(id));
      await expect(blocked).resolves.toBeNull();
    } finally {
      conn.close();
    }
  }, 20_000);
});

/** What keeps a process alive: timers (reconnect, command timeouts, ioredis's disconnectTimeout) and sockets. */
const alive = (): string[] =>
  process
    .getActiveResourcesInfo()
    .filter((r) => /Timeout|TCP|TLS|Pipe/.test(r))
    .sort();
/**
 * What alive() lists now beyond `before` (each kind counted): what the test's client left. Not a
 * comparison with `before`: a timer of an earlier test that fires meanwhile is not the client's (CI
 * saw a `Timeout` in `before` gone by the end).
 */
const leftSince = (before: readonly string[]): string[] => {
  const rest = [...before];
  return alive().filter((r) => {
    const at = rest.indexOf(r);
    if (at < 0) return true;
    rest.splice(at, 1);
    return false;
  });
};
/** `p`, or 'still pending' after `ms`. */
const settledWithin = <T>(p: Promise<T>, ms: number): Promise<T | 'still pending'> =>
  Promise.race([p, new Promise<'still pending'>((r) => setTimeout(() => r('still pending'), ms).unref())]);

describe('close() of a client waiting to reconnect', () => {
  for (const keepReconnecting of [false, true]) {
    it(`fails the command waiting for its reply and the one queued for the reconnect at once, ends the client, and leaves no timer nor socket${keepReconnecting ? ' (keepReconnecting, as apply opens it)' : ''}`, async () => {
      const before = alive();
      const conn = await RedisConnection.open(
        specFromUrl(`redis://127.0.0.1:${redis.port}/0`, {}, 'target', { env: { SESSION_MIGRATE_REDIS_PASSWORD: 'pa,ss+w&rd' } }),
        { keepReconnecting },
      );
      const client = conn.client;
      const id = await client.client('ID');
      const reconnecting = new Promise((r) => client.once('reconnecting', r));
      // Waiting for its reply when the connection closes: ioredis keeps it to send again after the reconnect.
      const inFlight = client.blpop('never-pushed', 0);
      await redis.client.client('KILL', 'ID', String(id));
      await reconnecting;
      expect(client.status).toBe('reconnecting');
      // Sent while reconnecting: queued for the reconnect (ioredis's offline queue).
      const queued = client.get('any');
      conn.close();
      const results = await settledWithin(Promise.allSettled([inFlight, queued]), 1000);
      expect(results).toEqual([
        { status: 'rejected', reason: expect.objectContaining({ message: 'Connection is closed.' }) },
        { status: 'rejected', reason: expect.objectContaining({ message: 'Connection is closed.' }) },
      ]);
      expect(client.status).toBe('end');
      // A command sent after the close fails at once rather than waiting in a queue.
      await expect(settledWithin(client.get('any'), 1000)).rejects.toThrow('Connection is closed.');
      await new Promise((r) => setImmediate(r));
      expect(leftSince(before)).toEqual([]);
    }, 10_000);
  }
});

describe('close() of a Redis Cluster connection waiting to reconnect', () => {
  let cluster: ClusterTopology | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  for (const keepReconnecting of [false, true]) {
    it(`every master killed: close() ends the Cluster client at once, fails the command it queued, and leaves no timer nor socket${keepReconnecting ? ' (keepReconnecting, as apply opens it)' : ''}`, async () => {
      const c = await startCluster();
      cluster = c;
      // The nodes' own admin clients would reconnect to the killed nodes: closed first, for good.
      await Promise.all(c.nodes.map((n) => n.admin.quit()));
      await Promise.all(c.nodes.map((n) => (n.admin.status === 'end' ? undefined : new Promise((r) => n.admin.once('end', r)))));
      const before = alive();
      const conn = await RedisConnection.open(specFromUrl(c.url, {}, 'target'), { keepReconnecting });
      const client = conn.client as Cluster;
      expect(client).toBeInstanceOf(Cluster);
      const reconnecting = new Promise((r) => client.once('reconnecting', r));
      // The whole cluster goes away (a crash of every master, a network cut): its node pool drains
      // and ioredis's Cluster waits to connect again, with no node.
      for (const n of c.nodes) process.kill(n.pid, 'SIGKILL');
      await reconnecting;
      expect(client.status).toBe('reconnecting');
      expect(client.nodes('all')).toEqual([]);
      // Sent while reconnecting: queued for the reconnect (the Cluster's offline queue; no timer).
      const queued = client.get('any');
      conn.close();
      const results = await settledWithin(Promise.allSettled([queued]), 1000);
      // ioredis's error for a cluster it gave up on (handleCloseEvent): a lost connection, to the classifier.
      expect(results).toEqual([{ status: 'rejected', reason: expect.objectContaining({ message: 'None of startup nodes is available' }) }]);
      expect(conn.classify((results as PromiseRejectedResult[])[0]!.reason).code).toBe('CONNECTION');
      expect(client.status).toBe('end');
      // A command sent after the close fails at once rather than waiting in a queue.
      await expect(settledWithin(client.get('any'), 1000)).rejects.toThrow();
      await new Promise((r) => setImmediate(r));
      expect(leftSince(before)).toEqual([]);
    }, 30_000);
  }
});

describe("close() of a Redis Cluster connection with a command in ioredis's retry queue", () => {
  let cluster: ClusterTopology | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('a master killed under a command: close() fails the command waiting to be sent again at once, and leaves no timer nor socket', async () => {
    const c = await startCluster();
    cluster = c;
    const victim = c.nodes[1]!;
    // A key of the victim's slots, found while the admin clients still answer.
    let key = '';
    for (let i = 0; key === ''; i++) if ((await c.ownerOf(hashSlot(`k${i}`))) === victim) key = `k${i}`;
    // The nodes' own admin clients would reconnect to the killed node: closed first, for good.
    await Promise.all(c.nodes.map((n) => n.admin.quit()));
    await Promise.all(c.nodes.map((n) => (n.admin.status === 'end' ? undefined : new Promise((r) => n.admin.once('end', r)))));
    const before = alive();
    const conn = await RedisConnection.open(specFromUrl(c.url, {}, 'target'), { keepReconnecting: true });
    const client = conn.client as Cluster;
    // Waiting for its reply on the victim (BLPOP of a key nobody pushes) when the victim dies.
    const inFlight = client.blpop(key, 0);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(victim.pid, 'SIGKILL');
    // ioredis's Cluster, still ready (two masters answer), puts it in its retry queue for
    // retryDelayOnFailover (200 ms): a timer to refresh the slot map and send it again.
    const retryTimers = (client as unknown as { delayQueue: { timeouts: Record<string, unknown> } }).delayQueue.timeouts;
    for (const t0 = performance.now(); !retryTimers.failover && performance.now() - t0 < 2000;) await new Promise((r) => setTimeout(r, 1));
    expect(retryTimers.failover, 'the command is in the failover retry queue').toBeTruthy();
    conn.close();
    // Failed before the retry timer would have fired (it was sent again into the closed client, where
    // it waited for its 30 s command timeout, which kept the process running that long).
    const results = await settledWithin(Promise.allSettled([inFlight]), 100);
    expect(results).toEqual([{ status: 'rejected', reason: expect.any(Error) }]);
    expect(conn.classify((results as PromiseRejectedResult[])[0]!.reason).code).toBe('CONNECTION');
    // The live masters' sockets close once they answered the client's FIN (a few ms); nothing else is left.
    for (const t0 = performance.now(); leftSince(before).length > 0 && performance.now() - t0 < 1000;)
      await new Promise((r) => setTimeout(r, 5).unref());
    expect(leftSince(before)).toEqual([]);
  }, 30_000);
});

/**
 * `apply --dry-run` looks each session up in Redis, read only, and reports what the real apply would
 * do: its counts equal those of the apply that follows it, and Redis is byte for byte as it was
 * (every key's value and TTL). One database holds each case the guarded write decides
 * (packages/target/src/script.ts): no key (would be written), the same session (already present), a
 * newer one written by the handler, a tombstone (logged out), a value that does not open and a key of
 * another type (conflicts). On a single node and on a Redis Cluster (lookups routed by hash slot).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { tombstoneKeyFor, type EnvelopeCodec } from '@session-migrate/envelope';
import { cli, newKey, planArgs, writeSessionFiles } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';
import { startCluster, type ClusterTopology } from './support/redis-topologies.ts';

const PREFIX = 'smsess:';
const GC = 1440;

interface Counts {
  migrated: number;
  alreadyPresent: number;
  newerInRedis: number;
  destroyed: number;
  conflicts: number;
  failed: number;
}

const countsOf = (stdout: string): Counts => {
  const c = (JSON.parse(stdout) as { sessions: { counts: Counts & Record<string, unknown> } }).sessions.counts;
  return {
    migrated: c.migrated,
    alreadyPresent: c.alreadyPresent,
    newerInRedis: c.newerInRedis,
    destroyed: c.destroyed,
    conflicts: c.conflicts,
    failed: c.failed,
  };
};

/** Every key under the prefix with its DUMP and whether it has a TTL (a node's own keys: SCAN is per node). */
async function snapshot(nodes: Redis[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const node of nodes) {
    for (const key of await node.keys(`${PREFIX}*`)) {
      const dump = await node.dumpBuffer(key);
      const pttl = await node.pttl(key);
      out.set(key, `${dump?.toString('hex')} ttl:${pttl > 0 ? 'yes' : String(pttl)}`);
    }
  }
  return out;
}

/**
 * Applies the plan, then turns the six sessions into the six cases; returns the expected counts.
 * Session 0: key deleted (would be written); 1: left (already present); 2: a newer session with a full
 * TTL, as the handler writes it; 3: deleted with a tombstone; 4: a value that does not open; 5: a list.
 */
async function makeCases(client: Redis | Cluster, codec: EnvelopeCodec, ids: string[], planFile: string): Promise<Counts> {
  const first = cli(['apply', '--plan', planFile, '--json']);
  expect(first.status, first.stderr).toBe(0);
  const key = (i: number): string => codec.keyName(PREFIX, ids[i]!);
  await client.del(key(0));
  await client.set(key(2), codec.seal(key(2), Buffer.from('user|s:5:"newer";')), 'EX', GC);
  await client.del(key(3));
  await client.set(tombstoneKeyFor(PREFIX, key(3)), '1', 'EX', GC);
  await client.set(key(4), 'not an envelope', 'EX', 60);
  await client.del(key(5));
  await client.rpush(key(5), 'x');
  return { migrated: 1, alreadyPresent: 1, newerInRedis: 1, destroyed: 1, conflicts: 2, failed: 0 };
}

/** The dry run's counts, Redis unchanged by it, and the real apply's counts after it. */
async function expectDryRunPredicts(nodes: Redis[], planFile: string, expected: Counts): Promise<void> {
  const before = await snapshot(nodes);
  const dry = cli(['apply', '--plan', planFile, '--dry-run', '--json']);
  expect(countsOf(dry.stdout)).toEqual(expected);
  expect(dry.status, dry.stderr).toBe(1); // conflicts: the real apply exits 1 too
  expect(await snapshot(nodes)).toEqual(before);
  const text = cli(['apply', '--plan', planFile, '--dry-run']);
  expect(text.stdout).toContain('session-migrate apply (dry run: nothing written; each session looked up in Redis, read only)');
  expect(text.stdout).toMatch(/CONFLICT +smsess:\S+ .*: key holds another Redis type/);
  const real = cli(['apply', '--plan', planFile, '--json']);
  expect(real.status).toBe(1);
  expect(countsOf(real.stdout)).toEqual(expected);
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sm-apply-dry-'));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A directory for a key file, outside the session directories. */
const keyDir = (name: string): string => {
  const d = join(root, `key-${name}`);
  mkdirSync(d, { recursive: true });
  return d;
};

describe('apply --dry-run on a single node', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('counts what apply then does, and changes nothing in Redis', async () => {
    const dir = join(root, 'single');
    const ids = writeSessionFiles(dir, 'dry', 6);
    const { keyFile, codec } = await newKey(keyDir('single'));
    const planFile = join(root, 'single.plan.json');
    const p = cli(
      planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'single-art') }, '--gc-maxlifetime', String(GC)),
    );
    expect(p.status, p.stderr).toBe(0);
    const expected = await makeCases(redis.client, codec, ids, planFile);
    await expectDryRunPredicts([redis.client], planFile, expected);
    // The session the real apply wrote is the file's.
    const written = await redis.client.getBuffer(codec.keyName(PREFIX, ids[0]!));
    const opened = codec.open(codec.keyName(PREFIX, ids[0]!), written!);
    expect(opened.ok && opened.plaintext.equals(readFileSync(join(dir, `sess_${ids[0]!}`)))).toBe(true);
  });

  it('a user whose rule lacks a lookup command: one line naming NOPERM, exit 2, nothing written', async () => {
    const dir = join(root, 'acl');
    writeSessionFiles(dir, 'acl', 2);
    const { keyFile } = await newKey(keyDir('acl'));
    const planFile = join(root, 'acl.plan.json');
    await redis.client.call('ACL', 'SETUSER', 'dry', 'on', '>pw-dry', '~*', '+@all');
    const env = { SESSION_MIGRATE_REDIS_PASSWORD: 'pw-dry' };
    const target = redis.url.replace('redis://', 'redis://dry@');
    const p = cli(planArgs({ dir, target, keyFile, planFile, artifactsDir: join(root, 'acl-art') }), env);
    expect(p.status, p.stderr).toBe(0);
    await redis.client.call('ACL', 'SETUSER', 'dry', '-exists');
    const before = await redis.client.dbsize();
    const r = cli(['apply', '--plan', planFile, '--dry-run'], env);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/NOPERM/);
    expect(r.stderr + r.stdout).not.toContain('pw-dry');
    expect(await redis.client.dbsize()).toBe(before);
  });
});

describe('apply --dry-run on a Redis Cluster', () => {
  let cluster: ClusterTopology;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('counts what apply then does, and changes nothing in Redis', async () => {
    const dir = join(root, 'cluster');
    const ids = writeSessionFiles(dir, 'dcl', 6);
    const { keyFile, codec } = await newKey(keyDir('cluster'));
    const planFile = join(root, 'cluster.plan.json');
    const p = cli(
      planArgs({ dir, target: cluster.url, keyFile, planFile, artifactsDir: join(root, 'cluster-art') }, '--gc-maxlifetime', String(GC)),
    );
    expect(p.status, p.stderr).toBe(0);
    const expected = await makeCases(cluster.client(), codec, ids, planFile);
    await expectDryRunPredicts(
      cluster.nodes.map((n) => n.admin),
      planFile,
      expected,
    );
  });
});

/**
 * RedisConnection.scan on a Redis Cluster with replicas while a master fails over (a replica promoted
 * by CLUSTER FAILOVER, or a master killed with SIGKILL). The resharding checks (CLUSTER SLOTS by node
 * ID, CLUSTER NODES migrating/importing entries) must not take a failover for a resharding, and the scan
 * must never end as if complete while keys are missing: complete with every key, or a clear transient
 * error (run again). docs/redis.md, "On every topology".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { startCluster, type ClusterTopology, type RedisNode } from './support/redis-topologies.ts';

let cluster: ClusterTopology;
const dead = new Set<RedisNode>();
/** A seed URL of a node still running. */
const liveUrl = (): string => cluster.nodes.find((n) => !dead.has(n))!.url;
const keys = Array.from({ length: 3000 }, (_, i) => `fo:${i}`);
beforeAll(async () => {
  cluster = await startCluster({ replicas: 1 });
  const c = cluster.client();
  for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((k) => c.set(k, 'x')));
  // Every replica has every key of its master before a failover is forced.
  for (const m of cluster.masters) await m.admin.call('WAIT', '1', '5000');
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/** Scans `fo:` and calls `during` once, when the scan reaches its `atNode`-th master (1-based). */
async function scanWith(
  conn: RedisConnection,
  atNode: number,
  during: (scanned: RedisNode[], current: RedisNode) => Promise<void>,
): Promise<{ seen: Set<string>; outcome: Error | undefined; nodes: string[] }> {
  const nodes: string[] = [];
  const seen = new Set<string>();
  let done = false;
  const byName = (name: string): RedisNode => cluster.nodes.find((n) => name.endsWith(`:${n.port}`))!;
  const outcome = await (async () => {
    for await (const batch of conn.scan('fo:', 50, (n) => nodes.push(n))) {
      for (const k of batch) seen.add(k.toString());
      if (nodes.length === atNode && !done) {
        done = true;
        await during(nodes.slice(0, -1).map(byName), byName(nodes.at(-1)!));
      }
    }
  })().then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  return { seen, outcome, nodes };
}

describe('SCAN of a Redis Cluster during a failover', () => {
  it('CLUSTER FAILOVER of the master being scanned: no false resharding, every key', async () => {
    const conn = await RedisConnection.open(specFromUrl(cluster.url, {}, 'target', { env: {} }));
    try {
      const r = await scanWith(conn, 2, async (_scanned, current) => {
        const replica = (await cluster.roles()).replicasOf.get(current)![0]!;
        await replica.admin.call('CLUSTER', 'FAILOVER');
        await waitRole(replica, 'master');
      });
      expect(r.outcome?.message).toBeUndefined();
      expect(r.seen.size).toBe(keys.length);
    } finally {
      conn.close();
    }
    await cluster.waitForSync();
  }, 30_000);

  for (const at of [1, 2] as const) {
    it(`kill -9 of a master ${at === 1 ? 'not scanned yet' : 'already scanned'}: every key, or a clear transient error; never complete with keys missing`, async () => {
      const conn = await RedisConnection.open(specFromUrl(liveUrl(), {}, 'target', { env: {} }));
      const started = Date.now();
      let victim: RedisNode | undefined;
      try {
        const r = await scanWith(conn, at === 1 ? 1 : 3, async (scanned, current) => {
          const { masters, replicasOf } = await cluster.roles();
          // A master with a live replica, so the cluster can fail over (the first kill left one shard
          // without its replica: killing that shard's master would fail its slots for good).
          const canFailOver = (m: RedisNode) => (replicasOf.get(m) ?? []).some((r) => !dead.has(r));
          victim = at === 1 ? masters.find((m) => m !== current && canFailOver(m))! : scanned.find(canFailOver)!;
          dead.add(victim);
          await victim.kill();
        });
        expect(victim).toBeDefined();
        if (r.outcome === undefined) expect(r.seen.size).toBe(keys.length);
        else {
          expect(r.outcome.message).not.toMatch(/\n/);
          expect(r.outcome.message).toMatch(/run again/);
          expect(conn.classify(r.outcome)).toMatchObject({ kind: 'transient' });
        }
        expect(Date.now() - started).toBeLessThan(10_000);
        if (r.outcome !== undefined)
          expect(r.outcome.message).toBe(
            `the connection closed during SCAN of the Redis Cluster: master 127.0.0.1:${victim!.port} went away (a crash or fail-over?): keys may have been skipped; run again`,
          );
      } finally {
        conn.close();
      }
      // The replica takes over (cluster-node-timeout 3 s): the next run is complete. Until the other
      // nodes flag the victim as failed they still report cluster_state:ok, so that comes first.
      await waitFailed(
        cluster.nodes.find((n) => !dead.has(n))!,
        victim!,
      );
      await cluster.waitForSync(cluster.nodes.filter((n) => !dead.has(n)));
      const again = await RedisConnection.open(specFromUrl(liveUrl(), {}, 'target', { env: {} }));
      try {
        const all = new Set<string>();
        for await (const batch of again.scan('fo:', 500)) for (const k of batch) all.add(k.toString());
        expect(all.size).toBe(keys.length);
      } finally {
        again.close();
      }
    }, 60_000);
  }
});

async function waitRole(node: RedisNode, role: string): Promise<void> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    if ((await node.admin.info('replication')).includes(`role:${role}`)) return;
  }
  throw new Error(`${node.port} did not become ${role}`);
}

/** Waits until `via` flags `node` as failed (`fail`, not `fail?`) in CLUSTER NODES. */
async function waitFailed(via: RedisNode, node: RedisNode): Promise<void> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const line = String(await via.admin.call('CLUSTER', 'NODES'))
      .split('\n')
      .find((l) => l.includes(`:${node.port}@`));
    if (line !== undefined && line.split(' ')[2]!.split(',').includes('fail')) return;
  }
  throw new Error(`${node.port} was not flagged as failed`);
}

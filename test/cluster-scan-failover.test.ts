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

/**
 * Scans `fo:` and calls `during` when the scan reaches a master (after that master's first batch when
 * it has one), at each master until `during` returns true. `counts`: how many times each key was listed.
 */
async function scanWith(
  conn: RedisConnection,
  during: (scanned: RedisNode[], current: RedisNode) => Promise<boolean>,
): Promise<{ seen: Set<string>; counts: Map<string, number>; outcome: Error | undefined; nodes: string[] }> {
  const nodes: string[] = [];
  const counts = new Map<string, number>();
  let done = false;
  let triedAt = 0;
  const byName = (name: string): RedisNode => cluster.nodes.find((n) => name.endsWith(`:${n.port}`))!;
  const outcome = await (async () => {
    for await (const batch of conn.scan('fo:', 50, (n) => nodes.push(n))) {
      for (const k of batch) counts.set(k.toString(), (counts.get(k.toString()) ?? 0) + 1);
      if (!done && triedAt < nodes.length) {
        triedAt = nodes.length;
        done = await during(nodes.slice(0, -1).map(byName), byName(nodes.at(-1)!));
      }
    }
  })().then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  return { seen: new Set(counts.keys()), counts, outcome, nodes };
}

/** Every key of `fo:` listed, each exactly once. */
function expectEachKeyOnce(counts: Map<string, number>): void {
  expect(counts.size).toBe(keys.length);
  expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
}

/** A master with a live replica, so the cluster can fail over (a kill leaves that shard without one). */
async function canFailOver(): Promise<(m: RedisNode) => boolean> {
  const { replicasOf } = await cluster.roles();
  return (m) => (replicasOf.get(m) ?? []).some((r) => !dead.has(r));
}

/**
 * Waits until every live node's CLUSTER NODES gives the same roles among the live nodes (a
 * failover's news reaches each node by gossip, after cluster_state:ok). The scan judges a lost master
 * by that master's own view of its replicas (packages/redis/src/connection.ts replaceable), the test
 * picks its victim from another node's view: a full run failed 'kill -9 of a master not scanned yet'
 * with "no replica can take over its slots" after the first test's CLUSTER FAILOVER, the promoted
 * master not yet listing its new replica.
 */
async function viewsAgree(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = cluster.nodes.filter((n) => !dead.has(n));
    const views = await Promise.all(
      live.map(async (via) => {
        const { masters, replicasOf } = await cluster.roles(via);
        return masters
          .filter((m) => !dead.has(m))
          .map(
            (m) =>
              `${m.port}:${(replicasOf.get(m) ?? [])
                .filter((r) => !dead.has(r))
                .map((r) => r.port)
                .sort()
                .join('/')}`,
          )
          .sort()
          .join(',');
      }),
    );
    if (views.every((v) => v === views[0])) return;
    if (Date.now() > deadline) throw new Error(`the nodes' views of the roles disagree: ${views.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the cluster failed `victim` over, and then checks a new scan lists every key. */
async function afterFailover(victim: RedisNode): Promise<void> {
  // Until the other nodes flag the victim as failed they still report cluster_state:ok, so that comes first.
  await waitFailed(
    cluster.nodes.find((n) => !dead.has(n))!,
    victim,
  );
  await cluster.waitForSync(cluster.nodes.filter((n) => !dead.has(n)));
  await viewsAgree();
  const again = await RedisConnection.open(specFromUrl(liveUrl(), {}, 'target', { env: {} }));
  try {
    const all = new Set<string>();
    for await (const batch of again.scan('fo:', 500)) for (const k of batch) all.add(k.toString());
    expect(all.size).toBe(keys.length);
  } finally {
    again.close();
  }
}

describe('SCAN of a Redis Cluster during a failover', () => {
  it('CLUSTER FAILOVER of the master being scanned: no false resharding, every key', async () => {
    const conn = await RedisConnection.open(specFromUrl(cluster.url, {}, 'target', { env: {} }));
    try {
      const r = await scanWith(conn, async (scanned, current) => {
        if (scanned.length === 0) return false;
        const replica = (await cluster.roles()).replicasOf.get(current)![0]!;
        await replica.admin.call('CLUSTER', 'FAILOVER');
        await waitRole(replica, 'master');
        return true;
      });
      expect(r.outcome?.message).toBeUndefined();
      expect(r.seen.size).toBe(keys.length);
    } finally {
      conn.close();
    }
    await cluster.waitForSync();
    await viewsAgree();
  }, 30_000);

  // A routine failover (kill -9 of a master, its replica promoted by the cluster) must not force a
  // run again: the replica that took over the master's slots is scanned instead (docs/redis.md).
  for (const when of ['not scanned yet', 'already scanned', 'being scanned (mid-node)'] as const) {
    it(`kill -9 of a master ${when}: the replica that took over is scanned, every key listed once`, async () => {
      const conn = await RedisConnection.open(specFromUrl(liveUrl(), {}, 'target', { env: {} }));
      const started = Date.now();
      let victim: RedisNode | undefined;
      try {
        const r = await scanWith(conn, async (scanned, current) => {
          const { masters } = await cluster.roles();
          const ok = await canFailOver();
          victim =
            when === 'not scanned yet'
              ? scanned.length === 0
                ? masters.find((m) => m !== current && ok(m))
                : undefined
              : when === 'already scanned'
                ? scanned.find(ok)
                : ok(current)
                  ? current
                  : undefined;
          if (victim === undefined) return false;
          dead.add(victim);
          await victim.kill();
          return true;
        });
        expect(victim).toBeDefined();
        expect(r.outcome?.message).toBeUndefined();
        expectEachKeyOnce(r.counts);
        // onNode names each node scanned: the replacement of a master lost mid-scan too.
        expect(r.nodes.length).toBe(when === 'being scanned (mid-node)' ? 4 : 3);
        // A master lost before its turn is not scanned at all: the node that took over its slots is.
        if (when === 'not scanned yet') expect(r.nodes).not.toContain(`127.0.0.1:${victim!.port}`);
        // The failover (cluster-node-timeout 3 s, then an election), not the 30 s of a command timeout.
        expect(Date.now() - started).toBeLessThan(15_000);
      } finally {
        conn.close();
      }
      await afterFailover(victim!);
    }, 60_000);
  }

  // Last: it leaves the cluster without the slots of the killed master.
  it('kill -9 of a master no replica can replace (its own was killed): a clear transient error, never complete', async () => {
    const conn = await RedisConnection.open(specFromUrl(liveUrl(), {}, 'target', { env: {} }), { failoverWaitMs: 3000 });
    let victim: RedisNode | undefined;
    const started = Date.now();
    try {
      const r = await scanWith(conn, async (scanned, current) => {
        const { masters } = await cluster.roles();
        const ok = await canFailOver();
        // A live master (CLUSTER NODES still lists a killed one as `master,fail`) without a replica:
        // one not scanned yet, else the one being scanned (at its first batch). Which masters are
        // left without a replica depends on the earlier kills; picking a dead one made this flake.
        const alive = masters.filter((m) => !dead.has(m));
        victim = alive.find((m) => m !== current && !scanned.includes(m) && !ok(m)) ?? (ok(current) ? undefined : current);
        if (victim === undefined) return false;
        dead.add(victim);
        await victim.kill();
        return true;
      });
      expect(victim).toBeDefined();
      expect(r.outcome).toBeDefined();
      expect(r.outcome!.message).toMatch(
        new RegExp(
          `^the connection closed during SCAN of the Redis Cluster: master 127\\.0\\.0\\.1:${victim!.port} went away \\(a crash or fail-over\\?\\) and no replica (can take over its slots|took over its slots within 3 s): keys may have been skipped; run again$`,
        ),
      );
      expect(conn.classify(r.outcome)).toMatchObject({ kind: 'transient' });
      expect(r.seen.size).toBeLessThan(keys.length);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      conn.close();
    }
  }, 30_000);
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

/**
 * RedisConnection.scan on a Redis Cluster with replicas, where a master holds keys of slots it does not
 * serve (a slot move aborted with CLUSTER SETSLOT STABLE after MIGRATE) and is killed (kill -9) while
 * it is scanned: the replica that took over its slots holds the same keys (a replica copies every key,
 * in any slot) and is scanned from cursor 0, so the warning must count each of those keys once, and
 * name the node that holds them now. docs/redis.md, "On every topology".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import calculateSlot from 'cluster-key-slot';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { startCluster, type ClusterTopology, type RedisNode } from './support/redis-topologies.ts';

let cluster: ClusterTopology;
/** Keys in slots their master serves: the keys a client reads, the keys the scan lists. */
const served = Array.from({ length: 300 }, (_, i) => `st:${i}`);
beforeAll(async () => {
  cluster = await startCluster({ replicas: 1 });
  const c = cluster.client();
  await Promise.all(served.map((k) => c.set(k, 'x')));
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('SCAN of a Redis Cluster: a master with stray keys killed mid-scan', () => {
  it('the replica that took over is scanned from cursor 0: each stray key counted once, the warning names that replica', async () => {
    const [src, dst] = cluster.masters as [RedisNode, RedisNode];
    const replacement = (await cluster.roles()).replicasOf.get(dst)![0]!;
    // 4 slots of `src`, 100 keys each, all MIGRATEd to `dst` by a move aborted with SETSLOT STABLE:
    // 400 keys on `dst` (and its replica) in slots it does not serve, most of the keys it holds, so
    // the scan counts some of them before `dst` is killed.
    const slots: number[] = [];
    const strays: string[] = [];
    for (let t = 0; slots.length < 4; t++) {
      const slot = calculateSlot(`{t${t}}`);
      if (slots.includes(slot) || (await cluster.ownerOf(slot)).port !== src.port) continue;
      slots.push(slot);
      strays.push(...Array.from({ length: 100 }, (_, j) => `st:{t${t}}:${j}`));
    }
    const c = cluster.client();
    await Promise.all(strays.map((k) => c.set(k, 'x')));
    for (const slot of slots) {
      const keys = strays.filter((k) => calculateSlot(k) === slot);
      await dst.admin.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', cluster.ids.get(src.port)!);
      await src.admin.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', cluster.ids.get(dst.port)!);
      await src.admin.call('MIGRATE', '127.0.0.1', String(dst.port), '', '0', '5000', 'REPLACE', 'KEYS', ...keys);
      await dst.admin.call('CLUSTER', 'SETSLOT', String(slot), 'STABLE');
      await src.admin.call('CLUSTER', 'SETSLOT', String(slot), 'STABLE');
    }
    // The replica has every stray key before its master is killed.
    expect(await dst.admin.call('WAIT', '1', '5000')).toBe(1);
    expect(Number(await replacement.admin.dbsize())).toBe(Number(await dst.admin.dbsize()));

    const conn = await RedisConnection.open(specFromUrl(src.url, {}, 'target', { env: {} }));
    const warnings: string[] = [];
    conn.onWarning = (w) => warnings.push(w);
    const nodes: string[] = [];
    const seen = new Set<string>();
    let killed = false;
    try {
      const outcome = await (async () => {
        for await (const batch of conn.scan('st:', 10, (n) => nodes.push(n))) {
          for (const k of batch) seen.add(k.toString());
          // dst's first batch listed: it is mid-scan (about 100 served keys, 10 per SCAN).
          if (!killed && nodes.at(-1) === `127.0.0.1:${dst.port}`) {
            killed = true;
            await dst.kill();
          }
        }
      })().then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(killed).toBe(true);
      expect(outcome?.message).toBeUndefined();
      // dst, then the replica that took over its slots.
      expect(nodes).toContain(`127.0.0.1:${replacement.port}`);
      expect([...seen].sort()).toEqual([...served].sort());
      const named = [...slots].sort((a, b) => a - b).join(', ');
      expect(warnings).toEqual([
        `warning: master 127.0.0.1:${replacement.port} holds ${strays.length} keys of slots ${named} that it does not serve (a slot move aborted with CLUSTER SETSLOT STABLE after MIGRATE?): no client can read them, and SCAN left them out; finish the move or MIGRATE them back to the slot's master (redis-cli --cluster check shows the slot map)`,
      ]);
    } finally {
      conn.close();
    }
  }, 60_000);
});

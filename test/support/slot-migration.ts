/**
 * A Redis Cluster slot left mid-migration, the set-up of the tests that make a client follow ASK
 * (test/php-handler-faults.test.ts, test/prod-redis-cluster.test.ts). migrateSlots()
 * (redis-topologies.ts) moves whole slots in one go; this stops halfway, as `redis-cli --cluster
 * reshard` does between its steps (https://redis.io/commands/cluster-setslot/).
 */
import type { ClusterTopology, RedisNode } from './redis-topologies.ts';

/** A slot being moved from `src` to `dst` (another master). */
export interface SlotMigration {
  slot: number;
  /** The master that owned the slot (MIGRATING). */
  src: RedisNode;
  /** The master it moves to (IMPORTING). */
  dst: RedisNode;
  /** `dst`'s cluster node ID. */
  dstId: string;
  /**
   * Ends the move: `CLUSTER SETSLOT slot NODE dstId` on the destination, the source, then every other
   * node (the order of https://redis.io/commands/cluster-setslot/, "Redis Cluster live resharding
   * explained"). Keys still on the source are not moved: MIGRATE them first.
   */
  finish(): Promise<void>;
  /**
   * finish() as `redis-cli` command lines, for a `sh -c` in the background while a synchronous PHP
   * request blocks this process.
   */
  finishCommands(): string[];
}

/**
 * Leaves the slot of `key` mid-migration from its owner to another master: `CLUSTER SETSLOT slot
 * IMPORTING src` on the destination, `CLUSTER SETSLOT slot MIGRATING dst` on the source. With
 * `moveKey`, `key` is then MIGRATEd to the destination, so a command on it gets ASK from the source
 * (Redis cluster spec, "ASK redirection":
 * https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#ask-redirection).
 */
export async function startSlotMigration(
  cluster: ClusterTopology,
  key: string,
  options: { moveKey?: boolean } = {},
): Promise<SlotMigration> {
  const slot = Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', key));
  const src = await cluster.ownerOf(slot);
  const dst = cluster.masters.find((x) => x !== src)!;
  const dstId = cluster.ids.get(dst.port)!;
  await dst.admin.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', cluster.ids.get(src.port)!);
  await src.admin.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', dstId);
  if (options.moveKey === true) await src.admin.call('MIGRATE', '127.0.0.1', String(dst.port), key, '0', '5000');
  const order = [dst, src, ...cluster.nodes.filter((n) => n !== src && n !== dst)];
  return {
    slot,
    src,
    dst,
    dstId,
    async finish() {
      for (const n of order) await n.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', dstId);
    },
    finishCommands: () => order.map((n) => `redis-cli -p ${n.port} CLUSTER SETSLOT ${slot} NODE ${dstId} >/dev/null`),
  };
}

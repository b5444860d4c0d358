/**
 * apply's replicas: how many each master's WAIT waits for, and what apply's report says of the
 * replicas connected now against those the plan recorded (ApplyResult's `confirm`).
 */
import { firstFew } from '@session-migrate/common';
import type { RedisConnection } from '@session-migrate/redis';
import type { Plan } from '../plan.ts';
import { redisFailure, type OnWarning } from './shared.ts';

/** What apply's report says of replicas against the plan (ApplyResult's `confirm`, beside WAIT's settings). */
export interface AgainstPlan {
  /** Masters (`host:port` now) with fewer replicas connected now than at plan. */
  fewerThanPlanned?: Array<{ node: string; planned: number; now: number }>;
  /** Planned masters with replicas (`host:port` at plan) whose shard has no master apply can match now. */
  notCompared?: Array<{ node: string; planned: number }>;
}

/** RedisConnection.clusterMasters' answer. */
export type ClusterMastersNow = Awaited<ReturnType<RedisConnection['clusterMasters']>>;

/**
 * What apply compares against the plan, before the copy starts:
 * - `minReplicas`: the replicas WAIT waits for after each batch, per master (`host:port`, or `*` for
 *   every master when --min-replicas was given); without it, as many as each master has now (INFO
 *   replication; for a cluster plan that keys its masters by node ID, from CLUSTER NODES and the
 *   same INFO replication, one reading per master).
 * - `againstPlan`: masters with fewer replicas now than at plan, and planned masters whose shard it
 *   cannot match now (fewerReplicasThanPlannedInCluster, or fewerReplicasThanPlanned by `host:port`);
 *   nothing when --min-replicas was given.
 * The notCompared warning (notComparedWarning) goes to `onWarning` here, so before the copy starts.
 * @throws UserFacingError (redisFailure, naming apply) when the replicas cannot be read
 */
export async function replicasAgainstPlan(
  minReplicasGiven: number | undefined,
  target: Pick<Plan['target'], 'replicasAtPlan' | 'mastersAtPlan'>,
  client: RedisConnection,
  onWarning: OnWarning,
): Promise<{ minReplicas: Map<string, number>; againstPlan: AgainstPlan }> {
  let minReplicas: Map<string, number>;
  let mastersNow: ClusterMastersNow | undefined;
  try {
    if (minReplicasGiven !== undefined) minReplicas = new Map([['*', minReplicasGiven]]);
    else if (target.mastersAtPlan !== undefined && client.topology === 'cluster') {
      // A plan that keys a cluster's masters by node ID: compare shard by shard, across a failover.
      mastersNow = await client.clusterMasters();
      minReplicas = new Map(mastersNow.map((m) => [m.node, m.replicas]));
    } else minReplicas = await client.replicasPerMaster();
  } catch (err) {
    throw redisFailure(err, client, 'apply');
  }
  const againstPlan =
    mastersNow !== undefined
      ? fewerReplicasThanPlannedInCluster(target, mastersNow)
      : fewerReplicasThanPlanned(target.replicasAtPlan, minReplicasGiven === undefined ? minReplicas : undefined);
  const unchecked = notComparedWarning(againstPlan);
  if (unchecked !== undefined) onWarning(unchecked);
  return { minReplicas, againstPlan };
}

/**
 * Masters with fewer replicas connected now (`now`, replicasPerMaster) than the plan recorded
 * (`planned`), matched by `host:port` (`*`: the one master of a single node or Sentinel; cluster
 * plans made before node IDs were recorded; newer ones: fewerReplicasThanPlannedInCluster); nothing
 * when --min-replicas was given (`now` undefined) or the plan recorded none (made before
 * replicasAtPlan). A master that is new since (a failover) is not compared; a planned master with
 * replicas whose `host:port` is no master now is `notCompared`.
 */
export function fewerReplicasThanPlanned(
  planned: Record<string, number> | undefined,
  now: ReadonlyMap<string, number> | undefined,
): AgainstPlan {
  if (planned === undefined || now === undefined) return {};
  const fewer = [...now].filter(([node, n]) => (planned[node] ?? 0) > n).map(([node, n]) => ({ node, planned: planned[node]!, now: n }));
  const gone = Object.entries(planned)
    .filter(([node, n]) => n > 0 && !now.has(node))
    .map(([node, n]) => ({ node, planned: n }));
  return { ...(fewer.length > 0 ? { fewerThanPlanned: fewer } : {}), ...(gone.length > 0 ? { notCompared: gone } : {}) };
}

/**
 * fewerReplicasThanPlanned for a cluster plan that keys its masters by node ID (mastersAtPlan): each
 * planned master is matched with the master of its shard now: itself; else the replica of it at
 * plan that is a master now (a failover promoted it); else the master it is a replica of now (a
 * failover demoted it, its replicas unknown at plan: CLUSTER NODES denied). Named by that master's
 * `host:port` now. A planned master with replicas and none of these (a failover while CLUSTER NODES
 * was denied to plan's and apply's users, or its shard's nodes all replaced) is `notCompared`, by its
 * `host:port` at plan.
 */
export function fewerReplicasThanPlannedInCluster(
  target: Pick<Plan['target'], 'replicasAtPlan' | 'mastersAtPlan'>,
  now: ClusterMastersNow,
): AgainstPlan {
  const fewer: Array<{ node: string; planned: number; now: number }> = [];
  const notCompared: Array<{ node: string; planned: number }> = [];
  for (const [id, planned] of Object.entries(target.replicasAtPlan ?? {})) {
    const atPlan = target.mastersAtPlan?.[id];
    const master =
      now.find((m) => m.id === id) ??
      now.find((m) => atPlan?.replicaIds.includes(m.id) === true) ??
      now.find((m) => m.replicaIds.includes(id));
    if (master === undefined) {
      if (planned > 0) notCompared.push({ node: atPlan?.node ?? id, planned });
    } else if (master.replicas < planned) fewer.push({ node: master.node, planned, now: master.replicas });
  }
  return { ...(fewer.length > 0 ? { fewerThanPlanned: fewer } : {}), ...(notCompared.length > 0 ? { notCompared } : {}) };
}

/**
 * apply's one warning for the masters of the plan whose shard it found no master of now
 * (`confirm.notCompared`): their replicas were not compared with the plan, so a shard that lost
 * replicas since would pass unnoticed. Given to onWarning before the copy starts (the CLI prints it
 * on stderr, text and --json). Undefined when there are none.
 */
export function notComparedWarning(r: AgainstPlan): string | undefined {
  const gone = r.notCompared ?? [];
  if (gone.length === 0) return undefined;
  const most = Math.max(...gone.map((g) => g.planned));
  return `warning: replicas not compared with the plan for the shard of ${firstFew(gone.map((g) => `master ${g.node} (${g.planned} replica(s) at plan)`))}: no master now is that node, one of its replicas at plan or its master (a failover, and CLUSTER NODES denied to this ACL user?); apply waits only for the replicas each master has now; --min-replicas ${most} makes it wait for ${most} on every master`;
}

/**
 * apply's comparison of the replicas connected now with those the plan recorded (ApplyResult's
 * `confirm.fewerThanPlanned` / `notCompared`), without a server: by `host:port`, and shard by shard
 * across a failover for cluster plans that key masters by node ID. test/cluster-replicas.test.ts
 * checks the same against a real cluster.
 */
import { describe, expect, it } from 'vitest';
import { fewerReplicasThanPlanned, fewerReplicasThanPlannedInCluster, notComparedWarning } from '../src/use-cases/replicas-against-plan.ts';

describe('fewerReplicasThanPlanned (by host:port)', () => {
  it('says nothing when --min-replicas was given or the plan recorded no replicas', () => {
    expect(fewerReplicasThanPlanned({ 'a:1': 2 }, undefined)).toEqual({});
    expect(fewerReplicasThanPlanned(undefined, new Map([['a:1', 0]]))).toEqual({});
  });

  it('lists masters with fewer replicas now, and planned masters with replicas that are no master now', () => {
    const now = new Map([
      ['a:1', 1],
      ['b:1', 2],
      ['new:1', 0],
    ]);
    expect(fewerReplicasThanPlanned({ 'a:1': 2, 'b:1': 2, 'gone:1': 1, 'gone0:1': 0 }, now)).toEqual({
      fewerThanPlanned: [{ node: 'a:1', planned: 2, now: 1 }],
      notCompared: [{ node: 'gone:1', planned: 1 }],
    });
  });
});

describe('fewerReplicasThanPlannedInCluster (by node ID)', () => {
  const target = {
    replicasAtPlan: { m1: 2, m2: 1, m3: 1, m4: 1 },
    mastersAtPlan: {
      m1: { node: 'h:1', replicaIds: ['r1a', 'r1b'] },
      m2: { node: 'h:2', replicaIds: ['r2'] },
      m3: { node: 'h:3', replicaIds: [] },
      m4: { node: 'h:4', replicaIds: ['r4'] },
    },
  };

  it('matches the same master, a promoted replica, or the master a demoted one follows; else notCompared', () => {
    const now = [
      { id: 'm1', node: 'h:1', replicas: 2, replicaIds: ['r1a', 'r1b'] },
      { id: 'r2', node: 'h:22', replicas: 0, replicaIds: [] }, // m2's replica, promoted; m2 gone
      { id: 'x3', node: 'h:33', replicas: 0, replicaIds: ['m3'] }, // m3 demoted under a new master
    ];
    expect(fewerReplicasThanPlannedInCluster(target, now)).toEqual({
      fewerThanPlanned: [
        { node: 'h:22', planned: 1, now: 0 },
        { node: 'h:33', planned: 1, now: 0 },
      ],
      notCompared: [{ node: 'h:4', planned: 1 }],
    });
  });

  it('says nothing when every shard has its planned replicas', () => {
    const now = ['m1', 'm2', 'm3', 'm4'].map((id, i) => ({ id, node: `h:${i + 1}`, replicas: 2, replicaIds: [] }));
    expect(fewerReplicasThanPlannedInCluster(target, now)).toEqual({});
  });
});

describe('notComparedWarning', () => {
  it('is undefined without notCompared, else names the masters and the --min-replicas that waits for most', () => {
    expect(notComparedWarning({})).toBeUndefined();
    const line = notComparedWarning({
      notCompared: [
        { node: 'h:1', planned: 1 },
        { node: 'h:2', planned: 3 },
      ],
    });
    expect(line).toContain('master h:1 (1 replica(s) at plan)');
    expect(line).toContain('master h:2 (3 replica(s) at plan)');
    expect(line).toContain('--min-replicas 3 makes it wait for 3');
    expect(line).not.toContain('\n');
  });
});

/**
 * plan's `replicas` line (replicasAtPlanLine, packages/cli/src/commands/plan.ts): the replicas the
 * plan recorded per master (target.replicasAtPlan), fewest first, the first three and how many more.
 * End to end: test/apply-replica-recheck.test.ts (one master) and test/cluster-replicas.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { replicasAtPlanLine } from '../src/commands/plan.ts';

describe('plan replicas line', () => {
  it('one master (single server or Sentinel) is "the master"', () => {
    expect(replicasAtPlanLine({ '*': 1 })).toBe(
      '  replicas    connected now: the master: 1 (apply names a master that has fewer when it runs)',
    );
  });

  it('cluster masters by host:port, fewest first, the first three and how many more', () => {
    expect(
      replicasAtPlanLine({ '127.0.0.1:7000': 1, '127.0.0.1:7001': 2, '127.0.0.1:7002': 0, '127.0.0.1:7003': 1, '127.0.0.1:7004': 1 }),
    ).toBe(
      '  replicas    connected now: 127.0.0.1:7002: 0, 127.0.0.1:7000: 1, 127.0.0.1:7003: 1 and 2 more (apply names a master that has fewer when it runs)',
    );
  });

  it('no line for a plan without the record (made before replicasAtPlan)', () => {
    expect(replicasAtPlanLine(undefined)).toBeUndefined();
    expect(replicasAtPlanLine({})).toBeUndefined();
  });
});

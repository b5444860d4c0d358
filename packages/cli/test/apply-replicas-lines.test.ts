/**
 * apply's `replicas` lines (replicasLines, packages/cli/src/commands/apply.ts): a master that lost
 * every replica since `plan` is named once, on the "fewer than when the plan was made" line, and not
 * again on the "none connected to" line; a master that had none at plan time either is still named
 * there. The end-to-end check against a real cluster is in test/cluster-replicas.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { replicasLines } from '../src/commands/apply.ts';

const A = '127.0.0.1:7000';
const B = '127.0.0.1:7001';
const C = '127.0.0.1:7002';

describe('apply replicas lines', () => {
  it('a master that lost its only replica since plan: the "fewer" line names it, the "none connected" line does not', () => {
    const lines = replicasLines({
      dryRun: false,
      confirm: { minReplicas: { [A]: 1, [B]: 0 }, waitTimeoutMs: 2000, fewerThanPlanned: [{ node: B, planned: 1, now: 0 }] },
    });
    expect(lines).toEqual([
      `  replicas    fewer than when the plan was made: ${B} 0 of 1; apply waits only for those connected now (a replica down?); --min-replicas 1 makes it wait for them`,
      `  replicas    WAIT after each batch for 1 replica(s) of ${A} (timeout 2000 ms)`,
    ]);
  });

  it('a master with no replica that the "fewer" line does not name (none at plan time) is still named', () => {
    const lines = replicasLines({
      dryRun: false,
      confirm: { minReplicas: { [A]: 1, [B]: 0, [C]: 0 }, waitTimeoutMs: 500, fewerThanPlanned: [{ node: B, planned: 1, now: 0 }] },
    });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^  replicas    fewer than when the plan was made: ${B} 0 of 1;`));
    expect(lines[2]).toBe(
      `  replicas    none connected to ${C} now: its sessions are on no replica (a replica down?); --min-replicas 1 makes apply wait for one on every master`,
    );
  });

  it('without a plan-time record the "none connected" line names every master without replica', () => {
    const lines = replicasLines({ dryRun: false, confirm: { minReplicas: { [A]: 1, [B]: 0, [C]: 0 }, waitTimeoutMs: 2000 } });
    expect(lines).toEqual([
      `  replicas    WAIT after each batch for 1 replica(s) of ${A} (timeout 2000 ms)`,
      `  replicas    none connected to ${B}, ${C} now: its sessions are on no replica (a replica down?); --min-replicas 1 makes apply wait for one on every master`,
    ]);
  });

  it('a dry run prints no replicas line', () => {
    expect(
      replicasLines({
        dryRun: true,
        confirm: { minReplicas: { [A]: 1, [B]: 0 }, waitTimeoutMs: 2000, fewerThanPlanned: [{ node: B, planned: 1, now: 0 }] },
      }),
    ).toEqual([]);
  });
});

describe('apply FAILED lines', () => {
  it('lists the failures the report keeps and says how many more failed (the report keeps the first 100)', async () => {
    const { failedLines } = await import('../src/commands/apply.ts');
    const failures = Array.from({ length: 100 }, (_, i) => ({
      key: `smsess:{${i}}`,
      file: `/s/sess_${i}`,
      reason: 'the connection to Redis is down',
    }));
    const lines = failedLines({ failures, counts: { failed: 4000 } as never });
    expect(lines).toHaveLength(101);
    expect(lines[0]).toBe('  FAILED      smsess:{0} (/s/sess_0): the connection to Redis is down');
    expect(lines[100]).toBe("  FAILED      ... and 3900 more session(s), not listed (counted in 'failed')");
    expect(failedLines({ failures: failures.slice(0, 2), counts: { failed: 2 } as never })).toHaveLength(2);
  });
});

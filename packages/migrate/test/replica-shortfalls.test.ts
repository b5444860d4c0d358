/**
 * A replica shortfall is listed once per master, wanted and acknowledged count, however many batches
 * or sources it cost (apply's report, and several sources summed): the UNCONFIRMED line shows the
 * first three entries, which must name three different masters, not one master three times.
 */
import { describe, expect, it } from 'vitest';
import { addShortfall, emptySessionCounts, type ApplySessionsReport } from '../src/apply.ts';
import { sumApplyReports } from '../src/several-sources.ts';

const short = (node: string, acked = 0) => ({ node, wanted: 1, acked });

function report(shortfalls: ApplySessionsReport['replicaShortfalls']): ApplySessionsReport {
  return {
    dryRun: false,
    counts: emptySessionCounts(),
    conflicts: [],
    failures: [],
    unstable: [],
    aborted: false,
    missing: [],
    replicaShortfalls: shortfalls,
  };
}

describe('replica shortfalls', () => {
  it('addShortfall lists each master, wanted and acked once, at most 100 entries', () => {
    const list: ApplySessionsReport['replicaShortfalls'] = [];
    for (let batch = 0; batch < 5; batch++) addShortfall(list, short('10.0.0.1:6379'));
    addShortfall(list, short('10.0.0.1:6379', 1));
    addShortfall(list, short('10.0.0.2:6379'));
    expect(list).toEqual([short('10.0.0.1:6379'), short('10.0.0.1:6379', 1), short('10.0.0.2:6379')]);
    for (let i = 0; i < 200; i++) addShortfall(list, short(`10.0.1.${i}:6379`));
    expect(list).toHaveLength(100);
  });

  it('several sources summed: a master short in each is listed once', () => {
    const total = sumApplyReports([report([short('10.0.0.1:6379')]), report([short('10.0.0.1:6379'), short('10.0.0.3:6379')])]);
    expect(total.replicaShortfalls).toEqual([short('10.0.0.1:6379'), short('10.0.0.3:6379')]);
  });
});

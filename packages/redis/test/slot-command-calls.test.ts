/**
 * slotCommandCalls: the calls of the slot-assigning CLUSTER subcommands in an INFO commandstats
 * answer (`cmdstat_cluster|setslot:calls=N,...`, one line per subcommand since redis 7.0,
 * https://redis.io/docs/latest/commands/info/). The scan compares it before and after; the real
 * cluster case is in test/cluster-scan-resharding.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { slotCommandCalls } from '../src/index.ts';

const stats = (lines: string[]): string => ['# Commandstats', ...lines, ''].join('\r\n');

describe('slotCommandCalls', () => {
  it('adds the calls of SETSLOT, ADDSLOTS, DELSLOTS and their range forms, FLUSHSLOTS, and MIGRATE; other commands do not count', () => {
    const text = stats([
      'cmdstat_cluster|setslot:calls=4,usec=40,usec_per_call=10.00,rejected_calls=1,failed_calls=2',
      'cmdstat_cluster|addslots:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0',
      'cmdstat_cluster|delslotsrange:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0',
      'cmdstat_cluster|nodes:calls=900,usec=9000,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
      'cmdstat_cluster|slots:calls=50,usec=500,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
      'cmdstat_get:calls=7,usec=7,usec_per_call=1.00,rejected_calls=0,failed_calls=0',
      'cmdstat_migrate:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
    ]);
    expect(slotCommandCalls(text)).toBe(10);
  });

  it('none run (no line), or redis 6 (one cmdstat_cluster line for every subcommand): 0', () => {
    expect(slotCommandCalls(stats(['cmdstat_get:calls=7,usec=7,usec_per_call=1.00']))).toBe(0);
    expect(slotCommandCalls(stats(['cmdstat_cluster:calls=950,usec=9500,usec_per_call=10.00']))).toBe(0);
  });
});

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
  it('one line per reason with its count and the first key names, for every failed session (not only the 100 listed)', async () => {
    const { failedLines } = await import('../src/commands/apply.ts');
    const { addFailure, OTHER_FAILURE_REASONS } = await import('@session-migrate/migrate');
    const down = 'the connection to Redis is down: no answer after 2 reconnects (after 2 retries)';
    const groups: Parameters<typeof addFailure>[0] = [];
    for (let i = 0; i < 1872; i++) addFailure(groups, down, [`smsess:${String(i).padStart(4, '0')}`]);
    addFailure(groups, 'OOM command not allowed', ['smsess:oom1']);
    const lines = failedLines({ failureGroups: groups, counts: { failed: 1873 } as never });
    expect(lines).toEqual([
      `  FAILED      1872 session(s): ${down} (smsess:0000, smsess:0001, smsess:0002 and 1869 more)`,
      '  FAILED      1 session(s): OOM command not allowed (smsess:oom1)',
    ]);
    // Failed sessions in no group (a report made before groups existed): counted, not listed.
    expect(failedLines({ counts: { failed: 4000 } as never })).toEqual([
      "  FAILED      ... and 4000 more session(s), not listed (counted in 'failed')",
    ]);
    expect(failedLines({ failureGroups: [], counts: { failed: 0 } as never })).toEqual([]);
    // At most 20 distinct reasons are kept; the rest share one last group.
    const many: typeof groups = [];
    for (let i = 0; i < 25; i++) addFailure(many, `reason ${i}`, [`k${i}`]);
    addFailure(many, 'reason 3', ['k3b']);
    expect(many).toHaveLength(21);
    expect(many[3]).toEqual({ reason: 'reason 3', count: 2, keys: ['k3', 'k3b'] });
    expect(many[20]).toEqual({ reason: OTHER_FAILURE_REASONS, count: 5, keys: ['k20', 'k21', 'k22'] });
    expect(failedLines({ failureGroups: many, counts: { failed: 26 } as never })).toHaveLength(21);
  });
});

describe('apply NOT DONE line', () => {
  /** A report of a run whose write phase gave up (aborted) with `notDone` left and `failed` listed. */
  async function linesOf(notDone: number, failed: number): Promise<string[]> {
    const { printApplyProblems } = await import('../src/commands/apply.ts');
    const { addFailure, emptySessionCounts } = await import('@session-migrate/migrate');
    const groups: Parameters<typeof addFailure>[0] = [];
    const down = 'the connection to Redis is down: no answer after 2 reconnects (after 2 retries)';
    for (let i = 0; i < failed; i++) addFailure(groups, down, [`smsess:${i}`]);
    const counts = { ...emptySessionCounts(), migrated: 10, failed, notDone };
    const r = {
      dryRun: false,
      nothingToDo: false,
      sessions: { counts, aborted: true, failureGroups: groups, unstable: [], missing: [], conflicts: [], replicaShortfalls: [] },
    };
    const lines: string[] = [];
    printApplyProblems(r as never, [], (l: string) => lines.push(l), false, ['files']);
    return lines.filter((l) => l.startsWith('  NOT DONE'));
  }

  it('sessions left: the count and how to finish', async () => {
    expect(await linesOf(7, 3)).toEqual([
      '  NOT DONE    7 session(s) not written: Redis kept failing after the retries; run apply again to finish (it never overwrites) (if Redis was restarted meanwhile: plan, then apply)',
    ]);
  });

  it('the retries ran out in the last batch (none left, some FAILED): no "0 session(s)" line, but still how to finish', async () => {
    expect(await linesOf(0, 3)).toEqual([
      '  NOT DONE    the FAILED session(s) below: Redis kept failing after the retries; run apply again to finish (it never overwrites) (if Redis was restarted meanwhile: plan, then apply)',
    ]);
    expect(await linesOf(0, 0)).toEqual([]);
  });
});

describe('a Redis fix that ends in "then run the command again" (OOM, READONLY on a single node)', () => {
  // One treatment of those words (packages/common withoutRunAgain): a line that ends with its own way
  // to finish says "run again" once, naming its command: apply's STOPPED line, and stoppedRun's lines
  // of purge, rotate and rollback (rotate's here). READONLY's fix was left whole by stoppedRun.
  it('apply STOPPED and rotate NOT DONE / stopped each say "run <command> again" once, never "run the command again"', async () => {
    const { printApplyProblems } = await import('../src/commands/apply.ts');
    const { emptySessionCounts } = await import('@session-migrate/migrate');
    const { classifyRedisError, classifiedLine } = await import('@session-migrate/redis');
    const { stoppedRun } = await import('@session-migrate/common');
    const replies = ["OOM command not allowed when used memory > 'maxmemory'.", "READONLY You can't write against a read only replica."];
    for (const reply of replies) {
      const stopped = classifyRedisError(Object.assign(new Error(reply), { name: 'ReplyError' }));
      expect(stopped.fix, reply).toMatch(/, then run the command again$/);
      const r = {
        target: 'redis://127.0.0.1:6379/0',
        dryRun: false,
        nothingToDo: false,
        sessions: {
          counts: emptySessionCounts(),
          stopped,
          aborted: true,
          failureGroups: [],
          unstable: [],
          missing: [],
          conflicts: [],
          replicaShortfalls: [],
        },
      };
      const lines: string[] = [];
      printApplyProblems(r as never, [], (l: string) => lines.push(l), false, ['files']);
      const line = lines.find((l) => l.startsWith('  STOPPED'))!;
      expect(line, reply).toBe(
        `  STOPPED     Redis at redis://127.0.0.1:6379/0 failed during apply: ${stopped.message}: ${stopped.fix!.replace(/run the command again$/, 'run apply again')}`,
      );
      const rotate = {
        command: 'rotate',
        reason: classifiedLine(stopped),
        what: 'value(s) re-encrypted',
        rerun: 'run rotate again to finish',
      };
      for (const done of [0, 3]) {
        const message = stoppedRun({ ...rotate, done, nothing: 'nothing was rewritten; run rotate again once Redis answers' }).message;
        expect(message, `${reply} ${done}`).not.toMatch(/run the command again/);
        expect(message.match(/run (rotate )?again/g), message).toHaveLength(1);
        expect(message, reply).toContain(`${stopped.message} (${stopped.fix!.replace(/, then run the command again$/, '')});`);
      }
    }
  });
});

describe('apply "not copied" line: skipped files of a files source, skipped keys of a Redis source', () => {
  // The end-to-end checks against a real redis-server: test/redis-source.test.ts (one Redis source)
  // and test/several-sources.test.ts (two files sources and a Redis source).
  it('names what each kind of source skipped with its own noun, the files sources first', async () => {
    const { skippedByKind } = await import('../src/commands/apply.ts');
    const { emptySessionCounts } = await import('@session-migrate/migrate');
    const one = (skipped: Record<string, number>) => ({ sessions: { counts: { ...emptySessionCounts(), skipped } } });
    expect(skippedByKind(one({ unreadable: 2 }) as never, ['redis'])).toBe('skipped keys: unreadable 2');
    expect(skippedByKind(one({ unreadable: 2 }) as never, ['files'])).toBe('skipped files: unreadable 2');
    expect(skippedByKind(one({}) as never, ['redis'])).toBe('skipped keys: none');
    const several = {
      sessions: { counts: emptySessionCounts() },
      sources: [
        {
          source: '#1 redis:redis://127.0.0.1:6379/1',
          started: true,
          superseded: 0,
          sessions: one({ 'wrong-type': 1, unreadable: 3 }).sessions,
        },
        { source: '#2 files:/a', started: true, superseded: 2, sessions: one({ superseded: 2 }).sessions },
        { source: '#3 files:/b', started: true, superseded: 1, sessions: one({ superseded: 1, symlink: 1 }).sessions },
        { source: '#4 redis:redis://127.0.0.1:6379/2', started: false, superseded: 0 },
      ],
    };
    expect(skippedByKind(several as never, ['redis', 'files', 'files', 'redis'])).toBe(
      'skipped files: superseded 3, symlink 1; skipped keys: unreadable 3, wrong-type 1',
    );
  });
});

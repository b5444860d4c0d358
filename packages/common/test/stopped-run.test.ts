/**
 * stoppedRun, the one home of the line and exit code of a run stopped part-way (purge, rotate,
 * rollback; apply's source failures through changedSomething and notDoneSentence): the reason's own
 * trailing "run again" is dropped (the line ends with how to finish), and the exit-1 error carries
 * the `--json` document the CLI prints (StoppedRunError.report).
 */
import { describe, expect, it } from 'vitest';
import { StoppedRunError, UserFacingError, changedSomething, notDoneSentence, stoppedRun } from '../src/index.ts';

/** RedisConnection.scan's SCAN_INTERRUPTED, as rotate quotes it (packages/redis/src/connection.ts). */
const SCAN_LOST =
  'Redis at redis://127.0.0.1:6379/0 failed: the connection closed during SCAN of 127.0.0.1:6379 (a restart or fail-over?): keys may have been skipped; run again';
const ROTATE = {
  command: 'rotate',
  reason: SCAN_LOST,
  what: 'value(s) re-encrypted',
  rerun: 'every value is under the old key or the new one, each valid; run rotate again to finish',
  nothing: 'nothing was rewritten; run rotate again once Redis answers',
};

describe('stoppedRun', () => {
  it('says "run again" once when the reason ends in its own (rotate over a SCAN that lost its connection)', () => {
    const part = stoppedRun({ ...ROTATE, done: 100, counts: { reEncrypted: 100, scanned: 120 } });
    expect(part.exitCode).toBe(1);
    expect(part.message).toBe(
      'rotate NOT DONE: 100 value(s) re-encrypted before it stopped: Redis at redis://127.0.0.1:6379/0 failed: the connection closed during SCAN of 127.0.0.1:6379 (a restart or fail-over?): keys may have been skipped; every value is under the old key or the new one, each valid; run rotate again to finish',
    );
    expect(part.message.match(/run (rotate )?again/g)).toHaveLength(1);
    const none = stoppedRun({ ...ROTATE, done: 0 });
    expect(none.exitCode).toBe(2);
    expect(none.message).toBe(
      'rotate stopped: Redis at redis://127.0.0.1:6379/0 failed: the connection closed during SCAN of 127.0.0.1:6379 (a restart or fail-over?): keys may have been skipped; nothing was rewritten; run rotate again once Redis answers',
    );
    expect(none.message.match(/run (rotate )?again/g)).toHaveLength(1);
  });

  it('says "run again" once when the reason is a Redis error whose fix ends in "then run the command again" (rotate stopped by OOM)', () => {
    // classifiedLine of an OOM reply (packages/redis/src/errors.ts: message, then the fix in parentheses).
    const reason =
      "OOM command not allowed when used memory > 'maxmemory'. (Redis reached maxmemory and refuses writes: raise maxmemory (a larger node) or free memory, then run the command again)";
    const part = stoppedRun({ ...ROTATE, reason, done: 7 });
    expect(part.message).toBe(
      "rotate NOT DONE: 7 value(s) re-encrypted before it stopped: OOM command not allowed when used memory > 'maxmemory'. (Redis reached maxmemory and refuses writes: raise maxmemory (a larger node) or free memory); every value is under the old key or the new one, each valid; run rotate again to finish",
    );
    expect(part.message.match(/run (rotate |the command )?again/g)).toHaveLength(1);
    expect(stoppedRun({ ...ROTATE, reason, done: 0 }).message.match(/run (rotate |the command )?again/g)).toHaveLength(1);
  });

  it('keeps a "run again" that is not the reason\'s last words (a condition follows it)', () => {
    const reason =
      'the Redis Cluster is resharding (slot 1 being migrated between masters): SCAN may miss keys already moved; run again when the resharding has finished';
    expect(stoppedRun({ ...ROTATE, reason, done: 1 }).message).toContain(reason);
  });

  it('exit 1: a StoppedRunError whose report is the --json document (counts, the reason as the line says it)', () => {
    const err = stoppedRun({ ...ROTATE, done: 0, inFlight: true, counts: { reEncrypted: 0, scanned: 500 } });
    expect(err).toBeInstanceOf(StoppedRunError);
    expect(err).toBeInstanceOf(UserFacingError);
    expect(err.message).toMatch(
      /^rotate NOT DONE: 0 value\(s\) re-encrypted \(and maybe those in flight when it failed\) before it stopped: /,
    );
    expect((err as StoppedRunError).report).toEqual({
      ok: false,
      stopped: {
        command: 'rotate',
        reason: SCAN_LOST.replace(/; run again$/, ''),
        done: 0,
        what: 'value(s) re-encrypted',
        inFlight: true,
        rerun: ROTATE.rerun,
      },
      counts: { reEncrypted: 0, scanned: 500 },
    });
    // Nothing changed: one line, exit 2, no document.
    expect(stoppedRun({ ...ROTATE, done: 0 })).not.toBeInstanceOf(StoppedRunError);
  });

  it('changedSomething and notDoneSentence: the rule and the sentence apply shares', () => {
    expect(changedSomething({ done: 0 })).toBe(false);
    expect(changedSomething({ done: 0, inFlight: true })).toBe(true);
    expect(changedSomething({ done: 3 })).toBe(true);
    expect(
      notDoneSentence({
        reason: 'source failed; run again',
        done: 3,
        what: 'session(s) written',
        stoppedBy: ', then the source failed',
        rerun: 'run apply again',
      }),
    ).toBe('3 session(s) written, then the source failed: source failed; run apply again');
  });
});

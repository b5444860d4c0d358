/**
 * The cutover under load (issue 11 item 7), small: bench/http/cutover.ts's scenario with 200 sessions
 * kept busy by 8 concurrent clients through nginx + php-fpm (4 workers) while the fleet goes files ->
 * read-through (`plan --read-through`, `generate php`, php-fpm reloaded) -> `apply` under load ->
 * strict (`generate php --strict`, reloaded). Logouts, lost updates and non-2xx answers must all be 0.
 *
 * Three operator mistakes prove each count can fail: strict mode without apply logs out the users
 * who were away; going back to files without `rollback` loses the updates made in Redis; deploying
 * without the key fails session_start() (non-2xx).
 */
import { describe, expect, it } from 'vitest';
import { formatCutover, runCutover, type CutoverResult } from '../bench/http/cutover.ts';

const show = (r: CutoverResult): string => formatCutover(r).join('\n');

describe('cutover under load through nginx + php-fpm', () => {
  it('files -> read-through -> apply -> strict: 0 logouts, 0 lost updates, 0 non-2xx', async () => {
    const r = await runCutover({ sessions: 200, concurrency: 8, phaseMs: 1500, workers: 4 });
    expect(r.logouts, show(r)).toBe(0);
    expect(r.lostUpdates, show(r)).toBe(0);
    expect(r.non2xx, show(r)).toBe(0);
    // Every phase really ran under load, with the handler it should have.
    expect(r.phases.map((p) => p.phase)).toEqual([
      'files',
      'read-through',
      'read-through, apply running',
      'read-through, after apply',
      'strict',
    ]);
    for (const p of r.phases) expect(p.requests, `${p.phase}\n${show(r)}`).toBeGreaterThan(0);
    expect(Object.keys(r.phases[0]!.handlers)).toContain('files');
    for (const p of r.phases.slice(1)) expect(Object.keys(p.handlers), p.phase).toEqual(['user']);
    // The read-through handler took the active sessions over; apply copied the ones of users who were away.
    expect(r.tookOver).toBeGreaterThan(0);
    expect(r.apply.status, show(r)).toBe(0);
    expect(r.apply.counts.migrated).toBeGreaterThanOrEqual(100); // half the users were away during read-through
    expect(r.apply.counts.failed).toBe(0);
    expect(r.apply.counts.conflicts).toBe(0);
    expect(r.verify.status, r.verify.output).toBe(0);
    expect(r.otherPhpErrors).toEqual([]);
  }, 120_000);

  it('strict mode without apply: the users who were away are logged out (counted)', async () => {
    const r = await runCutover({ sessions: 40, concurrency: 4, phaseMs: 600, fault: 'skip-apply' });
    expect(r.logouts, show(r)).toBe(10); // the quarter that comes back only in strict mode
    expect(r.non2xx, show(r)).toBe(0);
  }, 120_000);

  it('back to files without rollback: the updates made in Redis are lost (counted)', async () => {
    const r = await runCutover({ sessions: 40, concurrency: 4, phaseMs: 600, fault: 'files-again' });
    expect(r.lostUpdates, show(r)).toBeGreaterThan(0);
    expect(r.non2xx, show(r)).toBe(0);
  }, 120_000);

  it('read-through deployed without the key: session_start() fails, non-2xx answers (counted)', async () => {
    const r = await runCutover({ sessions: 40, concurrency: 4, phaseMs: 600, fault: 'no-key' });
    expect(r.non2xx, show(r)).toBeGreaterThan(0);
    expect(r.otherPhpErrors.join('\n')).toContain('session-migrate');
  }, 120_000);
});

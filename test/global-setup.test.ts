/**
 * test/support/global-setup.ts removes the run's TMPDIR in vitest's main process, before vitest waits
 * for the last test workers to exit. A synchronous removal of a large directory blocked that process
 * (100,000 session files left by a test: 10-15 s), so the workers' exits were seen too late and vitest
 * printed "[vitest-pool]: Timeout terminating forks worker for ..." for the test files that ran last.
 * The removal must let the event loop run while it works.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import setup from './support/global-setup.ts';

const MARK = 'SESSION_MIGRATE_TEST_TMPDIR';
const saved = { TMPDIR: process.env.TMPDIR, [MARK]: process.env[MARK] };

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('the run directory teardown', () => {
  it('removes the directory without blocking the event loop (vitest sees its workers exit meanwhile)', async () => {
    delete process.env[MARK]; // as in vitest's main process before the run
    const teardown = setup();
    const dir = process.env.TMPDIR!;
    expect(process.env[MARK]).toBe(dir);
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(dir, `sessions-${d}`));
      for (let i = 0; i < 100; i++) writeFileSync(join(dir, `sessions-${d}`, `sess_${i}`), 'a|i:1;');
    }
    let dirWhenLoopRan: boolean | undefined;
    setImmediate(() => {
      dirWhenLoopRan = existsSync(dir);
    });
    await teardown();
    expect(existsSync(dir)).toBe(false);
    expect(process.env[MARK]).toBeUndefined();
    // The event loop ran while the 2,000 files were being removed.
    expect(dirWhenLoopRan).toBe(true);
  });
});

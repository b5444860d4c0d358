/**
 * Vitest global setup: every test process and every PHP or redis-server it starts gets TMPDIR set to
 * one fresh directory, removed when the run ends. Tests write plaintext session files and key files;
 * none of them may be left behind in the machine's temp dir (PHP's sys_get_temp_dir() honours TMPDIR too).
 *
 * Each vitest project (unit, integration: vitest.config.ts) runs this setup; the first one creates the
 * directory and removes it at the end, the others use it. (A directory per project would nest them,
 * and a nested path is too long for a Unix socket and not traversable by the `nobody` user of the
 * HTTP harness test.)
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set while a run's directory exists: the directory itself. */
const MARK = 'SESSION_MIGRATE_TEST_TMPDIR';

export default function setup(): () => Promise<void> {
  if (process.env[MARK] !== undefined && process.env.TMPDIR === process.env[MARK]) return async () => {};
  const dir = mkdtempSync(join(tmpdir(), 'session-migrate-tests-'));
  process.env.TMPDIR = dir;
  process.env[MARK] = dir;
  // Asynchronous on purpose: vitest runs this teardown in its main process before it waits for the
  // last test workers to exit, and a synchronous rmSync of a large directory blocked that process
  // (~10-15 s for 100,000 files): the workers' exits were not seen in time and vitest printed
  // "[vitest-pool]: Timeout terminating forks worker for ..." for whatever test files ran last.
  return async () => {
    await rm(dir, { recursive: true, force: true });
    delete process.env[MARK];
  };
}

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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set while a run's directory exists: the directory itself. */
const MARK = 'SESSION_MIGRATE_TEST_TMPDIR';

export default function setup(): () => void {
  if (process.env[MARK] !== undefined && process.env.TMPDIR === process.env[MARK]) return () => {};
  const dir = mkdtempSync(join(tmpdir(), 'session-migrate-tests-'));
  process.env.TMPDIR = dir;
  process.env[MARK] = dir;
  return () => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env[MARK];
  };
}

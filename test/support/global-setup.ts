/**
 * Vitest global setup: every test process and every PHP or redis-server it starts gets TMPDIR set to
 * one fresh directory, removed when the run ends. Tests write plaintext session files and key files;
 * none of them may be left behind in the machine's temp dir (PHP's sys_get_temp_dir() honours TMPDIR too).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'session-migrate-tests-'));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}

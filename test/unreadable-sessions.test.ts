/**
 * A session file the operator's user cannot read is a session that is not copied: plan warns, apply
 * and verify --source exit 1 and name it (found by a fresh-clone review: they used to say OK).
 * As root the CLI runs as `nobody` (setpriv), since root reads any file; otherwise the file is mode 000.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyFile } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { BIN } from './support/migrate-cli.ts';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const cmd = asRoot ? 'setpriv' : process.execPath;
  const argv = asRoot ? [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, ...args] : [BIN, ...args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, HOME: root, TMPDIR: join(root, 'tmp') }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

let redis: RedisServer;
let root: string;
beforeAll(async () => {
  redis = await startRedis();
  // nobody must reach it: the per-run scratch dir (TMPDIR) is private to root.
  root = mkdtempSync(join(asRoot ? '/tmp' : tmpdir(), 'sm-unreadable-'));
  chmodSync(root, 0o755);
  mkdirSync(join(root, 'tmp'), { mode: 0o700 });
  if (asRoot) chownSync(join(root, 'tmp'), NOBODY, NOBODY);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('session files this user cannot read', () => {
  it('plan warns, apply exits 1, verify --source fails with source-unreadable', () => {
    const dir = join(root, 'sessions');
    mkdirSync(dir, { mode: 0o755 });
    const readable = join(dir, 'sess_readable0000000000000001');
    const unreadable = join(dir, 'sess_unreadable00000000000002');
    writeFileSync(readable, 'user|s:1:"a";', { mode: 0o644 });
    writeFileSync(unreadable, 'user|s:1:"b";', { mode: 0o600 });
    const work = join(root, 'work');
    mkdirSync(work, { mode: 0o755 });
    const keyFile = join(work, 'master.key');
    generateKeyFile(keyFile);
    if (asRoot) {
      chownSync(work, NOBODY, NOBODY);
      chownSync(keyFile, NOBODY, NOBODY);
    } else {
      chmodSync(unreadable, 0o000);
    }
    const planFile = join(work, 'plan.json');
    const plan = cli([
      'plan',
      '--source',
      `files:${dir}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--artifacts-dir',
      join(work, 'art'),
    ]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/WARNING +1 session file\(s\) cannot be read by this user/);

    const apply = cli(['apply', '--plan', planFile]);
    expect(apply.status, apply.stderr + apply.stdout).toBe(1);
    expect(apply.stdout).toMatch(/migrated 1 /);
    expect(apply.stdout).toMatch(/FAIL +1 session file\(s\) could not be read/);

    const verify = cli(['verify', '--plan', planFile, '--source', `files:${dir}`, '--json']);
    expect(verify.status, verify.stderr).toBe(1);
    const report = JSON.parse(verify.stdout) as {
      failureCounts: Record<string, number>;
      failures: Array<{ file?: string; reason: string }>;
    };
    expect(report.failureCounts).toEqual({ 'source-unreadable': 1 });
    // Named, with the session ID shortened (never the whole replayable ID).
    expect(report.failures[0]!.file).toMatch(/sess_unread…$/);
  });
});

/**
 * `plan --artifacts-dir` that this user cannot write (adversarial review): plan accepted it silently,
 * and the operator learnt it from apply. plan still writes the plan (apply may run as another user),
 * and says so on stderr in one line. Run as `nobody` when the tests run as root (root may write
 * anywhere), as this user otherwise.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';

const asRoot = process.getuid?.() === 0;
let redis: RedisServer;
let root: string;

beforeAll(async () => {
  redis = await startRedis();
  // nobody must reach it: the test run's own TMPDIR may be mode 0700 (root's), /tmp is not.
  root = mkdtempSync(join(asRoot ? '/tmp' : tmpdir(), 'sm-plan-artifacts-'));
  chmodSync(root, 0o755);
});
afterAll(async () => {
  await redis?.stop();
  if (root !== undefined) {
    chmodSync(join(root, 'locked'), 0o755);
    rmSync(root, { recursive: true, force: true });
  }
});

/** Runs the CLI as `nobody` (tests run as root) or as this user, with a TMPDIR that user can write. */
function cliAs(args: string[], tmp: string) {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESSION_MIGRATE_'))), TMPDIR: tmp };
  const r = asRoot
    ? spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, ...args], { encoding: 'utf8', env, timeout: 120_000 })
    : spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** As root, the clone must be readable by nobody (a clone below /root is not): the test is skipped then. */
const nobodyCanRun = !asRoot || spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', BIN]).status === 0;

describe('plan --artifacts-dir this user cannot write', () => {
  it.skipIf(!nobodyCanRun)('warns in one line naming the directory, and still writes the plan (exit 0)', () => {
    const nobody = asRoot ? Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim()) : userInfo().uid;
    const own = (p: string) => {
      if (asRoot) chownSync(p, nobody, -1);
    };
    const work = join(root, 'work');
    const tmp = join(root, 'tmp');
    const sessions = join(root, 'sessions');
    for (const d of [work, tmp, sessions]) {
      mkdirSync(d, { mode: 0o755 });
      own(d);
    }
    writeFileSync(join(sessions, 'sess_abcdefghijklmnopqrstuvwxyz'), 'a|s:1:"x";', { mode: 0o644 });
    own(join(sessions, 'sess_abcdefghijklmnopqrstuvwxyz'));
    const key = join(work, 'master.key');
    writeFileSync(key, Buffer.alloc(32, 3).toString('base64') + '\n', { mode: 0o600 });
    own(key);
    const locked = join(root, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    chmodSync(locked, 0o555);
    const args = (artifacts: string) => [
      'plan',
      '--source',
      `files:${sessions}`,
      '--target',
      redis.url,
      '--key-file',
      key,
      '--out',
      join(work, 'plan.json'),
      '--artifacts-dir',
      artifacts,
    ];

    for (const artifacts of [locked, join(locked, 'sub', 'dir')]) {
      const r = cliAs(args(artifacts), tmp);
      expect(r.stderr).toBe(
        `session-migrate: warning: --artifacts-dir ${artifacts}: ${locked}: permission denied for this user; apply run as this user would stop there (before writing to Redis): choose a directory it can write, or run apply as a user who can\n`,
      );
      expect(r.stdout).toContain('plan        written to');
      expect(r.status).toBe(0);
    }
    const ok = cliAs(args(join(work, 'art')), tmp);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
  });
});

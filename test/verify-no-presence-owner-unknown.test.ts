/**
 * verify --plan --no-presence on a plan whose files source knows no user PHP runs as (plan saw no
 * session file: `phpUids: []`). Without --no-presence verify counts the session files of a non-root
 * owner written since in its presence walk and fails (`owner-unknown`, test/foreign-owner.test.ts).
 * --no-presence reads no source file (verify may run where the session directory is not mounted),
 * so that check is not made: the report says so plainly, naming the source (text line `NOT CHECKED`,
 * JSON `ownerUnknownNotChecked`), instead of an OK that looks like the files were looked for.
 * A plan that also has a Redis source is no different for its files sources: --no-presence opens the
 * Redis source only (its plaintext prefix must still be empty), so the directory is neither walked
 * nor needed, and the files source gets the same NOT CHECKED line.
 * Real redis-server, the CLI as a process; files chowned to www-data when run as root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, newKey, planArgs, writeSessionFiles } from './support/migrate-cli.ts';
import { owned } from './support/owners.ts';
import { startRedis, type RedisServer } from './support/servers.ts';

const isRoot = process.getuid?.() === 0;
let root: string;
let redis: RedisServer;
let keyFile: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-nopresence-'));
  redis = await startRedis();
  mkdirSync(join(root, 'key'));
  ({ keyFile } = await newKey(join(root, 'key')));
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Plans `files:DIR` (an empty session directory, mode 1733) with `extra` plan options. @returns the plan file */
function planOn(dir: string, name: string, ...extra: string[]): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1733);
  const planFile = join(root, `${name}.json`);
  const p = cli([...planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, `${name}-art`) }), ...extra]);
  expect(p.status, p.stdout + p.stderr).toBe(0);
  return planFile;
}

const NOT_CHECKED = /^ {2}NOT CHECKED /m;
const notCheckedLine = (dir: string) =>
  `  NOT CHECKED files:${dir}: the plan knows no user PHP runs as there (it saw no session file), and --no-presence reads no session file: files of another owner than root (maybe PHP's sessions, not copied) were not looked for; run verify without --no-presence to check`;

describe('verify --plan --no-presence, plan that knows no PHP user', () => {
  it('says the unknown-owner check was not made, naming the source; exit 0, without reading the directory', () => {
    const dir = join(root, 'unknown', 'sessions');
    const planFile = planOn(dir, 'unknown');
    // Written since by PHP under a user the plan could not know (www-data when we can chown, else ours: not root either).
    if (isRoot) owned(dir, 'since', 3, 33);
    else writeSessionFiles(dir, 'since', 3);

    const v = cli(['verify', '--plan', planFile, '--no-presence']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(v.stdout.split('\n').filter((l) => NOT_CHECKED.test(l))).toEqual([
      `  NOT CHECKED files:${dir}: the plan knows no user PHP runs as there (it saw no session file), and --no-presence reads no session file: files of another owner than root (maybe PHP's sessions, not copied) were not looked for; run verify without --no-presence to check`,
    ]);
    const j = cli(['verify', '--plan', planFile, '--no-presence', '--json']);
    expect(j.status, j.stderr).toBe(0);
    const report = JSON.parse(j.stdout) as { ok: boolean; ownerUnknown?: number; ownerUnknownNotChecked?: string[] };
    expect(report).toMatchObject({ ok: true, ownerUnknownNotChecked: [`files:${dir}`] });
    expect(report.ownerUnknown).toBeUndefined();

    // --no-presence does not need the directory (verify on a host where it is not mounted): same answer.
    renameSync(join(root, 'unknown'), join(root, 'unknown-moved'));
    try {
      const moved = cli(['verify', '--plan', planFile, '--no-presence', '--json']);
      expect(moved.status, moved.stderr).toBe(0);
      expect(JSON.parse(moved.stdout)).toMatchObject({ ok: true, ownerUnknownNotChecked: [`files:${dir}`] });
    } finally {
      renameSync(join(root, 'unknown-moved'), join(root, 'unknown'));
    }
  });

  it('without --no-presence the files are looked for (owner-unknown), and nothing is said unchecked', () => {
    const v = cli(['verify', '--plan', join(root, 'unknown.json'), '--json']);
    expect(v.status, v.stderr).toBe(1);
    const report = JSON.parse(v.stdout) as { ownerUnknown?: number; ownerUnknownNotChecked?: string[] };
    expect(report.ownerUnknown).toBe(3);
    expect(report.ownerUnknownNotChecked).toBeUndefined();
  });

  it('a plan that knows the PHP user (--php-user): --no-presence has no such check to skip, no line', () => {
    const planFile = planOn(join(root, 'known', 'sessions'), 'known', '--php-user', '33');
    const v = cli(['verify', '--plan', planFile, '--no-presence', '--json']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    // The text line is printed for each entry of ownerUnknownNotChecked (commands/verify.ts).
    expect((JSON.parse(v.stdout) as { ownerUnknownNotChecked?: string[] }).ownerUnknownNotChecked).toBeUndefined();
  });
});

describe('verify --plan --no-presence, a plan with a files source (no PHP user known) and a Redis source', () => {
  const SRC = 'PHPREDIS_SESSION:';
  const srcUrl = () => `redis:redis://127.0.0.1:${redis.port}/1?prefix=${encodeURIComponent(SRC)}`;

  it('the files source gets the same NOT CHECKED line, without a walk: exit 0, also with the directory gone', () => {
    const dir = join(root, 'mixed', 'sessions');
    const planFile = planOn(dir, 'mixed', '--source', srcUrl());
    if (isRoot) owned(dir, 'since', 3, 33);
    else writeSessionFiles(dir, 'since', 3);

    const v = cli(['verify', '--plan', planFile, '--no-presence']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(v.stdout.split('\n').filter((l) => NOT_CHECKED.test(l))).toEqual([notCheckedLine(dir)]);
    // The plan records the user PHP runs as (none known: []): no warning of a plan that predates it.
    expect(v.stderr).not.toMatch(/does not record the user PHP runs as/);
    const j = cli(['verify', '--plan', planFile, '--no-presence', '--json']);
    expect(j.status, j.stderr).toBe(0);
    const report = JSON.parse(j.stdout) as { ok: boolean; ownerUnknown?: number; ownerUnknownNotChecked?: string[] };
    expect(report).toMatchObject({ ok: true, ownerUnknownNotChecked: [`files:${dir}`] });
    expect(report.ownerUnknown).toBeUndefined();

    renameSync(join(root, 'mixed'), join(root, 'mixed-moved'));
    try {
      const moved = cli(['verify', '--plan', planFile, '--no-presence', '--json']);
      expect(moved.status, moved.stdout + moved.stderr).toBe(0);
      expect(JSON.parse(moved.stdout)).toMatchObject({ ok: true, ownerUnknownNotChecked: [`files:${dir}`] });
    } finally {
      renameSync(join(root, 'mixed-moved'), join(root, 'mixed'));
    }

    // Without --no-presence the files are looked for, as for a files-only plan.
    const presence = cli(['verify', '--plan', planFile, '--json']);
    expect(presence.status, presence.stderr).toBe(1);
    const p = JSON.parse(presence.stdout) as { ownerUnknown?: number; ownerUnknownNotChecked?: string[] };
    expect(p.ownerUnknown).toBe(3);
    expect(p.ownerUnknownNotChecked).toBeUndefined();
  });

  it('the Redis source is still opened: a plaintext key left under its prefix fails', async () => {
    const planFile = join(root, 'mixed.json');
    const db1 = redis.client.duplicate({ db: 1 });
    try {
      await db1.set(`${SRC}leftover`, 'n|i:1;');
      const v = cli(['verify', '--plan', planFile, '--no-presence', '--json']);
      expect(v.status, v.stdout + v.stderr).toBe(1);
      const report = JSON.parse(v.stdout) as {
        ok: boolean;
        plaintext?: { prefix: string; remaining: number };
        failureCounts: Record<string, number>;
        ownerUnknownNotChecked?: string[];
      };
      expect(report.ok).toBe(false);
      expect(report.plaintext).toMatchObject({ prefix: SRC, remaining: 1 });
      expect(report.failureCounts['plaintext-remains']).toBe(1);
      expect(report.ownerUnknownNotChecked).toEqual([`files:${join(root, 'mixed', 'sessions')}`]);
    } finally {
      await db1.del(`${SRC}leftover`);
      db1.disconnect();
    }
  });
});

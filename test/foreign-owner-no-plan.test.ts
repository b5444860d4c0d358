/**
 * verify and purge with `--source files:DIR` and no plan apply the owner rule of plan (php-src
 * ext/session/mod_files.c, ps_files_open: PHP's files handler refuses a session file owned by neither
 * root nor the uid it runs as). `--php-user NAME|UID` there as in plan (same resolver, same errors),
 * else the owner of most session files (same ambiguity refusal). A file another local user planted
 * in a shared 1733 directory is never deleted by purge (not even an expired or empty one, which purge
 * deletes without looking in Redis) and is not looked for in Redis by verify.
 * Real files chowned to other uids (the suite runs as root) and a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { cli, newKey, planArgs, sid, usageLine, writeSessionFiles } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';
import { owned, plant } from './support/owners.ts';

const isRoot = process.getuid?.() === 0;
const WWW = 33; // www-data on Debian
const NOBODY = 65534;
const OTHER = 4242; // a uid without a passwd entry
const GC = 1440;

let root: string;
let redis: RedisServer;
let client: Redis;
let keyFile: string;
let codec: EnvelopeCodec;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-owner-np-'));
  redis = await startRedis();
  client = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
  await client.connect();
  mkdirSync(join(root, 'key'));
  ({ keyFile, codec } = await newKey(join(root, 'key')));
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A session directory as Debian ships it: 1733, owned by root. */
function sessionDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1733);
  return dir;
}

/** `verify` or `purge` against the test's Redis with the key file and no plan, for `files:DIR`. */
function noPlan(command: 'verify' | 'purge', dir: string, ...extra: string[]): ReturnType<typeof cli> {
  return cli([command, '--source', `files:${dir}`, '--target', redis.url, '--key-file', keyFile, '--gc-maxlifetime', String(GC), ...extra]);
}

/** Migrates the directory's sessions of `phpUser` (plan --php-user, apply). */
function migrate(dir: string, name: string, phpUser: string): void {
  const planFile = join(root, `${name}-plan.json`);
  const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, `${name}-art`) }, '--php-user', phpUser));
  expect(p.status, p.stdout + p.stderr).toBe(0);
  const a = cli(['apply', '--plan', planFile]);
  expect(a.status, a.stdout + a.stderr).toBe(0);
}

async function present(ids: readonly string[]): Promise<number> {
  let n = 0;
  for (const id of ids) {
    const found = await client.exists(codec.keyName('smsess:', id));
    n += found;
  }
  return n;
}

describe.skipIf(!isRoot)('verify and purge with --source files: and no plan: the owner rule of plan', () => {
  it("infers PHP's user from the files: verify does not miss the planted files, purge never deletes them (live, expired or empty)", async () => {
    await client.flushall();
    const dir = sessionDir('np-www');
    const www = owned(dir, 'www', 12, WWW); // more than AMBIGUOUS_OWNER_RATIO times the others' files
    const byRoot = writeSessionFiles(dir, 'root', 2);
    migrate(dir, 'np-www', 'www-data');
    expect(await present([...www, ...byRoot])).toBe(14);
    // Planted by other local users after the migration: a live one (not in Redis), one older than
    // gc_maxlifetime and an empty one: purge deletes expired and empty files of PHP's own without
    // asking Redis, so without the owner rule it would delete these two.
    const live = plant(dir, sid('plant', 1), NOBODY);
    const expired = plant(dir, sid('plant', 2), OTHER, { ageSeconds: GC + 3600 });
    const empty = plant(dir, sid('plant', 3), NOBODY, { data: '' });
    const planted = [live, expired, empty];

    const v = noPlan('verify', dir);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(v.stderr).toContain(
      `note: source files:${dir}: session files owned by uid 33 (www-data) (the owner of most of them: check it, or give --php-user) and root's are PHP's; 3 file(s) owned by other users are left alone: PHP's files handler refuses them`,
    );
    expect(v.stdout).toMatch(/^ {2}source {6}14 live session\(s\) checked, 14 identical in Redis$/m); // the planted ones neither missing nor present
    expect(v.stdout + v.stderr).not.toContain('admin');
    const vj = JSON.parse(noPlan('verify', dir, '--json').stdout) as { ok: boolean; notes: string[] };
    expect(vj.ok).toBe(true);
    expect(vj.notes.some((n) => n.includes('3 file(s) owned by other users are left alone'))).toBe(true);

    const dry = noPlan('purge', dir, '--dry-run');
    expect(dry.status, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^ {2}kept {8}3 file\(s\) owned by another user than root or PHP's/m);
    expect(dry.stdout).not.toMatch(/would delete \S*sess_plant/);

    const g = noPlan('purge', dir);
    expect(g.status, g.stdout + g.stderr).toBe(0);
    expect(g.stdout).toMatch(/^ {2}deleted {5}14 file\(s\)/m);
    expect(g.stdout).toMatch(/^ {2}kept {8}3 file\(s\) owned by another user than root or PHP's/m);
    expect(g.stdout + g.stderr).not.toContain('admin');
    for (const f of planted) expect(existsSync(f), f).toBe(true);
    for (const id of [...www, ...byRoot]) expect(existsSync(join(dir, `sess_${id}`))).toBe(false);
  });

  it('--php-user by name or uid picks the user; the other owners are left alone', async () => {
    await client.flushall();
    const dir = sessionDir('np-option');
    const nob = owned(dir, 'nob', 2, NOBODY);
    const www = owned(dir, 'www', 10, WWW); // the majority, but not PHP's user here
    migrate(dir, 'np-option', 'nobody');
    expect(await present(nob)).toBe(2);
    expect(await present(www)).toBe(0);

    // Inferred (www-data, the majority): its ten sessions are not in Redis.
    const inferred = noPlan('verify', dir);
    expect(inferred.status, inferred.stdout + inferred.stderr).toBe(1);
    expect(inferred.stdout).toMatch(/failures +missing-in-redis 10\b/);
    for (const user of ['nobody', String(NOBODY)]) {
      const v = noPlan('verify', dir, '--php-user', user);
      expect(v.status, v.stdout + v.stderr).toBe(0);
      expect(v.stderr).toContain(
        `session files owned by uid 65534 (nobody) (--php-user) and root's are PHP's; 10 file(s) owned by other users`,
      );
    }
    // purge without --php-user takes www-data's files for PHP's: none proven, nothing deleted.
    const wrong = noPlan('purge', dir);
    expect(wrong.status).toBe(1);
    expect(wrong.stdout).toMatch(/REFUSED {5}nothing was deleted: 10 session\(s\)/);
    for (const id of [...nob, ...www]) expect(existsSync(join(dir, `sess_${id}`))).toBe(true);
    const g = noPlan('purge', dir, '--php-user', 'nobody');
    expect(g.status, g.stdout + g.stderr).toBe(0);
    expect(g.stdout).toMatch(/^ {2}deleted {5}2 file\(s\)/m);
    for (const id of nob) expect(existsSync(join(dir, `sess_${id}`))).toBe(false);
    for (const id of www) expect(existsSync(join(dir, `sess_${id}`))).toBe(true);
  });

  it("owners in similar numbers: verify and purge refuse and ask for --php-user, as plan does; plan's errors for a bad --php-user", () => {
    const dir = sessionDir('np-pools');
    const a = owned(dir, 'poola', 4, WWW);
    owned(dir, 'poolb', 3, NOBODY);
    for (const command of ['verify', 'purge'] as const) {
      expect(usageLine(noPlan(command, dir))).toMatch(
        new RegExp(
          `^session-migrate: source files:${dir}: session files belong to several users \\(uid 33 \\(www-data\\): 4, uid 65534 \\(nobody\\): 3\\) .*give --php-user NAME\\|UID`,
        ),
      );
      expect(usageLine(noPlan(command, dir, '--php-user', 'no-such-user-x'))).toMatch(
        /--php-user no-such-user-x: no such user in the system's user database/,
      );
      expect(usageLine(noPlan(command, dir, '--php-user', '99999'))).toMatch(
        /: --php-user 99999 owns none of the 7 session files \(uid 33 \(www-data\): 4, uid 65534 \(nobody\): 3\): give the user PHP runs as$/,
      );
      // --php-user without a files source given now: the plan records its own.
      expect(usageLine(cli([command, '--plan', join(root, 'nonexistent-plan.json'), '--php-user', 'www-data']))).toMatch(
        /--php-user applies to a --source files:DIR given now; the plan records the user PHP runs as/,
      );
      // No plan at all: nothing about a plan.
      expect(usageLine(cli([command, '--target', redis.url, '--key-file', keyFile, '--php-user', 'www-data']))).toBe(
        `session-migrate: ${command} --php-user applies to a --source files:DIR given now`,
      );
      expect(usageLine(noPlan(command, dir, '--php-user', ''))).toMatch(/: --php-user is empty: give the user PHP runs as/);
    }
    for (const id of a) expect(existsSync(join(dir, `sess_${id}`))).toBe(true);
  });

  it("a plan that saw no session file: files of an unknown PHP user hold back purge's deletes, as sessions not proven do, unless --allow-partial", async () => {
    await client.flushall();
    const dir = sessionDir('np-unknown');
    const planFile = join(root, 'np-unknown-plan.json');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'np-unknown-art') }));
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/owners {6}no session file yet/);
    const byRoot = writeSessionFiles(dir, 'root', 3); // root's: taken and copied
    const www = owned(dir, 'www', 2, WWW); // PHP's (www-data) since the plan: not taken
    expect(cli(['apply', '--plan', planFile]).status).toBe(1);
    expect(await present(byRoot)).toBe(3);
    expect(await present(www)).toBe(0);
    const all = [...byRoot, ...www].map((id) => join(dir, `sess_${id}`));

    for (const dry of [['--dry-run'], []]) {
      const g = cli(['purge', '--plan', planFile, ...dry]);
      expect(g.status, g.stdout + g.stderr).toBe(1);
      expect(g.stdout).toMatch(/^ {2}KEPT {8}2 file\(s\) owned by another user than root while the plan knows no user PHP runs as/m);
      expect(g.stdout).toContain(
        `  REFUSED     nothing ${dry.length > 0 ? 'would be' : 'was'} deleted: 2 file(s) of an unknown PHP user are kept (KEPT above); run plan again with --php-user NAME, then apply and purge, or --allow-partial to delete only the proven ones`,
      );
      for (const f of all) expect(existsSync(f), f).toBe(true);
    }
    const partial = cli(['purge', '--plan', planFile, '--allow-partial']);
    expect(partial.status, partial.stdout + partial.stderr).toBe(1);
    expect(partial.stdout).toMatch(/^ {2}deleted {5}3 file\(s\)/m);
    for (const id of byRoot) expect(existsSync(join(dir, `sess_${id}`))).toBe(false);
    for (const id of www) expect(existsSync(join(dir, `sess_${id}`))).toBe(true);
  });
});

/**
 * Session files PHP's files handler refuses for their owner are not migrated (php-src
 * ext/session/mod_files.c, ps_files_open: a file owned by neither root nor the uid PHP runs as is
 * "not created by your uid" and is not read). In a world-writable session directory (Debian's
 * /var/lib/php/sessions, mode 1733) any local user can plant `sess_<id>` holding `admin|b:1;`: PHP
 * ignores it, and before this fix apply copied it into Redis as a valid, encrypted session.
 *
 * plan records the uid(s) PHP runs as (--php-user NAME|UID, else the owner of most session files,
 * printed; owners in similar numbers are refused); apply, verify and purge skip files of other
 * owners (`foreign-owner`: counted, named, never a failure); apply refuses a plan that predates it.
 * Real files chowned to other uids (the suite runs as root) and a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

let root: string;
let redis: RedisServer;
let client: Redis;
let keyFile: string;
let codec: EnvelopeCodec;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-owner-'));
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

async function present(ids: readonly string[]): Promise<number> {
  let n = 0;
  for (const id of ids) {
    const found = await client.exists(codec.keyName('smsess:', id));
    n += found;
  }
  return n;
}

/** A session directory as Debian ships it: 1733, owned by root. */
function sessionDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1733);
  return dir;
}

interface PlanJson {
  sources: Array<{ phpUids?: number[]; phpUidsFrom?: string; summary: { found: number; skipped: Record<string, number> } }>;
  source: { phpUids?: number[] };
  summary: {
    found: number;
    live: number;
    skipped: Record<string, number>;
    skippedSample: Array<{ location: string; reason: string; detail?: string }>;
  };
}

describe.skipIf(!isRoot)("session files PHP's files handler refuses for their owner", () => {
  it("plan infers the PHP user from the files and says so; apply, verify and purge leave the other owners' files alone", async () => {
    await client.flushall();
    const dir = sessionDir('www-dir');
    const www = owned(dir, 'www', 5, WWW);
    const byRoot = writeSessionFiles(dir, 'root', 2); // root's: PHP takes them too
    const planted = [sid('plant', 1), sid('plant', 2)];
    const plantedFiles = [plant(dir, planted[0]!, NOBODY), plant(dir, planted[1]!, OTHER, { mode: 0o000 })];
    const planFile = join(root, 'www-plan.json');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'www-art') }));
    expect(p.status, p.stdout + p.stderr).toBe(0);
    expect(p.stdout).toMatch(
      /^ {2}owners {6}session files owned by uid 33 \(www-data\) are taken \(the owner of most of them: check it, or give --php-user\), and root's; 2 file\(s\) owned by other users are not: PHP's files handler refuses them/m,
    );
    expect(p.stdout).toMatch(/foreign-owner 2/);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as PlanJson;
    expect(plan.sources[0]).toMatchObject({ phpUids: [WWW], phpUidsFrom: 'files' });
    expect(plan.source.phpUids).toEqual([WWW]);
    expect(plan.summary.live).toBe(7);
    expect(plan.summary.skipped['foreign-owner']).toBe(2);
    expect(plan.summary.skippedSample.filter((s) => s.reason === 'foreign-owner').map((s) => s.detail)).toEqual(
      expect.arrayContaining([expect.stringContaining(`uid ${NOBODY}`), expect.stringContaining(`uid ${OTHER}`)]),
    );

    const a = cli(['apply', '--plan', planFile]);
    expect(a.status, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toContain('  sessions    migrated 7 (');
    expect(a.stdout).toMatch(/^ {2}NOT TAKEN {3}2 file\(s\) owned by another user than root or PHP's/m);
    expect(a.stdout.split('\n').filter((l) => /^ {2}NOT TAKEN {3}\S*sess_plant/.test(l))).toHaveLength(2);
    expect(a.stdout + a.stderr).not.toContain('admin');
    expect(await present(www)).toBe(5);
    expect(await present(byRoot)).toBe(2);
    expect(await present(planted)).toBe(0);
    const aj = cli(['apply', '--plan', planFile, '--json', '--workers', '2']); // the worker path reads the same way
    expect(aj.status, aj.stderr).toBe(0);
    expect(JSON.parse(aj.stdout)).toMatchObject({ sessions: { counts: { alreadyPresent: 7, skipped: { 'foreign-owner': 2 } } } });
    expect(await present(planted)).toBe(0);

    // verify: the planted files are not sessions to find in Redis, so not missing.
    const v = cli(['verify', '--plan', planFile]);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const vs = cli(['verify', '--plan', planFile, '--source', `files:${dir}`]);
    expect(vs.status, vs.stdout + vs.stderr).toBe(0);

    // purge: deletes what is proven in Redis, keeps the planted files and says so.
    const g = cli(['purge', '--plan', planFile]);
    expect(g.stdout + g.stderr).toMatch(/^ {2}kept {8}2 file\(s\) owned by another user than root or PHP's/m);
    // What remains: no session of this application; the 2 other users' files counted apart.
    expect(g.stdout).toMatch(/^ {2}remaining {3}0 plaintext session file\(s\), 0 B; 2 file\(s\) of other users left alone \(\d+ B\)$/m);
    const gj = JSON.parse(cli(['purge', '--plan', planFile, '--json']).stdout) as {
      remaining: { files: number; otherUsers?: { files: number } };
    };
    expect(gj.remaining).toMatchObject({ files: 2, otherUsers: { files: 2 } });
    expect(g.stdout + g.stderr).not.toContain('admin');
    for (const f of plantedFiles) expect(existsSync(f)).toBe(true);
  });

  it('--php-user by name and by uid; an unknown user is one clear error', async () => {
    await client.flushall();
    const dir = sessionDir('by-option');
    const www = owned(dir, 'www', 3, WWW);
    const nob = [sid('nob', 1)];
    plant(dir, nob[0]!, NOBODY, { data: 'user|s:1:"n";' });
    const other = [sid('oth', 1)];
    plant(dir, other[0]!, OTHER, { data: 'user|s:1:"o";' });
    const art = join(root, 'by-option-art');

    const byName = join(root, 'by-name.json');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile: byName, artifactsDir: art }, '--php-user', 'nobody'));
    expect(p.status, p.stdout + p.stderr).toBe(0);
    expect(p.stdout).toMatch(/owners {6}session files owned by uid 65534 \(nobody\) are taken \(--php-user\), and root's; 4 file\(s\)/);
    expect((JSON.parse(readFileSync(byName, 'utf8')) as PlanJson).sources[0]).toMatchObject({ phpUids: [NOBODY], phpUidsFrom: 'php-user' });
    const a = cli(['apply', '--plan', byName]);
    expect(a.status, a.stdout + a.stderr).toBe(0);
    expect(await present(nob)).toBe(1);
    expect(await present([...www, ...other])).toBe(0);

    await client.flushall();
    const byUid = join(root, 'by-uid.json');
    const q = cli(
      planArgs(
        { dir, target: redis.url, keyFile, planFile: byUid, artifactsDir: art },
        '--php-user',
        String(OTHER),
        '--php-user',
        'www-data',
      ),
    );
    expect(q.status, q.stdout + q.stderr).toBe(0);
    expect((JSON.parse(readFileSync(byUid, 'utf8')) as PlanJson).sources[0]!.phpUids).toEqual([WWW, OTHER]);
    expect(cli(['apply', '--plan', byUid]).status).toBe(0);
    expect(await present([...www, ...other])).toBe(4);
    expect(await present(nob)).toBe(0);

    const unknown = cli(
      planArgs(
        { dir, target: redis.url, keyFile, planFile: join(root, 'unknown.json'), artifactsDir: art },
        '--php-user',
        'no-such-user-x',
      ),
    );
    expect(usageLine(unknown)).toMatch(/--php-user no-such-user-x: no such user in the system's user database/);
    expect(existsSync(join(root, 'unknown.json'))).toBe(false);
  });

  it('owners in similar numbers: plan refuses and asks for --php-user', () => {
    const dir = sessionDir('pools');
    owned(dir, 'poola', 4, WWW);
    owned(dir, 'poolb', 3, NOBODY);
    const planFile = join(root, 'pools.json');
    const args = planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'pools-art') });
    const r = cli(args);
    expect(usageLine(r)).toMatch(
      /session files belong to several users \(uid 33 \(www-data\): 4, uid 65534 \(nobody\): 3\) .*give --php-user NAME\|UID/,
    );
    expect(existsSync(planFile)).toBe(false);
    expect(cli([...args, '--php-user', 'www-data']).status).toBe(0);
  });

  it("no session file at plan time: files of another owner written since make apply fail (they may be PHP's), not a quiet NOT TAKEN", async () => {
    await client.flushall();
    const dir = sessionDir('empty-at-plan');
    const planFile = join(root, 'empty-plan.json');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'empty-art') }));
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/owners {6}no session file yet, so the user PHP runs as is not known: .*give --php-user/);
    const ids = owned(dir, 'later', 3, WWW); // PHP (www-data) wrote sessions after the plan
    const a = cli(['apply', '--plan', planFile]);
    expect(a.status, a.stdout + a.stderr).toBe(1);
    expect(a.stdout).toMatch(
      /NOT TAKEN {3}3 file\(s\) owned by another user than root: the plan saw no session file, .*Run plan again with --php-user NAME, then apply/,
    );
    expect(a.stdout).not.toMatch(/next +deploy/);
    expect(await present(ids)).toBe(0);
    // plan --php-user www-data, then apply: copied.
    expect(
      cli([...planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'empty-art') }), '--php-user', 'www-data'])
        .status,
    ).toBe(0);
    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    expect(await present(ids)).toBe(3);
  });

  it('no session file at plan time: verify fails and purge keeps the files of another owner written since, both saying to re-run plan with --php-user', async () => {
    await client.flushall();
    const dir = sessionDir('empty-then-verify');
    const planFile = join(root, 'empty-verify-plan.json');
    const art = join(root, 'empty-verify-art');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: art }));
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/owners {6}no session file yet/);
    const files = owned(dir, 'since', 4, WWW).map((id) => join(dir, `sess_${id}`));
    expect(cli(['apply', '--plan', planFile]).status).toBe(1);

    const v = cli(['verify', '--plan', planFile]);
    expect(v.status, v.stdout + v.stderr).toBe(1);
    expect(v.stdout).toMatch(/^session-migrate verify: FAILED$/m);
    expect(v.stdout.split('\n').filter((l) => /owned by another user than root while the plan knows no user PHP runs as/.test(l))).toEqual([
      "  NOT TAKEN   4 session file(s) owned by another user than root while the plan knows no user PHP runs as (it saw no session file): maybe PHP's sessions, not copied; run plan again with --php-user NAME, then apply",
    ]);
    expect(v.stdout).toMatch(/failures {4}owner-unknown 4/);
    const vj = JSON.parse(cli(['verify', '--plan', planFile, '--json']).stdout) as { ok: boolean; ownerUnknown?: number };
    expect(vj).toMatchObject({ ok: false, ownerUnknown: 4 });
    // The same with the directory given now: it takes the plan's (unknown) PHP user.
    const given = cli(['verify', '--plan', planFile, '--source', `files:${dir}`, '--json']);
    expect(given.status).toBe(1);
    expect(JSON.parse(given.stdout)).toMatchObject({ ok: false, ownerUnknown: 4, failureCounts: { 'owner-unknown': 4 } });

    for (const dry of [['--dry-run'], []]) {
      const g = cli(['purge', '--plan', planFile, ...dry]);
      expect(g.status, g.stdout + g.stderr).toBe(1);
      expect(g.stdout).toMatch(
        /^ {2}KEPT {8}4 file\(s\) owned by another user than root while the plan knows no user PHP runs as \(it saw no session file\): maybe PHP's sessions, never copied; run plan again with --php-user NAME, then apply and purge$/m,
      );
      expect(g.stdout).not.toContain('no sessions of this application');
      expect(g.stdout).not.toContain('remove them by hand');
      // Maybe PHP's sessions: counted among the plaintext sessions that remain.
      expect(g.stdout).toMatch(/^ {2}remaining {3}\d+ plaintext session file\(s\), [^;]*$/m);
      expect(g.stdout).not.toContain('of other users left alone');
      for (const f of files) expect(existsSync(f)).toBe(true);
    }
    const gj = JSON.parse(cli(['purge', '--plan', planFile, '--json']).stdout) as { ownerUnknown?: number };
    expect(gj.ownerUnknown).toBe(4);

    // plan --php-user www-data, apply, verify, purge: done.
    expect(cli([...planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: art }), '--php-user', 'www-data']).status).toBe(0);
    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    const v2 = cli(['verify', '--plan', planFile]);
    expect(v2.status, v2.stdout + v2.stderr).toBe(0);
    const g2 = cli(['purge', '--plan', planFile]);
    expect(g2.status, g2.stdout + g2.stderr).toBe(0);
    for (const f of files) expect(existsSync(f)).toBe(false);
  });

  it('--php-user that owns none of the session files while other users own some: plan refuses; empty or root-only directories are fine', () => {
    const dir = sessionDir('wrong-user');
    owned(dir, 'www', 27, WWW);
    const planFile = join(root, 'wrong-user.json');
    const art = join(root, 'wrong-user-art');
    const r = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: art }, '--php-user', '99999'));
    expect(usageLine(r)).toMatch(
      /: --php-user 99999 owns none of the 27 session files \(uid 33 \(www-data\): 27\): give the user PHP runs as$/,
    );
    expect(existsSync(planFile)).toBe(false);
    const two = cli(
      planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: art }, '--php-user', '99999', '--php-user', 'nobody'),
    );
    expect(usageLine(two)).toMatch(/--php-user 99999, --php-user 65534 \(nobody\) own none of the 27 session files/);
    expect(existsSync(planFile)).toBe(false);
    // One of the users given owns them: accepted.
    expect(
      cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: art }, '--php-user', '99999', '--php-user', 'www-data'))
        .status,
    ).toBe(0);

    const empty = sessionDir('wrong-user-empty');
    const e = cli(
      planArgs({ dir: empty, target: redis.url, keyFile, planFile: join(root, 'wu-empty.json'), artifactsDir: art }, '--php-user', '99999'),
    );
    expect(e.status, e.stdout + e.stderr).toBe(0);
    const rootOnly = sessionDir('wrong-user-root');
    owned(rootOnly, 'root', 3, 0);
    const o = cli(
      planArgs(
        { dir: rootOnly, target: redis.url, keyFile, planFile: join(root, 'wu-root.json'), artifactsDir: art },
        '--php-user',
        '99999',
      ),
    );
    expect(o.status, o.stdout + o.stderr).toBe(0);
  });

  it("every session file root's: PHP runs as root and, like PHP, every owner's file is taken", async () => {
    await client.flushall();
    const dir = sessionDir('as-root');
    const ids = owned(dir, 'root', 3, 0);
    const planFile = join(root, 'as-root.json');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'as-root-art') }));
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/owners {6}PHP runs as root \(every session file is root's\): session files of every owner are taken/);
    const later = owned(dir, 'nobody', 2, NOBODY);
    const a = cli(['apply', '--plan', planFile]);
    expect(a.status, a.stdout + a.stderr).toBe(0);
    expect(await present([...ids, ...later])).toBe(5);
  });

  it('a plan made before plans recorded the PHP user: apply refuses it, verify warns', async () => {
    await client.flushall();
    const dir = sessionDir('old');
    owned(dir, 'www', 4, WWW);
    const planted = [sid('plant', 9)];
    plant(dir, planted[0]!, NOBODY);
    const planFile = join(root, 'old-plan.json');
    expect(cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'old-art') })).status).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Record<string, Array<Record<string, unknown>> & Record<string, unknown>>;
    for (const s of [plan.source as unknown as Record<string, unknown>, ...plan.sources!]) {
      delete s.phpUids;
      delete s.phpUidsFrom;
    }
    writeFileSync(planFile, JSON.stringify(plan));
    const a = cli(['apply', '--plan', planFile]);
    expect(usageLine(a)).toMatch(/does not record the user PHP runs as for files:\S+ .*nothing was written: re-run plan/);
    expect(await client.dbsize()).toBe(0);
    const v = cli(['verify', '--plan', planFile]);
    expect(v.stderr).toMatch(/warning: plan \S+ does not record the user PHP runs as .*re-run plan/);

    // A hand-edited record is refused, never read as "any owner".
    for (const s of [plan.source as unknown as Record<string, unknown>, ...plan.sources!]) s.phpUids = ['33'];
    writeFileSync(planFile, JSON.stringify(plan));
    expect(usageLine(cli(['apply', '--plan', planFile]))).toMatch(/missing or malformed fields; re-run plan/);
  });
});

/**
 * plan's check of --gc-maxlifetime against the session files (use-cases/plan.ts gcMaxlifetimeEvidence):
 * PHP's GC deletes session files whose mtime is more than gc_maxlifetime old (php-src
 * ext/session/mod_files.c ps_files_cleanup_dir), so files far older than the plan's gc_maxlifetime
 * that are still there say PHP runs with a longer one (or nothing cleans). Real PHP writes the
 * sessions and runs its own GC with session.gc_maxlifetime 86400; plan with the default 1440 warns
 * (apply would skip those live sessions as expired), plan with PHP's value does not. Real
 * redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyFile } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { cli, planArgs } from './support/migrate-cli.ts';

let redis: RedisServer;
let root: string;
let keyFile: string;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-plan-gc-'));
  keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Runs PHP's files handler on `dir`: one session_start() per ID (writing `n|i:1;`), GC as configured. */
function php(dir: string, ids: string[], ini: Record<string, string>): void {
  const code = `foreach (array_slice($argv, 1) as $id) { session_id($id); session_start(); $_SESSION['n'] = 1; session_write_close(); }`;
  const d = Object.entries({ 'session.save_path': dir, 'session.save_handler': 'files', 'session.use_cookies': '0', ...ini }).flatMap(
    ([k, v]) => ['-d', `${k}=${v}`],
  );
  execFileSync('php', ['-n', ...d, '-r', code, '--', ...ids]);
}

const id = (tag: string, i: number): string => `${tag}${String(i).padStart(3, '0')}${'k'.repeat(26 - tag.length)}`;
const age = (dir: string, ids: string[], seconds: number): void => {
  const t = Date.now() / 1000 - seconds;
  for (const x of ids) utimesSync(join(dir, `sess_${x}`), t, t);
};
const WARNING =
  /^session-migrate: warning: source files:\S+: (\d+) of (\d+) session files \((\d+) %\) last changed more than --gc-maxlifetime (\d+) s \+ 1 h ago and are still there/m;

describe('plan: --gc-maxlifetime against the session files PHP left', () => {
  it("files PHP's GC (gc_maxlifetime 86400) kept, 3 h old: plan with the default 1440 s warns, with 86400 it does not", () => {
    const dir = join(root, 'long');
    mkdirSync(dir);
    const fresh = Array.from({ length: 6 }, (_, i) => id('fresh', i));
    const idle = Array.from({ length: 4 }, (_, i) => id('idle', i));
    const gone = Array.from({ length: 5 }, (_, i) => id('gone', i));
    php(dir, [...fresh, ...idle, ...gone], { 'session.gc_probability': '0' });
    age(dir, idle, 3 * 3600); // users away for 3 h: live under PHP's 86400 s
    age(dir, gone, 2 * 86_400); // away for 2 days: PHP's GC deletes them
    // A request with GC on every start (probability 1/1) and PHP's lifetime: PHP decides what stays.
    php(dir, [id('gc', 0)], { 'session.gc_probability': '1', 'session.gc_divisor': '1', 'session.gc_maxlifetime': '86400' });
    expect(readdirSync(dir).sort()).toEqual([...fresh, id('gc', 0), ...idle].map((x) => `sess_${x}`).sort());

    const p = { dir, target: redis.url, keyFile, artifactsDir: join(root, 'art') };
    const short = cli(planArgs({ ...p, planFile: join(root, 'short.json') }));
    expect(short.status, short.stderr).toBe(0);
    const m = WARNING.exec(short.stderr);
    expect(m, short.stderr).not.toBeNull();
    expect(m!.slice(1, 5)).toEqual(['4', '11', '36', '1440']);
    expect(short.stderr.split('\n').filter((l) => WARNING.test(l))).toHaveLength(1);
    expect(short.stdout).toMatch(/11 found: 7 to migrate .*, 4 already expired/);

    const right = cli(planArgs({ ...p, planFile: join(root, 'right.json') }, '--gc-maxlifetime', '86400'));
    expect(right.status, right.stderr).toBe(0);
    expect(right.stderr).not.toMatch(/last changed more than --gc-maxlifetime/);
    expect(right.stdout).toMatch(/11 found: 11 to migrate .*, 0 already expired/);
  });

  it('no warning for files just past gc_maxlifetime (a cleaner runs every 30 min) or for a few stale files', () => {
    const dir = join(root, 'cleaned');
    mkdirSync(dir);
    const ids = Array.from({ length: 20 }, (_, i) => id('s', i));
    php(dir, ids, { 'session.gc_probability': '0' });
    age(dir, ids.slice(0, 8), 1440 + 1500); // waiting for sessionclean: expired, not evidence
    age(dir, ids.slice(8, 9), 30 * 86_400); // one stale file: 5 %, below the share
    const r = cli(planArgs({ dir, target: redis.url, keyFile, planFile: join(root, 'cleaned.json'), artifactsDir: join(root, 'art') }));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/20 found: 11 to migrate .*, 9 already expired/);
    expect(r.stderr).not.toMatch(/last changed more than --gc-maxlifetime/);
    // The same directory with one more stale file: 2 of 20 = 10 %, the share that warns.
    age(dir, ids.slice(9, 10), 30 * 86_400);
    const again = cli(planArgs({ dir, target: redis.url, keyFile, planFile: join(root, 'cleaned.json'), artifactsDir: join(root, 'art') }));
    expect(WARNING.exec(again.stderr)?.slice(1, 4), again.stderr).toEqual(['2', '20', '10']);
  });
});

/**
 * `session-migrate purge` through the CLI binary, against a real redis-server and a session directory:
 * refusal when a session is missing from Redis (nothing deleted, exit 1), deletion of sessions that
 * are the same, newer in Redis, destroyed (tombstone) or expired, --dry-run deleting nothing,
 * --allow-partial, symlinks left alone, a re-run changing nothing. Plus the pure rule (judgeSession)
 * and the identity re-check before unlink (removeFileIfUnchanged).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, watch, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, generateKeyFile, tombstoneKeyFor } from '@session-migrate/envelope';
import { decideSession, judgeSession, removeFileIfUnchanged, PURGE_NEWER_MARGIN_MS, type RedisState } from '@session-migrate/migrate';
import { startRedis, type RedisServer } from './support/servers.ts';
import { BIN, planArgs } from './support/migrate-cli.ts';
import { PHP_EXTENSIONS, lastJson, runPhp } from './php/harness.ts';
import { SERIALIZE_HANDLERS } from '@session-migrate/php-session';

const PREFIX = 'smsess:';
const MAX = 1440;

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

let redis: RedisServer;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let dir: string;
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-purge-'));
  keyFile = join(root, 'master.key');
  const key = generateKeyFile(keyFile);
  codec = await EnvelopeCodec.create([key]);
  key.fill(0);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});
beforeEach(async () => {
  dir = join(root, `sessions-${++n}`);
  mkdirSync(dir, { mode: 0o700 });
  await redis.client.flushall();
});

const keyOf = (id: string) => codec.keyName(PREFIX, id);
const tombstoneOf = (id: string) => tombstoneKeyFor(PREFIX, keyOf(id));

/** A session file with the given age in seconds. */
function file(id: string, data: string, ageSeconds = 100): string {
  const path = join(dir, `sess_${id}`);
  writeFileSync(path, data);
  const t = Date.now() / 1000 - ageSeconds;
  utimesSync(path, t, t);
  return path;
}

/** What apply does: the file's bytes sealed under its key, TTL = remaining lifetime. */
async function copied(id: string, data: string, ageSeconds = 100): Promise<void> {
  await redis.client.set(keyOf(id), codec.seal(keyOf(id), Buffer.from(data)), 'EX', MAX - ageSeconds);
}

/** What the handler's write() leaves: a value with TTL gc_maxlifetime, written now (SET ... EX). */
async function handlerWrote(id: string, data: string): Promise<void> {
  await redis.client.set(keyOf(id), codec.seal(keyOf(id), Buffer.from(data)), 'EX', MAX);
}

const purge = (...extra: string[]) =>
  cli(['purge', '--source', `files:${dir}`, '--target', redis.url, '--key-file', keyFile, '--gc-maxlifetime', String(MAX), ...extra]);
const sessionFiles = () =>
  readdirSync(dir)
    .filter((f) => f.startsWith('sess_'))
    .sort();

describe('purge (CLI)', () => {
  it('refuses while a session is missing from Redis: exit 1, nothing deleted, the session named (shortened)', async () => {
    file('samesame0000000000000000000001', 'a|i:1;');
    await copied('samesame0000000000000000000001', 'a|i:1;');
    file('missingmissing000000000000000001', 'secret|s:3:"abc";');
    const before = sessionFiles();
    const r = purge();
    expect(r.status, r.stderr).toBe(1);
    expect(sessionFiles()).toEqual(before);
    expect(r.stdout).toMatch(/NOT PROVEN {2}.*sess_missin….*: not in Redis/);
    expect(r.stdout).toContain('REFUSED');
    expect(r.stdout).toMatch(/remaining {3}2 plaintext session file\(s\)/);
    expect(r.stdout).not.toContain('missingmissing000000000000000001'); // no replayable session ID
    expect(r.stdout).not.toContain('secret');

    const json = JSON.parse(purge('--json').stdout);
    expect(json).toMatchObject({
      ok: false, // every --json document has the verdict, as a stopped run's (ok: false)
      complete: false,
      deleting: false,
      deleted: 0,
      blocked: { missing: 1 },
      deletable: { same: 1 },
      remaining: { files: 2, bytes: 6 + 17 },
    });
  });

  it('--dry-run lists what it would delete and deletes nothing', async () => {
    file('dryrun00000000000000000000001', 'a|i:1;');
    await copied('dryrun00000000000000000000001', 'a|i:1;');
    const before = sessionFiles().map((f) => lstatSync(join(dir, f)).mtimeMs);
    const r = purge('--dry-run');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/would delete .*\/sess_dryrun…: same/);
    expect(r.stdout).toMatch(/remaining {3}0 plaintext session file\(s\), 0 B would remain/);
    expect(sessionFiles()).toHaveLength(1);
    expect(sessionFiles().map((f) => lstatSync(join(dir, f)).mtimeMs)).toEqual(before);
  });

  it('deletes sessions that are the same, newer in Redis, destroyed or expired; leaves symlinks; a re-run changes nothing', async () => {
    file('samesame0000000000000000000002', 'a|i:1;');
    await copied('samesame0000000000000000000002', 'a|i:1;');
    file('newernewer000000000000000000002', 'cart|i:1;', 300);
    await handlerWrote('newernewer000000000000000000002', 'cart|i:2;'); // the handler took it over and wrote since
    file('destroyed00000000000000000000002', 'u|i:1;');
    await redis.client.set(tombstoneOf('destroyed00000000000000000000002'), '1', 'EX', MAX);
    file('expired0000000000000000000000002', 'old|i:1;', MAX + 60);
    file('emptyempty000000000000000000002', '');
    const outside = join(root, `outside-${n}`);
    writeFileSync(outside, 'not a session');
    symlinkSync(outside, join(dir, 'sess_symlinkaaaaaaaaaaaaaaaaaaa2'));

    const r = purge('--json');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      ok: true, // a script tests .ok on success too, as on a stopped run's document (ok: false)
      complete: true,
      deleted: 5,
      changed: 0,
      deletable: { same: 1, newer: 1, destroyed: 1, expired: 1, empty: 1 },
      skipped: { symlink: 1 },
      remaining: { files: 0, bytes: 0 },
    });
    expect(sessionFiles()).toEqual(['sess_symlinkaaaaaaaaaaaaaaaaaaa2']);
    expect(existsSync(outside)).toBe(true);
    // Redis is untouched by purge
    expect(await redis.client.exists(keyOf('samesame0000000000000000000002'), keyOf('newernewer000000000000000000002'))).toBe(2);

    const again = purge();
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/deleted {5}0 file\(s\)/);
  });

  it('refuses a file rewritten after apply copied it (Redis holds the older session)', async () => {
    const id = 'olderolder0000000000000000000003';
    await copied(id, 'v|i:1;', 2);
    file(id, 'v|i:2;', 1); // a host still on the files handler wrote it again
    const r = purge('--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ blocked: { older: 1 }, deleted: 0 });
    expect(sessionFiles()).toEqual([`sess_${id}`]);
  });

  it('a --gc-maxlifetime smaller than the one the sessions were written with is refused before anything is deleted (adversarial review)', async () => {
    // PHP runs with gc_maxlifetime 86400: the handler wrote this session an hour ago (TTL 86400 - 3600).
    const id = 'gcsmallgcsmall000000000000000010';
    await redis.client.set(keyOf(id), codec.seal(keyOf(id), Buffer.from('v|i:1;')), 'EX', 86_400 - 3600);
    file(id, 'v|i:2;', 600); // a host still on the files handler wrote it again 10 minutes ago
    // The operator forgets --gc-maxlifetime 86400: with 1440, the older Redis copy would look newer.
    const r = purge();
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/TTL of \d+ s, longer than the gc_maxlifetime given \(1440 s\).*--gc-maxlifetime/);
    expect(r.stderr).not.toContain(id);
    expect(sessionFiles()).toEqual([`sess_${id}`]);
    const right = cli([
      'purge',
      '--source',
      `files:${dir}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      '86400',
      '--json',
    ]);
    expect(right.status).toBe(1);
    expect(JSON.parse(right.stdout)).toMatchObject({ blocked: { older: 1 }, deleted: 0 });
    expect(sessionFiles()).toEqual([`sess_${id}`]);
  });

  it('a Redis flush between the check and the deletes: each batch is checked again right before its deletes; files whose copy is gone are kept, exit 1 (follow-up of the adversarial review)', async () => {
    // A large directory, every session in Redis (what apply leaves). The FLUSHALL (a restart with
    // --save '', a FLUSHDB, an eviction or a failover to a replica without the writes look alike) is
    // sent the moment the first file disappears, i.e. after every session was checked.
    const N = 12_000;
    const ids = Array.from({ length: N }, (_, i) => `flushrace${String(i).padStart(23, '0')}`);
    const pipe = redis.client.pipeline();
    for (const id of ids) {
      file(id, `n|i:${id.length};`);
      pipe.set(keyOf(id), codec.seal(keyOf(id), Buffer.from(`n|i:${id.length};`)), 'EX', MAX - 100);
    }
    await pipe.exec();
    let flushed = false;
    let deletedAfterFlush = 0;
    let flushing: Promise<unknown> | undefined;
    const watcher = watch(dir, (_event, name) => {
      if (name === null || existsSync(join(dir, name))) return;
      if (flushed) deletedAfterFlush++;
      else
        flushing ??= redis.client.flushall().then(() => {
          flushed = true;
        });
    });
    const args = [
      'purge',
      '--source',
      `files:${dir}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      String(MAX),
      '--json',
    ];
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve)); // after the pipes' last data
    watcher.close();
    await flushing;
    expect(flushed).toBe(true); // the race happened: Redis lost everything while purge was deleting
    expect(await redis.client.dbsize()).toBe(0);
    const left = sessionFiles().length;
    const report = JSON.parse(stdout);
    // Without the re-check every file goes (left 0). With it: only a batch whose re-check came before
    // the flush is deleted after it; every other file is kept, listed and counted as lost.
    expect(status).toBe(1);
    expect(left).toBeGreaterThan(N / 2);
    // (2 batches: the first's deletes still under way when the flush lands, and at most one re-check
    // sent before it; without the re-check about N - 500.)
    expect(deletedAfterFlush).toBeLessThanOrEqual(1000);
    expect(report.lost).toBe(left);
    expect(report.deleted).toBe(N - left);
    expect(report.blocked).toEqual({ missing: left });
    expect(report.remaining.files).toBe(left);
    expect(report.complete).toBe(false);
  }, 120_000);

  it('--allow-partial deletes only the proven files and still exits 1', async () => {
    file('samesame0000000000000000000004', 'a|i:1;');
    await copied('samesame0000000000000000000004', 'a|i:1;');
    file('missingmissing000000000000000004', 'b|i:1;');
    const r = purge('--allow-partial', '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ deleted: 1, remaining: { files: 1, bytes: 6 } });
    expect(sessionFiles()).toEqual(['sess_missingmissing000000000000000004']);
  });

  it('depth 2 save_path; a value that does not open blocks', async () => {
    const id = 'abdepth2000000000000000000000005';
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    writeFileSync(join(dir, 'a', 'b', `sess_${id}`), 'x|i:1;');
    await redis.client.set(keyOf(id), 'x|i:1;', 'EX', 600); // plaintext planted in Redis: not proof
    const r = cli(['purge', '--source', `files:2;${dir}`, '--target', redis.url, '--key-file', keyFile, '--json']);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ blocked: { 'not-envelope': 1 } });
    await copied(id, 'x|i:1;');
    const ok = cli(['purge', '--source', `files:2;${dir}`, '--target', redis.url, '--key-file', keyFile, '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(existsSync(join(dir, 'a', 'b', `sess_${id}`))).toBe(false);
  });

  it('usage errors: one line, exit 2', () => {
    const r = cli(['purge', '--source', `files:${dir}`]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const bad = cli(['purge', '--source', 'ftp:/x', '--target', redis.url, '--key-file', keyFile]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--source must be files:DIR or redis:URL/);
  });

  it('a plaintext phpredis source: same, newer or missing by the same rule; keys deleted by compare-and-delete', async () => {
    const src = 'PHPREDIS_SESSION:';
    await redis.client.set(`${src}samesame0000000000000000000006`, 'a|i:1;', 'EX', MAX - 100);
    await copied('samesame0000000000000000000006', 'a|i:1;');
    await redis.client.set(`${src}newernewer000000000000000000006`, 'b|i:1;', 'EX', MAX - 300); // phpredis wrote it 300 s ago
    await handlerWrote('newernewer000000000000000000006', 'b|i:2;');
    await redis.client.set(`${src}missingmissing000000000000000006`, 'c|i:1;', 'EX', MAX - 100);
    const source = `redis:${redis.url}?prefix=${src}`;
    const args = ['purge', '--source', source, '--target', redis.url, '--key-file', keyFile, '--gc-maxlifetime', String(MAX), '--json'];
    const refused = cli(args);
    expect(refused.status, refused.stderr).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      sourceKind: 'redis',
      deleted: 0,
      blocked: { missing: 1 },
      deletable: { same: 1, newer: 1 },
      remaining: { files: 3 },
    });
    expect(refused.stdout).not.toContain('missingmissing000000000000000006');
    expect(await redis.client.keys(`${src}*`)).toHaveLength(3);

    await copied('missingmissing000000000000000006', 'c|i:1;');
    const done = cli(args);
    expect(done.status, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ deleted: 3, remaining: { files: 0, bytes: 0 } });
    expect(await redis.client.keys(`${src}*`)).toEqual([]);
    expect(await redis.client.keys(`${PREFIX}*`)).toHaveLength(3); // the encrypted sessions stay
  });

  it('sessions PHP would reject (never copied by apply) do not block purge: deleted as corrupt under the plan serialize_handler; one rewritten since with valid data must be proven (fresh-clone review)', async () => {
    const ids = ['c0ffee00000000000000000000000a01', 'c0ffee00000000000000000000000a02', 'c0ffee00000000000000000000000a03'];
    for (const id of ids) file(id, 'a|i:1;', 10);
    const bad = 'badbad00000000000000000000000a04';
    const rewritten = 'badbad00000000000000000000000a05';
    file(bad, 'garbage-not-php', 10);
    file(rewritten, 'garbage-not-php', 10);
    const planFile = join(root, `plan-${n}.json`);
    const plan = cli(
      planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, `artifacts-${n}`) }, '--gc-maxlifetime', String(MAX)),
    );
    expect(plan.status, plan.stderr).toBe(0);
    const apply = cli(['apply', '--plan', planFile]);
    expect(apply.status, apply.stderr).toBe(0);
    expect(apply.stdout).toContain('2 that PHP would reject');
    expect(cli(['verify', '--plan', planFile]).status).toBe(0);

    // A corrupt file PHP (or anyone) rewrote since with a valid session: judged on its bytes now.
    file(rewritten, 'b|i:2;', 5);
    const refused = cli(['purge', '--plan', planFile, '--json']);
    expect(refused.status, refused.stderr).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ deleted: 0, blocked: { missing: 1 }, deletable: { same: 3, corrupt: 1 } });
    expect(sessionFiles()).toHaveLength(5);

    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    const r = cli(['purge', '--plan', planFile]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sessions {4}5 file\(s\): 5 proven \(same 4, corrupt 1\), 0 not proven/);
    expect(r.stdout).toMatch(
      /corrupt {5}1 file\(s\) PHP would reject under the plan's session\.serialize_handler .*; deleted without a copy in Redis/,
    );
    expect(r.stdout).toMatch(/deleted {5}5 file\(s\)/);
    expect(r.stdout).not.toContain(bad);
    expect(sessionFiles()).toEqual([]);
  });

  it('a phpredis source key PHP would reject is deleted as corrupt under the plan (compare-and-delete); without a plan it still blocks', async () => {
    const src = 'PHPREDIS_SESSION:';
    await redis.client.set(`${src}c0ffee00000000000000000000000b01`, 'a|i:1;', 'EX', MAX - 10);
    await redis.client.set(`${src}badbad00000000000000000000000b02`, 'garbage-not-php', 'EX', MAX - 10);
    const source = `redis:${redis.url}?prefix=${src}`;
    const planFile = join(root, `plan-${n}.json`);
    const plan = cli(
      planArgs(
        { source, target: redis.url, keyFile, planFile, artifactsDir: join(root, `artifacts-${n}`) },
        '--gc-maxlifetime',
        String(MAX),
      ),
    );
    expect(plan.status, plan.stderr).toBe(0);
    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    // No plan: no serialize_handler known for sure, so a guess never deletes what it cannot prove.
    const guessed = cli([
      'purge',
      '--source',
      source,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      String(MAX),
      '--dry-run',
      '--json',
    ]);
    expect(guessed.status).toBe(1);
    expect(JSON.parse(guessed.stdout)).toMatchObject({ blocked: { missing: 1 }, deletable: { same: 1 } });
    const r = cli(['purge', '--plan', planFile, '--json']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      sourceKind: 'redis',
      deleted: 2,
      deletable: { same: 1, corrupt: 1 },
      remaining: { files: 0 },
    });
    expect(await redis.client.keys(`${src}*`)).toEqual([]);
    // apply again after the purge: nothing left to copy, said of keys (before: "its files are gone").
    const again = cli(['apply', '--plan', planFile]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain(
      '  nothing to do: no session of the plan was left to copy (its keys are gone, skipped or expired since the plan: see the counts above); nothing changed',
    );
  });

  it('a phpredis source key apply could not read (larger than --max-session-bytes): NOT PROVEN says the source key, not "the file", could not be read', async () => {
    const src = 'PHPREDIS_SESSION:';
    const big = 'x'.repeat(200);
    await redis.client.set(`${src}b16b16000000000000000000000000b1`, `a|s:${big.length}:"${big}";`, 'EX', MAX - 10);
    const source = `redis:${redis.url}?prefix=${src}`;
    const planFile = join(root, `plan-${n}.json`);
    const plan = cli(
      planArgs(
        { source, target: redis.url, keyFile, planFile, artifactsDir: join(root, `artifacts-${n}`) },
        ...['--gc-maxlifetime', String(MAX), '--max-session-bytes', '64'],
      ),
    );
    expect(plan.status, plan.stderr).toBe(0);
    const r = cli(['purge', '--plan', planFile, '--dry-run']);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    // Before: "the file could not be read" of a Redis key.
    expect(r.stdout).toMatch(
      /^ {2}NOT PROVEN {2}PHPREDIS_SESSION:b16b16….*: the source key could not be read \(unreadable, oversized or changing\)$/m,
    );
    await redis.client.del(`${src}b16b16000000000000000000000000b1`);
  });
});

describe('a session PHP would reject (the corrupt verdict), with real PHP as the oracle', () => {
  // What the `corrupt` verdict rests on: PHP cannot decode it, warns, and its files handler's destroy
  // unlinks the file (php-src ext/session/session.c php_session_initialize -> php_session_cancel_decode).
  const script = `<?php
set_error_handler(function ($no, $str) { echo $str, "\n"; return true; });
ini_set('session.save_path', $argv[1]);
ini_set('session.serialize_handler', $argv[2]);
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
session_id($argv[3]);
echo json_encode(['started' => session_start(), 'exists' => file_exists($argv[1] . '/sess_' . $argv[3])]), "\n";
`;
  it.each(SERIALIZE_HANDLERS)('%s: decideSession says corrupt, and session_start destroys the file', (handler) => {
    const id = 'badbad00000000000000000000000c01';
    const path = file(id, 'garbage-not-php', 10);
    expect(decideSession(Buffer.from('garbage-not-php'), lstatSync(path).mtimeMs, MAX, handler, Date.now() / 1000).action).toBe('corrupt');
    const php = join(root, 'destroys.php');
    writeFileSync(php, script);
    const run = runPhp([...PHP_EXTENSIONS, php, dir, handler, id]);
    expect(run.stdout).toContain('Failed to decode session object. Session has been destroyed');
    expect(lastJson(run)).toEqual({ started: false, exists: false });
    expect(sessionFiles()).toEqual([]);
  });
});

describe('judgeSession (the rule, pure)', () => {
  const now = 1_700_000_000_000;
  const file = { data: Buffer.from('a|i:1;'), mtimeMs: now - 100_000 };
  const state = (over: Partial<RedisState>): RedisState => ({ value: Buffer.from('env'), pttlMs: 1_000_000, tombstone: false, ...over });
  const opened = (text: string) => ({ ok: true as const, plaintext: Buffer.from(text) });

  it('covers every verdict', () => {
    expect(judgeSession({ ...file, mtimeMs: now - MAX * 1000 }, state({ value: null }), undefined, MAX, now)).toEqual({
      deletable: true,
      reason: 'expired',
    });
    expect(judgeSession(file, state({ value: null, tombstone: true }), undefined, MAX, now)).toEqual({
      deletable: true,
      reason: 'destroyed',
    });
    expect(judgeSession(file, state({ value: null }), undefined, MAX, now)).toEqual({ deletable: false, reason: 'missing' });
    expect(judgeSession({ ...file, data: Buffer.alloc(0) }, state({ value: null }), undefined, MAX, now)).toEqual({
      deletable: true,
      reason: 'empty',
    });
    expect(judgeSession(file, state({ value: 'wrong-type' }), undefined, MAX, now)).toEqual({ deletable: false, reason: 'wrong-type' });
    expect(judgeSession(file, state({}), { ok: false, reason: 'auth-failed' }, MAX, now)).toEqual({
      deletable: false,
      reason: 'auth-failed',
    });
    expect(judgeSession(file, state({}), opened('a|i:1;'), MAX, now)).toEqual({ deletable: true, reason: 'same' });
    expect(judgeSession(file, state({ pttlMs: -1 }), opened('a|i:2;'), MAX, now)).toEqual({ deletable: false, reason: 'no-ttl' });
  });

  it('newer: the inferred last write (now + PTTL - gc_maxlifetime) is at least the margin after the mtime', () => {
    const pttlFor = (writeMs: number) => writeMs + MAX * 1000 - now;
    const at = file.mtimeMs + PURGE_NEWER_MARGIN_MS;
    expect(judgeSession(file, state({ pttlMs: pttlFor(at) }), opened('a|i:2;'), MAX, now)).toEqual({ deletable: true, reason: 'newer' });
    expect(judgeSession(file, state({ pttlMs: pttlFor(at - 1) }), opened('a|i:2;'), MAX, now)).toEqual({
      deletable: false,
      reason: 'older',
    });
    // what apply stores for the file's older version: TTL = floor(mtime) + max - floor(now), inferred < mtime + 1 s
    const applyTtlMs = (Math.floor(file.mtimeMs / 1000) + MAX - Math.floor(now / 1000)) * 1000;
    expect(judgeSession(file, state({ pttlMs: applyTtlMs }), opened('a|i:0;'), MAX, now)).toEqual({ deletable: false, reason: 'older' });
  });
});

describe('removeFileIfUnchanged', () => {
  it('keeps a file rewritten or touched after the check, removes an unchanged one, reports a vanished one', () => {
    const d = mkdtempSync(join(root, 'rm-'));
    const p = join(d, 'sess_abc');
    writeFileSync(p, 'a|i:1;');
    const seen = lstatSync(p, { bigint: true });
    const hash = '6b0b6d1d8c8f1c9b5e0cb4a0e06f8e0a27f5e0d10a0e0bd3a8bb1b5b3b0bbd59';
    writeFileSync(p, 'a|i:2;'); // same size, new mtime/ctime
    expect(removeFileIfUnchanged(p, seen, hash)).toBe('changed');
    expect(existsSync(p)).toBe(true);
    const seen2 = lstatSync(p, { bigint: true });
    expect(removeFileIfUnchanged(p, seen2, createHash('sha256').update('a|i:2;').digest('hex'))).toBe('removed');
    expect(existsSync(p)).toBe(false);
    expect(removeFileIfUnchanged(p, seen2, hash)).toBe('gone');
  });
});

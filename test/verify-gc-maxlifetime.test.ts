/**
 * verify --source compares each file with its Redis copy; a copy that differs passes as `newer` when
 * its inferred last write (from its TTL and gc_maxlifetime) postdates the file. With a
 * --gc-maxlifetime smaller than the one the sessions were written with (a forgotten option falls
 * back to 1440), an older copy would pass for newer: verify must stop with one line, not succeed
 * (adversarial review of the lifecycle commands).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, generateKeyFile } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { cli, planArgs } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
let redis: RedisServer;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-verify-gc-'));
  keyFile = join(root, 'master.key');
  const key = generateKeyFile(keyFile);
  codec = await EnvelopeCodec.create([key]);
  key.fill(0);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('verify --source with a --gc-maxlifetime smaller than the sessions were written with', () => {
  it('stops with one line naming the key (exit 2) instead of taking an older Redis copy for newer', async () => {
    const dir = join(root, 'sessions');
    mkdirSync(dir, { mode: 0o700 });
    const id = 'gcsmallgcsmall000000000000000030';
    const key = codec.keyName(PREFIX, id);
    // PHP runs with gc_maxlifetime 86400: the handler wrote this session an hour ago.
    await redis.client.set(key, codec.seal(key, Buffer.from('v|i:1;')), 'EX', 86_400 - 3600);
    // The file was written again 10 minutes ago: Redis holds the older copy.
    const path = join(dir, `sess_${id}`);
    writeFileSync(path, 'v|i:2;');
    const t = Date.now() / 1000 - 600;
    utimesSync(path, t, t);
    const args = ['verify', '--source', `files:${dir}`, '--target', redis.url, '--key-file', keyFile, '--json'];
    const r = cli(args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/TTL of \d+ s, longer than the gc_maxlifetime given \(1440 s\)/);
    expect(r.stderr + r.stdout).not.toContain(id);
    // With PHP's value the copy is reported for what it is.
    const right = cli([...args, '--gc-maxlifetime', '86400']);
    expect(right.status, right.stderr).toBe(1);
    expect(right.stdout).toContain('different-content');
  });
});

describe('verify --plan (presence) with a plan whose gc_maxlifetime is smaller than the TTLs in Redis', () => {
  it('stops with one line naming the key (exit 2) instead of counting a live session missing from Redis as expired', async () => {
    await redis.client.flushall(); // the key of the test above would be named instead
    const dir = join(root, 'sessions-presence');
    mkdirSync(dir, { mode: 0o700 });
    // PHP runs with gc_maxlifetime 86400: the handler wrote this session a minute ago.
    const inRedis = 'gcsmallgcsmall000000000000000050';
    const key = codec.keyName(PREFIX, inRedis);
    await redis.client.set(key, codec.seal(key, Buffer.from('v|i:1;')), 'EX', 86_400 - 60);
    const inFile = join(dir, `sess_${inRedis}`);
    writeFileSync(inFile, 'v|i:1;');
    // Written two hours ago: live for PHP (86400), expired for a plan made with 1440, and not in Redis.
    const lost = 'gcsmallgcsmall000000000000000051';
    const path = join(dir, `sess_${lost}`);
    writeFileSync(path, 'v|i:2;');
    const t = Date.now() / 1000 - 7200;
    utimesSync(path, t, t);
    const planFile = join(root, 'plan-presence.json');
    const plan = cli(
      planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'art-presence') }, '--gc-maxlifetime', '1440'),
    );
    expect(plan.status, plan.stderr).toBe(0);
    const r = cli(['verify', '--plan', planFile, '--json']);
    expect(r.status, r.stdout).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(key);
    expect(r.stderr).toMatch(/TTL of \d+ s, longer than the gc_maxlifetime given \(1440 s\)/);
    expect(r.stderr + r.stdout).not.toContain(lost);
    expect(r.stderr + r.stdout).not.toContain(inRedis);
    // With PHP's value the session is what it is: live and missing from Redis.
    const right = cli(['verify', '--plan', planFile, '--gc-maxlifetime', '86400', '--json']);
    expect(right.status, right.stderr).toBe(1);
    expect(right.stdout).toContain('missing');
  });
});

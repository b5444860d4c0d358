/**
 * apply never overwrites a key, but tells a key holding another session apart as `newerInRedis` (the
 * handler took it over since: fine) or a `conflict` (exit 1), by inferring write times from TTLs and
 * the plan's gc_maxlifetime. A plan made with a gc_maxlifetime smaller than PHP's (the sessions'
 * TTLs are longer than it) would make an older Redis copy count as newer: apply reported success
 * while the file held newer data, and purge would then be asked to delete it. Such a key is a
 * conflict naming its TTL (follow-up of the lifecycle adversarial review). Real redis-server.
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
  root = mkdtempSync(join(tmpdir(), 'sm-apply-gc-'));
  keyFile = join(root, 'master.key');
  const key = generateKeyFile(keyFile);
  codec = await EnvelopeCodec.create([key]);
  key.fill(0);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('apply with a plan whose gc_maxlifetime is smaller than the TTLs in Redis', () => {
  it('an older Redis copy is a conflict naming the key and its TTL (exit 1), not newer in Redis; the key is left alone', async () => {
    const dir = join(root, 'sessions');
    mkdirSync(dir, { mode: 0o700 });
    const id = 'gcsmallgcsmall000000000000000040';
    const key = codec.keyName(PREFIX, id);
    // PHP runs with gc_maxlifetime 86400: the handler wrote this session an hour ago.
    const older = codec.seal(key, Buffer.from('v|i:1;'));
    await redis.client.set(key, older, 'EX', 86_400 - 3600);
    // A host still on the files handler wrote it again 10 minutes ago: the file is newer.
    const path = join(dir, `sess_${id}`);
    writeFileSync(path, 'v|i:2;');
    const t = Date.now() / 1000 - 600;
    utimesSync(path, t, t);
    const planFile = join(root, 'plan.json');
    const p = { dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'artifacts') };
    const plan = cli(planArgs(p, '--gc-maxlifetime', '1440'));
    expect(plan.status, plan.stderr).toBe(0);

    for (const extra of [['--dry-run'], []]) {
      const r = cli(['apply', '--plan', planFile, '--json', ...extra]);
      expect(r.status, r.stderr).toBe(1);
      const report = JSON.parse(r.stdout) as {
        sessions: { counts: { newerInRedis: number; conflicts: number }; conflicts: Array<{ key: string; reason: string }> };
      };
      expect(report.sessions.counts).toMatchObject({ newerInRedis: 0, conflicts: 1 });
      expect(report.sessions.conflicts).toHaveLength(1);
      expect(report.sessions.conflicts[0]!.key).toBe(key);
      expect(report.sessions.conflicts[0]!.reason).toMatch(/TTL of 8\d{4} s, longer than the gc_maxlifetime given \(1440 s\)/);
      expect(r.stdout + r.stderr).not.toContain(id);
    }
    const text = cli(['apply', '--plan', planFile]);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`CONFLICT +${key} .*TTL of \\d+ s, longer than the gc_maxlifetime given \\(1440 s\\)`));
    expect(await redis.client.getBuffer(key)).toEqual(older); // never overwritten

    // With PHP's value the copy is what it is: older than the file, a plain conflict.
    const planRight = join(root, 'plan-86400.json');
    const right = cli(planArgs({ ...p, planFile: planRight, artifactsDir: join(root, 'artifacts-86400') }, '--gc-maxlifetime', '86400'));
    expect(right.status, right.stderr).toBe(0);
    const again = cli(['apply', '--plan', planRight, '--json']);
    expect(again.status).toBe(1);
    const c = (JSON.parse(again.stdout) as { sessions: { conflicts: Array<{ reason: string }> } }).sessions.conflicts;
    expect(c[0]!.reason).toMatch(/not newer than the source/);
  });
});

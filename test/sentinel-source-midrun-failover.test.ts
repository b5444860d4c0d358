/**
 * A Redis SOURCE behind Sentinel whose master is killed (kill -9) WHILE apply reads it (mid-SCAN),
 * the replica promoted meanwhile. A SCAN cursor is a position in one server's hash table, valid on
 * no other (RedisConnection.scan): apply must not go on with it on the new master, nor end as if the
 * source had been read whole. Having written sessions already, it exits 1 (a copy cut short, not bad
 * input: exit 2 would say nothing was written) with a NOT DONE line saying how many it wrote before
 * the source failed and that a re-run completes the copy; a re-run, after the failover, copies every
 * session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startNode, startSentinel, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { cli, countPresent, newKey, sid } from './support/migrate-cli.ts';
import { killMasterDuring } from './support/sentinel-failover.ts';

const N = 20_000;
const SOURCE_PREFIX = 'PHPREDIS_SESSION:'; // phpredis's default, a Redis source's default
const PREFIX = 'smsess:'; // plan's default target prefix (DEFAULT_PREFIX)
const MASTER_WAIT_MS = 30_000;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let ids: string[];
let s: SentinelTopology | undefined;
let target: RedisNode | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-sentinel-source-midrun-'));
  ({ keyFile, codec } = await newKey(root));
  [s, target] = await Promise.all([startSentinel(), startNode()]);
  const master = await s.currentMaster();
  ids = Array.from({ length: N }, (_, i) => sid('ssm', i));
  for (let i = 0; i < N; i += 1000) {
    const pipe = master.admin.pipeline();
    for (const id of ids.slice(i, i + 1000)) pipe.set(`${SOURCE_PREFIX}${id}`, `user|s:2:"${id.slice(3, 5)}";`, 'EX', 3600);
    await pipe.exec();
  }
  await s.waitForSync(30_000, { sentinelView: false });
  // Every session on the replica before its master is killed (WAIT, https://redis.io/commands/wait/).
  expect(await master.admin.call('WAIT', '1', '10000')).toBe(1);
  const p = cli([
    'plan',
    '--source',
    `redis:${s.url}`,
    '--target',
    target.url,
    '--key-file',
    keyFile,
    '--out',
    join(root, 'plan.json'),
    '--artifacts-dir',
    join(root, 'artifacts'),
  ]);
  expect(p.status, p.stderr + p.stdout).toBe(0);
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a Redis source behind Sentinel, its master killed while apply reads it', () => {
  it('apply exits 1 saying how many sessions it wrote before the source failed (run again), never a partial copy reported done; a re-run copies every session', async () => {
    let copied = 0;
    const { r, exitedBeforeKill, old, next } = await killMasterDuring(
      s!,
      MASTER_WAIT_MS,
      ['apply', '--plan', join(root, 'plan.json')],
      async () => (copied = Number(await target!.admin.dbsize())) >= 2000,
    );
    expect(exitedBeforeKill).toBe(false);
    expect(copied).toBeLessThan(N);
    // Sessions were written before the source failed: not bad input (exit 2 says nothing was
    // written) but a copy cut short: exit 1, the count written, a re-run to complete it, no success.
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr).not.toMatch(/^session-migrate: /m);
    const url = s!.url.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    const line = new RegExp(
      `^  NOT DONE    (\\d+) session\\(s\\) written, then the source failed: source Redis at ${url} failed while reading: the connection closed during SCAN of 127\\.0\\.0\\.1:${old.port} \\(a restart or fail-over\\?\\): keys may have been skipped; the sessions written are complete and valid: run apply again to copy the rest \\(it writes only what is missing\\)$`,
      'm',
    ).exec(r.stdout);
    expect(line, r.stdout).not.toBeNull();
    const written = Number(line![1]);
    expect(written).toBeGreaterThanOrEqual(copied);
    expect(written).toBeLessThan(N);
    expect(r.stdout).toContain(`  sessions    migrated ${written} (`);
    expect(r.stdout).not.toMatch(/^ {2}next/m);
    expect(Number(await target!.admin.dbsize())).toBe(written);
    expect(await countPresent(target!.admin, codec, PREFIX, ids)).toBeLessThan(N);
    // After the failover a re-run reads the source whole from the new master.
    const again = cli(['apply', '--plan', join(root, 'plan.json'), '--master-wait-ms', String(MASTER_WAIT_MS)]);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(await countPresent(target!.admin, codec, PREFIX, ids)).toBe(N);
    expect(await next.admin.dbsize()).toBe(N);
  }, 60_000);
});

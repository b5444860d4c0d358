/**
 * apply, verify, purge, rollback and rotate behind Sentinel, started during a failover (the master
 * killed, no replica promoted yet): like plan (test/plan-sentinel-failover.test.ts) each waits, when
 * it opens the target (migrate's openTarget: OpenOptions.waitForSentinelMaster), for the master the
 * sentinels report to answer as master, up to --master-wait-ms. A replica promoted within the wait:
 * the command runs against the new master. None in time: one line naming the master name, exit 2,
 * nothing written. Before the fix each failed at once (`cannot connect to the master ...:
 * ECONNREFUSED`), and purge, rollback and rotate had no --master-wait-ms.
 *
 * One topology (master A, replica B, one sentinel) for the file, in order: A killed, apply waits, B
 * promoted; A back as B's replica; B killed, verify, purge, rollback and rotate wait together, A
 * promoted; A killed too, none of the five finds a master.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startNode, startSentinel, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { duringSentinelFailover, expectNoMasterLine, runAllWaiting } from './support/sentinel-failover.ts';
import { cli, countPresent, newKey, planArgs, writeSessionFiles } from './support/migrate-cli.ts';

const N = 20;
const PREFIX = 'smsess:'; // plan's default (DEFAULT_PREFIX)
let root: string;
let dir: string;
let artifactsDir: string;
let planFile: string;
let codec: EnvelopeCodec;
let ids: string[];
let s: SentinelTopology | undefined;
let restarted: RedisNode | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-sentinel-open-failover-'));
  const key = await newKey(root);
  codec = key.codec;
  dir = join(root, 'sessions');
  ids = writeSessionFiles(dir, 'sof', N);
  artifactsDir = join(root, 'artifacts');
  planFile = join(root, 'plan.json');
  s = await startSentinel();
  const p = cli(planArgs({ dir, target: s.url, keyFile: key.keyFile, planFile, artifactsDir }));
  expect(p.status, p.stderr + p.stdout).toBe(0);
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await restarted?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('every command behind Sentinel waits for a master when it opens the target', () => {
  it('purge, rollback and rotate take --master-wait-ms: a bad value is one line naming the option, exit 2', () => {
    for (const command of [['purge', '--dry-run'], ['rollback', '--remove-keys', '--dry-run'], ['rotate']]) {
      const r = cli([...command, '--plan', planFile, '--master-wait-ms', '1.5']);
      expect(r.status, r.stderr + r.stdout).toBe(2);
      expect(r.stderr).toBe('session-migrate: --master-wait-ms must be a whole number of milliseconds from 0 to 600000, digits only\n');
      expect(r.stdout).toBe('');
    }
  });

  it('apply: the master killed, a replica promoted within --master-wait-ms: apply waits and migrates everything to the new master', async () => {
    const { results, exitedEarly, next } = await duringSentinelFailover(s!, [['apply', '--plan', planFile]]);
    const [a] = results;
    expect(a!.status, a!.stderr + a!.stdout).toBe(0);
    expect(exitedEarly).toEqual([false]);
    expect(a!.stdout).toContain(`  sessions    migrated ${N} (`);
    expect(await countPresent(next.admin, codec, PREFIX, ids)).toBe(N);
  }, 90_000);

  it('verify, purge, rollback and rotate: the master killed, a replica promoted within the wait: each waits and runs against the new master', async () => {
    // The killed master back on its port, as a replica of the new one, so a second failover can come.
    const gone = await s!.currentMaster().then((m) => s!.nodes.find((n) => n !== m)!);
    const master = await s!.currentMaster();
    restarted = await startNode({
      port: gone.port,
      args: ['--replicaof', '127.0.0.1', String(master.port), '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
    });
    s!.nodes[s!.nodes.indexOf(gone)] = restarted;
    await s!.waitForSync();
    const { results, exitedEarly, next } = await duringSentinelFailover(s!, [
      ['verify', '--plan', planFile],
      ['purge', '--plan', planFile, '--dry-run', '--json'],
      ['rollback', '--plan', planFile, '--remove-keys', '--dry-run', '--json'],
      ['rotate', '--plan', planFile, '--json'],
    ]);
    expect(next).toBe(restarted);
    const [verify, purge, rollback, rotate] = results.map((r) => {
      expect(r.status, r.stderr + r.stdout).toBe(0);
      return r;
    });
    expect(exitedEarly).toEqual([false, false, false, false]);
    expect(verify!.stdout).toMatch(/^session-migrate verify: OK$/m);
    expect(JSON.parse(purge!.stdout)).toMatchObject({ dryRun: true, sessions: N, deletable: { same: N } });
    expect(JSON.parse(rollback!.stdout)).toMatchObject({ dryRun: true, removed: N });
    expect(JSON.parse(rotate!.stdout)).toMatchObject({ ok: true, counts: { sessionKeys: N, alreadyCurrent: N } });
    expect(await countPresent(next.admin, codec, PREFIX, ids)).toBe(N);
  }, 120_000);

  it('no master within --master-wait-ms: each of the five says one line naming the master name, exit 2, nothing written', async () => {
    // The promoted master killed too: the sentinel names it, and no replica is left to promote.
    const master = await s!.currentMaster();
    await master.kill();
    rmSync(artifactsDir, { recursive: true, force: true });
    const WAIT_MS = 2000;
    const results = await runAllWaiting(
      [
        ['apply', '--plan', planFile],
        ['verify', '--plan', planFile],
        ['purge', '--plan', planFile],
        ['rollback', '--plan', planFile, '--remove-keys'],
        ['rotate', '--plan', planFile],
      ],
      WAIT_MS,
    );
    expectNoMasterLine(results, s!, master, WAIT_MS);
    // apply wrote no artifact, purge deleted no session file.
    expect(existsSync(artifactsDir)).toBe(false);
    expect(readdirSync(dir)).toHaveLength(N);
  }, 60_000);
});

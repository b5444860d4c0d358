/**
 * apply behind Sentinel after a failover whose old master is gone: the new master has no replica,
 * where the plan saw one. Its address differs from the plan's master; a single master's replicas are
 * recorded under `*` (the master, wherever it is), so apply still says `fewer than when the plan was
 * made`, exits 0 (a warning), and --min-replicas 1 makes the sessions `unconfirmed`, exit 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSentinel, type SentinelTopology } from './support/redis-topologies.ts';
import { cli, newKey, planArgs, writeSessionFiles } from './support/migrate-cli.ts';

let root: string;
let s: SentinelTopology | undefined;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sm-apply-sentinel-fewer-'));
});
afterAll(async () => {
  await s?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('apply behind Sentinel, the plan made before a failover that lost the old master', () => {
  it('says "fewer than when the plan was made" for the new master; --min-replicas 1: UNCONFIRMED, exit 1', async () => {
    s = await startSentinel();
    const { keyFile } = await newKey(root);
    const dir = join(root, 'sessions');
    writeSessionFiles(dir, 'fewer', 30);
    const planFile = join(root, 'plan.json');
    const p = cli(planArgs({ dir, target: s.url, keyFile, planFile, artifactsDir: join(root, 'art') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    const oldMaster = await s.currentMaster();
    expect(p.stdout).toMatch(/^ {2}replicas +connected now: the master: 1 /m);

    const newMaster = await s.failover({ waitForReplica: false, reconfigureOldMaster: 'sentinel' });
    await oldMaster.kill();
    expect(newMaster.port).not.toBe(oldMaster.port);

    const a = cli(['apply', '--plan', planFile]);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect(a.stdout).toContain('  sessions    migrated 30 (');
    expect(a.stdout).toMatch(/^ {2}replicas +fewer than when the plan was made: the master 0 of 1;/m);

    writeSessionFiles(dir, 'more', 5);
    const strict = cli(['apply', '--plan', planFile, '--min-replicas', '1', '--wait-timeout-ms', '200']);
    expect(strict.status, strict.stderr + strict.stdout).toBe(1);
    expect(strict.stdout).toMatch(/^ {2}UNCONFIRMED \d+ session\(s\) not confirmed on enough replicas in time/m);
  }, 120_000);
});

/**
 * plan's --master-wait-ms (the one of apply and verify: masterWaitOption, checkMasterWaitMs): a bad
 * value is one line naming the option, exit 2, nothing written; and it bounds how long plan's SCAN of
 * a Redis Cluster target waits for a replica to take over a master lost mid-scan (30 s before, fixed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fillOtherKeys, startCluster, scanCalls, type ClusterTopology } from './support/redis-topologies.ts';
import { cli, cliChild, newKey, planArgs, writeSessionFiles, BAD_MASTER_WAIT_MS } from './support/migrate-cli.ts';

let root: string;
let keyFile: string;
let cluster: ClusterTopology;
/**
 * Keys of other applications: enough that each master takes many SCAN calls (about 30 at COUNT 1000),
 * so that the kill lands mid-scan even when the test reacts late on a loaded machine (with 30,000 a
 * full run once saw the scan of the victim end first, and plan fail on a later command instead).
 */
const KEYS = 90_000;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-plan-master-wait-'));
  ({ keyFile } = await newKey(root));
  writeSessionFiles(join(root, 'sessions'), 'pm', 5);
  cluster = await startCluster({ replicas: 1 });
  await fillOtherKeys(cluster, KEYS);
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const paths = (name: string, target = cluster.url) => ({
  dir: join(root, 'sessions'),
  target,
  keyFile,
  planFile: join(root, `${name}.json`),
  artifactsDir: join(root, `${name}-artifacts`),
});

describe('plan --master-wait-ms', () => {
  it('a bad --master-wait-ms: one line naming the option, exit 2, nothing written', () => {
    for (const [bad, says] of BAD_MASTER_WAIT_MS) {
      const p = paths('bad');
      const r = cli([...planArgs(p), '--master-wait-ms', bad]);
      expect(r.status, r.stderr + r.stdout).toBe(2);
      expect(r.stderr).toBe(`session-migrate: --master-wait-ms must be ${says}\n`);
      expect(r.stdout).toBe('');
      expect(existsSync(p.planFile)).toBe(false);
      expect(existsSync(p.artifactsDir)).toBe(false);
    }
  });

  it("bounds the cluster SCAN's wait for a replica to take over a master lost mid-scan: exit 2, one line, no plan", async () => {
    // A master whose replica is gone: its shard still lists the replica (failed), so the scan waits
    // for a takeover that cannot come, as long as --master-wait-ms says.
    const { replicasOf } = await cluster.roles();
    const victim = cluster.masters[0]!;
    const replica = replicasOf.get(victim)![0]!;
    await replica.kill();
    const before = await scanCalls(victim);
    const p = paths('lost', cluster.nodes.find((n) => n !== victim && n !== replica)!.url);
    const started = Date.now();
    const run = cliChild([...planArgs(p), '--master-wait-ms', '1500']);
    // Killed once it answered its first SCAN of plan's: about 30,000 keys at COUNT 1000 each, its scan is still running.
    let scanned = false;
    for (let i = 0; i < 6000 && !scanned; i++) {
      scanned = (await scanCalls(victim)) > before;
      if (!scanned) await sleep(5);
    }
    expect(scanned, 'the master was not scanned').toBe(true);
    victim.pause(); // SIGSTOP at once: its scan goes no further while the kill is under way
    await victim.kill();
    // Stopped (by its PID) should it hang: the assertions below then fail.
    const timer = setTimeout(() => process.kill(run.pid, 'SIGTERM'), 120_000);
    const r = await run.done;
    clearTimeout(timer);
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `master 127\\.0\\.0\\.1:${victim.port} went away .*and no replica took over its slots within 1\\.5 s: keys may have been skipped; run again`,
      ),
    );
    expect(existsSync(p.planFile)).toBe(false);
    // 1.5 s (said as such: the wait in seconds, not rounded), not the 30 s default.
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 120_000);
});

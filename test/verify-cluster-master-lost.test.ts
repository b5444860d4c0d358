/**
 * verify (the CLI) against a Redis Cluster whose master, with no replica, is killed (SIGKILL) while
 * verify scans it: verify must exit non-zero with the one-line transient error (`... run again`) and
 * never report OK (RedisConnection.scan, docs/redis.md "On every topology"). And verify's
 * --master-wait-ms: a bad value is one line naming the option, exit 2, before anything is read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fillOtherKeys, startCluster, scanCalls, type ClusterTopology, type RedisNode } from './support/redis-topologies.ts';
import { cli, cliChild, newKey, BAD_MASTER_WAIT_MS } from './support/migrate-cli.ts';

let root: string;
let keyFile: string;
let cluster: ClusterTopology;
/** Keys of other applications (`other`, not a failure): enough that each master takes many SCAN calls. */
const KEYS = 30_000;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-verify-cluster-lost-'));
  ({ keyFile } = await newKey(root));
  cluster = await startCluster();
  await fillOtherKeys(cluster, KEYS);
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('verify on a Redis Cluster', () => {
  it('a bad --master-wait-ms: one line naming the option, exit 2, nothing read', () => {
    for (const [bad, says] of BAD_MASTER_WAIT_MS) {
      const r = cli(['verify', '--target', cluster.url, '--key-file', keyFile, '--master-wait-ms', bad]);
      expect(r.status, r.stderr + r.stdout).toBe(2);
      expect(r.stderr).toBe(`session-migrate: --master-wait-ms must be ${says}\n`);
      expect(r.stdout).toBe('');
    }
  });

  it('a master without a replica killed mid-scan: exit non-zero with one transient line (run again), never OK', async () => {
    const intact = cli(['verify', '--target', cluster.url, '--key-file', keyFile]);
    expect(intact.status, intact.stderr + intact.stdout).toBe(0);
    expect(intact.stdout).toMatch(/^session-migrate verify: OK$/m);
    const before = new Map<RedisNode, number>();
    for (const m of cluster.masters) before.set(m, await scanCalls(m));
    const run = cliChild(['verify', '--target', cluster.url, '--key-file', keyFile]);
    // The first master verify scans (masters are scanned one after the other) is killed once it
    // answered its first SCAN: about 10,000 keys at COUNT 1000 each, its scan is still running.
    let victim: RedisNode | undefined;
    for (let i = 0; i < 6000 && victim === undefined; i++) {
      for (const m of cluster.masters) if ((await scanCalls(m)) > before.get(m)!) victim = m;
      if (victim === undefined) await sleep(5);
    }
    expect(victim, 'no master was scanned').toBeDefined();
    await victim!.kill();
    // Stopped (by its PID) should it hang: the assertions below then fail.
    const timer = setTimeout(() => process.kill(run.pid, 'SIGTERM'), 120_000);
    const r = await run.done;
    clearTimeout(timer);
    expect(r.status, r.stderr + r.stdout).not.toBe(0);
    expect(r.stdout).not.toMatch(/verify: OK/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `master 127\\.0\\.0\\.1:${victim!.port} went away .*no replica can take over its slots: keys may have been skipped; run again`,
      ),
    );
  }, 180_000);
});

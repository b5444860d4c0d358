/**
 * A Redis Cluster master that hangs (SIGSTOP: its port still accepts connections, it answers nothing)
 * when a command connects, before the cluster marks it failed: a real cluster of 3 masters with 1
 * replica each (test/support/redis-topologies.ts, node timeout 3000 ms).
 *
 * openCluster asks every master for its node ID when it connects (CLUSTER MYID). That reply waited for
 * the commands' 30 s timeout (and ioredis's retries: ~35 s), and the failure named the seed the user
 * gave, which answered fine: `cannot connect to Redis at redis://<seed>/0: Command timed out`. Now it
 * waits PROBE_REPLY_TIMEOUT_MS at most, and the one line names the master that did not answer and
 * what to do; exit 2, nothing written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROBE_REPLY_TIMEOUT_MS } from '@session-migrate/redis';
import { startCluster, type ClusterTopology } from './support/redis-topologies.ts';
import { cli, newKey, planArgs, usageLine, writeSessionFiles } from './support/migrate-cli.ts';

let cluster: ClusterTopology;
let root: string;
let keyFile: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-cluster-hung-'));
  ({ keyFile } = await newKey(root));
  cluster = await startCluster({ masters: 3, replicas: 1 });
}, 60_000);
afterAll(async () => {
  // Every server stopped by PID (stop() also wakes a paused one), even when a test failed.
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a hung cluster master when a command connects', () => {
  it('verify --plan: one line naming the master that did not answer (not the seed), within the first-contact timeout; exit 2, nothing written', async () => {
    const dir = join(root, 'files');
    writeSessionFiles(dir, 'hung', 20);
    const planFile = join(root, 'plan.json');
    const p = cli(planArgs({ dir, target: cluster.url, keyFile, planFile, artifactsDir: join(root, 'art') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    const seedPort = Number(new URL(cluster.url).port);
    const hung = cluster.masters.find((m) => m.port !== seedPort)!;
    const before = await cluster.dbsize();
    const started = Date.now();
    hung.pause();
    let r: ReturnType<typeof cli>;
    try {
      r = cli(['verify', '--plan', planFile], {}, 60_000);
    } finally {
      hung.resume();
    }
    const seconds = (Date.now() - started) / 1000;
    const line = usageLine(r);
    expect(line).toContain(`Redis Cluster master 127.0.0.1:${hung.port}`);
    expect(line).toMatch(new RegExp(`no reply within ${PROBE_REPLY_TIMEOUT_MS / 1000} s`));
    // The seed answered: it is named only as the cluster the master belongs to, not as what failed.
    expect(line).toContain(`cannot connect to Redis Cluster master 127.0.0.1:${hung.port} (of ${cluster.url}): connected, but no reply`);
    expect(line).toMatch(
      /check that node, and run the command again once it answers or the cluster has failed it over to its replica; nothing was written$/,
    );
    expect(seconds).toBeLessThan(PROBE_REPLY_TIMEOUT_MS / 1000 + 15);
    expect(await cluster.dbsize()).toBe(before);
    await cluster.waitForSync();
  }, 120_000);
});

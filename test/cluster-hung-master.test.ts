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
 *
 * A master other than the seed that refuses the ready check (here its ACL user lacks
 * `+cluster|info`, so CLUSTER INFO answers NOPERM; a master reporting cluster_state:fail did the
 * same): ioredis's Cluster ran its ready check on one master at random, and when it failed only
 * reconnected; the promise of the first connect() never settled, and plan / apply / verify hung
 * (2 runs in 3, the seed passing the probe). Now every master is asked CLUSTER INFO at first
 * contact, and the refusal is one line naming that master.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROBE_REPLY_TIMEOUT_MS } from '@session-migrate/redis';
import { existsSync } from 'node:fs';
import { addAclUser, startCluster, type ClusterTopology } from './support/redis-topologies.ts';
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

describe('a cluster master that refuses the ready check (CLUSTER INFO) when a command connects', () => {
  it('plan, apply and verify: one line naming that master and the rule it lacks, at once; exit 2, nothing written', async () => {
    const seedPort = Number(new URL(cluster.url).port);
    const password = 'pw-ready-check';
    const env = { SESSION_MIGRATE_REDIS_PASSWORD: password };
    const full = '~* +@all';
    await addAclUser(cluster, { name: 'rc', password, rule: full });
    const target = cluster.url.replace('redis://', 'redis://rc@');
    const dir = join(root, 'files-rc');
    writeSessionFiles(dir, 'rdyck', 20);
    const planFile = join(root, 'plan-rc.json');
    const p = cli(planArgs({ dir, target, keyFile, planFile, artifactsDir: join(root, 'art-rc') }), env);
    expect(p.status, p.stderr + p.stdout).toBe(0);
    // Every node but the seed refuses CLUSTER INFO: ioredis's ready check picked one of them 2 times in 3.
    const others = cluster.nodes.filter((n) => n.port !== seedPort);
    await addAclUser(others, { name: 'rc', password, rule: `${full} -cluster|info` });
    const before = await cluster.dbsize();
    const planFile2 = join(root, 'plan-rc2.json');
    const runs: Array<[string, string[]]> = [
      ['plan', planArgs({ dir, target, keyFile, planFile: planFile2, artifactsDir: join(root, 'art-rc2') })],
      ['apply', ['apply', '--plan', planFile]],
      ['verify', ['verify', '--plan', planFile]],
    ];
    for (const [name, args] of runs) {
      const started = Date.now();
      const r = cli(args, env, 40_000);
      const seconds = (Date.now() - started) / 1000;
      const line = usageLine(r);
      expect(line, name).toMatch(
        new RegExp(
          `^session-migrate: cannot connect to Redis Cluster master 127\\.0\\.0\\.1:(\\d+) \\(of ${cluster.url.replace(/[.]/g, '\\.')}\\): NOPERM .*cluster\\|info.*\\(the ACL rule of user "rc" lacks CLUSTER\\|INFO \\(\\+cluster\\|info\\)`,
        ),
      );
      expect(line, name).not.toContain(password);
      expect(Number(/master 127\.0\.0\.1:(\d+)/.exec(line)![1]), name).not.toBe(seedPort);
      expect(seconds, name).toBeLessThan(10);
    }
    expect(existsSync(planFile2)).toBe(false);
    expect(await cluster.dbsize()).toBe(before);
  }, 180_000);
});

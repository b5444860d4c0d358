/**
 * The CLI against a Redis Cluster whose every node dies (kill -9) during the run, for good: a real
 * cluster of 3 masters without replicas (test/support/redis-topologies.ts startCluster).
 * - apply spends its retry budget and exits 1 with its report (NOT DONE / FAILED with counts), as it
 *   does against a single Redis that died (test/apply-live.test.ts "Redis gone for good"): it printed
 *   nothing and never ended, as ioredis's Cluster client, reconnecting for ever (keepReconnecting),
 *   held every command in its offline queue, where no command timeout runs
 *   (packages/redis/src/connection.ts newCluster's clusterRetryStrategy). Nothing the report counts
 *   migrated is claimed to be in Redis (its nodes lost every key: all MISSING or UNVERIFIED). A
 *   re-run against a new cluster (planned again) completes.
 * - verify ends with one line (purge too, checked by hand; not in the suite, for its time).
 * - the whole cluster down ~1 s and back (every node restarted on its port with its nodes.conf:
 *   RedisNode.restart), without the keys written before (no persistence): apply rides the outage out,
 *   and its read-back counts those sessions MISSING (exit 1, "run apply again"); the re-run with the
 *   same plan (same node IDs) completes. It never ends ok while a session is missing.
 * Every run has a kill-after, so a hang fails its test (status -1) instead of hanging the suite.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startCluster, type ClusterTopology } from './support/redis-topologies.ts';
import { cli, cliTimed, countPresent, newKey, planArgs, signal, writeSessionFiles } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
let clusters: ClusterTopology[] = [];
let root: string | undefined;
afterEach(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
  clusters = [];
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long a run may take after every node died (a hang guard, not a speed goal; measured below). */
const BOUND_MS = 60_000;
/** The kill-after of each run: past BOUND_MS, so an old hanging CLI fails the bound, then ends. */
const KILL_AFTER_MS = BOUND_MS + 15_000;

/** A cluster, a key, `n` session files and a plan against the cluster. */
async function planned(
  tag: string,
  n: number,
): Promise<{ cluster: ClusterTopology; planFile: string; ids: string[]; keyFile: string; dir: string; codec: EnvelopeCodec }> {
  root ??= mkdtempSync(join(tmpdir(), 'sm-cluster-gone-'));
  const { keyFile, codec } = await newKey(root);
  const cluster = await startCluster();
  clusters.push(cluster);
  const dir = join(root, tag);
  const ids = writeSessionFiles(dir, tag, n);
  const planFile = join(root, `${tag}-plan.json`);
  const p = cli(planArgs({ dir, target: cluster.url, keyFile, planFile, artifactsDir: join(root, `${tag}-art`) }));
  expect(p.status, p.stderr + p.stdout).toBe(0);
  return { cluster, planFile, ids, keyFile, dir, codec };
}

/**
 * Kills every node (SIGKILL) once `ready` says so (polled every 5 ms, through the test's own
 * connections). The CLI of PID `frozen` is stopped (SIGSTOP) from that moment until every node is
 * dead, then let go on (SIGCONT): it does no more work in between, so the run is cut where `ready`
 * saw it (at most the commands it had in flight land), not later by however fast it went on; a
 * small data set is then enough to keep it far from done.
 */
async function killAllWhen(cluster: ClusterTopology, ready: () => Promise<boolean>, frozen: number): Promise<number> {
  while (!(await ready())) await sleep(5);
  signal(frozen, 'SIGSTOP');
  try {
    await Promise.all(cluster.nodes.map((n) => n.kill()));
    return Date.now();
  } finally {
    signal(frozen, 'SIGCONT');
  }
}

/** Whether the CLI's cluster client is connected: every node lists a client besides the test's admin one. */
async function cliConnected(cluster: ClusterTopology): Promise<boolean> {
  const counts = await Promise.all(
    cluster.nodes.map(
      async (n) =>
        String(await n.admin.client('LIST'))
          .split('\n')
          .filter((l) => l.trim() !== '').length,
    ),
  );
  return counts.every((k) => k > 1);
}

describe('a Redis Cluster whose every node died', () => {
  it('apply spends its retries and exits 1 with its report, in bounded time; a re-run on a new cluster completes', async () => {
    // 5,000 (10,000 before): the run is frozen from 1,000 keys until every node is dead (killAllWhen),
    // so at most its 2 batches in flight (2 x 1,000) land and the rest is not done.
    const total = 5000;
    const { cluster, planFile, ids, keyFile, dir, codec } = await planned('gone', total);
    // A small retry budget: what is checked is that apply spends it and ends, not how long it is.
    let pid = -1;
    const run = cliTimed(
      ['apply', '--plan', planFile, '--workers', '0', '--retries', '3', '--retry-delay-ms', '50'],
      {},
      KILL_AFTER_MS,
      (p) => (pid = p),
    );
    const killedAt = await killAllWhen(
      cluster,
      async () => (await Promise.all(cluster.nodes.map((n) => n.admin.dbsize()))).reduce((a, b) => a + b, 0) >= 1000,
      pid,
    );
    const r = await run;
    const afterKill = Date.now() - killedAt;
    expect(r.status, `${afterKill} ms after the kill; ${r.stderr.slice(-2000)}`).toBe(1);
    // About 26 s with the default retries (8, 250 ms doubling up to 5 s), less with these; it never ended before.
    expect(afterKill).toBeLessThan(BOUND_MS);
    // It ends with its last line (ioredis keeps nothing running).
    expect(r.lingerMs).toBeLessThan(2000);
    // One line per retry, the budget spent.
    expect(r.stderr).toMatch(/; retry 3 of 3$/m);
    // A lost connection in the one wording of a single node's (packages/redis/src/errors.ts
    // CONNECTION_DOWN), not ioredis's Cluster texts ("Connection is closed.", "None of startup nodes
    // is available", "Cluster is ended.").
    expect(r.stderr).toMatch(/failed \(the connection to Redis is down: [^)]+\); retry \d of 3$/m);
    expect(r.stderr + r.stdout).not.toMatch(/Connection is closed|None of startup nodes|Cluster is ended/);
    const count = (re: RegExp): number => Number(re.exec(r.stdout)?.[1] ?? 0);
    const migrated = count(/^ {2}sessions {4}migrated (\d+) /m);
    const failed = count(/, failed (\d+)$/m);
    const notDone = count(/^ {2}NOT DONE {4}(\d+) session\(s\) not written: Redis kept failing after the retries/m);
    expect(notDone, r.stdout).toBeGreaterThan(0);
    expect(migrated + failed + notDone, r.stdout).toBe(total);
    if (failed > 0) expect(r.stdout).toMatch(/^ {2}FAILED {6}\d+ session\(s\): the connection to Redis is down: .*\(after 3 retries\)/m);
    // Every node lost its keys (no persistence): nothing counted migrated is claimed in Redis.
    const missing = count(/; (\d+) of them not in Redis at the read-back: MISSING/);
    const unread = count(/(\d+)(?: of them)? not read back: UNVERIFIED/);
    expect(missing + unread, r.stdout).toBe(migrated);

    // A new cluster (planned again): the re-run completes.
    const second = await startCluster();
    clusters.push(second);
    const replan = join(root!, 'gone2-plan.json');
    const p = cli(planArgs({ dir, target: second.url, keyFile, planFile: replan, artifactsDir: join(root!, 'gone2-art') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    const again = cli(['apply', '--plan', replan]);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(await countPresent(second.client(), codec, PREFIX, ids)).toBe(total);
  }, 240_000);

  // The whole cluster down briefly and back (an ElastiCache maintenance, every node kill -9'd and
  // started again by its supervisor): each node restarts on its port with its nodes.conf (same node
  // IDs, slots, epochs), so the cluster heals on its own and the plan still matches it; without
  // persistence (--save '') every key written before is gone. apply must not count those present: its
  // read-back sees them missing (exit 1, MISSING: "run apply again"), or it rewrites them (exit 0).
  it('the whole cluster down ~1 s mid-apply, then back without its keys: apply never ends ok with a session missing, in bounded time; a re-run completes', async () => {
    const total = 2000;
    const { cluster, planFile, ids, codec } = await planned('back', total);
    // Shorter retry delays than the default (250 ms): the outage (~1 s, then ~2 s until the restarted
    // masters accept writes: clusterUpdateState's CLUSTER_WRITABLE_DELAY,
    // src/cluster.c of https://github.com/redis/redis) is ridden out either way.
    let pid = -1;
    const run = cliTimed(['apply', '--plan', planFile, '--workers', '0', '--retry-delay-ms', '100'], {}, KILL_AFTER_MS, (p) => (pid = p));
    await killAllWhen(
      cluster,
      async () => (await Promise.all(cluster.nodes.map((n) => n.admin.dbsize()))).reduce((a, b) => a + b, 0) >= 500,
      pid,
    );
    await sleep(1000);
    await Promise.all(cluster.nodes.map((n) => n.restart()));
    const backAt = Date.now();
    const r = await run;
    expect(Date.now() - backAt, r.stderr.slice(-2000)).toBeLessThan(BOUND_MS);
    expect(r.lingerMs).toBeLessThan(2000);
    // The restarted nodes have no script: apply answers their NOSCRIPT with EVAL, never a retry line.
    expect(r.stderr).not.toContain('NOSCRIPT');
    const present = await countPresent(cluster.client(), codec, PREFIX, ids);
    if (r.status === 0) {
      expect(present, r.stdout).toBe(total);
      return;
    }
    expect(r.status, r.stderr + r.stdout).toBe(1);
    // Every session absent from the cluster is one the report says is not done: never counted in Redis.
    const count = (re: RegExp): number => Number(re.exec(r.stdout)?.[1] ?? 0);
    const migrated = count(/^ {2}sessions {4}migrated (\d+) /m);
    const failed = count(/, failed (\d+)$/m);
    const notDone = count(/^ {2}NOT DONE {4}(\d+) session\(s\) not written/m);
    const missing = count(/; (\d+) of them not in Redis at the read-back: MISSING/);
    const unread = count(/(\d+)(?: of them)? not read back: UNVERIFIED/);
    expect(migrated + failed + notDone, r.stdout).toBe(total);
    expect(total - present, r.stdout).toBeLessThanOrEqual(missing + unread + failed + notDone);
    // What the cluster lost was written before the outage (at least 500 keys were in it at the kill):
    // the report says so. Not "at least 500": a call whose reply the kill cut off is sent again after
    // the restart, which writes its sessions anew (CI once: 352 of 500+ reported MISSING, the rest
    // rewritten and present).
    expect(missing + unread, r.stdout).toBeGreaterThan(0);
    // Each key the report lists MISSING is absent from the cluster: the report is the cluster's state.
    const listed = [...r.stdout.matchAll(/^ {2}MISSING {5}(smsess:\S+)$/gm)].map((m) => m[1]!);
    expect(listed.length, r.stdout).toBeGreaterThan(0);
    const reader = cluster.client();
    expect(await Promise.all(listed.map((k) => reader.exists(k))), r.stdout).toEqual(listed.map(() => 0));
    expect(r.stdout).toMatch(/^ {2}(MISSING|UNVERIFIED|NOT DONE) .*run apply again/m);
    // The operator runs apply again (same plan: the node IDs did not change): it completes.
    const again = cli(['apply', '--plan', planFile]);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(await countPresent(cluster.client(), codec, PREFIX, ids)).toBe(total);
  }, 120_000);

  // verify (read-only, what an operator runs during an outage); purge ends the same way (its one line
  // after the kill, measured by hand: 11-15 s on the old code and the new), left out for the suite's time.
  // 5,000 sessions (20,000 before): verify is frozen from the moment it is connected to every node
  // until they are all dead (killAllWhen), so its scan and read of them is still ahead of it.
  it('verify ends with one line', async () => {
    const { cluster, planFile } = await planned('verify', 5000);
    const a = cli(['apply', '--plan', planFile]);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    let pid = -1;
    const run = cliTimed(['verify', '--plan', planFile], {}, KILL_AFTER_MS, (p) => (pid = p));
    const killedAt = await killAllWhen(cluster, () => cliConnected(cluster), pid);
    const r = await run;
    const afterKill = Date.now() - killedAt;
    expect(r.status, `${afterKill} ms after the kill; ${r.stderr.slice(-2000)}`).toBeGreaterThan(0);
    expect(afterKill).toBeLessThan(BOUND_MS);
    expect(r.lingerMs).toBeLessThan(2000);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  }, 180_000);
});

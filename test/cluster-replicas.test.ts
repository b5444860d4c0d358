/**
 * apply's write confirmation (WAIT) on a Redis Cluster with replicas: a real cluster of 3 masters with
 * 1 replica each (test/support/redis-topologies.ts startCluster({ replicas: 1 })).
 * - By default apply WAITs for as many replicas as each master has (INFO replication
 *   `connected_slaves`, per master `host:port`), migrates every session, and every key is on the
 *   replicas when it reports success.
 * - A replica hung by SIGSTOP (it stays connected, so its master still counts it, but it acknowledges
 *   nothing): apply reports UNCONFIRMED sessions and exits 1; nothing is lost, and once the replica is
 *   back a re-run exits 0 with every key on every replica.
 * - A re-run while that replica still hangs writes nothing, yet must not exit 0: apply compares each
 *   master's `master_repl_offset` with its replicas' offsets (INFO replication) and counts the
 *   sessions it found present on the hung replica's master UNCONFIRMED; once the replica is back, exit 0.
 * - A CLUSTER FAILOVER of a master to its replica while apply writes: every session ends in the
 *   cluster, and apply never reports success while one is missing.
 * WAIT: https://redis.io/commands/wait/ ; manual failover: https://redis.io/commands/cluster-failover/
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { aclRuleFor, RedisConnection, specFromUrl } from '@session-migrate/redis';
import { addAclUser, parseInfo, startCluster, type ClusterTopology, type RedisNode } from './support/redis-topologies.ts';
import { cli, cliChild, countPresent, newKey, planArgs, signal, writeSessionFiles, type CliResult } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
let cluster: ClusterTopology;
let client: Cluster;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

interface ApplyJson {
  confirm: { minReplicas: Record<string, number>; waitTimeoutMs: number };
  sessions: {
    counts: Record<string, number>;
    replicaShortfalls: Array<{ node: string; wanted: number; acked: number }>;
    stopped?: { message: string };
  };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-cluster-repl-'));
  ({ keyFile, codec } = await newKey(root));
  cluster = await startCluster({ masters: 3, replicas: 1 });
  client = cluster.client();
}, 60_000);
afterAll(async () => {
  // Every server stopped by PID (stop() also wakes a paused one), even when a test failed.
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

function plan(tag: string, n: number): { ids: string[]; planFile: string; stdout: string } {
  const dir = join(root, tag);
  const ids = writeSessionFiles(dir, tag, n);
  const planFile = join(root, `${tag}-plan.json`);
  const p = cli(planArgs({ dir, target: cluster.url, keyFile, planFile, artifactsDir: join(root, `${tag}-art`) }));
  expect(p.status, p.stderr + p.stdout).toBe(0);
  return { ids, planFile, stdout: p.stdout };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every 50 ms for up to `timeoutMs`. On a timeout the error carries every node's
 * replication state and its own CLUSTER NODES line (clusterState), so that a failure in a CI log says
 * what the cluster looked like.
 */
async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${await clusterState()}`);
    await sleep(50);
  }
}

/** One line per node: INFO replication's role, master_port, master_link_status, connected_slaves, and its `myself` line of CLUSTER NODES. */
async function clusterState(): Promise<string> {
  const lines = await Promise.all(
    cluster.nodes.map(async (n) => {
      try {
        const i = parseInfo(await n.admin.info('replication'));
        const myself = String(await n.admin.call('CLUSTER', 'NODES'))
          .split('\n')
          .find((l) => l.includes('myself'));
        return `${name(n)}: ${i.get('role')} master_port=${i.get('master_port')} link=${i.get('master_link_status')} slaves=${i.get('connected_slaves')} | ${myself}`;
      } catch (err) {
        return `${name(n)}: ${(err as Error).message}`;
      }
    }),
  );
  return `cluster now:\n${lines.join('\n')}`;
}

/**
 * Waits until EVERY node's CLUSTER NODES shows 3 masters with one replica each, the same masters
 * in each view. A restore that checked one node's view (or INFO) let the next test's CLI, whose
 * ioredis refreshes its slot map from a node picked at random, see the roles before the restore.
 */
async function waitForEveryViewRestored(): Promise<void> {
  await waitUntil("every node's CLUSTER NODES with the same 3 masters, one replica each", async () => {
    let first: string | undefined;
    for (const n of cluster.nodes) {
      const { masters: now, replicasOf } = await cluster.roles(n);
      if (now.length !== 3 || !now.every((m) => (replicasOf.get(m) ?? []).length === 1)) return false;
      const key = now.map(name).sort().join(',');
      if (first !== undefined && key !== first) return false;
      first = key;
    }
    return true;
  });
}

/**
 * Makes `replica` the master of `former`'s shard: a manual CLUSTER FAILOVER, and when it has not
 * won within 8 s, CLUSTER FAILOVER TAKEOVER (no vote); `how` 'takeover': TAKEOVER at once, for a
 * restore step whose failover is not what the test checks. Won means the cluster took it: `replica`
 * says role:master AND `former` follows it (role:slave, master_port = replica's port), which only
 * happens once `former` has seen `replica`'s higher config epoch for the shard's slots.
 * - A manual failover needs a majority of the masters' votes, and a master votes for a replica of the
 *   same master at most once per 2 x cluster-node-timeout (Redis cluster.c
 *   clusterSendFailoverAuthIfNeeded; https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/
 *   "Slave election and promotion"): a failback soon after a failover of the same shard got no vote.
 * - `replica`'s own role:master is not enough. Seen on Redis 7.0.15 in this file, reproducible (the
 *   failback of the ACL test, about one full-file run in two): a node promoted once before, demoted, then
 *   sent CLUSTER FAILOVER reported role:master at once, with the config epoch of its earlier promotion
 *   (9, below its former master's 10) and no new election (cluster_current_epoch unchanged
 *   everywhere); its former master's higher epoch turned it back into a replica a moment later, and
 *   the test found two masters for one shard, then none failed back.
 * TAKEOVER is sent only while `replica` is a replica (a master refuses CLUSTER FAILOVER); it takes a
 * config epoch above every one the node knows (cluster.c clusterBumpConfigEpochWithoutConsensus).
 * Tests whose point is the manual failover itself (the one during apply's writes) call CLUSTER
 * FAILOVER directly.
 */
async function promote(replica: RedisNode, former: RedisNode, what: string, how: 'failover' | 'takeover' = 'failover'): Promise<void> {
  const role = async (n: RedisNode): Promise<Map<string, string>> => parseInfo(await n.admin.info('replication'));
  const won = async (): Promise<boolean> => {
    const f = await role(former);
    return (await role(replica)).get('role') === 'master' && f.get('role') === 'slave' && f.get('master_port') === String(replica.port);
  };
  if (how === 'takeover' && (await role(replica)).get('role') === 'slave') {
    // A restore step (the failback), not what a test checks: no vote to wait for (see above: a
    // failback soon after a failover of the same shard gets none, and waited out the 8 s).
    await replica.admin.call('CLUSTER', 'FAILOVER', 'TAKEOVER');
    await waitUntil(`${what} (TAKEOVER)`, won);
    return;
  }
  await replica.admin.call('CLUSTER', 'FAILOVER');
  // Up to 8 s for the manual failover; a stale promotion (above) shows as role:master, then slave
  // again once the former master's epoch reaches it: no use waiting out the 8 s after that.
  const deadline = Date.now() + 8_000;
  let sawMaster = false;
  let undone = false;
  while (!(await won())) {
    const now = (await role(replica)).get('role');
    if (now === 'master') sawMaster = true;
    else if (sawMaster) undone = true;
    if (undone || Date.now() > deadline) break;
    await sleep(50);
  }
  if (await won()) return;
  const why = undone ? 'its promotion was undone by its former master' : 'not promoted within 8 s';
  console.warn(`cluster-replicas: CLUSTER FAILOVER of ${name(replica)} (${what}): ${why}; CLUSTER FAILOVER TAKEOVER`);
  // TAKEOVER only once it is a replica again (a stale promotion is undone within a second or two).
  await waitUntil(
    `${name(replica)} a replica again before TAKEOVER`,
    async () => (await won()) || (await role(replica)).get('role') === 'slave',
  );
  if (await won()) return;
  await replica.admin.call('CLUSTER', 'FAILOVER', 'TAKEOVER');
  await waitUntil(`${what} (TAKEOVER)`, won);
}

/**
 * Waits until `replica` is connected to `master` again after a failback. It normally follows by
 * itself (the failover's reconfiguration); in about one full-suite run in three on a loaded machine
 * it had not after 20 s, so after 10 s it is told to (CLUSTER REPLICATE, valid for a replica of any
 * master or a master without slots), and a failure names what the node reported.
 */
async function restoreReplica(master: RedisNode, replica: RedisNode): Promise<void> {
  const following = async (): Promise<boolean> => parseInfo(await master.admin.info('replication')).get('connected_slaves') === '1';
  try {
    await waitUntil('the demoted master following again', following, 10_000);
    return;
  } catch {
    const info = parseInfo(await replica.admin.info('replication'));
    const myself = String(await replica.admin.call('CLUSTER', 'NODES'))
      .split('\n')
      .find((l) => l.includes('myself'));
    const masterId = String(await master.admin.call('CLUSTER', 'MYID'));
    const state = `role ${info.get('role')}, master_port ${info.get('master_port')}; ${myself}`;
    // In the run's log, for whoever looks into why it did not follow by itself.
    console.warn(
      `cluster-replicas: ${name(replica)} did not follow ${name(master)} within 10 s of the failback (${state}); CLUSTER REPLICATE`,
    );
    await replica.admin.call('CLUSTER', 'REPLICATE', masterId).catch((err: Error) => {
      throw new Error(
        `${name(replica)} did not follow ${name(master)} after the failback (${state}), and CLUSTER REPLICATE failed: ${err.message}`,
      );
    });
    await waitUntil(`${name(replica)} following ${name(master)} after CLUSTER REPLICATE`, following);
  }
}

const json = (r: CliResult): ApplyJson => JSON.parse(r.stdout) as ApplyJson;
const name = (n: RedisNode): string => `${n.host}:${n.port}`;

/**
 * The master now of each key, in order: CLUSTER KEYSLOT of each key (500 at a time, pipelined on one
 * connection) and CLUSTER SLOTS read once, as cluster.ownerOf() reads it. One CLUSTER SLOTS per call
 * instead of one per key, and no round trip waited for per key (20,000 keys: 40,000 sequential round
 * trips before).
 */
async function mastersOfKeys(keys: string[]): Promise<RedisNode[]> {
  const admin = cluster.nodes[0]!.admin;
  const ranges = (await admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
  const owner = (slot: number): RedisNode => {
    for (const [from, to, master] of ranges) {
      if (slot >= from && slot <= to) {
        const node = cluster.nodes.find((n) => n.port === Number(master[1]));
        if (node !== undefined) return node;
      }
    }
    throw new Error(`no owner for slot ${slot}`);
  };
  const out: RedisNode[] = [];
  for (let i = 0; i < keys.length; i += 500) {
    const slots = await Promise.all(keys.slice(i, i + 500).map((k) => admin.call('CLUSTER', 'KEYSLOT', k)));
    for (const s of slots) out.push(owner(Number(s)));
  }
  return out;
}

/** How many of the sessions `ids` have their key on `master` now. */
async function countOn(master: RedisNode, ids: string[]): Promise<number> {
  return (await mastersOfKeys(ids.map((id) => codec.keyName(PREFIX, id)))).filter((m) => m === master).length;
}

/** Keys of `ids` missing on `node` itself (a replica answers EXISTS from its own data after READONLY). */
async function missingOn(node: RedisNode, keys: string[]): Promise<number> {
  await node.admin.call('READONLY');
  let missing = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const chunk = keys.slice(i, i + 500);
    const found = await Promise.all(chunk.map((k) => node.admin.exists(k)));
    missing += found.filter((x) => x === 0).length;
  }
  return missing;
}

/** For every session: its key is on its master and on each replica of that master (read from the replica itself). */
async function expectOnEveryReplica(ids: string[]): Promise<void> {
  const { replicasOf } = await cluster.roles();
  const byMaster = new Map<RedisNode, string[]>();
  const keys = ids.map((id) => codec.keyName(PREFIX, id));
  const owners = await mastersOfKeys(keys);
  for (const [i, key] of keys.entries()) {
    const m = owners[i]!;
    let list = byMaster.get(m);
    if (list === undefined) byMaster.set(m, (list = []));
    list.push(key);
  }
  expect([...byMaster.values()].reduce((a, l) => a + l.length, 0)).toBe(ids.length);
  for (const [m, keys] of byMaster) {
    expect(await missingOn(m, keys), `on master ${name(m)}`).toBe(0);
    const reps = replicasOf.get(m) ?? [];
    expect(reps.length, `replicas of ${name(m)}`).toBe(1);
    for (const r of reps) expect(await missingOn(r, keys), `on replica ${name(r)} of ${name(m)}`).toBe(0);
  }
}

describe('Redis Cluster with replicas: apply confirms writes with WAIT', () => {
  it('the harness starts 3 masters with 1 replica each, replicas in sync', async () => {
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.masters).toHaveLength(3);
    expect(cluster.replicas).toHaveLength(3);
    const { masters, replicasOf } = await cluster.roles();
    expect(new Set(masters)).toEqual(new Set(cluster.masters));
    for (const m of masters) {
      expect(parseInfo(await m.admin.info('replication')).get('connected_slaves')).toBe('1');
      expect(replicasOf.get(m)).toHaveLength(1);
    }
    for (const r of cluster.replicas) {
      const info = parseInfo(await r.admin.info('replication'));
      expect(info.get('role')).toBe('slave');
      expect(info.get('master_link_status')).toBe('up');
    }
  });

  it('apply --plan: WAIT 1 on each master (by host:port), every session migrated and on its replica, exit 0', async () => {
    const { ids, planFile } = plan('rep', 900);
    const a = cli(['apply', '--plan', planFile, '--json']);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const out = json(a);
    // apply asks each master for its connected replicas (INFO replication): 1 each, keyed by master.
    expect(out.confirm.minReplicas).toEqual(Object.fromEntries(cluster.masters.map((m) => [name(m), 1])));
    expect(out.sessions.counts).toMatchObject({ migrated: 900, failed: 0, unconfirmed: 0, missingAfterWrite: 0 });
    expect(out.sessions.replicaShortfalls).toEqual([]);
    expect(await countPresent(client, codec, PREFIX, ids)).toBe(900);
    expect(await cluster.dbsize()).toBe(900);
    await expectOnEveryReplica(ids);

    // The text report says what it waited for.
    const { planFile: textPlan } = plan('reptext', 30);
    const t = cli(['apply', '--plan', textPlan]);
    expect(t.status, t.stderr + t.stdout).toBe(0);
    expect(t.stdout).toMatch(
      /replicas +WAIT after each batch for 1 replica\(s\) of 127\.0\.0\.1:\d+, 1 replica\(s\) of 127\.0\.0\.1:\d+, 1 replica\(s\) of 127\.0\.0\.1:\d+ \(timeout 2000 ms\)/,
    );
    expect(t.stdout).not.toMatch(/UNCONFIRMED/);
  });

  it('a replica hung (SIGSTOP): UNCONFIRMED, exit 1, in text and --json; nothing lost; a re-run once it is back exits 0', async () => {
    const { ids: textIds, planFile: textPlan } = plan('hung', 400);
    const { ids: jsonIds, planFile: jsonPlan } = plan('hungjson', 400);
    const replica = cluster.replicas[0]!;
    const { replicasOf } = await cluster.roles();
    const master = [...replicasOf].find(([, reps]) => reps.includes(replica))![0];
    // Sessions of each run that land on the master whose replica hangs.
    const onHungMaster = await countOn(master, jsonIds);
    expect(onHungMaster).toBeGreaterThan(50);
    const textOnHungMaster = await countOn(master, textIds);

    replica.pause();
    let text: CliResult;
    let js: CliResult;
    try {
      // The master still counts the hung replica as connected (it is, until repl-timeout): WAIT 1 times out.
      text = cli(['apply', '--plan', textPlan, '--wait-timeout-ms', '300']);
      js = cli(['apply', '--plan', jsonPlan, '--json', '--wait-timeout-ms', '300']);
    } finally {
      replica.resume();
    }
    expect(text.status, text.stderr + text.stdout).toBe(1);
    expect(text.stdout).toMatch(
      new RegExp(
        `UNCONFIRMED ${textOnHungMaster} session\\(s\\) not confirmed on enough replicas in time \\(${name(master).replace(/\./g, '\\.')}: 0 of 1\\)`,
      ),
    );
    expect(text.stdout).not.toMatch(/next +deploy the artifacts/);
    expect(js.status, js.stderr).toBe(1);
    const out = json(js);
    expect(out.sessions.counts).toMatchObject({ migrated: 400, failed: 0, missingAfterWrite: 0 });
    // Exactly the sessions written to the hung replica's master: the other masters' replicas confirmed theirs.
    expect(out.sessions.counts.unconfirmed).toBe(onHungMaster);
    expect(out.sessions.replicaShortfalls).toEqual([{ node: name(master), wanted: 1, acked: 0 }]);

    // Nothing lost: every session is in the cluster; once the replica caught up, on every replica too.
    expect(await countPresent(client, codec, PREFIX, [...textIds, ...jsonIds])).toBe(800);
    await cluster.waitForSync();
    for (const p of [textPlan, jsonPlan]) {
      const again = cli(['apply', '--plan', p, '--json']);
      expect(again.status, again.stderr + again.stdout).toBe(0);
      expect(json(again).sessions.counts).toMatchObject({ migrated: 0, alreadyPresent: 400, unconfirmed: 0, missingAfterWrite: 0 });
    }
    await expectOnEveryReplica([...textIds, ...jsonIds]);
  });

  it('a CLUSTER FAILOVER of a master to its replica while apply writes: all in the cluster, success never reported while one is missing', async () => {
    const { ids, planFile } = plan('fov', 5000);
    const { masters, replicasOf } = await cluster.roles();
    const old = masters[1]!;
    const promoted = replicasOf.get(old)![0]!;
    const before = Number(await old.admin.dbsize());
    const run = cliChild(['apply', '--plan', planFile, '--json', '--workers', '0', '--retry-delay-ms', '100']);
    let finished = false;
    void run.done.then(() => {
      finished = true;
    });
    // After the first batches reached this master, apply frozen (SIGSTOP) for the failover, so that it
    // is mid-run at the failover whatever the machine's speed (20,000 sessions and luck before): its
    // calls in flight are answered by the old master, its next ones meet the demoted master (MOVED,
    // and "ERR WAIT cannot be used with replica instances", which once stopped apply).
    while (!finished && Number(await old.admin.dbsize()) < before + 500) await sleep(5);
    const startedBeforeEnd = !finished;
    signal(run.pid, 'SIGSTOP');
    try {
      // A manual failover (no FORCE): the master stops its clients, the replica catches up, then takes over.
      await promoted.admin.call('CLUSTER', 'FAILOVER');
      await waitUntil('the replica promoted, as every node sees it', async () => {
        if (parseInfo(await promoted.admin.info('replication')).get('role') !== 'master') return false;
        for (const n of cluster.nodes) if (!(await cluster.roles(n)).masters.includes(promoted)) return false;
        return true;
      });
    } finally {
      signal(run.pid, 'SIGCONT');
    }
    const failoverEndedFirst = !finished;
    const r = await run.done;
    expect(startedBeforeEnd && failoverEndedFirst, 'the failover happened while apply wrote').toBe(true);
    const out = json(r);
    const c = out.sessions.counts;
    const present = await countPresent(client, codec, PREFIX, ids);
    // A manual failover loses nothing; and what apply found missing is what is missing.
    expect(present).toBe(ids.length);
    expect(c.missingAfterWrite).toBe(ids.length - present);
    // A failover is transient: the run goes on to the end (a demoted master's "ERR WAIT cannot be used
    // with replica instances" once stopped it, with 14k sessions not written).
    expect(c.migrated).toBe(ids.length);
    expect(c.notDone).toBe(0);
    expect(out.sessions.stopped).toBeUndefined();
    if (r.status === 0) {
      expect(c).toMatchObject({ unconfirmed: 0, missingAfterWrite: 0, failed: 0, notDone: 0 });
    } else {
      // Not confirmed: said so, exit 1.
      expect(r.status, r.stderr).toBe(1);
      expect((c.unconfirmed ?? 0) + (c.missingAfterWrite ?? 0) + (c.notDone ?? 0) + (c.unverified ?? 0)).toBeGreaterThan(0);
    }

    await cluster.waitForSync();
    const again = cli(['apply', '--plan', planFile, '--json']);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(json(again).sessions.counts).toMatchObject({ migrated: 0, alreadyPresent: ids.length, unconfirmed: 0, missingAfterWrite: 0 });
    await expectOnEveryReplica(ids);
  }, 120_000);

  it('waitForReplicas right after a failover the client has not seen: the demoted master counts short (acked 0), no error', async () => {
    const conn = await RedisConnection.open(specFromUrl(cluster.url, {}, 'target'), { keepReconnecting: true });
    try {
      await cluster.waitForSync();
      const min = await conn.replicasPerMaster();
      expect([...min.values()]).toEqual([1, 1, 1]);
      const since = await conn.generation();
      const { masters, replicasOf } = await cluster.roles();
      const demoted = masters[0]!;
      await replicasOf.get(demoted)![0]!.admin.call('CLUSTER', 'FAILOVER');
      await waitUntil('the master demoted', async () => parseInfo(await demoted.admin.info('replication')).get('role') === 'slave');
      // ioredis still counts the demoted node as a master (until its next slots refresh): WAIT there
      // answers "ERR WAIT cannot be used with replica instances", which must not stop apply.
      const short = await conn.waitForReplicas(min, 300, since);
      expect(short.length).toBeGreaterThan(0);
      for (const s of short) expect(s.acked).toBe(0);
      if ((await conn.masters()).some((m) => conn.nodeName(m) === name(demoted))) {
        expect(short).toContainEqual({ node: name(demoted), wanted: 1, acked: 0 });
      }
    } finally {
      conn.close();
    }
  });

  // A batch whose sessions are all already present is not WAITed for, and a WAIT on a connection that
  // wrote nothing proves nothing anyway: a re-run checks the replicas' offsets (INFO replication).
  it('a re-run while the replica is still hung: UNCONFIRMED naming its master, exit 1, nothing written twice; once it is back, exit 0', async () => {
    const { ids, planFile } = plan('rerun', 600);
    // Roles as they are now (the failover tests above swapped some), once every node agrees on them.
    await cluster.waitForSync();
    await waitUntil('every node agreeing on 3 masters', async () => {
      const views = await Promise.all(cluster.nodes.map((n) => cluster.roles(n)));
      const first = new Set(views[0]!.masters);
      return views.every((v) => v.masters.length === 3 && v.masters.every((m) => first.has(m)));
    });
    const { masters, replicasOf } = await cluster.roles();
    // Not the node the CLI connects to first (cluster.url): a failover above may have made it a replica.
    const master = masters.find((m) => (replicasOf.get(m) ?? []).length === 1 && replicasOf.get(m)![0] !== cluster.nodes[0])!;
    const replica = replicasOf.get(master)![0]!;
    const onHungMaster = await countOn(master, ids);
    expect(onHungMaster).toBeGreaterThan(50);
    expect(onHungMaster).toBeLessThan(600);
    const dbsizeBefore = await cluster.dbsize();
    const masterName = name(master).replace(/\./g, '\\.');

    replica.pause();
    let first: CliResult;
    let again: CliResult;
    let againText: CliResult;
    try {
      first = cli(['apply', '--plan', planFile, '--json', '--wait-timeout-ms', '300']);
      again = cli(['apply', '--plan', planFile, '--json', '--wait-timeout-ms', '300']);
      againText = cli(['apply', '--plan', planFile, '--wait-timeout-ms', '300']);
    } finally {
      replica.resume();
    }
    expect(first.status, first.stderr + first.stdout).toBe(1);
    expect(json(first).sessions.counts).toMatchObject({ migrated: 600, failed: 0, missingAfterWrite: 0 });

    // The re-run wrote nothing, yet the hung replica holds none of the sessions of its master: those
    // are unconfirmed (exactly those: the other masters' replicas are in step), exit 1.
    expect(again.status, again.stderr + again.stdout).toBe(1);
    const out = json(again);
    expect(out.sessions.counts).toMatchObject({
      migrated: 0,
      alreadyPresent: 600,
      unconfirmed: onHungMaster,
      failed: 0,
      missingAfterWrite: 0,
    });
    expect(out.sessions.replicaShortfalls).toEqual([{ node: name(master), wanted: 1, acked: 0 }]);
    expect(againText.status, againText.stderr + againText.stdout).toBe(1);
    expect(againText.stdout).toMatch(
      new RegExp(`UNCONFIRMED ${onHungMaster} session\\(s\\) .*\\(${masterName}: 0 of 1\\).*run apply again \\(it re-checks them\\)`),
    );
    expect(againText.stdout).not.toMatch(/nothing to do/);
    expect(againText.stdout).not.toMatch(/next +deploy the artifacts/);
    // Nothing written twice.
    expect(await cluster.dbsize()).toBe(dbsizeBefore + 600);
    expect(await countPresent(client, codec, PREFIX, ids)).toBe(600);

    // Once the replica is back and caught up: exit 0, nothing unconfirmed, every key on every replica.
    await cluster.waitForSync();
    const done = cli(['apply', '--plan', planFile, '--json']);
    expect(done.status, done.stderr + done.stdout).toBe(0);
    expect(json(done).sessions.counts).toMatchObject({ migrated: 0, alreadyPresent: 600, unconfirmed: 0, missingAfterWrite: 0 });
    expect(json(done).sessions.replicaShortfalls).toEqual([]);
    const doneText = cli(['apply', '--plan', planFile]);
    expect(doneText.status, doneText.stderr + doneText.stdout).toBe(0);
    expect(doneText.stdout).toMatch(/nothing to do/);
    expect(doneText.stdout).not.toMatch(/UNCONFIRMED/);
    expect(await cluster.dbsize()).toBe(dbsizeBefore + 600);
    await expectOnEveryReplica(ids);
  });

  it('plan records replicas by cluster node ID: a CLUSTER FAILOVER between plan and apply, then the demoted master moved to another shard: apply names the new master, 0 of 1; an older plan (host:port) is still read', async () => {
    // Not the node the CLI connects to first (cluster.url), neither as master nor as replica.
    const { masters, replicasOf } = await cluster.roles();
    const old = masters.find(
      (m) => m !== cluster.nodes[0] && (replicasOf.get(m) ?? []).length === 1 && replicasOf.get(m)![0] !== cluster.nodes[0],
    )!;
    const promoted = replicasOf.get(old)![0]!;
    const idOf = async (n: RedisNode): Promise<string> => String(await n.admin.call('CLUSTER', 'MYID'));
    const oldId = await idOf(old);
    const { planFile } = plan('failover-between', 50);
    const recorded = JSON.parse(readFileSync(planFile, 'utf8')) as {
      target: { replicasAtPlan: Record<string, number>; mastersAtPlan: Record<string, { node: string; replicaIds: string[] }> };
    };
    expect(Object.keys(recorded.target.replicasAtPlan).every((k) => /^[0-9a-f]{40}$/.test(k))).toBe(true);
    expect(recorded.target.replicasAtPlan[oldId]).toBe(1);
    expect(recorded.target.mastersAtPlan[oldId]).toEqual({ node: name(old), replicaIds: [await idOf(promoted)] });
    // The same plan as an older version wrote it: by host:port, without mastersAtPlan.
    const oldFormat = join(root, 'failover-between-old-plan.json');
    const { mastersAtPlan, ...target } = recorded.target;
    writeFileSync(
      oldFormat,
      JSON.stringify({
        ...(JSON.parse(readFileSync(planFile, 'utf8')) as object),
        target: {
          ...target,
          replicasAtPlan: Object.fromEntries(Object.entries(recorded.target.replicasAtPlan).map(([id, n]) => [mastersAtPlan[id]!.node, n])),
        },
      }),
    );

    const connected = async (n: RedisNode): Promise<string | undefined> =>
      parseInfo(await n.admin.info('replication')).get('connected_slaves');
    const other = masters.find((m) => m !== old)!;
    try {
      await promote(promoted, old, 'the failover');
      await waitUntil('the demoted master following', async () => (await connected(promoted)) === '1');
      // The demoted master moves to another shard (put back below, for the next test): the shard's
      // master now has none of the replica the plan saw.
      await old.admin.call('CLUSTER', 'REPLICATE', await idOf(other));
      await waitUntil('the new master sees its replica gone', async () => (await connected(promoted)) === '0');

      const a = cli(['apply', '--plan', planFile]);
      expect(a.status, a.stderr).toBe(0);
      // Before: host:port keys; the shard's master now (another host:port) was "new", not compared.
      expect(a.stdout).toMatch(new RegExp(`replicas +fewer than when the plan was made: [^\\n]*${name(promoted)} 0 of 1`));
      expect(a.stderr).not.toContain('not compared');
      const o = cli(['apply', '--plan', oldFormat]);
      expect(o.status, o.stderr).toBe(0);
      expect(o.stdout).not.toContain('fewer than when the plan was made');
      // ...but not silently: the planned master's host:port is no master now, one warning names it.
      expect(o.stderr).toContain(`replicas not compared with the plan for the shard of master ${name(old)} (1 replica(s) at plan)`);
    } finally {
      // Every master with one replica again, for the next tests, whichever step above failed: the
      // demoted master back under the promoted one if it follows another master (moved above); still
      // a master (the failover did not happen), or already there, it needs nothing.
      const info = parseInfo(await old.admin.info('replication'));
      if (info.get('role') === 'slave' && info.get('master_port') !== String(promoted.port)) {
        await old.admin.call('CLUSTER', 'REPLICATE', await idOf(promoted));
        await waitUntil(
          'every master with its replica again',
          async () => (await connected(promoted)) === '1' && (await connected(other)) === '1',
        );
      }
      // And the cluster's own view (CLUSTER NODES, which the next test reads through roles()): it lagged
      // behind INFO once, and the next test found no master with one replica.
      await waitForEveryViewRestored();
    }
  });

  it('an ACL user without +cluster|nodes at plan and apply, and a CLUSTER FAILOVER between them: apply cannot match the planned master, and says so in one warning naming its address (not silent); exit 0', async () => {
    // plan's and apply's documented rules in one user, without CLUSTER NODES: plan records node IDs
    // (CLUSTER MYID) but no replica IDs, and apply cannot ask which master a demoted node follows.
    const tokens = [...aclRuleFor('plan', PREFIX, 'cluster').split(' '), ...aclRuleFor('apply', PREFIX, 'cluster').split(' ')];
    await addAclUser(cluster, {
      name: 'nonodes',
      password: 'nonodes-secret-1',
      rule: [...new Set(tokens)].filter((t) => t !== '+cluster|nodes').join(' '),
    });
    const url = cluster.url.replace('redis://', 'redis://nonodes@');
    const env = { SESSION_MIGRATE_REDIS_PASSWORD: 'nonodes-secret-1' };
    const { masters, replicasOf } = await cluster.roles();
    // Not the node the CLI connects to first (cluster.url), neither as master nor as replica.
    const old = masters.find(
      (m) => m !== cluster.nodes[0] && (replicasOf.get(m) ?? []).length === 1 && replicasOf.get(m)![0] !== cluster.nodes[0],
    )!;
    const promoted = replicasOf.get(old)![0]!;
    const dir = join(root, 'nonodes');
    writeSessionFiles(dir, 'nonodes', 50);
    const planFile = join(root, 'nonodes-plan.json');
    const p = cli(planArgs({ dir, target: url, keyFile, planFile, artifactsDir: join(root, 'nonodes-art') }), env);
    expect(p.status, p.stderr + p.stdout).toBe(0);
    const recorded = JSON.parse(readFileSync(planFile, 'utf8')) as {
      target: { replicasAtPlan: Record<string, number>; mastersAtPlan: Record<string, { node: string; replicaIds: string[] }> };
    };
    const oldId = String(await old.admin.call('CLUSTER', 'MYID'));
    expect(recorded.target.mastersAtPlan[oldId]).toEqual({ node: name(old), replicaIds: [] });
    expect(recorded.target.replicasAtPlan[oldId]).toBe(1);

    const connected = async (n: RedisNode): Promise<string | undefined> =>
      parseInfo(await n.admin.info('replication')).get('connected_slaves');
    try {
      await promote(promoted, old, 'the failover');
      await waitUntil('the demoted master following', async () => (await connected(promoted)) === '1');
      const warning = `session-migrate: warning: replicas not compared with the plan for the shard of master ${name(old)} (1 replica(s) at plan): no master now is that node, one of its replicas at plan or its master (a failover, and CLUSTER NODES denied to this ACL user?); apply waits only for the replicas each master has now; --min-replicas 1 makes it wait for 1 on every master`;
      for (const extra of [[], ['--json']]) {
        const a = cli(['apply', '--plan', planFile, ...extra], env);
        expect(a.status, a.stderr + a.stdout).toBe(0);
        expect(a.stderr.split('\n').filter((l) => l.includes('not compared'))).toEqual([warning]);
        expect(a.stderr).not.toContain('nonodes-secret-1');
        if (extra.length > 0)
          expect((JSON.parse(a.stdout) as { confirm: { notCompared?: unknown } }).confirm.notCompared).toEqual([
            { node: name(old), planned: 1 },
          ]);
      }
      // With --min-replicas nothing is compared with the plan: no warning.
      const m = cli(['apply', '--plan', planFile, '--min-replicas', '1'], env);
      expect(m.status, m.stderr + m.stdout).toBe(0);
      expect(m.stderr).not.toContain('not compared');
    } finally {
      // Roles as before, for the next test.
      if (parseInfo(await old.admin.info('replication')).get('role') !== 'master') await promote(old, promoted, 'the failback', 'takeover');
      await restoreReplica(old, promoted);
      await waitForEveryViewRestored();
    }
  });

  it('a replica killed (kill -9): by default a line names the master without replica; with --min-replicas 1 UNCONFIRMED naming it, exit 1; every session in the cluster', async () => {
    // Last test: the cluster stays one replica short.
    const { masters, replicasOf } = await cluster.roles();
    // Not the node the CLI connects to first (cluster.url): a failover above may have made it a replica.
    const master = masters.find((m) => (replicasOf.get(m) ?? []).length === 1 && replicasOf.get(m)![0] !== cluster.nodes[0])!;
    // A plan made while the replica was there: apply names the master once, on the "fewer than
    // when the plan was made" line, not again on the "none connected" line.
    const early = plan('killed-after-plan', 50);
    // plan's text names what it recorded (3 masters: every one shown, fewest replicas first).
    expect(early.stdout).toMatch(new RegExp(`^  replicas +connected now: [^\\n]*${name(master)}: 1`, 'm'));
    await replicasOf.get(master)![0]!.kill();
    await waitUntil(
      'the master sees its replica gone',
      async () => parseInfo(await master.admin.info('replication')).get('connected_slaves') === '0',
    );
    // Without --min-replicas apply waits for as many replicas as each master has now: none for this
    // master. It says so, and how to make apply wait.
    const d = plan('killed-default', 300);
    expect(d.stdout).toMatch(new RegExp(`^  replicas +connected now: [^\\n]*${name(master)}: 0[,( ]`, 'm'));
    const t = cli(['apply', '--plan', d.planFile]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toContain(`replicas    none connected to ${name(master)} now: its sessions are on no replica`);
    expect(t.stdout).toMatch(/--min-replicas 1 makes apply wait for one on every master/);
    const e = cli(['apply', '--plan', early.planFile]);
    expect(e.status, e.stderr).toBe(0);
    expect(e.stdout).toMatch(new RegExp(`replicas +fewer than when the plan was made: [^\\n]*${name(master)} 0 of 1`));
    expect(e.stdout).not.toContain('none connected to');
    const { ids, planFile } = plan('killed', 300);
    const a = cli(['apply', '--plan', planFile, '--json', '--min-replicas', '1', '--wait-timeout-ms', '300']);
    expect(a.status, a.stderr).toBe(1);
    const out = json(a);
    expect(out.confirm.minReplicas).toEqual({ '*': 1 });
    // Exactly the sessions on the master without replica are unconfirmed; the others' replicas confirmed theirs.
    const onMaster = await countOn(master, ids);
    expect(onMaster).toBeGreaterThan(20);
    expect(out.sessions.counts).toMatchObject({ migrated: 300, unconfirmed: onMaster, missingAfterWrite: 0 });
    expect(out.sessions.replicaShortfalls).toEqual([{ node: name(master), wanted: 1, acked: 0 }]);
    expect(await countPresent(client, codec, PREFIX, ids)).toBe(300);
  });
});

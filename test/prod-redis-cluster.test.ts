/**
 * Redis Cluster through the CLI (issue 10): a real 3-master cluster (test/support/redis-topologies.ts).
 * The cluster is detected from the node given (no flag); plan counts keys on every master; apply's
 * guarded write works (session and tombstone share a slot) and spreads sessions over every master;
 * verify scans every master; a plaintext phpredis source in the cluster is migrated completely; purge
 * and rotate; a slot migration during apply loses nothing; a resharding does not invalidate the plan;
 * a cluster in state `fail` is refused; an ACL user with `+@all -@dangerous +info` works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { RedisConnection, aclRuleFor, specFromUrl } from '@session-migrate/redis';
import { writeBatchGuarded } from '@session-migrate/target';
import {
  addAclUser,
  migrateSlots,
  parseInfo,
  startCluster,
  startFailedClusterNode,
  type ClusterTopology,
} from './support/redis-topologies.ts';
import { startSlotMigration } from './support/slot-migration.ts';
import {
  cli,
  cliChild,
  countPresent,
  newKey,
  planArgs,
  usageLine,
  writePlaintextSessions,
  writeSessionFiles,
} from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
let cluster: ClusterTopology;
let client: Cluster;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-cluster-'));
  ({ keyFile, codec } = await newKey(root));
  cluster = await startCluster();
  client = cluster.client();
});
afterAll(async () => {
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Keys under a prefix on each master (by port). */
async function keysPerNode(prefix: string): Promise<number[]> {
  return Promise.all(cluster.nodes.map(async (n) => (await n.admin.keys(`${prefix}*`)).length));
}

describe('Redis Cluster', () => {
  it('plan -> apply -> verify --plan --source: detected from any node, every master holds sessions, verify sees every master', async () => {
    const dir = join(root, 'files');
    const ids = writeSessionFiles(dir, 'clu', 600);
    // A key already under the prefix on some master: plan counts every master, not the seed's.
    await client.set(`${PREFIX}marker-on-some-node`, 'x');
    const planFile = join(root, 'plan.json');
    // Any node works as the address (here the second one).
    const p = cli([
      'plan',
      '--source',
      `files:${dir}`,
      '--target',
      cluster.nodes[1]!.url,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--artifacts-dir',
      join(root, 'art'),
    ]);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/Redis Cluster, 3 master\(s\)/);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as {
      version: number;
      target: { topology: string; nodes: unknown[]; nodeIds: string[]; existingKeysUnderPrefix: number; memory: { expectedBytes: number } };
    };
    expect(plan.version).toBe(3);
    expect(plan.target.topology).toBe('cluster');
    expect(plan.target.nodes).toHaveLength(3);
    expect(plan.target.nodeIds).toHaveLength(3);
    expect(plan.target.existingKeysUnderPrefix).toBe(1);
    expect(plan.target.memory.expectedBytes).toBeGreaterThan(600 * 100);
    await client.del(`${PREFIX}marker-on-some-node`);

    const a = cli(['apply', '--plan', planFile, '--json']);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const counts = (JSON.parse(a.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
    expect(counts).toMatchObject({ migrated: 600, failed: 0, missingAfterWrite: 0, unconfirmed: 0 });
    expect(await countPresent(client, codec, PREFIX, ids)).toBe(600);
    // Sessions spread over every master (a hash tag per session, never one for all).
    for (const n of await keysPerNode(PREFIX)) expect(n).toBeGreaterThan(100);
    // The artifacts get the cluster: topology and seeds (no tls:// glued to a host).
    // apply asks each master for its node ID once (at connect; the drift check reuses that answer).
    await Promise.all(cluster.nodes.map((n) => n.admin.call('CONFIG', 'RESETSTAT')));
    const again = cli(['apply', '--plan', planFile, '--json']);
    expect(again.status, again.stderr).toBe(0);
    for (const n of cluster.nodes) {
      const stats = parseInfo(await n.admin.info('commandstats'));
      expect(Number(/calls=(\d+)/.exec(stats.get('cmdstat_cluster|myid') ?? '')?.[1] ?? 0), `CLUSTER MYID on ${n.port}`).toBe(1);
    }
    expect((JSON.parse(again.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts).toMatchObject({
      migrated: 0,
      alreadyPresent: 600,
    });

    // Both verifies at once (they only read).
    const [v, vp] = await Promise.all([
      cliChild(['verify', '--plan', planFile, '--source', `files:${dir}`]).done,
      cliChild(['verify', '--plan', planFile]).done,
    ]);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    expect(v.stdout).toMatch(/every master scanned \(3:/);
    expect(v.stdout).toMatch(/600 live session\(s\) checked, 600 identical/);
    // verify --plan alone checks presence of every live session of the plan's source.
    expect(vp.status, vp.stderr + vp.stdout).toBe(0);
    expect(vp.stdout).toMatch(/presence +600 live session\(s\) of the plan's source checked: 600 present/);

    // A plaintext value on the master that is NOT the seed: verify must see it (every master scanned).
    const planted = `${PREFIX}{${'ab'.repeat(32)}}`;
    await client.set(planted, 'user|s:5:"admin";', 'EX', 600);
    const owner = await cluster.ownerOf(Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', planted)));
    expect(owner).toBeDefined();
    const bad = cli(['verify', '--plan', planFile]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(planted);
    await client.del(planted);

    // A lost session (deleted behind apply's back) fails verify --plan, even without --source.
    await client.del(codec.keyName(PREFIX, ids[17]!));
    const lost = cli(['verify', '--plan', planFile]);
    expect(lost.status).toBe(1);
    expect(lost.stdout).toMatch(/missing-in-redis/);
    const redo = cli(['apply', '--plan', planFile, '--json']);
    expect(redo.status, redo.stderr).toBe(0);
    expect((JSON.parse(redo.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts).toMatchObject({
      migrated: 1,
      alreadyPresent: 599,
    });

    // purge deletes the proven files.
    const pu = cli(['purge', '--plan', planFile]);
    expect(pu.status, pu.stderr + pu.stdout).toBe(0);
    expect(pu.stdout).toMatch(/deleted +600 file/);

    // rotate over every master.
    const r = cli(['rotate', '--target', cluster.url, '--key-file', keyFile]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/600 sessions/);
    // rollback --remove-keys on every master.
    const rb = cli(['rollback', '--plan', planFile, '--remove-keys']);
    expect(rb.status, rb.stderr + rb.stdout).toBe(0);
    expect(rb.stdout).toMatch(/removed 600 envelope/);
    expect(await cluster.dbsize()).toBe(0);
    await Promise.all(cluster.nodes.map((n) => n.admin.flushall()));
  });

  it("a plaintext phpredis source in the cluster is migrated completely, verified and purged (all 12, not one node's)", async () => {
    const src = 'PHPREDIS_SESSION:';
    const ids = await writePlaintextSessions(client, src, 'psrc', 12);
    // They sit on several masters.
    expect((await keysPerNode(src)).filter((n) => n > 0).length).toBeGreaterThan(1);
    const planFile = join(root, 'src-plan.json');
    const spec = `redis:${cluster.url}?prefix=${encodeURIComponent(src)}`;
    const p = cli([
      'plan',
      '--source',
      spec,
      '--target',
      cluster.url,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--artifacts-dir',
      join(root, 'src-art'),
    ]);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/12 found: 12 to migrate/);
    const a = cli(['apply', '--plan', planFile, '--json']);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect((JSON.parse(a.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts).toMatchObject({ migrated: 12 });
    expect(await countPresent(client, codec, PREFIX, ids)).toBe(12);
    const v = cli(['verify', '--plan', planFile, '--source', spec]);
    // The plaintext keys are still there: verify fails until purge.
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(/12 plaintext session key\(s\) left/);
    const pu = cli(['purge', '--plan', planFile]);
    expect(pu.status, pu.stderr + pu.stdout).toBe(0);
    expect(pu.stdout).toMatch(/deleted +12 key/);
    const v2 = cli(['verify', '--plan', planFile]);
    expect(v2.status, v2.stdout).toBe(0);
    await Promise.all(cluster.nodes.map((n) => n.admin.flushall()));
  });

  it('a slot migration during apply: MOVED/ASK followed, exit 0 only with every session present; the plan stays valid after the resharding', async () => {
    const dir = join(root, 'reshard');
    const ids = writeSessionFiles(dir, 'rsh', 3000);
    const planFile = join(root, 'reshard-plan.json');
    expect(cli(planArgs({ dir, target: cluster.url, keyFile, planFile, artifactsDir: join(root, 'rsh-art') })).status).toBe(0);
    // Move 300 slots of node 0 to node 1 while apply writes.
    const slots = ((await cluster.nodes[0]!.admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>)
      .filter(([, , m]) => Number(m[1]) === cluster.nodes[0]!.port)
      .flatMap(([from]) => Array.from({ length: 300 }, (_, i) => from + i));
    const run = cliChild(['apply', '--plan', planFile, '--json', '--workers', '0']);
    let done = false;
    void run.done.then(() => {
      done = true;
    });
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    // Start once apply is writing.
    while (!done && (await cluster.dbsize()) < 500) await sleep(20);
    let migrating = true;
    const migration = migrateSlots(cluster, { slots, to: cluster.nodes[1]!, keysPerMigrate: 50 }).finally(() => (migrating = false));
    // The window made certain rather than large (it was 20,000 sessions and luck): once apply has
    // written 1,000 of the 3,000 (its first batch; at most two are in flight) while the migration still
    // runs, apply is frozen (SIGSTOP by its PID) until the migration ends, so it is mid-run whatever
    // the machine's speed, and writes at least its last batch after the resharding (MOVED).
    let frozen = false;
    try {
      while (migrating && !done) {
        if (!frozen && (await cluster.dbsize()) >= 1000) {
          process.kill(run.pid, 'SIGSTOP');
          frozen = true;
        }
        await sleep(5);
      }
      await migration;
    } finally {
      if (frozen) process.kill(run.pid, 'SIGCONT');
    }
    const moved = await migration;
    const doneBeforeMigrationEnded = done;
    const r = await run.done;
    // The migration ran while apply wrote (else this test would prove nothing).
    expect(doneBeforeMigrationEnded).toBe(false);
    const counts = (JSON.parse(r.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
    const present = await countPresent(client, codec, PREFIX, ids);
    // Never success while something is missing.
    if (r.status === 0) expect(present).toBe(ids.length);
    expect((counts.failed ?? 0) + (counts.notDone ?? 0)).toBe(0);
    expect(moved).toBeGreaterThan(0);
    expect((await cluster.ownerOf(slots[0]!)).port).toBe(cluster.nodes[1]!.port);
    // The plan is still valid after the resharding: a re-run finds everything present.
    const again = cli(['apply', '--plan', planFile, '--json']);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect((JSON.parse(again.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts).toMatchObject({
      alreadyPresent: ids.length - (ids.length - present),
      failed: 0,
    });
    expect(await countPresent(client, codec, PREFIX, ids)).toBe(ids.length);
    const v = cli(['verify', '--plan', planFile]);
    expect(v.status, v.stdout).toBe(0);
    await Promise.all(cluster.nodes.map((n) => n.admin.flushall()));
  }, 240_000);

  it('works for an ACL user with "+@all -@dangerous +info" on the prefix (ElastiCache-style; no CONFIG), and with exactly the documented rules', async () => {
    await addAclUser(cluster, { name: 'app', password: 'app-secret-1', rule: `~${PREFIX}* +@all -@dangerous +info` });
    const dir = join(root, 'acl');
    writeSessionFiles(dir, 'acl', 50);
    const planFile = join(root, 'acl-plan.json');
    const url = cluster.url.replace('redis://', 'redis://app@');
    const env = { SESSION_MIGRATE_REDIS_PASSWORD: 'app-secret-1' };
    const p = cli(
      [
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        url,
        '--key-file',
        keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(root, 'acl-art'),
      ],
      env,
    );
    expect(p.status, p.stderr).toBe(0);
    expect((JSON.parse(readFileSync(planFile, 'utf8')) as { target: { username: string } }).target.username).toBe('app');
    const a = cli(['apply', '--plan', planFile], env);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const v = cli(['verify', '--plan', planFile, '--source', `files:${dir}`], env);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    // Without the password: one line naming the variable, exit 2.
    expect(usageLine(cli(['verify', '--plan', planFile]))).toMatch(/WRONGPASS|NOAUTH.*SESSION_MIGRATE_REDIS_PASSWORD/);
    await Promise.all(cluster.nodes.map((n) => n.admin.flushall()));

    // The documented minimal rules of a cluster (CLUSTER SLOTS/INFO/MYID added), exactly.
    for (const command of ['plan', 'apply', 'verify', 'rotate'] as const) {
      await addAclUser(cluster, { name: 'app', password: 'app-secret-1', rule: aclRuleFor(command, PREFIX, 'cluster') });
      const args =
        command === 'plan'
          ? [
              'plan',
              '--source',
              `files:${dir}`,
              '--target',
              url,
              '--key-file',
              keyFile,
              '--out',
              planFile,
              '--artifacts-dir',
              join(root, 'acl-art'),
            ]
          : command === 'rotate'
            ? ['rotate', '--target', url, '--key-file', keyFile]
            : [command, '--plan', planFile];
      const r = cli(args, env);
      expect(r.status, `${command}: ${r.stderr}${r.stdout}`).toBe(0);
    }
    expect(aclRuleFor('apply', PREFIX, 'cluster')).toMatch(/\+cluster\|slots \+cluster\|info \+cluster\|myid \+client\|setname \+asking$/);
    await Promise.all(cluster.nodes.map((n) => n.admin.flushall()));
  });

  it('a CLI command under exactly its documented rule follows ASK (a session key already MIGRATEd to the importing node): ioredis sends ASKING, which the rule allows', async () => {
    const dir = join(root, 'ask');
    const ids = writeSessionFiles(dir, 'ask', 5);
    const planFile = join(root, 'ask-plan.json');
    expect(cli(planArgs({ dir, target: cluster.url, keyFile, planFile, artifactsDir: join(root, 'ask-art') })).status).toBe(0);
    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    // Leave the slot of the first session mid-migration, its key already on the importing node: a
    // read on the source answers ASK (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#ask-redirection).
    const moving = await startSlotMigration(cluster, codec.keyName(PREFIX, ids[0]!), { moveKey: true });
    try {
      await addAclUser(cluster, { name: 'app', password: 'app-secret-1', rule: aclRuleFor('purge', PREFIX, 'cluster') });
      const pu = cli(['purge', '--plan', planFile, '--target', cluster.url.replace('redis://', 'redis://app@'), '--json'], {
        SESSION_MIGRATE_REDIS_PASSWORD: 'app-secret-1',
      });
      expect(pu.status, pu.stderr + pu.stdout).toBe(0);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      await moving.finish();
    }
    await Promise.all(cluster.nodes.map((n) => n.admin.flushall()));
  });

  it('the guarded write after a node refused its first EVAL (CLUSTERDOWN, as after a restart): NOSCRIPT answered with EVAL, the session written', async () => {
    // ioredis's script command marks the script loaded on a connection once it has sent an EVAL, even
    // one refused; its retry of the call is then an EVALSHA the node answers NOSCRIPT, which a
    // pipeline reported as the call's reply (apply: a FAILED retry line after a cluster restart).
    const conn = await RedisConnection.open(specFromUrl(cluster.url, {}, 'target', { env: {} }));
    const key = `${PREFIX}{${'7'.repeat(64)}}`;
    const slot = Number(await client.cluster('KEYSLOT', key));
    const owner = await cluster.ownerOf(slot);
    // Another slot of the owner's, taken away then given back: meanwhile the owner answers CLUSTERDOWN
    // (cluster-require-full-coverage), and ioredis retries the call every 200 ms.
    const range = (await owner.admin.cluster('SLOTS')).find((r) => r[2]![1] === owner.port)!;
    const spare = Number(range[0]) === slot ? Number(range[0]) + 1 : Number(range[0]);
    try {
      await owner.admin.cluster('DELSLOTS', spare);
      const written = writeBatchGuarded(conn, PREFIX, [{ key, value: Buffer.from('v'), ttlMs: 60_000 }]);
      await new Promise((r) => setTimeout(r, 300));
      await owner.admin.cluster('ADDSLOTS', spare);
      expect(await written).toEqual([{ status: 'written' }]);
      expect(await client.get(key)).toBe('v');
    } finally {
      conn.close();
      await owner.admin.cluster('ADDSLOTS', spare).catch(() => undefined);
      await client.del(key);
    }
  });

  it('bad input: a cluster in state fail, a database other than 0: one line, exit 2, nothing written', async () => {
    const dir = join(root, 'bad');
    writeSessionFiles(dir, 'bad', 3);
    const failed = await startFailedClusterNode();
    try {
      const line = usageLine(
        cli(['plan', '--source', `files:${dir}`, '--target', failed.url, '--key-file', keyFile, '--out', join(root, 'bad.json')]),
      );
      expect(line).toMatch(/reports cluster_state:fail/);
      expect(await failed.admin.dbsize()).toBe(0);
    } finally {
      await failed.stop();
    }
    expect(
      usageLine(
        cli([
          'plan',
          '--source',
          `files:${dir}`,
          '--target',
          cluster.url.replace(/\/0$/, '/2'),
          '--key-file',
          keyFile,
          '--out',
          join(root, 'bad.json'),
        ]),
      ),
    ).toMatch(/only database 0/);
    expect(await cluster.dbsize()).toBe(0);
  });
});

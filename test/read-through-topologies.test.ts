/**
 * Read-through of plaintext phpredis keys on the production topologies, with real PHP, phpredis and
 * redis-server, through the CLI (plan --read-through, generate php, apply):
 *
 * - Redis Cluster (3 masters): phpredis's native RedisCluster handler (`session.save_handler=
 *   rediscluster`, save_path `seed[]=...`) writes the sessions; the plan's Redis source names the
 *   cluster by another seed node than the target (plan's same-data check must see one cluster). The
 *   generated handler, as its own ACL user with exactly the rule plan prints, reads each old key
 *   (whose hash slot differs from its encrypted key's, often on another master) before apply, and
 *   after apply everything is in encrypted Redis; nothing is lost, the old keys are never written, and
 *   no command is refused (empty ACL LOG on every node). With locking off (every read is one READ
 *   script, which RedisCluster answers with null for a missing key, \Redis with false), a new session
 *   ID starts empty and is stored, in read-through and in strict mode.
 * - Sentinel: phpredis's native `redis` handler writes to the master; the plan's target is the
 *   Sentinel URL and its Redis source the master by address, or the same Sentinel master by a URL
 *   written differently: both are the same data; the handler (RedisSentinel) reads the old keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startCluster, startSentinel, type ClusterTopology, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { cli, newKey, sid } from './support/migrate-cli.ts';
import { planReadThrough, readThroughRequest, type ReadThroughPlan } from './support/read-through.ts';
import { phpNativeWrite } from './php/harness.ts';

const PREFIX = 'smsess:';
const HANDLER_USER = 'rthandler';
const HANDLER_PASSWORD = 'rt-handler-pw';
/**
 * The TTL given to every old key after phpredis wrote it (as if written a while ago): any write by
 * phpredis's rules would set it back to gc_maxlifetime, 1440.
 */
const LEGACY_TTL = 1300;

let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

interface Out {
  started: boolean;
  idAfter: string;
  session: Record<string, unknown> | unknown[] | null;
}

/** One request of the app through the generated bootstrap in `art`, as the handler's ACL user. */
function request(art: string, args: string[]): { out: Out; logs: string[] } {
  return readThroughRequest<Out>(art, args, { dir: root, keyFile, password: HANDLER_PASSWORD });
}

/** Every ACL LOG entry of the nodes, as user:reason:object. */
async function refusals(nodes: RedisNode[]): Promise<string[]> {
  const refused: string[] = [];
  for (const n of nodes) {
    for (const e of (await n.admin.call('ACL', 'LOG')) as unknown[][]) {
      const f = new Map<string, unknown>();
      for (let i = 0; i + 1 < e.length; i += 2) f.set(String(e[i]), e[i + 1]);
      refused.push(`${String(f.get('username'))}:${String(f.get('reason'))}:${String(f.get('object'))}`);
    }
  }
  return refused;
}

/** plan --read-through as the handler's own ACL user; returns the ACL rule plan printed. */
function plan(name: string, source: string, legacy: string, target: string, filesDir: string): ReadThroughPlan {
  return planReadThrough({ root, name, filesDir, source, legacy, target, prefix: PREFIX, keyFile, handlerUser: HANDLER_USER });
}

/**
 * The whole read-through cycle over sessions phpredis wrote under `legacy`: the handler reads them
 * before apply (one changed, one destroyed, one only read), apply copies them, nothing is lost, and
 * the old keys keep their bytes and TTL (never written).
 */
async function readThroughCycle(o: {
  tag: string;
  legacy: string;
  get: (key: string) => Promise<string | null>;
  ttl: (key: string) => Promise<number>;
  exists: (key: string) => Promise<number>;
  expire: (key: string, s: number) => Promise<unknown>;
  write: (id: string, data: Record<string, unknown>) => void;
  filesDir: string;
  planned: { planFile: string; art: string };
  ids: { changed: string; untouched: string; destroyed: string };
}): Promise<void> {
  const { changed, untouched, destroyed } = o.ids;
  const fromFile = sid(`${o.tag}f`, 0);
  o.write(changed, { user: 'carol', cart: [1, 2] });
  o.write(untouched, { user: 'uma', n: 3 });
  o.write(destroyed, { user: 'dan' });
  phpNativeWrite('files', o.filesDir, fromFile, { user: 'fay' });
  const before = new Map<string, string | null>();
  for (const id of [changed, untouched, destroyed]) {
    await o.expire(`${o.legacy}${id}`, LEGACY_TTL);
    before.set(id, await o.get(`${o.legacy}${id}`));
  }
  expect(before.get(changed)).toContain('carol');
  const art = o.planned.art;
  const gen = cli(['generate', 'php', '--plan', o.planned.planFile]);
  expect(gen.status, gen.stderr).toBe(0);

  // Before apply: the handler reads the old keys.
  const logs: string[] = [];
  const req = (args: string[]): Out => {
    const r = request(art, args);
    logs.push(...r.logs);
    return r.out;
  };
  expect(req([`--id=${changed}`, `--set=${JSON.stringify({ step: 'before-apply' })}`])).toMatchObject({
    started: true,
    session: { user: 'carol', cart: [1, 2] },
  });
  expect(req([`--id=${fromFile}`]).session).toEqual({ user: 'fay' });
  expect(req([`--id=${destroyed}`, '--destroy']).session).toEqual({ user: 'dan' });
  expect(req([`--id=${untouched}`]).session).toEqual({ user: 'uma', n: 3 });
  expect(req([`--id=${sid(`${o.tag}n`, 0)}`]).session).toEqual([]);
  expect(await o.exists(codec.keyName(PREFIX, changed))).toBe(1);
  expect(logs.filter((l) => /fail|refus|error/i.test(l))).toEqual([]);

  const apply = cli(['apply', '--plan', o.planned.planFile, '--json']);
  expect(apply.status, apply.stderr + apply.stdout).toBe(0);
  const counts = (JSON.parse(apply.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
  expect(counts.failed).toBe(0);
  expect(counts.destroyed).toBe(1);

  expect(req([`--id=${changed}`]).session).toEqual({ user: 'carol', cart: [1, 2], step: 'before-apply' });
  expect(req([`--id=${untouched}`]).session).toEqual({ user: 'uma', n: 3 });
  expect(req([`--id=${fromFile}`]).session).toEqual({ user: 'fay' });
  expect(req([`--id=${destroyed}`]).session).toEqual([]);
  expect(await o.exists(codec.keyName(PREFIX, untouched))).toBe(1);

  // Strict mode afterwards: every session is in encrypted Redis.
  expect(cli(['generate', 'php', '--plan', o.planned.planFile, '--strict']).status).toBe(0);
  expect(req([`--id=${untouched}`]).session).toEqual({ user: 'uma', n: 3 });
  expect(req([`--id=${changed}`]).session).toEqual({ user: 'carol', cart: [1, 2], step: 'before-apply' });

  // The old keys were never written: same bytes, TTL still below what any phpredis write would set.
  for (const id of [changed, untouched, destroyed]) {
    expect(await o.get(`${o.legacy}${id}`)).toBe(before.get(id));
    const ttl = await o.ttl(`${o.legacy}${id}`);
    expect(ttl).toBeGreaterThan(1000);
    expect(ttl).toBeLessThanOrEqual(LEGACY_TTL);
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-rt-topo-'));
  ({ keyFile, codec } = await newKey(root));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('read-through of phpredis keys on a Redis Cluster (3 masters)', () => {
  let cluster: ClusterTopology;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("reads RedisCluster's sessions in other slots before apply, as the handler user with plan's rule, nothing refused, nothing lost, old keys never written", async () => {
    const legacy = 'PHPREDIS_CLUSTER_SESSION:';
    const seeds = cluster.masters.map((m) => `seed[]=127.0.0.1:${m.port}`).join('&');
    const c = cluster.client();
    const admin = cluster.nodes[0]!.admin;
    const slot = async (key: string) => Number(await admin.call('CLUSTER', 'KEYSLOT', key));
    const owner = async (key: string) => (await cluster.ownerOf(await slot(key))).port;
    // Session IDs whose old key lives on another master than their encrypted key (and its lock).
    const ids: string[] = [];
    for (let i = 0; ids.length < 3 && i < 200; i++) {
      const id = sid('clu', i);
      if ((await owner(`${legacy}${id}`)) !== (await owner(codec.keyName(PREFIX, id)))) ids.push(id);
    }
    expect(ids).toHaveLength(3);
    const filesDir = join(root, 'cluster-files');
    mkdirSync(filesDir, { mode: 0o700 });
    // The source names the cluster by its second node, the target by its first: one cluster.
    const planned = plan(
      'cluster',
      `redis://127.0.0.1:${cluster.nodes[1]!.port}/0`,
      legacy,
      `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`,
      filesDir,
    );
    expect(planned.rule).toContain(`~${legacy}*`);
    for (const n of cluster.nodes) {
      await n.admin.call('ACL', 'SETUSER', HANDLER_USER, 'reset', 'on', `>${HANDLER_PASSWORD}`, ...planned.rule.split(' '));
      await n.admin.call('ACL', 'LOG', 'RESET');
    }
    await readThroughCycle({
      tag: 'cl',
      legacy,
      get: (k) => c.get(k),
      ttl: (k) => c.ttl(k),
      exists: (k) => c.exists(k),
      expire: (k, s) => c.expire(k, s),
      write: (id, data) => phpNativeWrite('rediscluster', seeds, id, data),
      filesDir,
      planned,
      ids: { changed: ids[0]!, untouched: ids[1]!, destroyed: ids[2]! },
    });
    expect(await refusals(cluster.nodes)).toEqual([]);
  }, 180_000);

  it('with locking off (each read one READ script: RedisCluster hands a missing key as null), a new session ID starts empty and is stored', async () => {
    const filesDir = join(root, 'cluster-nolock-files');
    mkdirSync(filesDir, { mode: 0o700 });
    const { planFile, art, rule } = plan(
      'cluster-nolock',
      `redis://127.0.0.1:${cluster.nodes[2]!.port}/0`,
      'PHPREDIS_CLUSTER_SESSION:',
      `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`,
      filesDir,
    );
    for (const n of cluster.nodes) {
      await n.admin.call('ACL', 'SETUSER', HANDLER_USER, 'reset', 'on', `>${HANDLER_PASSWORD}`, ...rule.split(' '));
    }
    for (const mode of [[], ['--strict']]) {
      const gen = cli(['generate', 'php', '--plan', planFile, '--no-locking', ...mode]);
      expect(gen.status, gen.stderr).toBe(0);
      const id = sid(mode.length === 0 ? 'clnolock' : 'clnostr', 0);
      const first = request(art, [`--id=${id}`, `--set=${JSON.stringify({ fresh: 1 })}`]).out;
      expect(first).toMatchObject({ started: true, session: [] });
      // Strict mode (the generated ini's session.use_strict_mode=1) gives an unknown ID a new one.
      expect(first.idAfter).toMatch(/^[\w,-]{22,}$/);
      expect(request(art, [`--id=${first.idAfter}`]).out.session).toEqual({ fresh: 1 });
    }
  }, 60_000);
});

describe('read-through of phpredis keys behind Sentinel', () => {
  let sentinel: SentinelTopology;
  beforeAll(async () => {
    sentinel = await startSentinel();
  }, 60_000);
  afterAll(async () => {
    await sentinel?.stop();
  });

  it("reads the master's phpredis sessions through RedisSentinel: the source named by the master's address or by the Sentinel URL written otherwise is the same data", async () => {
    const legacy = 'PHPREDIS_SESSION:';
    const master = await sentinel.currentMaster();
    const target = `redis+sentinel://127.0.0.1:${sentinel.sentinel.port}/${sentinel.masterName}`;
    const filesDir = join(root, 'sentinel-files');
    mkdirSync(filesDir, { mode: 0o700 });
    // The same master as a Sentinel URL with its database written out: the same data.
    planReadThrough({ root, name: 'sentinel-url', filesDir, source: `${target}/0`, legacy, target, prefix: PREFIX, keyFile });

    const planned = plan('sentinel', `redis://127.0.0.1:${master.port}/0`, legacy, target, filesDir);
    expect(planned.rule).toContain(`~${legacy}*`);
    for (const n of sentinel.nodes) {
      await n.admin.call('ACL', 'SETUSER', HANDLER_USER, 'reset', 'on', `>${HANDLER_PASSWORD}`, ...planned.rule.split(' '));
      await n.admin.call('ACL', 'LOG', 'RESET');
    }
    const m = master.admin;
    await readThroughCycle({
      tag: 'se',
      legacy,
      get: (k) => m.get(k),
      ttl: (k) => m.ttl(k),
      exists: (k) => m.exists(k),
      expire: (k, s) => m.expire(k, s),
      write: (id, data) => phpNativeWrite('redis', `tcp://127.0.0.1:${master.port}`, id, data),
      filesDir,
      planned,
      ids: { changed: sid('sec', 0), untouched: sid('seu', 0), destroyed: sid('sed', 0) },
    });
    expect(await refusals(sentinel.nodes)).toEqual([]);
  }, 180_000);
});

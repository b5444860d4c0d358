/**
 * The generated handler on the Redis topologies of production (issue 11 item 1): TLS with the plan's
 * CA, client certificate and server name (always verified), an ACL user with the password from the
 * environment, Redis Cluster through RedisCluster (MOVED is followed, never a new session ID), and
 * Sentinel through RedisSentinel (the master is cached; after a fail-over a READONLY or connection
 * error refreshes it and the step is retried once). Bad input: an untrusted server, a missing client
 * certificate, a user without the needed commands, a cluster that is down, a sentinel with no such
 * master each fail session_start() with one log line naming the cause, never a new session ID, never
 * a files session. Real redis-server processes (test/support/redis-topologies.ts), real PHP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec } from '@session-migrate/envelope';
import type { RedisTargetOptions } from '@session-migrate/generate';
import { handlerAclRule } from '@session-migrate/redis';
import {
  addAclUser,
  makeTlsMaterial,
  migrateSlots,
  startCluster,
  startFailedClusterNode,
  startSentinel,
  startTlsRedis,
  type TlsMaterial,
} from './support/redis-topologies.ts';
import { renderInto, sessionRequest, vectors, type Rendered } from './php/harness.ts';

const MASTER = vectors.master_key_base64;
const PREFIX = 'smsess:';

interface Out {
  started: boolean;
  idBefore: string;
  idAfter: string;
  session: Record<string, unknown> | unknown[] | null;
  closed: boolean | null;
}
interface Request {
  out: Out;
  stderr: string;
  logs: string[];
}

let tls: TlsMaterial;
let sandbox: string;
let codec: EnvelopeCodec;
const rendered: Rendered[] = [];

function render(redis: RedisTargetOptions): Rendered {
  const r = renderInto({ redis });
  rendered.push(r);
  return r;
}

/** One request of an application (php CLI) through the rendered ini fragment and bootstrap. */
function request(r: Rendered, args: string[], env: Record<string, string> = {}): Request {
  return sessionRequest<Out>(r, args, { dir: sandbox, env: { SESSION_MIGRATE_KEY: MASTER, ...env } });
}

/** A failed start: false, the same ID kept (no new one), one log line matching `cause`, no sess_ file anywhere. */
function expectVisibleFailure(res: Request, id: string, cause: RegExp): void {
  expect(res.out.started).toBe(false);
  expect(res.out.idAfter === '' || res.out.idAfter === id).toBe(true);
  expect(res.logs, res.logs.join('\n')).toHaveLength(1);
  expect(res.logs[0], res.logs[0]).toMatch(cause);
  expect(res.stderr).toMatch(/session_start\(\): Failed to (initialize storage module|read session data): user/);
  expect(readdirSync(sandbox).filter((f) => f.startsWith('sess_'))).toEqual([]);
}

/** Removes the handler's Sentinel master cache files (the handler writes them to TMPDIR = sandbox). */
function removeSentinelCache(): void {
  for (const f of readdirSync(sandbox).filter((x) => x.startsWith('session-migrate-sentinel-'))) rmSync(join(sandbox, f));
}

beforeAll(async () => {
  tls = makeTlsMaterial();
  sandbox = mkdtempSync(join(tmpdir(), 'sm-topologies-'));
  codec = await EnvelopeCodec.create([Buffer.from(MASTER, 'base64')]);
});
afterAll(() => {
  tls?.remove();
  for (const r of rendered) rmSync(r.dir, { recursive: true, force: true });
  if (sandbox) rmSync(sandbox, { recursive: true, force: true });
});

describe('TLS (mutual, private CA) and an ACL user', () => {
  it("works with the plan's CA, client certificate and user; refuses an untrusted CA, a missing client certificate, a wrong server name", async () => {
    const node = await startTlsRedis(tls, { mutual: true });
    try {
      // exactly the handler's rule of docs/redis.md (database 0, with the ini fragment's pool pattern)
      await addAclUser(node, { name: 'sessions', password: 'pw-sessions', rule: handlerAclRule(PREFIX) });
      const base = { host: '127.0.0.1', port: node.port, username: 'sessions' };
      const good = render({ ...base, tls: { caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile } });
      const env = { SESSION_MIGRATE_REDIS_PASSWORD: 'pw-sessions' };
      const first = request(good, ['--set={"a":1}'], env);
      expect(first.out.started, first.logs.join('\n')).toBe(true);
      expect(first.stderr).toBe('');
      const again = request(good, [`--id=${first.out.idAfter}`], env);
      expect(again.out).toMatchObject({ started: true, idAfter: first.out.idAfter, session: { a: 1 } });
      expect(await node.admin.exists(codec.keyName(PREFIX, first.out.idAfter))).toBe(1);
      const id = first.out.idAfter;

      const untrusted = render({ ...base, tls: { caFile: tls.otherCaFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile } });
      expectVisibleFailure(
        request(untrusted, [`--id=${id}`], env),
        id,
        /sessions are unavailable: Redis at rediss:\/\/sessions@127\.0\.0\.1:\d+\/0: .*(certificate|SSL|TLS)/i,
      );
      const noClientCert = render({ ...base, tls: { caFile: tls.caFile } });
      expectVisibleFailure(request(noClientCert, [`--id=${id}`], env), id, /sessions are unavailable|failed/);
      const wrongUser = render({
        ...base,
        username: 'nobody',
        tls: { caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile },
      });
      const denied = request(wrongUser, [`--id=${id}`], env);
      // phpredis 5 refuses in connect(); phpredis 6 sends the context's AUTH only before the first
      // command, so the handler sends AUTH itself at connect: the same line with both.
      expectVisibleFailure(
        denied,
        id,
        /sessions are unavailable: Redis at rediss:\/\/nobody@127\.0\.0\.1:\d+\/0: authentication failed \(WRONGPASS [^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD and the ACL user nobody$/,
      );
      expect(denied.logs[0]).not.toContain('pw-sessions');
    } finally {
      await node.stop();
    }
  });

  it('checks the server name given in the plan (a certificate for a DNS name, reached by IP)', async () => {
    const node = await startTlsRedis(tls, { serverCert: 'named' });
    try {
      const named = render({ host: '127.0.0.1', port: node.port, tls: { caFile: tls.caFile, serverName: tls.namedServerName } });
      const ok = request(named, ['--set={"a":1}']);
      expect(ok.out.started, ok.logs.join('\n')).toBe(true);
      const unnamed = render({ host: '127.0.0.1', port: node.port, tls: { caFile: tls.caFile } });
      expectVisibleFailure(
        request(unnamed, [`--id=${ok.out.idAfter}`]),
        ok.out.idAfter,
        /sessions are unavailable: .*(certificate|SSL|peer)/i,
      );
    } finally {
      await node.stop();
    }
  });

  it('an ACL user without the commands the handler needs: NOPERM, named with the fix', async () => {
    const node = await startTlsRedis(tls);
    try {
      await addAclUser(node, { name: 'readonly', password: 'pw-ro', rule: `~${PREFIX}* +get +echo +ping +select` });
      await node.admin.set(
        codec.keyName(PREFIX, 'existing0000000000000000000001'),
        codec.seal(codec.keyName(PREFIX, 'existing0000000000000000000001'), Buffer.from('a|i:1;')),
      );
      const r = render({ host: '127.0.0.1', port: node.port, username: 'readonly', tls: { caFile: tls.caFile } });
      const id = 'existing0000000000000000000001';
      const res = request(r, [`--id=${id}`], { SESSION_MIGRATE_REDIS_PASSWORD: 'pw-ro' });
      expectVisibleFailure(
        res,
        id,
        /NOPERM.*\(the ACL user needs \+eval \+evalsha \+get \+set \+del \+exists \+expire on the session keys; \+select for a database other than 0; on a Redis Cluster also \+cluster\|slots \+echo \+asking; docs\/redis\.md\)/,
      );
    } finally {
      await node.stop();
    }
  });
});

describe('Redis Cluster (RedisCluster)', () => {
  it('spreads sessions over the slots, follows a slot that moved (MOVED is never a new ID), and a cluster that is down fails visibly', async () => {
    const cluster = await startCluster();
    try {
      const r = render({
        topology: 'cluster',
        host: '127.0.0.1',
        port: cluster.nodes[0]!.port,
        seeds: cluster.nodes.map((x) => ({ host: '127.0.0.1', port: x.port })),
      });
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const res = request(r, [`--set={"i":${i}}`]);
        expect(res.out.started, res.logs.join('\n')).toBe(true);
        ids.push(res.out.idAfter);
      }
      const owners = new Set<number>();
      for (const id of ids) {
        const slot = Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', codec.keyName(PREFIX, id)));
        owners.add((await cluster.ownerOf(slot)).port);
        expect(
          Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', codec.keyName(PREFIX, id).replace(PREFIX, `${PREFIX}lock:`))),
        ).toBe(slot);
      }
      expect(owners.size).toBeGreaterThan(1);

      // Move the slot of the first session: the next request follows MOVED and keeps the session.
      const key = codec.keyName(PREFIX, ids[0]!);
      const slot = Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', key));
      const from = await cluster.ownerOf(slot);
      const to = cluster.nodes.find((x) => x !== from)!;
      expect(await migrateSlots(cluster, { slots: [slot], to })).toBe(1);
      const after = request(r, [`--id=${ids[0]}`, '--set={"moved":true}']);
      expect(after.out, after.logs.join('\n')).toMatchObject({ started: true, idAfter: ids[0], session: { i: 0 } });
      expect(await to.admin.exists(key)).toBe(1);

      // A standalone handler pointed at one cluster node: MOVED fails the start, with the fix named.
      const wrongNode = cluster.nodes.find((x) => x !== to)!;
      const standalone = render({ host: '127.0.0.1', port: wrongNode.port });
      expectVisibleFailure(
        request(standalone, [`--id=${ids[0]}`]),
        ids[0]!,
        /MOVED .*\(the server is a Redis Cluster node: generate the handler with the cluster topology\)/,
      );
    } finally {
      await cluster.stop();
    }
    const down = render({ topology: 'cluster', host: '127.0.0.1', port: 1, seeds: [{ host: '127.0.0.1', port: 1 }] });
    expectVisibleFailure(
      request(down, ['--id=someone0000000000000000000001']),
      'someone0000000000000000000001',
      /sessions are unavailable: Redis Cluster redis:\/\/127\.0\.0\.1:1: /,
    );
    const lone = await startFailedClusterNode();
    try {
      const failed = render({ topology: 'cluster', host: '127.0.0.1', port: lone.port });
      expectVisibleFailure(
        request(failed, ['--id=someone0000000000000000000001']),
        'someone0000000000000000000001',
        /Redis Cluster|CLUSTERDOWN|keyspace/,
      );
    } finally {
      await lone.stop();
    }
  });
});

describe('Redis Cluster over mutual TLS with an ACL user', () => {
  it('RedisCluster gets the seeds, [user, password] and the TLS context; a wrong password or CA fails visibly', async () => {
    const cluster = await startCluster({ tls: { material: tls, mutual: true } });
    try {
      // exactly the handler's cluster rule of docs/redis.md (with +cluster|slots +echo +asking)
      await addAclUser(cluster, { name: 'sessions', password: 'pw-cluster', rule: handlerAclRule(PREFIX, 'cluster') });
      const base: RedisTargetOptions = {
        topology: 'cluster',
        host: '127.0.0.1',
        port: cluster.nodes[0]!.port,
        seeds: cluster.nodes.map((x) => ({ host: '127.0.0.1', port: x.port })),
        username: 'sessions',
      };
      const clientCert = { certFile: tls.clientCertFile, keyFile: tls.clientKeyFile };
      const good = render({ ...base, tls: { caFile: tls.caFile, ...clientCert } });
      const env = { SESSION_MIGRATE_REDIS_PASSWORD: 'pw-cluster' };
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const res = request(good, [`--set={"i":${i}}`], env);
        expect(res.out.started, res.logs.join('\n')).toBe(true);
        expect(res.stderr).toBe('');
        ids.push(res.out.idAfter);
      }
      const again = request(good, [`--id=${ids[0]}`], env);
      expect(again.out).toMatchObject({ started: true, idAfter: ids[0], session: { i: 0 } });
      const owners = new Set<number>();
      for (const id of ids) {
        const slot = Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', codec.keyName(PREFIX, id)));
        const owner = await cluster.ownerOf(slot);
        expect(await owner.admin.exists(codec.keyName(PREFIX, id))).toBe(1);
        owners.add(owner.port);
      }
      expect(owners.size).toBeGreaterThan(1);

      const wrong = request(good, [`--id=${ids[0]}`], { SESSION_MIGRATE_REDIS_PASSWORD: 'not-it' });
      expectVisibleFailure(
        wrong,
        ids[0]!,
        /sessions are unavailable: Redis Cluster rediss:\/\/sessions@127\.0\.0\.1:\d+.*: authentication failed \(WRONGPASS [^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD and the ACL user sessions$/,
      );
      expect(wrong.logs[0]).not.toContain('not-it');
      const untrusted = render({ ...base, tls: { caFile: tls.otherCaFile, ...clientCert } });
      expectVisibleFailure(
        request(untrusted, [`--id=${ids[0]}`], env),
        ids[0]!,
        /sessions are unavailable: Redis Cluster rediss:\/\/sessions@127\.0\.0\.1:\d+.*(certificate|SSL|TLS|keyspace)/i,
      );
      // The documented rule without +cluster|slots: phpredis says only that it could not map the
      // keyspace; the handler adds what to check.
      const noSlots = handlerAclRule(PREFIX, 'cluster').replace(' +cluster|slots', '');
      expect(noSlots).not.toContain('cluster|slots');
      await addAclUser(cluster, { name: 'sessions', password: 'pw-cluster', rule: noSlots });
      expectVisibleFailure(
        request(good, [`--id=${ids[0]}`], env),
        ids[0]!,
        /Couldn't map cluster keyspace.*; check that a seed is reachable and that the ACL user may run CLUSTER SLOTS \(\+cluster\|slots; docs\/redis\.md\)$/,
      );
    } finally {
      await cluster.stop();
    }
  });
});

describe('Sentinel (RedisSentinel)', () => {
  it('a sentinel without a password: found and used (phpredis 5.3.7 takes no auth argument then, not null)', async () => {
    const s = await startSentinel();
    try {
      const r = render({
        topology: 'sentinel',
        host: '127.0.0.1',
        port: s.sentinel.port,
        sentinels: [{ host: '127.0.0.1', port: s.sentinel.port }],
        masterName: s.masterName,
      });
      const first = request(r, ['--set={"n":1}']);
      expect(first.out.started, first.logs.join('\n') + first.stderr).toBe(true);
      expect(first.logs).toEqual([]);
      expect(first.stderr).toBe('');
      const master = await s.currentMaster();
      expect(await master.admin.exists(codec.keyName(PREFIX, first.out.idAfter))).toBe(1);
      // without the master cache file, the sentinel is asked again (with the same 6-argument call)
      removeSentinelCache();
      const again = request(r, [`--id=${first.out.idAfter}`]);
      expect(again.out, again.logs.join('\n')).toMatchObject({ started: true, idAfter: first.out.idAfter, session: { n: 1 } });
      expect(again.logs).toEqual([]);
      // a password this sentinel does not need: named as the cause, not "went away"
      removeSentinelCache();
      const needless = request(r, [`--id=${first.out.idAfter}`], { SESSION_MIGRATE_SENTINEL_PASSWORD: 'needless-pw' });
      expectVisibleFailure(
        needless,
        first.out.idAfter,
        /Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ refused the password in SESSION_MIGRATE_SENTINEL_PASSWORD \(ERR AUTH <password> called without any password configured/,
      );
      expect(needless.logs[0]).not.toContain('needless-pw');
    } finally {
      removeSentinelCache(); // the next test counts the cache files of its own sentinel
      await s.stop();
    }
  });

  it('finds the master, caches it, follows a fail-over (READONLY -> ask again -> one retry), keeps every session', async () => {
    const s = await startSentinel({ sentinelPassword: 'sentinel-pw' });
    try {
      const r = render({
        topology: 'sentinel',
        host: '127.0.0.1',
        port: s.sentinel.port,
        sentinels: [{ host: '127.0.0.1', port: s.sentinel.port }],
        masterName: s.masterName,
      });
      const env = { SESSION_MIGRATE_SENTINEL_PASSWORD: 'sentinel-pw' };
      // a wrong or missing sentinel password: named as the cause (phpredis 5.3.7 says "went away"
      // or answers false), never the password; nothing is cached
      const wrong = request(r, ['--id=someone0000000000000000000001'], { SESSION_MIGRATE_SENTINEL_PASSWORD: 'wrong-sentinel-pw' });
      expectVisibleFailure(
        wrong,
        'someone0000000000000000000001',
        /^session-migrate: sessions are unavailable: Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ refused the password in SESSION_MIGRATE_SENTINEL_PASSWORD \(WRONGPASS invalid username-password pair[^)]*\)\)$/,
      );
      expect(wrong.logs[0]).not.toContain('wrong-sentinel-pw');
      const missing = request(r, ['--id=someone0000000000000000000001']);
      expectVisibleFailure(
        missing,
        'someone0000000000000000000001',
        /^session-migrate: sessions are unavailable: Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ requires a password: set SESSION_MIGRATE_SENTINEL_PASSWORD \(NOAUTH Authentication required\.\)\)$/,
      );
      expect(readdirSync(sandbox).filter((f) => f.startsWith('session-migrate-sentinel-'))).toEqual([]);

      const first = request(r, ['--set={"n":1}'], env);
      expect(first.out.started, first.logs.join('\n')).toBe(true);
      const id = first.out.idAfter;
      const cache = readdirSync(sandbox).filter((f) => f.startsWith('session-migrate-sentinel-'));
      expect(cache).toHaveLength(1); // the master, for the next requests (and workers)
      const before = await s.currentMaster();
      expect(first.logs).toEqual([]);
      expect(await before.admin.exists(codec.keyName(PREFIX, id)), JSON.stringify(first)).toBe(1);
      // The handler's write reached the replica before the forced fail-over (WAIT on another
      // connection proves nothing about it; SENTINEL FAILOVER does not wait for the replica).
      const replica = s.nodes.find((x) => x !== before)!;
      for (let i = 0; i < 200 && (await replica.admin.exists(codec.keyName(PREFIX, id))) !== 1; i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(await replica.admin.exists(codec.keyName(PREFIX, id))).toBe(1);
      const after = await s.failover({ reconfigureOldMaster: 'now' });
      expect(after).not.toBe(before);
      // Wait until the old master is a replica: a write it took before that would be dropped by the
      // resync (the asynchronous-replication window of any fail-over, not this handler's doing).
      for (let i = 0; i < 200 && !/role:slave/.test(await before.admin.info('replication')); i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(await before.admin.info('replication')).toMatch(/role:slave/);
      // The cache still names the old master, now a replica: READONLY, then the sentinel is asked again.
      const next = request(r, [`--id=${id}`, '--set={"n":2}'], env);
      if (next.out.idAfter !== id || (next.out.session as { n?: number } | null)?.n !== 1) {
        throw new Error(
          JSON.stringify({
            next: next.out,
            logs: next.logs,
            stderr: next.stderr,
            nodes: await Promise.all(
              s.nodes.map(async (x) => ({
                port: x.port,
                role: /role:(\w+)/.exec(await x.admin.info('replication'))?.[1],
                value: (await x.admin.getBuffer(codec.keyName(PREFIX, id)))?.length ?? null,
              })),
            ),
          }),
        );
      }
      expect(next.out, next.logs.join('\n')).toMatchObject({ started: true, idAfter: id, session: { n: 1 }, closed: true });
      expect(next.logs).toEqual([]);
      const third = request(r, [`--id=${id}`], env);
      const diag = async (): Promise<string> =>
        JSON.stringify({
          next: next.out,
          nextLogs: next.logs,
          third: third.out,
          thirdLogs: third.logs,
          cache: readdirSync(sandbox)
            .filter((f) => f.startsWith('session-migrate-sentinel-'))
            .map((f) => readFileSync(join(sandbox, f), 'utf8')),
          nodes: await Promise.all(
            s.nodes.map(async (x) => ({
              port: x.port,
              role: /role:(\w+)/.exec(await x.admin.info('replication'))?.[1],
              value: (await x.admin.getBuffer(codec.keyName(PREFIX, id)))?.length ?? null,
            })),
          ),
        });
      if (third.out.session === null || (third.out.session as { n?: number }).n !== 2) throw new Error(await diag());
      expect(third.out).toMatchObject({ started: true, idAfter: id, session: { n: 2 } });
      expect(await after.admin.exists(codec.keyName(PREFIX, id))).toBe(1);

      // A standalone handler pointed at a replica (the old master): READONLY, retried once on a new
      // connection, still READONLY: a visible failure that keeps the ID, never a new session.
      // The premise, checked as the step runs: the old master is still a replica, and the sentinel
      // still names the new one (no fail-over back of its own: SENTINEL_DOWN_AFTER_MS).
      expect(((await before.admin.call('ROLE')) as unknown[])[0]).toBe('slave');
      expect((await s.currentMaster()).port).toBe(after.port);
      const toReplica = render({ host: '127.0.0.1', port: before.port });
      expectVisibleFailure(request(toReplica, [`--id=${id}`]), id, /READONLY/);

      const noSuchMaster = render({
        topology: 'sentinel',
        host: '127.0.0.1',
        port: s.sentinel.port,
        sentinels: [{ host: '127.0.0.1', port: s.sentinel.port }],
        masterName: 'nope',
      });
      expectVisibleFailure(
        request(noSuchMaster, [`--id=${id}`], env),
        id,
        /sessions are unavailable: Sentinel: no master for "nope" \(127\.0\.0\.1:\d+ knows no master named "nope"\)/,
      );
      const noSentinel = render({
        topology: 'sentinel',
        host: '127.0.0.1',
        port: 1,
        sentinels: [{ host: '127.0.0.1', port: 1 }],
        masterName: s.masterName,
      });
      expectVisibleFailure(request(noSentinel, [`--id=${id}`], env), id, /Sentinel: no master for "sessions" \(127\.0\.0\.1:1 /);
    } finally {
      await s.stop();
    }
  });
});

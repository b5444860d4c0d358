/**
 * The generated PHP handler (real php CLI through the generated ini fragment and bootstrap, phpredis,
 * real redis-server) with an ACL user and SESSION_MIGRATE_REDIS_PASSWORD unset or empty, aligned with
 * the CLI (test/redis-url-user-without-password.test.ts): the user is sent an empty password
 * (AUTH <user> "", ConnectionFactory::auth()), on a single node, over TLS, on a Redis Cluster (where
 * phpredis's RedisCluster drops an empty password, so ConnectionFactory::CLUSTER_NO_PASSWORD stands
 * in for it) and on the master Sentinel names.
 * - A `nopass` ACL user (`ACL SETUSER app on nopass ...`) connects and the sessions are stored; the
 *   `default` user may run no script meanwhile (-@scripting), so a connection that fell back to it
 *   would fail (NOPERM), not pass.
 * - A user with a password is refused by Redis (WRONGPASS): session_start() fails with one log line
 *   naming the server, the user and that SESSION_MIGRATE_REDIS_PASSWORD is not set (or empty), never
 *   a password; with the password set it works as before.
 * The sentinels' own ACL user without SESSION_MIGRATE_SENTINEL_PASSWORD: test/sentinel-acl.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec } from '@session-migrate/envelope';
import type { RedisTargetOptions } from '@session-migrate/generate';
import {
  makeTlsMaterial,
  startCluster,
  startNode,
  startSentinel,
  startTlsRedis,
  type ClusterTopology,
  type RedisNode,
  type SentinelTopology,
  type TlsMaterial,
} from './support/redis-topologies.ts';
import { renderInto, sessionRequest, vectors, type Rendered } from './php/harness.ts';

const MASTER = vectors.master_key_base64;
const PREFIX = 'smsess:';
const NOPASS = 'sm-nopass';
const APP = { name: 'app', password: 'app-Pw-7' };

interface Out {
  started: boolean;
  idAfter: string;
  session: Record<string, unknown> | unknown[] | null;
}

let tls: TlsMaterial;
let sandbox: string;
let codec: EnvelopeCodec;
let node: RedisNode;
let tlsNode: RedisNode;
let cluster: ClusterTopology;
let sentinel: SentinelTopology;
const rendered: Rendered[] = [];

/** One request of an application (php CLI); `env` adds to the key (no Redis password unless given). */
function request(r: Rendered, args: string[], env: Record<string, string> = {}) {
  return sessionRequest<Out>(r, args, { dir: sandbox, env: { SESSION_MIGRATE_KEY: MASTER, ...env } });
}

/** Where each topology's sessions live, how the handler reaches it, and how its server is named in a log line. */
interface Topology {
  nodes: () => RedisNode[];
  redis: (username: string) => RedisTargetOptions;
  /** The describe() prefix of ConnectionFactory for `user`, as a regular expression. */
  server: (user: string) => string;
  /** The node holding a key now. */
  holder: (key: string) => Promise<RedisNode>;
}

const topologies: Array<[string, Topology]> = [
  [
    'single node',
    {
      nodes: () => [node],
      redis: (username) => ({ host: '127.0.0.1', port: node.port, username }),
      server: (user) => `Redis at redis:\\/\\/${user}@127\\.0\\.0\\.1:${node.port}\\/0`,
      holder: () => Promise.resolve(node),
    },
  ],
  [
    'single node over TLS',
    {
      nodes: () => [tlsNode],
      redis: (username) => ({ host: '127.0.0.1', port: tlsNode.port, username, tls: { caFile: tls.caFile } }),
      server: (user) => `Redis at rediss:\\/\\/${user}@127\\.0\\.0\\.1:${tlsNode.port}\\/0`,
      holder: () => Promise.resolve(tlsNode),
    },
  ],
  [
    'Redis Cluster',
    {
      nodes: () => cluster.nodes,
      redis: (username) => ({
        topology: 'cluster',
        host: '127.0.0.1',
        port: cluster.nodes[0]!.port,
        seeds: cluster.nodes.map((x) => ({ host: '127.0.0.1', port: x.port })),
        username,
      }),
      server: (user) => `Redis Cluster redis:\\/\\/${user}@${cluster.nodes.map((x) => `127\\.0\\.0\\.1:${x.port}`).join(',')}`,
      holder: async (key) => cluster.ownerOf(Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', key))),
    },
  ],
  [
    'Sentinel',
    {
      nodes: () => sentinel.nodes,
      redis: (username) => ({
        topology: 'sentinel',
        host: '127.0.0.1',
        port: sentinel.sentinel.port,
        sentinels: [{ host: '127.0.0.1', port: sentinel.sentinel.port }],
        masterName: sentinel.masterName,
        username,
      }),
      server: (user) =>
        `Redis master "${sentinel.masterName}" from Sentinel 127\\.0\\.0\\.1:${sentinel.sentinel.port} \\(redis:\\/\\/${user}@\\.\\.\\., db 0\\)`,
      holder: () => sentinel.currentMaster(),
    },
  ],
];

beforeAll(async () => {
  tls = makeTlsMaterial();
  sandbox = mkdtempSync(join(tmpdir(), 'sm-handler-nopass-'));
  codec = await EnvelopeCodec.create([Buffer.from(MASTER, 'base64')]);
  [node, tlsNode, cluster, sentinel] = await Promise.all([startNode(), startTlsRedis(tls), startCluster(), startSentinel()]);
  for (const n of [node, tlsNode, ...cluster.nodes, ...sentinel.nodes]) {
    await n.admin.call('ACL', 'SETUSER', NOPASS, 'reset', 'on', 'nopass', '~*', '&*', '+@all');
    await n.admin.call('ACL', 'SETUSER', APP.name, 'reset', 'on', `>${APP.password}`, '~*', '&*', '+@all');
  }
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([node?.stop(), tlsNode?.stop(), cluster?.stop(), sentinel?.stop()]);
  tls?.remove();
  for (const r of rendered) rmSync(r.dir, { recursive: true, force: true });
  if (sandbox) rmSync(sandbox, { recursive: true, force: true });
});

/** Runs `fn` while the `default` user of `nodes` may run no script (the handler's every step is one). */
async function withoutDefaultScripts<T>(nodes: RedisNode[], fn: () => Promise<T>): Promise<T> {
  for (const n of nodes) await n.admin.call('ACL', 'SETUSER', 'default', '-@scripting');
  try {
    return await fn();
  } finally {
    for (const n of nodes) await n.admin.call('ACL', 'SETUSER', 'default', '+@all');
  }
}

function render(redis: RedisTargetOptions): Rendered {
  const r = renderInto({ redis });
  rendered.push(r);
  return r;
}

describe.each(topologies)('%s: an ACL user without SESSION_MIGRATE_REDIS_PASSWORD', (_name, t) => {
  it('a nopass ACL user connects as itself (AUTH <user> ""): sessions are written and read, nothing refused', async () => {
    const r = render(t.redis(NOPASS));
    for (const n of t.nodes()) await n.admin.call('ACL', 'LOG', 'RESET');
    await withoutDefaultScripts(t.nodes(), async () => {
      const envs: Array<Record<string, string>> = [{}, { SESSION_MIGRATE_REDIS_PASSWORD: '' }];
      for (const env of envs) {
        const first = request(r, ['--set={"n":1}'], env);
        expect(first.out.started, first.logs.join('\n') + first.stderr).toBe(true);
        expect(first.logs).toEqual([]);
        expect(first.stderr).toBe('');
        const key = codec.keyName(PREFIX, first.out.idAfter);
        expect(await (await t.holder(key)).admin.exists(key)).toBe(1);
        const again = request(r, [`--id=${first.out.idAfter}`], env);
        expect(again.out, again.logs.join('\n')).toMatchObject({ started: true, idAfter: first.out.idAfter, session: { n: 1 } });
      }
    });
    for (const n of t.nodes()) expect(await n.admin.call('ACL', 'LOG')).toEqual([]);
  });

  it('a user with a password: refused by Redis (WRONGPASS), one line naming the server, the user and the unset variable; with the password it works', async () => {
    const r = render(t.redis(APP.name));
    const id = 'nopasstest0000000000000000000001';
    const cases: Array<[Record<string, string>, string]> = [
      [{}, 'is not set'],
      [{ SESSION_MIGRATE_REDIS_PASSWORD: '' }, 'is empty'],
    ];
    for (const [env, why] of cases) {
      const res = request(r, [`--id=${id}`, '--set={"a":1}'], env);
      expect(res.out).toMatchObject({ started: false, session: null });
      expect(res.stderr).toContain('session_start(): Failed to initialize storage module: user');
      expect(res.logs, res.logs.join('\n')).toHaveLength(1);
      expect(res.logs[0]).toMatch(
        new RegExp(
          `^session-migrate: sessions are unavailable: ${t.server(APP.name)}: authentication failed \\(WRONGPASS [^)]*\\): ` +
            `SESSION_MIGRATE_REDIS_PASSWORD ${why}, and ACL user app needs a password \\(only a nopass user connects without one\\)$`,
        ),
      );
      expect(res.logs.join('\n') + res.stderr).not.toContain(APP.password);
      expect(readdirSync(sandbox).filter((f) => f.startsWith('sess_'))).toEqual([]);
      const key = codec.keyName(PREFIX, id);
      expect(await (await t.holder(key)).admin.exists(key)).toBe(0);
    }
    const ok = request(r, ['--set={"a":1}'], { SESSION_MIGRATE_REDIS_PASSWORD: APP.password });
    expect(ok.out.started, ok.logs.join('\n')).toBe(true);
    const key = codec.keyName(PREFIX, ok.out.idAfter);
    expect(await (await t.holder(key)).admin.exists(key)).toBe(1);
  });
});

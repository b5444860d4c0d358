/**
 * A Redis URL with an ACL user name and no password anywhere (not in the URL, not in
 * SESSION_MIGRATE_REDIS_PASSWORD), on a single node, a Redis Cluster and a Sentinel set-up whose
 * `default` user needs no password:
 * - `redis://SECRET@host` (a password written where the user name goes): AUTH SECRET is refused
 *   (no such user), exit 2, one line, SECRET in no output and nothing written; it is never recorded
 *   as the user while the connection runs as `default`.
 * - a `nopass` ACL user named without password: AUTH <user> <empty> succeeds (a nopass user accepts
 *   any password: https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/), the
 *   plan records that user, and the connection does run as that user (the `default` user is denied
 *   INFO meanwhile, which plan needs).
 * - an ACL user with its password in the environment: unchanged.
 * Also a `redis:` source spec with SECRET@.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cli,
  cliTimed,
  EXIT_AFTER_ERROR_MS,
  newKey,
  planArgs,
  usageLine,
  writeSessionFiles,
  type CliResult,
} from './support/migrate-cli.ts';
import {
  addAclUser,
  startCluster,
  startNode,
  startSentinel,
  type ClusterTopology,
  type RedisNode,
  type SentinelTopology,
} from './support/redis-topologies.ts';

const SECRET = 'Secr3tInUserSlot';
const APP = { name: 'app', password: 'app-Pw-9', rule: '~* +@all' };
const NOPASS = 'nopassuser';

let node: RedisNode;
let cluster: ClusterTopology;
let sentinel: SentinelTopology;
let root: string;
let keyFile: string;
let dir: string;
let run = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-userslot-'));
  ({ keyFile } = await newKey(root));
  dir = join(root, 'sessions');
  writeSessionFiles(dir, 'us', 5);
  [node, cluster, sentinel] = await Promise.all([startNode(), startCluster(), startSentinel()]);
  const all = [node, ...cluster.nodes, ...sentinel.nodes];
  await addAclUser(all, APP);
  for (const n of all) await n.admin.call('ACL', 'SETUSER', NOPASS, 'reset', 'on', 'nopass', '~*', '+@all');
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([node?.stop(), cluster?.stop(), sentinel?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

/** `scheme://USERINFO@rest` of a URL without credentials. */
const withUser = (url: string, userinfo: string): string => url.replace('://', `://${userinfo}@`);

/** Runs plan into a fresh empty directory (`out`); returns the result and where the plan and artifacts would go. */
function plan(target: string, env: Record<string, string> = {}, source = `files:${dir}`): CliResult & { out: string } {
  const out = join(root, `run-${++run}`);
  mkdirSync(out);
  const args = planArgs({ dir, target, keyFile, planFile: join(out, 'plan.json'), artifactsDir: join(out, 'art') });
  args[2] = source;
  return { ...cli(args, env), out };
}

/** Everything plan wrote under `out` (plan file and artifacts), as one text. */
function written(out: string): string {
  return (readdirSync(out, { recursive: true, withFileTypes: true }) as Array<{ isFile(): boolean; parentPath: string; name: string }>)
    .filter((e) => e.isFile())
    .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'))
    .join('\n');
}

/** Runs `fn` while the `default` user of `nodes` may not run INFO (so only another user passes plan). */
async function withoutDefaultInfo<T>(nodes: RedisNode[], fn: () => T): Promise<T> {
  for (const n of nodes) await n.admin.call('ACL', 'SETUSER', 'default', '-info');
  try {
    return fn();
  } finally {
    for (const n of nodes) await n.admin.call('ACL', 'SETUSER', 'default', '+info');
  }
}

const topologies: Array<[string, () => { url: string; nodes: RedisNode[] }]> = [
  ['single node', () => ({ url: node.url, nodes: [node] })],
  ['Redis Cluster', () => ({ url: cluster.url, nodes: cluster.nodes })],
  ['Sentinel', () => ({ url: sentinel.url, nodes: sentinel.nodes })],
];

describe.each(topologies)('%s: an ACL user name without a password', (_name, topology) => {
  it('redis://SECRET@host against a server without password: refused in one line, SECRET nowhere, nothing written', () => {
    const r = plan(withUser(topology().url, SECRET));
    expect(usageLine(r)).toMatch(/WRONGPASS/);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(readdirSync(r.out)).toEqual([]);
  });

  it('redis://SECRET@host refused: the process exits at once after its error line (no ioredis timer left)', async () => {
    const out = join(root, `run-${++run}`);
    const r = await cliTimed(
      planArgs({
        dir,
        target: withUser(topology().url, SECRET),
        keyFile,
        planFile: join(out, 'plan.json'),
        artifactsDir: join(out, 'art'),
      }),
    );
    expect(usageLine(r)).toMatch(/WRONGPASS/);
    expect(r.lingerMs).toBeLessThan(EXIT_AFTER_ERROR_MS);
  });

  it('a nopass ACL user given by name only: connects as that user (AUTH user with an empty password) and records it', async () => {
    const { url, nodes } = topology();
    const r = await withoutDefaultInfo(nodes, () => plan(withUser(url, NOPASS)));
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain(`user "${NOPASS}"`);
    expect((JSON.parse(readFileSync(join(r.out, 'plan.json'), 'utf8')) as { target: { username?: string } }).target.username).toBe(NOPASS);
  });

  it('an ACL user with its password in SESSION_MIGRATE_REDIS_PASSWORD: unchanged', async () => {
    const { url, nodes } = topology();
    const r = await withoutDefaultInfo(nodes, () => plan(withUser(url, APP.name), { SESSION_MIGRATE_REDIS_PASSWORD: APP.password }));
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect((JSON.parse(readFileSync(join(r.out, 'plan.json'), 'utf8')) as { target: { username?: string } }).target.username).toBe(
      APP.name,
    );
    expect(r.stdout + r.stderr + written(r.out)).not.toContain(APP.password);
  });
});

describe('a redis: source', () => {
  it('redis:redis://SECRET@host: refused in one line, SECRET nowhere, nothing written', () => {
    const r = plan(node.url, {}, `redis:${withUser(node.url, SECRET)}`);
    expect(usageLine(r)).toMatch(/WRONGPASS/);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(readdirSync(r.out)).toEqual([]);
  });

  it('a nopass ACL user as the source user: connects as that user and records it', async () => {
    const r = await withoutDefaultInfo([node], () =>
      plan(withUser(cluster.url, APP.name), { SESSION_MIGRATE_REDIS_PASSWORD: APP.password }, `redis:${withUser(node.url, NOPASS)}`),
    );
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const p = JSON.parse(readFileSync(join(r.out, 'plan.json'), 'utf8')) as { source: { username?: string } };
    expect(p.source.username).toBe(NOPASS);
  });
});

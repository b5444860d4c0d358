/**
 * Read-through with a files source AND a Redis source (plaintext phpredis keys), with real PHP,
 * phpredis and redis-server, through the CLI (plan --read-through, generate php, apply):
 *
 * - in the in-place case (the phpredis keys live in the target's own Redis database), the generated
 *   handler reads a session it does not find encrypted from its old `PHPREDIS_SESSION:<id>` key,
 *   written by phpredis's native handler, byte for byte as phpredis would hand it to PHP, before
 *   apply and after it; it never writes or deletes that key, and nothing is lost: a session changed
 *   before apply keeps the change (apply's SET NX), one untouched until after apply is copied, a
 *   destroyed one stays destroyed (its tombstone);
 * - a Redis source elsewhere (another database here) cannot be read through: plan --read-through
 *   refuses it in one line (exit 2, no plan written) naming the two plans to make, and so does
 *   generate php --read-through;
 * - a Redis source given by the address of a replica of the target's master is the target's data
 *   (the same replication ID): read through like the master's own keys, and apply copies them from
 *   the replica; a replica of another master is refused, the line saying it is a replica of which
 *   server and what to give instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { cli, newKey, sid, usageLine } from './support/migrate-cli.ts';
import { planReadThrough, readThroughRequest } from './support/read-through.ts';
import { phpNativeWrite } from './php/harness.ts';

const PREFIX = 'smsess:';
const LEGACY = 'PHPREDIS_SESSION:';
/** The handler's own ACL user (plan --handler-user), created with the rule plan prints. */
const HANDLER_USER = 'rthandler';
const HANDLER_PASSWORD = 'rt-handler-pw';

let redis: RedisServer;
let client: Redis;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let filesDir: string;

interface Out {
  started: boolean;
  session: Record<string, unknown> | null;
}

/** The handler's log lines of every request() so far. */
const handlerLogs: string[] = [];

/**
 * One request of the app through the generated bootstrap in `art`. The main plan's handler connects
 * as its own ACL user (HANDLER_USER, `asHandlerUser`); the igbinary and replica plans' as default.
 */
function request(art: string, args: string[], ini: string[] = [], asHandlerUser = !art.endsWith('igb-art')): Out {
  const res = readThroughRequest<Out>(art, args, { dir: root, keyFile, ini, ...(asHandlerUser ? { password: HANDLER_PASSWORD } : {}) });
  handlerLogs.push(...res.logs);
  return res.out;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-rt-redis-'));
  ({ keyFile, codec } = await newKey(root));
  redis = await startRedis();
  client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
  await client.connect();
  filesDir = join(root, 'files');
  mkdirSync(filesDir, { mode: 0o700 });
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('read-through over a files source and phpredis keys in the same Redis', () => {
  it('reads the phpredis session before apply and after it, never writes it, and loses nothing', async () => {
    const saved = `tcp://127.0.0.1:${redis.port}`;
    const changed = sid('rch', 0); // read and changed by the new handler before apply
    const untouched = sid('run', 0); // first seen by the new handler after apply
    const destroyed = sid('rde', 0); // logged out through the new handler before apply
    const fromFile = sid('fil', 0);
    phpNativeWrite('redis', saved, changed, { user: 'carol', cart: [1, 2] });
    phpNativeWrite('redis', saved, untouched, { user: 'uma', n: 3 });
    phpNativeWrite('redis', saved, destroyed, { user: 'dan' });
    phpNativeWrite('files', filesDir, fromFile, { user: 'fay' });
    const legacyBefore = spawnSync('redis-cli', ['-p', String(redis.port), '--raw', 'GET', `${LEGACY}${changed}`], {
      encoding: 'utf8',
    }).stdout;
    expect(legacyBefore).toContain('carol');

    const { planFile, art, rule } = planReadThrough({
      root,
      name: 'plan',
      filesDir,
      source: `redis://127.0.0.1:${redis.port}/0`,
      legacy: LEGACY,
      target: redis.url,
      prefix: PREFIX,
      keyFile,
      handlerUser: HANDLER_USER,
    });
    // The handler runs as its own ACL user with exactly the rule plan prints, which reaches the old keys.
    expect(rule).toContain(`~${PREFIX}* ~${LEGACY}* -@all`);
    await client.call('ACL', 'SETUSER', HANDLER_USER, 'on', `>${HANDLER_PASSWORD}`, ...rule.split(' '));
    const gen = cli(['generate', 'php', '--plan', planFile]);
    expect(gen.status, gen.stderr).toBe(0);

    // Phase 1: the read-through handler is deployed; apply has not run. A write through it must come
    // at least NEWER_MARGIN_MS (1 s, packages/common lifecycle.ts) after the old handler's last write
    // for apply to tell it is newer (by TTL): closer writes are a conflict, reported and left alone,
    // which is what apply exited 1 for when plan and generate took under a second.
    await new Promise((r) => setTimeout(r, 1100));
    const keyOf = (id: string) => codec.keyName(PREFIX, id);
    const a = request(art, [`--id=${changed}`, `--set=${JSON.stringify({ step: 'before-apply' })}`]);
    expect(a.started).toBe(true);
    expect(a.session).toEqual({ user: 'carol', cart: [1, 2] });
    const f = request(art, [`--id=${fromFile}`]);
    expect(f.session).toEqual({ user: 'fay' });
    const d = request(art, [`--id=${destroyed}`, '--destroy']);
    expect(d.session).toEqual({ user: 'dan' });
    const u = request(art, [`--id=${untouched}`]); // read, not changed: lazy write or not, still there
    expect(u.session).toEqual({ user: 'uma', n: 3 });
    expect(request(art, [`--id=${sid('new', 0)}`]).session).toEqual([]); // no legacy copy anywhere (an empty PHP array in JSON)
    // Each take-over names its source (the old key by its prefix, "<ID>" as such) and the encrypted
    // key; never a session ID or a value.
    expect(handlerLogs).toEqual([
      `session-migrate: read-through: took over the old phpredis key ${LEGACY}<ID> of ${keyOf(changed)}`,
      `session-migrate: read-through: took over the legacy session file of ${keyOf(fromFile)}`,
      `session-migrate: read-through: took over the old phpredis key ${LEGACY}<ID> of ${keyOf(destroyed)}`,
      `session-migrate: read-through: took over the old phpredis key ${LEGACY}<ID> of ${keyOf(untouched)}`,
    ]);
    expect(await client.exists(keyOf(changed))).toBe(1);
    // The old key is read, never written or deleted (destroy leaves a tombstone instead).
    expect(await client.get(`${LEGACY}${changed}`)).toBe(legacyBefore.replace(/\n$/, ''));
    expect(await client.exists(`${LEGACY}${destroyed}`)).toBe(1);
    expect(await client.ttl(`${LEGACY}${changed}`)).toBeGreaterThan(1000);

    // Phase 2: apply copies both sources while the read-through handler serves.
    const apply = cli(['apply', '--plan', planFile, '--json']);
    expect(apply.status, `${apply.stderr}\n${apply.stdout.slice(0, 3000)}`).toBe(0);
    const counts = (JSON.parse(apply.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
    expect(counts.failed).toBe(0);
    expect(counts.destroyed).toBe(1);

    expect(request(art, [`--id=${changed}`]).session).toEqual({ user: 'carol', cart: [1, 2], step: 'before-apply' });
    expect(request(art, [`--id=${untouched}`]).session).toEqual({ user: 'uma', n: 3 });
    expect(request(art, [`--id=${fromFile}`]).session).toEqual({ user: 'fay' });
    expect(request(art, [`--id=${destroyed}`]).session).toEqual([]); // stays logged out
    expect(await client.exists(keyOf(untouched))).toBe(1);
    expect(await client.get(`${LEGACY}${changed}`)).toBe(legacyBefore.replace(/\n$/, ''));

    // Strict mode afterwards: every session is in encrypted Redis.
    expect(cli(['generate', 'php', '--plan', planFile, '--strict']).status).toBe(0);
    expect(request(art, [`--id=${untouched}`]).session).toEqual({ user: 'uma', n: 3 });
    expect(request(art, [`--id=${changed}`]).session).toEqual({ user: 'carol', cart: [1, 2], step: 'before-apply' });
  });

  it("hands PHP the old key's bytes as phpredis does: an igbinary session (session.serialize_handler=igbinary) reads back whole", async () => {
    const id = sid('igb', 0);
    const legacyKey = `IGB_SESSION:${id}`;
    phpNativeWrite('redis', `tcp://127.0.0.1:${redis.port}?prefix=IGB_SESSION:`, id, { user: 'iggy', list: [1, 'two', 3.5] }, 'igbinary');
    const stored = await client.getBuffer(legacyKey);
    expect(stored?.subarray(0, 4)).toEqual(Buffer.from([0, 0, 0, 2])); // igbinary's header: not the php serializer
    const dir = join(root, 'igb-files');
    mkdirSync(dir, { mode: 0o700 });
    const { planFile, art } = planReadThrough({
      root,
      name: 'igb',
      filesDir: dir,
      source: `redis://127.0.0.1:${redis.port}/0`,
      legacy: 'IGB_SESSION:',
      target: redis.url,
      prefix: 'igbenc:',
      keyFile,
      extra: ['--serialize-handler', 'igbinary'],
    });
    expect(cli(['generate', 'php', '--plan', planFile]).status).toBe(0);
    const ini = ['session.serialize_handler=igbinary'];
    const r = request(art, [`--id=${id}`, `--set=${JSON.stringify({ seen: true })}`], ini);
    expect(r.session).toEqual({ user: 'iggy', list: [1, 'two', 3.5] });
    expect(await client.getBuffer(legacyKey)).toEqual(stored); // never written
    expect(request(art, [`--id=${id}`], ini).session).toEqual({ user: 'iggy', list: [1, 'two', 3.5], seen: true });
  });

  it('refuses --read-through with a Redis source in another database: one line, exit 2, no plan', async () => {
    const planFile = join(root, 'elsewhere.json');
    const args = (extra: string[]) => [
      'plan',
      '--source',
      `redis:redis://127.0.0.1:${redis.port}/1?prefix=${encodeURIComponent(LEGACY)}`,
      '--source',
      `files:${filesDir}`,
      '--target',
      redis.url,
      '--prefix',
      PREFIX,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--artifacts-dir',
      join(root, 'art-elsewhere'),
      ...extra,
    ];
    expect(usageLine(cli(args(['--read-through'])))).toMatch(
      /--read-through: the handler reads old phpredis keys only in the target's own Redis database, and redis:.*\/1.* is elsewhere; make one plan for that Redis source without --read-through and apply it before the handler switch, and one plan for the files source with --read-through/,
    );
    expect(existsSync(planFile)).toBe(false);
    // The same plan without read-through is fine; generate php --read-through on it is refused alike.
    const made = cli(args([]));
    expect(made.status, made.stderr).toBe(0);
    expect(usageLine(cli(['generate', 'php', '--plan', planFile, '--read-through']))).toMatch(
      /--read-through: the handler reads old phpredis keys only in the target's own Redis database/,
    );
    expect(existsSync(join(root, 'art-elsewhere', '99-session-migrate.ini'))).toBe(false);
  });
});

describe('a Redis source given by a replica address', () => {
  let replica: RedisServer;
  let other: RedisServer;
  let otherReplica: RedisServer;
  /** Waits until a replica's link to its master is up (INFO replication). */
  const inSync = async (node: RedisServer): Promise<void> => {
    const c = new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: true });
    await c.connect();
    try {
      for (let i = 0; !/master_link_status:up/.test(await c.info('replication')); i++) {
        if (i > 200) throw new Error(`replica ${node.port} not in sync`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      c.disconnect();
    }
  };
  beforeAll(async () => {
    replica = await startRedis(['--replicaof', '127.0.0.1', String(redis.port)]);
    other = await startRedis();
    otherReplica = await startRedis(['--replicaof', '127.0.0.1', String(other.port)]);
    await inSync(replica);
    await inSync(otherReplica);
  });
  afterAll(async () => {
    await replica?.stop();
    await otherReplica?.stop();
    await other?.stop();
  });

  const planArgs = (source: RedisServer, name: string) => [
    'plan',
    '--source',
    `files:${filesDir}`,
    '--source',
    `redis:redis://127.0.0.1:${source.port}/0?prefix=REPL_SESSION%3A`,
    '--target',
    redis.url,
    '--prefix',
    'replenc:',
    '--key-file',
    keyFile,
    '--out',
    join(root, `${name}.json`),
    '--artifacts-dir',
    join(root, `${name}-art`),
    '--read-through',
  ];

  it("a replica of the target's master is the target's data: the handler reads the old key (on the master), apply copies it from the replica", async () => {
    const id = sid('rep', 0);
    phpNativeWrite('redis', `tcp://127.0.0.1:${redis.port}?prefix=REPL_SESSION:`, id, { user: 'rita' });
    const onReplica = new Redis({ host: '127.0.0.1', port: replica.port, lazyConnect: true });
    await onReplica.connect();
    try {
      for (let i = 0; (await onReplica.exists(`REPL_SESSION:${id}`)) === 0; i++) {
        if (i > 200) throw new Error('the old key never reached the replica');
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      onReplica.disconnect();
    }
    const made = cli(planArgs(replica, 'replica'));
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toContain("then the old phpredis keys REPL_SESSION:<ID> in the target's Redis");
    const art = join(root, 'replica-art');
    const planFile = join(root, 'replica.json');
    const gen = cli(['generate', 'php', '--plan', planFile]);
    expect(gen.status, gen.stderr).toBe(0);
    handlerLogs.length = 0;
    expect(request(art, [`--id=${id}`], [], false).session).toEqual({ user: 'rita' });
    expect(handlerLogs).toEqual([
      `session-migrate: read-through: took over the old phpredis key REPL_SESSION:<ID> of ${codec.keyName('replenc:', id)}`,
    ]);
    const untouched = sid('rep', 1); // first read after apply: copied by apply from the replica
    phpNativeWrite('redis', `tcp://127.0.0.1:${redis.port}?prefix=REPL_SESSION:`, untouched, { user: 'ursula' });
    await new Promise((r) => setTimeout(r, 1100)); // apply's 1 s margin for the session changed above
    const apply = cli(['apply', '--plan', planFile, '--json']);
    expect(apply.status, `${apply.stderr}\n${apply.stdout.slice(0, 3000)}`).toBe(0);
    expect(await client.exists(codec.keyName('replenc:', untouched))).toBe(1);
    expect(cli(['generate', 'php', '--plan', planFile, '--strict']).status).toBe(0);
    expect(request(art, [`--id=${untouched}`], [], false).session).toEqual({ user: 'ursula' });
    expect(request(art, [`--id=${id}`], [], false).session).toEqual({ user: 'rita' });
  });

  it('a replica of another master is refused in one line naming what it replicates and what to give instead; no plan', () => {
    const line = usageLine(cli(planArgs(otherReplica, 'other-replica')));
    expect(line).toContain(
      `is elsewhere (a replica of 127.0.0.1:${other.port} whose replication ID is not the target's: not in sync with the target's master (INFO replication master_link_status), or the replica of another master; if it replicates the target, re-run plan once it is in sync, or give the target's own address with the source's prefix as the source); make one plan for that Redis source without --read-through`,
    );
    expect(existsSync(join(root, 'other-replica.json'))).toBe(false);
  });
});

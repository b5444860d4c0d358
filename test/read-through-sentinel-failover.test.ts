/**
 * Read-through of plaintext phpredis keys behind Sentinel across a master failover, with real PHP,
 * phpredis, redis-server and a sentinel, through the CLI (plan --read-through, generate php, apply):
 * the plan's Redis source is given by the REPLICA's address (the same data as the Sentinel target:
 * the same replication ID). The handler reads a session from its old key before `SENTINEL FAILOVER`;
 * after it, sessions that still exist only as old keys are read from the new master, also while
 * the old one still answers as a master (the sentinel reconfigures it only seconds later: the
 * handler's cached master, the sentinel cache file its requests share, is taken for at most 2 s,
 * SentinelMasterLocator::CACHE_MAX_AGE; without that age it kept the handler on the old master,
 * whose writes the resync then drops), a session taken over before the failover
 * keeps its change, a logout after it stays a logout through apply, and apply (whose recorded
 * source, the former replica, is the master now) copies the rest: nothing is lost, and the old keys
 * are never written.
 *
 * In ALONE (vitest.config.ts): a failover is timing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startSentinel, type SentinelTopology } from './support/redis-topologies.ts';
import { cli, newKey, sid } from './support/migrate-cli.ts';
import { planReadThrough, readThroughRequest } from './support/read-through.ts';
import { phpNativeWrite } from './php/harness.ts';

const PREFIX = 'smsess:';
const LEGACY = 'PHPREDIS_SESSION:';

let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let sentinel: SentinelTopology;

interface Out {
  started: boolean;
  session: Record<string, unknown> | unknown[] | null;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-rt-failover-'));
  ({ keyFile, codec } = await newKey(root));
  sentinel = await startSentinel();
}, 60_000);

afterAll(async () => {
  await sentinel?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('read-through of phpredis keys behind Sentinel, across a failover', () => {
  it('reads old keys from the new master after SENTINEL FAILOVER, keeps every change and logout, and loses nothing', async () => {
    const master = await sentinel.currentMaster();
    const replica = sentinel.nodes.find((n) => n !== master)!;
    const ids = {
      before: sid('fob', 0), // taken over (and changed) before the failover
      after: sid('foa', 0), // only an old key until after the failover
      logout: sid('fol', 0), // only an old key; logged out after the failover
      untouched: sid('fou', 0), // only an old key until apply copies it
    };
    const users: Record<string, string> = { before: 'bea', after: 'abe', logout: 'lou', untouched: 'uma' };
    for (const [name, id] of Object.entries(ids)) {
      phpNativeWrite('redis', `tcp://127.0.0.1:${master.port}`, id, { user: users[name]! });
    }
    const legacyKey = (id: string) => `${LEGACY}${id}`;
    const oldBytes = new Map<string, string | null>();
    for (const id of Object.values(ids)) oldBytes.set(id, await master.admin.get(legacyKey(id)));
    await master.admin.call('WAIT', '1', '5000'); // on the replica too before the plan reads it

    const filesDir = join(root, 'files');
    mkdirSync(filesDir, { mode: 0o700 });
    const { planFile, art } = planReadThrough({
      root,
      name: 'plan',
      filesDir,
      source: `redis://127.0.0.1:${replica.port}/0`,
      legacy: LEGACY,
      target: sentinel.url,
      prefix: PREFIX,
      keyFile,
    });
    const gen = cli(['generate', 'php', '--plan', planFile]);
    expect(gen.status, gen.stderr).toBe(0);

    const logs: string[] = [];
    const req = (args: string[]): Out => {
      const r = readThroughRequest<Out>(art, args, { dir: root, keyFile });
      logs.push(...r.logs);
      return r.out;
    };
    const tookOver = (id: string) =>
      `session-migrate: read-through: took over the old phpredis key ${LEGACY}<ID> of ${codec.keyName(PREFIX, id)}`;

    // Before the failover: one session taken over from its old key and changed.
    expect(req([`--id=${ids.before}`, `--set=${JSON.stringify({ step: 'before-failover' })}`])).toMatchObject({
      started: true,
      session: { user: 'bea' },
    });
    expect(await master.admin.exists(codec.keyName(PREFIX, ids.before))).toBe(1);
    // A forced failover does not wait for the replica: the test does, as a production failover's
    // candidate is a replica in sync (otherwise the last writes are lost whatever the client does).
    await master.admin.call('WAIT', '1', '5000');

    // The old master is left to the sentinel to reconfigure (about 8 s later): until then it still
    // answers as a master, so no READONLY tells the handler its cached master moved; the cache's
    // age (SentinelMasterLocator::CACHE_MAX_AGE, at most 2 s) does.
    const promoted = await sentinel.failover({ reconfigureOldMaster: 'sentinel', waitForReplica: false });
    expect(promoted).toBe(replica);
    expect(await master.admin.info('replication')).toMatch(/role:master/);
    await new Promise((r) => setTimeout(r, 2100));

    // After it: sessions that exist only as old keys are read from the new master. (On a loaded
    // machine the sentinel may fail over once more: the master is asked for each time.)
    expect(req([`--id=${ids.after}`, `--set=${JSON.stringify({ step: 'after-failover' })}`])).toMatchObject({
      started: true,
      session: { user: 'abe' },
    });
    expect(await (await sentinel.currentMaster()).admin.exists(codec.keyName(PREFIX, ids.after))).toBe(1);
    expect(req([`--id=${ids.before}`]).session).toEqual({ user: 'bea', step: 'before-failover' });
    expect(req([`--id=${ids.logout}`, '--destroy']).session).toEqual({ user: 'lou' });
    expect(req([`--id=${ids.logout}`]).session).toEqual([]); // stays logged out: its tombstone, not its old key
    expect(logs).toEqual([tookOver(ids.before), tookOver(ids.after), tookOver(ids.logout)]);

    // apply: the recorded source (the former replica) is the master now; the target follows Sentinel.
    await new Promise((r) => setTimeout(r, 1100)); // apply's 1 s margin: a session changed just now is newer by TTL
    const apply = cli(['apply', '--plan', planFile, '--json']);
    expect(apply.status, `${apply.stderr}\n${apply.stdout.slice(0, 3000)}`).toBe(0);
    const counts = (JSON.parse(apply.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
    expect(counts.failed).toBe(0);
    expect(counts.destroyed).toBe(1);

    // Strict mode: every session is in encrypted Redis on the new master, the logout still a logout.
    expect(cli(['generate', 'php', '--plan', planFile, '--strict']).status).toBe(0);
    expect(req([`--id=${ids.before}`]).session).toEqual({ user: 'bea', step: 'before-failover' });
    expect(req([`--id=${ids.after}`]).session).toEqual({ user: 'abe', step: 'after-failover' });
    expect(req([`--id=${ids.untouched}`]).session).toEqual({ user: 'uma' });
    expect(req([`--id=${ids.logout}`]).session).toEqual([]);
    expect(logs.filter((l) => !l.includes('read-through: took over'))).toEqual([]);

    // The old keys were never written (same bytes on the master).
    const now = await sentinel.currentMaster();
    for (const id of Object.values(ids)) expect(await now.admin.get(legacyKey(id))).toBe(oldBytes.get(id));
  }, 180_000);
});

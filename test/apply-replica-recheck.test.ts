/**
 * apply's confirmation of sessions it found already present (a re-run), on a single node with a
 * replica and behind Sentinel (real servers, test/support/redis-topologies.ts). A re-run writes
 * nothing, so no WAIT of its own speaks for those sessions (WAIT only counts the writes of the
 * connection that sends it, https://redis.io/docs/latest/commands/wait/): apply compares the master's
 * `master_repl_offset` with the replicas' `offset=` in INFO replication
 * (https://redis.io/docs/latest/commands/info/).
 * - All replicas up: the figures of a first run and of a re-run are unchanged, exit 0.
 * - A replica hung (SIGSTOP) through a first run and a re-run: the re-run exits 1 with UNCONFIRMED
 *   naming the master, writes nothing twice; once the replica is back, a re-run exits 0.
 * The single node runs as a user restricted to exactly apply's documented ACL rule (packages/redis/src/acl.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { aclRuleFor } from '@session-migrate/redis';
import { addAclUser, parseInfo, startNode, startSentinel, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { cliChild, countPresent, newKey, planArgs, writeSessionFiles, type CliResult } from './support/migrate-cli.ts';
import { startRelay } from './support/relay.ts';

const PREFIX = 'smsess:';
const ENV = { SESSION_MIGRATE_REDIS_PASSWORD: 'app-pw' };
let master: RedisNode;
let replica: RedisNode;
let s: SentinelTopology;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

interface ApplyJson {
  confirm: { minReplicas: Record<string, number>; fewerThanPlanned?: Array<{ node: string; planned: number; now: number }> };
  sessions: { counts: Record<string, number>; replicaShortfalls: Array<{ node: string; wanted: number; acked: number }> };
}
const json = (r: CliResult): ApplyJson => JSON.parse(r.stdout) as ApplyJson;
/**
 * The CLI as a child process, awaited: the two topologies' tests run at the same time (their own
 * servers), which spawnSync would serialize by blocking this worker's event loop.
 */
const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => cliChild(args, env).done;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Until every replica of `m` reports master_repl_offset of `m` (INFO replication of the master). */
async function inStep(m: RedisNode, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = parseInfo(await m.admin.info('replication'));
    const offset = info.get('master_repl_offset');
    const lines = [...info].filter(([k]) => /^slave\d+$/.test(k)).map(([, v]) => v);
    if (lines.length > 0 && lines.every((l) => l.includes('state=online') && l.includes(`offset=${offset},`))) return;
    if (Date.now() > deadline) throw new Error(`replicas of ${m.port} not in step`);
    await sleep(50);
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-recheck-'));
  ({ keyFile, codec } = await newKey(root));
  // A full sync at once (diskless, no delay; Redis waits 5 s by default, repl-diskless-sync-delay):
  // at the start and after the replica is detached and attached again (REPLICAOF NO ONE, below).
  const replArgs = ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'];
  master = await startNode({ args: replArgs });
  replica = await startNode({ args: ['--replicaof', '127.0.0.1', String(master.port), ...replArgs] });
  for (let i = 0; i < 400 && parseInfo(await replica.admin.info('replication')).get('master_link_status') !== 'up'; i++) await sleep(25);
  s = await startSentinel();
}, 60_000);
afterAll(async () => {
  // stop() wakes a paused node.
  await replica?.stop();
  await master?.stop();
  await s?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Gives user `app` exactly the rule of `plan` or `apply` (on both nodes: ACLs are per node); nothing for Sentinel (default user). */
type AsUser = ((command: 'plan' | 'apply') => Promise<void>) | undefined;
const appRule = async (command: 'plan' | 'apply'): Promise<void> =>
  addAclUser([master, replica], { name: 'app', password: 'app-pw', rule: aclRuleFor(command, PREFIX, 'standalone', 0) });

async function plan(
  tag: string,
  n: number,
  target: string,
  env: Record<string, string> = {},
  asUser: AsUser = undefined,
): Promise<{ ids: string[]; planFile: string; stdout: string }> {
  await asUser?.('plan');
  const dir = join(root, tag);
  const ids = writeSessionFiles(dir, tag, n);
  const planFile = join(root, `${tag}-plan.json`);
  const p = await cli(planArgs({ dir, target, keyFile, planFile, artifactsDir: join(root, `${tag}-art`) }), env);
  expect(p.status, p.stderr + p.stdout).toBe(0);
  await asUser?.('apply');
  return { ids, planFile, stdout: p.stdout };
}

/**
 * The same scenario on any topology with one master: the normal path, then a replica hung through a
 * first run and a re-run, then the re-run once it is back.
 */
async function scenario(
  tag: string,
  target: string,
  m: RedisNode,
  r: RedisNode,
  env: Record<string, string>,
  asUser: AsUser,
): Promise<void> {
  // Normal path: figures as ever, and a re-run (all already present, replica in step) exits 0.
  const { ids: okIds, planFile: okPlan } = await plan(`${tag}ok`, 1500, target, env, asUser);
  const a = await cli(['apply', '--plan', okPlan, '--json'], env);
  expect(a.status, a.stderr + a.stdout).toBe(0);
  expect(json(a).confirm.minReplicas).toEqual({ '*': 1 });
  expect(json(a).sessions.counts).toMatchObject({ migrated: 1500, alreadyPresent: 0, unconfirmed: 0, missingAfterWrite: 0, failed: 0 });
  expect(json(a).sessions.replicaShortfalls).toEqual([]);
  const ok2 = await cli(['apply', '--plan', okPlan], env);
  expect(ok2.status, ok2.stderr + ok2.stdout).toBe(0);
  expect(ok2.stdout).toMatch(/already present 1500/);
  expect(ok2.stdout).toMatch(/nothing to do/);
  expect(ok2.stdout).not.toMatch(/UNCONFIRMED/);
  expect(await countPresent(r.admin, codec, PREFIX, okIds)).toBe(1500);

  // A replica hung through a first run and a re-run.
  const { ids, planFile } = await plan(`${tag}hung`, 1200, target, env, asUser);
  await inStep(m);
  const before = Number(await m.admin.dbsize());
  r.pause();
  let first: CliResult;
  let again: CliResult;
  let againText: CliResult;
  try {
    first = await cli(['apply', '--plan', planFile, '--json', '--wait-timeout-ms', '300'], env);
    // Two re-runs (JSON and text) at once: each finds every session present and waits for the hung
    // replica's offset on its own (at least REPLCONF_ACK_WINDOW_MS, packages/redis/src/connection.ts).
    [again, againText] = await Promise.all([
      cli(['apply', '--plan', planFile, '--json', '--wait-timeout-ms', '300'], env),
      cli(['apply', '--plan', planFile, '--wait-timeout-ms', '300'], env),
    ]);
  } finally {
    r.resume();
  }
  const node = `127.0.0.1:${m.port}`;
  expect(first.status, first.stderr + first.stdout).toBe(1);
  expect(json(first).sessions.counts).toMatchObject({ migrated: 1200, unconfirmed: 1200, missingAfterWrite: 0 });
  // Several batches fell short on the same master: listed once.
  expect(json(first).sessions.replicaShortfalls).toEqual([{ node, wanted: 1, acked: 0 }]);
  // The re-run wrote nothing, yet the replica lacks every session: all unconfirmed, exit 1.
  expect(again.status, again.stderr + again.stdout).toBe(1);
  expect(json(again).sessions.counts).toMatchObject({
    migrated: 0,
    alreadyPresent: 1200,
    unconfirmed: 1200,
    missingAfterWrite: 0,
    failed: 0,
  });
  expect(json(again).sessions.replicaShortfalls).toEqual([{ node, wanted: 1, acked: 0 }]);
  expect(againText.status, againText.stderr + againText.stdout).toBe(1);
  expect(againText.stdout).toMatch(
    new RegExp(`UNCONFIRMED 1200 session\\(s\\) .*\\(${node.replace(/\./g, '\\.')}: 0 of 1\\).*run apply again \\(it re-checks them\\)`),
  );
  expect(againText.stdout).not.toMatch(/nothing to do/);
  // Nothing written twice.
  expect(Number(await m.admin.dbsize())).toBe(before + 1200);
  expect(await countPresent(m.admin, codec, PREFIX, ids)).toBe(1200);

  // Back and caught up: exit 0, nothing unconfirmed, every session on the replica.
  await inStep(m);
  const done = await cli(['apply', '--plan', planFile, '--json'], env);
  expect(done.status, done.stderr + done.stdout).toBe(0);
  expect(json(done).sessions.counts).toMatchObject({ migrated: 0, alreadyPresent: 1200, unconfirmed: 0, missingAfterWrite: 0 });
  expect(json(done).sessions.replicaShortfalls).toEqual([]);
  expect(await countPresent(r.admin, codec, PREFIX, ids)).toBe(1200);
  expect(Number(await m.admin.dbsize())).toBe(before + 1200);
}

// Two groups at once, each on its own servers: the single node with its replica (two tests, one
// after the other: the second detaches the replica), and the Sentinel topology.
describe('a re-run confirms the sessions it found present on the replicas', () => {
  describe('single node', { concurrent: true }, () => {
    it.sequential(
      "single node with a replica, as a user with exactly apply's ACL rule",
      async () => {
        await scenario('single', `redis://app@127.0.0.1:${master.port}/0`, master, replica, ENV, appRule);
      },
      60_000,
    );

    it.sequential(
      "a write whose reply was lost, sent again on a new connection: confirmed by the replicas' offsets, not UNCONFIRMED; a hung replica still is",
      async () => {
        // ioredis re-sends a command whose reply the closed connection lost, and the batch's WAIT on
        // the new connection speaks only for that connection's writes (none: the re-sent write found
        // its own envelope). Before, every session of the batch was UNCONFIRMED "((reconnected): 0 of
        // 1)", exit 1, with the replica in step. A relay in front of the master cuts the first guarded
        // write's reply (test/support/relay.ts loseReplyTo).
        for (const hung of [false, true]) {
          const relay = await startRelay(master.port);
          try {
            const { ids, planFile } = await plan(`lost-${hung ? 'hung' : 'ok'}`, 20, `redis://127.0.0.1:${relay.port}/0`);
            // The guarded write's first send as EVAL (EVALSHA's NOSCRIPT first): the pattern cut at.
            await master.admin.script('FLUSH');
            await inStep(master);
            relay.loseReplyTo('\r\neval\r\n', 1);
            if (hung) replica.pause();
            let a: CliResult;
            try {
              a = await cli(['apply', '--plan', planFile, '--json', '--wait-timeout-ms', '300']);
            } finally {
              if (hung) replica.resume();
            }
            expect(relay.cut).toBe(true);
            expect(a.status, a.stderr + a.stdout).toBe(hung ? 1 : 0);
            expect(json(a).sessions.counts).toMatchObject({
              migrated: 20,
              alreadyPresent: 0,
              unconfirmed: hung ? 20 : 0,
              missingAfterWrite: 0,
            });
            expect(json(a).sessions.replicaShortfalls).toEqual(hung ? [{ node: `127.0.0.1:${relay.port}`, wanted: 1, acked: 0 }] : []);
            await inStep(master);
            expect(await countPresent(replica.admin, codec, PREFIX, ids)).toBe(20);
          } finally {
            relay.stop();
          }
        }
      },
      60_000,
    );

    it.sequential(
      'a master with fewer replicas than when the plan was made is named (default --min-replicas), and --min-replicas makes apply wait',
      async () => {
        const target = `redis://127.0.0.1:${master.port}/0`;
        const { planFile, stdout } = await plan('fewer', 50, target);
        expect(stdout).toContain('  replicas    connected now: the master: 1 (apply names a master that has fewer when it runs)');
        // One master: counted under '*' (replicasPerMaster), as --min-replicas applies.
        expect((JSON.parse(readFileSync(planFile, 'utf8')) as { target: { replicasAtPlan: unknown } }).target.replicasAtPlan).toEqual({
          '*': 1,
        });
        await replica.admin.call('REPLICAOF', 'NO', 'ONE');
        try {
          for (let i = 0; i < 400 && parseInfo(await master.admin.info('replication')).get('connected_slaves') !== '0'; i++)
            await sleep(25);
          const a = await cli(['apply', '--plan', planFile]);
          expect(a.status, a.stderr + a.stdout).toBe(0);
          expect(a.stdout).toContain('replicas    fewer than when the plan was made: the master 0 of 1;');
          expect(a.stdout).toMatch(/--min-replicas 1 makes it wait for them/);
          const j = await cli(['apply', '--plan', planFile, '--json']);
          expect(json(j).confirm).toMatchObject({ fewerThanPlanned: [{ node: '*', planned: 1, now: 0 }] });
          const strict = await cli(['apply', '--plan', planFile, '--json', '--min-replicas', '1', '--wait-timeout-ms', '300']);
          expect(strict.status).toBe(1);
          expect(json(strict).confirm.fewerThanPlanned).toBeUndefined();
        } finally {
          await replica.admin.call('REPLICAOF', '127.0.0.1', String(master.port));
          for (let i = 0; i < 400 && parseInfo(await replica.admin.info('replication')).get('master_link_status') !== 'up'; i++)
            await sleep(25);
        }
      },
      60_000,
    );
  });

  describe('Sentinel', { concurrent: true }, () => {
    it('behind Sentinel', async () => {
      const m = await s.currentMaster();
      const r = s.nodes.find((n) => n !== m)!;
      await scenario('snt', s.url, m, r, {}, undefined);
    }, 60_000);
  });
});

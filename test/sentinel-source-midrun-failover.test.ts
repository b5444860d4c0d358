/**
 * A Redis SOURCE behind Sentinel whose master is killed (kill -9) WHILE plan or apply reads it
 * (mid-SCAN), the replica promoted meanwhile. A SCAN cursor is a position in one server's hash table,
 * valid on no other (RedisConnection.scan): neither goes on with it on the new master, nor merges what
 * the scan cut short saw. As verify does (test/sentinel-midrun-failover.test.ts), they wait for the
 * new master (--master-wait-ms), say so once (RedisConnection.scanAgainAfterFailover's note) and read
 * the source again from the beginning (packages/migrate/src/source-failover.ts): plan counts every
 * replicated session once; apply copies every one, counting what it wrote before the failover as
 * already present (applySessions). A session only the killed master had (never replicated) is never
 * counted. With no master in time: the source's one line, as before. Before, both stopped with that
 * line at once (apply: NOT DONE, exit 1, a re-run needed).
 *
 * Each plan has a files source besides (several sources): the new pass reads it again too, and
 * counts each of its sessions once.
 *
 * One topology (master A, replica B, one sentinel; a separate target) for the file, in order: A
 * killed mid-plan, B promoted; A back as B's replica; B killed mid-apply, A promoted; B back; the
 * master (A) killed mid-plan with no failover; B promoted, A back; the master (B) killed mid-apply with
 * no failover (apply: NOT DONE, exit 1, after the wait); A promoted, B back; the master (A) and the
 * sentinel killed mid-apply (apply: NOT DONE, exit 1, --master-wait-ms after the kill and no later).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startNode, startSentinel, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { countPresent, newKey, planArgs as planArgsFor, sid, writeSessionFiles, type CliResult } from './support/migrate-cli.ts';
import { killMasterDuring, restartKilledMaster } from './support/sentinel-failover.ts';

const N = 20_000;
/** Session files of a second source in the same plan (several sources): read again with the Redis source's new pass. */
const F = 300;
const SOURCE_PREFIX = 'PHPREDIS_SESSION:'; // phpredis's default, a Redis source's default
const PREFIX = 'smsess:'; // plan's default target prefix (DEFAULT_PREFIX)
const MASTER_WAIT_MS = 30_000;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let ids: string[];
let fileIds: string[];
let s: SentinelTopology | undefined;
let target: RedisNode | undefined;
let restarted: RedisNode | undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** plan's arguments for the Redis source and the files source into the target, its plan file `planFile`. */
const planArgs = (planFile: string): string[] =>
  planArgsFor(
    { source: `redis:${s!.url}`, target: target!.url, keyFile, planFile, artifactsDir: join(root, 'artifacts') },
    '--source',
    `files:${join(root, 'files')}`,
  );

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-sentinel-source-midrun-'));
  ({ keyFile, codec } = await newKey(root));
  fileIds = writeSessionFiles(join(root, 'files'), 'ssf', F);
  [s, target] = await Promise.all([startSentinel(), startNode()]);
  const master = await s.currentMaster();
  ids = Array.from({ length: N }, (_, i) => sid('ssm', i));
  for (let i = 0; i < N; i += 1000) {
    const pipe = master.admin.pipeline();
    for (const id of ids.slice(i, i + 1000)) pipe.set(`${SOURCE_PREFIX}${id}`, `user|s:2:"${id.slice(3, 5)}";`, 'EX', 3600);
    await pipe.exec();
  }
  await s.waitForSync(30_000, { sentinelView: false });
  // Every session on the replica before its master is killed (WAIT, https://redis.io/commands/wait/).
  expect(await master.admin.call('WAIT', '1', '10000')).toBe(1);
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await target?.stop();
  await restarted?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/**
 * For killMasterDuring: once the command has sent SCAN to the master `scans` times more than when
 * this was called (it is mid-scan), the master frozen (SIGSTOP) a moment, so that the command's next
 * SCAN waits on it when it is killed; then `then` (e.g. let the replica go).
 */
async function midScan(scans: number, then: () => void = () => {}): Promise<(m: RedisNode) => Promise<boolean>> {
  const scanCalls = async (m: RedisNode): Promise<number> =>
    Number(/cmdstat_scan:calls=(\d+)/.exec(await m.admin.info('commandstats'))?.[1] ?? 0);
  const base = await scanCalls(await s!.currentMaster());
  return async (m) => {
    if ((await scanCalls(m)) < base + scans) return false;
    m.pause();
    await sleep(200);
    then();
    return true;
  };
}

/**
 * The scene of a session only the master has: the replica frozen (SIGSTOP) and cut off (CLIENT KILL
 * TYPE replica), then one more session written on the master alone. Its ID, and `ready` for
 * killMasterDuring (midScan), which lets the replica go once the master is frozen, so that the
 * sentinel can promote it.
 */
async function masterOnlySessionAndMidScan(scans: number): Promise<{ lostId: string; ready: (m: RedisNode) => Promise<boolean> }> {
  const master = await s!.currentMaster();
  const replica = s!.nodes.find((n) => n !== master)!;
  expect(await master.admin.call('WAIT', '1', '10000')).toBe(1);
  replica.pause();
  await master.admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
  const lostId = sid('lost', 0);
  await master.admin.set(`${SOURCE_PREFIX}${lostId}`, 'user|s:4:"lost";', 'EX', 3600);
  return { lostId, ready: await midScan(scans, () => replica.resume()) };
}

/** The note of a source's SCAN cut short on the killed master, the command started again on `next` (scanAgainAfterFailover). */
const restartedNote = (what: string, next: RedisNode, then = ''): string =>
  `note: the master of ${s!.url} went away during ${what}'s SCAN (a restart or fail-over); the sentinels now report 127.0.0.1:${next.port}: ${what} started again from the beginning there${then}`;

describe('a Redis source behind Sentinel, its master killed while plan or apply reads it', () => {
  it('plan mid-scan: waits for the new master, counts again from the beginning, every replicated session once, exit 0 (not the never-replicated one)', async () => {
    const { lostId, ready } = await masterOnlySessionAndMidScan(2);
    const planFile = join(root, 'plan.json');
    const { r, exitedBeforeKill, old, next } = await killMasterDuring(s!, MASTER_WAIT_MS, planArgs(planFile), ready);
    expect(exitedBeforeKill).toBe(false);
    expect(await next.admin.exists(`${SOURCE_PREFIX}${lostId}`)).toBe(0); // lost in the failover
    // Before: exit 2, "source Redis at ... failed while reading: the connection closed during SCAN of ...".
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stderr.split(restartedNote('plan', next)).length - 1, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/SCAN of/);
    expect(old.port).not.toBe(next.port);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as {
      summary: { found: number; live: number };
      source: { port: number; runId?: string };
      sources: Array<{ port: number; runId?: string }>;
    };
    // Counted once each, on the new master only: the session the killed master alone had is not there.
    // The files source too: read again in the new pass, never counted twice.
    expect(plan.summary).toMatchObject({ found: N + F, live: N + F });
    // The plan records the server it read: the new master, not the killed one (before: the killed one's
    // port and run_id, and stdout's "source" line said "now at" the killed master).
    const nextRunId = /^run_id:(\w+)/m.exec(String(await next.admin.info('server')))![1];
    for (const recorded of [plan.source, plan.sources[0]!]) expect(recorded).toMatchObject({ port: next.port, runId: nextRunId });
    expect(r.stdout).toContain(`now at 127.0.0.1:${next.port}`);
  }, 60_000);

  it('apply mid-scan: reads the source again from the beginning, what it wrote before counted already present, every session copied, exit 0', async () => {
    restarted = await restartKilledMaster(s!);
    const { lostId, ready } = await masterOnlySessionAndMidScan(1);
    let copied = 0;
    const { r, exitedBeforeKill, next } = await killMasterDuring(
      s!,
      MASTER_WAIT_MS,
      ['apply', '--plan', join(root, 'plan.json')],
      async (m) => (copied = Number(await target!.admin.dbsize())) >= 2000 && (await ready(m)),
    );
    expect(exitedBeforeKill).toBe(false);
    expect(copied).toBeLessThan(N);
    expect(await next.admin.exists(`${SOURCE_PREFIX}${lostId}`)).toBe(0); // lost in the failover
    // Before: exit 1, "NOT DONE  N session(s) written, then the source failed: ...; run apply again".
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).not.toMatch(/NOT DONE/);
    const note = restartedNote('apply', next, '; the sessions it wrote before are counted as already present');
    expect(r.stderr.split(note).length - 1, r.stderr).toBe(1);
    // Each session of the source once: the second pass's writes, and the first's found already present.
    const m = /^ {2}sessions {4}migrated (\d+) \([^)]*\), already present (\d+), /m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [migrated, present] = [Number(m![1]), Number(m![2])];
    // Every session in the target at the kill is found again, but the never-replicated one: the
    // first pass may have copied it from the killed master (it stays in the target), and the second
    // pass does not list it (a full run once: 1,999 already present of 2,000 in the target).
    const lostCopied = await target!.admin.exists(codec.keyName(PREFIX, lostId));
    expect(present).toBeGreaterThanOrEqual(copied - lostCopied);
    expect(migrated + present).toBe(N + F);
    expect(await countPresent(target!.admin, codec, PREFIX, ids)).toBe(N);
    expect(await countPresent(target!.admin, codec, PREFIX, fileIds)).toBe(F);
  }, 60_000);

  it("plan mid-scan, no master within --master-wait-ms: the source's one line, exit 2, after the wait; no plan file", async () => {
    restarted = await restartKilledMaster(s!);
    const waitMs = 3000;
    const planFile = join(root, 'plan-no-master.json');
    const ready = await midScan(2);
    const { r, exitedBeforeKill, old, killedAt } = await killMasterDuring(s!, waitMs, planArgs(planFile), ready, { failover: false });
    const elapsed = Date.now() - killedAt;
    expect(exitedBeforeKill).toBe(false);
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `session-migrate: source Redis at ${s!.url} failed while reading: the connection closed during SCAN of 127.0.0.1:${old.port} (a restart or fail-over?): keys may have been skipped; run again\n`,
    );
    // It waited for a master first (before: the line at once).
    expect(elapsed, `${elapsed} ms`).toBeGreaterThanOrEqual(waitMs);
    expect(elapsed, `${elapsed} ms`).toBeLessThan(waitMs + 15_000);
    expect(() => readFileSync(planFile)).toThrow();
  }, 60_000);

  /**
   * The killed master's replica promoted (it has every session: WAIT above), the killed one back as
   * its replica, an empty target; then apply, its source's master killed once 2,000 sessions are in
   * the target and no failover (`afterKill`: also take the sentinel away). Asserts what holds however
   * the source is lost: exit 1, the sessions written counted and in the target, NOT DONE for the rest
   * with what to do, never OK, not before the wait.
   * @returns the result and the time from the kill to the exit (ms)
   */
  async function applyMasterLost(
    waitMs: number,
    afterKill?: () => void,
  ): Promise<{ r: CliResult & { lingerMs: number }; elapsed: number }> {
    await s!.failover({ reconfigureOldMaster: 'sentinel', waitForReplica: false });
    restarted = await restartKilledMaster(s!);
    await target!.admin.flushall();
    let copied = 0;
    const ready = await midScan(1);
    const { r, exitedBeforeKill, killedAt } = await killMasterDuring(
      s!,
      waitMs,
      ['apply', '--plan', join(root, 'plan.json')],
      async (m) => (copied = Number(await target!.admin.dbsize())) >= 2000 && (await ready(m)),
      { failover: false, ...(afterKill !== undefined ? { afterKill } : {}) },
    );
    const elapsed = Date.now() - killedAt;
    expect(exitedBeforeKill).toBe(false);
    expect(copied).toBeLessThan(N);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(elapsed, `${elapsed} ms`).toBeGreaterThanOrEqual(waitMs);
    // What it wrote is counted, and what it could not read is NOT DONE with what to do, never OK.
    const m = /^ {2}sessions {4}migrated (\d+) /m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const migrated = Number(m![1]);
    expect(migrated).toBeGreaterThanOrEqual(copied);
    expect(migrated).toBeLessThan(N + F);
    expect(Number(await target!.admin.dbsize())).toBe(migrated);
    expect(r.stdout).toMatch(/^ {2}NOT DONE {4}\d+ session\(s\) .*the source failed.*run apply again/m);
    return { r, elapsed };
  }

  it('apply mid-scan, no master within --master-wait-ms: NOT DONE for what it did not read, exit 1, after the wait; never success', async () => {
    const waitMs = 3000;
    const { elapsed } = await applyMasterLost(waitMs);
    expect(elapsed, `${elapsed} ms`).toBeLessThan(waitMs + 15_000);
  }, 60_000);

  it('apply mid-scan, the master and the sentinel killed: NOT DONE, exit 1, --master-wait-ms after the kill and no later, and at once after its last line', async () => {
    const waitMs = 5000;
    const { r, elapsed } = await applyMasterLost(waitMs, () => void s!.sentinel.kill());
    // The wait counts from the close of the master's connection, not from when the source's reads
    // failed (ioredis's 3 s of sentinelRetryStrategy rounds later: the wait began that late), and no
    // client ioredis opened to the sentinels holds the process after the report (disconnectTimeout).
    // Measured on 2 cores: 5.1 to 5.3 s after the kill, 10 to 260 ms after the last line; before,
    // 10.3 s and 2.0 s (8.3 s with the late wait alone). The bound leaves room for ioredis's sleep
    // between sentinel rounds (up to 1 s, a timer a disconnect does not cancel) on a loaded machine.
    expect(elapsed, `${elapsed} ms`).toBeLessThan(waitMs + 2500);
    expect(r.lingerMs, `${r.lingerMs} ms`).toBeLessThan(1500);
  }, 60_000);
});

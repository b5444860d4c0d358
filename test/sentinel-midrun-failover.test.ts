/**
 * apply and verify behind Sentinel when the master is killed (kill -9) WHILE they run, after the
 * open: the sentinels promote the replica meanwhile. apply rides through the failover (its retries,
 * ioredis asking the sentinels again) or fails honestly; either way a session the killed master
 * acknowledged but did not replicate is never reported as migrated (the read-back reads the new
 * master: RedisConnection.followSentinelMaster), and a re-run finishes the copy. verify's scan cut
 * short by the kill waits for the new master (--master-wait-ms), says so once and starts again with a
 * new report (RedisConnection.scanAgainAfterFailover): OK when every key was replicated, a session
 * the killed master never replicated reported missing (exit 1); with no master in time, one line
 * (SCAN_INTERRUPTED: run again), exit 2. Before, verify stopped with that line at once.
 * apply needed no fix: these tests are the proof that it rides through or fails honestly.
 *
 * One topology (master A, replica B, one sentinel) for the file, in order: A killed mid-apply, B
 * promoted; A back as B's replica; the master killed mid-verify three times (the other promoted, then none).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startSentinel, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { cli, countPresent, newKey, planArgs, signal, writeSessionFiles, type CliResult } from './support/migrate-cli.ts';
import { killMasterDuring, restartKilledMaster } from './support/sentinel-failover.ts';

/**
 * Sessions per plan: three of apply's batches of 1,000 (packages/migrate/src/apply.ts BATCH_SIZE).
 * The kill comes with apply frozen (killMasterDuring's freezeCommand) after its first batch, so at
 * least its last batch is written after the failover whatever the machine's speed (it was 5,000 and
 * luck).
 */
const N = 3000;
const PREFIX = 'smsess:'; // plan's default (DEFAULT_PREFIX)
const MASTER_WAIT_MS = 30_000;
let root: string;
let dir: string;
let planFile: string;
let codec: EnvelopeCodec;
let keyFile: string;
let ids: string[];
let s: SentinelTopology | undefined;
let restarted: RedisNode | undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-sentinel-midrun-'));
  const key = await newKey(root);
  codec = key.codec;
  keyFile = key.keyFile;
  dir = join(root, 'sessions');
  ids = writeSessionFiles(dir, 'smr', N);
  planFile = join(root, 'plan.json');
  s = await startSentinel();
  const p = cli(planArgs({ dir, target: s.url, keyFile: key.keyFile, planFile, artifactsDir: join(root, 'artifacts') }));
  expect(p.status, p.stderr + p.stdout).toBe(0);
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await restarted?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/**
 * What apply's summary line says of the sessions it wrote: `migrated N (BYTES; M of them not in
 * Redis at the read-back: MISSING; U not read back: UNVERIFIED)` (the CLI's migratedNotSeen).
 * @returns the sessions reported migrated and not flagged missing or unverified
 */
function migratedAndSeen(stdout: string): number {
  const m = /^ {2}sessions {4}migrated (\d+) \(([^)]*)\)/m.exec(stdout);
  expect(m, stdout).not.toBeNull();
  const missing = /; (\d+) of them not in Redis at the read-back: MISSING/.exec(m![2]!)?.[1] ?? '0';
  const unread = /; (\d+)(?: of them)? not read back: UNVERIFIED/.exec(m![2]!)?.[1] ?? '0';
  return Number(m![1]) - Number(missing) - Number(unread);
}

/**
 * Either apply succeeded and every session of `sessionIds` is on `master`, or it exited 1 with a
 * line saying what is not done (and why) and a re-run, after the failover, succeeds with every
 * session there. Either way no session it reported migrated (and not flagged) is missing.
 */
async function expectRiddenThroughOrHonest(r: CliResult, planPath: string, master: RedisNode, sessionIds: string[]): Promise<void> {
  expect([0, 1], r.stderr + r.stdout).toContain(r.status);
  // Nothing counted migrated that the new master does not hold (acknowledged by the killed master only).
  const present = await countPresent(master.admin, codec, PREFIX, sessionIds);
  expect(migratedAndSeen(r.stdout)).toBeLessThanOrEqual(present);
  if (r.status === 1) {
    expect(r.stdout).toMatch(/^ {2}(UNCONFIRMED|MISSING|UNVERIFIED|NOT DONE) +\d+ session\(s\) .*run apply again/m);
    const again = cli(['apply', '--plan', planPath, '--master-wait-ms', String(MASTER_WAIT_MS)]);
    expect(again.status, again.stderr + again.stdout).toBe(0);
  } else expect(present).toBe(sessionIds.length);
  expect(await countPresent(master.admin, codec, PREFIX, sessionIds)).toBe(sessionIds.length);
}

describe('Sentinel: the master killed while a command runs, a replica promoted', () => {
  it('apply mid-copy (WAIT for the replica after each batch): rides through, or exits 1 saying so and a re-run completes', async () => {
    const { r, exitedBeforeKill, next } = await killMasterDuring(
      s!,
      MASTER_WAIT_MS,
      // A WAIT timeout shorter than the default 2 s: the promoted replica has no replica of its own,
      // so each batch after the failover waits for it in vain.
      ['apply', '--plan', planFile, '--wait-timeout-ms', '500'],
      async (m) => Number(await m.admin.dbsize()) >= 1000,
      { freezeCommand: true },
    );
    expect(exitedBeforeKill).toBe(false);
    // The retries are announced, one line each, naming the URL and never a key or a password.
    expect(r.stderr).toMatch(/^session-migrate: Redis at redis\+sentinel:\/\/127\.0\.0\.1:\d+\/sessions\/0 failed \(.*\); retry 1 of 8$/m);
    await expectRiddenThroughOrHonest(r, planFile, next, ids);
  }, 60_000);

  it('apply mid-copy without WAIT: writes the killed master acknowledged but never replicated are read back MISSING, not reported migrated', async () => {
    restarted = await restartKilledMaster(s!);
    const dir2 = join(root, 'sessions-lost');
    const ids2 = writeSessionFiles(dir2, 'lost', N + 5000);
    const plan2 = join(root, 'plan-lost.json');
    const p = cli(planArgs({ dir: dir2, target: s!.url, keyFile, planFile: plan2, artifactsDir: join(root, 'artifacts-lost') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    // The scene needs sessions the master acknowledged AND apply read the reply of, after the replica
    // was cut off. Once 1000 sessions are on the master: apply frozen (SIGSTOP); the replica frozen
    // and cut off (CLIENT KILL TYPE replica), so nothing the master writes from then on reaches it;
    // the master left to run what apply had sent (at most 2 batches of 1,000 in flight:
    // packages/migrate/src/apply.ts BATCH_SIZE, maxInFlight), so that `cutAt` ends a batch; apply let
    // go. Every batch after `cutAt` is written after the cut, and apply sends its third one only once
    // it has read the replies of the first (2 in flight): the master is killed once that third batch
    // runs (n > cutAt + 2000), then the replica let go and promoted. The first batch's sessions are
    // lost and were acknowledged: never rewritten by apply's retries (which a kill right after a
    // batch ran, its replies unread, gives: CI once had all 4,000 present and no scene).
    let cut: RedisNode | undefined;
    let cutAt = 0;
    const { r, exitedBeforeKill, next } = await killMasterDuring(
      s!,
      MASTER_WAIT_MS,
      ['apply', '--plan', plan2, '--min-replicas', '0'],
      async (m, pid) => {
        const n = Number(await m.admin.dbsize()) - N; // the first test's N sessions are there too
        if (cut === undefined && n >= 1000) {
          signal(pid, 'SIGSTOP');
          try {
            cut = s!.nodes.find((x) => x !== m)!;
            cut.pause();
            await m.admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
            // What apply sent before it was frozen, run (the count still for 100 ms).
            let last = -1;
            for (let size = Number(await m.admin.dbsize()); size !== last; size = Number(await m.admin.dbsize())) {
              last = size;
              await sleep(100);
            }
            cutAt = last - N;
          } finally {
            signal(pid, 'SIGCONT');
          }
          return false;
        }
        return cut !== undefined && n >= cutAt + 2200;
      },
      // The replica let go only once the master is dead: let go before, it would reconnect and
      // resynchronize (PSYNC) the writes it missed.
      { afterKill: () => cut?.resume() },
    );
    expect(exitedBeforeKill).toBe(false);
    expect(await countPresent(next.admin, codec, PREFIX, ids2)).toBeLessThan(ids2.length); // the scene: writes were lost
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stdout).toMatch(
      /^ {2}MISSING {5}\d+ session\(s\) written or found by apply are not in Redis any more \(lost, e\.g\. in a failover\): run apply again to write them$/m,
    );
    await expectRiddenThroughOrHonest(r, plan2, next, ids2);
  }, 60_000);

  // Once verify has read a batch's values (one MGET a batch): the master frozen (SIGSTOP) a moment,
  // so that verify's next SCAN waits on it when it is killed.
  const mgets = async (m: RedisNode): Promise<number> =>
    Number(/cmdstat_mget:calls=(\d+)/.exec(await m.admin.info('commandstats'))?.[1] ?? 0);
  const midScan = async (): Promise<(m: RedisNode) => Promise<boolean>> => {
    const base = await mgets(await s!.currentMaster());
    return async (m) => {
      if ((await mgets(m)) <= base + 1) return false;
      m.pause();
      await sleep(200);
      return true;
    };
  };
  /** The one line of a scan cut short on `old` (SCAN_INTERRUPTED), as verify says it (exit 2). */
  const interruptedLine = (old: RedisNode): RegExp =>
    new RegExp(
      `^session-migrate: Redis at redis\\+sentinel://127\\.0\\.0\\.1:\\d+/sessions/0 failed during verify: the connection closed during SCAN of 127\\.0\\.0\\.1:${old.port} \\(a restart or fail-over\\?\\): keys may have been skipped; run again\n$`,
    );
  /** verify's note that it started again on `next` (RedisConnection.scanAgainAfterFailover), once. */
  const restartedNote = (old: RedisNode, next: RedisNode): string =>
    `note: the master of ${s!.url} went away during verify's SCAN (a restart or fail-over); the sentinels now report 127.0.0.1:${next.port}: verify started again from the beginning there`;

  it('verify --plan mid-scan, every key replicated (WAIT): waits for the new master, scans again from the start, OK with the whole report', async () => {
    restarted = await restartKilledMaster(s!);
    expect(await (await s!.currentMaster()).admin.call('WAIT', '1', '10000')).toBe(1);
    // The failover 5 s after the kill: verify's client has spent its few reconnects (about 3 s, the
    // old code's line came then) and ended; waiting for the master connects it again.
    const { r, exitedBeforeKill, old, next } = await killMasterDuring(s!, MASTER_WAIT_MS, ['verify', '--plan', planFile], await midScan(), {
      failoverAfterMs: 5000,
    });
    expect(exitedBeforeKill).toBe(false);
    // Before: exit 2 with the one line of a scan cut short (run again).
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^session-migrate verify: OK$/m);
    expect(r.stdout).toContain(`presence    ${N} live session(s) of the plan's source checked: ${N} present`);
    // Every key counted once (a fresh report), on the new master only.
    expect(r.stdout).toContain(`  target      Sentinel master now at 127.0.0.1:${next.port}\n`);
    expect(r.stdout).toContain(`  scanned     ${await next.admin.dbsize()} key(s): every key of the database\n`);
    expect(r.stderr.split(restartedNote(old, next)).length - 1, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/SCAN of/);
  }, 90_000);

  it('verify --plan mid-scan, a session the killed master acknowledged but never replicated: reported missing, exit 1, never OK', async () => {
    restarted = await restartKilledMaster(s!);
    const master = await s!.currentMaster();
    const replica = s!.nodes.find((n) => n !== master)!;
    // The scene: the replica frozen and cut off, then one session of the plan deleted and written
    // back on the master alone: the replica lacks it, the master has it (verify would pass there).
    const lost = codec.keyName(PREFIX, ids[0]!);
    const value = await master.admin.getBuffer(lost);
    const ttl = await master.admin.pttl(lost);
    expect(value).not.toBeNull();
    await master.admin.del(lost);
    expect(await master.admin.call('WAIT', '1', '10000')).toBe(1);
    replica.pause();
    await master.admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
    await master.admin.set(lost, value!, 'PX', ttl);
    const ready = await midScan();
    const { r, exitedBeforeKill, old, next } = await killMasterDuring(s!, MASTER_WAIT_MS, ['verify', '--plan', planFile], async (m) => {
      if (!(await ready(m))) return false;
      replica.resume();
      return true;
    });
    expect(exitedBeforeKill).toBe(false);
    expect(await next.admin.exists(lost)).toBe(0); // lost in the failover
    // Before: exit 2 with the one line of a scan cut short.
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stdout).not.toMatch(/verify: OK/);
    expect(r.stdout).toContain(`presence    ${N} live session(s) of the plan's source checked: ${N - 1} present`);
    expect(r.stderr).toContain(restartedNote(old, next));
    // Put back for the next test.
    await next.admin.set(lost, value!, 'PX', ttl);
  }, 90_000);

  it('verify mid-scan, no master within --master-wait-ms: the one line of a scan cut short, exit 2, after the wait', async () => {
    restarted = await restartKilledMaster(s!);
    const waitMs = 5000;
    const ready = await midScan();
    const { r, exitedBeforeKill, old, killedAt } = await killMasterDuring(s!, waitMs, ['verify', '--plan', planFile], ready, {
      failover: false,
    });
    const elapsed = Date.now() - killedAt;
    expect(exitedBeforeKill).toBe(false);
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stdout).not.toMatch(/verify: OK/);
    expect(r.stderr).toMatch(interruptedLine(old));
    // It waited for a master first (before: the line once ioredis's few reconnects were spent, about 2 s).
    expect(elapsed, `${elapsed} ms`).toBeGreaterThanOrEqual(waitMs);
    expect(elapsed, `${elapsed} ms`).toBeLessThan(waitMs + 15_000);
  }, 90_000);
});

/**
 * A Redis SOURCE behind Sentinel (`--source redis:redis+sentinel://...`, plaintext phpredis keys),
 * opened during a failover (its master killed, no replica promoted yet): like a target
 * (test/sentinel-open-failover.test.ts) every command waits, when it opens the source (migrate's
 * openSources and openPlanSources: commandRedisWait, OpenOptions.waitForSentinelMaster), for the
 * master the sentinels report to answer as master, up to --master-wait-ms. A replica promoted within
 * the wait: the command reads the source from the new master. None in time: one line naming the
 * master name, exit 2, nothing written. Before the fix each failed at once (`cannot connect to the
 * master ...: ECONNREFUSED`).
 *
 * One topology for the file (source: master A, replica B, one sentinel; target: one standalone
 * node), in order: A killed, plan waits, B promoted; A back as B's replica; B killed, apply waits,
 * A promoted; A killed too, plan, apply, verify and purge find no source master.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startNode, startSentinel, type RedisNode, type SentinelTopology } from './support/redis-topologies.ts';
import { duringSentinelFailover, expectNoMasterLine, restartKilledMaster, runAllWaiting } from './support/sentinel-failover.ts';
import { countPresent, newKey, writePlaintextSessions } from './support/migrate-cli.ts';

const N = 20;
const SOURCE_PREFIX = 'PHPREDIS_SESSION:'; // phpredis's default, a Redis source's default
const PREFIX = 'smsess:'; // plan's default target prefix (DEFAULT_PREFIX)
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let ids: string[];
let s: SentinelTopology | undefined;
let target: RedisNode | undefined;
let restarted: RedisNode | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-sentinel-source-failover-'));
  ({ keyFile, codec } = await newKey(root));
  [s, target] = await Promise.all([startSentinel(), startNode()]);
  const master = await s.currentMaster();
  ids = await writePlaintextSessions(master.admin, SOURCE_PREFIX, 'ssf', N);
  await s.waitForSync(30_000, { sentinelView: false });
  // The sessions on the replica before its master is killed: master_link_status:up alone does not say
  // the writes reached it (replication is asynchronous); the first test once found 0 sessions on the
  // promoted replica. WAIT 1 returns once one replica acknowledged them (https://redis.io/commands/wait/).
  expect(await master.admin.call('WAIT', '1', '10000')).toBe(1);
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await target?.stop();
  await restarted?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const source = (): string => `redis:${s!.url}`;
const planFile = (name: string): string => join(root, `${name}.json`);
const artifactsDir = (name: string): string => join(root, `${name}-artifacts`);
const planArgs = (name: string): string[] => [
  'plan',
  '--source',
  source(),
  '--target',
  target!.url,
  '--key-file',
  keyFile,
  '--out',
  planFile(name),
  '--artifacts-dir',
  artifactsDir(name),
];

describe('a Redis source behind Sentinel waits for a master when a command opens it', () => {
  it('plan: the source master killed, a replica promoted within --master-wait-ms: plan waits and reads every session from the new master', async () => {
    const { results, exitedEarly, next } = await duringSentinelFailover(s!, [planArgs('failover')]);
    const [p] = results;
    expect(p!.status, p!.stderr + p!.stdout).toBe(0);
    expect(exitedEarly).toEqual([false]);
    const written = JSON.parse(readFileSync(planFile('failover'), 'utf8')) as {
      sources: Array<{ kind: string; masterName?: string; port: number; summary: { found: number } }>;
    };
    expect(written.sources).toHaveLength(1);
    expect(written.sources[0]).toMatchObject({ kind: 'redis', masterName: s!.masterName, port: next.port, summary: { found: N } });
  }, 90_000);

  it("apply: the plan's source master killed, a replica promoted within the wait: apply waits and migrates every session", async () => {
    // The killed master back on its port, as a replica of the new one, so a second failover can come.
    restarted = await restartKilledMaster(s!);
    const { results, exitedEarly, next } = await duringSentinelFailover(s!, [['apply', '--plan', planFile('failover')]]);
    expect(next).toBe(restarted);
    const [a] = results;
    expect(a!.status, a!.stderr + a!.stdout).toBe(0);
    expect(exitedEarly).toEqual([false]);
    expect(a!.stdout).toContain(`  sessions    migrated ${N} (`);
    expect(await countPresent(target!.admin, codec, PREFIX, ids)).toBe(N);
  }, 120_000);

  it('no source master within --master-wait-ms: plan, apply, verify and purge each say one line naming the master name, exit 2, nothing written', async () => {
    // The promoted master killed too: the sentinel names it, and no replica is left to promote.
    const master = await s!.currentMaster();
    await master.kill();
    const before = await target!.admin.dbsize();
    rmSync(artifactsDir('failover'), { recursive: true, force: true });
    const WAIT_MS = 2000;
    const results = await runAllWaiting(
      [
        planArgs('none'),
        ['apply', '--plan', planFile('failover')],
        ['verify', '--plan', planFile('failover')],
        ['purge', '--plan', planFile('failover')],
      ],
      WAIT_MS,
    );
    expectNoMasterLine(results, s!, master, WAIT_MS);
    // No plan, no artifact, nothing written to the target.
    expect(existsSync(planFile('none'))).toBe(false);
    expect(existsSync(artifactsDir('none'))).toBe(false);
    expect(existsSync(artifactsDir('failover'))).toBe(false);
    expect(await target!.admin.dbsize()).toBe(before);
  }, 60_000);
});

/**
 * plan behind Sentinel during a failover: it waits for the master the sentinels report to answer as
 * master (OpenOptions.waitForSentinelMaster: the one wait of followSentinelMaster, apply's and
 * verify's), up to --master-wait-ms. A replica promoted within the wait: the plan records the new
 * master. None in time: one line naming the master name, exit 2, no plan written. Before the fix plan
 * connected to the master the sentinels named and failed at once (`cannot connect to the master ...:
 * ECONNREFUSED`) while a failover was still to come.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSentinel, type SentinelTopology } from './support/redis-topologies.ts';
import { cliChild, newKey, planArgs, writeSessionFiles } from './support/migrate-cli.ts';

let root: string;
let keyFile: string;
let s: SentinelTopology | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-plan-sentinel-failover-'));
  ({ keyFile } = await newKey(root));
  writeSessionFiles(join(root, 'sessions'), 'psf', 5);
  s = await startSentinel();
}, 60_000);
afterAll(async () => {
  await s?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const paths = (name: string) => ({
  dir: join(root, 'sessions'),
  target: s!.url,
  keyFile,
  planFile: join(root, `${name}.json`),
  artifactsDir: join(root, `${name}-artifacts`),
});
/** Runs plan in the background, stopped (by its PID) should it hang: the assertions then fail. */
async function plan(
  p: ReturnType<typeof paths>,
  masterWaitMs: number,
  meanwhile: (exited: () => boolean) => Promise<void> = async () => {},
) {
  const started = Date.now();
  const run = cliChild([...planArgs(p), '--master-wait-ms', String(masterWaitMs)]);
  const timer = setTimeout(() => process.kill(run.pid, 'SIGTERM'), masterWaitMs + 60_000);
  let exited = false;
  void run.done.then(() => (exited = true));
  await meanwhile(() => exited);
  const r = await run.done;
  clearTimeout(timer);
  return { ...r, elapsed: Date.now() - started };
}

describe('plan behind Sentinel during a failover', () => {
  it('the master killed, a replica promoted within --master-wait-ms: plan waits and records the new master', async () => {
    const old = await s!.currentMaster();
    const next = s!.nodes.find((n) => n !== old)!;
    await old.kill();
    const p = paths('failover');
    let exitedEarly = false;
    const r = await plan(p, 20_000, async (exited) => {
      // plan is waiting (the sentinels still name the killed master) when the failover starts.
      await sleep(1500);
      exitedEarly = exited();
      await s!.failover({ reconfigureOldMaster: 'sentinel', waitForReplica: false });
    });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(exitedEarly).toBe(false);
    const written = JSON.parse(readFileSync(p.planFile, 'utf8')) as {
      target: { topology: string; masterName: string; port: number; runId?: string; replicasAtPlan: Record<string, number> };
    };
    const runId = /run_id:(\w+)/.exec(await next.admin.info('server'))![1];
    expect(written.target).toMatchObject({ topology: 'sentinel', masterName: s!.masterName, port: next.port, runId });
    // The new master's replicas (its old master is dead): none.
    expect(written.target.replicasAtPlan).toEqual({ '*': 0 });
  }, 90_000);

  it('no master answers within --master-wait-ms: one line naming the master name, exit 2, no plan', async () => {
    // The promoted master killed too: the sentinels name it, and no replica is left to promote.
    const master = await s!.currentMaster();
    await master.kill();
    const p = paths('none');
    const WAIT_MS = 2000;
    const r = await plan(p, WAIT_MS);
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toBe(
      `session-migrate: no master of "${s!.masterName}" at ${s!.url} within 2 s: the sentinels report 127.0.0.1:${master.port} (ECONNREFUSED); a failover still in progress, or no replica left to promote: run again once the sentinels report a master that answers\n`,
    );
    expect(r.stdout).toBe('');
    expect(existsSync(p.planFile)).toBe(false);
    // It waited as long as asked, not much longer (CLI start, the sessions read, the sentinels asked).
    expect(r.elapsed, `${r.elapsed} ms`).toBeGreaterThanOrEqual(WAIT_MS);
    expect(r.elapsed, `${r.elapsed} ms`).toBeLessThan(WAIT_MS + 10_000);
    // --master-wait-ms 0 looks once: the line says so, not "within 0 s" (fresh-clone review).
    const once = await plan(paths('none-0'), 0);
    expect(once.status, once.stderr + once.stdout).toBe(2);
    expect(once.stderr).toBe(
      `session-migrate: no master of "${s!.masterName}" at ${s!.url} (--master-wait-ms 0: looked once, no wait): the sentinels report 127.0.0.1:${master.port} (ECONNREFUSED); a failover still in progress, or no replica left to promote: run again once the sentinels report a master that answers\n`,
    );
  }, 60_000);
});

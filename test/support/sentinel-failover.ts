/**
 * CLI runs during a Sentinel failover, for the tests of the wait for a master at open
 * (--master-wait-ms; test/sentinel-open-failover.test.ts for targets, test/sentinel-source-failover.test.ts
 * for Redis sources): the commands started while the master is down, the replica promoted meanwhile;
 * and of a failover while a command runs (killMasterDuring: test/sentinel-midrun-failover.test.ts,
 * test/sentinel-source-midrun-failover.test.ts).
 */
import { expect } from 'vitest';
import { cliChild, cliTimed, signal, type CliResult } from './migrate-cli.ts';
import { startNode, type RedisNode, type SentinelTopology } from './redis-topologies.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the commands at once in the background, each with `--master-wait-ms masterWaitMs`, each
 * stopped (SIGTERM by its PID) should it hang (its assertions then fail); `meanwhile` runs while they
 * wait, and can ask which have exited so far.
 * @returns each command's result with `elapsed`, ms from the start of all of them to its exit
 */
export async function runAllWaiting(
  commands: readonly string[][],
  masterWaitMs: number,
  meanwhile: (exited: () => boolean[]) => Promise<void> = async () => {},
): Promise<Array<CliResult & { elapsed: number }>> {
  const started = Date.now();
  const runs = commands.map((args) => {
    const run = cliChild([...args, '--master-wait-ms', String(masterWaitMs)]);
    const timer = setTimeout(() => process.kill(run.pid, 'SIGTERM'), masterWaitMs + 60_000);
    const state = { exited: false };
    const done = run.done.then((r) => {
      clearTimeout(timer);
      state.exited = true;
      return { ...r, elapsed: Date.now() - started };
    });
    return { state, done };
  });
  await meanwhile(() => runs.map((r) => r.state.exited));
  return Promise.all(runs.map((r) => r.done));
}

/**
 * The master of `s` down: kills it, runs `commands` (runAllWaiting, a 20 s wait), and 1.5 s later,
 * while every command is still waiting (the sentinel still names the killed master), promotes the
 * replica (SENTINEL FAILOVER).
 * @returns the results, which commands had exited before the failover started (all should be false),
 *   the killed master and the promoted node
 */
export async function duringSentinelFailover(
  s: SentinelTopology,
  commands: readonly string[][],
): Promise<{ results: Array<CliResult & { elapsed: number }>; exitedEarly: boolean[]; old: RedisNode; next: RedisNode }> {
  const old = await s.currentMaster();
  const next = s.nodes.find((n) => n !== old)!;
  await old.kill();
  let exitedEarly: boolean[] = [];
  const results = await runAllWaiting(commands, 20_000, async (exited) => {
    await sleep(1500);
    exitedEarly = exited();
    await s.failover({ reconfigureOldMaster: 'sentinel', waitForReplica: false });
  });
  return { results, exitedEarly, old, next };
}

/**
 * Asserts that each of `results` (runAllWaiting with `waitMs`, no master of `s` answering, the
 * sentinel naming `deadMaster`) said exactly the one no-master line of packages/redis
 * waitForSentinelMaster, exit 2, nothing on stdout, after waiting at least `waitMs` and not much
 * longer (CLI start, the sentinel asked).
 */
export function expectNoMasterLine(
  results: ReadonlyArray<CliResult & { elapsed: number }>,
  s: SentinelTopology,
  deadMaster: RedisNode,
  waitMs: number,
): void {
  for (const r of results) {
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stderr).toBe(
      `session-migrate: no master of "${s.masterName}" at ${s.url} within ${waitMs / 1000} s: the sentinels report 127.0.0.1:${deadMaster.port} (ECONNREFUSED); a failover still in progress, or no replica left to promote: run again once the sentinels report a master that answers\n`,
    );
    expect(r.stdout).toBe('');
    expect(r.elapsed, `${r.elapsed} ms`).toBeGreaterThanOrEqual(waitMs);
    expect(r.elapsed, `${r.elapsed} ms`).toBeLessThan(waitMs + 15_000);
  }
}

/**
 * Runs the CLI (`args`) in the background with `--master-wait-ms masterWaitMs`; once `ready` says the command
 * is under way (polled every 2 ms, at most 20 s), kills the master of `s` (SIGKILL) and 1 s later
 * (`options.failoverAfterMs`) promotes the replica (SENTINEL FAILOVER; not with `options.failover` false: the sentinel then names
 * the killed master for SENTINEL_DOWN_AFTER_MS). The command is stopped (SIGKILL, cliTimed) should it hang.
 * With `options.freezeCommand`, the command is frozen (SIGSTOP by its PID) as soon as `ready` says so
 * and let go (SIGCONT) right after the kill, so that it is still mid-run at the kill whatever the
 * machine's speed (a window made certain rather than large: less data to copy). `ready` gets the
 * command's PID too, to freeze it itself at an earlier step of its own. `options.afterKill` runs once
 * the master is dead, before the failover (e.g. let a frozen replica go: before the kill it would
 * resynchronize from the master it was cut off from).
 * @returns the result (with cliTimed's `lingerMs`), whether the command had exited before the kill
 *   (it should not have), the killed master, the promoted node, and when the master was killed
 *   (Date.now(), ms)
 */
export async function killMasterDuring(
  s: SentinelTopology,
  masterWaitMs: number,
  args: string[],
  ready: (master: RedisNode, commandPid: number) => Promise<boolean>,
  options: { failover?: boolean; failoverAfterMs?: number; freezeCommand?: boolean; afterKill?: () => void } = {},
): Promise<{
  r: CliResult & { lingerMs: number };
  exitedBeforeKill: boolean;
  old: RedisNode;
  next: RedisNode;
  killedAt: number;
}> {
  const old = await s.currentMaster();
  const next = s.nodes.find((n) => n !== old)!;
  let pid = -1;
  const done = cliTimed([...args, '--master-wait-ms', String(masterWaitMs)], {}, masterWaitMs + 60_000, (p) => (pid = p));
  if (pid <= 0) throw new Error(`the CLI did not start: ${(await done).stderr}`);
  const run = { pid, done };
  let exited = false;
  void run.done.then(() => (exited = true));
  const deadline = Date.now() + 20_000;
  while (!exited && Date.now() < deadline && !(await ready(old, run.pid))) await sleep(2);
  const frozen = options.freezeCommand === true && !exited;
  if (frozen) signal(run.pid, 'SIGSTOP');
  const exitedBeforeKill = exited;
  const killedAt = Date.now();
  try {
    await old.kill();
  } finally {
    if (frozen) signal(run.pid, 'SIGCONT');
  }
  options.afterKill?.();
  if (options.failover !== false) {
    await sleep(options.failoverAfterMs ?? 1000);
    await s.failover({ reconfigureOldMaster: 'sentinel', waitForReplica: false });
  }
  const r = await run.done;
  return { r, exitedBeforeKill, old, next, killedAt };
}

/**
 * The master a test killed back on its port, as a replica of the current master of `s`, so that a
 * second failover can come; it takes the killed node's place in `s.nodes` (so `s.stop()` stops it).
 * @returns the restarted node, once in sync
 */
export async function restartKilledMaster(s: SentinelTopology): Promise<RedisNode> {
  const master = await s.currentMaster();
  const gone = s.nodes.find((n) => n !== master)!;
  const restarted = await startNode({
    port: gone.port,
    args: ['--replicaof', '127.0.0.1', String(master.port), '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
  });
  s.nodes[s.nodes.indexOf(gone)] = restarted;
  await s.waitForSync();
  return restarted;
}

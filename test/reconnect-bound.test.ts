/**
 * A Redis that closes the connection at every reply of a command (a reply over its
 * client-output-buffer-limit: Redis logs "scheduled to be closed ASAP for overcoming of output
 * buffer limits", src/networking.c of https://github.com/redis/redis). ioredis reconnected and sent
 * the command again after each close, and its maxRetriesPerRequest does not count those re-sends, so
 * a source read or a target write looped until the 30 s command timeout: plan took 34 s to write a
 * plan with no session, apply with a target so limited about 5 minutes (its batch retries, each
 * 30 s). Now the connection fails such commands after maxRetriesPerRequest re-sends
 * (packages/redis/src/connection.ts failRepeatedResends): the CLI fails within seconds, in one line
 * naming the server and the reason, and reports nothing done that was not done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode, type RedisNode } from './support/redis-topologies.ts';
import { cliTimed, EXIT_AFTER_ERROR_MS, newKey, planArgs, sid, type CliResult } from './support/migrate-cli.ts';

const SOURCE_PREFIX = 'PHPREDIS_SESSION:';
/** Well under the 30 s command timeout the loop used to run into. */
const BOUND_MS = 10_000;
/** Redis's `normal` class limit set for the test: 1 KiB hard, no soft limit (0 0 0 is Redis's default: none). */
const LIMIT = 'normal 1024 1024 0';
const REASON =
  /Redis closed the connection 3 times while the same commands waited for their replies \(the server's log says why: "overcoming of output buffer limits" means a reply exceeded client-output-buffer-limit/;

let root: string;
let source: RedisNode | undefined;
let target: RedisNode | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-reconnect-bound-'));
  [source, target] = await Promise.all([startNode(), startNode()]);
}, 30_000);
afterAll(async () => {
  await source?.stop();
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Runs the CLI: its wall time (`ms`) and `lingerMs` (cliTimed); ends it after 3 × BOUND_MS so a loop fails the test rather than hanging it. */
function timedCli(args: string[]): Promise<CliResult & { ms: number; lingerMs: number }> {
  return cliTimed(args, {}, 3 * BOUND_MS);
}

/** 3 small sessions and one of 64 KiB on the source (valid php-serialized data), an empty target, and a plan made while no limit is set. */
async function setUp(tag: string): Promise<{ planFile: string; sourceUrl: string; keyFile: string }> {
  for (const n of [source!, target!]) {
    await n.admin.config('SET', 'client-output-buffer-limit', 'normal 0 0 0');
    await n.admin.flushall();
  }
  const { keyFile } = await newKey(mkdtempSync(join(root, `${tag}-`)));
  const pipe = source!.admin.pipeline();
  for (let i = 0; i < 3; i++) pipe.set(`${SOURCE_PREFIX}${sid(tag, i)}`, `user|s:1:"${i}";`, 'EX', 3600);
  const big = 'x'.repeat(64 * 1024);
  pipe.set(`${SOURCE_PREFIX}${sid(tag, 3)}`, `user|s:${big.length}:"${big}";`, 'EX', 3600);
  await pipe.exec();
  const sourceUrl = `redis://127.0.0.1:${source!.port}/0`;
  const planFile = join(root, `plan-${tag}.json`);
  const p = await timedCli(planCommand(sourceUrl, keyFile, planFile, tag));
  expect(p.status, p.stderr + p.stdout).toBe(0);
  return { planFile, sourceUrl, keyFile };
}

function planCommand(sourceUrl: string, keyFile: string, planFile: string, tag: string): string[] {
  return planArgs({ source: `redis:${sourceUrl}`, target: target!.url, keyFile, planFile, artifactsDir: join(root, `artifacts-${tag}`) });
}

describe('a Redis that closes the connection at every reply of a command fails the CLI within seconds', () => {
  it('a source whose GET replies exceed its client-output-buffer-limit: plan and apply fail in one line naming the source and the reason, nothing written', async () => {
    const { planFile, sourceUrl, keyFile } = await setUp('src');
    await source!.admin.config('SET', 'client-output-buffer-limit', LIMIT);
    const line = new RegExp(`^session-migrate: source Redis at ${sourceUrl.replace(/[.]/g, '\\.')} failed while reading: ${REASON.source}`);

    const newPlan = join(root, 'plan-src-limited.json');
    const p = await timedCli(planCommand(sourceUrl, keyFile, newPlan, 'src-limited'));
    expect(p.status, p.stderr + p.stdout).toBe(2);
    expect(p.stderr).toMatch(line);
    expect(p.stderr.trim().split('\n')).toHaveLength(1);
    expect(p.stdout).toBe('');
    expect(existsSync(newPlan)).toBe(false);
    expect(p.ms).toBeLessThan(BOUND_MS);

    const a = await timedCli(['apply', '--plan', planFile]);
    expect(a.status, a.stderr + a.stdout).toBe(2);
    expect(a.stderr).toMatch(line);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stdout).not.toMatch(/migrated [1-9]|^ {2}next/m);
    expect(await target!.admin.dbsize()).toBe(0);
    expect(a.ms).toBeLessThan(BOUND_MS);
    // The cause the hint names is the one Redis logged.
    expect(readFileSync(join(source!.dir, 'redis.log'), 'utf8')).toContain(
      'scheduled to be closed ASAP for overcoming of output buffer limits',
    );
  }, 120_000);

  it('a target whose reply to the guarded write exceeds its limit: apply exits 1 at once, the writes reported failed (they may have run, and did), never "nothing was written"', async () => {
    const { planFile } = await setUp('tgt');
    await target!.admin.config('SET', 'client-output-buffer-limit', LIMIT);
    const a = await timedCli(['apply', '--plan', planFile]);
    expect(a.status, a.stderr + a.stdout).toBe(1);
    expect(a.ms).toBeLessThan(BOUND_MS);
    expect(a.stderr).not.toMatch(/nothing was written/);
    // Named as verify names it below: `Redis at URL failed during ...`.
    expect(a.stdout).toMatch(
      new RegExp(
        `^ {2}STOPPED {5}Redis at ${target!.url.replace(/[.]/g, '\\.')} failed during apply: ${REASON.source.replace(' \\(the', ': the')}`,
        'm',
      ),
    );
    expect(a.stdout).toMatch(/^ {2}sessions {4}migrated 0 \(0 B\), .*failed 4$/m);
    // Redis lost the replies, not the writes: the FAILED line says they may have been written and
    // what a re-run finds (checked below), and no NOT DONE line counts 0 sessions left.
    expect(a.stdout).toMatch(
      /^ {2}FAILED {6}4 session\(s\): Redis closed the connection 3 times while the same commands waited for their replies: the replies were lost, so they may have been written; once the cause is fixed, run apply again: it counts those written as already present and writes the others \(/m,
    );
    expect(a.stdout).not.toMatch(/NOT DONE/);
    // They were written: the write ran and only its reply was lost.
    expect(await target!.admin.dbsize()).toBe(4);
    expect(readFileSync(join(target!.dir, 'redis.log'), 'utf8')).toContain(
      'scheduled to be closed ASAP for overcoming of output buffer limits',
    );

    // The limit raised (here: none), apply again: what the FAILED line said it reports.
    await target!.admin.config('SET', 'client-output-buffer-limit', 'normal 0 0 0');
    const again = await timedCli(['apply', '--plan', planFile]);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(again.stdout).toMatch(/^ {2}sessions {4}migrated 0 \(0 B\), already present 4, .*failed 0$/m);
  }, 120_000);

  it('verify of a target that closes the connection at its reads: exit 2, one line saying Redis failed (not that it refused a command) and why', async () => {
    const { planFile } = await setUp('verify');
    const a = await timedCli(['apply', '--plan', planFile]);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    await target!.admin.config('SET', 'client-output-buffer-limit', LIMIT);
    const v = await timedCli(['verify', '--plan', planFile]);
    expect(v.status, v.stderr + v.stdout).toBe(2);
    expect(v.stderr).toMatch(
      new RegExp(`^session-migrate: Redis at ${target!.url.replace(/[.]/g, '\\.')} failed during verify: ${REASON.source}`),
    );
    expect(v.stderr).not.toMatch(/refused/);
    expect(v.stderr.trim().split('\n')).toHaveLength(1);
    expect(v.ms).toBeLessThan(BOUND_MS);
  }, 120_000);
});

/**
 * The CLI ends once it has said its last word, even when its connections were closed while ioredis
 * was waiting to reconnect: a closed connection used to keep the process 2 s (ioredis's
 * disconnectTimeout timer armed on the socket already closed) and, 1 run in 3 of verify with both
 * servers limited, 30 s (the commands queued for the reconnect never failed: their command timers
 * ran out). packages/redis/src/connection.ts disconnectClient. Two runs each: the 2 s linger came in
 * every run of the old code (24 of 24), and the 30 s case, which depends on where the close catches
 * the client, is covered where it is decided (packages/redis/test/connection.test.ts, "close() of a
 * client waiting to reconnect"); more runs cost the suite about 2-4 s each.
 */
describe('the CLI exits promptly after its last line when Redis keeps closing the connection', () => {
  const RUNS = 2;
  /** Each run's linger, checked at the end of the test so a failure shows them all. */
  let runs: string[] = [];
  const lingers = (r: CliResult & { lingerMs: number }, what: string): void => {
    expect(r.status, `${what}: ${r.stderr}${r.stdout}`).toBeGreaterThan(0);
    runs.push(`${what}: ${r.lingerMs} ms`);
  };
  /**
   * The RUNS runs of each command at once (their time is mostly spent waiting for reconnects, and
   * each process's linger is its own), then `lingers` of each.
   */
  const runsAtOnce = async (start: (i: number) => Array<[Promise<CliResult & { lingerMs: number }>, string]>): Promise<void> => {
    const started = Array.from({ length: RUNS }, (_, i) => start(i)).flat();
    const results = await Promise.all(started.map(([run]) => run));
    results.forEach((r, k) => lingers(r, started[k]![1]));
  };
  const noneLingered = (): void => {
    expect(runs.filter((r) => Number(/(-?\d+) ms$/.exec(r)![1]) >= EXIT_AFTER_ERROR_MS)).toEqual([]);
    runs = [];
  };

  it('plan and apply with a limited source, apply with a limited target', async () => {
    const { planFile, sourceUrl, keyFile } = await setUp('exit');
    await source!.admin.config('SET', 'client-output-buffer-limit', LIMIT);
    await runsAtOnce((i) => [
      [timedCli(planCommand(sourceUrl, keyFile, join(root, `plan-exit-${i}.json`), `exit-${i}`)), `plan ${i}`],
      [timedCli(['apply', '--plan', planFile]), `apply ${i}`],
    ]);
    await source!.admin.config('SET', 'client-output-buffer-limit', 'normal 0 0 0');
    await target!.admin.config('SET', 'client-output-buffer-limit', LIMIT);
    await runsAtOnce((i) => [[timedCli(['apply', '--plan', planFile]), `apply, target limited, ${i}`]]);
    noneLingered();
  }, 300_000);

  it('verify with a limited source, a limited target, and both', async () => {
    const { planFile, sourceUrl } = await setUp('exit-verify');
    const a = await timedCli(['apply', '--plan', planFile]);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const verify = ['verify', '--plan', planFile, '--source', `redis:${sourceUrl}`];
    for (const limited of [[source!], [target!], [source!, target!]]) {
      for (const n of [source!, target!])
        await n.admin.config('SET', 'client-output-buffer-limit', limited.includes(n) ? LIMIT : 'normal 0 0 0');
      const which = limited.map((n) => (n === source ? 'source' : 'target')).join('+');
      await runsAtOnce((i) => [[timedCli(verify), `verify, ${which} limited, ${i}`]]);
    }
    noneLingered();
  }, 300_000);
});

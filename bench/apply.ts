/**
 * Benchmark: `apply` and `verify` against `redis-cli --pipe` of the same sessions, in the same run.
 *
 *   npm run bench:apply                                   # 100k and 1M sessions of about 1 KB, 3 rounds
 *   npm run bench:apply -- --sizes 10000,100000 --rounds 2 --workers 2 --timeout-min 20 --no-build
 *   npm run bench:apply -- --cli /path/to/other/build/package/bin/session-migrate.js   # another build, e.g. before a change
 *   npm run bench:apply -- --sizes 100000 --native-bound   # also time bench/native-bound.c (needs gcc and libsodium23;
 *                                                          # --native-threads T: its threads, default every core but one)
 *
 * For each size N it writes N PHP-serialized session files (`php` serialize_handler, about 1 KB each:
 * a user, a cart of objects, a CSRF token, flash messages, a browsing history) and the same payloads
 * as a RESP stream of plaintext `SET PHPREDIS_SESSION:<id> <payload> EX 86400` (what a phpredis
 * fleet holds), starts a local redis-server (no persistence), runs `plan` (not timed), loads the RESP
 * stream once untimed (so the server's memory has grown before either is measured), then in each
 * round, on an emptied database:
 *   1. `redis-cli --pipe` of the RESP stream (the baseline: the fastest way to load these bytes);
 *   2. `session-migrate apply --plan` (read, check, seal, guarded write, read-back);
 *   3. with --native-bound, bench/native-bound.c twice: apply's per-session work and Redis commands
 *      written in C (openat, no plan checks, no artifacts), an upper bound for any implementation of
 *      apply on this machine; then the same with one `SET key value PX ttl NX` per session instead of
 *      the guarded-write script (the bound of a key layout with the tombstone in the session's key);
 * and after the last round `session-migrate verify --plan` over the sessions apply wrote (SCAN, GET,
 * PTTL and open of every key, plus the presence of every source session).
 *
 * The CLI timed is the BUILT package (build/package/bin/session-migrate.js, built first unless
 * --no-build): no TypeScript at run time, so worker threads start in milliseconds.
 *
 * It prints per size the medians over the rounds: sessions/s of --pipe and of apply (whole command:
 * process start, plan checks and artifacts included; and the session copy alone, as apply reports it),
 * the median of the rounds' ratios apply/--pipe (goal >= 0.5), apply's peak RSS (VmHWM, all threads;
 * goal <= 256 MiB at 100k and 1M and flat between them), the CPU seconds apply and redis-server used,
 * and verify's rate and its ratio to apply's (goal >= 1). The load average before and after is printed:
 * the machine should be quiet (figures from a loaded machine are indicative only).
 *
 * Self-cleaning and bounded: everything lives in one temporary directory that is removed at the end;
 * redis-server and the CLI are stopped by PID; a watchdog (--timeout-min, default 60) stops the run,
 * cleans up and exits 2; SIGINT and SIGTERM do the same.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '../packages/cli/src/sandbox.ts';
import { GUARDED_WRITE_LUA } from '../packages/target/src/script.ts';
import { buildPackage, PACKAGE_DIR } from '../scripts/package/build.ts';

interface Options {
  sizes: number[];
  rounds: number;
  workers?: number;
  build: boolean;
  timeoutMin: number;
  cli?: string;
  /** Also time bench/native-bound.c each round (compiled with gcc first). */
  nativeBound: boolean;
  /** Its threads (--native-threads; default: every core but one). */
  nativeThreads: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    sizes: [100_000, 1_000_000],
    rounds: 3,
    build: true,
    timeoutMin: 60,
    nativeBound: false,
    nativeThreads: Math.max(1, availableParallelism() - 1),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const whole = (v: string, min: number): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new Error(`${a}: a whole number >= ${min}, not ${v}`);
      return n;
    };
    if (a === '--sizes')
      o.sizes = value()
        .split(',')
        .map((s) => whole(s.replace(/_/g, ''), 1))
        .sort((x, y) => x - y);
    else if (a === '--rounds') o.rounds = whole(value(), 1);
    else if (a === '--workers') o.workers = whole(value(), 0);
    else if (a === '--timeout-min') o.timeoutMin = whole(value(), 1);
    else if (a === '--no-build') o.build = false;
    else if (a === '--native-bound') o.nativeBound = true;
    else if (a === '--native-threads') {
      o.nativeThreads = whole(value(), 1);
      o.nativeBound = true;
    } else if (a === '--cli') {
      o.cli = value();
      o.build = false;
    } else if (/^\d+$/.test(a))
      o.sizes = [whole(a, 1)]; // the old form: `bench/apply.ts N`
    else
      throw new Error(
        `unknown option ${a} (options: --sizes N,M  --rounds R  --workers W  --timeout-min M  --no-build  --cli PATH  --native-bound  --native-threads T)`,
      );
  }
  return o;
}

/** A realistic ~1 KB `php`-format session: user, cart of objects, flash messages, CSRF token. */
function sessionPayload(i: number): Buffer {
  const items = Array.from(
    { length: 6 },
    (_, j) =>
      `i:${j};O:8:"CartItem":3:{s:3:"sku";s:9:"SKU-${String(i % 10000).padStart(4, '0')}${j}";s:3:"qty";i:${((i + j) % 5) + 1};s:5:"price";d:${(i % 997) / 10 + j};}`,
  ).join('');
  const token = ((i * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(8);
  return Buffer.from(
    `user|a:3:{s:2:"id";i:${i};s:5:"email";s:${`user${i}@example.com`.length}:"user${i}@example.com";s:5:"roles";a:2:{i:0;s:8:"customer";i:1;s:10:"newsletter";}}` +
      `cart|a:6:{${items}}csrf|s:64:"${token}";flash|a:1:{i:0;s:32:"Your cart was saved successfully";}` +
      `last_seen|i:${1_700_000_000 + i};locale|s:5:"en_GB";` +
      `history|a:4:{${[0, 1, 2, 3]
        .map((k) => {
          const u = `/catalog/category-${(i + k) % 50}/product-${(i * 7 + k) % 1000}?ref=home`;
          return `i:${k};s:${u.length}:"${u}";`;
        })
        .join('')}}`,
    'latin1',
  );
}

function sessionId(i: number): string {
  return `bench${String(i).padStart(21, '0')}`;
}

// ---------------------------------------------------------------- clean-up and the watchdog

const children = new Set<ChildProcess>();
const servers = new Set<RedisServer>();
let root: string | undefined;

/** Removes a directory tree: rm(1) when there is one (a million files: much faster than rmSync), else rmSync. */
function removeTree(path: string): void {
  try {
    execFileSync('rm', ['-rf', '--', path], { stdio: 'ignore' });
  } catch {
    rmSync(path, { recursive: true, force: true });
  }
}

async function cleanUp(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const s of servers) await s.stop().catch(() => undefined);
  servers.clear();
  if (root !== undefined) removeTree(root);
  root = undefined;
}

function abort(why: string): void {
  process.stderr.write(`bench/apply: ${why}; stopping and cleaning up\n`);
  void cleanUp().finally(() => process.exit(2));
}

// ---------------------------------------------------------------- data

/** Writes n session files (then sync(1), so that write-back does not overlap what is timed). */
function writeFiles(dir: string, n: number): number {
  mkdirSync(dir, { mode: 0o700 });
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const p = sessionPayload(i);
    bytes += p.length;
    const fd = openSync(join(dir, `sess_${sessionId(i)}`), 'wx', 0o600);
    writeSync(fd, p);
    closeSync(fd);
  }
  return bytes;
}

/**
 * session.gc_maxlifetime of the benchmark, seconds: a day, so that no session expires while a run at
 * 1M sessions goes on (PHP's default of 1440 s would expire the first files before the last round).
 */
const GC_MAXLIFETIME = 86_400;

/** The same payloads as plaintext `SET PHPREDIS_SESSION:<id> <payload> EX <gc_maxlifetime>`, in RESP. */
async function writeResp(path: string, n: number): Promise<void> {
  const out = createWriteStream(path);
  const bulk = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
  for (let i = 0; i < n; i++) {
    const parts = [
      Buffer.from('SET'),
      Buffer.from(`PHPREDIS_SESSION:${sessionId(i)}`),
      sessionPayload(i),
      Buffer.from('EX'),
      Buffer.from(String(GC_MAXLIFETIME)),
    ];
    if (!out.write(Buffer.concat([Buffer.from(`*${parts.length}\r\n`), ...parts.map(bulk)]))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

// ---------------------------------------------------------------- timed runs

interface Timed {
  ms: number;
  code: number;
  out: string;
  rssKiB: number;
  cpuS: number;
}

/** Runs a command, timing it and sampling its peak RSS (VmHWM) and CPU time (utime+stime) from /proc. */
async function timed(command: string, args: string[], stdin?: string): Promise<Timed> {
  const t0 = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: [stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  children.add(child);
  if (stdin !== undefined) {
    const { createReadStream } = await import('node:fs');
    createReadStream(stdin).pipe(child.stdin!);
  }
  let rssKiB = 0;
  let ticks = 0;
  const sample = (): void => {
    try {
      rssKiB = Math.max(rssKiB, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'latin1'))?.[1] ?? 0));
      const f = readFileSync(`/proc/${child.pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
      ticks = Number(f[11]) + Number(f[12]);
    } catch {
      /* exited */
    }
  };
  const poll = setInterval(sample, 25);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(poll);
  children.delete(child);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (err.trim() !== '' && code !== 0) process.stderr.write(err);
  return { ms, code: code ?? -1, out, rssKiB, cpuS: ticks / 100 };
}

/** CPU seconds a process has used so far (/proc/PID/stat utime+stime). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface SizeResult {
  n: number;
  pipeMs: number[];
  apply: Array<{ ms: number; copyMs: number; rssKiB: number; cpuS: number; redisCpuS: number }>;
  /** bench/native-bound.c per round (--native-bound): with the script, and with SET NX. */
  native: Record<NativeVariant, NativeRun[]>;
  verify?: { ms: number; rssKiB: number; cpuS: number };
}

async function benchSize(n: number, o: Options, cli: string, nativeBin: string | undefined): Promise<SizeResult> {
  const dir = join(root!, `sessions-${n}`);
  const resp = join(root!, `pipe-${n}.resp`);
  process.stderr.write(`bench/apply: N=${n}: writing ${n} session files and the RESP stream...\n`);
  writeFiles(dir, n);
  await writeResp(resp, n);
  execFileSync('sync');
  const redis = await startRedis();
  servers.add(redis);
  const result: SizeResult = { n, pipeMs: [], apply: [], native: { script: [], 'set-nx': [] } };
  try {
    const key = join(root!, `key-${n}`);
    const run = (args: string[]): string =>
      execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    run(['keys', 'generate', '--out', key]);
    const plan = join(root!, `plan-${n}.json`);
    run([
      'plan',
      '--source',
      `files:${dir}`,
      '--target',
      redis.url,
      '--key-file',
      key,
      '--gc-maxlifetime',
      String(GC_MAXLIFETIME),
      '--out',
      plan,
      '--artifacts-dir',
      join(root!, `art-${n}`),
      '--json',
    ]);
    // Warm-up, not timed: the first load of a new server grows its memory (page faults of about 1.2 GB
    // at 1M), and the allocator keeps that memory after FLUSHALL. Without it, round 1's --pipe paid
    // for the growth and apply, run after it, did not (2026-12-05: --pipe 8.4 s in round 1 and 4.3 s
    // in round 2 at 1M), which flattered round 1's ratio.
    const warm = await timed('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), '--pipe'], resp);
    if (warm.code !== 0) throw new Error(`redis-cli --pipe exited ${warm.code}`);
    for (let r = 1; r <= o.rounds; r++) {
      await redis.client.flushall();
      const pipe = await timed('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), '--pipe'], resp);
      if (pipe.code !== 0) throw new Error(`redis-cli --pipe exited ${pipe.code}`);
      const loaded = await redis.client.dbsize();
      if (loaded !== n) throw new Error(`redis-cli --pipe loaded ${loaded} of ${n}`);
      result.pipeMs.push(pipe.ms);

      // Before apply, so that verify (after the last round) reads what apply wrote.
      if (nativeBin !== undefined)
        for (const variant of NATIVE_VARIANTS) {
          await redis.client.flushall();
          result.native[variant].push(await timeNativeBound(nativeBin, variant, o.nativeThreads, dir, redis, n));
        }

      await redis.client.flushall();
      const redisCpu0 = cpuSeconds(redis.pid);
      const apply = await timed(process.execPath, [
        cli,
        'apply',
        '--plan',
        plan,
        '--json',
        ...(o.workers !== undefined ? ['--workers', String(o.workers)] : []),
      ]);
      const redisCpuS = cpuSeconds(redis.pid) - redisCpu0;
      if (apply.code !== 0) throw new Error(`apply exited ${apply.code}`);
      const report = JSON.parse(apply.out) as {
        copyMs: number;
        sessions: { counts: { migrated: number; missingAfterWrite: number; unverified: number } };
      };
      const c = report.sessions.counts;
      if (c.migrated !== n || c.missingAfterWrite !== 0 || c.unverified !== 0)
        throw new Error(`apply migrated ${c.migrated} of ${n} (missing after write ${c.missingAfterWrite}, unverified ${c.unverified})`);
      result.apply.push({ ms: apply.ms, copyMs: report.copyMs, rssKiB: apply.rssKiB, cpuS: apply.cpuS, redisCpuS });
      const native = result.native.script[r - 1];
      const setNx = result.native['set-nx'][r - 1];
      process.stderr.write(
        `bench/apply: N=${n} round ${r}: --pipe ${(pipe.ms / 1000).toFixed(2)} s, apply ${(apply.ms / 1000).toFixed(2)} s (copy ${(report.copyMs / 1000).toFixed(2)} s), ratio ${(pipe.ms / apply.ms).toFixed(2)}, RSS ${(apply.rssKiB / 1024).toFixed(0)} MiB${native !== undefined && setNx !== undefined ? `; native bound ${(native.ms / 1000).toFixed(2)} s, ratio ${(pipe.ms / native.ms).toFixed(2)}; with SET NX ${(setNx.ms / 1000).toFixed(2)} s, ratio ${(pipe.ms / setNx.ms).toFixed(2)}` : ''}\n`,
      );
    }
    const verify = await timed(process.execPath, [cli, 'verify', '--plan', plan, '--json']);
    if (verify.code !== 0) throw new Error(`verify exited ${verify.code}`);
    const v = JSON.parse(verify.out) as { keysValid?: number; report?: { keysValid?: number } };
    const valid = v.keysValid ?? v.report?.keysValid;
    if (valid !== undefined && valid !== n) throw new Error(`verify found ${valid} valid keys of ${n}`);
    result.verify = { ms: verify.ms, rssKiB: verify.rssKiB, cpuS: verify.cpuS };
    process.stderr.write(`bench/apply: N=${n}: verify ${(verify.ms / 1000).toFixed(2)} s\n`);
  } finally {
    servers.delete(redis);
    await redis.stop();
    removeTree(dir);
    rmSync(resp, { force: true });
  }
  return result;
}

// ---------------------------------------------------------------- the native bound (--native-bound)

/** What bench/native-bound.c sends: apply's guarded-write script, or one SET NX per session. */
type NativeVariant = 'script' | 'set-nx';
const NATIVE_VARIANTS: readonly NativeVariant[] = ['script', 'set-nx'];
interface NativeRun {
  ms: number;
  cpuS: number;
  redisCpuS: number;
}

/**
 * Compiles bench/native-bound.c into the run's directory with gcc, against libsodium's shared library.
 * @returns the executable's path
 * @throws Error in one line when gcc or libsodium23 is missing
 */
function buildNativeBound(): string {
  const out = join(root!, 'native-bound');
  const source = new URL('./native-bound.c', import.meta.url).pathname;
  try {
    execFileSync('gcc', ['-O2', '-o', out, source, '-l:libsodium.so.23', '-lpthread'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message)
      .trim()
      .split('\n')[0];
    throw new Error(`--native-bound needs gcc and libsodium23 (Debian: apt-get install gcc libsodium23): ${why}`);
  }
  return out;
}

/** One timed run of the native bound over `dir` into an emptied `redis`, checked: every session written and read back. */
async function timeNativeBound(
  bin: string,
  variant: NativeVariant,
  threads: number,
  dir: string,
  redis: RedisServer,
  n: number,
): Promise<NativeRun> {
  const sha = String(await redis.client.script('LOAD', GUARDED_WRITE_LUA));
  const cpu0 = cpuSeconds(redis.pid);
  const run = await timed(bin, [dir, String(redis.port), sha, String(threads), variant]);
  const redisCpuS = cpuSeconds(redis.pid) - cpu0;
  if (run.code !== 0 || Number(run.out.trim()) !== n)
    throw new Error(`native-bound exited ${run.code} after writing ${run.out.trim() || 0} of ${n} sessions`);
  const stored = await redis.client.dbsize();
  if (stored !== n) throw new Error(`native-bound left ${stored} keys of ${n}`);
  return { ms: run.ms, cpuS: run.cpuS, redisCpuS };
}

// ---------------------------------------------------------------- report

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const rate = (n: number, ms: number): string => Math.round(n / (ms / 1000)).toLocaleString('en-US');
const mib = (kib: number): string => (kib / 1024).toFixed(0);

function report(results: SizeResult[], o: Options, loadBefore: number[]): void {
  const versions = `node ${process.version}, ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 3).join(' ')}`;
  const bytes = Array.from({ length: 10 }, (_, i) => sessionPayload(i).length).reduce((a, b) => a + b) / 10;
  console.log(
    `bench/apply: ${o.cli ?? 'build/package'}: sessions of about ${Math.round(bytes)} bytes (php serialize_handler); ${o.rounds} round(s); apply workers: ${o.workers ?? 'CLI default'}; ${availableParallelism()} cores; ${versions}`,
  );
  console.log(
    `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (figures from a loaded machine are indicative only)`,
  );
  console.log('');
  console.log(
    '| sessions | --pipe /s | apply /s (whole) | apply /s (copy) | ratio whole | ratio copy | apply peak RSS MiB | apply CPU s | redis CPU s | verify /s | verify / apply |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    const ratios = r.apply.map((a, i) => r.pipeMs[i]! / a.ms);
    const copyRatios = r.apply.map((a, i) => r.pipeMs[i]! / a.copyMs);
    const applyMs = median(r.apply.map((a) => a.ms));
    const verifyRate = r.verify !== undefined ? r.n / (r.verify.ms / 1000) : undefined;
    console.log(
      `| ${r.n.toLocaleString('en-US')} | ${rate(r.n, median(r.pipeMs))} | ${rate(r.n, applyMs)} | ${rate(r.n, median(r.apply.map((a) => a.copyMs)))} | ${median(ratios).toFixed(2)} | ${median(copyRatios).toFixed(2)} | ${mib(Math.max(...r.apply.map((a) => a.rssKiB)))} | ${median(r.apply.map((a) => a.cpuS)).toFixed(2)} | ${median(r.apply.map((a) => a.redisCpuS)).toFixed(2)} | ${verifyRate !== undefined ? Math.round(verifyRate).toLocaleString('en-US') : '-'} | ${verifyRate !== undefined ? (verifyRate / (r.n / (applyMs / 1000))).toFixed(2) : '-'} |`,
    );
  }
  if (results.some((r) => r.native.script.length > 0)) {
    console.log('');
    console.log(
      `bench/native-bound.c (${o.nativeThreads} thread(s)): apply's per-session work in C, with apply's Redis commands (script) and with one SET NX per session (set-nx, another key layout)`,
    );
    console.log('');
    console.log(
      '| sessions | Redis writes | --pipe /s | native bound /s | ratio to --pipe | native CPU s | redis CPU s | apply rate / native rate |',
    );
    console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of results)
      for (const variant of NATIVE_VARIANTS) {
        const runs = r.native[variant];
        if (runs.length === 0) continue;
        console.log(
          `| ${r.n.toLocaleString('en-US')} | ${variant} | ${rate(r.n, median(r.pipeMs))} | ${rate(r.n, median(runs.map((x) => x.ms)))} | ${median(runs.map((x, i) => r.pipeMs[i]! / x.ms)).toFixed(2)} | ${median(runs.map((x) => x.cpuS)).toFixed(2)} | ${median(runs.map((x) => x.redisCpuS)).toFixed(2)} | ${median(runs.map((x, i) => x.ms / r.apply[i]!.ms)).toFixed(2)} |`,
        );
      }
  }
  console.log('');
  console.log(
    'goals (issue 12): ratio whole >= 0.50; verify / apply >= 1; apply peak RSS <= 256 MiB at 100k and at 1M, and flat between them',
  );
  if (results.length >= 2) {
    const first = results[0]!;
    const last = results[results.length - 1]!;
    const peak = (r: SizeResult): number => Math.max(...r.apply.map((a) => a.rssKiB));
    console.log(
      `apply peak RSS from ${first.n.toLocaleString('en-US')} to ${last.n.toLocaleString('en-US')} sessions: ${mib(peak(first))} -> ${mib(peak(last))} MiB (${peak(last) >= peak(first) ? '+' : ''}${mib(peak(last) - peak(first))} MiB); verify: ${mib(first.verify?.rssKiB ?? 0)} -> ${mib(last.verify?.rssKiB ?? 0)} MiB`,
    );
  }
}

// ---------------------------------------------------------------- main

const options = parseArgs(process.argv.slice(2));
const watchdog = setTimeout(() => abort(`still running after --timeout-min ${options.timeoutMin}`), options.timeoutMin * 60_000);
watchdog.unref();
process.once('SIGINT', () => abort('interrupted'));
process.once('SIGTERM', () => abort('terminated'));
try {
  execFileSync('redis-cli', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('bench/apply: redis-cli is needed (Debian/Ubuntu: apt-get install redis-tools; scripts/setup.sh installs it)');
  process.exit(2);
}
if (options.build) await buildPackage({ noPack: true, quiet: true });
const cli = options.cli ?? join(PACKAGE_DIR, 'bin/session-migrate.js');
const loadBefore = loadavg();
root = mkdtempSync(join(tmpdir(), 'sm-bench-'));
try {
  const results: SizeResult[] = [];
  const nativeBin = options.nativeBound ? buildNativeBound() : undefined;
  for (const n of options.sizes) results.push(await benchSize(n, options, cli, nativeBin));
  report(results, options, loadBefore);
} catch (err) {
  console.error(`bench/apply: ${(err as Error).message.split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await cleanUp();
}

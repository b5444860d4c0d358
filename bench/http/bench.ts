/**
 * Benchmark: session handlers through nginx + php-fpm + wrk, side by side in one run.
 *
 *   npm run bench:http                      (after scripts/setup.sh; about 4 minutes with the defaults)
 *   npm run bench:http -- --rounds 1 --duration 2 --sessions 200     (a quick check that it works)
 *
 * Variants, each run interleaved in every round (A B C D E, A B C D E, ...), over plain TCP and over
 * TLS (redis-server --tls-port, certificate from a private CA made with openssl):
 *   files                  PHP's files handler (plain group only: no network)
 *   phpredis               phpredis's `redis` save handler, a new connection per request
 *   phpredis-pconnect      the same with persistent=1
 *   phpredis-pconnect-lock the same with redis.session.locking_enabled=1: the BASELINE of the ratios
 *   generated              session-migrate's handler as `plan` + `generate php --strict` of this
 *                          checkout make it, with its default settings
 * phpredis 5.3.7 ignores stream[...] in a `redis` save_path (6.0 reads it), so over TLS every PHP
 * variant gets the CA through PHP's global `openssl.cafile`; the CLI gets it through NODE_EXTRA_CA_CERTS.
 *
 * Each run: php-fpm is reloaded (SIGUSR2) with the variant's ini; the first time, 2,000 sessions of
 * about 1 KB are created through the application (bench/http/app.php); a short wrk warm-up; then wrk
 * for --duration seconds where every request reads its session and rewrites it (round robin over the
 * sessions). Printed per run: req/s, p50/p99 latency, Redis connections per request (INFO stats
 * total_connections_received delta / requests), CPU µs per request of php-fpm and of redis-server
 * (/proc/<pid>/stat of php-fpm's process group and of redis-server over the measured run; on a machine
 * other jobs share, this moves less than req/s), answers whose session was missing (logouts), non-2xx
 * answers, and updates lost when 50 requests hit one session at once (a counter incremented per
 * request, compared with the number of 2xx answers). The summary gives medians over the rounds and
 * the ratios against phpredis-pconnect-lock measured in the same round.
 *
 * Options: --rounds N (3) --duration S (5) --warmup S (1) --sessions N (2000) --workers N (php-fpm, 4)
 *   --threads N (wrk, 2) --connections N (wrk, 32) --probe N (50) --transports plain,tls
 *   --variants files,phpredis,... --json FILE (write every measurement as JSON).
 * Loopback only; every server is started here from temp dirs and stopped by PID.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '../../packages/cli/src/sandbox.ts';
import { findProgram, freePort, makeDocroot, startPhpStack, type IniSettings, type PhpStack } from '../../test/support/http.ts';
import {
  APP_PHP,
  WRK_SCRIPT,
  SessionHttp,
  cliOk,
  cpuSeconds,
  createSessions,
  generateHandler,
  lostUpdateProbe,
  makeTlsFiles,
  median,
  redisTlsArgs,
  run,
  totalConnections,
  type LostUpdateResult,
} from './common.ts';

// ------------------------------------------------------------------------------------------ options

function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--'))
      throw new Error(
        `unexpected argument ${a} (options: --rounds --duration --warmup --sessions --workers --threads --connections --probe --transports --variants --json)`,
      );
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else out.set(a.slice(2), argv[++i] ?? '');
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const num = (name: string, def: number, min: number, max: number): number => {
  const v = args.has(name) ? Number(args.get(name)) : def;
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name}: a number from ${min} to ${max}`);
  return v;
};
const ROUNDS = num('rounds', 3, 1, 20);
const DURATION = num('duration', 5, 1, 120);
const WARMUP = num('warmup', 1, 0, 30);
const SESSIONS = num('sessions', 2000, 10, 100_000);
const WORKERS = num('workers', 4, 1, 64);
const THREADS = num('threads', 2, 1, 16);
const CONNECTIONS = Math.max(num('connections', 32, 1, 1000), THREADS);
const PROBE = num('probe', 50, 2, 500);
const GC_MAXLIFETIME = 3600;

type Transport = 'plain' | 'tls';
type VariantName = 'files' | 'phpredis' | 'phpredis-pconnect' | 'phpredis-pconnect-lock' | 'generated';
const ALL_VARIANTS: VariantName[] = ['files', 'phpredis', 'phpredis-pconnect', 'phpredis-pconnect-lock', 'generated'];
const BASELINE: VariantName = 'phpredis-pconnect-lock';
const TRANSPORTS = (args.get('transports') ?? 'plain,tls').split(',').filter((t) => t !== '') as Transport[];
const VARIANTS = (args.get('variants') ?? ALL_VARIANTS.join(',')).split(',').filter((v) => v !== '') as VariantName[];
for (const t of TRANSPORTS) if (t !== 'plain' && t !== 'tls') throw new Error(`--transports: plain and/or tls, not ${t}`);
for (const v of VARIANTS) if (!ALL_VARIANTS.includes(v)) throw new Error(`--variants: one of ${ALL_VARIANTS.join(', ')}, not ${v}`);

// ------------------------------------------------------------------------------------------ helpers

interface WrkSummary {
  requests: number;
  duration_us: number;
  non2xx: number;
  missing: number;
  connect_errors: number;
  read_errors: number;
  write_errors: number;
  timeouts: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
}

async function wrk(url: string, idsFile: string, seconds: number): Promise<WrkSummary> {
  const r = await run(
    WRK_BIN,
    ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '10s', '-s', WRK_SCRIPT, url],
    {
      env: { ...process.env, SM_WRK_IDS: idsFile },
      timeoutMs: (seconds + 30) * 1000,
    },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('SMJSON '));
  if (r.status !== 0 || line === undefined)
    throw new Error(`wrk failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 400)}`);
  return JSON.parse(line.slice(7)) as WrkSummary;
}

/** Versions of the parts measured, for the report (first line of each program's version output). */
function versions(): string {
  const first = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '?';
  };
  const php = first('php', [
    '-n',
    '-d',
    'extension=igbinary',
    '-d',
    'extension=redis',
    '-r',
    'echo "PHP ", PHP_VERSION, ", phpredis ", phpversion("redis"), " (lock_retries ", ini_get("redis.session.lock_retries"), ", lock_wait_time ", ini_get("redis.session.lock_wait_time"), " us)";',
  ]);
  const redisV = /v=(\S+)/.exec(first('redis-server', ['--version']))?.[1] ?? '?';
  const nginxV = first(findProgram(['nginx'], 'nginx', 'NGINX_BIN'), ['-v']).replace(/^nginx version: /, '');
  const wrkV = first(WRK_BIN, ['--version']).split(' ').slice(0, 2).join(' ');
  return `${php}; redis-server ${redisV}; ${nginxV}; ${wrkV}`;
}

const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const fmtMs = (us: number): string => (Number.isFinite(us) ? (us / 1000).toFixed(2) : '-');
const fmtRatio = (r: number): string => (Number.isFinite(r) ? r.toFixed(2) : '-');
const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

interface Measurement {
  round: number;
  transport: Transport;
  variant: VariantName;
  reqPerSec: number;
  p50Us: number;
  p99Us: number;
  connPerReq: number;
  requests: number;
  missing: number;
  non2xx: number;
  socketErrors: number;
  /** CPU µs per request of php-fpm (master and workers) and of redis-server during the measured run. */
  phpCpuUs: number;
  redisCpuUs: number;
  probe?: LostUpdateResult;
  error?: string;
  phpErrors: number;
}

// ---------------------------------------------------------------------------------------------- main

const WRK_BIN = findProgram(['wrk'], 'wrk', 'WRK_BIN');
const root = mkdtempSync(join(tmpdir(), 'sm-bench-http-'));
let redis: RedisServer | undefined;
let stack: PhpStack | undefined;
let docroot: string | undefined;
const started = Date.now();
const perRun = WARMUP + DURATION + 2;
const estimate =
  ROUNDS * TRANSPORTS.reduce((s, t) => s + VARIANTS.filter((v) => !(t === 'tls' && v === 'files')).length, 0) * perRun +
  VARIANTS.length * TRANSPORTS.length * (SESSIONS / 500 + 3);
// A hard bound: nothing here may run away (a hung server, a wedged wrk).
const watchdog = setTimeout(
  () => {
    console.error('bench/http: time limit exceeded, stopping');
    void cleanup().then(() => process.exit(3));
  },
  (estimate * 2 + 180) * 1000,
);
watchdog.unref();

async function cleanup(): Promise<void> {
  await stack?.stop().catch(() => undefined);
  await redis?.stop().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
  if (docroot !== undefined) rmSync(docroot, { recursive: true, force: true });
}
process.once('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});

try {
  console.log(
    `bench/http: nginx + php-fpm (${WORKERS} workers) + wrk (${THREADS} threads, ${CONNECTIONS} connections, ${DURATION} s per run after ${WARMUP} s warm-up), ${SESSIONS} sessions of about 1 KB, ${ROUNDS} round(s), interleaved`,
  );
  console.log(`  versions: ${versions()}`);
  console.log(
    `  machine: ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; expect about ${Math.ceil(estimate / 60)} min`,
  );

  // Redis: one server, a plain port and a TLS port.
  const tlsDir = join(root, 'tls');
  mkdirSync(tlsDir);
  const tls = makeTlsFiles(tlsDir);
  const tlsPort = await freePort();
  redis = await startRedis(redisTlsArgs(tls, tlsPort));
  const cliEnv = { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile };

  docroot = makeDocroot({ 'index.php': APP_PHP });
  const filesDir = join(root, 'files-sessions');
  mkdirSync(filesDir, { mode: 0o700 });
  const emptySource = join(root, 'no-sessions');
  mkdirSync(emptySource, { mode: 0o700 });
  const keyFile = join(root, 'master.key');
  await cliOk(['keys', 'generate', '--out', keyFile]);

  const common: IniSettings = {
    'session.serialize_handler': 'php',
    'session.gc_maxlifetime': GC_MAXLIFETIME,
    'session.use_strict_mode': 1,
    'session.lazy_write': 1,
    'session.use_only_cookies': 1,
    memory_limit: '128M',
    // The same OPcache for every variant, written out: on (test/support/http.ts loads it), PHP's
    // defaults for revalidation (a stat of each script at most every 2 s). Each reload starts an empty
    // cache, which the warm-up fills.
    'opcache.enable': 1,
    'opcache.memory_consumption': 64,
    'opcache.validate_timestamps': 1,
    'opcache.revalidate_freq': 2,
  };
  console.log(
    `  php.ini of every variant: ${Object.entries(common)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  const generated = new Map<Transport, Awaited<ReturnType<typeof generateHandler>>>();
  const configFor = async (
    t: Transport,
    v: VariantName,
  ): Promise<{ ini: IniSettings; iniFiles: string[]; env: Record<string, string> }> => {
    const addr = t === 'plain' ? `tcp://127.0.0.1:${redis!.port}` : `tls://127.0.0.1:${tlsPort}`;
    const tlsIni: IniSettings = t === 'tls' ? { 'openssl.cafile': tls.caFile } : {};
    switch (v) {
      case 'files':
        return { ini: { ...common, 'session.save_handler': 'files', 'session.save_path': filesDir }, iniFiles: [], env: {} };
      case 'phpredis':
      case 'phpredis-pconnect':
      case 'phpredis-pconnect-lock': {
        const persistent = v !== 'phpredis' ? '&persistent=1' : '';
        return {
          ini: {
            ...common,
            ...tlsIni,
            'session.save_handler': 'redis',
            'session.save_path': `${addr}?prefix=BENCH_${v.replace(/-/g, '_')}:&timeout=2.5${persistent}`,
            'redis.session.locking_enabled': v === 'phpredis-pconnect-lock' ? 1 : 0,
          },
          iniFiles: [],
          env: {},
        };
      }
      case 'generated': {
        let g = generated.get(t);
        if (g === undefined) {
          const dir = join(root, `generated-${t}`);
          mkdirSync(dir);
          // Over TLS the CLI trusts the private CA through NODE_EXTRA_CA_CERTS and PHP through
          // openssl.cafile (tlsIni below). If `plan` learns to take a CA file for the handler's stream
          // context, pass it here too.
          g = await generateHandler({
            dir,
            keyFile,
            sourceDir: emptySource,
            gcMaxlifetime: GC_MAXLIFETIME,
            mode: 'strict',
            env: cliEnv,
            target: t === 'plain' ? `redis://127.0.0.1:${redis!.port}/0` : `rediss://127.0.0.1:${tlsPort}/0`,
          });
          generated.set(t, g);
        }
        return { ini: { ...common, ...tlsIni }, iniFiles: g.iniFiles, env: g.env };
      }
    }
  };

  // The generated handlers are made before anything runs: OPcache does not cache a file changed less
  // than opcache.file_update_protection (2 s) ago, so artifacts written just before a run would be
  // compiled on every request of its first seconds.
  if (VARIANTS.includes('generated')) for (const t of TRANSPORTS) await configFor(t, 'generated');
  stack = await startPhpStack({ docroot, fpm: { workers: WORKERS, ini: common } });
  const url = `${stack.base}/index.php?a=hit`;
  const idsFiles = new Map<string, string>();
  const results: Measurement[] = [];

  const plan: Array<{ t: Transport; v: VariantName }> = [];
  for (const t of TRANSPORTS) for (const v of VARIANTS) if (!(t === 'tls' && v === 'files')) plan.push({ t, v });

  for (let round = 1; round <= ROUNDS; round++) {
    for (const { t, v } of plan) {
      const key = `${t}/${v}`;
      const m: Measurement = {
        round,
        transport: t,
        variant: v,
        reqPerSec: NaN,
        p50Us: NaN,
        p99Us: NaN,
        connPerReq: NaN,
        requests: 0,
        missing: 0,
        non2xx: 0,
        socketErrors: 0,
        phpCpuUs: NaN,
        redisCpuUs: NaN,
        phpErrors: 0,
      };
      try {
        await stack.fpm.reload(await configFor(t, v));
        stack.fpm.clearErrorLog();
        let idsFile = idsFiles.get(key);
        if (idsFile === undefined) {
          const http = new SessionHttp(stack.base, 16);
          try {
            const { ids } = await createSessions(http, SESSIONS, 16);
            idsFile = join(root, `ids-${t}-${v}.txt`);
            writeFileSync(idsFile, ids.join('\n') + '\n');
            idsFiles.set(key, idsFile);
          } finally {
            http.close();
          }
        }
        if (WARMUP > 0) await wrk(url, idsFile, WARMUP);
        const before = await totalConnections(redis.client);
        const cpuBefore = { php: cpuSeconds({ pgid: stack.fpm.pid }), redis: cpuSeconds({ pid: redis.pid }) };
        const w = await wrk(url, idsFile, DURATION);
        const cpuAfter = { php: cpuSeconds({ pgid: stack.fpm.pid }), redis: cpuSeconds({ pid: redis.pid }) };
        const after = await totalConnections(redis.client);
        if (w.requests > 0) {
          m.phpCpuUs = ((cpuAfter.php - cpuBefore.php) * 1e6) / w.requests;
          m.redisCpuUs = ((cpuAfter.redis - cpuBefore.redis) * 1e6) / w.requests;
        }
        m.requests = w.requests;
        m.reqPerSec = w.requests / (w.duration_us / 1e6);
        m.p50Us = w.p50_us;
        m.p99Us = w.p99_us;
        m.connPerReq = w.requests > 0 ? (after - before) / w.requests : NaN;
        m.missing = w.missing;
        m.non2xx = w.non2xx;
        m.socketErrors = w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
        m.probe = await lostUpdateProbe(stack.base, PROBE);
        m.phpErrors = stack.fpm
          .readErrorLog()
          .split('\n')
          .filter((l) => l.trim() !== '').length;
      } catch (err) {
        m.error = (err as Error).message.split('\n')[0]!;
      }
      results.push(m);
      console.log(
        m.error !== undefined
          ? `  round ${round} ${pad(t, 5)} ${pad(v, 22)} FAILED: ${m.error}`
          : `  round ${round} ${pad(t, 5)} ${pad(v, 22)} ${lpad(fmtInt(m.reqPerSec), 7)} req/s  p50 ${lpad(fmtMs(m.p50Us), 6)} ms  p99 ${lpad(fmtMs(m.p99Us), 6)} ms  ` +
              `cpu/req php ${fmtInt(m.phpCpuUs)} redis ${fmtInt(m.redisCpuUs)} µs  conn/req ${m.connPerReq.toFixed(3)}  logouts ${m.missing}  non-2xx ${m.non2xx + m.socketErrors}  ` +
              `lost ${m.probe!.lost} of ${m.probe!.ok} (${m.probe!.sent} at once${m.probe!.failed > 0 ? `, ${m.probe!.failed} failed` : ''})${m.phpErrors > 0 ? `  php-errors ${m.phpErrors}` : ''}`,
      );
    }
  }

  // Summary: medians over rounds; ratios per round against the baseline of the same round and transport.
  console.log('');
  console.log(`summary: median of ${ROUNDS} round(s); ratios against ${BASELINE} of the same round and transport`);
  console.log(
    `  ${pad('transport', 9)} ${pad('variant', 22)} ${lpad('req/s', 7)} ${lpad('ratio', 6)} ${lpad('p50 ms', 7)} ${lpad('p99 ms', 7)} ${lpad('p99 x', 6)} ${lpad('php µs', 6)} ${lpad('redis', 5)} ${lpad('cpu x', 5)} ${lpad('conn/req', 8)} ${lpad('logouts', 7)} ${lpad('non-2xx', 7)} ${lpad('lost', 5)}`,
  );
  const summary: Array<Record<string, unknown>> = [];
  for (const t of TRANSPORTS) {
    for (const v of VARIANTS) {
      if (t === 'tls' && v === 'files') continue;
      const mine = results.filter((r) => r.transport === t && r.variant === v && r.error === undefined);
      const failed = results.filter((r) => r.transport === t && r.variant === v && r.error !== undefined);
      const ratios = mine.map((r) => {
        const base = results.find((b) => b.round === r.round && b.transport === t && b.variant === BASELINE && b.error === undefined);
        return base
          ? {
              rps: r.reqPerSec / base.reqPerSec,
              p99: r.p99Us / base.p99Us,
              cpu: (r.phpCpuUs + r.redisCpuUs) / (base.phpCpuUs + base.redisCpuUs),
            }
          : { rps: NaN, p99: NaN, cpu: NaN };
      });
      const row = {
        transport: t,
        variant: v,
        runs: mine.length,
        failedRuns: failed.length,
        reqPerSec: median(mine.map((r) => r.reqPerSec)),
        ratio: median(ratios.map((r) => r.rps)),
        p50Ms: median(mine.map((r) => r.p50Us)) / 1000,
        p99Ms: median(mine.map((r) => r.p99Us)) / 1000,
        p99Ratio: median(ratios.map((r) => r.p99)),
        phpCpuUs: median(mine.map((r) => r.phpCpuUs)),
        redisCpuUs: median(mine.map((r) => r.redisCpuUs)),
        cpuRatio: median(ratios.map((r) => r.cpu)),
        connPerReq: median(mine.map((r) => r.connPerReq)),
        logouts: mine.reduce((s, r) => s + r.missing, 0),
        non2xx: mine.reduce((s, r) => s + r.non2xx + r.socketErrors, 0),
        lostMax: mine.length > 0 ? Math.max(...mine.map((r) => r.probe?.lost ?? 0)) : NaN,
      };
      summary.push(row);
      console.log(
        mine.length === 0
          ? `  ${pad(t, 9)} ${pad(v, 22)} FAILED: ${failed[0]?.error ?? 'not run'}`
          : `  ${pad(t, 9)} ${pad(v, 22)} ${lpad(fmtInt(row.reqPerSec), 7)} ${lpad(fmtRatio(row.ratio), 6)} ${lpad(row.p50Ms.toFixed(2), 7)} ${lpad(row.p99Ms.toFixed(2), 7)} ` +
              `${lpad(fmtRatio(row.p99Ratio), 6)} ${lpad(fmtInt(row.phpCpuUs), 6)} ${lpad(fmtInt(row.redisCpuUs), 5)} ${lpad(fmtRatio(row.cpuRatio), 5)} ${lpad(row.connPerReq.toFixed(3), 8)} ${lpad(String(row.logouts), 7)} ${lpad(String(row.non2xx), 7)} ${lpad(String(row.lostMax), 5)}`,
      );
    }
  }
  console.log(
    "  (php µs, redis: CPU µs per request of php-fpm and redis-server in the measured runs; cpu x: their sum against the baseline's,",
  );
  console.log('   the figure least moved by other load on the machine)');
  console.log(
    '  (lost: the most updates lost in one round when ' +
      PROBE +
      ' requests hit one session at once; goal for generated: 0, ratio >= 0.9, p99 x <= 1.2)',
  );
  console.log(`bench/http: done in ${Math.round((Date.now() - started) / 1000)} s`);
  if (args.has('json')) {
    writeFileSync(
      args.get('json')!,
      JSON.stringify(
        {
          settings: {
            rounds: ROUNDS,
            duration: DURATION,
            warmup: WARMUP,
            sessions: SESSIONS,
            workers: WORKERS,
            threads: THREADS,
            connections: CONNECTIONS,
            probe: PROBE,
            cpus: cpus().length,
            loadavg: loadavg(),
          },
          runs: results,
          summary,
        },
        null,
        2,
      ) + '\n',
    );
  }
} finally {
  clearTimeout(watchdog);
  await cleanup();
}

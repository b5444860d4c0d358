/**
 * Instructions per request of the session handlers (issue 11 item 4), counted, not timed: on a machine
 * that other jobs share, timings move by tens of percent between runs, instruction counts do not.
 *
 * Each variant runs the benchmark's application (bench/http/app.php, `?a=hit` on a returning user's
 * ~1 KB session) as `php-cgi -T N` under valgrind's callgrind: php-cgi's -T repeats the script N times,
 * each a whole request (php_request_startup ... php_request_shutdown, php-src sapi/cgi/cgi_main.c), in
 * one process with OPcache on (opcache.enable=1, as under PHP-FPM) and persistent connections kept
 * between the requests, as a PHP-FPM worker keeps them. The count for N=HI minus the count for N=LO,
 * divided by HI-LO, is the cost of one warm request: start-up, compilation and the first connection
 * cancel out.
 *
 *   npx tsx bench/handler-instructions.ts [HI] [LO]        (default 110 and 10; about a minute)
 *
 * Variants:
 *   no-session          the application's request without a session handler being used (its floor:
 *                       the `files` handler with a new session; only the relative figures matter)
 *   phpredis-lock       phpredis's `redis` handler, persistent=1, redis.session.locking_enabled=1
 *   generated           the generated handler (bootstrap as auto_prepend_file, its ini fragment's
 *                       settings, locking on), key from a key file
 *   generated-env-key   the same with the key in SESSION_MIGRATE_KEY
 *
 * What this does not count: the kernel (system calls: phpredis's six round trips against the
 * generated handler's two), and Redis (its Lua scripts against phpredis's commands); bench/handler-fpm.ts
 * measures CPU time of php-fpm and redis-server, bench/http the whole. Needs valgrind
 * (Debian: apt-get install valgrind), php-cgi and redis-server.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderArtifacts, writeArtifacts } from '@session-migrate/generate';
import { startRedis } from '../packages/cli/src/sandbox.ts';
import { APP_PHP } from './http/common.ts';

const HI = Number(process.argv[2] ?? 110);
const LO = Number(process.argv[3] ?? 10);
if (!(HI > LO && LO >= 1)) throw new Error('usage: handler-instructions.ts [HI] [LO] with HI > LO >= 1');
const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='; // a fixed test key (never a real one)

for (const [program, pkg] of [
  ['valgrind', 'valgrind'],
  ['php-cgi', 'php-cgi'],
] as const) {
  if (spawnSync(program, ['--version'], { stdio: 'ignore' }).error !== undefined) {
    console.error(`bench/handler-instructions: ${program} is needed (Debian: apt-get install ${pkg})`);
    process.exit(2);
  }
}

const root = mkdtempSync(join(tmpdir(), 'sm-bench-instr-'));
const redis = await startRedis();
try {
  const keyFile = join(root, 'master.key');
  writeFileSync(keyFile, `${KEY}\n`);
  chmodSync(keyFile, 0o600);
  const artifacts = join(root, 'artifacts');
  writeArtifacts(artifacts, renderArtifacts({ installDir: artifacts, redis: { host: '127.0.0.1', port: redis.port } }));
  const app = join(root, 'index.php');
  writeFileSync(app, APP_PHP);
  // Everything php-fpm would have from php.ini (test/support/http.ts), and nothing from /etc/php.
  const base = [
    '-n',
    '-d',
    'extension=igbinary',
    '-d',
    'extension=redis',
    '-d',
    'zend_extension=opcache',
    '-d',
    'opcache.enable=1',
    '-d',
    'opcache.file_update_protection=0',
    '-d',
    'session.use_strict_mode=1',
    '-d',
    'session.lazy_write=1',
    '-d',
    'session.serialize_handler=php',
    '-d',
    'session.gc_probability=0',
    '-d',
    'max_execution_time=30',
    '-d',
    'log_errors=1',
    '-d',
    `error_log=${join(root, 'php-error.log')}`,
    '-d',
    `session.save_path=${root}`,
  ];
  // The generated ini fragment's settings that matter here (php-cgi -c would replace php.ini).
  const generatedIni = [
    '-d',
    `auto_prepend_file=${join(artifacts, 'session-migrate-bootstrap.php')}`,
    '-d',
    'redis.pconnect.pool_pattern=i',
  ];
  const variants: Array<{ name: string; ini: string[]; env: Record<string, string> }> = [
    { name: 'no-session', ini: [], env: {} },
    {
      name: 'phpredis-lock',
      ini: [
        '-d',
        'session.save_handler=redis',
        '-d',
        `session.save_path=tcp://127.0.0.1:${redis.port}?persistent=1&prefix=BENCH:`,
        '-d',
        'redis.session.locking_enabled=1',
      ],
      env: {},
    },
    { name: 'generated', ini: generatedIni, env: { SESSION_MIGRATE_KEY_FILE: keyFile } },
    { name: 'generated-env-key', ini: generatedIni, env: { SESSION_MIGRATE_KEY: KEY } },
  ];
  const cgi = (
    ini: string[],
    env: Record<string, string>,
    query: string,
    cookie: string | undefined,
    repeat?: number,
  ): ReturnType<typeof spawnSync> => {
    const args = [...base, ...ini, ...(repeat !== undefined ? ['-T', String(repeat)] : []), app];
    const cgiEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      REQUEST_METHOD: 'GET',
      QUERY_STRING: query,
      SCRIPT_FILENAME: app,
      REDIRECT_STATUS: '200',
      ...(cookie !== undefined ? { HTTP_COOKIE: `PHPSESSID=${cookie}` } : {}),
      ...env,
    };
    return repeat === undefined
      ? spawnSync('php-cgi', args, { env: cgiEnv, encoding: 'utf8' })
      : spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', 'php-cgi', ...args], {
          env: cgiEnv,
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        });
  };
  const counts = new Map<string, number>();
  for (const v of variants) {
    let sid: string | undefined;
    if (v.name !== 'no-session') {
      const created = cgi(v.ini, v.env, 'a=new&k=1', undefined);
      sid = /PHPSESSID=([^;\s]+)/.exec(String(created.stdout))?.[1];
      if (sid === undefined)
        throw new Error(
          `${v.name}: creating a session failed: ${String(created.stdout).slice(0, 300)} ${String(created.stderr).slice(0, 300)}`,
        );
    }
    const collected = (repeat: number): number => {
      const r = cgi(v.ini, v.env, 'a=hit', sid, repeat);
      const m = /Collected : (\d+)/.exec(String(r.stderr));
      if (r.status !== 0 || m === null)
        throw new Error(`${v.name}: valgrind php-cgi failed (exit ${r.status}): ${String(r.stderr).slice(-400)}`);
      if (v.name !== 'no-session' && !String(r.stdout).includes('"n":'))
        throw new Error(`${v.name}: the session did not open: ${String(r.stdout).slice(0, 300)}`);
      return Number(m[1]);
    };
    counts.set(v.name, (collected(HI) - collected(LO)) / (HI - LO));
  }
  const floor = counts.get('no-session')!;
  const native = counts.get('phpredis-lock')! - floor;
  const php = spawnSync(
    'php',
    ['-n', '-d', 'extension=igbinary', '-d', 'extension=redis', '-r', 'echo PHP_VERSION, ", phpredis ", phpversion("redis");'],
    { encoding: 'utf8' },
  ).stdout;
  console.log(
    `instructions per warm request (callgrind, php-cgi -T ${HI} minus -T ${LO}, OPcache on; PHP ${php}); user space only, no kernel, no Redis`,
  );
  console.log(`  ${'variant'.padEnd(20)} ${'total'.padStart(9)} ${'session'.padStart(9)}  session vs phpredis-lock`);
  for (const v of variants) {
    const total = counts.get(v.name)!;
    const session = total - floor;
    console.log(
      `  ${v.name.padEnd(20)} ${total.toFixed(0).padStart(9)} ${v.name === 'no-session' ? '' : session.toFixed(0).padStart(9)}  ${v.name === 'no-session' ? '' : `${(session / native).toFixed(2)}x`}`,
    );
  }
  console.log('  (session = total minus no-session: the handler, session_start/write and the (un)serializer)');
} finally {
  await redis.stop();
  rmSync(root, { recursive: true, force: true });
}

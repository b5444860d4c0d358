/**
 * Per-request cost of the generated handler under php-fpm (issue 11 item 4): one php-fpm worker behind
 * nginx, one wrk connection (requests one after another, so the time per request is what PHP, the
 * round trips and nginx spend on it), for:
 *
 *   no-session            a page that never starts a session, without the bootstrap (the floor)
 *   no-session+bootstrap  the same page with the generated bootstrap prepended (what such requests pay)
 *   phpredis-lock         phpredis's `redis` handler, persistent, redis.session.locking_enabled=1
 *   generated             the generated handler (defaults: locking on, persistent), key from a key file
 *   generated-env-key     the same with the key in SESSION_MIGRATE_KEY (no file read)
 *   generated-nolock      the same with locking off
 *
 * each on a returning user's ~1 KB session that every request reads and rewrites (bench/http/app.php).
 * Rounds are interleaved; the best round per variant is printed as µs per request (wall), with the
 * difference to phpredis-lock, and the CPU µs per request of php-fpm, redis-server and nginx (the
 * lowest of the rounds: /proc/<pid>/stat), with php-fpm + redis-server against phpredis-lock's. On a
 * machine other jobs share, the CPU figures are the ones to compare: they count this work only.
 *
 *   npx tsx bench/handler-fpm.ts [SECONDS] [ROUNDS]     (default 3 s per run, 3 rounds)
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderArtifacts, writeArtifacts } from '@session-migrate/generate';
import { startRedis } from '../packages/cli/src/sandbox.ts';
import { findProgram, makeDocroot, startPhpStack, type PhpFpmOptions, type PhpStack } from '../test/support/http.ts';
import { APP_PHP, SessionHttp, cpuSeconds, run } from './http/common.ts';

const SECONDS = Number(process.argv[2] ?? 3);
const ROUNDS = Number(process.argv[3] ?? 3);
const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='; // a fixed test key (never a real one)

const root = mkdtempSync(join(tmpdir(), 'sm-bench-fpm-'));
const redis = await startRedis();
const wrk = findProgram(['wrk'], 'wrk', 'WRK_BIN');
const docroot = makeDocroot({ 'index.php': APP_PHP, 'plain.php': '<?php\necho "ok\\n";\n' });
const stacks: PhpStack[] = [];
try {
  const keyFile = join(root, 'master.key');
  writeFileSync(keyFile, `${KEY}\n`);
  chmodSync(keyFile, 0o600);
  const artifacts = (locking: boolean): string => {
    const dir = mkdtempSync(join(root, 'artifacts-'));
    const a = renderArtifacts({ installDir: dir, redis: { host: '127.0.0.1', port: redis.port }, locking: { enabled: locking } });
    writeArtifacts(dir, a);
    return join(dir, a[1]!.path);
  };
  const withLock = artifacts(true);
  const variants: Array<{ name: string; path: string; fpm: PhpFpmOptions }> = [
    { name: 'no-session', path: '/plain.php', fpm: {} },
    { name: 'no-session+bootstrap', path: '/plain.php', fpm: { iniFiles: [withLock], env: { SESSION_MIGRATE_KEY_FILE: keyFile } } },
    {
      name: 'phpredis-lock',
      path: '/index.php?a=hit',
      fpm: {
        ini: {
          'session.save_handler': 'redis',
          'session.save_path': `tcp://127.0.0.1:${redis.port}?persistent=1&prefix=BENCH:`,
          'session.use_strict_mode': 1,
          'redis.session.locking_enabled': 1,
          'redis.session.lock_retries': 100,
          'redis.session.lock_wait_time': 20000,
        },
      },
    },
    { name: 'generated', path: '/index.php?a=hit', fpm: { iniFiles: [withLock], env: { SESSION_MIGRATE_KEY_FILE: keyFile } } },
    { name: 'generated-env-key', path: '/index.php?a=hit', fpm: { iniFiles: [withLock], env: { SESSION_MIGRATE_KEY: KEY } } },
    {
      name: 'generated-nolock',
      path: '/index.php?a=hit',
      fpm: { iniFiles: [artifacts(false)], env: { SESSION_MIGRATE_KEY_FILE: keyFile } },
    },
  ];
  const best = new Map<string, number>();
  const started = new Map<string, { stack: PhpStack; sid?: string }>();
  for (const v of variants) {
    const stack = await startPhpStack({ docroot, fpm: { workers: 1, ...v.fpm } });
    stacks.push(stack);
    let sid: string | undefined;
    if (v.path.startsWith('/index.php')) {
      const http = new SessionHttp(stack.base);
      const created = await http.get('/index.php?a=new&k=1');
      http.close();
      if (created.setCookie === undefined)
        throw new Error(`${v.name}: no session cookie (HTTP ${created.status}: ${created.body.slice(0, 200)})`);
      sid = created.setCookie;
    }
    started.set(v.name, { stack, ...(sid !== undefined ? { sid } : {}) });
  }
  // CPU per request of each part: php-fpm's workers, nginx, redis-server. The lowest of the rounds, as
  // for wall time: other jobs on the machine only ever add to it (cache and scheduler interference).
  const cpu = new Map<string, Array<{ php: number; nginx: number; redis: number }>>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const { stack, sid } = started.get(v.name)!;
      const header = sid !== undefined ? ['-H', `Cookie: PHPSESSID=${sid}`] : [];
      const before = {
        php: cpuSeconds({ pgid: stack.fpm.pid }),
        nginx: cpuSeconds({ pgid: stack.nginx.pid }),
        redis: cpuSeconds({ pid: redis.pid }),
      };
      const r = await run(wrk, ['-t1', '-c1', `-d${SECONDS}s`, ...header, `${stack.base}${v.path}`], { timeoutMs: (SECONDS + 30) * 1000 });
      const after = {
        php: cpuSeconds({ pgid: stack.fpm.pid }),
        nginx: cpuSeconds({ pgid: stack.nginx.pid }),
        redis: cpuSeconds({ pid: redis.pid }),
      };
      const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
      const total = /(\d+) requests in/.exec(r.stdout);
      if (r.status !== 0 || m === null || total === null || /Non-2xx/.test(r.stdout))
        throw new Error(`${v.name}: wrk failed: ${r.stdout}${r.stderr}`);
      const us = 1e6 / Number(m[1]);
      if (!best.has(v.name) || us < best.get(v.name)!) best.set(v.name, us);
      const n = Number(total[1]);
      const perReq = (k: 'php' | 'nginx' | 'redis'): number => ((after[k] - before[k]) * 1e6) / n;
      cpu.set(v.name, [...(cpu.get(v.name) ?? []), { php: perReq('php'), nginx: perReq('nginx'), redis: perReq('redis') }]);
    }
  }
  const low = (xs: number[]): number => Math.min(...xs);
  const base = best.get('phpredis-lock')!;
  const baseCpu = low(cpu.get('phpredis-lock')!.map((c) => c.php + c.redis));
  console.log(`handler under php-fpm: 1 worker, 1 connection, ${SECONDS} s x ${ROUNDS} rounds`);
  console.log('  wall: best round, µs per request; CPU: lowest of the rounds, µs of CPU per request (clock ticks of 10 ms, so');
  console.log('  short runs are coarse); php-fpm + redis-server is what a handler changes (nginx and wrk do the same work)');
  console.log(
    `  ${'variant'.padEnd(22)} ${'wall'.padStart(6)}  ${'php-fpm'.padStart(7)} ${'redis'.padStart(6)} ${'nginx'.padStart(6)}  ${'php+redis vs phpredis-lock'}`,
  );
  for (const v of variants) {
    const us = best.get(v.name)!;
    const c = cpu.get(v.name)!;
    const php = low(c.map((x) => x.php));
    const rds = low(c.map((x) => x.redis));
    const ngx = low(c.map((x) => x.nginx));
    const vs = v.path.startsWith('/index.php')
      ? `${((php + rds) / baseCpu).toFixed(2)}x (wall ${us - base >= 0 ? '+' : ''}${(us - base).toFixed(0)} µs)`
      : '';
    console.log(
      `  ${v.name.padEnd(22)} ${us.toFixed(0).padStart(6)}  ${php.toFixed(0).padStart(7)} ${rds.toFixed(0).padStart(6)} ${ngx.toFixed(0).padStart(6)}  ${vs}`,
    );
  }
} finally {
  for (const s of stacks) await s.stop();
  await redis.stop();
  rmSync(docroot, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
}

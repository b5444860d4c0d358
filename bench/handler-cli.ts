/**
 * CLI-loop profile of the generated handler (issue 11 item 4): microseconds of PHP per request for a
 * returning user's session (build the handler, session_start(), change, session_write_close()), for
 * phpredis's native handler (the baseline, measured in the same run), the generated handler (locking on
 * and off, persistent and not), and the single-class handler of before the split (`old`, from git).
 *
 *   npx tsx bench/handler-cli.ts [N] [ROUNDS]      (default 3000 requests, 3 interleaved rounds)
 *   BENCH_OLD_REF=<commit>                         the commit whose templates/EncryptedRedisSessionHandler.php.tpl
 *                                                  is `old` (default 1535325; skipped if git cannot show it)
 *
 * Prints, per variant, the best round's µs/request with its phases (build = the bootstrap's work on the
 * first session_start(), start = session_start(), close = session_write_close()), and the ratio to
 * phpredis with locking. The whole request cost through nginx + php-fpm is bench/http (npm run
 * bench:http); this isolates the PHP work of the handler. Figures go to docs/performance.md only from
 * a quiet machine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderArtifacts, writeArtifacts } from '@session-migrate/generate';
import { startRedis } from '../packages/cli/src/sandbox.ts';

const N = Number(process.argv[2] ?? 3000);
const ROUNDS = Number(process.argv[3] ?? 3);
const OLD_REF = process.env.BENCH_OLD_REF ?? '1535325';
const HERE = import.meta.dirname;
const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='; // a fixed test key (never a real one)

interface Result {
  variant: string;
  n: number;
  usPerRequest: number;
  phases: Record<string, number>;
}

const root = mkdtempSync(join(tmpdir(), 'sm-bench-handler-'));
const redis = await startRedis();
try {
  const generated = join(root, 'generated');
  writeArtifacts(generated, renderArtifacts({ installDir: generated, redis: { host: '127.0.0.1', port: redis.port } }));
  let old: string | undefined = join(root, 'old');
  try {
    const template = execFileSync('git', ['show', `${OLD_REF}:templates/EncryptedRedisSessionHandler.php.tpl`], {
      cwd: HERE,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    writeArtifacts(old, [
      { path: 'EncryptedRedisSessionHandler.php', contents: template.replaceAll('{{NAMESPACE}}', 'SessionMigrate'), mode: 0o644 },
    ]);
  } catch {
    old = undefined;
    process.stderr.write(`bench: no old handler (git show ${OLD_REF} failed); skipping it\n`);
  }
  const keyFile = join(root, 'master.key');
  writeFileSync(keyFile, `${KEY}\n`);
  chmodSync(keyFile, 0o600);

  const variants: Array<[string, string]> = [
    ['native', ''],
    ['native-locking', ''],
    ['generated', generated],
    ['generated-nolock', generated],
    ['generated-nopersist', generated],
    ...(old !== undefined ? [['old', old] as [string, string]] : []),
  ];
  const best = new Map<string, Result>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [variant, dir] of variants) {
      // the generated ini fragment's redis.pconnect.pool_pattern, for the generated handler
      const fragment = variant.startsWith('generated') ? ['-d', 'redis.pconnect.pool_pattern=i'] : [];
      const run = spawnSync(
        'php',
        [
          '-n',
          '-d',
          'extension=igbinary',
          '-d',
          'extension=redis',
          ...fragment,
          join(HERE, 'php/handler-loop.php'),
          variant,
          String(N),
          String(redis.port),
          dir,
        ],
        {
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: root, SESSION_MIGRATE_KEY_FILE: keyFile },
        },
      );
      if (run.status !== 0) throw new Error(`${variant}: ${run.stderr || run.stdout}`);
      const r = JSON.parse(run.stdout.trim().split('\n').pop()!) as Result;
      const prev = best.get(variant);
      if (prev === undefined || r.usPerRequest < prev.usPerRequest) best.set(variant, r);
    }
  }
  const base = best.get('native-locking')!.usPerRequest;
  const php = spawnSync(
    'php',
    ['-n', '-d', 'extension=igbinary', '-d', 'extension=redis', '-r', 'echo PHP_VERSION, " phpredis ", phpversion("redis");'],
    { encoding: 'utf8' },
  ).stdout;
  console.log(`handler CLI loop: ${N} requests x ${ROUNDS} rounds (best round), PHP ${php}, Redis on loopback`);
  console.log('variant               µs/request   build   start   close   vs phpredis+locking');
  for (const [variant] of variants) {
    const r = best.get(variant)!;
    console.log(
      `${variant.padEnd(20)} ${r.usPerRequest.toFixed(1).padStart(10)} ${String(r.phases.build).padStart(7)} ${String(r.phases.start).padStart(7)} ${String(r.phases.close).padStart(7)}   ${(r.usPerRequest / base).toFixed(2)}x`,
    );
  }
} finally {
  await redis.stop();
  rmSync(root, { recursive: true, force: true });
}

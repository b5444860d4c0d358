/**
 * plan --php-ini: the TTL of migrated sessions against the session.gc_maxlifetime PHP runs with.
 * readSessionIni (packages/php-ini session-ini.ts) must give what real PHP gives: `php -c FILE` with
 * PHP_INI_SCAN_DIR for php.ini + conf.d, and a real php-fpm (behind nginx) for a pool's php_value /
 * php_admin_value. Then the CLI: the ini's value is the default, a shorter --gc-maxlifetime is refused
 * (exit 2, one line, nothing written) unless --allow-shorter-ttl, a longer one is noted, and a file
 * that is missing, unreadable, not a file or not parseable is one line and exit 2, nothing written.
 * Real php, php-fpm, nginx and redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyFile } from '@session-migrate/envelope';
import { readSessionIni } from '@session-migrate/php-ini';
import { freePort, startRedis, type RedisServer } from './support/servers.ts';
import { findPhpFpm, makeDocroot, startNginx, type Nginx } from './support/http.ts';
import { BIN, cli, planArgs, usageLine, type CliResult } from './support/migrate-cli.ts';

const KEYS = ['session.gc_maxlifetime', 'session.save_handler', 'session.save_path', 'session.serialize_handler'] as const;
const PRINT = `echo json_encode(array_combine(${JSON.stringify(KEYS).replace(/"/g, "'")}, array_map('ini_get', ${JSON.stringify(KEYS).replace(/"/g, "'")})));`;

let root: string;
let redis: RedisServer;
let keyFile: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-plan-ini-'));
  chmodSync(root, 0o755); // the unreadable-file case runs the CLI as another user
  keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Writes `files` (relative path -> text) under a new directory in root; returns it. */
function tree(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

/** ini_get() of KEYS from `php -n`-free `php -c FILE` with PHP_INI_SCAN_DIR = scanDir (the oracle). */
function phpIniGet(iniFile: string, scanDir: string): Record<string, string> {
  const r = spawnSync('php', ['-c', iniFile, '-r', PRINT], { encoding: 'utf8', env: { ...process.env, PHP_INI_SCAN_DIR: scanDir } });
  if (r.status !== 0) throw new Error(`php: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
}

function ours(opts: Parameters<typeof readSessionIni>[0]): Record<string, string> {
  const r = readSessionIni(opts);
  if (!r.ok) throw new Error(r.error);
  return Object.fromEntries(KEYS.map((k) => [k, r.values[k].value]));
}

describe('readSessionIni gives what php -c FILE gives (php.ini + scan directory)', () => {
  it('php.ini alone; a php.ini with conf.d beside it (the default scan dir), files in byte order, only *.ini', () => {
    const d = tree('cli-a', {
      'php.ini': '[PHP]\nsession.gc_maxlifetime = 3000\nsession.save_path = "/var/lib/php/sessions"\n',
      'conf.d/20-sessions.ini': 'session.gc_maxlifetime = 7200\n',
      'conf.d/10-early.ini': 'session.gc_maxlifetime = 5000\nsession.serialize_handler = php_serialize\n',
      'conf.d/99-not-ini.conf': 'session.gc_maxlifetime = 9\n',
      'conf.d/30-upper.INI': 'session.gc_maxlifetime = 11\n',
    });
    const ini = join(d, 'php.ini');
    const expected = phpIniGet(ini, join(d, 'conf.d'));
    expect(expected['session.gc_maxlifetime']).toBe('7200');
    expect(ours({ iniFile: ini })).toEqual(expected);
    // --php-ini-scan-dir '' reads the php.ini alone
    const alone = phpIniGet(ini, '');
    expect(alone['session.gc_maxlifetime']).toBe('3000');
    expect(ours({ iniFile: ini, scanDir: '' })).toEqual(alone);
  });
  it('several scan directories (PHP_INI_SCAN_DIR a:b), ${VAR}, quoted and section-scoped values', () => {
    const d = tree('cli-b', {
      'php.ini': 'session.gc_maxlifetime = "1800"\n[PATH=/var/www]\nsession.gc_maxlifetime = 60\n',
      'a/50.ini': 'session.gc_maxlifetime = ${SM_TEST_GC}\n',
      'b/10.ini': '[Session]\nsession.serialize_handler = php_binary\n',
    });
    const ini = join(d, 'php.ini');
    const scan = `${join(d, 'a')}:${join(d, 'b')}`;
    const expected = (() => {
      const r = spawnSync('php', ['-c', ini, '-r', PRINT], {
        encoding: 'utf8',
        env: { ...process.env, PHP_INI_SCAN_DIR: scan, SM_TEST_GC: '4321' },
      });
      return JSON.parse(r.stdout.trim()) as Record<string, string>;
    })();
    expect(expected['session.gc_maxlifetime']).toBe('4321');
    expect(ours({ iniFile: ini, scanDir: scan, env: { SM_TEST_GC: '4321' } })).toEqual(expected);
    // the value names the variable it was expanded from (plan warns: PHP reads its own environment)
    const r = readSessionIni({ iniFile: ini, scanDir: scan, env: { SM_TEST_GC: '4321' } });
    expect(r.ok && r.values['session.gc_maxlifetime']).toMatchObject({ file: join(d, 'a/50.ini'), line: 1, envVars: ['SM_TEST_GC'] });
    expect(r.ok && r.values['session.serialize_handler'].envVars).toBeUndefined();
  });
  it('${VAR} is expanded from the environment of the PHP that reads the file: another environment, another value', () => {
    const d = tree('cli-env', { 'php.ini': 'session.gc_maxlifetime = ${SM_TEST_GC}\nsession.serialize_handler = "${SM_TEST_SER}"\n' });
    const ini = join(d, 'php.ini');
    for (const [gc, ser] of [
      ['7200', 'php_serialize'],
      ['60', 'php_binary'],
    ] as const) {
      const r = spawnSync('php', ['-c', ini, '-r', PRINT], {
        encoding: 'utf8',
        env: { ...process.env, PHP_INI_SCAN_DIR: '', SM_TEST_GC: gc, SM_TEST_SER: ser },
      });
      const expected = JSON.parse(r.stdout.trim()) as Record<string, string>;
      expect(expected).toMatchObject({ 'session.gc_maxlifetime': gc, 'session.serialize_handler': ser });
      expect(ours({ iniFile: ini, scanDir: '', env: { SM_TEST_GC: gc, SM_TEST_SER: ser } })).toEqual(expected);
    }
  });
});

/** A php-fpm started from an operator-like layout: php.ini, conf.d, php-fpm.conf including pool.d/*.conf. */
interface FpmLayout {
  dir: string;
  ini: string;
  fpmConf: string;
  poolFile: string;
}

function fpmLayout(port: number): FpmLayout {
  const d = tree('fpm', {
    'php.ini': 'session.gc_maxlifetime = 1440\nsession.serialize_handler = php\n',
    'conf.d/20-session.ini': 'session.gc_maxlifetime = 3600\n',
    'pool.d/www.conf': [
      '[www]',
      `listen = 127.0.0.1:${port}`,
      'pm = static',
      'pm.max_children = 1',
      'php_value[session.gc_maxlifetime] = 3',
      'php_admin_value[session.gc_maxlifetime] = 86400',
      'php_admin_value[session.gc_maxlifetime] = 5', // the first line of a key wins in a pool
      'php_value[session.serialize_handler] = php_serialize',
      'php_admin_value[session.save_path] = "/var/lib/php/sessions/$pool"',
      '',
    ].join('\n'),
    'pool.d/api.conf': ['[api]', `listen = ${join(root, 'fpm', 'api.sock')}`, 'pm = static', 'pm.max_children = 1', ''].join('\n'),
  });
  const fpmConf = join(d, 'php-fpm.conf');
  writeFileSync(
    fpmConf,
    `[global]\npid = ${join(d, 'fpm.pid')}\nerror_log = ${join(d, 'fpm.log')}\ninclude = ${join(d, 'pool.d')}/*.conf\n`,
  );
  return { dir: d, ini: join(d, 'php.ini'), fpmConf, poolFile: join(d, 'pool.d/www.conf') };
}

async function waitForPort(port: number, child: ChildProcess, log: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`php-fpm exited: ${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => (s.end(), res(true)));
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('php-fpm did not listen');
}

describe('with a php-fpm pool (real php-fpm behind nginx as the oracle)', () => {
  let layout: FpmLayout;
  let fpm: ChildProcess | undefined;
  let nginx: Nginx | undefined;
  let fromFpm: Record<string, string>;

  beforeAll(async () => {
    const port = await freePort();
    layout = fpmLayout(port);
    fpm = spawn(findPhpFpm(), ['-F', '-R', '-c', layout.ini, '-y', layout.fpmConf], {
      stdio: 'ignore',
      env: { ...process.env, PHP_INI_SCAN_DIR: join(layout.dir, 'conf.d') },
    });
    await waitForPort(port, fpm, join(layout.dir, 'fpm.log'));
    const docroot = makeDocroot({ 'index.php': `<?php ${PRINT}` });
    nginx = await startNginx({ fpm: `127.0.0.1:${port}`, docroot });
    const res = await fetch(`${nginx.base}/index.php`);
    fromFpm = JSON.parse(await res.text()) as Record<string, string>;
  });
  afterAll(async () => {
    await nginx?.stop();
    if (fpm !== undefined && fpm.exitCode === null) {
      const exited = new Promise((r) => fpm!.once('exit', r));
      fpm.kill('SIGTERM');
      await exited;
    }
  });

  it("the pool's php_admin_value wins over php_value, conf.d and php.ini, as php-fpm applies them", () => {
    expect(fromFpm['session.gc_maxlifetime']).toBe('86400');
    const opts = { iniFile: layout.ini, fpmConf: layout.fpmConf, fpmPool: 'www' };
    expect(ours(opts)).toEqual(fromFpm);
    // the pool file alone gives the same
    expect(ours({ iniFile: layout.ini, fpmConf: layout.poolFile })).toEqual(fromFpm);
    const two = readSessionIni({ iniFile: layout.ini, fpmConf: layout.fpmConf });
    expect(two).toEqual({ ok: false, error: `--fpm-pool ${layout.fpmConf}: defines 2 pools (api, www): name one with --fpm-pool-name` });
  });

  const planFile = () => join(root, 'plan.json');
  const run = (...extra: string[]): CliResult => {
    rmSync(planFile(), { force: true });
    const dir = join(root, 'sessions');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return cli(
      planArgs({ dir, target: redis.url, keyFile, planFile: planFile(), artifactsDir: join(root, 'artifacts') }, '--json', ...extra),
    );
  };
  const ttlOf = (r: CliResult): number => (JSON.parse(r.stdout) as { php: { gcMaxlifetime: number } }).php.gcMaxlifetime;
  const iniArgs = () => ['--php-ini', layout.ini, '--fpm-pool', layout.fpmConf, '--fpm-pool-name', 'www'];

  it("plan without --gc-maxlifetime takes the pool's value, saying where it was set", () => {
    const r = run(...iniArgs());
    expect(r.status, r.stderr).toBe(0);
    expect(ttlOf(r)).toBe(Number(fromFpm['session.gc_maxlifetime']));
    expect(r.stderr).toContain(
      `note: TTL of migrated sessions 86400 s: session.gc_maxlifetime from ${layout.poolFile}:6 (pool php_admin_value)`,
    );
    // the pool's serialize_handler is not --serialize-handler's default: said
    expect(r.stderr).toContain('warning: session.serialize_handler is php_serialize in the PHP configuration');
  });
  it('the plan records where its TTL came from and prints it; a plan without the record (older) still applies', () => {
    const fromOf = (r: CliResult): unknown => (JSON.parse(r.stdout) as { php: { gcMaxlifetimeFrom?: unknown } }).php.gcMaxlifetimeFrom;
    const r = run(...iniArgs());
    expect(r.status, r.stderr).toBe(0);
    expect(fromOf(r)).toEqual({
      kind: 'php-ini',
      phpIni: layout.ini,
      pool: 'www',
      file: layout.poolFile,
      line: 6,
      origin: 'pool php_admin_value',
    });
    expect(fromOf(run(...iniArgs(), '--gc-maxlifetime', '90000'))).toEqual({ kind: 'option' });
    expect(fromOf(run())).toEqual({ kind: 'default' });
    // the text output names it beside the TTL policy
    const text = cli(
      planArgs({
        dir: join(root, 'sessions'),
        target: redis.url,
        keyFile,
        planFile: planFile(),
        artifactsDir: join(root, 'artifacts'),
      }).concat(iniArgs()),
    );
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `  TTL from    86400 s: session.gc_maxlifetime from ${layout.poolFile}:6 (pool php_admin_value); --php-ini ${layout.ini}, pool www\n`,
    );
    // an older plan (no gcMaxlifetimeFrom) loads and applies; a malformed record is refused
    const plan = JSON.parse(readFileSync(planFile(), 'utf8')) as { php: Record<string, unknown> };
    delete plan.php.gcMaxlifetimeFrom;
    writeFileSync(planFile(), JSON.stringify(plan));
    const applied = cli(['apply', '--plan', planFile()]);
    expect(applied.status, applied.stderr).toBe(0);
    plan.php.gcMaxlifetimeFrom = { kind: 'php-ini', phpIni: 7 };
    writeFileSync(planFile(), JSON.stringify(plan));
    expect(usageLine(cli(['apply', '--plan', planFile()]))).toBe(
      `session-migrate: plan ${planFile()}: missing or malformed fields; re-run plan`,
    );
  });
  it('a session.gc_maxlifetime from ${VAR} of plan environment: one warning with the variable, file:line and number', () => {
    const d = tree('cli-env-plan', { 'php.ini': 'session.gc_maxlifetime = ${SM_TEST_PLAN_GC}\n' });
    const ini = join(d, 'php.ini');
    const r = cli(
      planArgs({
        dir: join(root, 'sessions'),
        target: redis.url,
        keyFile,
        planFile: planFile(),
        artifactsDir: join(root, 'artifacts'),
      }).concat(['--php-ini', ini, '--php-ini-scan-dir', '']),
      { SM_TEST_PLAN_GC: '5400' },
    );
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.includes('SM_TEST_PLAN_GC'));
    expect(lines).toEqual([
      `session-migrate: warning: session.gc_maxlifetime 5400 (${ini}:1) is expanded from \${SM_TEST_PLAN_GC}, read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
    ]);
  });
  it('a shorter --gc-maxlifetime is refused: exit 2, one line naming both values and the file, no plan written', () => {
    const r = run(...iniArgs(), '--gc-maxlifetime', '1440');
    const line = usageLine(r);
    expect(line).toContain('--gc-maxlifetime 1440 is shorter than session.gc_maxlifetime 86400');
    expect(line).toContain(layout.poolFile);
    expect(line).toContain('--allow-shorter-ttl');
    expect(existsSync(planFile())).toBe(false);
  });
  it('--allow-shorter-ttl takes it, with a warning; a longer value is taken with a note', () => {
    const shorter = run(...iniArgs(), '--gc-maxlifetime', '1440', '--allow-shorter-ttl');
    expect(shorter.status, shorter.stderr).toBe(0);
    expect(ttlOf(shorter)).toBe(1440);
    expect(shorter.stderr).toMatch(/warning: --gc-maxlifetime 1440 is shorter than session.gc_maxlifetime 86400 .*\(--allow-shorter-ttl\)/);
    const longer = run(...iniArgs(), '--gc-maxlifetime', '90000');
    expect(longer.status, longer.stderr).toBe(0);
    expect(ttlOf(longer)).toBe(90000);
    expect(longer.stderr).toContain('note: --gc-maxlifetime 90000 is longer than session.gc_maxlifetime 86400');
  });
  it('without --php-ini nothing changes: 1440, or --gc-maxlifetime', () => {
    const plain = run();
    expect(plain.status, plain.stderr).toBe(0);
    expect(ttlOf(plain)).toBe(1440);
    expect(plain.stderr).not.toContain('session.gc_maxlifetime');
    expect(ttlOf(run('--gc-maxlifetime', '60'))).toBe(60);
  });
});

describe('plan --php-ini with a file it cannot use: one line, exit 2, nothing written', () => {
  const target = 'redis://127.0.0.1:1/0'; // never reached
  const attempt = (extra: string[], asUser?: number): { line: string; plan: string; artifacts: string } => {
    const plan = join(root, 'bad-plan.json');
    const artifacts = join(root, 'bad-artifacts');
    const dir = join(root, 'bad-sessions');
    mkdirSync(dir, { recursive: true });
    const args = planArgs({ dir, target, keyFile, planFile: plan, artifactsDir: artifacts }, ...extra);
    let r: CliResult;
    if (asUser === undefined) r = cli(args);
    else {
      const s = spawnSync(process.execPath, [BIN, ...args], {
        encoding: 'utf8',
        uid: asUser,
        gid: asUser,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
      r = { status: s.status ?? -1, stdout: s.stdout, stderr: s.stderr };
    }
    const line = usageLine(r);
    expect(existsSync(plan)).toBe(false);
    expect(existsSync(artifacts)).toBe(false);
    return { line, plan, artifacts };
  };

  it('missing, a directory, binary, a syntax error (with its line, as PHP reports it), a missing scan dir, no such pool', () => {
    const d = tree('bad', {
      'syntax.ini': 'session.gc_maxlifetime = 7200\nfoo = (bar\n',
      'good.ini': 'session.gc_maxlifetime = 7200\n',
      'notnum.ini': 'session.gc_maxlifetime = 2h\n',
      'pool.conf': '[www]\nphp_admin_value[session.gc_maxlifetime] = 60\n',
    });
    writeFileSync(join(d, 'nul.ini'), Buffer.from('session.gc_maxlifetime = 1\0\n'));
    expect(attempt(['--php-ini', join(d, 'missing.ini')]).line).toBe(
      `session-migrate: --php-ini ${join(d, 'missing.ini')}: no such file or directory`,
    );
    expect(attempt(['--php-ini', d]).line).toBe(`session-migrate: --php-ini ${d}: not a regular file`);
    expect(attempt(['--php-ini', join(d, 'nul.ini')]).line).toContain(`--php-ini ${join(d, 'nul.ini')}: binary data`);
    // PHP itself: "PHP:  syntax error, unexpected END_OF_LINE ... on line 3"
    const php = spawnSync('php', ['-n', '-c', join(d, 'syntax.ini'), '-r', ''], { encoding: 'utf8' });
    expect(php.stdout + php.stderr).toMatch(/syntax error.* on line 3/);
    expect(attempt(['--php-ini', join(d, 'syntax.ini'), '--php-ini-scan-dir', '']).line).toMatch(
      new RegExp(`--php-ini ${join(d, 'syntax.ini')}:3: syntax error`),
    );
    expect(attempt(['--php-ini', join(d, 'notnum.ini')]).line).toContain('session.gc_maxlifetime "2h"');
    expect(attempt(['--php-ini', join(d, 'good.ini'), '--php-ini-scan-dir', join(d, 'nope')]).line).toBe(
      `session-migrate: --php-ini-scan-dir ${join(d, 'nope')}: no such file or directory`,
    );
    expect(attempt(['--php-ini', join(d, 'good.ini'), '--fpm-pool', join(d, 'pool.conf'), '--fpm-pool-name', 'api']).line).toBe(
      `session-migrate: --fpm-pool ${join(d, 'pool.conf')}: no pool [api] (pools: www)`,
    );
    expect(attempt(['--fpm-pool', join(d, 'pool.conf')]).line).toBe('session-migrate: --fpm-pool needs --php-ini FILE');
    expect(attempt(['--fpm-pool', join(d, 'pool.conf'), '--php-version', '8.3']).line).toBe(
      'session-migrate: --fpm-pool and --php-version need --php-ini FILE',
    );
    // one rule, one format (packages/cli option-needs.ts): every option given is named
    expect(attempt(['--allow-shorter-ttl']).line).toBe('session-migrate: --allow-shorter-ttl needs --php-ini FILE');
    expect(attempt(['--fpm-pool-name', 'www', '--allow-shorter-ttl']).line).toBe(
      'session-migrate: --fpm-pool-name and --allow-shorter-ttl need --php-ini FILE',
    );
    expect(attempt(['--php-ini', join(d, 'good.ini'), '--fpm-pool-name', 'www']).line).toBe(
      'session-migrate: --fpm-pool-name needs --fpm-pool FILE',
    );
  });

  it('unreadable by the user plan runs as', () => {
    const d = tree('unreadable', { 'php.ini': 'session.gc_maxlifetime = 7200\n' });
    const ini = join(d, 'php.ini');
    chmodSync(ini, 0o600);
    chmodSync(d, 0o755);
    const root0 = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!root0) chmodSync(ini, 0o000);
    // as root, the file is made unreadable by running the CLI as nobody (65534)
    const { line } = attempt(['--php-ini', ini], root0 ? 65534 : undefined);
    expect(line).toBe(`session-migrate: --php-ini ${ini}: permission denied`);
  });
});

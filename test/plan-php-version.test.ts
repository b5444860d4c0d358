/**
 * plan --php-ini reads the files by the ini rules of the PHP version that runs them: --php-version,
 * else the `php` on the PATH (8.2 on this machine, the oracle of those rules), else 8.2, said as
 * assumed; the plan records which (php.iniRules). PHP 8.3's `${VAR:-default}` (php-src
 * Zend/zend_ini_scanner.l ST_VAR_FALLBACK, Zend/zend_ini_parser.y cfg_var_ref; rules tested in
 * packages/php-ini/test/version-rules.test.ts). Also: a setting expanded from `${ENV}` through an
 * earlier key is warned about with the variable and the key's file:line, the TTL's record and line
 * say a variable gave it, and a save_path password (also one from `${VAR}`) never appears in plan's
 * stdout, stderr or --json. Real redis-server and php (its version).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyFile } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { cli, planArgs, usageLine, type CliResult } from './support/migrate-cli.ts';

let root: string;
let redis: RedisServer;
let keyFile: string;
let n = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-plan-phpver-'));
  keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
  mkdirSync(join(root, 'sessions'));
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A php.ini with `text` in a new directory (no conf.d beside it); returns its path. */
function iniFile(text: string): string {
  const dir = join(root, `ini-${++n}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'php.ini'), text);
  return join(dir, 'php.ini');
}

const planFile = (): string => join(root, `plan-${n}.json`);

/** plan of the empty sessions directory with `extra` options; env adds variables (PATH may be replaced). */
function plan(extra: string[], env: Record<string, string> = {}): CliResult {
  return cli(
    planArgs(
      { dir: join(root, 'sessions'), target: redis.url, keyFile, planFile: planFile(), artifactsDir: join(root, 'artifacts') },
      ...extra,
    ),
    env,
  );
}

type PlanPhp = { gcMaxlifetime: number; gcMaxlifetimeFrom?: Record<string, unknown>; iniRules?: unknown };
const phpOf = (r: CliResult): PlanPhp => (JSON.parse(r.stdout) as { php: PlanPhp }).php;

const localPhp = spawnSync('php', ['-n', '-r', 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;'], { encoding: 'utf8' }).stdout.trim();

describe('the PHP version whose ini rules apply', () => {
  it('${VAR:-default}: by the php on the PATH (8.2: no such syntax) it is refused, with the version named; --php-version 8.3 takes the default', () => {
    expect(localPhp).toBe('8.2'); // this machine's php: the oracle of the 8.2 rules
    const ini = iniFile('session.gc_maxlifetime = ${SM_TEST_GC_83:-7200}\n');
    const byPath = plan(['--php-ini', ini, '--json']);
    expect(usageLine(byPath)).toBe(
      `session-migrate: session.gc_maxlifetime "" (${ini}:1; --php-ini ${ini}, expanded from \${SM_TEST_GC_83:-7200} of plan's environment) is not a whole number of seconds from 1 to 2147483647; plan cannot take it as a TTL (read by PHP 8.2's ini rules; 8.2 is the version of php on the PATH)`,
    );
    expect(existsSync(planFile())).toBe(false);

    const r = plan(['--php-ini', ini, '--php-version', '8.3', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const php = phpOf(r);
    expect(php.gcMaxlifetime).toBe(7200);
    expect(php.iniRules).toEqual({ phpVersion: '8.3', from: 'option' });
    expect(php.gcMaxlifetimeFrom).toEqual({
      kind: 'php-ini',
      phpIni: ini,
      file: ini,
      line: 1,
      origin: 'php.ini',
      envVars: ['SM_TEST_GC_83'],
    });
    // the text output: the TTL line says a variable gave it, and which rules were used
    const text = plan(['--php-ini', ini, '--php-version', '8.3.4']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `  TTL from    7200 s: session.gc_maxlifetime from ${ini}:1; --php-ini ${ini}; expanded from \${SM_TEST_GC_83} of plan's environment (PHP takes them from its own: check the value PHP runs with)\n`,
    );
    expect(text.stdout).toContain(`  PHP rules   --php-ini read by PHP 8.3's ini rules; 8.3 is the --php-version given\n`);
  });
  it('the php on the PATH gives the version (recorded as php-binary); without one, 8.2 is assumed and said so', () => {
    const ini = iniFile('session.gc_maxlifetime = 3600\n');
    const r = plan(['--php-ini', ini, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(phpOf(r).iniRules).toEqual({ phpVersion: localPhp, from: 'php-binary' });
    const none = plan(['--php-ini', ini, '--json'], { PATH: join(root, 'no-bin') });
    expect(none.status, none.stderr).toBe(0);
    expect(phpOf(none).iniRules).toEqual({ phpVersion: '8.2', from: 'assumed' });
    expect(none.stderr).toContain(
      "read by PHP 8.2's ini rules; 8.2 is assumed, as there is no --php-version and no php on the PATH: give --php-version if PHP runs another version",
    );
    const text = plan(['--php-ini', ini], { PATH: join(root, 'no-bin') });
    expect(text.stdout).toContain("  PHP rules   --php-ini read by PHP 8.2's ini rules; 8.2 is assumed,");
    // without --php-ini nothing is read, and nothing recorded
    const plain = plan(['--json']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(phpOf(plain).iniRules).toBeUndefined();
    expect(plain.stdout).not.toContain('PHP rules');
  });
  it('a bad --php-version, or one without --php-ini: one line, exit 2, no plan', () => {
    const ini = iniFile('session.gc_maxlifetime = 3600\n');
    expect(usageLine(plan(['--php-ini', ini, '--php-version', 'eight']))).toBe(
      'session-migrate: --php-version eight: not a PHP version whose ini rules plan knows (give 7.0 to 7.4 or 8.x as major.minor, e.g. 8.3)',
    );
    expect(usageLine(plan(['--php-version', '8.3']))).toContain('--php-version needs --php-ini FILE');
    expect(existsSync(planFile())).toBe(false);
  });
  it('a plan made before iniRules and envVars were recorded still applies; a malformed record is refused', () => {
    const ini = iniFile('session.gc_maxlifetime = ${SM_TEST_GC_OLD}\n');
    const r = plan(['--php-ini', ini, '--json'], { SM_TEST_GC_OLD: '3000' });
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(readFileSync(planFile(), 'utf8')) as { php: { iniRules?: unknown; gcMaxlifetimeFrom: Record<string, unknown> } };
    expect(p.php.gcMaxlifetimeFrom.envVars).toEqual(['SM_TEST_GC_OLD']);
    delete p.php.iniRules;
    delete p.php.gcMaxlifetimeFrom.envVars;
    writeFileSync(planFile(), JSON.stringify(p));
    const applied = cli(['apply', '--plan', planFile()]);
    expect(applied.status, applied.stderr).toBe(0);
    p.php.iniRules = { phpVersion: 8.3, from: 'option' };
    writeFileSync(planFile(), JSON.stringify(p));
    expect(usageLine(cli(['apply', '--plan', planFile()]))).toBe(
      `session-migrate: plan ${planFile()}: missing or malformed fields; re-run plan`,
    );
  });
});

describe('${ENV} reaching a session setting through an earlier key', () => {
  it('is warned about with the variable, the key it came through and where that key is set', () => {
    const ini = iniFile('sm_dir = ${SM_TEST_SESS_DIR}\nsession.save_path = "${sm_dir}"\n');
    const r = plan(['--php-ini', ini], { SM_TEST_SESS_DIR: join(root, 'sessions') });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.includes('SM_TEST_SESS_DIR'));
    expect(lines).toEqual([
      `session-migrate: warning: session.save_path (${ini}:2) is expanded from \${SM_TEST_SESS_DIR} through \${sm_dir} (${ini}:1), read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
    ]);
  });
});

describe('a password in session.save_path never appears in plan output', () => {
  it('written in the file or expanded from ${VAR}: <redacted len=N> on stderr, nothing on stdout or in --json', () => {
    const secret = 'Pw-from-env-9731';
    const literal = 'Pw-literal-5513';
    const ini = iniFile(
      `sm_pw = \${SM_TEST_REDIS_PW}\nsession.save_path = "tcp://127.0.0.1:6379?auth=\${sm_pw}&database=2, tcp://127.0.0.1:6380?auth=${literal}"\n`,
    );
    for (const extra of [[], ['--json']]) {
      const r = plan(['--php-ini', ini, ...extra], { SM_TEST_REDIS_PW: secret });
      expect(r.status, r.stderr).toBe(0);
      const all = r.stdout + r.stderr;
      expect(all).not.toContain(secret);
      expect(all).not.toContain(literal);
      expect(readFileSync(planFile(), 'utf8')).not.toContain(secret);
      // the save_path warning names it, redacted
      expect(r.stderr).toContain(`auth=<redacted len=${secret.length}>&database=2`);
      expect(r.stderr).toContain(`auth=<redacted len=${literal.length}>`);
      expect(r.stderr).toContain('through ${sm_pw}');
    }
  });
});

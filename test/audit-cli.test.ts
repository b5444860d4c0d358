/**
 * `session-migrate audit` end to end through the CLI binary, with real PHP as the oracle:
 * differential --ini values against `php -n -c FILE`, the collect script under dash on a fake root and
 * on the live host with real php, --from-collected and --fleet on three documents, SARIF shape, exit
 * codes, and bad input (missing root, malformed collected JSON, a 50 MB ini file, unreadable content).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  RULES,
  RootFs,
  auditHost,
  auditIniFile,
  collectScript,
  defaultEngine,
  parseCollected,
  redactSecrets,
  redactValue,
  renderJson,
  loadPhpParser,
} from '@session-migrate/audit';
import { phpDefaults } from '../packages/cli/src/commands-audit.ts';
import { main } from '../packages/cli/src/main.ts';
import { FIXTURES_DIR } from './support/fixtures.ts';
import { BIN } from './support/migrate-cli.ts';

// Audits that read application code (--app, document roots) need codemod php's parser loaded.
await loadPhpParser();

/** CLI runs spawn node + tsx: seconds each on a loaded machine, so these tests get a generous limit. */
const SLOW = 600_000;

const FIXTURES = join(import.meta.dirname, '../packages/audit/test/fixtures');
const SHARED = FIXTURES_DIR; // test/fixtures: cases/BUG-XX
const work = mkdtempSync(join(tmpdir(), 'audit-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function expectUsageError(r: CliResult, pattern: RegExp): void {
  expect(r.status, r.stderr + r.stdout).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

/** What real PHP reports: ini_get() of every session.* directive after `php -n -c FILE`. */
function phpSessionValues(ini: string): Record<string, string> {
  const r = spawnSync('php', ['-n', '-c', ini, '-r', 'echo json_encode(ini_get_all("session", false));'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

type AuditJson = {
  partial: boolean;
  hosts: Array<{
    host: string;
    partial: boolean;
    problems: string[];
    configurations: Array<{ id: string; values: Record<string, string | false> }>;
    findings: Array<{ rule_id: string; severity: string; message: string }>;
  }>;
};

describe('audit --ini: values equal real PHP (php -n -c FILE)', () => {
  const files: string[] = [
    ...readdirSync(FIXTURES)
      .filter((d) => {
        try {
          return JSON.parse(readFileSync(join(FIXTURES, d, 'case.json'), 'utf8')).mode === 'ini';
        } catch {
          return false;
        }
      })
      .map((d) => join(FIXTURES, d, 'php.ini')),
    ...readdirSync(join(SHARED, 'cases/BUG-11'))
      .filter((f) => f.endsWith('.ini'))
      .map((f) => join(SHARED, 'cases/BUG-11', f)),
    join(SHARED, 'cases/BUG-13/booleans.ini'),
    join(SHARED, 'cases/BUG-14/php.ini'),
    join(SHARED, 'cases/BUG-08/php.ini'),
  ];
  // The library path the CLI takes (local php's version and compiled defaults), file by file ...
  const local = phpDefaults('php');
  for (const file of files) {
    it(file.replace(/.*\/(fixtures|cases)\//, ''), () => {
      expect(local).not.toBeNull();
      const r = auditIniFile({
        fs: new RootFs('/'),
        engine: defaultEngine(),
        iniFile: file,
        env: {},
        phpVersion: local?.version,
        defaults: local?.defaults,
      });
      const doc = JSON.parse(renderJson([r])) as AuditJson;
      const values = doc.hosts[0]?.configurations[0]?.values ?? {};
      const php = phpSessionValues(file);
      for (const [k, v] of Object.entries(php)) expect(values[k], k).toBe(redactValue(k, v));
      expect(Object.keys(php).length).toBeGreaterThan(20);
    });
  }

  // ... and once through the binary.
  it(
    'the CLI prints the same values',
    () => {
      const file = join(SHARED, 'cases/BUG-13/booleans.ini');
      const r = cli(['audit', '--ini', file, '--json', '--fail-on', 'none']);
      expect(r.status, r.stderr).toBe(0);
      const values = (JSON.parse(r.stdout) as AuditJson).hosts[0]?.configurations[0]?.values ?? {};
      for (const [k, v] of Object.entries(phpSessionValues(file))) expect(values[k], k).toBe(v);
    },
    SLOW,
  );

  it(
    'names PHP does not know are false; unknown-directive says which one was meant',
    () => {
      const r = cli(['audit', '--ini', join(FIXTURES, 'typos-and-removed/php.ini'), '--json', '--fail-on', 'none']);
      const doc = JSON.parse(r.stdout) as AuditJson;
      const values = doc.hosts[0]?.configurations[0]?.values ?? {};
      expect(values['session.save_hander']).toBe(false);
      expect(values['session.entropy_length']).toBe(false);
      const probe = spawnSync(
        'php',
        [
          '-n',
          '-c',
          join(FIXTURES, 'typos-and-removed/php.ini'),
          '-r',
          'var_export([ini_get("session.save_hander"), ini_get("session.entropy_length")]);',
        ],
        { encoding: 'utf8' },
      );
      expect(probe.stdout.replace(/\s+/g, '')).toBe('array(0=>false,1=>false,)');
    },
    SLOW,
  );

  it(
    '--scan-dir: the scan dirs are read in order after the main file',
    () => {
      const dir = join(work, 'scan');
      mkdirSync(join(dir, 'a'), { recursive: true });
      mkdirSync(join(dir, 'b'), { recursive: true });
      writeFileSync(join(dir, 'php.ini'), 'session.name = MAIN\nsession.gc_maxlifetime = 10\n');
      writeFileSync(join(dir, 'a/10-x.ini'), 'session.name = FROM_A\nsession.cookie_path = /a\n');
      writeFileSync(join(dir, 'b/00-y.ini'), 'session.name = FROM_B\n');
      writeFileSync(join(dir, 'b/z.ini.bak'), 'session.cookie_path = /bak\n');
      const r = cli([
        'audit',
        '--ini',
        join(dir, 'php.ini'),
        '--scan-dir',
        `${join(dir, 'a')}:${join(dir, 'b')}`,
        '--json',
        '--fail-on',
        'none',
      ]);
      const values = (JSON.parse(r.stdout) as AuditJson).hosts[0]?.configurations[0]?.values ?? {};
      const php = spawnSync('php', ['-c', join(dir, 'php.ini'), '-r', 'echo json_encode(ini_get_all("session", false));'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', PHP_INI_SCAN_DIR: `${join(dir, 'a')}:${join(dir, 'b')}` },
      });
      const want = JSON.parse(php.stdout) as Record<string, string>;
      expect(values['session.name']).toBe('FROM_B');
      for (const k of ['session.name', 'session.cookie_path', 'session.gc_maxlifetime']) expect(values[k], k).toBe(want[k]);
      const empty = cli(['audit', '--ini', join(dir, 'php.ini'), '--scan-dir', '', '--json', '--fail-on', 'none']);
      expect((JSON.parse(empty.stdout) as AuditJson).hosts[0]?.configurations[0]?.values['session.name']).toBe('MAIN');
    },
    SLOW,
  );
});

describe('audit --ini --scan-dir: every value equals real PHP, extension directives included (fixtures-scan)', () => {
  const dir = join(import.meta.dirname, '../packages/audit/test/fixtures-scan');
  for (const name of readdirSync(dir)
    .filter((n) => !n.endsWith('.md'))
    .sort()) {
    it(
      name,
      () => {
        const c = JSON.parse(readFileSync(join(dir, name, 'case.json'), 'utf8')) as {
          scanDir: string;
          expect: Record<string, string | false>;
          absent?: string[];
        };
        const scan = c.scanDir
          .split(':')
          .map((d) => (d === '' ? '' : join(dir, name, d)))
          .join(':');
        const ini = join(dir, name, 'php.ini');
        const r = cli(['audit', '--ini', ini, '--scan-dir', scan, '--json', '--fail-on', 'none']);
        expect(r.status, r.stderr).toBe(0);
        const values = (JSON.parse(r.stdout) as AuditJson).hosts[0]?.configurations[0]?.values ?? {};
        const php = spawnSync('php', ['-c', ini, '-r', 'echo "\\n", json_encode(ini_get_all(null, false));'], {
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '', PHP_INI_SCAN_DIR: scan },
        });
        const want = JSON.parse(php.stdout.slice(php.stdout.indexOf('{'))) as Record<string, string | null>;
        for (const [k, v] of Object.entries(want)) expect(values[k], `${name}: ${k}`).toBe(v ?? '');
        for (const [k, v] of Object.entries(values))
          if (v !== false) expect(k in want, `${name}: ${k} is not a directive of real PHP`).toBe(true);
        for (const [k, v] of Object.entries(c.expect)) expect(values[k], `${name}: ${k}`).toBe(v);
        for (const k of c.absent ?? []) expect(values, `${name}: ${k}`).not.toHaveProperty(k);
      },
      SLOW,
    );
  }
});

describe('audit options', () => {
  it('--help says how to run the collect script on a host and audit what it printed', async () => {
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
      out += a.join(' ') + '\n';
    });
    // The width docs/cli.md is rendered at (scripts/docs-cli.ts COLUMNS): no line wrapped.
    const stdout = process.stdout as NodeJS.WriteStream & { columns?: number };
    const columns = Object.getOwnPropertyDescriptor(stdout, 'columns');
    stdout.columns = 110;
    try {
      expect(await main(['audit', '--help'])).toBe(0);
    } finally {
      write.mockRestore();
      log.mockRestore();
      if (columns !== undefined) Object.defineProperty(stdout, 'columns', columns);
      else delete (stdout as { columns?: number }).columns;
    }
    const lines = out.split('\n').map((l) => l.trimEnd());
    const at = lines.indexOf('A host without Node (docs/audit.md, "A fleet: the collect script and --from-collected"):');
    expect(at, out).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 5)).toEqual([
      '  session-migrate audit collect-script > collect.sh         # the collect script (POSIX sh)',
      '  umask 077; sh collect.sh /var/www/html > host.json        # on each host; arguments: its document roots',
      "  umask 077; ssh web-1 'sh -s /var/www/html' < collect.sh > web-1.json   # the same over ssh",
      '  session-migrate audit --from-collected host.json web-1.json [--fleet]',
    ]);
    expect(out).toMatch(/AUDIT_ROOT=\/mnt\/img sh collect\.sh collects a mounted image/);
  });
  it('--docroot and --from-collected may be repeated and take several values, in any spelling', async () => {
    const parsed = async (argv: string[]) => {
      let got: Record<string, unknown> = {};
      expect(
        await main(argv, {
          inspect: (a) => {
            got = a;
          },
        }),
      ).toBe(0);
      return got;
    };
    expect(
      (await parsed(['audit', '--docroot', '/a', '--json', '--docroot=/b', '--docroot', '/c', '/d', '--fail-on', 'none'])).docroot,
    ).toEqual(['/a', '/b', '/c', '/d']);
    expect((await parsed(['audit', '--from-collected', 'x.json', 'y.json']))['from-collected']).toEqual(['x.json', 'y.json']);
    expect((await parsed(['audit', '--fromCollected', 'x.json', '--from-collected=y.json']))['from-collected']).toEqual([
      'x.json',
      'y.json',
    ]);
    expect((await parsed(['audit'])).docroot).toBeUndefined();
  });
  it(
    'the CLI reads every --docroot',
    () => {
      const root = join(FIXTURES, 'rhel-layout/root');
      const r = cli(['audit', '--root', root, '--docroot', '/var/www/html', '--docroot', '/var/www', '--json', '--fail-on', 'none']);
      expect(r.status, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as AuditJson;
      expect(doc.hosts[0]?.configurations.map((c) => c.id)).toContain('root/rhel/apache2@/var/www/html/shop');
    },
    SLOW,
  );

  it(
    'a --app or --docroot directory that does not exist is a usage error (exit 2, one line), whatever --fail-on says',
    () => {
      const ini = join(work, 'app-missing.ini');
      writeFileSync(ini, 'session.save_path = "/tmp"\n');
      const missing = join(work, 'no-such-app');
      expectUsageError(
        cli(['audit', '--ini', ini, '--app', missing, '--fail-on', 'critical']),
        new RegExp(`^session-migrate: --app ${missing}: no such file or directory\n$`),
      );
      expectUsageError(cli(['audit', '--app', missing, '--fail-on', 'none']), /--app .*no-such-app: no such file or directory/);
      expectUsageError(cli(['audit', '--docroot', missing, '--fail-on', 'critical']), /--docroot .*no-such-app: no such file or directory/);
      expectUsageError(cli(['audit', '--app', ini]), /--app .*app-missing\.ini: not a directory/);
      const root = join(FIXTURES, 'rhel-layout/root');
      expectUsageError(
        cli(['audit', '--root', root, '--docroot', '/var/www/html', '--docroot', '/missing']),
        /^session-migrate: --docroot \/missing: no such file or directory \(below --root .*\)\n$/,
      );
      expectUsageError(cli(['audit', '--root', root, '--app', '/etc/php.ini']), /--app \/etc\/php\.ini: not a directory \(below --root/);
      // --ini audits no document root: --docroot there would be ignored, so it is refused
      expectUsageError(
        cli(['audit', '--ini', ini, '--docroot', '/var/www']),
        /--docroot reads \.user\.ini and \.htaccess of a host .* give the application code with --app/,
      );
    },
    SLOW,
  );
});

describe('audit output and exit codes', () => {
  it(
    '--sarif is SARIF 2.1.0 with rules, levels and locations',
    () => {
      const r = cli(['audit', '--ini', join(SHARED, 'cases/BUG-11/unquoted_equals.ini'), '--sarif']);
      expect(r.status).toBe(1);
      const log = JSON.parse(r.stdout) as {
        version: string;
        $schema: string;
        runs: Array<{
          tool: { driver: { name: string; rules: Array<{ id: string; help: { text: string }; shortDescription: { text: string } }> } };
          results: Array<{
            ruleId: string;
            ruleIndex: number;
            level: string;
            message: { text: string };
            locations: Array<{ physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } } }>;
          }>;
        }>;
      };
      expect(log.version).toBe('2.1.0');
      expect(log.$schema).toMatch(/sarif-2\.1\.0/);
      const run = log.runs[0];
      expect(run?.tool.driver.rules.map((x) => x.id)).toEqual(RULES.map((x) => x.id));
      for (const rule of run?.tool.driver.rules ?? []) expect(rule.help.text).toMatch(/^Fix: ./);
      const syntax = run?.results.find((x) => x.ruleId === 'ini-syntax-error');
      expect(syntax?.level).toBe('error');
      expect(syntax?.locations[0]?.physicalLocation.region?.startLine).toBe(3);
      expect(syntax?.locations[0]?.physicalLocation.artifactLocation.uri).toMatch(/cases\/BUG-11\/unquoted_equals\.ini$/);
      for (const res of run?.results ?? []) {
        expect(['error', 'warning', 'note']).toContain(res.level);
        expect(run?.tool.driver.rules[res.ruleIndex]?.id).toBe(res.ruleId);
      }
    },
    SLOW,
  );

  it(
    '--fail-on decides the exit code',
    () => {
      const ini = join(FIXTURES, 'clean-redis/php.ini');
      const copy = join(work, 'clean.ini');
      cpSync(ini, copy);
      chmodSync(copy, 0o600);
      expect(cli(['audit', '--ini', copy, '--fail-on', 'info']).status).toBe(0);
      const weak = join(FIXTURES, 'weak-cookies/php.ini');
      expect(cli(['audit', '--ini', weak]).status).toBe(1);
      expect(cli(['audit', '--ini', weak, '--fail-on', 'critical']).status).toBe(0);
      expect(cli(['audit', '--ini', weak, '--fail-on', 'none']).status).toBe(0);
      expectUsageError(cli(['audit', '--ini', weak, '--fail-on', 'severe']), /fail-on/);
    },
    SLOW,
  );

  it(
    'the table names each setting with the file and line that set it',
    () => {
      const r = cli(['audit', '--ini', join(SHARED, 'cases/BUG-11/quoted_with_inline_comment.ini'), '--fail-on', 'none']);
      expect(r.stdout).toMatch(/session\.save_path\s+\/var\/lib\/php\/sessions depth=2 mode=0700\s+\S*quoted_with_inline_comment\.ini:\d+/);
      expect(r.stdout).toMatch(/session\.use_strict_mode\s+"0"\s+default/);
    },
    SLOW,
  );
});

describe('audit --host: [HOST=] sections for FPM/CGI docroot variants', () => {
  it(
    '--host NAME applies [HOST=name] (case-insensitive) to the docroot variants only; without it none applies',
    () => {
      const root = join(FIXTURES, 'rb4-path-host-sections/root');
      const variant = (args: string[]) => {
        const r = cli(['audit', '--root', root, '--docroot', '/var/www/html', '--json', '--fail-on', 'none', ...args]);
        expect(r.status, r.stderr).toBe(0);
        const cfgs = (JSON.parse(r.stdout) as AuditJson).hosts[0]?.configurations ?? [];
        return (id: string) => cfgs.find((c) => c.id === id)?.values ?? {};
      };
      const withHost = variant(['--host', 'WWW.EXAMPLE.COM']);
      expect(withHost('root/debian-8.2/fpm:www@/var/www/html')['session.cookie_secure']).toBe('1');
      expect(withHost('root/debian-8.2/fpm:www@/var/www/html')['session.use_strict_mode']).toBe('1');
      expect(withHost('root/debian-8.2/fpm:www')['session.cookie_secure']).toBe('0');
      const without = variant([]);
      expect(without('root/debian-8.2/fpm:www@/var/www/html')['session.cookie_secure']).toBe('0');
      expect(without('root/debian-8.2/fpm:www@/var/www/html')['session.use_strict_mode']).toBe('1');
      expect(variant(['--host', 'other.example.com'])('root/debian-8.2/fpm:www@/var/www/html')['session.cookie_secure']).toBe('0');
    },
    SLOW,
  );
});

describe('audit bad input: one line, exit 2, or partial results marked partial', () => {
  it(
    'a non-existent --root',
    () => expectUsageError(cli(['audit', '--root', join(work, 'nope')]), /--root .*no such file or directory/),
    SLOW,
  );
  it('a missing --ini file', () => expectUsageError(cli(['audit', '--ini', join(work, 'nope.ini')]), /--ini .*no such file/), SLOW);
  it('--ini naming a directory', () => expectUsageError(cli(['audit', '--ini', work]), /not a regular file/), SLOW);
  it(
    '--ini / --root on a loop of symbolic links says "symlink loop"',
    () => {
      symlinkSync('loop-b', join(work, 'loop-a'));
      symlinkSync('loop-a', join(work, 'loop-b'));
      for (const opt of ['--ini', '--root']) {
        const r = cli(['audit', opt, join(work, 'loop-a')]);
        expectUsageError(r, new RegExp(`${opt} .*loop-a: symlink loop`));
        expect(r.stderr).not.toMatch(/refused/);
      }
    },
    SLOW,
  );
  it(
    'conflicting options',
    () => {
      expectUsageError(cli(['audit', '--ini', 'x', '--json', '--sarif']), /exclude each other/);
      expectUsageError(cli(['audit', '--scan-dir', '/x']), /--scan-dir needs --ini/);
      expectUsageError(cli(['audit', '--fleet']), /--fleet needs --from-collected/);
      // The CLI's rule (checkOptionNeeds, packages/cli/src/option-needs.ts), checked before any file is read.
      const fleet = cli(['audit', '--fleet', '--ini', join(work, 'nope.ini')]);
      expectUsageError(fleet, /^session-migrate: --fleet needs --from-collected FILE\.\.\.\n$/);
    },
    SLOW,
  );
  it(
    'malformed collected documents',
    () => {
      const cases: Array<[string, RegExp]> = [
        ['{not json', /invalid JSON/],
        ['[]', /not a JSON object/],
        ['{"format":"other"}', /format is "other"/],
        [
          '{"format":"session-migrate-collect/1","host":"aGk=","files":[{"path":"!!","type":"file","mode":"644","uid":0,"gid":0,"size":1}]}',
          /files\[0\]\.path is not valid base64/,
        ],
        [
          '{"format":"session-migrate-collect/1","host":"aGk=","files":[{"path":"L2V0Yw==","type":"weird","mode":"644","uid":0,"gid":0,"size":1}]}',
          /files\[0\]\.type/,
        ],
      ];
      cases.forEach(([text, re], i) => {
        expect(() => parseCollected(text, `bad-${i}.json`)).toThrow(re);
        try {
          parseCollected(text, `bad-${i}.json`);
        } catch (err) {
          expect((err as { exitCode?: number }).exitCode).toBe(2);
          expect(String((err as Error).message)).not.toContain('\n');
        }
      });
      const bin = join(work, 'garbage.json');
      writeFileSync(bin, Buffer.from([0, 1, 2, 255, 254, 0x7b]));
      expectUsageError(cli(['audit', '--from-collected', bin]), /garbage\.json: not a session-migrate collect document \(invalid JSON/);
      expectUsageError(cli(['audit', '--from-collected', join(work, 'missing.json')]), /no such file or directory/);
    },
    SLOW,
  );
  it(
    'a 50 MB ini file is not read (too large), without a crash, and the result is marked partial',
    () => {
      const big = join(work, 'big.ini');
      const line = 'session.name = BIG\n';
      writeFileSync(big, line.repeat(Math.ceil((50 * 1024 * 1024) / line.length)));
      const r = cli(['audit', '--ini', big, '--json', '--fail-on', 'none']);
      expect(r.status, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as AuditJson;
      expect(doc.partial).toBe(true);
      expect(doc.hosts[0]?.findings.some((f) => f.rule_id === 'audit-incomplete' && /too large/.test(f.message))).toBe(true);
    },
    SLOW,
  );
  it(
    'binary garbage as php.ini: a syntax error, no crash',
    () => {
      const g = join(work, 'garbage.ini');
      const buf = Buffer.alloc(8192);
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 97 + 13) & 0xff;
      writeFileSync(g, buf);
      const r = cli(['audit', '--ini', g, '--json', '--fail-on', 'none']);
      expect(r.status, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as AuditJson;
      expect(doc.hosts[0]?.findings.some((f) => f.rule_id === 'ini-syntax-error' || f.rule_id === 'audit-incomplete')).toBe(true);
    },
    SLOW,
  );
});

/** Builds a small Debian-like root with a php-fpm pool and a session dir. */
function fakeRoot(name: string, savePath: string, handler = 'files'): string {
  const root = join(work, name);
  cpSync(join(FIXTURES, 'debian-layout/root'), root, { recursive: true });
  mkdirSync(join(root, 'etc/php/8.2/cli/conf.d'), { recursive: true });
  mkdirSync(join(root, 'etc/php/8.2/fpm/conf.d'), { recursive: true });
  symlinkSync('/etc/php/8.2/mods-available/redis.ini', join(root, 'etc/php/8.2/cli/conf.d/20-redis.ini'));
  chmodSync(join(root, 'var/lib/php/sessions'), 0o1733);
  // The CLI SAPI's conf.d (the fpm pool of the Debian fixture pins its own save_path).
  writeFileSync(
    join(root, 'etc/php/8.2/cli/conf.d/30-session.ini'),
    `session.save_handler = ${handler}\nsession.save_path = "${savePath}"\n`,
    { mode: 0o640 },
  );
  chmodSync(join(root, 'etc/php/8.2/cli/conf.d/30-session.ini'), 0o640);
  return root;
}

function runCollect(root: string, args: string[] = [], env: Record<string, string> = {}): string {
  const script = join(work, 'collect.sh');
  writeFileSync(script, collectScript());
  const r = spawnSync('dash', [script, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', AUDIT_ROOT: root, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe('fleet: collect script (dash) -> --from-collected -> --fleet', () => {
  it(
    'collect-script is POSIX sh: dash -n accepts it and it has no bashisms',
    () => {
      const r = cli(['audit', 'collect-script']);
      expect(r.status).toBe(0);
      const text = r.stdout;
      expect(text).toBe(collectScript());
      expect(text.startsWith('#!/bin/sh\n')).toBe(true);
      const f = join(work, 'syntax.sh');
      writeFileSync(f, text);
      expect(spawnSync('dash', ['-n', f]).status).toBe(0);
      const code = text
        .split('\n')
        .filter((l) => !/^\s*#/.test(l))
        .join('\n');
      expect(code).not.toMatch(/\[\[ |^\s*local\s|\$\{[A-Za-z_]+\/|^\s*function\s|<<<|\$'|\bdeclare\b|\bsource\s/m);
    },
    SLOW,
  );

  it(
    'collects a fake root with dash, never reading session contents, and the audit of the document equals the audit of the root',
    () => {
      const root = fakeRoot('host-a', '/var/lib/php/sessions');
      writeFileSync(join(root, 'var/lib/php/sessions/sess_aaaaaaaaaaaaaaaaaaaaaaaaaa'), 'SECRET-SESSION-CONTENT');
      const doc = runCollect(root, ['/srv/www']);
      const parsed = JSON.parse(doc) as { format: string; files: Array<{ path: string; content?: string }> };
      expect(parsed.format).toBe('session-migrate-collect/1');
      const decoded = parsed.files.map((f) => ({
        path: Buffer.from(f.path, 'base64').toString(),
        content: f.content !== undefined ? Buffer.from(f.content, 'base64').toString() : undefined,
      }));
      expect(decoded.find((f) => f.path.endsWith('sess_aaaaaaaaaaaaaaaaaaaaaaaaaa'))?.content).toBeUndefined();
      expect(doc).not.toContain(Buffer.from('SECRET-SESSION-CONTENT').toString('base64').slice(0, 16));
      expect(decoded.find((f) => f.path === '/etc/php/8.2/fpm/pool.d/www.conf')?.content).toContain('php_admin_value[session.save_path]');
      expect(decoded.find((f) => f.path === '/srv/www/app/.user.ini')?.content).toContain('gc_maxlifetime');
      const file = join(work, 'host-a.json');
      writeFileSync(file, doc);
      const run = cli(['audit', '--from-collected', file, '--json', '--fail-on', 'none']);
      expect(run.status, run.stderr).toBe(0);
      const fromDoc = JSON.parse(run.stdout) as AuditJson;
      const fromRoot = JSON.parse(
        renderJson([auditHost({ fs: new RootFs(root), engine: defaultEngine(), host: 'root', env: {}, docroots: ['/srv/www'] })]),
      ) as AuditJson;
      const strip = (d: AuditJson) => d.hosts[0]?.configurations.map((c) => ({ id: c.id.replace(/^[^/]+\//, ''), values: c.values }));
      expect(strip(fromDoc)).toEqual(strip(fromRoot));
      const rules = (d: AuditJson) => [...new Set(d.hosts[0]?.findings.map((f) => f.rule_id))].sort();
      expect(rules(fromDoc)).toEqual(rules(fromRoot));
      expect(rules(fromDoc)).toContain('codemod-target-locked');
      const c = parseCollected(doc, 'host-a.json');
      expect(c.docroots).toEqual(['/srv/www']);
    },
    SLOW,
  );

  it(
    'on the live host with real php: php --ini and the effective values are in the document',
    () => {
      const script = join(work, 'collect-live.sh');
      writeFileSync(script, collectScript());
      const r = spawnSync('dash', [script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, maxBuffer: 64 * 1024 * 1024 });
      expect(r.status, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { php: { ini_output: string; values: string } };
      expect(Buffer.from(doc.php.ini_output, 'base64').toString()).toMatch(/Loaded Configuration File:/);
      const values = JSON.parse(Buffer.from(doc.php.values, 'base64').toString()) as {
        version: string;
        values: Record<string, string | null>;
      };
      const real = spawnSync('php', ['-r', 'echo ini_get("session.save_path"), "|", PHP_VERSION;'], { encoding: 'utf8' }).stdout.split('|');
      expect(values.values['session.save_path']).toBe(real[0]);
      expect(values.version).toBe(real[1]);
      const file = join(work, 'live.json');
      writeFileSync(file, r.stdout);
      const audit = cli(['audit', '--from-collected', file, '--json', '--fail-on', 'none']);
      expect(audit.status, audit.stderr).toBe(0);
      const a = JSON.parse(audit.stdout) as AuditJson;
      const cliCfg = a.hosts[0]?.configurations.find((c) => c.id.endsWith('/cli'));
      expect(cliCfg?.values['session.save_path']).toBe(redactSecrets(real[0] ?? ''));
    },
    SLOW,
  );

  it(
    '--fromCollected (camelCase) audits the document, not the local host (issue 13)',
    () => {
      const doc = JSON.parse(runCollect(fakeRoot('host-c', '/var/lib/php/sessions'))) as Record<string, unknown>;
      doc.host = Buffer.from('web-camel').toString('base64');
      const f = join(work, 'web-camel.json');
      writeFileSync(f, JSON.stringify(doc));
      for (const args of [['--fromCollected', f], [`--fromCollected=${f}`], ['--from-collected', f]]) {
        const r = cli(['audit', ...args, '--json', '--failOn', 'none']);
        expect(r.status, r.stderr).toBe(0);
        expect(
          (JSON.parse(r.stdout) as AuditJson).hosts.map((h) => h.host),
          args.join(' '),
        ).toEqual(['web-camel']);
      }
    },
    SLOW,
  );

  it(
    '--fleet summarises three hosts per handler, save path and finding',
    () => {
      const files = [
        ['web-1', fakeRoot('web-1', '/var/lib/php/sessions')],
        ['web-2', fakeRoot('web-2', '/var/lib/php/sessions')],
        ['web-3', fakeRoot('web-3', 'tls://10.0.0.5:6380?auth=hunter2', 'redis')],
      ].map(([name, root]) => {
        const f = join(work, `${name}.json`);
        // The host name comes from the document: rewrite it to tell the three apart.
        const doc = JSON.parse(runCollect(root as string)) as Record<string, unknown>;
        doc.host = Buffer.from(name as string).toString('base64');
        writeFileSync(f, JSON.stringify(doc));
        return f;
      });
      const r = cli(['audit', '--from-collected', ...files, '--fleet', '--fail-on', 'none']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/fleet: 3 hosts/);
      expect(r.stdout).toMatch(/hosts per save handler[\s\S]*files\s+3 host\(s\): web-1, web-2, web-3[\s\S]*redis\s+1 host\(s\): web-3/);
      expect(r.stdout).toMatch(/files: \/var\/lib\/php\/sessions mode=0600\s+3 host\(s\)/);
      expect(r.stdout).toMatch(/tls:\/\/10\.0\.0\.5:6380 auth=<redacted>\s+1 host\(s\): web-3/);
      expect(r.stdout).toMatch(/high\s+plaintext-files-storage\s+3 host\(s\)/);
      expect(r.stdout).toMatch(/info\s+codemod-target-locked\s+3 host\(s\)/);
      expect(r.stdout).not.toMatch(/redis-no-tls|redis-no-auth/);
      expect(r.stdout).not.toContain('hunter2');
      const j = JSON.parse(cli(['audit', '--from-collected', ...files, '--fleet', '--json', '--fail-on', 'none']).stdout) as {
        hosts: string[];
        by_handler: Record<string, string[]>;
      };
      expect(j.hosts).toEqual(['web-1', 'web-2', 'web-3']);
      expect(j.by_handler.redis).toEqual(['web-3']);
      const failing = cli(['audit', '--from-collected', ...files, '--fleet']);
      expect(failing.status).toBe(1);
    },
    SLOW,
  );

  it('a collected file whose contents were not readable makes the result partial', () => {
    const root = fakeRoot('host-u', '/var/lib/php/sessions');
    const doc = JSON.parse(runCollect(root)) as { files: Array<{ path: string; content?: string; skipped?: string }> };
    const target = doc.files.find((f) => Buffer.from(f.path, 'base64').toString() === '/etc/php/8.2/fpm/php.ini');
    expect(target).toBeDefined();
    if (target !== undefined) {
      delete target.content;
      target.skipped = Buffer.from('permission denied').toString('base64');
    }
    const f = join(work, 'host-u.json');
    writeFileSync(f, JSON.stringify(doc));
    const c = parseCollected(JSON.stringify(doc), 'host-u.json');
    const a = JSON.parse(
      renderJson([auditHost({ fs: c.fs, engine: defaultEngine(), host: c.host, env: {}, docroots: c.docroots, probe: c.probe })]),
    ) as AuditJson;
    expect(a.partial).toBe(true);
    expect(a.hosts[0]?.findings.some((x) => x.rule_id === 'audit-incomplete' && /fpm\/php\.ini: permission denied/.test(x.message))).toBe(
      true,
    );
  });
});

describe('audit --app: run-time session settings in application code', () => {
  const NOBODY = 65534;
  const asRoot = process.getuid?.() === 0;
  /** As root, the CLI runs as `nobody` (setpriv), since root reads any file. */
  function cliAsUser(args: string[], home: string): CliResult {
    const cmd = asRoot ? 'setpriv' : process.execPath;
    const argv = asRoot ? [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, ...args] : [BIN, ...args];
    const r = spawnSync(cmd, argv, {
      encoding: 'utf8',
      env: { ...process.env, HOME: home, TMPDIR: join(home, 'tmp') },
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  it(
    'reads --app and --docroot code below --root; unreadable files and directories make the result partial',
    () => {
      const base = mkdtempSync(join('/tmp', 'audit-app-cli-'));
      try {
        chmodSync(base, 0o755);
        mkdirSync(join(base, 'tmp'), { mode: 0o700 });
        if (asRoot) chownSync(join(base, 'tmp'), NOBODY, NOBODY);
        const root = join(base, 'root');
        cpSync(join(FIXTURES, 'app-runtime-clean/root'), root, { recursive: true });
        mkdirSync(join(root, 'srv/api/private'), { recursive: true });
        writeFileSync(join(root, 'srv/api/index.php'), "<?php\nsession_save_path('/srv/api/sessions');\n");
        writeFileSync(join(root, 'srv/api/secret.php'), "<?php\nini_set('session.name', 'HIDDEN');\n");
        writeFileSync(join(root, 'srv/api/private/x.php'), "<?php\nini_set('session.name', 'HIDDEN2');\n");
        chmodSync(join(root, 'srv/api/secret.php'), 0o000);
        chmodSync(join(root, 'srv/api/private'), 0o000);
        const r = cliAsUser(
          ['audit', '--root', root, '--app', '/srv/api', '--docroot', '/var/www/blog', '--json', '--fail-on', 'none'],
          base,
        );
        expect(r.status, r.stderr).toBe(0);
        type AppJson = {
          hosts: Array<{
            partial: boolean;
            findings: Array<{ rule_id: string; message: string }>;
            applications: Array<{ dir: string; php_files: number; implied_by_docroot: boolean }>;
            configurations: Array<{ id: string; runtime?: Array<{ directive: string; value: string; status: string }> }>;
          }>;
        };
        const doc = JSON.parse(r.stdout) as AppJson;
        const host = doc.hosts[0]!;
        expect(host.applications.map((a) => [a.dir, a.php_files, a.implied_by_docroot])).toEqual([
          ['/srv/api', 1, false],
          ['/var/www/blog', 1, true],
        ]);
        expect(host.partial).toBe(true);
        const incomplete = host.findings.filter((f) => f.rule_id === 'audit-incomplete').map((f) => f.message);
        expect(incomplete).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/\/srv\/api\/secret\.php: permission denied/),
            expect.stringMatching(/\/srv\/api\/private: directory not readable/),
          ]),
        );
        const fpm = host.configurations.find((c) => c.id === 'root/debian-8.2/fpm:www');
        expect(fpm?.runtime?.find((x) => x.directive === 'session.save_path' && x.value === '/srv/api/sessions')?.status).toBe('differs');
        // No cron job and no sessionclean directory covers /srv/api/sessions; /srv/app-sessions has its cron job.
        const noGc = host.findings.filter((f) => f.rule_id === 'runtime-save-path-no-gc').map((f) => f.message);
        expect(noGc).toEqual([expect.stringContaining('"/srv/api/sessions"')]);
        expect(r.stdout).not.toContain('HIDDEN');
        const failing = cliAsUser(['audit', '--root', root, '--app', '/srv/api', '--sarif'], base);
        expect(failing.status).toBe(1);
        expect(
          (JSON.parse(failing.stdout) as { runs: Array<{ results: Array<{ ruleId: string }> }> }).runs[0]!.results.map((x) => x.ruleId),
        ).toContain('runtime-save-path-no-gc');
      } finally {
        spawnSync('chmod', ['-R', 'u+rwx', base]);
        rmSync(base, { recursive: true, force: true });
      }
    },
    SLOW,
  );

  it(
    '--app with --from-collected is a usage error; --app on a symlink loop is a usage error naming the loop, not a crash',
    () => {
      expectUsageError(
        cli(['audit', '--from-collected', join(work, 'x.json'), '--app', '/srv']),
        /--app reads application code on this host or below --root/,
      );
      const root = join(work, 'app-loop');
      mkdirSync(join(root, 'etc'), { recursive: true });
      symlinkSync('/srv/b', join(root, 'a'));
      symlinkSync('/a', join(root, 'b'));
      expectUsageError(
        cli(['audit', '--root', root, '--app', '/a', '--json', '--fail-on', 'none']),
        /^session-migrate: --app \/a: a symlink loop, or a symbolic link out of the root \(below --root .*app-loop\)\n$/,
      );
    },
    SLOW,
  );
});

/**
 * Application code (app.ts): run-time session settings read from PHP files, with real PHP as the
 * oracle (each call is followed on its line by a record of ini_get_all('session'): the value the
 * audit resolved must be what PHP stored), and bad input classified, never a crash: unparsable,
 * binary, huge files, symbolic link loops, links out of the directory, vendor/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MAX_APP_FILE_BYTES,
  RootFs,
  auditIniFile,
  defaultEngine,
  readApp,
  renderFleet,
  renderJson,
  renderSarif,
  renderTable,
  loadPhpParser,
  localPhpLint,
  runAudit,
} from '@session-migrate/audit';

// Audits that read application code (--app, document roots) need codemod php's parser loaded.
await loadPhpParser();

const work = realpathSync(mkdtempSync(join(tmpdir(), 'audit-app-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function write(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
}

/** Each call is followed, on the same line, by a record of what PHP stored. */
const REC = "$r[__LINE__] = ini_get_all('session', false);";

describe('run-time settings, with PHP as the oracle', () => {
  const app = join(work, 'oracle/app');
  const sessions = join(work, 'oracle/var/sess');
  mkdirSync(sessions, { recursive: true });
  write(app, {
    'config/config.php': `<?php
namespace Oracle\\Config;
const BASE_PATH = '/shop';
const LIFETIME_DAYS = 3;
define('Oracle\\Config\\CACHE', 60 + 5);
define('SESSION_ROOT', dirname(__DIR__, 2));
interface HasCookie { const COOKIE = 'ORACLESESSID'; }
class BasePaths { const VAR = SESSION_ROOT . '/var'; }
final class Paths extends BasePaths implements HasCookie { const SESSIONS = self::VAR . '/sess'; const LIMITER = 'private_no_expire'; }
`,
    'public/index.php': `<?php
namespace Oracle\\Web;
use Oracle\\Config\\Paths;
use const Oracle\\Config\\BASE_PATH;
require __DIR__ . '/../config/config.php';
$r = [];
ini_set('session.save_path', Paths::SESSIONS); ${REC}
ini_set('session.gc_maxlifetime', \\Oracle\\Config\\LIFETIME_DAYS * 86400); ${REC}
session_name(Paths::COOKIE); ${REC}
session_set_cookie_params(['lifetime' => 3600 * 2, 'path' => BASE_PATH . '/', 'SameSite' => 'Strict', 'secure' => 1, 'HttpOnly' => 'yes', 'bogus' => 1]); ${REC}
session_set_cookie_params(7200, '/x', 'example.test', false); ${REC}
session_set_cookie_params(lifetime_or_options: 60, httponly: false); ${REC}
ini_alter('session.cache_expire', \\Oracle\\Config\\CACHE); ${REC}
ini_set('session.cache_limiter', Paths::LIMITER); ${REC}
session_save_path(dirname(__DIR__, 2) . '/var/sess'); ${REC}
ini_set('session.use_strict_mode', true); ${REC}
ini_set('session.lazy_write', false); ${REC}
ini_set('session.sid_length', 48); ${REC}
session_start(['cookie_lifetime' => 86400, 'use_strict_mode' => '1', 'read_and_close' => true, 'cache_expire' => 30]); ${REC}
echo json_encode($r);
`,
  });

  it('every resolved value is what PHP stored after the call', () => {
    const php = spawnSync('php', ['-n', '-d', 'error_reporting=0', join(app, 'public/index.php')], { encoding: 'utf8' });
    expect(php.status, php.stderr + php.stdout).toBe(0);
    const stored = JSON.parse(php.stdout) as Record<string, Record<string, string>>;
    const report = readApp(new RootFs('/'), app);
    expect(report.problems).toEqual([]);
    expect(report.files).toBe(2);
    const byLine = new Map<number, number>();
    for (const s of report.settings) {
      expect(s.value, `${s.directive} at line ${s.line}`).not.toBeNull();
      expect(s.directive).not.toBeNull();
      expect(stored[String(s.line)]?.[s.directive!], `${s.directive} at line ${s.line} (${s.via})`).toBe(s.value);
      byLine.set(s.line, (byLine.get(s.line) ?? 0) + 1);
    }
    // Every recorded call was read (lines 7..19), with the directives each sets.
    expect([...byLine.keys()].sort((a, b) => a - b)).toEqual(
      Object.keys(stored)
        .map(Number)
        .sort((a, b) => a - b),
    );
    expect(byLine.get(10)).toBe(5); // lifetime, path, samesite, secure, httponly (bogus ignored, as PHP does)
    expect(byLine.get(11)).toBe(4); // positional: lifetime, path, domain, secure
    expect(byLine.get(12)).toBe(2); // named: lifetime, httponly
    expect(byLine.get(19)).toBe(3); // session_start: cookie_lifetime, use_strict_mode, cache_expire (read_and_close is no ini)
    expect(report.settings.find((s) => s.line === 7)?.value).toBe(sessions);
  });

  it('--ini with --app: the configuration shows them, with PHP refusing what it refuses', () => {
    writeFileSync(
      join(work, 'oracle/php.ini'),
      `session.save_path = "${sessions}"\nsession.gc_probability = 0\nsession.name = PHPSESSID\n`,
    );
    const r = auditIniFile({ fs: new RootFs('/'), engine: defaultEngine(), iniFile: join(work, 'oracle/php.ini'), env: {}, apps: [app] });
    const runtime = r.configs[0]?.runtime ?? [];
    expect(runtime.find((x) => x.directive === 'session.name')).toMatchObject({
      status: 'differs',
      value: 'ORACLESESSID',
      configured: 'PHPSESSID',
    });
    expect(runtime.find((x) => x.line === 7)).toMatchObject({ status: 'same' });
    expect(runtime.find((x) => x.directive === 'session.sid_length')).toMatchObject({ status: 'differs', value: '48' });
    expect(r.apps?.[0]?.files).toBe(2);
    const json = JSON.parse(renderJson([r])) as {
      hosts: Array<{ applications: Array<{ settings: unknown[] }>; configurations: Array<{ runtime: unknown[] }> }>;
    };
    expect(json.hosts[0]?.applications[0]?.settings).toHaveLength(report().settings.length);
    expect(json.hosts[0]?.configurations[0]?.runtime).toHaveLength(report().settings.length);
    function report() {
      return readApp(new RootFs('/'), app);
    }
  });
});

describe("functions named like the session functions that are not PHP's, with PHP as the oracle", () => {
  it("App\\ini_set() of the namespace, `use function`, namespace\\ini_set() change nothing: only the calls of PHP's functions are settings", () => {
    const app = join(work, 'lookalikes/app');
    write(app, {
      'index.php': `<?php
namespace Lookalike;
use function Compat\\session_name;
use function session_save_path as php_save_path;
function ini_set(string $k, $v) { return 'mine'; }
$r = []; ${REC}
ini_set('session.save_path', '/app/own'); ${REC}
namespace\\ini_set('session.gc_maxlifetime', 5); ${REC}
session_name('NOTSESSID'); ${REC}
\\ini_set('session.gc_maxlifetime', 99); ${REC}
php_save_path('/tmp'); ${REC}
echo json_encode($r);
`,
      'compat.php': '<?php\nnamespace Compat;\nfunction session_name($n) { return $n; }\n',
    });
    const php = spawnSync(
      'php',
      ['-n', '-d', 'error_reporting=0', '-d', 'auto_prepend_file=' + join(app, 'compat.php'), join(app, 'index.php')],
      {
        encoding: 'utf8',
      },
    );
    expect(php.status, php.stderr + php.stdout).toBe(0);
    const stored = JSON.parse(php.stdout) as Record<string, Record<string, string>>;
    // PHP: the look-alikes (lines 7, 8, 9) changed nothing since line 6
    for (const [line, key] of [
      ['7', 'session.save_path'],
      ['8', 'session.gc_maxlifetime'],
      ['9', 'session.name'],
    ] as const)
      expect(stored[line]![key], key).toBe(stored['6']![key]);
    expect(stored['10']!['session.gc_maxlifetime']).toBe('99');
    const report = readApp(new RootFs('/'), app);
    expect(report.settings.map((s) => [s.line, s.directive, s.value])).toEqual([
      [10, 'session.gc_maxlifetime', '99'],
      [11, 'session.save_path', '/tmp'],
    ]);
    for (const s of report.settings) expect(stored[String(s.line)]?.[s.directive!]).toBe(s.value);
  });
});

describe("a function of the namespace declared by another file (PHP's fallback rule, shared with codemod php)", () => {
  it("an unqualified session call in namespace App, where another file declares App\\ini_set(), is not read as PHP's and is named as a problem", () => {
    const app = join(work, 'crossfile/app');
    write(app, {
      'src/compat.php': "<?php\nnamespace Cross;\nfunction ini_set(string $k, $v) { return 'mine'; }\n",
      'public/index.php': `<?php
namespace Cross;
require __DIR__ . '/../src/compat.php';
$r = []; ${REC}
ini_set('session.save_path', '/app/own'); ${REC}
\\ini_set('session.gc_maxlifetime', 99); ${REC}
session_name('CROSSSESSID'); ${REC}
echo json_encode($r);
`,
    });
    const php = spawnSync('php', ['-n', '-d', 'error_reporting=0', join(app, 'public/index.php')], { encoding: 'utf8' });
    expect(php.status, php.stderr + php.stdout).toBe(0);
    const stored = JSON.parse(php.stdout) as Record<string, Record<string, string>>;
    // PHP: line 5 called Cross\ini_set (declared by compat.php), not PHP's; lines 6 and 7 are PHP's.
    expect(stored['5']!['session.save_path']).toBe(stored['4']!['session.save_path']);
    expect(stored['6']!['session.gc_maxlifetime']).toBe('99');
    expect(stored['7']!['session.name']).toBe('CROSSSESSID');
    const report = readApp(new RootFs('/'), app);
    expect(report.settings.map((s) => [s.line, s.directive, s.value])).toEqual([
      [6, 'session.gc_maxlifetime', '99'],
      [7, 'session.name', 'CROSSSESSID'],
    ]);
    expect(report.problems).toEqual([
      `${join(app, 'public/index.php')}:5: ini_set() in namespace Cross may call Cross\\ini_set(), which ${join(app, 'src/compat.php')} declares (PHP calls it instead of the global ini_set() once that file is loaded): not read as a session setting`,
    ]);
  });
});

describe('valid PHP that php-parser 3.7.0 refuses: `declare(ticks=1) statement;`', () => {
  const app = join(work, 'ticks/app');
  write(app, {
    'ticks.php': "<?php\ndeclare(ticks=1) ini_set('session.name', 'TICKSESSID');\n",
    'broken.php': "<?php\nini_set('session.name', 'X'\n",
  });

  it('php -l accepts it: the report says php-parser cannot read it, not that it does not parse', () => {
    const lint = spawnSync('php', ['-n', '-l', join(app, 'ticks.php')], { encoding: 'utf8' });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    const r = readApp(new RootFs('/'), app, false, localPhpLint('php'));
    expect(r.problems.sort()).toEqual([
      expect.stringMatching(/broken\.php:\d+: does not parse \(.+\); its session settings were not read$/),
      expect.stringMatching(
        /ticks\.php:2: php-parser cannot read it, though php -l accepts it \(.+\); its session settings were not read, check its session calls by hand$/,
      ),
    ]);
    // Without php to ask, both are what the parser says.
    const none = readApp(new RootFs('/'), app, false, localPhpLint(join(work, 'no-such-php')));
    expect(none.problems.filter((p) => p.includes('does not parse'))).toHaveLength(2);
  });

  it('runAudit --app asks the php binary given', async () => {
    writeFileSync(join(work, 'ticks.ini'), 'session.save_handler = files\n');
    const { reports } = await runAudit({
      docroot: [],
      app: [app],
      fromCollected: [],
      php: 'php',
      ini: join(work, 'ticks.ini'),
    });
    const text = reports.flatMap((h) => [...h.findings.map((f) => f.message), ...h.problems]).join('\n');
    expect(text).toMatch(/ticks\.php:2: php-parser cannot read it, though php -l accepts it/);
  });
});

describe('calls through a callable string (codemod php reads them the same way: stringCallableCall), with PHP as the oracle', () => {
  it("call_user_func('ini_set', ...) and call_user_func_array('session_save_path', [...]) are settings; a computed array is reported as such", () => {
    const app = join(work, 'callables/app');
    write(app, {
      'index.php': `<?php
namespace Callables;
function ini_set(string $k, $v) { return 'mine'; }
$r = []; ${REC}
call_user_func('ini_set', 'session.gc_maxlifetime', 1234); ${REC}
call_user_func_array('\\session_save_path', ['/srv/sess']); ${REC}
\\call_user_func_array('ini_set', ['option' => 'session.name', 'value' => 'CUFSESSID']); ${REC}
call_user_func('ini_set', 'memory_limit', '256M'); ${REC}
call_user_func('session_id'); ${REC}
$args = ['session.cache_expire', '7'];
call_user_func_array('ini_set', $args); ${REC}
echo json_encode($r);
`,
    });
    const php = spawnSync('php', ['-n', '-d', 'error_reporting=0', join(app, 'index.php')], { encoding: 'utf8' });
    expect(php.status, php.stderr + php.stdout).toBe(0);
    const stored = JSON.parse(php.stdout) as Record<string, Record<string, string>>;
    // PHP: a callable string names the global function, not Callables\ini_set
    expect(stored['5']!['session.gc_maxlifetime']).toBe('1234');
    expect(stored['7']!['session.name']).toBe('CUFSESSID');
    expect(stored['11']!['session.cache_expire']).toBe('7');
    const report = readApp(new RootFs('/'), app);
    expect(report.settings.map((s) => [s.line, s.via, s.directive, s.value])).toEqual([
      [5, 'ini_set', 'session.gc_maxlifetime', '1234'],
      [6, 'session_save_path', 'session.save_path', '/srv/sess'],
      [7, 'ini_set', 'session.name', 'CUFSESSID'],
      [11, 'ini_set', null, null],
    ]);
    expect(report.settings[3]!.expression).toBe('$args');
    for (const s of report.settings.slice(0, 3)) expect(stored[String(s.line)]?.[s.directive!]).toBe(s.value);
  });
});

describe('bad input is classified, never a crash', () => {
  const app = join(work, 'bad/app');
  const huge = Buffer.alloc(MAX_APP_FILE_BYTES + 10, 0x20);
  Buffer.from("<?php ini_set('session.save_path', '/huge');\n").copy(huge);
  const binary = Buffer.from([0x3c, 0x3f, 0x70, 0x68, 0x70, 0x0a, 0x00, 0xff, 0xfe, 0x00, 0x01]);
  write(app, {
    'index.php': "<?php\nini_set('session.save_path', __DIR__ . '/sessions');\n",
    'broken.php': '<?php\nfunction ( {\n',
    'huge.php': huge,
    'logo.php': binary,
    'empty.php': '',
    'phar-stub.php': Buffer.concat([Buffer.from("<?php\nsession_name('PHARSESS');\n__halt_compiler();"), Buffer.from([0, 1, 2, 0, 255])]),
    'html.phtml': '<html><?= $title ?></html>',
    'vendor/lib/x.php': "<?php ini_set('session.save_path', '/from-vendor');",
    'node_modules/x.php': "<?php ini_set('session.save_path', '/from-node-modules');",
    'notes.txt': "ini_set('session.save_path', '/not-php');",
  });
  symlinkSync('loop', join(app, 'loop'));
  symlinkSync('..', join(app, 'up'));
  symlinkSync('/etc', join(app, 'out'));
  symlinkSync('/etc/passwd', join(app, 'passwd.php'));
  symlinkSync(join(work, 'bad/ring-b'), join(work, 'bad/ring-a'));
  symlinkSync(join(work, 'bad/ring-a'), join(work, 'bad/ring-b'));

  it('reads what it can and names every file it could not read', () => {
    const started = Date.now();
    const r = readApp(new RootFs('/'), app);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(r.settings.map((s) => `${s.directive}=${s.value}`).sort()).toEqual([
      `session.name=PHARSESS`,
      `session.save_path=${app}/sessions`,
    ]);
    expect(r.files).toBe(4); // index, empty, phar-stub, html.phtml (not broken, huge, logo)
    const problems = r.problems.join('\n');
    expect(problems).toMatch(/broken\.php:2: does not parse/);
    expect(problems).toMatch(new RegExp(`huge\\.php: too large \\(${huge.length} bytes\\); not read`));
    expect(problems).toMatch(/logo\.php: binary data \(NUL bytes\); not read/);
    expect(r.problems).toHaveLength(3);
    expect(r.notFollowed.map((p) => p.slice(app.length + 1)).sort()).toEqual(['loop', 'out', 'passwd.php', 'up']);
    expect(JSON.stringify(r)).not.toMatch(/from-vendor|from-node-modules|not-php|"\/huge"/);
  });

  it('a looping or missing application directory is a problem, not an exception', () => {
    expect(readApp(new RootFs('/'), join(work, 'bad/ring-a')).problems).toEqual([expect.stringMatching(/symlink loop/)]);
    expect(readApp(new RootFs('/'), join(work, 'bad/none')).problems).toEqual([expect.stringMatching(/no such directory/)]);
    expect(readApp(new RootFs('/'), join(app, 'index.php')).problems).toEqual([expect.stringMatching(/not a directory/)]);
  });

  it('below --root, a link that leaves the root is not followed, and the report is partial with audit-incomplete', () => {
    const root = join(work, 'bad/root');
    write(root, {
      'etc/php.ini': 'session.save_path = /var/lib/php/sessions\nsession.gc_probability = 0\n',
      'srv/app/index.php': "<?php session_save_path('/srv/app/sess');\n",
    });
    symlinkSync('/../../../../../../..', join(root, 'srv/app/escape'));
    const r = auditIniFile({
      fs: new RootFs(root),
      engine: defaultEngine(),
      iniFile: '/etc/php.ini',
      env: {},
      apps: ['/srv/app', '/srv/missing'],
    });
    expect(r.apps?.map((a) => a.files)).toEqual([1, 0]);
    expect(r.partial).toBe(true);
    expect(r.findings.filter((f) => f.id === 'audit-incomplete').map((f) => f.message)).toEqual([
      expect.stringMatching(/\/srv\/missing: no such directory/),
    ]);
    expect(r.configs[0]?.runtime?.[0]).toMatchObject({
      directive: 'session.save_path',
      value: '/srv/app/sess',
      status: 'differs',
      file: '/srv/app/index.php',
      line: 1,
    });
    const sarif = JSON.parse(renderSarif([r], '0')) as {
      runs: Array<{
        results: Array<{
          ruleId: string;
          locations: Array<{ physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } } }>;
        }>;
      }>;
    };
    const differs = sarif.runs[0]!.results.find((x) => x.ruleId === 'runtime-setting-differs');
    expect(differs?.locations[0]?.physicalLocation).toEqual({
      artifactLocation: { uri: 'srv/app/index.php', uriBaseId: 'ROOT' },
      region: { startLine: 1 },
    });
    expect(sarif.runs[0]!.results.some((x) => x.ruleId === 'runtime-save-path-no-gc')).toBe(true);
  });
});

describe('secrets', () => {
  it('a Redis password in a run-time save_path is never printed', () => {
    const app = join(work, 'secret/app');
    write(app, {
      'index.php':
        "<?php\nini_set('session.save_handler', 'redis');\nini_set('session.save_path', 'tcp://10.0.0.9:6379?auth=' . 'hunter2-secret');\n",
    });
    writeFileSync(join(work, 'secret/php.ini'), 'session.save_handler = files\n');
    const r = auditIniFile({ fs: new RootFs('/'), engine: defaultEngine(), iniFile: join(work, 'secret/php.ini'), env: {}, apps: [app] });
    expect(r.configs[0]?.runtime?.length).toBe(2);
    const out = renderJson([r]) + renderSarif([r], '0');
    expect(out).toContain('auth=<redacted len=14>');
    expect(out).not.toContain('hunter2');
    expect(readFileSync(join(app, 'index.php'), 'utf8')).toContain('hunter2');
  });

  it('a Redis save_path left under the files handler is a directory to PHP, and its password is still never printed', () => {
    // save_handler switched back to files while save_path still names Redis: PHP takes the whole value
    // as a directory (php-src ext/session/mod_files.c), and the audit prints it in the table's
    // save_path row, the JSON report's save_path and the fleet summary.
    mkdirSync(join(work, 'secret-files'));
    writeFileSync(
      join(work, 'secret-files/php.ini'),
      'session.save_handler = files\nsession.save_path = "tcp://10.0.0.9:6379?auth=hunter2-secret&database=2"\n',
    );
    const r = auditIniFile({
      fs: new RootFs('/'),
      engine: defaultEngine(),
      iniFile: join(work, 'secret-files/php.ini'),
      env: {},
      apps: [],
    });
    expect(r.configs[0]?.savePath.kind).toBe('files');
    const out = renderTable([r]) + renderJson([r]) + renderSarif([r], '0') + renderFleet([r]);
    expect(out).toContain('auth=<redacted len=14>');
    expect(out).not.toContain('hunter2');
  });
});

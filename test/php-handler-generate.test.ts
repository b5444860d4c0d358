/**
 * @session-migrate/generate: rendering and writing the PHP artifacts, and the rendered files checked
 * by real PHP: `php -l`, zero deprecation notices under error_reporting=-1 (BUG-20), PHP 7.4 syntax,
 * and the ini fragment parsed by `php -n -c FILE` to the intended values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ARTIFACT_MODE, DEFAULT_FILES_HANDLER_TRAP_PATH, GenerateOptionsError, loadTemplates, renderArtifacts, writeArtifacts,
  type GenerateOptions,
} from '@session-migrate/generate';
import { PHP_DIAGNOSTIC, PHP_DIR, PHP_EXTENSIONS, lastJson, renderInto, runPhp, type Rendered } from './php/harness.ts';
import { caseFile } from './support/fixtures.ts';

const BASE: GenerateOptions = { installDir: '/opt/session-migrate', redis: { host: '127.0.0.1' } };
let tmp: string;
let rendered: Rendered;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sm-generate-'));
  rendered = renderInto({ redis: { host: 'redis.internal', port: 6380, db: 2, prefix: 'shop:sess:', timeoutSeconds: 1.5 } });
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
});

describe('renderArtifacts', () => {
  it('renders the three files with their default names and mode, every placeholder filled', () => {
    const artifacts = renderArtifacts(BASE);
    expect(artifacts.map((a) => [a.path, a.mode])).toEqual([
      ['EncryptedRedisSessionHandler.php', 0o644],
      ['session-migrate-bootstrap.php', 0o644],
      ['99-session-migrate.ini', 0o644],
    ]);
    for (const a of artifacts) expect(a.contents).not.toMatch(/\{\{|\}\}/);
    expect(artifacts[0]!.contents).toContain('namespace SessionMigrate;');
    expect(artifacts[2]!.contents).toContain('auto_prepend_file = "/opt/session-migrate/session-migrate-bootstrap.php"');
    expect(artifacts[2]!.contents).toContain(`session.save_path = "${DEFAULT_FILES_HANDLER_TRAP_PATH}"`);
  });

  it('is deterministic and follows the options', () => {
    const options: GenerateOptions = {
      installDir: '/srv/app/session/',
      namespace: '\\Acme\\Session',
      fileNames: { handler: 'Handler.php', bootstrap: 'boot.php', ini: '50-sessions.ini' },
      redis: { host: '/run/redis/redis.sock', db: 4, prefix: 'p:', timeoutSeconds: 0.5, username: 'sessions' },
      previousAutoPrependFile: '/srv/waf/prepend.php',
    };
    const a = renderArtifacts(options);
    expect(renderArtifacts(options)).toEqual(a);
    expect(a.map((x) => x.path)).toEqual(['Handler.php', 'boot.php', '50-sessions.ini']);
    const [handler, bootstrap, ini] = a.map((x) => x.contents) as [string, string, string];
    expect(handler).toContain('namespace Acme\\Session;');
    expect(bootstrap).toContain("require_once __DIR__ . '/' . 'Handler.php';");
    expect(bootstrap).toContain("'host' => '/run/redis/redis.sock',");
    expect(bootstrap).toContain("'database' => 4,");
    expect(bootstrap).toContain("'timeout' => 0.5,");
    expect(bootstrap).toContain("'username' => 'sessions',");
    expect(bootstrap).toContain('\\Acme\\Session\\EncryptedRedisSessionHandler');
    expect(bootstrap).toContain("require_once '/srv/waf/prepend.php';");
    expect(ini).toContain('auto_prepend_file = "/srv/app/session/boot.php"');
  });

  it('escapes values into PHP literals', () => {
    const [, bootstrap] = renderArtifacts({ ...BASE, redis: { host: 'h', prefix: "it's\\x:" } });
    expect(bootstrap!.contents).toContain("'prefix' => 'it\\'s\\\\x:',");
  });

  it('rejects options it cannot render safely', () => {
    const bad: Array<[string, GenerateOptions]> = [
      ['relative installDir', { ...BASE, installDir: 'opt/sm' }],
      ['quote in installDir', { ...BASE, installDir: '/opt/"sm' }],
      ['$ in installDir', { ...BASE, installDir: '/opt/${x}' }],
      ['newline in prefix', { ...BASE, redis: { host: 'h', prefix: 'a\nb' } }],
      ['empty host', { ...BASE, redis: { host: '' } }],
      ['port 0', { ...BASE, redis: { host: 'h', port: 0 } }],
      ['port 70000', { ...BASE, redis: { host: 'h', port: 70000 } }],
      ['negative db', { ...BASE, redis: { host: 'h', db: -1 } }],
      ['timeout 0', { ...BASE, redis: { host: 'h', timeoutSeconds: 0 } }],
      ['NaN timeout', { ...BASE, redis: { host: 'h', timeoutSeconds: Number.NaN } }],
      ['bad namespace', { ...BASE, namespace: 'Acme\\9x' }],
      ['file name with a directory', { ...BASE, fileNames: { handler: 'sub/Handler.php' } }],
      ['file name ending a comment', { ...BASE, fileNames: { ini: 'x*/.ini' } }],
      ['duplicate file names', { ...BASE, fileNames: { handler: 'a.php', bootstrap: 'a.php' } }],
      ['chain to itself', { ...BASE, previousAutoPrependFile: '/opt/session-migrate/session-migrate-bootstrap.php' }],
    ];
    for (const [what, options] of bad) expect(() => renderArtifacts(options), what).toThrow(GenerateOptionsError);
  });

  it('never renders a password: there is no option for one, the bootstrap reads the environment', () => {
    const [, bootstrap] = renderArtifacts(BASE);
    expect(bootstrap!.contents).toContain("getenv('SESSION_MIGRATE_REDIS_PASSWORD')");
  });

  it('throws on a template placeholder it does not know', () => {
    const templates = { ...loadTemplates(), ini: 'x = {{NOT_A_VALUE}}\n' };
    expect(() => renderArtifacts(BASE, templates)).toThrow(/unknown placeholder \{\{NOT_A_VALUE\}\}/);
  });
});

describe('writeArtifacts', () => {
  it('writes atomically with the given mode, then reports a re-run as unchanged', () => {
    const dir = join(tmp, 'out-a');
    const artifacts = renderArtifacts(BASE);
    const oldUmask = process.umask(0o077);
    try {
      expect(writeArtifacts(dir, artifacts)).toEqual({ changed: artifacts.map((a) => a.path), unchanged: [] });
    } finally {
      process.umask(oldUmask);
    }
    for (const a of artifacts) {
      expect(readFileSync(join(dir, a.path), 'utf8')).toBe(a.contents);
      expect(statSync(join(dir, a.path)).mode & 0o777).toBe(ARTIFACT_MODE);
    }
    expect(readdirSync(dir).sort()).toEqual(artifacts.map((a) => a.path).sort()); // no temp files left
    const mtime = statSync(join(dir, artifacts[0]!.path)).mtimeMs;
    expect(writeArtifacts(dir, artifacts)).toEqual({ changed: [], unchanged: artifacts.map((a) => a.path) });
    expect(statSync(join(dir, artifacts[0]!.path)).mtimeMs).toBe(mtime);
  });

  it('rewrites only what differs: contents or mode', () => {
    const dir = join(tmp, 'out-b');
    const artifacts = renderArtifacts(BASE);
    writeArtifacts(dir, artifacts);
    writeFileSync(join(dir, artifacts[1]!.path), 'edited by hand');
    chmodSync(join(dir, artifacts[2]!.path), 0o600);
    expect(writeArtifacts(dir, artifacts)).toEqual({ changed: [artifacts[1]!.path, artifacts[2]!.path], unchanged: [artifacts[0]!.path] });
    expect(readFileSync(join(dir, artifacts[1]!.path), 'utf8')).toBe(artifacts[1]!.contents);
    expect(statSync(join(dir, artifacts[2]!.path)).mode & 0o777).toBe(0o644);
  });

  it('refuses paths outside the output directory', () => {
    for (const path of ['../x.php', '/etc/x.php', 'a/../../x.php', '']) {
      expect(() => writeArtifacts(join(tmp, 'out-c'), [{ path, contents: 'x', mode: 0o644 }]), path).toThrow(/not inside the output directory/);
    }
  });
});

describe('rendered PHP checked by PHP 8.2', () => {
  const phpFiles = () => [rendered.handlerFile, rendered.bootstrapFile];

  it('php -l accepts every rendered PHP file', () => {
    for (const file of phpFiles()) {
      const run = runPhp(['-l', file]);
      expect(run.stdout, file).toContain('No syntax errors detected');
      expect(run.status).toBe(0);
    }
  });

  /** Loads the files under error_reporting=-1 and returns PHP's diagnostic lines. */
  function diagnostics(files: string[]): { lines: string[]; stdout: string } {
    const code = `${files.map((f) => `require ${JSON.stringify(f)};`).join(' ')} echo "loaded\\n";`;
    const run = runPhp([...PHP_EXTENSIONS, '-d', 'error_reporting=-1', '-d', 'display_errors=1', '-d', 'display_startup_errors=1', '-r', code]);
    const all = `${run.stdout}\n${run.stderr}`;
    return { lines: all.split('\n').filter((l) => PHP_DIAGNOSTIC.test(l)), stdout: run.stdout };
  }

  it('control: the detector sees the 8 deprecations of an untyped handler (BUG-20 legacy_handler.php)', () => {
    const legacy = join(tmp, 'legacy_handler.php');
    writeFileSync(
      legacy,
      readFileSync(caseFile('BUG-20', 'legacy_handler.php'), 'utf8').replace('echo "loaded\\n";', ''),
    );
    expect(diagnostics([legacy]).lines.filter((l) => l.includes('Deprecated: Return type'))).toHaveLength(8);
  });

  it('loading the class and the bootstrap prints no deprecation, warning or notice', () => {
    const { lines, stdout } = diagnostics(phpFiles());
    expect(lines).toEqual([]);
    expect(stdout.trim()).toBe('loaded');
  });

  it('the handler has the PHP 8 interface shape: read/gc untyped with #[\\ReturnTypeWillChange], the rest : bool', () => {
    const code = `require ${JSON.stringify(rendered.handlerFile)};
      $c = new ReflectionClass('SessionMigrate\\\\EncryptedRedisSessionHandler');
      $out = ['interfaces' => $c->getInterfaceNames()];
      foreach (['open', 'close', 'read', 'write', 'destroy', 'gc', 'validateId', 'updateTimestamp'] as $m) {
        $r = $c->getMethod($m);
        $out[$m] = [(string) $r->getReturnType(), array_map(fn($a) => $a->getName(), $r->getAttributes()), array_map(fn($p) => $p->getName(), $r->getParameters())];
      }
      echo json_encode($out);`;
    const out = lastJson<Record<string, unknown>>(runPhp([...PHP_EXTENSIONS, '-r', code]));
    expect(out).toEqual({
      interfaces: ['SessionHandlerInterface', 'SessionUpdateTimestampHandlerInterface'],
      open: ['bool', [], ['path', 'name']],
      close: ['bool', [], []],
      read: ['', ['ReturnTypeWillChange'], ['id']],
      write: ['bool', [], ['id', 'data']],
      destroy: ['bool', [], ['id']],
      gc: ['', ['ReturnTypeWillChange'], ['max_lifetime']],
      validateId: ['bool', [], ['id']],
      updateTimestamp: ['bool', [], ['id', 'data']],
    });
  });

  it('stays within PHP 7.4 syntax (the guard finds 8.0 constructs in a control file)', () => {
    const guard = (file: string) => lastJson<string[]>(runPhp(['-d', 'extension=tokenizer', join(PHP_DIR, 'syntax-guard.php'), file]));
    const control = join(tmp, 'php8.php');
    writeFileSync(control, '<?php\nfunction f(int|string $a): mixed { return match ($a) { default => $a?->b }; }\n#[Foo] function g() {}\n');
    expect(guard(control).length).toBeGreaterThanOrEqual(4);
    for (const file of phpFiles()) expect(guard(file), file).toEqual([]);
  });

  it('uses only ext-redis and ext-sodium beyond the core: no igbinary, no other extension function', () => {
    const handler = readFileSync(rendered.handlerFile, 'utf8');
    expect(handler).not.toMatch(/igbinary|openssl_|mcrypt|apcu_|ini_get\('session\.save_path/);
    expect(handler).not.toMatch(/ini_get\([^)]*KEY/i); // the key never comes from ini
  });
});

describe('the ini fragment parsed by php -n -c FILE', () => {
  it('gives the intended ini_get() values', () => {
    const names = [
      'auto_prepend_file', 'session.auto_start', 'session.save_handler', 'session.save_path', 'session.use_strict_mode',
      'session.use_cookies', 'session.use_only_cookies', 'session.use_trans_sid', 'session.cookie_httponly',
      'session.cookie_secure', 'session.cookie_samesite', 'session.lazy_write', 'session.gc_probability',
      'session.serialize_handler', 'session.gc_maxlifetime',
    ];
    const run = runPhp(['-c', rendered.iniFile, '-r', `echo json_encode(['loaded' => php_ini_loaded_file(), 'values' => array_combine(${JSON.stringify(names)}, array_map('ini_get', ${JSON.stringify(names)}))]);`]);
    expect(run.stderr).toBe('');
    expect(lastJson(run)).toEqual({
      loaded: rendered.iniFile,
      values: {
        auto_prepend_file: rendered.bootstrapFile,
        'session.auto_start': '0',
        'session.save_handler': 'files',
        'session.save_path': DEFAULT_FILES_HANDLER_TRAP_PATH,
        'session.use_strict_mode': '1',
        'session.use_cookies': '1',
        'session.use_only_cookies': '1',
        'session.use_trans_sid': '0',
        'session.cookie_httponly': '1',
        'session.cookie_secure': '1',
        'session.cookie_samesite': 'Lax',
        'session.lazy_write': '1',
        'session.gc_probability': '0',
        // left alone on purpose: PHP's defaults here
        'session.serialize_handler': 'php',
        'session.gc_maxlifetime': '1440',
      },
    });
  });

  it('has a comment for every setting', () => {
    const lines = readFileSync(rendered.iniFile, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*[a-z_.]+\s*=/.test(line)) expect(lines[i - 1], line).toMatch(/^;/);
    });
  });
});

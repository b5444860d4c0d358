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
  ARTIFACT_MODE, DEFAULT_FILES_HANDLER_TRAP_PATH, GenerateOptionsError, HANDLER_FILE, PHP_SOURCES_DIR, loadPhpSources, loadTemplates,
  renderArtifacts, writeArtifacts, type GenerateOptions,
} from '@session-migrate/generate';
import { PHP_DIAGNOSTIC, PHP_DIR, PHP_EXTENSIONS, lastJson, renderInto, runPhp, type Rendered } from './php/harness.ts';

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
  it('renders the bootstrap and the ini fragment, copies the sources, default names and mode, every placeholder filled', () => {
    const artifacts = renderArtifacts(BASE);
    const sources = loadPhpSources();
    expect(artifacts.map((a) => [a.path, a.mode])).toEqual([
      ['session-migrate-bootstrap.php', 0o644],
      ['99-session-migrate.ini', 0o644],
      ...sources.map((src) => [src.path, 0o644]),
    ]);
    expect(sources.map((src) => src.path)).toEqual(expect.arrayContaining(['autoload.php', HANDLER_FILE, 'src/Envelope.php', 'src/SessionLock.php']));
    for (const a of artifacts.slice(0, 2)) expect(a.contents).not.toMatch(/\{\{|\}\}/);
    // the sources are copied byte for byte (they are the reviewed, tested files of php/)
    for (const [i, src] of sources.entries()) expect(artifacts[i + 2]!.contents).toBe(readFileSync(join(PHP_SOURCES_DIR, src.path), 'utf8'));
    expect(artifacts[0]!.contents).toContain('\\SessionMigrate\\Bootstrap::register([');
    expect(artifacts[1]!.contents).toContain('auto_prepend_file = "/opt/session-migrate/session-migrate-bootstrap.php"');
    expect(artifacts[1]!.contents).toContain(`session.save_path = "${DEFAULT_FILES_HANDLER_TRAP_PATH}"`);
  });

  it('is deterministic and follows the options', () => {
    const options: GenerateOptions = {
      installDir: '/srv/app/session/',
      namespace: '\\Acme\\Session',
      fileNames: { bootstrap: 'boot.php', ini: '50-sessions.ini' },
      redis: { host: '/run/redis/redis.sock', db: 4, prefix: 'p:', timeoutSeconds: 0.5, username: 'sessions', persistent: false },
      previousAutoPrependFile: '/srv/waf/prepend.php',
      locking: { retries: 7, waitMicros: 1000, ttlSeconds: 12, onFailure: 'readonly' },
    };
    const a = renderArtifacts(options);
    expect(renderArtifacts(options)).toEqual(a);
    expect(a.map((x) => x.path).slice(0, 3)).toEqual(['boot.php', '50-sessions.ini', 'autoload.php']);
    const [bootstrap, ini] = a.map((x) => x.contents) as [string, string];
    const handler = a.find((x) => x.path === HANDLER_FILE)!.contents;
    expect(handler).toContain('namespace Acme\\Session;');
    expect(handler).toContain('session_set_save_handler(\\Acme\\Session\\EncryptedRedisSessionHandler::registeredHandler(), true)');
    for (const x of a.slice(2)) expect(x.contents, x.path).not.toContain('SessionMigrate');
    expect(bootstrap).toContain("require_once __DIR__ . '/autoload.php';");
    expect(bootstrap).toContain('\\Acme\\Session\\Bootstrap::register([');
    expect(bootstrap).toContain("'host' => '/run/redis/redis.sock',");
    expect(bootstrap).toContain("'database' => 4,");
    expect(bootstrap).toContain("'timeout' => 0.5,");
    expect(bootstrap).toContain("'username' => 'sessions',");
    expect(bootstrap).toContain("'persistent' => false,");
    expect(bootstrap).toContain("'retries' => 7,");
    expect(bootstrap).toContain("'waitMicros' => 1000,");
    expect(bootstrap).toContain("'ttlSeconds' => 12,");
    expect(bootstrap).toContain("'onFailure' => 'readonly',");
    expect(bootstrap).toContain('\\Acme\\Session\\EncryptedRedisSessionHandler');
    expect(bootstrap).toContain("require_once '/srv/waf/prepend.php';");
    expect(ini).toContain('auto_prepend_file = "/srv/app/session/boot.php"');
    expect(ini).toContain(';   on failure   the session opens read-only');
    expect(ini).toContain(';   connections  one per request');
  });

  it('renders cluster seeds, sentinels and verified TLS from the plan contract; never a scheme glued to the host', () => {
    const tls = { caFile: '/etc/redis/ca.pem', certFile: '/etc/redis/client.pem', keyFile: '/etc/redis/client.key', serverName: 'redis.internal' };
    const [cluster, clusterIni] = renderArtifacts({ ...BASE, redis: { topology: 'cluster', host: 'cfg.example', port: 7000, seeds: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }], tls } });
    expect(cluster!.contents).toContain("'topology' => 'cluster',");
    expect(cluster!.contents).toContain("'seeds' => [\n            ['host' => '10.0.0.1', 'port' => 7000],\n            ['host' => '10.0.0.2', 'port' => 7001],\n        ],");
    expect(cluster!.contents).toContain("'tls' => [\n            'caFile' => '/etc/redis/ca.pem',\n            'certFile' => '/etc/redis/client.pem',\n"
      + "            'keyFile' => '/etc/redis/client.key',\n            'serverName' => 'redis.internal',\n        ],");
    expect(clusterIni!.contents).toContain(';   TLS          on, server certificate verified (caFile /etc/redis/ca.pem');
    const [defaultSeed] = renderArtifacts({ ...BASE, redis: { topology: 'cluster', host: 'cfg.example', port: 7000 } });
    expect(defaultSeed!.contents).toContain("'seeds' => [\n            ['host' => 'cfg.example', 'port' => 7000],\n        ],");
    const [sentinel] = renderArtifacts({ ...BASE, redis: { topology: 'sentinel', host: 'unused', sentinels: [{ host: '10.0.0.5', port: 26379 }], masterName: 'sessions' } });
    expect(sentinel!.contents).toContain("'sentinels' => [\n            ['host' => '10.0.0.5', 'port' => 26379],\n        ],");
    expect(sentinel!.contents).toContain("'masterName' => 'sessions',");
    const [plainTls] = renderArtifacts({ ...BASE, redis: { host: 'r.example', tls: {} } });
    expect(plainTls!.contents).toContain("'tls' => [],");
  });

  it('escapes values into PHP literals', () => {
    const [bootstrap] = renderArtifacts({ ...BASE, redis: { host: 'h', prefix: "it's\\x:" } });
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
      ['file name with a directory', { ...BASE, fileNames: { bootstrap: 'sub/boot.php' } }],
      ['file name ending a comment', { ...BASE, fileNames: { ini: 'x*/.ini' } }],
      ['duplicate file names', { ...BASE, fileNames: { ini: 'a.php', bootstrap: 'a.php' } }],
      ['a name the sources use', { ...BASE, fileNames: { bootstrap: 'autoload.php' } }],
      ['the handler file name (fixed by PSR-4)', { ...BASE, fileNames: { handler: 'H.php' } as GenerateOptions['fileNames'] }],
      ['scheme on the host', { ...BASE, redis: { host: 'tls://r.example' } }],
      ['unknown topology', { ...BASE, redis: { host: 'h', topology: 'ring' as 'cluster' } }],
      ['cluster database', { ...BASE, redis: { host: 'h', topology: 'cluster', db: 1 } }],
      ['sentinel without sentinels', { ...BASE, redis: { host: 'h', topology: 'sentinel', masterName: 'm' } }],
      ['sentinel without master name', { ...BASE, redis: { host: 'h', topology: 'sentinel', sentinels: [{ host: 's', port: 26379 }] } }],
      ['seeds without cluster', { ...BASE, redis: { host: 'h', seeds: [{ host: 's', port: 1 }] } }],
      ['relative CA file', { ...BASE, redis: { host: 'h', tls: { caFile: 'ca.pem' } } }],
      ['client certificate without key', { ...BASE, redis: { host: 'h', tls: { certFile: '/c.pem' } } }],
      ['TLS over a unix socket', { ...BASE, redis: { host: '/run/redis.sock', tls: {} } }],
      ['unbounded lock retries', { ...BASE, locking: { retries: -1 } }],
      ['lock TTL 0', { ...BASE, locking: { ttlSeconds: 0 } }],
      ['lock wait 0', { ...BASE, locking: { waitMicros: 0 } }],
      ['unknown failure mode', { ...BASE, locking: { onFailure: 'ignore' as 'fail' } }],
      ['chain to itself', { ...BASE, previousAutoPrependFile: '/opt/session-migrate/session-migrate-bootstrap.php' }],
    ];
    for (const [what, options] of bad) expect(() => renderArtifacts(options), what).toThrow(GenerateOptionsError);
  });

  it('never renders a password: there is no option for one, the bootstrap reads the environment', () => {
    const artifacts = renderArtifacts(BASE);
    expect(artifacts[0]!.contents).toContain('SESSION_MIGRATE_REDIS_PASSWORD');
    const factory = artifacts.find((a) => a.path === 'src/ConnectionFactory.php')!.contents;
    expect(factory).toContain("public const PASSWORD_ENV = 'SESSION_MIGRATE_REDIS_PASSWORD';");
    expect(factory).toContain('getenv($env)');
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
    const listed = readdirSync(dir, { recursive: true }).map(String).filter((p) => p !== 'src').sort();
    expect(listed).toEqual(artifacts.map((a) => a.path).sort()); // no temp files left
    const mtime = statSync(join(dir, artifacts[0]!.path)).mtimeMs;
    expect(writeArtifacts(dir, artifacts)).toEqual({ changed: [], unchanged: artifacts.map((a) => a.path) });
    expect(statSync(join(dir, artifacts[0]!.path)).mtimeMs).toBe(mtime);
  });

  it('rewrites only what differs: contents or mode', () => {
    const dir = join(tmp, 'out-b');
    const artifacts = renderArtifacts(BASE);
    writeArtifacts(dir, artifacts);
    writeFileSync(join(dir, artifacts[0]!.path), 'edited by hand');
    chmodSync(join(dir, artifacts[2]!.path), 0o600);
    expect(writeArtifacts(dir, artifacts)).toEqual({
      changed: [artifacts[0]!.path, artifacts[2]!.path],
      unchanged: artifacts.filter((_, i) => i !== 0 && i !== 2).map((a) => a.path),
    });
    expect(readFileSync(join(dir, artifacts[0]!.path), 'utf8')).toBe(artifacts[0]!.contents);
    expect(statSync(join(dir, artifacts[2]!.path)).mode & 0o777).toBe(0o644);
  });

  it('refuses paths outside the output directory', () => {
    for (const path of ['../x.php', '/etc/x.php', 'a/../../x.php', '']) {
      expect(() => writeArtifacts(join(tmp, 'out-c'), [{ path, contents: 'x', mode: 0o644 }]), path).toThrow(/not inside the output directory/);
    }
  });
});

describe('rendered PHP checked by PHP 8.2', () => {
  // the autoloader first, the bootstrap (which registers the handler) last
  const phpFiles = () => [...rendered.phpFiles.filter((f) => f !== rendered.bootstrapFile), rendered.bootstrapFile];

  it('php -l accepts every rendered PHP file', () => {
    for (const file of phpFiles()) {
      const run = runPhp(['-l', file]);
      expect(run.stdout, file).toContain('No syntax errors detected');
      expect(run.status).toBe(0);
    }
  });

  /** Loads the files under error_reporting=-1 and returns PHP's diagnostic lines. */
  function diagnostics(files: string[]): { lines: string[]; stdout: string } {
    // require_once: the autoloader may have loaded a class file already
    const code = `${files.map((f) => `require_once ${JSON.stringify(f)};`).join(' ')} echo "loaded\\n";`;
    const run = runPhp([...PHP_EXTENSIONS, '-d', 'error_reporting=-1', '-d', 'display_errors=1', '-d', 'display_startup_errors=1', '-r', code]);
    const all = `${run.stdout}\n${run.stderr}`;
    return { lines: all.split('\n').filter((l) => PHP_DIAGNOSTIC.test(l)), stdout: run.stdout };
  }

  it('control: the detector sees the 8 deprecations of an untyped handler (BUG-20 legacy_handler.php)', () => {
    const legacy = join(tmp, 'legacy_handler.php');
    writeFileSync(
      legacy,
      readFileSync('/work/shared/cases/BUG-20/legacy_handler.php', 'utf8').replace('echo "loaded\\n";', ''),
    );
    expect(diagnostics([legacy]).lines.filter((l) => l.includes('Deprecated: Return type'))).toHaveLength(8);
  });

  it('loading the class and the bootstrap prints no deprecation, warning or notice', () => {
    const { lines, stdout } = diagnostics(phpFiles());
    expect(lines).toEqual([]);
    expect(stdout.trim()).toBe('loaded');
  });

  it('the handler and the lazy handler have the PHP 8 interface shape: read/gc untyped with #[\\ReturnTypeWillChange], the rest : bool', () => {
    const code = `require ${JSON.stringify(rendered.autoloadFile)};
      $out = [];
      foreach (['SessionMigrate\\\\EncryptedRedisSessionHandler', 'SessionMigrate\\\\LazySessionHandler'] as $class) {
      $c = new ReflectionClass($class);
      $out['interfaces'] = $c->getInterfaceNames();
      foreach (['open', 'close', 'read', 'write', 'destroy', 'gc', 'validateId', 'updateTimestamp'] as $m) {
        $r = $c->getMethod($m);
        $out[$m] = [(string) $r->getReturnType(), array_map(fn($a) => $a->getName(), $r->getAttributes()), array_map(fn($p) => $p->getName(), $r->getParameters())];
      }
      $all[$class] = $out;
      }
      echo json_encode($all);`;
    const all = lastJson<Record<string, unknown>>(runPhp([...PHP_EXTENSIONS, '-r', code]));
    for (const out of Object.values(all)) expect(out).toEqual({
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
    for (const file of rendered.phpFiles) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/igbinary|openssl_|mcrypt|apcu_|ini_get\('session\.save_path/);
      expect(text, file).not.toMatch(/ini_get\([^)]*KEY/i); // the key never comes from ini
    }
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

/**
 * The PHP codemod over small multi-file apps: where the handler is registered (include graph,
 * execution order, --bootstrap), what is never touched (vendor/, symlinks, generated files), how it
 * writes (dry run, atomic rename, mode kept), and the BUG-27 splice rule.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderArtifacts } from '@session-migrate/generate';
import { CodemodInputError, applyEdits, parsePhp, requireExpression, runCodemod, type Edit } from '../src/index.ts';
import { callEnd, type PhpNode } from '../src/source.ts';
import { FIXTURES_DIR } from '../../../test/support/fixtures.ts';

const SHARED = FIXTURES_DIR; // test/fixtures: cases/BUG-XX
const REQUIRE = (rel: string) => `require_once __DIR__ . '${rel}'; // session-migrate: encrypted Redis session handler`;

let apps: string[] = [];
afterEach(() => {
  for (const a of apps) rmSync(a, { recursive: true, force: true });
  apps = [];
});

/** Writes an app from a map of relative path to text; returns its directory. */
function app(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'codemod-php-app-'));
  apps.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

const read = (dir: string, rel: string) => readFileSync(join(dir, rel), 'utf8');

describe('BUG-27: statement-level call locations include the `;`', () => {
  const code = readFileSync(join(SHARED, 'cases/BUG-27/app.php'), 'latin1');
  const expected = readFileSync(join(SHARED, 'cases/BUG-27/expected_output.php'));
  const calls = (ast: PhpNode): PhpNode[] => {
    const out: PhpNode[] = [];
    const walk = (n: unknown) => {
      if (n === null || typeof n !== 'object') return;
      if (Array.isArray(n)) return n.forEach(walk);
      const node = n as PhpNode;
      if (node.kind === 'call' && (node.what as PhpNode).name === 'session_start') out.push(node);
      for (const [k, v] of Object.entries(node)) if (k !== 'loc') walk(v);
    };
    walk(ast);
    return out;
  };

  it('php-parser 3.7.0 still has the trap (so the naive splice is wrong)', () => {
    const { ast } = parsePhp(code, 'app.php');
    const first = calls(ast)[0]!;
    expect(code.slice(first.loc!.start.offset, first.loc!.end.offset)).toBe('session_start();');
  });

  it('rewriting session_start() with spans from tokens gives expected_output.php byte for byte, and it passes php -l', () => {
    const { ast, tokens } = parsePhp(code, 'app.php');
    const edits: Edit[] = calls(ast).map((c) => {
      const what = c.what as PhpNode;
      return { start: what.loc!.start.offset, end: callEnd(tokens, what.loc!.end.offset), text: '\\App\\Session::start()' };
    });
    const out = Buffer.from(applyEdits(code, edits), 'latin1');
    expect(out.equals(expected)).toBe(true);
    const lint = spawnSync('php', ['-n', '-l'], { input: out, encoding: 'utf8' });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
  });
});

describe('where the handler is registered', () => {
  it('in the file every entry point includes before session_start(), not in the entry points', () => {
    const dir = app({
      'index.php': "<?php\nrequire __DIR__ . '/includes/bootstrap.php';\nsession_start();\n",
      'admin/index.php': "<?php\nrequire_once dirname(__DIR__) . '/includes/bootstrap.php';\nsession_start();\n",
      'includes/bootstrap.php': "<?php\nrequire_once __DIR__ . DIRECTORY_SEPARATOR . 'config.php';\n",
      'includes/config.php': "<?php\n$db = 'x';\n",
      'lib/Model.php': '<?php\nclass Model {}\n',
    });
    const r = runCodemod({ dir });
    expect(r.entryPoints).toEqual(['admin/index.php', 'index.php']);
    expect(r.registeredIn).toEqual(['includes/bootstrap.php']);
    expect(read(dir, 'includes/bootstrap.php')).toBe(
      `<?php\n${REQUIRE('/../session-migrate/session-migrate-bootstrap.php')}\nrequire_once __DIR__ . DIRECTORY_SEPARATOR . 'config.php';\n`,
    );
    expect(read(dir, 'index.php')).toBe("<?php\nrequire __DIR__ . '/includes/bootstrap.php';\nsession_start();\n");
  });

  it('in a shared file with code of its own rather than in a library of functions included first', () => {
    const dir = app({
      'a.php': "<?php\nrequire_once 'lib/functions.php';\nrequire_once 'lib/init.php';\nsession_start();\n",
      'b.php': "<?php\nrequire_once 'lib/functions.php';\nrequire_once 'lib/init.php';\nsession_start();\n",
      'lib/functions.php': '<?php\nfunction h(string $s): string\n{\n    return $s;\n}\n',
      'lib/init.php': '<?php\n$app = [];\n',
    });
    expect(runCodemod({ dir }).registeredIn).toEqual(['lib/init.php']);
  });

  it('in each entry point that starts a session when no file is common to all of them before session_start()', () => {
    const dir = app({
      // index.php starts the session BEFORE it includes the shared file: that file would be too late.
      'index.php': "<?php\nsession_start();\nrequire 'inc/boot.php';\n",
      'api.php': "<?php\nrequire 'inc/boot.php';\ninclude 'inc/header.php';\n",
      'inc/boot.php': '<?php\n$x = 1;\n',
      'inc/header.php': '<?php\nsession_start();\n',
      'cron.php': "<?php\nrequire 'inc/boot.php';\necho 'no session';\n",
    });
    const r = runCodemod({ dir });
    expect(r.sessionEntryPoints).toEqual(['api.php', 'index.php']);
    expect(r.registeredIn).toEqual(['api.php', 'index.php']);
    expect(read(dir, 'index.php').split('\n')[1]).toBe(REQUIRE('/session-migrate/session-migrate-bootstrap.php'));
    expect(read(dir, 'cron.php')).not.toContain('session-migrate');
    expect(read(dir, 'inc/boot.php')).not.toContain('session-migrate');
    expect(runCodemod({ dir }).changes).toEqual([]);
  });

  it('in the file given with --bootstrap, warning about entry points that do not reach it', () => {
    const dir = app({
      'index.php': "<?php\nrequire 'app.php';\nsession_start();\n",
      'other.php': '<?php\nsession_start();\n',
      'app.php': '<?php\n',
    });
    const r = runCodemod({ dir, bootstrap: join(dir, 'app.php') });
    expect(r.registeredIn).toEqual(['app.php']);
    expect(r.findings.filter((f) => f.id === 'bootstrap-not-reached').map((f) => f.file)).toEqual(['other.php']);
    expect(() => runCodemod({ dir, bootstrap: '/etc/hostname' })).toThrow(CodemodInputError);
    expect(() => runCodemod({ dir: join(dir, 'missing') })).toThrow(CodemodInputError);
  });

  it('reports a session_start() no entry point includes statically instead of guessing where it runs', () => {
    const dir = app({
      'public/index.php': "<?php\nrequire __DIR__ . '/../vendor/autoload.php';\n(new App\\Kernel())->run();\n",
      'src/Session.php':
        '<?php\nnamespace App;\nfinal class Session\n{\n    public function start(): void\n    {\n        session_start();\n    }\n}\n',
    });
    const r = runCodemod({ dir });
    expect(r.changes).toEqual([]);
    expect(r.findings.filter((f) => f.id === 'session-start-unreached').map((f) => [f.file, f.line, f.severity])).toEqual([
      ['src/Session.php', 7, 'high'],
    ]);
    expect(r.incomplete).toBe(true);
    mkdirSync(join(dir, 'session-migrate'));
    writeFileSync(join(dir, 'session-migrate', 'session-migrate-bootstrap.php'), '<?php\n// Generated by session-migrate\n');
    const given = runCodemod({ dir, bootstrap: join(dir, 'public/index.php') });
    expect(given.registeredIn).toEqual(['public/index.php']);
    expect(given.findings.find((f) => f.id === 'session-start-unreached')?.severity).toBe('info');
    expect(given.incomplete).toBe(false);
  });

  it('names the handler bootstrap relative to __DIR__ inside the app, by absolute path outside it', () => {
    expect(requireExpression('/srv/app', '/srv/app/public/index.php', '/srv/app/lib/sm/session-migrate-bootstrap.php')).toBe(
      "__DIR__ . '/../lib/sm/session-migrate-bootstrap.php'",
    );
    expect(requireExpression('/srv/app', '/srv/app/index.php', "/opt/it's/session-migrate-bootstrap.php")).toBe(
      "'/opt/it\\'s/session-migrate-bootstrap.php'",
    );
  });

  it('treats paths given through a symlinked app directory as inside the app', () => {
    const dir = app({ 'web/index.php': '<?php\nsession_start();\n', 'lib/boot.php': '<?php\n' });
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    apps.push(link);
    const r = runCodemod({
      dir: link,
      handlerBootstrap: join(link, 'lib/sm/session-migrate-bootstrap.php'),
      bootstrap: join(link, 'web/index.php'),
    });
    expect(r.registeredIn).toEqual(['web/index.php']);
    expect(read(dir, 'web/index.php')).toContain("require_once __DIR__ . '/../lib/sm/session-migrate-bootstrap.php';");
  });
});

describe('what it never touches', () => {
  it('skips vendor/ and node_modules/, does not follow symlinks, and ignores the generated files', () => {
    const outside = app({ 'evil.php': "<?php\nini_set('session.save_handler', 'files');\n" });
    const dir = app({
      'index.php': '<?php\nsession_start();\n',
      'vendor/lib/x.php': "<?php\nini_set('session.save_handler', 'files');\n",
      'node_modules/y/z.php': "<?php\nsession_save_path('/tmp');\n",
    });
    symlinkSync(join(outside, 'evil.php'), join(dir, 'link.php'));
    symlinkSync(outside, join(dir, 'linkdir'));
    const [, bootstrap] = renderArtifacts({ installDir: '/srv/app/session-migrate', redis: { host: '127.0.0.1' } });
    mkdirSync(join(dir, 'session-migrate'));
    writeFileSync(join(dir, 'session-migrate', 'session-migrate-bootstrap.php'), bootstrap!.contents);
    const r = runCodemod({ dir });
    expect(r.changes.map((c) => c.file)).toEqual(['index.php']);
    expect(r.skipped).toEqual([
      { file: 'link.php', reason: 'symbolic link: not followed' },
      { file: 'linkdir', reason: 'symbolic link: not followed' },
    ]);
    expect(r.findings.some((f) => f.id === 'custom-handler-registered')).toBe(false);
    expect(r.findings.some((f) => f.id === 'handler-bootstrap-missing')).toBe(false);
    expect(readFileSync(join(outside, 'evil.php'), 'utf8')).toContain('ini_set');
    expect(read(dir, 'vendor/lib/x.php')).toContain('ini_set');
    // A symbolic link not followed is a file nobody looked at: left for a person (exit 1).
    expect(r.incomplete).toBe(true);
  });

  it('BUG-14: a pool that pins session.save_handler with php_admin_value is codemod-target-locked; a pinned save_path is not', () => {
    const dir = app({ 'index.php': '<?php\nsession_start();\n' });
    const pinned = join(dir, '..', `${dir.split('/').pop()}-pinned.conf`);
    writeFileSync(pinned, '; pool\n[www]\nlisten = /run/php.sock\nphp_admin_value[session.save_handler] = files\n');
    apps.push(pinned);
    const bug14 = join(SHARED, 'cases/BUG-14/pool.conf');
    const r = runCodemod({ dir, fpmPools: [bug14, pinned], dryRun: true });
    expect(r.findings.filter((f) => f.file === bug14).map((f) => [f.id, f.severity, f.line])).toEqual([
      ['pool-save-path-locked', 'info', 6],
    ]);
    const locked = r.findings.filter((f) => f.file === pinned);
    expect(locked.map((f) => [f.id, f.severity, f.line])).toEqual([['codemod-target-locked', 'high', 4]]);
    expect(locked[0]!.message).toContain('pool [www] pins session.save_handler = files');
    expect(r.incomplete).toBe(true);
    expect(() => runCodemod({ dir, fpmPools: [join(dir, 'missing.conf')] })).toThrow(CodemodInputError);
  });

  it('reports Symfony handler_id settings in config/packages without changing them', () => {
    const dir = app({
      'config/packages/framework.yaml':
        "framework:\n    session:\n        handler_id: 'session.handler.native_file'\n        save_path: '%kernel.project_dir%/var/sessions'\n",
      'config/packages/prod/framework.yaml': 'framework:\n    session:\n        handler_id: ~\n',
    });
    const r = runCodemod({ dir });
    expect(r.findings.filter((f) => f.id === 'framework-config').map((f) => [f.file, f.line, f.severity])).toEqual([
      ['config/packages/framework.yaml', 3, 'medium'],
      ['config/packages/prod/framework.yaml', 3, 'info'],
    ]);
    expect(r.changes).toEqual([]);
  });
});

describe('reports', () => {
  it('never show a save_path value (it can carry a Redis password)', () => {
    const dir = app({
      'index.php':
        "<?php\nini_set('session.save_path', 'tcp://r:6379?auth=s3cret');\nsession_save_path('tcp://r?auth=s3cret');\n$x = ini_set('session.save_path', '/srv/s3cret');\nsession_save_path('/srv/s3cret');\n",
    });
    const r = runCodemod({ dir, dryRun: true });
    expect(r.findings.filter((f) => f.id === 'other-save-path')).toHaveLength(2);
    expect(r.findings.filter((f) => f.id.startsWith('files-handler-call'))).toHaveLength(2);
    expect(JSON.stringify(r.findings)).not.toContain('s3cret');
  });
});

describe('how it writes', () => {
  it('--dry-run returns a unified diff and writes nothing', () => {
    const text = "<?php\r\nsession_start();\r\nini_set('session.save_handler', 'files');\r\n";
    const dir = app({ 'index.php': text });
    const r = runCodemod({ dir, dryRun: true });
    expect(read(dir, 'index.php')).toBe(text);
    expect(r.changes).toHaveLength(1);
    expect(r.changes[0]!.written).toBe(false);
    expect(r.changes[0]!.diff).toContain('--- a/index.php');
    expect(r.changes[0]!.diff).toContain('+++ b/index.php');
    expect(r.changes[0]!.diff).toContain("-ini_set('session.save_handler', 'files');");
    expect(r.changes[0]!.diff).toMatch(/@@ -1,3 \+1,3 @@/);
  });

  it('keeps the file mode, leaves no temporary file, and writes only the spliced bytes', () => {
    const text = "<?php\n/* keep   this */\tsession_start();  // and this\nsession_module_name('files');\n";
    const dir = app({ 'index.php': text });
    chmodSync(join(dir, 'index.php'), 0o640);
    const r = runCodemod({ dir });
    expect(r.changes[0]!.written).toBe(true);
    expect(statSync(join(dir, 'index.php')).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir).sort()).toEqual(['index.php']);
    expect(read(dir, 'index.php')).toBe(
      `<?php\n${REQUIRE('/session-migrate/session-migrate-bootstrap.php')}\n/* keep   this */\tsession_start();  // and this\n`,
    );
  });
});

describe('--replace-custom-handler (BUG-20)', () => {
  const CALLBACKS = "session_set_save_handler('sess_open', 'sess_close', 'sess_read', 'sess_write', 'sess_destroy', 'sess_gc');";

  it('off (the default): a custom registration in an included file is reported, not changed, and that entry point gets no require', () => {
    const dir = app({
      'index.php': "<?php\nrequire __DIR__ . '/lib/session.php';\nsession_start();\n",
      'lib/session.php': `<?php\n${CALLBACKS}\n`,
    });
    const r = runCodemod({ dir });
    expect(r.changes).toEqual([]);
    expect(r.findings.find((f) => f.id === 'custom-handler-registered')).toMatchObject({ file: 'lib/session.php', severity: 'high' });
    expect(r.incomplete).toBe(true);
  });

  it('on: the registration in an included file is rewritten and the require goes into a file entered before it', () => {
    const dir = app({
      'index.php': "<?php\nrequire __DIR__ . '/lib/session.php';\nsession_start();\n",
      'api.php': "<?php\nrequire __DIR__ . '/lib/session.php';\nsession_start();\necho json_encode($_SESSION);\n",
      'lib/session.php': `<?php\nfunction sess_open() { return true; }\n${CALLBACKS}\n`,
    });
    const r = runCodemod({ dir, replaceCustomHandler: true });
    expect(r.registeredIn).toEqual(['lib/session.php']);
    expect(read(dir, 'lib/session.php')).toBe(
      `<?php\n${REQUIRE('/../session-migrate/session-migrate-bootstrap.php')}\nfunction sess_open() { return true; }\nsession_set_save_handler(\\SessionMigrate\\EncryptedRedisSessionHandler::registeredHandler(), true);\n`,
    );
    expect(r.findings.filter((f) => f.id === 'custom-handler-replaced').map((f) => [f.file, f.line])).toEqual([['lib/session.php', 3]]);
    // custom-handler-replaced is medium (the old storage is not migrated): left for a person.
    expect(r.incomplete).toBe(true);
    const again = runCodemod({ dir, replaceCustomHandler: true });
    expect(again.changes).toEqual([]);
  });

  it('the namespace comes from the generated bootstrap (--handler-bootstrap), else --handler-namespace, and a bad one is bad input', () => {
    const [bootstrap] = renderArtifacts({
      installDir: '/srv/app/session-migrate',
      redis: { host: '127.0.0.1' },
      namespace: 'Acme\\Session',
    });
    const dir = app({
      'index.php': `<?php\n${CALLBACKS}\nsession_start();\n`,
      'session-migrate/session-migrate-bootstrap.php': bootstrap!.contents,
    });
    const dry = runCodemod({ dir, replaceCustomHandler: true, dryRun: true });
    expect(dry.changes[0]!.diff).toContain(
      '+session_set_save_handler(\\Acme\\Session\\EncryptedRedisSessionHandler::registeredHandler(), true);',
    );
    const given = runCodemod({ dir, replaceCustomHandler: true, dryRun: true, handlerNamespace: '\\Other\\Ns' });
    expect(given.changes[0]!.diff).toContain(
      '+session_set_save_handler(\\Other\\Ns\\EncryptedRedisSessionHandler::registeredHandler(), true);',
    );
    expect(() => runCodemod({ dir, replaceCustomHandler: true, handlerNamespace: "x'); evil(); //" })).toThrow(CodemodInputError);
    expect(read(dir, 'index.php')).toBe(`<?php\n${CALLBACKS}\nsession_start();\n`);
  });

  it('leaves a registration it cannot rewrite safely (named or unpacked arguments) reported', () => {
    const dir = app({ 'index.php': '<?php\nsession_set_save_handler(...$callbacks);\nsession_start();\n' });
    const r = runCodemod({ dir, replaceCustomHandler: true });
    expect(r.findings.find((f) => f.id === 'custom-handler-registered')?.severity).toBe('high');
    expect(read(dir, 'index.php')).toBe('<?php\nsession_set_save_handler(...$callbacks);\nsession_start();\n');
  });
});

describe('first-class callables (PHP 8.1)', () => {
  it('session_start(...) is a callable, not a session start; session_start(...)() is a start; PHP agrees', () => {
    const code = '<?php\n$start = session_start(...);\nsession_start(...)();\n';
    const dir = app({ 'index.php': code });
    const report = runCodemod({ dir, dryRun: true });
    expect(report.findings.filter((f) => f.id === 'session-callable').map((f) => `${f.severity} @${f.line}`)).toEqual(['medium @2']);
    expect(report.findings.filter((f) => f.id === 'session-start').map((f) => f.line)).toEqual([3]);
    expect(report.registeredIn).toEqual(['index.php']);
    // The oracle: the Closure starts nothing until it is called.
    const r = spawnSync(
      'php',
      [
        '-n',
        '-r',
        '$f = session_start(...); $a = session_status(); $f(); echo json_encode([$a, session_status(), $f instanceof Closure]);',
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout).toBe('[1,2,true]');
  });
});

describe('getters written in place of a call whose value is used', () => {
  it("are fully qualified in a namespace, so PHP calls its own ini_get(), not the namespace's; unqualified in global code", () => {
    const code = [
      '<?php',
      'namespace App;',
      "function ini_get(string $o): string { return 'app'; }",
      "$old = \\ini_set('session.save_handler', 'files');",
      'echo $old;',
      '',
    ].join('\n');
    const dir = app({ 'lib.php': code, 'global.php': "<?php\n$old = ini_set('session.save_handler', 'files');\necho $old;\n" });
    mkdirSync(join(dir, 'session-migrate'));
    writeFileSync(join(dir, 'session-migrate', 'session-migrate-bootstrap.php'), '<?php\n');
    runCodemod({ dir });
    expect(read(dir, 'lib.php')).toContain("\\ini_get('session.save_handler');");
    expect(read(dir, 'global.php')).toContain(" ini_get('session.save_handler');");
    // The oracle: PHP runs the rewritten namespaced file and prints the files handler's name, not 'app'.
    const r = spawnSync('php', ['-n', join(dir, 'lib.php')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('files');
  });
});

describe("a namespace's function declared in another file (PHP's fallback to global functions)", () => {
  it('an unqualified call in that namespace, in any file, is reported and left alone; qualified calls and other namespaces are rewritten', () => {
    const index = [
      '<?php',
      'namespace App;',
      "require __DIR__ . '/lib/functions.php';",
      "echo ini_set('session.save_handler', 'files');",
      "\\ini_set('session.save_path', '/tmp');",
      'session_start();',
      '',
    ].join('\n');
    const dir = app({
      'lib/functions.php': "<?php\nnamespace App;\nfunction ini_set(string $o, $v) { return 'app'; }\n",
      'index.php': index,
      'other.php': "<?php\nnamespace Other;\nini_set('session.save_handler', 'files');\nsession_start();\n",
    });
    // The oracle: PHP calls App\ini_set() here, declared by the other file.
    const php = spawnSync('php', ['-n', '-d', 'error_reporting=0', join(dir, 'index.php')], { encoding: 'utf8' });
    expect(php.stdout).toBe('app');

    const report = runCodemod({ dir, handlerBootstrap: join(dir, 'boot.php') });
    expect(report.findings.filter((f) => f.id === 'namespace-function-elsewhere')).toEqual([
      {
        file: 'index.php',
        line: 4,
        id: 'namespace-function-elsewhere',
        severity: 'high',
        message:
          'ini_set() in namespace App may call App\\ini_set(), which lib/functions.php declares (PHP calls it instead of the global ini_set() once that file is loaded): not changed',
        fix: "write \\ini_set() if PHP's function is meant (the codemod then handles it), or namespace\\ini_set() if the app's",
      },
    ]);
    expect(report.incomplete).toBe(true);
    const after = read(dir, 'index.php');
    expect(after).toContain("echo ini_set('session.save_handler', 'files');\n");
    expect(after).not.toContain("\\ini_set('session.save_path'");
    expect(read(dir, 'other.php')).not.toContain('ini_set');
  });
});

describe('valid PHP that php-parser 3.7.0 cannot read: declare(ticks=1) with one statement', () => {
  it('is skipped in one line naming the file and saying PHP accepts it; the other files are rewritten', () => {
    const ticks = "<?php\ndeclare(ticks=1) echo \"tick\";\nini_set('session.save_handler', 'files');\nsession_start();\n";
    const dir = app({ 'a.php': ticks, 'b.php': "<?php\nini_set('session.save_handler', 'files');\nsession_start();\n" });
    // The oracle: PHP accepts the file.
    expect(spawnSync('php', ['-n', '-l', join(dir, 'a.php')], { encoding: 'utf8' }).status).toBe(0);
    const report = runCodemod({ dir, handlerBootstrap: join(dir, 'boot.php') });
    expect(report.skipped).toEqual([
      {
        file: 'a.php',
        reason:
          "php-parser cannot read it, though php -l accepts it (Parse Error : syntax error, unexpected 'echo' (T_ECHO), expecting ';' on line 2): not analysed, check its session calls by hand",
      },
    ]);
    expect(report.findings.find((f) => f.file === 'a.php' && f.id === 'parse-error')).toMatchObject({ severity: 'high', line: 2 });
    expect(report.incomplete).toBe(true);
    expect(read(dir, 'a.php')).toBe(ticks);
    expect(report.changes.map((c) => c.file)).toEqual(['b.php']);
    expect(read(dir, 'b.php')).not.toContain('ini_set');
  });
});

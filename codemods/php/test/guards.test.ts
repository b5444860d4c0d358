/**
 * Guards of the PHP codemod that the README promises and that no fixture exercises: a file changed
 * on disk while the codemod ran is never overwritten, and a pool's php_admin_flag pins a session key
 * as php_admin_value does (BUG-14 "locked_by": php_admin_value / php_admin_flag). Each test here
 * fails when its guard is removed (checked by removing it: `expected` in writeAtomically, flags in
 * php-ini's POOL_VALUE_KINDS). A file or directory this user cannot write stops the run before
 * anything is written (it wrote the files before it, then died with "unexpected error: EACCES").
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFpmPool, runCodemod } from '../src/index.ts';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'codemod-php-guards-'));
  dirs.push(d);
  return d;
}

describe('a file changed on disk while the codemod ran', () => {
  it('is not overwritten: the edit made meanwhile stays, the file is listed as skipped and the run is incomplete', () => {
    const root = tmp();
    const app = join(root, 'app');
    const file = join(app, 'index.php');
    const original = "<?php\nini_set('session.save_handler', 'files');\nsession_start();\n";
    const meanwhile =
      "<?php\n// saved by a colleague's editor while the codemod ran\nini_set('session.save_handler', 'files');\nsession_start();\n";
    mkdirSync(app);
    writeFileSync(file, original);
    chmodSync(file, 0o640);
    // The codemod runs `php -l` on the new text between reading the file and writing it: this php
    // saves the other version of the file first, as an editor would at that moment.
    const php = join(root, 'php-that-edits');
    writeFileSync(php, `#!/bin/sh\nprintf '%s' ${shellQuote(meanwhile)} > ${shellQuote(file)}\nexec php "$@"\n`);
    chmodSync(php, 0o755);

    const r = runCodemod({ dir: app, php });
    expect(readFileSync(file, 'utf8')).toBe(meanwhile);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(r.changes).toEqual([]);
    expect(r.registeredIn).toEqual([]);
    expect(r.skipped).toEqual([{ file: 'index.php', reason: 'changed on disk while the codemod ran: not changed, run it again' }]);
    const f = r.findings.find((x) => x.id === 'file-changed-meanwhile');
    expect(f).toMatchObject({
      file: 'index.php',
      message: 'changed on disk while the codemod ran: not changed, run it again (2 change(s) not made)',
    });
    expect(r.findings.some((x) => x.id === 'handler-registered' || x.id === 'files-handler-call-removed')).toBe(false);
    expect(r.incomplete).toBe(true);

    // Run again on the new version: it is rewritten.
    const again = runCodemod({ dir: app });
    expect(again.changes.map((c) => c.file)).toEqual(['index.php']);
    expect(readFileSync(file, 'utf8')).toContain("// saved by a colleague's editor while the codemod ran\n");
    expect(readFileSync(file, 'utf8')).not.toContain('ini_set');
  });
});

describe('FPM pools: php_admin_flag pins like php_admin_value (BUG-14 locked_by)', () => {
  it('php_admin_flag[session.save_handler] is codemod-target-locked and php_admin_flag[session.save_path] is reported, as php-fpm applies them', () => {
    const text =
      '[www]\nlisten = /run/php.sock\nphp_admin_flag[session.save_handler] = off\n\n[api]\nphp_admin_flag[session.save_path] = On\nphp_flag[session.save_handler] = on\n';
    const findings = analyzeFpmPool(text, '/etc/php/8.2/fpm/pool.d/www.conf');
    expect(findings.map((f) => [f.id, f.line])).toEqual([
      ['codemod-target-locked', 3],
      ['pool-save-path-locked', 6],
    ]);
    // php-fpm stores a flag as "0"/"1" (fpm_conf.c fpm_conf_set_boolean): that is the pinned value.
    expect(findings[0]!.message).toBe(
      'pool [www] pins session.save_handler = 0 with php_admin_flag: PHP refuses run-time changes of it, so the handler the codemod registers cannot be relied on there',
    );
    expect(findings[1]!.message).toContain('pool [api] pins session.save_path with php_admin_flag');
  });

  it('reads the pool as php-fpm does: the first admin line of a key wins, quotes and comments are ini syntax, an invalid flag pins nothing', () => {
    const text = [
      '[www]',
      'php_admin_value[session.save_handler] = "files" ; the first one is applied',
      'php_admin_value[session.save_handler] = redis',
      'php_value[session.save_path] = /srv/sessions',
      '[broken]',
      'php_admin_flag[session.save_handler] = files',
      '',
    ].join('\n');
    const findings = analyzeFpmPool(text, 'www.conf');
    expect(findings.map((f) => [f.id, f.line, f.message.split(':')[0]])).toEqual([
      ['codemod-target-locked', 2, 'pool [www] pins session.save_handler = files with php_admin_value'],
    ]);
  });
});

describe('a file this user cannot write', () => {
  const BIN = join(import.meta.dirname, '../../../packages/cli/bin/session-migrate.js');
  const NOBODY = 65534;
  const asRoot = process.getuid?.() === 0;
  /** The CLI as a process; as root it runs as `nobody` (setpriv), since root may write any file. */
  function cli(root: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
    const cmd = asRoot ? 'setpriv' : process.execPath;
    const argv = asRoot ? [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, ...args] : [BIN, ...args];
    return spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, HOME: root, TMPDIR: join(root, 'tmp') }, timeout: 120_000 });
  }
  const original = "<?php\nini_set('session.save_handler', 'files');\nsession_start();\n";

  it.each([
    ['a directory that is not writable', 'z/y.php: its directory is not writable'],
    ['a read-only file', 'z/y.php: the file is read-only'],
  ])('%s: one line, exit 2, and no file is changed, not even the writable ones', (_what, reason) => {
    const root = mkdtempSync(join(asRoot ? '/tmp' : tmpdir(), 'codemod-php-ro-'));
    dirs.push(root);
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'tmp'), { mode: 0o700 });
    const app = join(root, 'app');
    for (const d of [app, join(app, 'a'), join(app, 'z')]) mkdirSync(d, { mode: 0o755 });
    writeFileSync(join(app, 'a', 'x.php'), original, { mode: 0o644 });
    writeFileSync(join(app, 'z', 'y.php'), original, { mode: 0o644 });
    if (asRoot)
      for (const p of [join(root, 'tmp'), app, join(app, 'a'), join(app, 'z'), join(app, 'a', 'x.php'), join(app, 'z', 'y.php')])
        chownSync(p, NOBODY, NOBODY);
    if (reason.endsWith('not writable')) chmodSync(join(app, 'z'), 0o555);
    else chmodSync(join(app, 'z', 'y.php'), 0o444);

    const r = cli(root, ['codemod', 'php', app, '--handler-bootstrap', join(app, 'boot.php')]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toBe(`session-migrate: cannot write ${reason}: nothing was changed\n`);
    expect(readFileSync(join(app, 'a', 'x.php'), 'utf8')).toBe(original);
    expect(readFileSync(join(app, 'z', 'y.php'), 'utf8')).toBe(original);
    chmodSync(join(app, 'z'), 0o755);

    // --dry-run shows both diffs, then refuses as the real run would: the same line, exit 2
    chmodSync(join(app, 'z', 'y.php'), 0o444);
    const dry = cli(root, ['codemod', 'php', app, '--handler-bootstrap', join(app, 'boot.php'), '--dry-run']);
    expect(dry.stdout).toContain('+++ b/a/x.php');
    expect(dry.stdout).toContain('+++ b/z/y.php');
    expect(dry.stdout).not.toContain('complete: nothing left to decide by hand');
    expect(dry.status, dry.stderr).toBe(2);
    expect(dry.stderr).toBe('session-migrate: cannot write z/y.php: the file is read-only: nothing was changed\n');
  });
});

describe('a file with several hard links (the rule codemod cdk follows too: @session-migrate/common rewrite-files.ts)', () => {
  it('refuses the run in one line naming it, exit 2, and no file is changed: the link is not split', () => {
    const root = tmp();
    const app = join(root, 'app');
    const original = "<?php\nini_set('session.save_handler', 'files');\nsession_start();\n";
    for (const d of [app, join(app, 'a'), join(app, 'z')]) mkdirSync(d);
    writeFileSync(join(app, 'a', 'x.php'), original);
    writeFileSync(join(app, 'z', 'y.php'), original);
    // The same file under another name outside the app (a deploy tool's hard-linked release copy).
    linkSync(join(app, 'z', 'y.php'), join(root, 'release-y.php'));
    const bin = join(import.meta.dirname, '../../../packages/cli/bin/session-migrate.js');
    const r = spawnSync(process.execPath, [bin, 'codemod', 'php', app, '--handler-bootstrap', join(app, 'boot.php')], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toBe(
      'session-migrate: cannot write z/y.php: has 2 hard links (rewriting it would split them; make it a file of its own first): nothing was changed\n',
    );
    expect(readFileSync(join(app, 'a', 'x.php'), 'utf8')).toBe(original);
    expect(readFileSync(join(app, 'z', 'y.php'), 'utf8')).toBe(original);
    expect(statSync(join(app, 'z', 'y.php')).ino).toBe(statSync(join(root, 'release-y.php')).ino);

    // --dry-run reports the same refusal, with the same line and exit code, after the diff
    const dry = spawnSync(process.execPath, [bin, 'codemod', 'php', app, '--handler-bootstrap', join(app, 'boot.php'), '--dry-run'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(dry.status, dry.stderr).toBe(2);
    expect(dry.stderr).toBe(r.stderr);
    expect(dry.stdout).toContain('+++ b/z/y.php');
    expect(dry.stdout).toContain('refused: the real run would change nothing (the reason follows)');
    // the last line is a verdict of the form every run ends with (incomplete: a file is left for a person)
    expect(dry.stdout.trimEnd().split('\n').at(-1)).toBe('incomplete: refused: the real run would change nothing (the reason follows)');
    expect(readFileSync(join(app, 'z', 'y.php'), 'utf8')).toBe(original);
    // the library: the report carries the refusal
    expect(runCodemod({ dir: app, handlerBootstrap: join(app, 'boot.php'), dryRun: true }).refused).toBe(
      'cannot write z/y.php: has 2 hard links (rewriting it would split them; make it a file of its own first): nothing was changed',
    );
  });
});

describe('a read-only file (no write bit) when the codemod runs as root', () => {
  it.skipIf(process.getuid?.() !== 0)(
    'is refused like for any user (access(2) would let root write it): exit 2, nothing changed, --dry-run too',
    () => {
      const root = tmp();
      const app = join(root, 'app');
      const original = "<?php\nini_set('session.save_handler', 'files');\nsession_start();\n";
      for (const d of [app, join(app, 'a'), join(app, 'z')]) mkdirSync(d);
      writeFileSync(join(app, 'a', 'x.php'), original);
      writeFileSync(join(app, 'z', 'y.php'), original, { mode: 0o444 });
      chmodSync(join(app, 'z', 'y.php'), 0o444);
      const bin = join(import.meta.dirname, '../../../packages/cli/bin/session-migrate.js');
      for (const extra of [[], ['--dry-run']]) {
        const r = spawnSync(process.execPath, [bin, 'codemod', 'php', app, '--handler-bootstrap', join(app, 'boot.php'), ...extra], {
          encoding: 'utf8',
          timeout: 120_000,
        });
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr).toBe('session-migrate: cannot write z/y.php: the file is read-only: nothing was changed\n');
        // the dry run ends with a verdict line (the real run refuses before its report)
        if (extra.length > 0) expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/^incomplete: refused: /);
      }
      expect(readFileSync(join(app, 'a', 'x.php'), 'utf8')).toBe(original);
      expect(readFileSync(join(app, 'z', 'y.php'), 'utf8')).toBe(original);
      expect(statSync(join(app, 'z', 'y.php')).mode & 0o777).toBe(0o444);
    },
  );
});

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

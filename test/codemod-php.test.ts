/**
 * `session-migrate codemod php` through the CLI binary: output, exit codes (0 complete, 1 something
 * left to a person, 2 bad input) and --json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** Each test starts the CLI (tsx) several times; on a loaded machine one start can take 10 s. */
const CLI_TIMEOUT_MS = 240_000;
const BIN = join(import.meta.dirname, '../packages/cli/bin/session-migrate.js');
const root = mkdtempSync(join(tmpdir(), 'codemod-php-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function app(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

describe('session-migrate codemod php', () => {
  it(
    '--dry-run prints the unified diff and the report, writes nothing, exits 0 when nothing is left to decide',
    () => {
      const text = "<?php\nsession_start();\nini_set('session.save_handler', 'files');\n";
      const dir = app('ok', { 'index.php': text });
      const r = cli(['codemod', 'php', dir, '--dry-run']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(
        '--- a/index.php\n+++ b/index.php\n@@ -1,3 +1,3 @@\n <?php\n' +
          "+require_once __DIR__ . '/session-migrate/session-migrate-bootstrap.php'; // session-migrate: encrypted Redis session handler\n" +
          " session_start();\n-ini_set('session.save_handler', 'files');\n",
      );
      expect(r.stdout).toContain('would change 1 file(s): index.php');
      expect(r.stdout).toContain('complete: nothing left to decide by hand');
      expect(readFileSync(join(dir, 'index.php'), 'utf8')).toBe(text);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'exits 1 and names the file and line when a custom handler or a dynamic value is left to a person',
    () => {
      const dir = app('undecided', {
        'index.php': "<?php\nsession_set_save_handler(new H(), true);\nini_set('session.save_handler', $h);\nsession_start();\n",
      });
      const r = cli(['codemod', 'php', dir]);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('high: index.php:2: custom-handler-registered:');
      expect(r.stdout).toContain('high: index.php:3: dynamic-value:');
      expect(r.stdout).toContain('incomplete: review the errors above');
      const json = cli(['codemod', 'php', dir, '--json']);
      expect(json.status).toBe(1);
      const report = JSON.parse(json.stdout) as { incomplete: boolean; changes: unknown[]; findings: { id: string; line: number }[] };
      expect(report.incomplete).toBe(true);
      expect(report.changes).toEqual([]);
      expect(
        report.findings.filter((f) => f.id !== 'session-start' && f.id !== 'handler-bootstrap-missing').map((f) => `${f.id}@${f.line}`),
      ).toEqual(['custom-handler-registered@2', 'dynamic-value@3']);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'exits 1 and lists a file that does not parse as skipped',
    () => {
      const dir = app('broken', { 'index.php': '<?php\nsession_start();\n', 'bad.php': '<?php if ( {\n' });
      const r = cli(['codemod', 'php', dir, '--dry-run']);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/^skipped bad\.php: does not parse: .+$/m);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'bad input is one line on stderr and exit 2',
    () => {
      for (const args of [
        ['codemod', 'php', join(root, 'missing')],
        ['codemod', 'php', app('b', { 'index.php': '<?php\n' }), '--bootstrap', '/etc/hostname'],
        ['codemod', 'php', root, '--dry-run=yes'],
        ['codemod'],
      ]) {
        const r = cli(args);
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stdout).toBe('');
      }
    },
    CLI_TIMEOUT_MS,
  );
});

/**
 * Fixture tests of the PHP codemod (support.ts describes the layout): one folder per rule
 * (rules/index.ts) plus `registration/` and `skipped/`, one directory per case with input.php,
 * the expected output.php byte for byte (none when the file must not change), report.json (the
 * findings, compact) and optional options.json.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_FILE_RULES, RULES, runCodemod } from '../src/index.ts';
import {
  CASES,
  FIXTURES_DIR,
  NON_RULE_FOLDERS,
  expectedOutput,
  fixture,
  fixtureInput,
  fixtureOptions,
  hasOutput,
  readFixture,
  runFixture,
  summarize,
} from './support.ts';
import { caseFile } from '../../../test/support/fixtures.ts';

const NAMES = [...CASES.keys()];
/** Skipped cases that are valid PHP php-parser 3.7.0 cannot read (the others fail php -l too). */
const PARSER_CANNOT_READ = ['declare-ticks-statement'];

function read(name: string, file: string): Buffer {
  return file === 'input.php' ? fixtureInput(name) : readFixture(name, file);
}

function phpLint(file: string, shortOpenTag: boolean): { ok: boolean; out: string } {
  const r = spawnSync('php', ['-n', '-d', `short_open_tag=${shortOpenTag ? 1 : 0}`, '-l', file], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe('codemod php fixtures', () => {
  it('has the cases the issue asks for', () => {
    expect(NAMES.length).toBeGreaterThanOrEqual(20);
    for (const name of NAMES) {
      expect(readdirSync(fixture(name).dir), name).toContain('report.json');
      // A case that must not change has no output copy: one identical to the input would hide a change.
      if (hasOutput(name))
        expect(readFixture(name, 'output.php').equals(fixtureInput(name)), `${name}: output.php equals the input; delete it`).toBe(false);
    }
  });

  it('has one fixture folder per rule, each with a case, and no folder that is not a rule', () => {
    const rules = [...RULES, ...CONFIG_FILE_RULES].map((r) => r.name).sort();
    const folders = readdirSync(FIXTURES_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    expect(folders.filter((f) => !(NON_RULE_FOLDERS as readonly string[]).includes(f)).sort()).toEqual(rules);
    for (const folder of folders)
      expect(
        [...CASES.values()].some((c) => c.folder === folder),
        folder,
      ).toBe(true);
    expect(new Set(NAMES).size).toBe([...CASES.values()].length);
  });

  describe.each(NAMES)('%s', (name) => {
    it('rewrites the input into output.php byte for byte (or leaves it as it is), with the expected report', () => {
      const { output, report } = runFixture(name);
      expect(output.equals(expectedOutput(name)), `${name}: output differs:\n${output.toString('latin1')}`).toBe(true);
      expect(summarize(report)).toEqual(JSON.parse(read(name, 'report.json').toString('utf8')));
      if (!hasOutput(name)) expect(report.changes, name).toEqual([]);
    });

    it('is idempotent: a second run changes nothing', () => {
      const { output, reports } = runFixture(name, 2);
      expect(reports[1]!.changes).toEqual([]);
      expect(reports[1]!.registeredIn).toEqual([]);
      expect(output.equals(expectedOutput(name))).toBe(true);
    });

    // php -l applies to PHP cases; a configuration-file case (input.yaml) has none.
    if (fixture(name).input === 'input.php')
      it('the output passes php -l (or the case is a skipped one, left unchanged)', () => {
        const expected = JSON.parse(read(name, 'report.json').toString('utf8')) as { skipped: boolean };
        const lint = phpLint(
          join(fixture(name).dir, hasOutput(name) ? 'output.php' : 'input.php'),
          fixtureOptions(name).shortOpenTag === true,
        );
        if (expected.skipped) {
          expect(hasOutput(name)).toBe(false);
          // Valid PHP that php-parser 3.7.0 cannot read: PHP accepts it, the codemod skips it.
          expect(lint.ok, lint.out).toBe(PARSER_CANNOT_READ.includes(name));
        } else {
          expect(lint.ok, lint.out).toBe(true);
        }
      });
  });

  it('leaves alone what it must not decide: custom handlers, dynamic values, files without session code', () => {
    for (const name of [
      'bug20-callable-handler-left-alone',
      'custom-handler-left-alone',
      'dynamic-values-left-alone',
      'no-session-code',
      'getters-kept',
      'laravel-config',
      'codeigniter3-config',
      'codeigniter4-config',
      'other-save-handler-left-alone',
      'short-open-tag-off',
      'already-registered',
      'syntax-error-skipped',
      'lint-error-skipped',
    ]) {
      expect(hasOutput(name), `${name} must have no output copy`).toBe(false);
      const { report } = runFixture(name);
      expect(report.changes, name).toEqual([]);
    }
  });

  it('BUG-20: the six-callable session_set_save_handler() is reported with the object form as the fix, not rewritten', () => {
    const { report } = runFixture('bug20-callable-handler-left-alone');
    const f = report.findings.find((x) => x.id === 'custom-handler-registered');
    expect(f?.severity).toBe('high');
    expect(f?.message).toContain('deprecated as of PHP 8.4');
    expect(f?.fix).toContain('session_set_save_handler(new <Handler>(...), true)');
    expect(report.incomplete).toBe(true);
    expect(report.registeredIn).toEqual([]);
  });

  it('BUG-20 with --replace-custom-handler: the six-callable registration of legacy_callbacks_registration.php registers the generated handler, after the require, and says the old storage is not migrated', () => {
    const input = readFileSync(caseFile('BUG-20', 'legacy_callbacks_registration.php'));
    expect(read('bug20-callable-handler-replaced', 'input.php').equals(input)).toBe(true);
    expect(read('bug20-callable-handler-left-alone', 'input.php').equals(input)).toBe(true);
    const { output, report } = runFixture('bug20-callable-handler-replaced');
    const text = output.toString('latin1');
    expect(text).toContain(
      '\nsession_set_save_handler(\\SessionMigrate\\EncryptedRedisSessionHandler::registeredHandler(), true);\nsession_start();\n',
    );
    expect(text).not.toContain('sess_open');
    expect(text.indexOf('require_once')).toBeLessThan(text.indexOf('session_set_save_handler'));
    const f = report.findings.find((x) => x.id === 'custom-handler-replaced');
    expect(f?.severity).toBe('medium');
    expect(f?.line).toBe(3);
    expect(f?.message).toContain('NOT migrated');
    expect(f?.message).toContain('deprecated as of PHP 8.4');
    expect(report.findings.some((x) => x.id === 'custom-handler-registered')).toBe(false);
    expect(report.registeredIn).toEqual(['index.php']);
    // custom-handler-replaced is medium: the old storage is abandoned, so a person must review it (exit 1).
    expect(report.incomplete).toBe(true);
  });

  it('--replace-custom-handler: the object form keeps the call name and the use of its result, with the namespace given', () => {
    const { output, report } = runFixture('custom-handler-object-replaced');
    expect(output.toString('latin1')).toContain(
      'if (!\\Session_Set_Save_Handler(\\Acme\\Session\\EncryptedRedisSessionHandler::registeredHandler(), true)) {\n',
    );
    expect(report.findings.find((x) => x.id === 'custom-handler-replaced')?.message).toContain('a handler object');
  });

  it('a rewritten registration is recognised later without the flag: no custom-handler error, no change', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codemod-php-rerun-'));
    try {
      cpSync(join(fixture('bug20-callable-handler-replaced').dir, 'output.php'), join(dir, 'index.php'));
      mkdirSync(join(dir, 'session-migrate'));
      writeFileSync(join(dir, 'session-migrate', 'session-migrate-bootstrap.php'), '<?php\n// Generated by session-migrate\n');
      const report = runCodemod({ dir });
      expect(report.changes).toEqual([]);
      expect(report.findings.filter((f) => f.severity === 'high')).toEqual([]);
      expect(report.findings.find((f) => f.id === 'generated-handler-registration')?.line).toBe(4);
      expect(report.incomplete).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file that does not parse is skipped with the reason and the line', () => {
    const { report } = runFixture('syntax-error-skipped');
    expect(report.skipped).toEqual([{ file: 'index.php', reason: expect.stringMatching(/^does not parse: .+/) }]);
    expect(report.findings.find((f) => f.id === 'parse-error')?.line).toBe(5);
  });

  it('a rewrite that fails php -l is not written, and says whether the original already failed', () => {
    const { report } = runFixture('lint-error-skipped');
    expect(report.skipped[0]?.reason).toMatch(/^php -l already fails on the original \(.*break.*\): not changed$/);
  });
});

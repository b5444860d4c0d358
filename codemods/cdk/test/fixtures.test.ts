/**
 * Fixture tests of the CDK codemod (jscodeshift's `__testfixtures__` layout): each folder under
 * fixtures/ holds input.ts, the expected output.ts (none for a case that must be left alone: the
 * codemod must then return the input unchanged) and report.json (the changes and findings expected,
 * by line, property and id).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { transformSource, type TransformOptions } from '../src/index.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const cases = readdirSync(FIXTURES).sort();

interface ExpectedReport {
  changes: { line: number; property: string; action: string }[];
  findings: { line: number; id: string; severity: string; property?: string }[];
}

/** Syntax errors of a TypeScript text, per the TypeScript compiler itself (not ts-morph). */
function syntaxErrors(text: string): string[] {
  const host = inMemoryHost(text);
  const program = ts.createProgram(['/f.ts'], { noLib: true, noResolve: true, types: [] }, host);
  return program.getSyntacticDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
}

/** Names the type checker cannot find (TS2304 and its "did you mean" variant TS2552). */
function unboundNames(text: string): string[] {
  const host = inMemoryHost(text);
  const program = ts.createProgram(['/f.ts'], { noLib: true, noResolve: true, types: [] }, host);
  const sf = program.getSourceFile('/f.ts')!;
  return program
    .getSemanticDiagnostics(sf)
    .filter((d) => d.code === 2304 || d.code === 2552)
    .map((d) => text.slice(d.start!, d.start! + d.length!))
    .sort();
}

function inMemoryHost(text: string): ts.CompilerHost {
  const host = ts.createCompilerHost({});
  host.getSourceFile = (name, version) => (name === '/f.ts' ? ts.createSourceFile(name, text, version, true) : undefined);
  host.fileExists = (name) => name === '/f.ts';
  host.readFile = (name) => (name === '/f.ts' ? text : undefined);
  host.writeFile = () => {};
  return host;
}

describe('codemod cdk fixtures', () => {
  it('has the cases the issue asks for', () => {
    for (const c of [
      'namespace-import',
      'named-import-alias',
      'root-aws-elasticache-alias',
      'cdk-v1',
      'require-style',
      'import-equals',
      'already-compliant',
      'partially-compliant',
      'false-literals',
      'computed-values',
      'spread-props',
      'props-variable',
      'cache-cluster',
      'multiple-constructs',
      'crlf',
    ]) {
      expect(cases).toContain(c);
    }
  });

  for (const name of cases) {
    describe(name, () => {
      const dir = join(FIXTURES, name);
      const input = readFileSync(join(dir, 'input.ts'), 'utf8');
      const mustNotChange = !existsSync(join(dir, 'output.ts'));
      const expected = mustNotChange ? input : readFileSync(join(dir, 'output.ts'), 'utf8');
      const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ExpectedReport;
      // options.json, when present, holds transformSource options (e.g. authSecretName).
      const options = existsSync(join(dir, 'options.json'))
        ? (JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8')) as TransformOptions)
        : {};

      it('produces output.ts (or, without one, leaves the input as it is) and the expected report', () => {
        if (!mustNotChange) expect(expected, 'output.ts equals input.ts: delete it').not.toBe(input);
        const r = transformSource(input, 'input.ts', options);
        expect(r.output).toBe(expected);
        expect(r.changed).toBe(input !== expected);
        expect(r.changes.map((c) => ({ line: c.line, property: c.property, action: c.action }))).toEqual(report.changes);
        expect(
          r.findings.map((f) => ({
            line: f.line,
            id: f.id,
            severity: f.severity,
            ...(f.property !== undefined ? { property: f.property } : {}),
          })),
        ).toEqual(report.findings);
        for (const f of r.findings) expect(f.message).not.toMatch(/[\r\n]/);
      });

      it('is idempotent: a second run changes nothing', () => {
        const again = transformSource(expected, 'input.ts', options);
        expect(again.output).toBe(expected);
        expect(again.changes).toEqual([]);
        expect(again.findings.filter((f) => f.id === 'replaced-on-deploy' || f.id === 'deploy-review')).toEqual([]);
      });

      it('output.ts parses and binds every name the codemod added', () => {
        expect(syntaxErrors(input)).toEqual([]);
        expect(syntaxErrors(expected)).toEqual([]);
        // No identifier the codemod wrote (SecretValue, a namespace) may be unbound.
        expect(unboundNames(expected)).toEqual(unboundNames(input));
      });

      it('keeps the line endings of the input', () => {
        const crlf = (t: string) => (t.match(/\r\n/g) ?? []).length;
        const lf = (t: string) => (t.match(/\n/g) ?? []).length;
        if (crlf(input) === lf(input)) expect(crlf(expected)).toBe(lf(expected));
        else expect(crlf(expected)).toBe(0);
      });
    });
  }

  it('the CRLF case really is CRLF', () => {
    const input = readFileSync(join(FIXTURES, 'crlf', 'input.ts'), 'utf8');
    expect(input).toContain('\r\n');
    expect(input.replace(/\r\n/g, '')).not.toContain('\n');
  });
});

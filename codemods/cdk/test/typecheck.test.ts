/**
 * Type-checks every CDK v2 fixture's output.ts against the real aws-cdk-lib and constructs (pinned
 * devDependencies of the repository, package.json), in ONE TypeScript program: the library's
 * declarations are read once for all fixtures, and skipLibCheck keeps TypeScript from checking the
 * library itself. Strict mode and the excess-property check of object literals make a misspelled
 * CfnReplicationGroupProps property an error, and `authToken` is typed `string` in aws-cdk-lib
 * (aws-elasticache CfnReplicationGroupProps), so a SecretValue without `.unsafeUnwrap()` is one too.
 *
 * The extra texts (the "catches" test) are written next to the fixtures in memory only, so module
 * resolution finds aws-cdk-lib in the repository's node_modules exactly as for the real files.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const FIXTURES = join(import.meta.dirname, 'fixtures');

/** Fixtures not written against aws-cdk-lib v2 (or that use a local module on purpose). */
const NOT_V2 = new Set(['cdk-v1', 'monocdk', 'not-elasticache']);

/** What the codemod makes of a case: output.ts, or input.ts itself when the case must not change (fixtures.test.ts). */
function outputOf(name: string): string {
  const output = join(FIXTURES, name, 'output.ts');
  return existsSync(output) ? output : join(FIXTURES, name, 'input.ts');
}

const OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  esModuleInterop: true,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  skipLibCheck: true,
};

/**
 * Type errors per file, for several files checked in one program.
 * @param files absolute path -> source text; texts not on disk are served from memory.
 */
function typeErrorsOf(files: Map<string, string>): Map<string, string[]> {
  const host = ts.createCompilerHost(OPTIONS);
  const base = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => {
    const t = files.get(name);
    return t !== undefined ? ts.createSourceFile(name, t, version, true) : base(name, version, ...rest);
  };
  const baseExists = host.fileExists.bind(host);
  host.fileExists = (name) => files.has(name) || baseExists(name);
  const program = ts.createProgram([...files.keys()], OPTIONS, host);
  const global = program.getGlobalDiagnostics();
  if (global.length > 0) throw new Error(`program: ${global.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')).join('; ')}`);
  const out = new Map<string, string[]>();
  for (const name of files.keys()) {
    const sf = program.getSourceFile(name)!;
    const diags = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    out.set(
      name,
      diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')),
    );
  }
  return out;
}

describe('codemod cdk fixtures type-check against the real aws-cdk-lib', () => {
  const cases = readdirSync(FIXTURES)
    .filter((c) => !NOT_V2.has(c))
    .sort();

  it('uses the pinned aws-cdk-lib and constructs', () => {
    const require = createRequire(import.meta.url);
    const pinned = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    for (const name of ['aws-cdk-lib', 'constructs']) {
      const installed = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string };
      expect(pinned.devDependencies[name], name).toMatch(/^\d+\.\d+\.\d+$/);
      expect(installed.version, name).toBe(pinned.devDependencies[name]);
    }
  });

  it('every v2 output.ts type-checks, and the check catches what it is for', () => {
    const outputs = new Map(cases.map((c) => [outputOf(c), readFileSync(outputOf(c), 'utf8')]));
    const good = outputs.get(join(FIXTURES, 'namespace-import', 'output.ts'))!;
    const noUnwrap = join(FIXTURES, 'namespace-import', 'no-unwrap.ts');
    const misspelled = join(FIXTURES, 'namespace-import', 'misspelled.ts');
    const wrongType = join(FIXTURES, 'namespace-import', 'wrong-type.ts');
    expect(good).toContain('.unsafeUnwrap()');
    expect(good).toContain('transitEncryptionEnabled: true');
    const errors = typeErrorsOf(
      new Map([
        ...outputs,
        [noUnwrap, good.replace('.unsafeUnwrap()', '')],
        [misspelled, good.replace('atRestEncryptionEnabled', 'atRestEncryption')],
        [wrongType, good.replace('transitEncryptionEnabled: true', "transitEncryptionEnabled: 'yes'")],
      ]),
    );
    expect(cases.length).toBeGreaterThan(15);
    for (const c of cases) expect(errors.get(outputOf(c)), c).toEqual([]);
    expect(errors.get(noUnwrap)).toEqual([expect.stringMatching(/SecretValue.*not assignable to type 'string'/)]);
    expect(errors.get(misspelled)).toEqual([expect.stringMatching(/Object literal may only specify known properties/)]);
    expect(errors.get(wrongType)).toEqual([expect.stringMatching(/'string' is not assignable to type 'boolean \| IResolvable/)]);
  });
});

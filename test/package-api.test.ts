/**
 * The CLI is built on the package's public API (packages/cli/src/index.ts, `import ... from
 * 'session-migrate'`): every value a CLI module imports from a workspace package is exported by the
 * API, as the same object. When this fails after a CLI change, export the new name from
 * packages/cli/src/index.ts (with its docstring) or explain why a library user must not have it.
 *
 * The command modules load their use cases with `await import()`: those names count too. The codemods
 * are the exception by design: the CLI imports them with `await import()` (their parsers
 * load in seconds), and the API offers them as the async codemodPhp()/codemodCdk(), which run the
 * same functions (test/package.test.ts runs both from the installed package).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../packages/cli/src/index.ts';

const CLI_SRC = join(import.meta.dirname, '../packages/cli/src');

/** `import { a, b as c, type T } from '@session-migrate/x'` in the CLI's modules: package -> value names. */
function cliValueImports(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  // Every module below src/ (the command modules are in src/commands/); static imports, and the
  // `const { a, b } = await import('@session-migrate/x')` a command's handler loads its use case with.
  const files = (readdirSync(CLI_SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
  for (const file of files) {
    const text = readFileSync(join(CLI_SRC, file), 'utf8');
    const add = (pkg: string, names: string, dynamic = false): void => {
      // The codemods: offered by the API as codemodPhp()/codemodCdk() (see above).
      if (dynamic && pkg.startsWith('@session-migrate/codemod-')) return;
      for (const part of names.split(',')) {
        const name = part
          .trim()
          .split(/\s+as\s+|\s*:\s*/)[0]!
          .trim();
        if (name === '' || name.startsWith('type ')) continue;
        if (!found.has(pkg)) found.set(pkg, new Set());
        found.get(pkg)!.add(name);
      }
    };
    for (const m of text.matchAll(/^import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(@session-migrate\/[^']+)';/gm)) {
      if (m[1] === undefined) add(m[3]!, m[2]!);
    }
    for (const m of text.matchAll(/const\s+\{([^}]*)\}\s*=\s*await\s+import\('(@session-migrate\/[^']+)'\)/g)) add(m[2]!, m[1]!, true);
    // const [{ a }, { b }] = await Promise.all([import('@session-migrate/x'), import('@session-migrate/y')])
    for (const m of text.matchAll(/const\s+\[([^\]]*)\]\s*=\s*await\s+Promise\.all\(\[([^\]]*)\]\)/g)) {
      const names = [...m[1]!.matchAll(/\{([^}]*)\}/g)].map((x) => x[1]!);
      const pkgs = [...m[2]!.matchAll(/import\('(@session-migrate\/[^']+)'\)/g)].map((x) => x[1]!);
      names.forEach((n, i) => {
        if (pkgs[i] !== undefined) add(pkgs[i]!, n, true);
      });
    }
  }
  return found;
}

describe('the CLI is built on the public API', () => {
  it('every value the CLI takes from a workspace package is exported by packages/cli/src/index.ts', async () => {
    const imports = cliValueImports();
    expect([...imports.keys()]).toEqual(
      expect.arrayContaining(['@session-migrate/migrate', '@session-migrate/verify', '@session-migrate/audit']),
    );
    const exported = new Set<unknown>(Object.values(api));
    const missing: string[] = [];
    for (const [pkg, names] of imports) {
      const mod = (await import(pkg)) as Record<string, unknown>;
      for (const name of names) {
        expect(mod[name], `${pkg} exports ${name}`).toBeDefined();
        if (!exported.has(mod[name])) missing.push(`${name} (from ${pkg})`);
      }
    }
    expect(missing, 'not exported by the API').toEqual([]);
  });

  it('exports the use cases: plan, apply, verify, audit, generate and the codemods', () => {
    for (const name of [
      'summarizeSource',
      'writePlanFile',
      'readPlanFile',
      'applySessions',
      'applyArtifacts',
      'verifyTarget',
      'rotateTarget',
      'purgeSessions',
      'rollbackToFiles',
      'rollbackRemoveKeys',
      'auditHost',
      'auditIniFile',
      'renderArtifacts',
      'writeArtifacts',
      'renderIac',
      'writeIac',
      'codemodPhp',
      'codemodCdk',
      'loadKeyRing',
      'EnvelopeCodec',
      'openSource',
      'openAnySource',
      'specFromUrl',
      'specFromRecorded',
      'parseRedisUrl',
    ]) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('codemodPhp() runs the PHP codemod (a dry run on the legacy app): the parser loads on this first call', async () => {
    const report = await api.codemodPhp({ dir: join(import.meta.dirname, '../codemods/php/test/legacy-app'), dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.changes.length).toBeGreaterThan(0);
    expect(report.changes.every((c) => !c.written)).toBe(true);
  });
});

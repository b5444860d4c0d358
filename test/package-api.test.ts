/**
 * The CLI is built on the package's public API (packages/cli/src/index.ts, `import ... from
 * 'session-migrate'`): every value a CLI module imports from a workspace package is exported by the
 * API, as the same object. When this fails after a CLI change, export the new name from
 * packages/cli/src/index.ts (with its docstring) or explain why a library user must not have it.
 *
 * The codemods are the exception by design: the CLI imports them with `await import()` (their parsers
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
  for (const file of readdirSync(CLI_SRC).filter((f) => f.endsWith('.ts') && f !== 'index.ts')) {
    const text = readFileSync(join(CLI_SRC, file), 'utf8');
    for (const m of text.matchAll(/^import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(@session-migrate\/[^']+)';/gm)) {
      if (m[1] !== undefined) continue;
      for (const part of m[2]!.split(',')) {
        const name = part.trim().split(/\s+as\s+/)[0]!.trim();
        if (name === '' || name.startsWith('type ')) continue;
        if (!found.has(m[3]!)) found.set(m[3]!, new Set());
        found.get(m[3]!)!.add(name);
      }
    }
  }
  return found;
}

describe('the CLI is built on the public API', () => {
  it('every value the CLI takes from a workspace package is exported by packages/cli/src/index.ts', async () => {
    const imports = cliValueImports();
    expect([...imports.keys()]).toEqual(expect.arrayContaining(['@session-migrate/migrate', '@session-migrate/verify', '@session-migrate/audit']));
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
      'summarizeSource', 'writePlanFile', 'readPlanFile', 'applySessions', 'applyArtifacts', 'verifyTarget', 'rotateTarget', 'purgeSessions',
      'rollbackToFiles', 'rollbackRemoveKeys', 'auditHost', 'auditIniFile', 'renderArtifacts', 'writeArtifacts', 'renderIac', 'writeIac',
      'codemodPhp', 'codemodCdk', 'loadKeyRing', 'EnvelopeCodec', 'openSource', 'openAnySource', 'specFromUrl', 'specFromRecorded', 'parseRedisUrl',
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

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
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

describe('writeArtifacts (library API) and directories inside the artifacts directory', () => {
  const artifacts = [
    { path: 'bootstrap.php', contents: '<?php // Generated by session-migrate\n', mode: 0o644 },
    { path: 'src/Handler.php', contents: '<?php // Generated by session-migrate\n', mode: 0o644 },
  ];
  it('refuses a symbolic link or a non-directory on the way to a file, in one line, writing nothing (not even the other files)', () => {
    const root = mkdtempSync(join(tmpdir(), 'sm-api-artifacts-'));
    try {
      for (const inTheWay of ['link', 'file'] as const) {
        const dir = join(root, `art-${inTheWay}`);
        const elsewhere = join(root, `elsewhere-${inTheWay}`);
        mkdirSync(dir);
        mkdirSync(elsewhere);
        if (inTheWay === 'link') symlinkSync(elsewhere, join(dir, 'src'));
        else writeFileSync(join(dir, 'src'), 'not a directory');
        let error: unknown;
        try {
          api.writeArtifacts(dir, artifacts);
        } catch (err) {
          error = err;
        }
        expect(error, inTheWay).toBeInstanceOf(api.UserFacingError);
        const message = (error as Error).message;
        expect(message.split('\n'), message).toHaveLength(1);
        expect(message).toBe(
          inTheWay === 'link'
            ? `${join(dir, 'src')} is a symbolic link; refusing to write the artifacts through it`
            : `${join(dir, 'src')} exists and is not a directory; refusing to write the artifacts through it`,
        );
        expect(readdirSync(elsewhere)).toEqual([]);
        expect(readdirSync(dir)).toEqual(['src']); // bootstrap.php, first in the list, was not written either
        expect(lstatSync(join(dir, 'src')).isSymbolicLink()).toBe(inTheWay === 'link');
      }
      // The artifacts directory itself may be a link: its owner chose that path.
      const real = join(root, 'real-art');
      mkdirSync(real);
      symlinkSync(real, join(root, 'linked-art'));
      expect(api.writeArtifacts(join(root, 'linked-art'), artifacts).changed).toEqual(['bootstrap.php', 'src/Handler.php']);
      expect(readdirSync(join(real, 'src'))).toEqual(['Handler.php']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('warnings of a use case called without onWarning (library API)', () => {
  /** Runs `call` and returns the SessionMigrateWarning process warnings it emitted (texts), and its error. */
  async function processWarnings(call: () => Promise<unknown>): Promise<{ warnings: string[]; error: unknown }> {
    const warnings: string[] = [];
    const listener = (w: Error): void => {
      if (w.name === api.WARNING_TYPE) warnings.push(w.message);
    };
    process.on('warning', listener);
    let error: unknown;
    try {
      await call();
    } catch (err) {
      error = err;
    } finally {
      // process.emitWarning emits on the next tick: let it.
      await new Promise((r) => setImmediate(r));
      process.off('warning', listener);
    }
    return { warnings, error };
  }

  it('go to process.emitWarning (type SessionMigrateWarning); with onWarning given, there only, once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sm-api-warnings-'));
    try {
      const keyFile = join(root, 'master.key');
      api.generateKeyFile(keyFile);
      // The password-in-URL warning comes before the sources are opened; the missing source then
      // stops plan (no server needed).
      const options = {
        source: `files:${join(root, 'no-such-dir')}`,
        target: 'redis://:url-secret-7@127.0.0.1:6379/0',
        key: { kind: 'file', path: keyFile } as const,
        prefix: 'smsess:',
        out: join(root, 'plan.json'),
        gcMaxlifetime: 1440,
        serializeHandler: 'php' as const,
        maxSessionBytes: 1 << 20,
        artifactsDir: join(root, 'art'),
      };
      const alone = await processWarnings(() => api.createPlan(options));
      expect(alone.error).toBeInstanceOf(api.UserFacingError);
      expect(alone.warnings).toHaveLength(1);
      expect(alone.warnings[0]).toMatch(/^warning: .*password.*target URL/);
      expect(alone.warnings[0]).not.toContain('url-secret-7');

      const taken: string[] = [];
      const given = await processWarnings(() => api.createPlan({ ...options, onWarning: (line) => taken.push(line) }));
      expect(given.error).toBeInstanceOf(api.UserFacingError);
      expect(taken).toEqual(alone.warnings);
      expect(given.warnings).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

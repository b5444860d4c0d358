/**
 * The suite runs on a bare clone (issue 12): no test, test helper or benchmark may read a path outside
 * the repository, such as a QA folder beside the clone (`../shared`) or a path that exists only on one
 * machine. Their fixtures live in test/fixtures (test/support/fixtures.ts). This scans the sources for
 * such paths; a hit names the file and line.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..');
const SCANNED_DIRS = ['test', 'bench', 'scripts', 'packages', 'codemods'];
const SKIPPED = new Set(['node_modules', 'fixtures', '.git']);
const EXTENSIONS = /\.(ts|mts|js|mjs|php|sh)$/;

/** A relative path that climbs to a `shared` folder beside the clone, or an absolute path under /work (this workplace). */
const OUTSIDE = /(?:\.\.\/)+shared\b|['"`]\/work\//;

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile() && EXTENSIONS.test(entry.name)) yield path;
  }
}

describe('the test suite needs nothing outside the clone', () => {
  it('no source, test or script names a path outside the repository', () => {
    const hits: string[] = [];
    let scanned = 0;
    for (const dir of SCANNED_DIRS) {
      for (const file of files(join(REPO, dir))) {
        if (file === import.meta.filename) continue;
        scanned++;
        readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (OUTSIDE.test(line)) hits.push(`${relative(REPO, file)}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    expect(scanned).toBeGreaterThan(100);
    expect(hits).toEqual([]);
  });

  it('no comment or document cites the QA folder beside the clone: citations point at test/fixtures', () => {
    // A reader of a clone or of the package has no `shared/`: `shared/cases/BUG-17` must read
    // `test/fixtures/cases/BUG-17` (the in-repo copy), and docs link `../test/fixtures/...`.
    const CITES_SHARED = /(?<![\w./-])shared\/(?:cases|reference|ini-cases)\b|\.\.\/shared\//;
    const hits: string[] = [];
    const docs = (dir: string): string[] =>
      readdirSync(join(REPO, dir), { withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith('.md'))
        .map((e) => join(REPO, dir, e.name));
    const all = [...docs('.'), ...docs('docs'), ...SCANNED_DIRS.flatMap((d) => [...files(join(REPO, d))])];
    for (const file of all) {
      if (file === import.meta.filename) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (CITES_SHARED.test(line)) hits.push(`${relative(REPO, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(hits).toEqual([]);
    expect(CITES_SHARED.test(' * (shared/cases/BUG-22: libsodium.js ...)')).toBe(true);
    expect(CITES_SHARED.test('see `../shared/reference/x.md`')).toBe(true);
    expect(CITES_SHARED.test(' * (test/fixtures/cases/BUG-22)')).toBe(false);
  });

  it('the pattern catches what it is for', () => {
    expect(OUTSIDE.test("join(import.meta.dirname, '../../../../shared/cases')")).toBe(true);
    expect(OUTSIDE.test("readFileSync('/work/shared/cases/BUG-20/x.php')")).toBe(true);
    expect(OUTSIDE.test("join(REPO, '../shared/cases/BUG-15/tree')")).toBe(true);
    expect(OUTSIDE.test("caseFile('BUG-15', 'tree')")).toBe(false);
    expect(OUTSIDE.test("writeFileSync(join(root, 'etc/php/8.2/fpm/php.ini'))")).toBe(false);
  });
});

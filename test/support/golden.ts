/**
 * Golden files: what a generator writes, kept in the repository byte for byte, so that every change
 * to generated output shows up in review as a diff of the golden file.
 *
 * After an intended change of a generator or a template, rewrite them and review the diff:
 *
 *   UPDATE_GOLDEN=1 npx vitest run <the golden test>
 *
 * (UPDATE_GOLDEN=1 is the one switch for every golden file of the repository.)
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect } from 'vitest';

/** True when golden files are to be rewritten instead of compared. */
export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

/** Files below `dir`, relative to it, `/`-separated, sorted ([] when `dir` does not exist). */
export function goldenFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Compares generated files with the golden directory `dir` (file name -> contents): the same names
 * and the same bytes. With UPDATE_GOLDEN=1 it writes them instead (and removes golden files the
 * generator no longer writes).
 */
export function expectGoldenDir(dir: string, files: ReadonlyMap<string, string | Buffer>): void {
  if (UPDATE_GOLDEN) {
    rmSync(dir, { recursive: true, force: true });
    for (const [name, contents] of files) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), contents);
    }
    return;
  }
  const hint = `golden files in ${dir}; after an intended change run UPDATE_GOLDEN=1 and review the diff`;
  expect(goldenFiles(dir), hint).toEqual([...files.keys()].sort());
  for (const [name, contents] of files) {
    const golden = readFileSync(join(dir, name));
    const actual = typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents;
    // As text first, for a readable diff; then byte for byte.
    expect(actual.toString('utf8'), `${name}: ${hint}`).toBe(golden.toString('utf8'));
    expect(actual.equals(golden), `${name}: ${hint}`).toBe(true);
  }
}

/**
 * resolveDuplicates (several-sources.ts) over real session directories: the IDs in two sources are
 * found exactly among many (the hash table grows from 1,024 slots), only those are read, and the rule
 * picks the copy written last; one source alone, or an ID repeated in one source, is no duplicate.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSource } from '@session-migrate/sources';
import { resolveDuplicates } from '../src/index.ts';

const root = mkdtempSync(join(tmpdir(), 'sm-dups-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function dir(name: string, ids: string[], data: (id: string) => string, ageSeconds: (id: string) => number): string {
  const d = join(root, name);
  mkdirSync(d, { mode: 0o700 });
  const now = Date.now() / 1000;
  for (const id of ids) {
    const p = join(d, `sess_${id}`);
    writeFileSync(p, data(id));
    utimesSync(p, now - ageSeconds(id), now - ageSeconds(id));
  }
  return d;
}

const id = (i: number): string => `dup${String(i).padStart(23, '0')}`;
const php = { gcMaxlifetime: 1440, serializeHandler: 'php' as const };

describe('resolveDuplicates', () => {
  it('finds exactly the IDs in two sources among thousands, and the copy written last wins', async () => {
    // A: 0..1999, B: 1700..3699: 300 in both; B's copies are newer for even IDs, older for odd ones.
    const a = dir(
      'a',
      Array.from({ length: 2000 }, (_, i) => id(i)),
      (x) => `v|s:1:"a";n|s:${x.length}:"${x}";`,
      () => 300,
    );
    const b = dir(
      'b',
      Array.from({ length: 2000 }, (_, i) => id(i + 1700)),
      (x) => `v|s:1:"b";n|s:${x.length}:"${x}";`,
      (x) => (Number(x.slice(3)) % 2 === 0 ? 10 : 900),
    );
    const sources = [openSource(`files:${a}`), openSource(`files:${b}`)];
    const r = await resolveDuplicates(sources, php);
    expect(r.report).toMatchObject({ ids: 300, identical: 0, newerWins: 300, ties: 0, superseded: [150, 150] });
    expect([...r.superseded[0]!].every((x) => Number(x.slice(3)) % 2 === 0)).toBe(true);
    expect([...r.superseded[1]!].every((x) => Number(x.slice(3)) % 2 === 1)).toBe(true);
    expect(r.superseded[0]!.has(id(1700))).toBe(true);
    expect(r.superseded[0]!.has(id(1699))).toBe(false);
  });

  it('one source, or the same ID listed twice by one source, is no duplicate', async () => {
    const c = dir(
      'c',
      [id(1), id(2)],
      () => 'a|i:1;',
      () => 5,
    );
    const single = await resolveDuplicates([openSource(`files:${c}`)], php);
    expect(single.report.ids).toBe(0);
    // The same directory given twice would be refused by plan; resolveDuplicates itself compares by ID.
    const d = dir(
      'd',
      [id(3)],
      () => 'a|i:1;',
      () => 5,
    );
    const r = await resolveDuplicates([openSource(`files:${c}`), openSource(`files:${d}`)], php);
    expect(r.report).toMatchObject({ ids: 0, superseded: [0, 0] });
  });
});

/**
 * PresenceLedger: what apply reads back at the end, kept in flat memory (full blocks in an unlinked
 * temporary file), in the order added, with nothing left on disk; in memory where no temporary file
 * can be made.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceLedger } from '../src/apply.ts';

const savedTmp = process.env.TMPDIR;
afterEach(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
});

const digest = (i: number): string => i.toString(16).padStart(64, '0');

function fill(ledger: PresenceLedger, prefix: string, n: number): number {
  const before = Date.now();
  for (let i = 0; i < n; i++) {
    const key = `${prefix}{${digest(i)}}`;
    // Text, bytes, and bytes inside a larger buffer (addFrom, as apply adds what it wrote); every
    // sixth added as text is one this run wrote (add's `written`), the others found present.
    if (i % 3 === 0) ledger.add(key, 1000 + i, i % 6 === 0);
    else if (i % 3 === 1) ledger.add(Buffer.from(key, 'utf8'), 1000 + i);
    else ledger.addFrom(Buffer.concat([Buffer.from('xyz'), Buffer.from(key, 'utf8'), Buffer.from('}')]), 3, 1000 + i);
  }
  return before;
}

function expectAll(ledger: PresenceLedger, prefix: string, n: number, before: number): void {
  let i = 0;
  for (const chunk of ledger.chunks(1000)) {
    expect(chunk.length).toBeLessThanOrEqual(1000);
    for (const e of chunk) {
      expect(e.key).toBe(`${prefix}{${digest(i)}}`);
      expect(e.deadlineMs).toBeGreaterThanOrEqual(before + 1000 + i);
      expect(e.deadlineMs).toBeLessThanOrEqual(Date.now() + 1000 + i);
      // Written by the run (migrated) or found present: the read-back tells them apart in its counts.
      expect(e.written, String(i)).toBe(i % 6 === 0 || i % 3 === 2);
      i++;
    }
  }
  expect(i).toBe(n);
}

describe('PresenceLedger', () => {
  it('keeps every entry in order across blocks spilled to an unlinked temporary file, leaving nothing on disk', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sm-ledger-test-'));
    process.env.TMPDIR = tmp;
    try {
      const n = PresenceLedger.BLOCK * 2 + 123;
      // A prefix beyond ASCII: text keys are cut by characters, byte keys by bytes.
      const prefix = 'sé:';
      const ledger = new PresenceLedger(prefix);
      const before = fill(ledger, prefix, n);
      expect(ledger.size).toBe(n);
      // The file is unlinked as soon as it is open, its directory removed.
      expect(readdirSync(tmp)).toEqual([]);
      expectAll(ledger, prefix, n, before);
      expectAll(ledger, prefix, n, before); // read twice: same result
      ledger.close();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('keeps blocks in memory where no temporary file can be made', () => {
    process.env.TMPDIR = join(tmpdir(), 'sm-no-such-dir-', String(process.pid), 'x');
    const n = PresenceLedger.BLOCK + 5;
    const ledger = new PresenceLedger('p:');
    const before = fill(ledger, 'p:', n);
    expectAll(ledger, 'p:', n, before);
    ledger.close();
  });
});

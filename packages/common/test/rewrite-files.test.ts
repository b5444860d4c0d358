/**
 * The codemods' one rewrite rule (packages/common/src/rewrite-files.ts): a file with no write bit is
 * read-only for root too (access(2) lets root write it, so only the mode can tell).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rewriteProblem, rewriteRefusal } from '../src/rewrite-files.ts';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('rewriteProblem', () => {
  it('refuses a file with no write bit (0444), as root too, and accepts it once a write bit is set', () => {
    dir = mkdtempSync(join(tmpdir(), 'rewrite-files-'));
    const f = join(dir, 'x.php');
    writeFileSync(f, '<?php\n');
    chmodSync(f, 0o444);
    expect(rewriteProblem(f)).toBe('the file is read-only');
    expect(rewriteRefusal([{ path: f, label: 'x.php' }])).toBe('cannot write x.php: the file is read-only: nothing was changed');
    chmodSync(f, 0o644);
    expect(rewriteProblem(f)).toBeNull();
    expect(rewriteRefusal([{ path: f, label: 'x.php' }])).toBeUndefined();
  });
});

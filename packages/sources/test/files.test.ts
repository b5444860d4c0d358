import { describe, expect, it, afterAll } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { openSource, type SourceItem } from '../src/index.ts';
import { caseFile } from '../../../test/support/fixtures.ts';

/** Every temporary directory of this file, removed afterwards (they hold session files and keys). */
const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-test-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

function scan(spec: string): SourceItem[] {
  return [...openSource(spec).scan()];
}

describe('files source', () => {
  it('discovers exactly the three real sessions of the depth-2 tree (BUG-15)', () => {
    const tree = join(mkdtempSync(join(scratchRoot, 'sm-src-')), 'tree');
    cpSync(caseFile('BUG-15', 'tree'), tree, { recursive: true });
    const items = scan(`files:2;0660;${tree}`);
    const sessions = items
      .filter((i) => i.kind === 'session')
      .map((i) => 'tree/' + relative(tree, i.location))
      .sort();
    expect(sessions).toEqual([
      'tree/-/,/sess_-,AbCdEf0123456789,-xyzXYZ0123',
      'tree/M/I/sess_MIpn8u1nzgP98t,UbBeLw6y-zB3qS9H',
      'tree/a/b/sess_abcdef0123456789abcdef01234567',
    ]);
    const skipped = items
      .filter((i) => i.kind === 'skipped')
      .map((i) => [relative(tree, i.location), i.kind === 'skipped' ? i.reason : '']);
    expect(skipped).toContainEqual(['sess_zz0000000000000000000000000000', 'wrong-depth']);
    expect(skipped).toContainEqual(['a/b/sess_ab.cd0123456789abcdef012345', 'bad-session-id']);
  });

  it('never follows symlinks, reports FIFOs, empty and oversized files, and keeps going', () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-src-'));
    const outside = mkdtempSync(join(scratchRoot, 'sm-outside-'));
    writeFileSync(join(outside, 'secret'), 'uid|i:1;');
    writeFileSync(join(dir, 'sess_good0000000000000000000001'), 'uid|i:1;');
    writeFileSync(join(dir, 'sess_empty000000000000000000001'), '');
    symlinkSync(join(outside, 'secret'), join(dir, 'sess_link0000000000000000000001'));
    execFileSync('mkfifo', [join(dir, 'sess_fifo0000000000000000000001')]);
    mkdirSync(join(dir, 'sess_dir00000000000000000000001'));
    writeFileSync(join(dir, 'sess_big00000000000000000000001'), Buffer.alloc(2000, 0x61));
    writeFileSync(join(dir, 'README'), 'not a session');
    const items = [...openSource(`files:${dir}`, { maxSessionBytes: 1000 }).scan()];
    const byName = Object.fromEntries(
      items.map((i) => [relative(dir, i.location), i.kind === 'session' ? `session:${i.data.length}` : i.reason]),
    );
    expect(byName).toEqual({
      sess_good0000000000000000000001: 'session:8',
      sess_empty000000000000000000001: 'session:0',
      sess_link0000000000000000000001: 'symlink',
      sess_fifo0000000000000000000001: 'not-regular-file',
      sess_dir00000000000000000000001: 'not-regular-file',
      sess_big00000000000000000000001: 'oversized',
    });
  });

  it('reports an unreadable file without aborting (skipped when running as root)', () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-src-'));
    writeFileSync(join(dir, 'sess_locked000000000000000000001'), 'uid|i:1;');
    chmodSync(join(dir, 'sess_locked000000000000000000001'), 0);
    const items = scan(`files:${dir}`);
    expect(items).toHaveLength(1);
    if (process.getuid?.() === 0) expect(items[0]?.kind).toBe('session');
    else expect(items[0]).toMatchObject({ kind: 'skipped', reason: 'unreadable' });
  });

  it('refuses a missing directory, a file, a symlinked directory and a bad scheme with one line', () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-src-'));
    symlinkSync(dir, dir + '-link');
    writeFileSync(join(dir, 'f'), '');
    expect(() => openSource(`files:${dir}/missing`)).toThrow(/no such file or directory/);
    expect(() => openSource(`files:${dir}/f`)).toThrow(/not a directory/);
    expect(() => openSource(`files:${dir}-link`)).toThrow(/symbolic link/);
    expect(() => openSource(`redis:${dir}`)).toThrow(/unsupported source/);
    expect(() => openSource(`files:0660;${dir}`)).toThrow(/DEPTH/);
  });
});

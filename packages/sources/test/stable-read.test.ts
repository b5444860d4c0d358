/**
 * readSessionFile's stable-read rules (the deterministic parts; the race itself is tested against a
 * real PHP writer in test/apply-live.test.ts): a read that `looksComplete` rejects is tried again,
 * then taken as it is; FilesSource.sessions() and removeIfUnchanged.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSource, readSessionFile, type SourceItem, type SourceSession } from '../src/index.ts';

const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-stable-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

describe('readSessionFile', () => {
  it('returns a complete read at once, and retries one that does not look complete before taking it as it is', () => {
    const dir = mkdtempSync(join(scratchRoot, 'd-'));
    const path = join(dir, 'sess_stable000000000000000001');
    writeFileSync(path, 'a|i:1;');
    const candidate = { kind: 'candidate' as const, id: 'stable000000000000000001', location: path };
    let calls = 0;
    const ok = readSessionFile(candidate, 1000, { looksComplete: () => { calls++; return true; } });
    expect(ok).toMatchObject({ kind: 'session', data: Buffer.from('a|i:1;') });
    expect(calls).toBe(1);

    calls = 0;
    writeFileSync(path, '');
    const empty = readSessionFile(candidate, 1000, { attempts: 4, baseDelayMs: 1, looksComplete: (d) => { calls++; return d.length > 0; } });
    expect(calls).toBe(4);
    expect(empty).toMatchObject({ kind: 'session', data: Buffer.alloc(0) });
    expect((empty as SourceSession).mtimeMs).toBeGreaterThan(Date.now() - 60_000);

    // mtime is carried in milliseconds from the nanosecond stat.
    utimesSync(path, 1_700_000_000.25, 1_700_000_000.25);
    expect((readSessionFile(candidate, 1000) as SourceSession).mtimeMs).toBe(1_700_000_000_250);
  });

  it('FilesSource.sessions() streams read sessions in batches; removeIfUnchanged deletes only unchanged files', async () => {
    const dir = mkdtempSync(join(scratchRoot, 'd-'));
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, `sess_batch${String(i).padStart(20, '0')}`), `n|i:${i};`);
    const source = openSource(`files:${dir}`);
    const batches: SourceItem[][] = [];
    for await (const b of source.sessions({ batchSize: 2 })) batches.push(b);
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
    const sessions = batches.flat().filter((s): s is SourceSession => s.kind === 'session');
    expect(sessions).toHaveLength(5);
    writeFileSync(sessions[0]!.location, 'n|i:999;');
    expect(await source.removeIfUnchanged(sessions[0]!)).toBe('changed');
    expect(existsSync(sessions[0]!.location)).toBe(true);
    expect(await source.removeIfUnchanged(sessions[1]!)).toBe('removed');
    expect(existsSync(sessions[1]!.location)).toBe(false);
    expect(await source.removeIfUnchanged(sessions[1]!)).toBe('gone');
  });
});

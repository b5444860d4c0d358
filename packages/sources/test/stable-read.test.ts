/**
 * readSessionFile's stable-read rules, deterministically: real PHP processes hold a session file in
 * the exact states of a write in progress (test/php/stalled-write.php; the free-running race is in
 * test/apply-live.test.ts). A read that does not look complete is never taken as it is while PHP may
 * be writing the file: it is confirmed under a shared flock, or it settles, or it is `unstable`.
 * Also FilesSource.sessions() and removeIfUnchanged.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  statSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ONE_READ_AFTER_MS,
  openFilesSource,
  openSource,
  readSessionFile,
  stableReadTestHooks,
  type SessionCandidate,
  type SourceItem,
  type SourceSession,
} from '../src/index.ts';
import { stallPhpWrite } from '../../../test/support/stalled-writer.ts';

const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-stable-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

describe('readSessionFile', () => {
  it('returns a complete read at once; an empty file nobody is writing is empty at once, however recent', () => {
    const dir = mkdtempSync(join(scratchRoot, 'd-'));
    const path = join(dir, 'sess_stable000000000000000001');
    writeFileSync(path, 'a|i:1;');
    const candidate = { kind: 'candidate' as const, id: 'stable000000000000000001', location: path };
    let calls = 0;
    const ok = readSessionFile(candidate, 1000, {
      looksComplete: () => {
        calls++;
        return true;
      },
    });
    expect(ok).toMatchObject({ kind: 'session', data: Buffer.from('a|i:1;') });
    expect(calls).toBe(1);

    // Written just now, so it could be PHP between ftruncate and pwrite: confirmed under a shared
    // flock (no PHP holds its exclusive one), then taken as it is without waiting for it to settle.
    calls = 0;
    writeFileSync(path, '');
    const started = Date.now();
    const empty = readSessionFile(candidate, 1000, {
      looksComplete: (d) => {
        calls++;
        return d.length > 0;
      },
    });
    expect(empty).toMatchObject({ kind: 'session', data: Buffer.alloc(0) });
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((empty as SourceSession).mtimeMs).toBeGreaterThan(Date.now() - 60_000);

    // mtime is carried in milliseconds from the nanosecond stat.
    utimesSync(path, 1_700_000_000.25, 1_700_000_000.25);
    expect((readSessionFile(candidate, 1000) as SourceSession).mtimeMs).toBe(1_700_000_000_250);
  });

  describe('a file PHP holds half-written (real PHP, stopped between ftruncate and the end of its write)', () => {
    const v0 = `v|s:40:"${'a'.repeat(40)}";`;
    const v1 = `v|s:30:"${'b'.repeat(30)}";`;
    const complete = (d: Buffer): boolean =>
      /^v\|s:(\d+):"([a-z]*)";$/.test(d.toString('latin1')) && RegExp.$1 === String(RegExp.$2.length);

    it("0 bytes under PHP's lock is unstable, never an empty session; once PHP is done it is read whole", async () => {
      const dir = mkdtempSync(join(scratchRoot, 'd-'));
      const path = join(dir, 'sess_stall0000000000000000001');
      writeFileSync(path, v0);
      const candidate = { kind: 'candidate' as const, id: 'stall0000000000000000001', location: path };
      const php = await stallPhpWrite(path, 'truncate', v1);
      try {
        // The default check (non-empty) and a serialize_handler-aware one alike.
        for (const options of [{}, { looksComplete: complete }]) {
          const r = readSessionFile(candidate, 1000, { ...options, attempts: 3, baseDelayMs: 1 });
          expect(r).toMatchObject({ kind: 'skipped', reason: 'unstable' });
        }
        // However long PHP stays stopped (a quiet period of 0 here): its lock shows in /proc/locks, and
        // a shared flock cannot be had, or without flock(1) cannot be tried.
        expect(readSessionFile(candidate, 1000, { attempts: 3, baseDelayMs: 1, settleMs: 0 })).toMatchObject({
          kind: 'skipped',
          reason: 'unstable',
        });
        const savedPath = process.env.PATH;
        process.env.PATH = mkdtempSync(join(scratchRoot, 'empty-bin-'));
        try {
          expect(readSessionFile(candidate, 1000, { attempts: 3, baseDelayMs: 1, settleMs: 0 })).toMatchObject({
            kind: 'skipped',
            reason: 'unstable',
          });
        } finally {
          process.env.PATH = savedPath;
        }
      } finally {
        await php.finish();
      }
      expect(readSessionFile(candidate, 1000, { looksComplete: complete })).toMatchObject({ kind: 'session', data: Buffer.from(v1) });
    });

    it("a half-written prefix under PHP's lock is unstable, never a corrupt session", async () => {
      const dir = mkdtempSync(join(scratchRoot, 'd-'));
      const path = join(dir, 'sess_stall0000000000000000002');
      writeFileSync(path, v0);
      const candidate = { kind: 'candidate' as const, id: 'stall0000000000000000002', location: path };
      const php = await stallPhpWrite(path, 'partial', v1);
      try {
        expect(readFileSync(path).equals(Buffer.from(v1.slice(0, v1.length >> 1)))).toBe(true);
        const r = readSessionFile(candidate, 1000, { looksComplete: complete, attempts: 3, baseDelayMs: 1 });
        expect(r).toMatchObject({ kind: 'skipped', reason: 'unstable' });
      } finally {
        await php.finish();
      }
      expect(readSessionFile(candidate, 1000, { looksComplete: complete })).toMatchObject({ kind: 'session', data: Buffer.from(v1) });
    });

    it('FilesSource.sessions() (verify --source) and FilesSource.read (purge) report it unstable too', async () => {
      const dir = mkdtempSync(join(scratchRoot, 'd-'));
      const path = join(dir, 'sess_stall0000000000000000003');
      writeFileSync(path, v0);
      writeFileSync(join(dir, 'sess_still0000000000000000003'), v0);
      const php = await stallPhpWrite(path, 'truncate', v1);
      try {
        const source = openSource(`files:${dir}`);
        const items: SourceItem[] = [];
        for await (const b of source.sessions({ read: { attempts: 3, baseDelayMs: 1 } })) items.push(...b);
        expect(items.map((i) => `${i.kind}:${i.kind === 'skipped' ? i.reason : i.data.length}`).sort()).toEqual([
          'session:50',
          'skipped:unstable',
        ]);
        const files = openFilesSource(dir);
        const candidates = [...files.candidates()].filter((c) => c.kind === 'candidate' && c.location === path);
        expect(candidates).toHaveLength(1);
        expect(files.read(candidates[0] as SessionCandidate)).toMatchObject({ kind: 'skipped', reason: 'unstable' });
      } finally {
        await php.finish();
      }
    });
  });

  describe('one read for a file that last changed long ago, two for a recent one (ONE_READ_AFTER_MS)', () => {
    afterEach(() => {
      delete stableReadTestHooks.afterFirstRead;
      delete stableReadTestHooks.afterSecondStat;
      vi.restoreAllMocks();
    });
    const v0 = 'v|s:8:"aaaaaaaa";';
    const v1 = 'v|s:8:"bbbbbbbb";';
    /** Rewrites the open file in place with `data` (same size), then sets its mtime back: only its ctime can tell. */
    const rewriteKeepingMtime = (path: string, fd: number, data: string): void => {
      const st = fstatSync(fd);
      const w = openSync(path, 'r+');
      try {
        writeSync(w, data, 0, 'latin1');
      } finally {
        closeSync(w);
      }
      utimesSync(path, st.atime, st.mtime);
    };
    const fileWith = (name: string, data: string): { path: string; candidate: SessionCandidate } => {
      const dir = mkdtempSync(join(scratchRoot, 'd-'));
      const path = join(dir, `sess_${name}`);
      writeFileSync(path, data);
      return { path, candidate: { kind: 'candidate', id: name, location: path } };
    };

    it('an old file rewritten between the first read and the fstat after it is read again, never returned as it was', () => {
      const { path, candidate } = fileWith('oneread000000000000000001', v0);
      // The clock says the file last changed a minute ago: the one-read path.
      const now = Date.now() + 60_000;
      vi.spyOn(Date, 'now').mockImplementation(() => now);
      let rewrites = 0;
      let secondReads = 0;
      stableReadTestHooks.afterFirstRead = (fd) => {
        if (rewrites++ === 0) rewriteKeepingMtime(path, fd, v1);
      };
      stableReadTestHooks.afterSecondStat = () => {
        secondReads++;
      };
      const item = readSessionFile(candidate, 1000, { baseDelayMs: 1 });
      expect(rewrites).toBeGreaterThanOrEqual(2); // read again after the rewrite was seen
      expect(item).toMatchObject({ kind: 'session', data: Buffer.from(v1) });
      // On the one-read path indeed (the file is "old" by the mocked clock).
      expect(secondReads).toBe(0);
    });

    it('an old file that is rewritten at every read is unstable', () => {
      const { path, candidate } = fileWith('oneread000000000000000002', v0);
      const now = Date.now() + 60_000;
      vi.spyOn(Date, 'now').mockImplementation(() => now);
      let n = 0;
      stableReadTestHooks.afterFirstRead = (fd) => rewriteKeepingMtime(path, fd, n++ % 2 === 0 ? v1 : v0);
      expect(readSessionFile(candidate, 1000, { attempts: 3, baseDelayMs: 1 })).toMatchObject({ kind: 'skipped', reason: 'unstable' });
      expect(n).toBe(3);
    });

    it('a recent file is read twice: a change the fstats cannot see is caught by the second read', () => {
      const { path, candidate } = fileWith('oneread000000000000000003', v0);
      expect(Date.now() - statSync(path).ctimeMs).toBeLessThan(ONE_READ_AFTER_MS);
      let rewrites = 0;
      // After both fstats agreed: only the second read can see this change.
      stableReadTestHooks.afterSecondStat = (fd) => {
        if (rewrites++ === 0) rewriteKeepingMtime(path, fd, v1);
      };
      const item = readSessionFile(candidate, 1000, { baseDelayMs: 1 });
      expect(rewrites).toBeGreaterThanOrEqual(2);
      expect(item).toMatchObject({ kind: 'session', data: Buffer.from(v1) });
    });
  });

  it('without flock(1) on the PATH, a recent incomplete read is unstable until it has settled (settleMs)', () => {
    const dir = mkdtempSync(join(scratchRoot, 'd-'));
    const path = join(dir, 'sess_nolock000000000000000001');
    writeFileSync(path, '');
    const candidate = { kind: 'candidate' as const, id: 'nolock000000000000000001', location: path };
    const savedPath = process.env.PATH;
    process.env.PATH = mkdtempSync(join(scratchRoot, 'empty-bin-'));
    try {
      expect(readSessionFile(candidate, 1000, { attempts: 2, baseDelayMs: 1, settleMs: 60_000 })).toMatchObject({
        kind: 'skipped',
        reason: 'unstable',
      });
      expect(readSessionFile(candidate, 1000, { attempts: 2, baseDelayMs: 1, settleMs: 0 })).toMatchObject({
        kind: 'session',
        data: Buffer.alloc(0),
      });
    } finally {
      process.env.PATH = savedPath;
    }
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

/**
 * The one atomic write (packages/common/src/atomic-write.ts): mode kept or set exactly, a symbolic
 * link at the target or at the temporary name is never written through, a file changed meanwhile is
 * not replaced, and a crash at the worst moments leaves the old file whole.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// Predictable "random" bytes when a test asks for them, to plant a link at the temporary name.
const fixedRandom = vi.hoisted(() => ({ on: false }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, randomBytes: (n: number) => (fixedRandom.on ? Buffer.alloc(n, 0xab) : real.randomBytes(n)) };
});

const { describeFsError, writeFileAtomic } = await import('../src/index.ts');

const HELPER = fileURLToPath(new URL('../src/atomic-write.ts', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'atomic-write-'));
});
afterEach(() => {
  fixedRandom.on = false;
  rmSync(dir, { recursive: true, force: true });
});

const mode = (p: string) => statSync(p).mode & 0o7777;
const code = (fn: () => void): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
};
/** Temporary files left in `dir` (a crash leaves one; nothing else may). */
const temps = () => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

describe('writeFileAtomic', () => {
  it('creates a new file with mode 0600 by default, or exactly the mode asked for whatever the umask', () => {
    writeFileAtomic(join(dir, 'a'), 'one');
    expect(readFileSync(join(dir, 'a'), 'utf8')).toBe('one');
    expect(mode(join(dir, 'a'))).toBe(0o600);
    const old = process.umask(0o077);
    try {
      writeFileAtomic(join(dir, 'b'), Buffer.from('two'), { mode: 0o664 });
    } finally {
      process.umask(old);
    }
    expect(mode(join(dir, 'b'))).toBe(0o664);
    expect(temps()).toEqual([]);
  });

  it('keeps the mode of the file it replaces (setgid and sticky bits too), unless a mode is given', () => {
    const p = join(dir, 'index.php');
    writeFileSync(p, 'old');
    chmodSync(p, 0o2751);
    writeFileAtomic(p, 'new');
    expect(readFileSync(p, 'utf8')).toBe('new');
    expect(mode(p)).toBe(0o2751);
    writeFileAtomic(p, 'newer', { mode: 0o640 });
    expect(mode(p)).toBe(0o640);
    expect(temps()).toEqual([]);
  });

  it('refuses a symbolic link at the target: neither the link nor what it points to changes', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const link = join(dir, 'link');
    symlinkSync(victim, link);
    expect(code(() => writeFileAtomic(link, 'evil'))).toBe('ELOOP');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(victim);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
    expect(code(() => writeFileAtomic(join(dir, 'dangling'), 'x'))).toBe('ELOOP');
    expect(readdirSync(dir).sort()).toEqual(['dangling', 'link', 'victim']);
  });

  it('sets the mtime asked for (mtimeMs) after the bytes are written, and the owner (owner, as root)', () => {
    const p = join(dir, 'sess_abc');
    const mtimeMs = Date.UTC(2020, 0, 2, 3, 4, 5);
    writeFileAtomic(p, 'user|s:1:"a";', { mode: 0o640, mtimeMs });
    expect(statSync(p).mtimeMs).toBe(mtimeMs);
    expect(mode(p)).toBe(0o640);
    if (process.getuid?.() === 0) {
      writeFileAtomic(p, 'user|s:1:"b";', { owner: { uid: 4321, gid: 4322 }, mtimeMs });
      const st = statSync(p);
      expect([st.uid, st.gid, st.mode & 0o7777, st.mtimeMs]).toEqual([4321, 4322, 0o640, mtimeMs]);
      // The owner goes first, so chown(2) cannot clear a set-group-ID bit that was asked for.
      writeFileAtomic(p, 'x', { owner: { uid: 4321, gid: 4322 }, mode: 0o2640 });
      expect(mode(p)).toBe(0o2640);
    } else {
      // Not root: chown(2) to another user fails, and nothing is changed.
      expect(code(() => writeFileAtomic(p, 'y', { owner: { uid: 4321, gid: 4322 } }))).toBe('EPERM');
      expect(readFileSync(p, 'utf8')).toBe('user|s:1:"a";');
    }
    expect(temps()).toEqual([]);
  });

  it('never writes through a link planted at the temporary name (O_EXCL | O_NOFOLLOW)', () => {
    const target = join(dir, 'key');
    writeFileSync(target, 'old');
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    fixedRandom.on = true;
    const planted = join(dir, `.key.${'ab'.repeat(12)}.tmp`);
    symlinkSync(victim, planted);
    expect(code(() => writeFileAtomic(target, 'new'))).toBe('EEXIST');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
  });

  it('names its temporary file unpredictably (two writes, two names)', () => {
    fixedRandom.on = false;
    const names = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `
        import fs from 'node:fs';
        import { syncBuiltinESMExports } from 'node:module';
        const rename = fs.renameSync;
        fs.renameSync = (from, to) => { console.log(from); rename(from, to); };
        syncBuiltinESMExports();
        const { writeFileAtomic } = await import(${JSON.stringify(HELPER)});
        writeFileAtomic(${JSON.stringify(join(dir, 'f'))}, 'x');
      `,
        ],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      names.add(r.stdout.trim());
    }
    expect(names.size).toBe(2);
    for (const n of names) expect(n).toMatch(/\/\.f\.[0-9a-f]{24}\.tmp$/);
  });

  it('with `expected`, does not replace a file that changed meanwhile (ECHANGED) and leaves no temporary file', () => {
    const p = join(dir, 'app.ts');
    writeFileSync(p, 'read by the tool');
    writeFileSync(p, 'an editor saved this meanwhile');
    expect(code(() => writeFileAtomic(p, 'rewritten', { expected: Buffer.from('read by the tool') }))).toBe('ECHANGED');
    expect(readFileSync(p, 'utf8')).toBe('an editor saved this meanwhile');
    expect(temps()).toEqual([]);
    writeFileAtomic(p, 'rewritten', { expected: Buffer.from('an editor saved this meanwhile') });
    expect(readFileSync(p, 'utf8')).toBe('rewritten');
  });

  it('with `unchangedSince`, does not replace a file written, replaced or removed since that lstat (ECHANGED)', () => {
    const p = join(dir, 'sess_a');
    writeFileSync(p, 'checked');
    const checked = lstatSync(p);
    writeFileSync(p, 'written meanwhile');
    expect(code(() => writeFileAtomic(p, 'new', { unchangedSince: checked }))).toBe('ECHANGED');
    expect(readFileSync(p, 'utf8')).toBe('written meanwhile');
    const again = lstatSync(p);
    rmSync(p);
    expect(code(() => writeFileAtomic(p, 'new', { unchangedSince: again }))).toBe('ECHANGED');
    expect(temps()).toEqual([]);
    writeFileSync(p, 'checked');
    writeFileAtomic(p, 'new', { unchangedSince: lstatSync(p) });
    expect(readFileSync(p, 'utf8')).toBe('new');
  });

  it('with `exclusive`, never replaces anything, a dangling link included', () => {
    const p = join(dir, 'master.key');
    writeFileAtomic(p, 'k1', { exclusive: true });
    expect(mode(p)).toBe(0o600);
    expect(code(() => writeFileAtomic(p, 'k2', { exclusive: true }))).toBe('EEXIST');
    expect(readFileSync(p, 'utf8')).toBe('k1');
    symlinkSync(join(dir, 'absent'), join(dir, 'ring'));
    expect(code(() => writeFileAtomic(join(dir, 'ring'), 'k3', { exclusive: true }))).toBe('EEXIST');
    expect(() => lstatSync(join(dir, 'absent'))).toThrow();
    expect(temps()).toEqual([]);
  });

  it('refuses what is not a regular file, and reports a missing directory as ENOENT, each in one line', () => {
    mkdirSync(join(dir, 'sub'));
    expect(code(() => writeFileAtomic(join(dir, 'sub'), 'x'))).toBe('ENOTREG');
    expect(code(() => writeFileAtomic(join(dir, 'missing', 'f'), 'x'))).toBe('ENOENT');
    expect(describeFsError({ code: 'ENOTREG' })).toBe('not a regular file');
    expect(describeFsError({ code: 'ECHANGED' })).toBe('changed on disk meanwhile');
    expect(temps()).toEqual([]);
  });

  /**
   * Runs writeFileAtomic in a child process whose `fs.<fn>` is replaced by SIGKILL (after `before`
   * runs), i.e. the process dies at that point without any cleanup.
   */
  function crashAt(fn: 'renameSync' | 'writeSync' | 'fsyncSync', target: string, data: string): number | null {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `
      import fs from 'node:fs';
      import { syncBuiltinESMExports } from 'node:module';
      const real = fs.${fn};
      fs.${fn} = (...args) => {
        ${fn === 'writeSync' ? 'real(args[0], args[1], 0, 10);' : ''}
        process.kill(process.pid, 'SIGKILL');
      };
      syncBuiltinESMExports();
      const { writeFileAtomic } = await import(${JSON.stringify(HELPER)});
      writeFileAtomic(${JSON.stringify(target)}, ${JSON.stringify(data)});
    `,
      ],
      { encoding: 'utf8' },
    );
    expect(r.signal, r.stderr).toBe('SIGKILL');
    return r.status;
  }

  it('a crash mid-write, before the fsync or before the rename leaves the old file whole', () => {
    const p = join(dir, 'session-migrate-redis.tf');
    const old = 'resource "old" {}\n'.repeat(100);
    writeFileSync(p, old);
    chmodSync(p, 0o644);
    for (const fn of ['writeSync', 'fsyncSync', 'renameSync'] as const) {
      crashAt(fn, p, 'resource "new" {}\n'.repeat(200));
      expect(readFileSync(p, 'utf8'), fn).toBe(old);
      expect(mode(p), fn).toBe(0o644);
    }
    // What a crash leaves: hidden temporary files next to it, never a half-written target.
    expect(temps().length).toBe(3);
    for (const t of temps()) expect(t).toMatch(/^\.session-migrate-redis\.tf\.[0-9a-f]{24}\.tmp$/);
  });
});

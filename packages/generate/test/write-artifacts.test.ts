/**
 * writeArtifacts writes through the one atomic write (packages/common/src/atomic-write.ts): the mode
 * is set exactly, a symbolic link at the target or at the temporary name is never written through,
 * and a failed write leaves no temporary file.
 */
import { lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { errorCode, pinnedTempName, tempDirPerTest, tempFiles } from '../../../test/support/atomic-write.ts';

// Predictable "random" bytes when a test asks for them, to plant a link at the temporary name.
const fixedRandom = vi.hoisted(() => ({ on: false }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, randomBytes: (n: number) => (fixedRandom.on ? Buffer.alloc(n, 0xab) : real.randomBytes(n)) };
});

const { writeArtifacts } = await import('../src/index.ts');

const tmp = tempDirPerTest('write-artifacts-', () => {
  fixedRandom.on = false;
});
const code = errorCode;
const temps = tempFiles;

describe('writeArtifacts (atomic)', () => {
  it('sets the mode exactly whatever the umask, and changes it on a later run', () => {
    const dir = tmp();
    const old = process.umask(0o077);
    try {
      writeArtifacts(dir, [{ path: 'conf.d/99-session-migrate.ini', contents: 'a=1\n', mode: 0o644 }]);
    } finally {
      process.umask(old);
    }
    const p = join(dir, 'conf.d', '99-session-migrate.ini');
    expect(statSync(p).mode & 0o7777).toBe(0o644);
    expect(writeArtifacts(dir, [{ path: 'conf.d/99-session-migrate.ini', contents: 'a=1\n', mode: 0o640 }]).changed).toEqual([
      'conf.d/99-session-migrate.ini',
    ]);
    expect(statSync(p).mode & 0o7777).toBe(0o640);
    expect(temps(join(dir, 'conf.d'))).toEqual([]);
  });

  it('refuses a symbolic link at the target (ELOOP): neither the link nor what it points to changes', () => {
    const dir = tmp();
    const victim = join(dir, 'victim.php');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(dir, 'bootstrap.php'));
    expect(code(() => writeArtifacts(dir, [{ path: 'bootstrap.php', contents: '<?php', mode: 0o644 }]))).toBe('ELOOP');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(join(dir, 'bootstrap.php')).isSymbolicLink()).toBe(true);
    expect(temps(dir)).toEqual([]);
  });

  it('never writes through a link planted at the temporary name', () => {
    const dir = tmp();
    const victim = join(dir, 'victim.php');
    writeFileSync(victim, 'precious');
    fixedRandom.on = true;
    symlinkSync(victim, join(dir, pinnedTempName('bootstrap.php')));
    expect(code(() => writeArtifacts(dir, [{ path: 'bootstrap.php', contents: '<?php', mode: 0o644 }]))).toBe('EEXIST');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readdirSync(dir).includes('bootstrap.php')).toBe(false);
  });

  it('leaves no temporary file when the write fails (a directory in the way)', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'bootstrap.php'));
    expect(code(() => writeArtifacts(dir, [{ path: 'bootstrap.php', contents: '<?php', mode: 0o644 }]))).toBe('ENOTREG');
    expect(readdirSync(dir)).toEqual(['bootstrap.php']);
  });
});

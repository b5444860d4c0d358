/** RootFs never lets a path or a symbolic link escape the root; loops end; globs sort like glob(3). */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CollectedFs, RootFs, globFs, parsePhpIniOutput } from '@session-migrate/audit';

const work = mkdtempSync(join(tmpdir(), 'audit-vfs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('RootFs', () => {
  const outside = join(work, 'outside.ini');
  writeFileSync(outside, 'session.name = OUTSIDE\n');
  const root = join(work, 'root');
  mkdirSync(join(root, 'etc/php'), { recursive: true });
  writeFileSync(join(root, 'etc/php/inside.ini'), 'session.name = INSIDE\n');
  symlinkSync(outside, join(root, 'etc/php/abs.ini'));
  symlinkSync('../../../outside.ini', join(root, 'etc/php/rel.ini'));
  symlinkSync('/etc/php/inside.ini', join(root, 'etc/php/inroot.ini'));
  symlinkSync('loop2', join(root, 'etc/php/loop1'));
  symlinkSync('loop1', join(root, 'etc/php/loop2'));
  const fs = new RootFs(root);

  it('an absolute link target is read inside the root, never on the host', () => {
    expect(fs.readFile('/etc/php/abs.ini').ok).toBe(false);
    const r = fs.readFile('/etc/php/inroot.ini');
    expect(r.ok && r.data.toString()).toBe('session.name = INSIDE\n');
  });
  it('.. never climbs above the root', () => {
    expect(fs.readFile('/etc/php/rel.ini').ok).toBe(false);
    expect(fs.readFile('/../../outside.ini').ok).toBe(false);
    expect(fs.realpath('/etc/php/../../etc/php/inside.ini')).toBe('/etc/php/inside.ini');
  });
  it('a symlink loop is an error value, not a hang or a throw', () => {
    const r = fs.readFile('/etc/php/loop1');
    expect(r.ok).toBe(false);
    expect(fs.stat('/etc/php/loop1')).toBeNull();
    expect(fs.lstat('/etc/php/loop1')?.type).toBe('symlink');
  });
  it('glob sorts and skips hidden names', () => {
    writeFileSync(join(root, 'etc/php/.hidden.ini'), '');
    expect(globFs(fs, '/etc/php/*.ini')).toEqual(['/etc/php/abs.ini', '/etc/php/inroot.ini', '/etc/php/inside.ini', '/etc/php/rel.ini']);
  });
});

describe('CollectedFs', () => {
  it('serves recorded files, directories made of their paths, and links inside the document', () => {
    const fs = new CollectedFs('t', [
      { path: '/etc/php/8.2/cli/php.ini', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, content: Buffer.from('a=1') },
      { path: '/etc/php/8.2/cli/conf.d/20-x.ini', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, target: '../php.ini' },
      { path: '/etc/big.ini', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 9e9, skipped: 'too large' },
    ]);
    expect(fs.readdir('/etc/php/8.2/cli')?.sort()).toEqual(['conf.d', 'php.ini']);
    const r = fs.readFile('/etc/php/8.2/cli/conf.d/20-x.ini');
    expect(r.ok && r.data.toString()).toBe('a=1');
    expect(fs.readFile('/etc/big.ini')).toEqual({ ok: false, error: 'too large' });
    expect(fs.stat('/nope')).toBeNull();
  });
});

describe('php --ini output', () => {
  it('parses paths, scan dirs and the comma-separated list', () => {
    const r = parsePhpIniOutput(
      'Configuration File (php.ini) Path: /etc/php/8.2/cli\nLoaded Configuration File:         /etc/php/8.2/cli/php.ini\nScan for additional .ini files in: /etc/php/8.2/cli/conf.d\nAdditional .ini files parsed:      /etc/php/8.2/cli/conf.d/10-opcache.ini,\n/etc/php/8.2/cli/conf.d/10-pdo.ini\n',
    );
    expect(r).toEqual({
      configPath: '/etc/php/8.2/cli',
      loadedFile: '/etc/php/8.2/cli/php.ini',
      scanDirs: ['/etc/php/8.2/cli/conf.d'],
      scannedFiles: ['/etc/php/8.2/cli/conf.d/10-opcache.ini', '/etc/php/8.2/cli/conf.d/10-pdo.ini'],
    });
    expect(
      parsePhpIniOutput(
        'Loaded Configuration File:         (none)\nScan for additional .ini files in: (none)\nAdditional .ini files parsed:      (none)\n',
      ),
    ).toEqual({ configPath: null, loadedFile: null, scanDirs: null, scannedFiles: [] });
  });
});

/**
 * plan reads a files source in one walk (summarizeFilesByOwner): the owners PHP's files handler would
 * take are counted in the scan that reads the sessions, and the files of the others become
 * `foreign-owner` afterwards. The summary must be the one of the two-walk way (countOwners, then
 * acceptOwners and summarizeSource): same counts, same sample, same key order (the plan file's bytes).
 * Real files chowned to other uids (needs root, as the suite runs); no server.
 */
import module from 'node:module';
import fs, { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decidePhpUids, openFilesSource } from '@session-migrate/sources';
import { summarizeFilesByOwner, summarizeSource } from '../src/index.ts';

const scratch = mkdtempSync(join(tmpdir(), 'sm-one-walk-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
const NOW = Math.floor(Date.now() / 1000);
const php = { gcMaxlifetime: 1440, serializeHandler: 'php' as const, nowSeconds: NOW };

function file(dir: string, id: string, uid: number, data: string, ageSeconds = 60): void {
  const path = join(dir, `sess_${id}`);
  writeFileSync(path, data, { mode: 0o600 });
  chownSync(path, uid, uid);
  utimesSync(path, NOW - ageSeconds, NOW - ageSeconds);
}

/** A directory of every kind of entry, owned by three users besides root; `www` owns most. */
function mixedDir(): string {
  const dir = mkdtempSync(join(scratch, 'dir-'));
  let n = 0;
  const id = (tag: string): string => `${tag}${String(n++).padStart(4, '0')}${'a'.repeat(20)}`;
  for (let i = 0; i < 40; i++) {
    // Interleaved, so samples and key orders of the owners mix.
    file(dir, id('www'), 33, i % 5 === 0 ? 'a|i:1;' : `u|s:${i}:"${'x'.repeat(i)}";`);
    if (i % 4 === 0) file(dir, id('bad'), 65534, i % 8 === 0 ? 'junk' : 'z|i:1;'); // corrupt / live, foreign
    if (i % 6 === 0) file(dir, id('big'), 4242, 'y'.repeat(3000)); // oversized, foreign: foreign-owner wins
    if (i % 7 === 0) file(dir, id('root'), 0, 'r|i:1;');
    if (i % 9 === 0) file(dir, id('old'), 33, 'o|i:1;', 10_000); // expired
    if (i % 10 === 0) file(dir, id('emp'), 33, ''); // empty
    if (i % 11 === 0) file(dir, id('www'), 33, 'not a session'); // corrupt
  }
  file(dir, id('big'), 33, 'y'.repeat(3000)); // oversized, taken
  symlinkSync('/etc/passwd', join(dir, 'sess_linkaaaaaaaaaaaaaaaa')); // symlink
  writeFileSync(join(dir, 'sess_bad.name'), 'a|i:1;'); // bad-session-id
  mkdirSync(join(dir, 'sess_diraaaaaaaaaaaaaaaaaa')); // a directory: counted by countOwners, not-regular-file
  chownSync(join(dir, 'sess_diraaaaaaaaaaaaaaaaaa'), 4242, 4242);
  execFileSync('mkfifo', [join(dir, 'sess_fifoaaaaaaaaaaaaaaaaa')]); // a FIFO of a foreign owner: not-regular-file
  chownSync(join(dir, 'sess_fifoaaaaaaaaaaaaaaaaa'), 65534, 65534);
  return dir;
}

/** The two-walk way plan had: countOwners, decidePhpUids, acceptOwners, summarizeSource. */
async function twoWalks(dir: string, given: number[] | undefined) {
  const src = openFilesSource(dir, { maxSessionBytes: 1000 });
  const owners = src.countOwners();
  const decision = decidePhpUids(owners, given, 'x');
  src.acceptOwners(decision.uids);
  return { owners, uids: decision.uids, summary: await summarizeSource(src, php) };
}

async function oneWalk(dir: string, given: number[] | undefined) {
  const src = openFilesSource(dir, { maxSessionBytes: 1000 });
  let owners: ReadonlyMap<number, number> | undefined;
  let uids: number[] = [];
  const { summary } = await summarizeFilesByOwner(src, php, (o) => {
    owners = o;
    uids = decidePhpUids(o, given, 'x').uids;
    return uids;
  });
  return { owners: owners!, uids, summary };
}

describe.skipIf(!isRoot)('summarizeFilesByOwner: one walk, the summary of two', () => {
  it.each([
    ['inferred (www-data)', undefined],
    ['--php-user nobody', [65534]],
    ['--php-user 4242 and nobody', [4242, 65534]],
    ['PHP runs as root', [0]],
  ])('owners %s: same owners, uids, counts, sample and key order', async (_name, given) => {
    const dir = mixedDir();
    const two = await twoWalks(dir, given);
    const one = await oneWalk(dir, given);
    expect([...one.owners].sort()).toEqual([...two.owners].sort());
    expect(one.uids).toEqual(two.uids);
    // The plan file's bytes: key order included.
    expect(JSON.stringify(one.summary)).toBe(JSON.stringify(two.summary));
    if (given === undefined) {
      expect(one.summary.skipped['foreign-owner']).toBe(10 + 7);
      expect(one.summary.skippedSample.length).toBeGreaterThan(10);
    }
  });

  it('more than one sample page: the first 50 skipped entries in scan order, across owners', async () => {
    const dir = mkdtempSync(join(scratch, 'many-'));
    for (let i = 0; i < 200; i++)
      file(
        dir,
        `s${String(i).padStart(4, '0')}${'b'.repeat(20)}`,
        i % 10 === 3 ? 65534 : i % 10 === 7 ? 4242 : 33,
        i % 3 === 0 ? 'junk' : 'a|i:1;',
      );
    const two = await twoWalks(dir, undefined);
    const one = await oneWalk(dir, undefined);
    expect(one.summary.skippedSample).toHaveLength(50);
    expect(JSON.stringify(one.summary)).toBe(JSON.stringify(two.summary));
  });

  it('the ambiguous-owner error of decidePhpUids comes out unchanged', async () => {
    const dir = mkdtempSync(join(scratch, 'pools-'));
    for (let i = 0; i < 6; i++) file(dir, `p${i}${'c'.repeat(24)}`, i % 2 === 0 ? 33 : 65534, 'a|i:1;');
    const message = async (f: () => Promise<unknown>): Promise<string> =>
      f().then(
        () => '',
        (e: Error) => e.message,
      );
    const two = await message(() => twoWalks(dir, undefined));
    expect(two).toMatch(/belong to several users/);
    expect(await message(() => oneWalk(dir, undefined))).toBe(two);
  });

  it('stats no file by name: the read of each file (open, fstat) is the only look at it', async () => {
    const dir = mkdtempSync(join(scratch, 'count-'));
    for (let i = 0; i < 30; i++) file(dir, `c${String(i).padStart(3, '0')}${'d'.repeat(22)}`, i % 10 === 0 ? 65534 : 33, 'a|i:1;');
    const real = fs.lstatSync;
    let lstats = 0;
    const counting = ((...args: Parameters<typeof fs.lstatSync>) => {
      lstats++;
      return real(...args);
    }) as typeof fs.lstatSync;
    const src = openFilesSource(dir);
    (fs as { lstatSync: typeof fs.lstatSync }).lstatSync = counting;
    module.syncBuiltinESMExports();
    try {
      // The two-walk way lstats every candidate (countOwners): the counter sees it.
      src.countOwners();
      expect(lstats).toBe(30);
      lstats = 0;
      const { summary } = await summarizeFilesByOwner(src, php, (o) => decidePhpUids(o, undefined, 'x').uids);
      expect(lstats).toBe(0);
      expect(summary.live).toBe(27);
      expect(summary.skipped['foreign-owner']).toBe(3);
    } finally {
      (fs as { lstatSync: typeof fs.lstatSync }).lstatSync = real;
      module.syncBuiltinESMExports();
    }
  });
});

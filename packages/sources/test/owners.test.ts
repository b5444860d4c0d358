/**
 * The owner rule of PHP's files handler (php-src ext/session/mod_files.c, ps_files_open: a session
 * file owned by neither root nor the uid PHP runs as is not read): phpAcceptsOwner, the stable read's
 * `foreign-owner` skip on the open file's owner, the plan's inference (decidePhpUids) and the user
 * database lookup of --php-user. Real files chowned to other uids (needs root, as the suite runs).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chownSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserFacingError } from '@session-migrate/common';
import {
  NOT_COPIED_SKIPS,
  decidePhpUids,
  describeUid,
  openSource,
  phpAcceptsOwner,
  readSessionFile,
  resolvePhpUser,
  type SourceItem,
} from '../src/index.ts';

const scratch = mkdtempSync(join(tmpdir(), 'sm-owners-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

function file(dir: string, id: string, uid: number, data = 'admin|b:1;'): string {
  const path = join(dir, `sess_${id}`);
  writeFileSync(path, data, { mode: 0o600 });
  chownSync(path, uid, uid);
  const t = Date.now() / 1000 - 60;
  utimesSync(path, t, t);
  return path;
}

describe('phpAcceptsOwner', () => {
  it("takes root's files and the PHP user's, nothing else; undefined takes any owner", () => {
    expect(phpAcceptsOwner(0, [33])).toBe(true);
    expect(phpAcceptsOwner(33, [33])).toBe(true);
    expect(phpAcceptsOwner(65534, [33])).toBe(false);
    expect(phpAcceptsOwner(33, [])).toBe(false); // no PHP user known: root's files only
    // PHP running as root reads every owner's files (php-src mod_files.c: `&& getuid() != 0`; PHP 8.2
    // as root reads a session file of nobody's).
    expect(phpAcceptsOwner(65534, [0])).toBe(true);
    expect(phpAcceptsOwner(65534, [33, 0])).toBe(true);
    expect(phpAcceptsOwner(65534, undefined)).toBe(true);
    expect(NOT_COPIED_SKIPS.has('foreign-owner')).toBe(false); // never a failure: PHP would not serve it
  });
});

describe.skipIf(!isRoot)('files source with the uids PHP runs as', () => {
  it("skips files of other owners as foreign-owner (named, no content), reads root's and the PHP user's", () => {
    const dir = mkdtempSync(join(scratch, 'dir-'));
    file(dir, 'wwwaaaaaaaaaaaaaaaaaaaaaaaa', 33, 'a|i:1;');
    file(dir, 'rootaaaaaaaaaaaaaaaaaaaaaaa', 0, 'a|i:2;');
    const planted = file(dir, 'plantaaaaaaaaaaaaaaaaaaaaaa', 65534);
    const big = file(dir, 'bigaaaaaaaaaaaaaaaaaaaaaaaa', 4242, 'x'.repeat(5000)); // foreign first, not `oversized`
    const items = [...openSource(`files:${dir}`, { phpUids: [33], maxSessionBytes: 1000 }).scan()];
    const by = (i: SourceItem): string => `${i.location.slice(dir.length + 1)} ${i.kind === 'skipped' ? i.reason : 'session'}`;
    expect(items.map(by).sort()).toEqual([
      'sess_bigaaaaaaaaaaaaaaaaaaaaaaaa foreign-owner',
      'sess_plantaaaaaaaaaaaaaaaaaaaaaa foreign-owner',
      'sess_rootaaaaaaaaaaaaaaaaaaaaaaa session',
      'sess_wwwaaaaaaaaaaaaaaaaaaaaaaaa session',
    ]);
    const skipped = items.find((i) => i.location === planted);
    expect(skipped).toEqual({
      kind: 'skipped',
      location: planted,
      reason: 'foreign-owner',
      detail: "owned by uid 65534, which PHP's files handler refuses",
    });
    // readSessionFile itself (apply's and verify's worker path) follows the same rule.
    expect(readSessionFile({ kind: 'candidate', id: 'bigaaaaaaaaaaaaaaaaaaaaaaaa', location: big }, 1000, { phpUids: [33] })).toMatchObject(
      {
        reason: 'foreign-owner',
      },
    );
    // Without a recorded uid (no rule): every owner, as before.
    expect([...openSource(`files:${dir}`).scan()].filter((i) => i.kind === 'session')).toHaveLength(4);
  });

  it('countOwners counts session files per uid', () => {
    const dir = mkdtempSync(join(scratch, 'count-'));
    file(dir, 'aaaaaaaaaaaaaaaaaaaaaaaaaa1', 33);
    file(dir, 'aaaaaaaaaaaaaaaaaaaaaaaaaa2', 33);
    file(dir, 'aaaaaaaaaaaaaaaaaaaaaaaaaa3', 0);
    writeFileSync(join(dir, 'not-a-session'), 'x');
    expect([...openSource(`files:${dir}`).countOwners()].sort()).toEqual([
      [0, 1],
      [33, 2],
    ]);
  });
});

describe('decidePhpUids', () => {
  const owners = (entries: Array<[number, number]>): Map<number, number> => new Map(entries);
  it('infers the owner of most files, root aside, and counts what is taken', () => {
    expect(
      decidePhpUids(
        owners([
          [0, 50],
          [33, 100],
          [65534, 2],
        ]),
        undefined,
        'x',
      ),
    ).toEqual({ uids: [33], inferred: true, taken: 150, refused: 2 });
    expect(
      decidePhpUids(
        owners([
          [33, 8],
          [65534, 2],
        ]),
        undefined,
        'x',
      ).uids,
    ).toEqual([33]); // 4 times as many
    // Every file root's: PHP runs as root, which reads every owner's files (mod_files.c getuid() != 0).
    expect(decidePhpUids(owners([[0, 3]]), undefined, 'x')).toEqual({ uids: [0], inferred: true, taken: 3, refused: 0 });
    expect(decidePhpUids(owners([]), undefined, 'x').uids).toEqual([]); // no file: no user known
  });
  it('refuses owners in similar numbers, unless given', () => {
    const similar = owners([
      [33, 7],
      [34, 2],
    ]);
    expect(() => decidePhpUids(similar, undefined, 'source files:/s')).toThrow(UserFacingError);
    expect(() => decidePhpUids(similar, undefined, 'source files:/s')).toThrow(
      /^source files:\/s: session files belong to several users \(uid 33: 7, uid 34: 2\) .*give --php-user NAME\|UID/,
    );
    expect(decidePhpUids(similar, [34, 34], 'x')).toEqual({ uids: [34], inferred: false, taken: 2, refused: 7 });
  });
  it('refuses users given who own none of the session files while other users own some', () => {
    const www = owners([
      [0, 1],
      [33, 27],
    ]);
    expect(() => decidePhpUids(www, [99999], 'source files:/s')).toThrow(
      /^source files:\/s: --php-user 99999 owns none of the 28 session files \(uid 33: 27\): give the user PHP runs as$/,
    );
    expect(() => decidePhpUids(www, [99999, 4242, 99999], 'x')).toThrow(/^x: --php-user 99999, --php-user 4242 own none of/);
    // One of them owns some, or root (PHP as root reads every owner's): accepted.
    expect(decidePhpUids(www, [99999, 33], 'x')).toEqual({ uids: [33, 99999], inferred: false, taken: 28, refused: 0 });
    expect(decidePhpUids(www, [0], 'x').refused).toBe(0);
    // No file, or root's only: nothing to contradict the user given.
    expect(decidePhpUids(owners([]), [99999], 'x')).toEqual({ uids: [99999], inferred: false, taken: 0, refused: 0 });
    expect(decidePhpUids(owners([[0, 4]]), [99999], 'x')).toEqual({ uids: [99999], inferred: false, taken: 4, refused: 0 });
  });
});

describe('--php-user', () => {
  it('resolves a name through the user database, takes a number as a uid, refuses an unknown name', () => {
    expect(resolvePhpUser('root')).toBe(0);
    expect(resolvePhpUser('nobody')).toBe(65534);
    expect(resolvePhpUser('4242')).toBe(4242);
    expect(() => resolvePhpUser('no-such-user-x')).toThrow(/^--php-user no-such-user-x: no such user/);
    expect(() => resolvePhpUser('')).toThrow(/^--php-user is empty: give the user PHP runs as/);
    expect(() => resolvePhpUser('  ')).toThrow(/^--php-user is empty: give the user PHP runs as/);
    expect(() => resolvePhpUser('99999999999')).toThrow(/not a valid uid/);
    expect(describeUid(0)).toBe('0 (root)');
    expect(describeUid(4242)).toBe('4242');
  });
});

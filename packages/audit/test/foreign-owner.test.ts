/**
 * The message of `session-file-foreign-owner` (rules.ts foreignOwnerMessage): session files PHP's
 * files handler refuses for their owner (php-src ext/session/mod_files.c, ps_files_open), counted by
 * uid, with PHP's user taken as the owner of most files as plan does (packages/sources decidePhpUids).
 * The fixture foreign-owner (fixtures.test.ts) runs it on real files of several owners.
 */
import { describe, expect, it } from 'vitest';
import { OWNER_COUNT_LIMIT, foreignOwnerMessage } from '@session-migrate/audit';

const D = '/var/lib/php/sessions';

describe('foreignOwnerMessage', () => {
  it('says nothing when PHP reads every file: one owner, root aside, or none', () => {
    expect(foreignOwnerMessage(D, new Map(), false)).toBeUndefined();
    expect(foreignOwnerMessage(D, new Map([[33, 50]]), false)).toBeUndefined();
    expect(
      foreignOwnerMessage(
        D,
        new Map([
          [33, 50],
          [0, 3],
        ]),
        false,
      ),
    ).toBeUndefined();
    expect(foreignOwnerMessage(D, new Map([[0, 7]]), false)).toBeUndefined();
  });

  it('names the count and the other owners, the majority owner taken as PHP', () => {
    expect(
      foreignOwnerMessage(
        D,
        new Map([
          [33, 40],
          [0, 1],
          [65534, 2],
          [4242, 1],
        ]),
        false,
      ),
    ).toBe(
      `3 of the 44 session files in ${D} are owned by another user than uid 33 (the owner of most of them, taken as the user PHP runs as) and root: uid 65534: 2, uid 4242: 1; PHP's files handler does not read them, and session-migrate does not migrate them (foreign-owner)`,
    );
  });

  it('owners in similar numbers: says so, as plan does, without picking one', () => {
    expect(
      foreignOwnerMessage(
        D,
        new Map([
          [33, 4],
          [65534, 3],
        ]),
        false,
      ),
    ).toBe(
      `session files in ${D} belong to several users (uid 33: 4, uid 65534: 3; counts of the 7 session files): PHP's files handler reads only those of the user it runs as (and root's), the others are no sessions of it and session-migrate does not migrate them (plan asks for --php-user)`,
    );
  });

  it('counts stopped at OWNER_COUNT_LIMIT say they are of the first files', () => {
    const m = foreignOwnerMessage(
      D,
      new Map([
        [33, OWNER_COUNT_LIMIT - 1],
        [1000, 1],
      ]),
      true,
    );
    expect(m).toMatch(new RegExp(`^1 of the first ${OWNER_COUNT_LIMIT} session files in `));
  });
});

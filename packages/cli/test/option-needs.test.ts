/**
 * checkOptionNeeds: the one "--a needs --b" rule of the CLI (option-needs.ts). It names only the
 * options given, in the order the command lists them, and nothing when the needed option is there.
 */
import { describe, expect, it } from 'vitest';
import { UserFacingError } from '@session-migrate/common';
import { checkOptionNeeds } from '../src/option-needs.ts';

/** The message checkOptionNeeds throws for `args`, or undefined. */
function message(args: Record<string, unknown>, options: string[], needed: string, shown?: string): string | undefined {
  try {
    checkOptionNeeds(args, options, needed, shown);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(UserFacingError);
    expect((err as UserFacingError).exitCode).toBe(2);
    return (err as UserFacingError).message;
  }
}

describe('checkOptionNeeds', () => {
  const opts = ['a-dir', 'b-name', 'c-version', 'd-flag'];
  it('names only the options given: one needs, several need, a list with "and" before the last', () => {
    expect(message({ 'b-name': 'x' }, opts, 'ini')).toBe('--b-name needs --ini');
    expect(message({ 'c-version': '8.3', 'a-dir': '' }, opts, 'ini', '--ini FILE')).toBe('--a-dir and --c-version need --ini FILE');
    expect(message({ 'a-dir': 'd', 'b-name': 'n', 'c-version': '8.3', 'd-flag': true }, opts, 'ini')).toBe(
      '--a-dir, --b-name, --c-version and --d-flag need --ini',
    );
  });
  it('nothing when the needed option is given (even empty), or none of the options is (undefined, or a boolean false)', () => {
    expect(message({ 'b-name': 'x', ini: 'php.ini' }, opts, 'ini')).toBeUndefined();
    expect(message({ 'b-name': 'x', ini: '' }, opts, 'ini')).toBeUndefined();
    expect(message({ 'd-flag': false, 'b-name': undefined }, opts, 'ini')).toBeUndefined();
    expect(message({}, opts, 'ini')).toBeUndefined();
  });
});

/**
 * parseRedisUrl's errors name the part of the URL that is wrong, never its text: a bad %-escape in
 * the password was reported as one "in the user or master name" (adversarial review).
 */
import { describe, expect, it } from 'vitest';
import { parseRedisUrl } from '../src/index.ts';

function errorOf(url: string): string {
  try {
    parseRedisUrl(url);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`${url} was accepted`);
}

describe('parseRedisUrl: a bad %-escape', () => {
  it('in the password is named as in the password, and the password is not printed', () => {
    for (const url of [
      'redis://:Pw%ZZ@127.0.0.1:6379/0',
      'redis://app:Pw%ZZ@127.0.0.1/0',
      'redis+sentinel://app:Pw%ZZ@127.0.0.1:26379/m/0',
    ]) {
      const m = errorOf(url);
      expect(m, url).toBe('target URL: bad %-escape in the password (write a literal % as %25)');
      expect(m).not.toContain('Pw');
    }
  });

  it('in the user name or the master name is named so', () => {
    expect(errorOf('redis://a%ZZ:pw@127.0.0.1/0')).toBe('target URL: bad %-escape in the user name (write a literal % as %25)');
    expect(errorOf('redis+sentinel://a%ZZ@127.0.0.1/m/0')).toBe('target URL: bad %-escape in the user name (write a literal % as %25)');
    expect(errorOf('redis+sentinel://127.0.0.1/m%ZZ/0')).toBe('target URL: bad %-escape in the master name (write a literal % as %25)');
  });
});

import { describe, expect, it } from 'vitest';
import { redactedMessage } from '../src/redis.ts';

describe('redactedMessage', () => {
  it('masks the password where it stands alone, on the first line only', () => {
    expect(redactedMessage('ERR bad password s3cr3t!+x given\nmore', 's3cr3t!+x')).toBe('ERR bad password *** given');
    expect(redactedMessage('ERR "hunter2"', 'hunter2')).toBe('ERR "***"');
  });
  it('does not garble words that merely contain a short password', () => {
    expect(redactedMessage('WRONGPASS invalid username-password pair or user is disabled.', 'b'))
      .toBe('WRONGPASS invalid username-password pair or user is disabled.');
  });
  it('leaves messages alone without a password', () => {
    expect(redactedMessage('ERR x', undefined)).toBe('ERR x');
    expect(redactedMessage('ERR x', '')).toBe('ERR x');
  });
});

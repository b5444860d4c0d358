/** GenerateOptionsError is the one user-error class (UserFacingError): exit code 2, its message as given. */
import { describe, expect, it } from 'vitest';
import { UserFacingError } from '@session-migrate/common';
import { GenerateOptionsError, renderArtifacts } from '../src/index.ts';

describe('GenerateOptionsError', () => {
  it('is a UserFacingError with exit code 2 and the same one-line message', () => {
    let caught: unknown;
    try {
      renderArtifacts({ installDir: 'relative', redis: { host: '127.0.0.1' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GenerateOptionsError);
    expect(caught).toBeInstanceOf(UserFacingError);
    expect((caught as UserFacingError).exitCode).toBe(2);
    expect((caught as Error).name).toBe('GenerateOptionsError');
    expect((caught as Error).message).not.toContain('\n');
  });
});

import { describe, expect, it } from 'vitest';
import { UserFacingError, checkWholeNumber } from '../src/index.ts';

describe('checkWholeNumber', () => {
  it('takes an integer within the range, both ends included', () => {
    expect(checkWholeNumber('retries', 0, 0, 100)).toBe(0);
    expect(checkWholeNumber('retries', 100, 0, 100)).toBe(100);
  });

  it('refuses the rest with one line that names the option, its unit and the range, and says digits only', () => {
    // NaN: what a value written as 1e3, 0x10 or 0b10 on the command line becomes (packages/cli/src/argv.ts notDecimal).
    for (const bad of [Number.NaN, -1, 1.5, 600_001, Number.POSITIVE_INFINITY]) {
      const run = () => checkWholeNumber('master-wait-ms', bad, 0, 600_000, 'milliseconds');
      expect(run, String(bad)).toThrow(UserFacingError);
      expect(run, String(bad)).toThrow(/^--master-wait-ms must be a whole number of milliseconds from 0 to 600000, digits only$/);
    }
    expect(() => checkWholeNumber('workers', 65, 0, 64)).toThrow(/^--workers must be a whole number from 0 to 64, digits only$/);
  });
});

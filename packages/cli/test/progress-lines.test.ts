/**
 * rotate's progress on a stderr that is not a terminal (operator review): a new line every 2 s, even
 * when the counts had not moved (Redis stalled), so a log filled with identical lines.
 * changedProgressLines writes a line only when its text changed and the interval passed.
 */
import { describe, expect, it } from 'vitest';
import { changedProgressLines } from '../src/output.ts';

describe('changedProgressLines', () => {
  it('writes a line only when the interval passed and the counts changed', () => {
    // The start given: read separately, a clock tick between the two made start + 2000 'too soon' (a flake).
    const start = Date.now();
    const shouldWrite = changedProgressLines(2000, start);
    const line = (n: number) => `rotate: ${n} session keys scanned, ${n} re-encrypted, 0 already current, 0 changed by PHP`;
    expect(shouldWrite(line(10), start + 500)).toBe(false); // too soon
    expect(shouldWrite(line(10), start + 2000)).toBe(true);
    // Redis stalls: the same counts, interval after interval.
    expect(shouldWrite(line(10), start + 4000)).toBe(false);
    expect(shouldWrite(line(10), start + 6000)).toBe(false);
    // The counts move again: written at once (the interval since the last line written has passed).
    expect(shouldWrite(line(11), start + 6100)).toBe(true);
    expect(shouldWrite(line(12), start + 6200)).toBe(false); // too soon after that one
    expect(shouldWrite(line(12), start + 8100)).toBe(true);
  });
});

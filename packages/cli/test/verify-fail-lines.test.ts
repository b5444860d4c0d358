/**
 * verify's FAIL lines (failLines, packages/cli/src/commands/verify.ts): the report lists at most
 * maxListed failures (1,000 by default); an operator with 20,000 plaintext keys left saw 1,000 FAIL
 * lines and nothing saying the rest were not listed (fresh-clone review).
 */
import { describe, expect, it } from 'vitest';
import type { VerifyFailure } from '@session-migrate/verify';
import { failLines } from '../src/commands/verify.ts';

const listed = (n: number): VerifyFailure[] =>
  Array.from({ length: n }, (_, i) => ({ key: `PHPREDIS_SESSION:${String(i).padStart(6, '0')}…`, reason: 'plaintext-remains' }));

describe("verify's FAIL lines", () => {
  it('one per listed failure, and nothing more when every failure is listed', () => {
    const lines = failLines({ failures: listed(3), failureCounts: { 'plaintext-remains': 3 } });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('  FAIL        PHPREDIS_SESSION:000000…: plaintext-remains');
  });
  it('says how many more were counted than listed', () => {
    const lines = failLines({ failures: listed(1000), failureCounts: { 'plaintext-remains': 20000 } });
    expect(lines).toHaveLength(1001);
    expect(lines[1000]).toBe("  FAIL        ... and 19000 more, not listed (counted in 'failures')");
  });
  it('files of an unknown owner are counted on their own line, never as more not listed', () => {
    const lines = failLines({ failures: listed(2), failureCounts: { 'plaintext-remains': 2, 'owner-unknown': 50 } });
    expect(lines).toHaveLength(2);
  });
});

/**
 * verify's FAIL lines (failLines, packages/cli/src/commands/verify.ts): the report lists at most
 * maxListed failures (1,000 by default); an operator with 20,000 plaintext keys left saw 1,000 FAIL
 * lines and nothing saying the rest were not listed (fresh-clone review). Plaintext keys left under a
 * Redis source's prefix (expected after apply, until purge) are said on one line.
 */
import { describe, expect, it } from 'vitest';
import type { VerifyFailure } from '@session-migrate/verify';
import { failLines } from '../src/commands/verify.ts';

const listed = (n: number): VerifyFailure[] =>
  Array.from({ length: n }, (_, i) => ({ key: `PHPREDIS_SESSION:${String(i).padStart(6, '0')}…`, reason: 'plaintext-remains' }));

describe("verify's FAIL lines", () => {
  const missing = (n: number): VerifyFailure[] =>
    Array.from({ length: n }, (_, i) => ({ key: `smsess:${String(i).padStart(6, '0')}`, reason: 'missing-in-redis' }));

  it('one per listed failure, and nothing more when every failure is listed', () => {
    const lines = failLines({ failures: missing(3), failureCounts: { 'missing-in-redis': 3 } });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('  FAIL        smsess:000000: missing-in-redis');
  });
  it('says how many more were counted than listed', () => {
    const lines = failLines({ failures: missing(1000), failureCounts: { 'missing-in-redis': 20000 } });
    expect(lines).toHaveLength(1001);
    expect(lines[1000]).toBe("  FAIL        ... and 19000 more, not listed (counted in 'failures')");
  });
  it('files of an unknown owner are counted on their own line, never as more not listed', () => {
    const lines = failLines({ failures: missing(2), failureCounts: { 'missing-in-redis': 2, 'owner-unknown': 50 } });
    expect(lines).toHaveLength(2);
  });
  // A Redis source checked right after apply (the documented order: apply, deploy, verify, purge):
  // its keys are the expected state until purge. Before, 1,000 "FAIL ...: plaintext-remains" lines.
  it('plaintext keys left until purge: one line, with the count, three keys and the next step', () => {
    const lines = failLines({ failures: listed(1000), failureCounts: { 'plaintext-remains': 20000 } });
    expect(lines).toEqual([
      '  FAIL        plaintext-remains: 20000 plaintext session key(s) left (PHPREDIS_SESSION:000000…, PHPREDIS_SESSION:000001…, PHPREDIS_SESSION:000002… and 19997 more): expected after apply, until purge deletes them; every other check passed: run session-migrate purge (it deletes each key proven in Redis), then verify again',
    ]);
    expect(failLines({ failures: listed(2), failureCounts: { 'plaintext-remains': 2 } })[0]).toMatch(
      /^ {2}FAIL {8}plaintext-remains: 2 plaintext session key\(s\) left \(PHPREDIS_SESSION:000000…, PHPREDIS_SESSION:000001…\): expected/,
    );
  });
  it('plaintext keys beside other failures: the others listed one by one, and fixed before purge', () => {
    const failures = [...listed(998), ...missing(2)];
    const lines = failLines({ failures, failureCounts: { 'plaintext-remains': 5000, 'missing-in-redis': 7 } });
    expect(lines).toEqual([
      '  FAIL        plaintext-remains: 5000 plaintext session key(s) left (PHPREDIS_SESSION:000000…, PHPREDIS_SESSION:000001…, PHPREDIS_SESSION:000002… and 4997 more): expected after apply, until purge deletes them; fix the other failures first (purge deletes nothing while a session is not proven in Redis), then run session-migrate purge and verify again',
      '  FAIL        smsess:000000: missing-in-redis',
      '  FAIL        smsess:000001: missing-in-redis',
      "  FAIL        ... and 5 more, not listed (counted in 'failures')",
    ]);
  });
  // After keys ring rotate and rotate, verify given the old key file: before, one line per value.
  it('values under a key ID the key given does not hold: one line with both key IDs and the next step; plaintext waits for it', () => {
    const unknown = (n: number): VerifyFailure[] =>
      Array.from({ length: n }, (_, i) => ({ key: `smsess:{${String(i).padStart(64, '0')}}`, reason: 'unknown-key-id' }));
    const lines = failLines({
      failures: [...unknown(10), ...listed(10), ...missing(1)],
      failureCounts: { 'unknown-key-id': 1500, 'plaintext-remains': 40, 'missing-in-redis': 1 },
      unknownKeyIds: { '1111111111111111': 1499, '2222222222222222': 1 },
      keyRingIds: ['0123456789abcdef'],
    });
    const z = '0'.repeat(63);
    expect(lines).toEqual([
      `  FAIL        unknown-key-id: 1500 value(s) sealed under key ID 1111111111111111 (1499), 2222222222222222 (1), which the key given (key ID 0123456789abcdef) does not hold (smsess:{${z}0}, smsess:{${z}1}, smsess:{${z}2} and 1497 more): if keys ring rotate (then rotate) made that key current, pass the key ring that holds it: --key-ring FILE (it overrides the plan's key)`,
      '  FAIL        plaintext-remains: 40 plaintext session key(s) left (PHPREDIS_SESSION:000000…, PHPREDIS_SESSION:000001…, PHPREDIS_SESSION:000002… and 37 more): expected after apply, until purge deletes them; fix the other failures first (purge deletes nothing while a session is not proven in Redis), then run session-migrate purge and verify again',
      '  FAIL        smsess:000000: missing-in-redis',
    ]);
  });
});

/**
 * apply's `migrated N` figure (migratedNotSeen, packages/cli/src/commands/apply.ts): it counts the
 * writes Redis acknowledged, and says how many of them the read-back did not find or could not read,
 * so an operator does not take them for sessions in Redis. The real fault (writes lost in a Redis
 * restart) is in test/apply-live.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { migratedNotSeen } from '../src/commands/apply.ts';

describe("apply's migrated figure", () => {
  it('says nothing more when every written session was read back', () => {
    expect(migratedNotSeen({ migratedMissing: 0, migratedUnverified: 0 })).toBe('');
  });
  it('names the lost and the unread ones, with the line that explains them', () => {
    expect(migratedNotSeen({ migratedMissing: 1200, migratedUnverified: 0 })).toBe('; 1200 of them not in Redis at the read-back: MISSING');
    expect(migratedNotSeen({ migratedMissing: 0, migratedUnverified: 30 })).toBe('; 30 of them not read back: UNVERIFIED');
    expect(migratedNotSeen({ migratedMissing: 1200, migratedUnverified: 30 })).toBe(
      '; 1200 of them not in Redis at the read-back: MISSING; 30 not read back: UNVERIFIED',
    );
  });
});

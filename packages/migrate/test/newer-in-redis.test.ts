/** The rule apply uses to tell a session the handler took over (newer) from a stale copy in Redis. */
import { describe, expect, it } from 'vitest';
import { NEWER_MARGIN_MS, isNewerInRedis } from '../src/apply.ts';
import { PURGE_NEWER_MARGIN_MS } from '../src/purge.ts';

describe('isNewerInRedis', () => {
  const gc = 1440_000;
  it('a value the handler wrote after the file last changed is newer', () => {
    // File last written 60 s ago: apply gives it gc - 60 s. The handler wrote 5 s ago: gc - 5 s left.
    expect(isNewerInRedis(gc - 5_000, gc - 60_000)).toBe(true);
  });
  it('a copy of an older version of the file is not newer (a host still on files changed it since)', () => {
    // Redis holds a copy made when the file was 60 s old; the file was rewritten 10 s ago.
    expect(isNewerInRedis(gc - 60_000, gc - 10_000)).toBe(false);
  });
  it('needs the margin: writes within the same second are not called newer', () => {
    expect(isNewerInRedis(gc - 10_000 + NEWER_MARGIN_MS - 1, gc - 10_000)).toBe(false);
    expect(isNewerInRedis(gc - 10_000 + NEWER_MARGIN_MS, gc - 10_000)).toBe(true);
  });
  it('a value without TTL is never newer (the handler always sets one)', () => {
    expect(isNewerInRedis(-1, 1000)).toBe(false);
  });
  it('uses the same margin as purge', () => {
    expect(PURGE_NEWER_MARGIN_MS).toBe(NEWER_MARGIN_MS);
  });
});

/**
 * RedisGone (packages/migrate/src/apply.ts): the one "Redis is gone" state apply's write phase, end
 * check and read-back share. The fault tests that exercise it against real servers are
 * test/apply-live.test.ts ("Redis gone for good", restarts) and test/apply-sentinel-no-master.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, RedisGone } from '../src/apply.ts';

describe('RedisGone', () => {
  it('up: retries with the policy, asks, waits the default for a Sentinel master', () => {
    const g = new RedisGone('standalone');
    expect(g.isGone).toBe(false);
    expect(g.askable).toBe(true);
    expect(g.retryPolicy(DEFAULT_RETRY)).toBe(DEFAULT_RETRY);
    expect(g.sentinelWaitMs).toBeUndefined();
  });

  it('after the write phase gave up: no retry, but one more question (Redis may be back)', () => {
    const g = new RedisGone('standalone');
    g.markGone('writes');
    expect(g.writesStopped).toBe(true);
    expect(g.retryPolicy(DEFAULT_RETRY)).toEqual({ ...DEFAULT_RETRY, attempts: 0 });
    expect(g.askable).toBe(true);
    expect(g.sentinelWaitMs).toBeUndefined();
    // The question finds the connection still lost: ask no more.
    g.connectionLost();
    expect(g.askable).toBe(false);
  });

  it('the write phase stopped at a permanent error: it writes no more and nothing retries; the read-back still asks', () => {
    const g = new RedisGone('standalone');
    expect(g.writesStopped).toBe(false);
    g.markGone('stopped');
    expect(g.writesStopped).toBe(true);
    expect(g.retryPolicy(DEFAULT_RETRY).attempts).toBe(0);
    expect(g.askable).toBe(true);
  });

  it('a lost connection in a cluster speaks for one node: the others are still asked', () => {
    const g = new RedisGone('cluster');
    g.connectionLost();
    expect(g.askable).toBe(true);
    expect(g.isGone).toBe(false);
    g.markGone('writes');
    expect(g.askable).toBe(true);
    expect(g.retryPolicy(DEFAULT_RETRY).attempts).toBe(0);
  });

  it('no Sentinel master at the end check: the read-back looks once without waiting; still none: asks no more', () => {
    const g = new RedisGone('sentinel');
    g.markGone('no master');
    expect(g.writesStopped).toBe(false);
    expect(g.sentinelWaitMs).toBe(0);
    expect(g.retryPolicy(DEFAULT_RETRY).attempts).toBe(0);
    g.sentinelMasterLooked(false);
    expect(g.askable).toBe(false);
  });

  it('a Sentinel master back for the read-back: read as usual, with retries (unless the writes gave up too)', () => {
    const back = new RedisGone('sentinel');
    back.markGone('no master');
    back.sentinelMasterLooked(true);
    expect(back.isGone).toBe(false);
    expect(back.askable).toBe(true);
    expect(back.retryPolicy(DEFAULT_RETRY)).toBe(DEFAULT_RETRY);
    const both = new RedisGone('sentinel');
    both.markGone('writes');
    both.markGone('no master');
    both.sentinelMasterLooked(true);
    expect(both.askable).toBe(true);
    expect(both.retryPolicy(DEFAULT_RETRY).attempts).toBe(0);
  });
});

/**
 * connectFailure's "(a TLS-only server? use rediss://)" hint (packages/redis/src/connection.ts): a
 * TLS-only server closes a plaintext connection before any reply, so a closed connection at the
 * first contact may be one; once the server (or the cluster, through its seed) answered this open in
 * plaintext, a connection closed now is a node gone or restarting (a Redis Cluster master killed
 * while a command was still connecting said "Connection is closed. (a TLS-only server? use
 * rediss://)" of a plaintext cluster). The end-to-end check of the hint at the first contact is
 * test/prod-redis-tls.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { connectFailure, credentialsFor, parseRedisUrl, type RedisSpec } from '../src/index.ts';

const HINT = '(a TLS-only server? use rediss://)';

function spec(url: string): RedisSpec {
  const address = parseRedisUrl(url);
  return { address, credentials: credentialsFor(address, 'target', {}), role: 'target' };
}

describe('connectFailure: the TLS hint', () => {
  const closed = new Error('Connection is closed.');
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

  it('at the first contact with a plaintext URL, a closed or reset connection may be a TLS-only server: the hint', () => {
    for (const err of [closed, reset]) expect(connectFailure(spec('redis://127.0.0.1:7000'), err, undefined).message).toContain(HINT);
  });

  it('after the server answered in plaintext (a cluster master gone while connecting): no hint, only the cause', () => {
    const what = 'Redis Cluster master 127.0.0.1:7001 (of redis://127.0.0.1:7000/0)';
    expect(connectFailure(spec('redis://127.0.0.1:7000'), closed, undefined, what, true).message).toBe(
      `cannot connect to ${what}: the connection to Redis is down: it closed`,
    );
    expect(connectFailure(spec('redis://127.0.0.1:7000'), reset, undefined, undefined, true).message).toBe(
      'cannot connect to Redis at redis://127.0.0.1:7000/0: ECONNRESET',
    );
  });

  it('a TLS URL never gets the hint', () => {
    expect(connectFailure(spec('rediss://127.0.0.1:7000'), closed, undefined).message).not.toContain(HINT);
  });
});

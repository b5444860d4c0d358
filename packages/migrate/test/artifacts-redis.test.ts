/**
 * The contract with @session-migrate/generate: artifactsForPlan hands renderArtifacts the plan's
 * target as `redis: { topology, host, port, db, username?, prefix, tls?, seeds?, sentinels?,
 * masterName? }` (redisForArtifacts), TLS as file paths (present means on), never `tls://` glued to
 * the host, never a password.
 */
import { describe, expect, it } from 'vitest';
import { redisForArtifacts, type Plan } from '../src/index.ts';

const base: Plan['target'] = {
  url: 'redis://10.0.0.5:6379/0',
  topology: 'standalone',
  host: '10.0.0.5',
  port: 6379,
  db: 0,
  tls: false,
  auth: true,
  prefix: 'smsess:',
  existingKeysUnderPrefix: 0,
  runId: 'r',
};

describe('redisForArtifacts', () => {
  it('a single node: host, port, db, prefix; no TLS, no seeds', () => {
    expect(redisForArtifacts(base)).toEqual({ topology: 'standalone', host: '10.0.0.5', port: 6379, db: 0, prefix: 'smsess:' });
  });
  it('TLS with files and a user: tls present with absolute paths, host as it is', () => {
    const t = {
      ...base,
      url: 'rediss://10.0.0.5:6379/0',
      tls: true,
      username: 'app',
      tlsFiles: { caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/k.pem', serverName: 'redis.internal' },
    };
    expect(redisForArtifacts(t)).toEqual({
      topology: 'standalone',
      host: '10.0.0.5',
      port: 6379,
      db: 0,
      username: 'app',
      prefix: 'smsess:',
      tls: { caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/k.pem', serverName: 'redis.internal' },
    });
    // TLS with the system CAs (ElastiCache): tls present and empty.
    expect(redisForArtifacts({ ...t, tlsFiles: undefined as never }).tls).toEqual({});
  });
  it('a cluster: seeds are the node given, then the masters plan saw (no duplicates)', () => {
    const t = {
      ...base,
      topology: 'cluster' as const,
      nodes: [
        { host: '10.0.0.5', port: 6379 },
        { host: '10.0.0.6', port: 6379 },
      ],
      nodeIds: ['a', 'b'],
    };
    expect(redisForArtifacts(t).seeds).toEqual([
      { host: '10.0.0.5', port: 6379 },
      { host: '10.0.0.6', port: 6379 },
    ]);
  });
  it('Sentinel: the sentinels and the master name', () => {
    const t = {
      ...base,
      url: 'redis+sentinel://10.0.0.9:26379/sessions/0',
      topology: 'sentinel' as const,
      sentinels: [{ host: '10.0.0.9', port: 26379 }],
      masterName: 'sessions',
    };
    expect(redisForArtifacts(t)).toMatchObject({
      topology: 'sentinel',
      sentinels: [{ host: '10.0.0.9', port: 26379 }],
      masterName: 'sessions',
    });
  });
});

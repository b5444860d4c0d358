/**
 * The topology helpers themselves: each starts, answers, and does what its docstring says (a test
 * suite standing on broken servers proves nothing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import {
  addAclUser,
  makeTlsMaterial,
  migrateSlots,
  parseInfo,
  startCluster,
  startFailedClusterNode,
  startSentinel,
  startTlsRedis,
  type TlsMaterial,
} from './support/redis-topologies.ts';

let tls: TlsMaterial;
beforeAll(() => {
  tls = makeTlsMaterial();
});
afterAll(() => tls.remove());

describe('TLS-only server', () => {
  it('accepts a client that trusts the CA, refuses plain TCP, and with mutual TLS requires a client certificate', async () => {
    const node = await startTlsRedis(tls, { mutual: true });
    try {
      expect(node.url).toMatch(/^rediss:\/\/127\.0\.0\.1:\d+\/0$/);
      expect(await node.admin.ping()).toBe('PONG');
      const noCert = new Redis({
        port: node.port,
        host: '127.0.0.1',
        tls: { ca: readFileSync(tls.caFile) },
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      noCert.on('error', () => undefined);
      await expect(noCert.connect().then(() => noCert.ping())).rejects.toThrow();
      noCert.disconnect();
      const untrusting = new Redis({
        port: node.port,
        host: '127.0.0.1',
        tls: { ca: readFileSync(tls.otherCaFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) },
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      let seen: Error | undefined;
      untrusting.on('error', (e: Error) => {
        seen = e;
      });
      await expect(untrusting.connect()).rejects.toThrow();
      expect(seen?.message).toMatch(/certificate/i);
      untrusting.disconnect();
      await addAclUser(node, { name: 'app', password: 'pw-1', rule: '~sess:* +@all -@dangerous +info' });
      const app = new Redis({
        port: node.port,
        host: '127.0.0.1',
        username: 'app',
        password: 'pw-1',
        tls: { ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) },
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      });
      app.on('error', () => undefined);
      await app.connect();
      expect(await app.set('sess:x', '1')).toBe('OK');
      await expect(app.set('other:x', '1')).rejects.toThrow(/NOPERM/);
      app.disconnect();
    } finally {
      const dir = node.dir;
      await node.stop();
      expect(existsSync(dir)).toBe(false);
    }
  });
});

describe('cluster', () => {
  it('starts 3 masters covering all slots and moves a slot with its keys', async () => {
    const cluster = await startCluster();
    try {
      for (const n of cluster.nodes) expect(parseInfo(String(await n.admin.call('CLUSTER', 'INFO'))).get('cluster_state')).toBe('ok');
      const c = cluster.client();
      await c.set('{a}1', 'x');
      const slot = Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', '{a}1'));
      const from = await cluster.ownerOf(slot);
      const to = cluster.nodes.find((n) => n !== from)!;
      expect(await migrateSlots(cluster, { slots: [slot], to })).toBe(1);
      expect((await cluster.ownerOf(slot)).port).toBe(to.port);
      expect(await to.admin.get('{a}1')).toBe('x');
      expect(await c.get('{a}1')).toBe('x');
      expect(await cluster.dbsize()).toBe(1);
    } finally {
      await cluster.stop();
    }
  });

  it('a lone cluster node reports cluster_state:fail', async () => {
    const node = await startFailedClusterNode();
    try {
      expect(parseInfo(await node.admin.info('cluster')).get('cluster_enabled')).toBe('1');
      expect(parseInfo(String(await node.admin.call('CLUSTER', 'INFO'))).get('cluster_state')).toBe('fail');
    } finally {
      await node.stop();
    }
  });

  it('runs over mutual TLS', async () => {
    const cluster = await startCluster({ tls: { material: tls, mutual: true } });
    try {
      const c = cluster.client();
      await c.set('k', 'v');
      expect(await c.get('k')).toBe('v');
      expect(cluster.url).toMatch(/^rediss:/);
    } finally {
      await cluster.stop();
    }
  });
});

describe('sentinel', () => {
  it('fails over to the replica and the sentinel reports it', async () => {
    const s = await startSentinel({ sentinelPassword: 'sentinel-pw' });
    try {
      expect(s.url).toMatch(/^redis\+sentinel:\/\/127\.0\.0\.1:\d+\/sessions\/0$/);
      const before = await s.currentMaster();
      await before.admin.set('k', 'v');
      expect(await before.admin.call('WAIT', '1', '5000')).toBe(1);
      const after = await s.failover();
      expect(after).not.toBe(before);
      expect(parseInfo(await after.admin.info('replication')).get('role')).toBe('master');
      expect(await after.admin.get('k')).toBe('v');
      expect(parseInfo(await before.admin.info('replication')).get('role')).toBe('slave');
      await s.waitForSync();
      await s.failover();
      expect(await s.currentMaster()).toBe(before);
    } finally {
      await s.stop();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec } from '@session-migrate/envelope';
import { openSource } from '@session-migrate/sources';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { startRedis, type RedisServer } from '../../../test/support/servers.ts';
import { FIXTURES_DIR } from '../../../test/support/fixtures.ts';
import { applySessions, detectDrift, remainingTtlSeconds, type Plan } from '../src/index.ts';

/** Every temporary directory of this file, removed afterwards (they hold session files and keys). */
const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-test-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

const fixtures = FIXTURES_DIR;
const bug25 = JSON.parse(readFileSync(join(fixtures, 'cases/BUG-25/input.json'), 'utf8')) as {
  now: number;
  'session.gc_maxlifetime': number;
  files: Array<{ id: string; mtime: number }>;
  pre_existing_redis_state: Array<{ key: string; value: string[] }>;
};
const bug25Expected = JSON.parse(readFileSync(join(fixtures, 'cases/BUG-25/expected.json'), 'utf8')) as {
  expected_toolkit: { per_file_result: Record<string, { action: string; ttl: number }>; summary: Record<string, number> };
};

let redis: RedisServer;
const codec = await EnvelopeCodec.create([Buffer.alloc(32, 7)]);

function planFor(dir: string, prefix: string, gcMaxlifetime: number): Plan {
  const summary = {
    found: 0,
    live: 0,
    liveBytes: 0,
    expired: 0,
    empty: 0,
    corrupt: 0,
    serializerMismatch: 0,
    formats: {},
    warnings: {},
    skipped: {},
    skippedSample: [],
  };
  return {
    format: 'session-migrate-plan',
    version: 3,
    createdAt: '',
    ttlPolicy: '',
    source: { kind: 'files', savePath: dir, dir, depth: 0, dev: 0, ino: 0 },
    sources: [{ kind: 'files', savePath: dir, dir, depth: 0, dev: 0, ino: 0, summary }],
    target: {
      url: redis.url,
      topology: 'standalone',
      host: '127.0.0.1',
      port: redis.port,
      db: 0,
      tls: false,
      auth: false,
      prefix,
      runId: 'x',
      existingKeysUnderPrefix: 0,
    },
    key: { provider: 'file', file: '/k', keyId: codec.keyId },
    php: { gcMaxlifetime, serializeHandler: 'php' },
    limits: { maxSessionBytes: 1 << 20 },
    summary: {
      found: 0,
      live: 0,
      liveBytes: 0,
      expired: 0,
      empty: 0,
      corrupt: 0,
      serializerMismatch: 0,
      formats: {},
      warnings: {},
      skipped: {},
      skippedSample: [],
    },
    artifacts: { outDir: '/nonexistent', installDir: '/nonexistent', files: [] },
  };
}

let conn: RedisConnection;
beforeAll(async () => {
  redis = await startRedis();
  conn = await RedisConnection.open(specFromUrl(redis.url, {}, 'target'));
});
afterAll(async () => {
  conn.close();
  await redis.stop();
});

describe('TTL rule (test/fixtures/cases/BUG-25)', () => {
  it('ttl = mtime + gc_maxlifetime - now', () => {
    for (const f of bug25.files) {
      const want = bug25Expected.expected_toolkit.per_file_result[f.id]!;
      expect(remainingTtlSeconds(f.mtime, bug25['session.gc_maxlifetime'], bug25.now)).toBe(want.ttl);
    }
  });

  it('migrates the fresh session, skips the expired and edge ones, reports the wrong-type key as a conflict', async () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-apply-'));
    for (const f of bug25.files) {
      writeFileSync(join(dir, `sess_${f.id}`), 'uid|i:42;');
      utimesSync(join(dir, `sess_${f.id}`), f.mtime, f.mtime);
    }
    // The pre-existing list key sits where a migrated session must go.
    const prefix = 'bug25:';
    writeFileSync(join(dir, 'sess_wrongtype000000000000000000001'), 'uid|i:7;');
    utimesSync(join(dir, 'sess_wrongtype000000000000000000001'), bug25.now - 10, bug25.now - 10);
    await redis.client.rpush(codec.keyName(prefix, 'wrongtype000000000000000000001'), 'x');
    const report = await applySessions({
      plan: planFor(dir, prefix, bug25['session.gc_maxlifetime']),
      source: openSource(`files:${dir}`),
      codec,
      target: conn,
      dryRun: false,
      nowSeconds: bug25.now,
    });
    const s = bug25Expected.expected_toolkit.summary;
    expect(report.counts).toMatchObject({ migrated: s.migrated, expired: s.skipped_expired, failed: s.failed, conflicts: s.conflicts });
    expect(report.conflicts.map((c) => c.reason)).toEqual(['key holds another Redis type']);
    const fresh = codec.keyName(prefix, 'fresh00000000000000000000000001');
    // The key's TTL is the remaining lifetime measured against the pinned clock: 1340 s.
    expect(await redis.client.ttl(fresh)).toBe(1340);
    expect(
      await redis.client.exists(
        codec.keyName(prefix, 'expired000000000000000000000001'),
        codec.keyName(prefix, 'edge0000000000000000000000000001'),
      ),
    ).toBe(0);
    expect(await redis.client.type(codec.keyName(prefix, 'wrongtype000000000000000000001'))).toBe('list');
  });
});

describe('applySessions', () => {
  it('stores binary envelopes that open to the file bytes, is idempotent, and never overwrites a newer value', async () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-apply-'));
    const now = Math.floor(Date.now() / 1000);
    const ids = Array.from({ length: 2500 }, (_, i) => `idem${String(i).padStart(22, '0')}`);
    ids.forEach((id, i) =>
      writeFileSync(
        join(dir, `sess_${id}`),
        Buffer.concat([Buffer.from(`n|i:${i};b|s:3:"`), Buffer.from([0xa0, 0xff, 0x00]), Buffer.from('";')]),
      ),
    );
    const prefix = 'idem:';
    const plan = planFor(dir, prefix, 1440);
    const first = await applySessions({ plan, source: openSource(`files:${dir}`), codec, target: conn, dryRun: false, nowSeconds: now });
    expect(first.counts).toMatchObject({ migrated: 2500, alreadyPresent: 0, conflicts: 0, failed: 0 });
    const key = codec.keyName(prefix, ids[7]!);
    const stored = await redis.client.getBuffer(key);
    const opened = codec.open(key, stored!);
    expect(opened.ok && opened.plaintext.equals(readFileSync(join(dir, `sess_${ids[7]}`)))).toBe(true);

    const second = await applySessions({ plan, source: openSource(`files:${dir}`), codec, target: conn, dryRun: false, nowSeconds: now });
    expect(second.counts).toMatchObject({ migrated: 0, alreadyPresent: 2500, conflicts: 0, failed: 0 });
    expect((await redis.client.getBuffer(key))!.equals(stored!)).toBe(true);

    // A different session whose TTL shows it was written before the file last changed (100 s left of
    // 1440, file fresh): a stale copy, reported as a conflict and left alone.
    const stale = codec.seal(key, Buffer.from('n|i:999;'));
    await redis.client.set(key, stale, 'EX', 100);
    // PHP wrote a newer session through the handler (full gc_maxlifetime left; file 60 s old): newer.
    const key8 = codec.keyName(prefix, ids[8]!);
    const minuteAgo = now - 60;
    utimesSync(join(dir, `sess_${ids[8]}`), minuteAgo, minuteAgo);
    const newer = codec.seal(key8, Buffer.from('n|i:1000;'));
    await redis.client.set(key8, newer, 'EX', 1440);
    const third = await applySessions({ plan, source: openSource(`files:${dir}`), codec, target: conn, dryRun: false, nowSeconds: now });
    expect(third.counts).toMatchObject({ migrated: 0, alreadyPresent: 2498, newerInRedis: 1, conflicts: 1 });
    expect(third.conflicts).toHaveLength(1);
    expect(third.conflicts[0]).toMatchObject({
      key,
      reason: expect.stringMatching(/^key holds a different session that is not newer than the source/),
    });
    expect(third.conflicts[0]!.file).toMatch(/sess_idem00…$/);
    expect((await redis.client.getBuffer(key))!.equals(stale)).toBe(true);
    expect((await redis.client.getBuffer(key8))!.equals(newer)).toBe(true);
  });

  it('gives the same result with worker threads reading and sealing', async () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-apply-'));
    for (let i = 0; i < 3100; i++) writeFileSync(join(dir, `sess_work${String(i).padStart(22, '0')}`), i % 1000 === 0 ? '' : `n|i:${i};`);
    writeFileSync(join(dir, 'sess_workcorrupt00000000000000001'), 'n|i:1');
    const plan = planFor(dir, 'work:', 1440);
    const opts = { plan, codec, target: conn, dryRun: false, workers: 2, masterKeys: [Buffer.alloc(32, 7)] };
    const first = await applySessions({ ...opts, source: openSource(`files:${dir}`) });
    expect(first.counts).toMatchObject({ migrated: 3096, empty: 4, corrupt: 1, alreadyPresent: 0, failed: 0 });
    const key = codec.keyName('work:', `work${String(1234).padStart(22, '0')}`);
    const opened = codec.open(key, (await redis.client.getBuffer(key))!);
    expect(opened.ok && opened.plaintext.toString()).toBe('n|i:1234;');
    const second = await applySessions({ ...opts, source: openSource(`files:${dir}`) });
    expect(second.counts).toMatchObject({ migrated: 0, alreadyPresent: 3096 });
  });

  it('dry run writes nothing', async () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-apply-'));
    writeFileSync(join(dir, 'sess_dryrun0000000000000000000001'), 'a|i:1;');
    const report = await applySessions({
      plan: planFor(dir, 'dry:', 1440),
      source: openSource(`files:${dir}`),
      codec,
      target: undefined,
      dryRun: true,
    });
    expect(report.counts.migrated).toBe(1);
    expect(await redis.client.keys('dry:*')).toEqual([]);
  });

  it('does not migrate empty or corrupt sessions (test/fixtures/cases/BUG-01, BUG-07)', async () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-apply-'));
    writeFileSync(join(dir, 'sess_empty00000000000000000000001'), '');
    writeFileSync(join(dir, 'sess_crafted0000000000000000000001'), readFileSync(join(fixtures, 'cases/BUG-01/sess_crafted_pipe_key')));
    writeFileSync(join(dir, 'sess_truncated00000000000000000001'), readFileSync(join(fixtures, 'cases/BUG-07/sess_truncated')));
    const report = await applySessions({
      plan: planFor(dir, 'odd:', 1440),
      source: openSource(`files:${dir}`),
      codec,
      target: conn,
      dryRun: false,
    });
    expect(report.counts).toMatchObject({ migrated: 0, empty: 1, corrupt: 2 });
    expect(await redis.client.keys('odd:*')).toEqual([]);
  });
});

describe('detectDrift', () => {
  it('names each kind of drift', () => {
    const plan = { ...planFor('/d', 'p:', 1440), source: { kind: 'files' as const, savePath: '/d', dir: '/d', depth: 0, dev: 1, ino: 2 } };
    const same = { topology: 'standalone' as const, runId: 'x' };
    expect(detectDrift(plan, { keyId: codec.keyId, sourceIdentity: { dev: 1, ino: 2 }, target: same })).toEqual([]);
    expect(
      detectDrift(plan, { keyId: 'ffff', sourceIdentity: { dev: 1, ino: 3 }, target: { topology: 'standalone', runId: 'y' } }).map(
        (d) => d.what,
      ),
    ).toEqual(['key', 'source', 'target']);
    expect(detectDrift(plan, { keyId: codec.keyId, sourceIdentity: undefined, target: same })[0]?.message).toMatch(/no longer exists/);
    expect(
      detectDrift(plan, { keyId: codec.keyId, sourceIdentity: { dev: 1, ino: 2 }, target: { topology: 'cluster', nodeIds: ['a'] } })[0]
        ?.message,
    ).toMatch(/is now a Redis Cluster, the plan was made for a standalone server/);
  });

  it('keeps a cluster plan across a resharding or failover (a node ID in common) and a Sentinel plan across a failover', () => {
    const base = { ...planFor('/d', 'p:', 1440), source: { kind: 'files' as const, savePath: '/d', dir: '/d', depth: 0, dev: 1, ino: 2 } };
    const cluster = { ...base, target: { ...base.target, topology: 'cluster' as const, nodeIds: ['n1', 'n2', 'n3'], nodes: [] } };
    const now = { keyId: codec.keyId, sourceIdentity: { dev: 1, ino: 2 } };
    expect(detectDrift(cluster, { ...now, target: { topology: 'cluster', nodeIds: ['n3', 'n4'] } })).toEqual([]);
    expect(detectDrift(cluster, { ...now, target: { topology: 'cluster', nodeIds: ['m1'] } })[0]?.message).toMatch(/shares no node/);
    const sentinel = {
      ...base,
      target: { ...base.target, topology: 'sentinel' as const, runId: 'old-master', sentinels: [], masterName: 'm' },
    };
    expect(detectDrift(sentinel, { ...now, target: { topology: 'sentinel', runId: 'new-master' } })).toEqual([]);
  });
});

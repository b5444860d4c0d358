/**
 * verify --plan's presence check of a files source (packages/verify verifyFilesPresence): sessions
 * named from their IDs and their presence read in batches (multi-key EXISTS, then key and tombstone
 * for a short count), then only the files of those not in Redis read with the stable-read rule and
 * classified, in apply's worker pool or on the main thread, several batches in flight, while the
 * database is scanned. The counts and failures must be exact, the same with and without
 * workers, and the source's failures come after the scan's, within maxListed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { tombstoneKeyFor } from '@session-migrate/envelope';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { openFilesSource } from '@session-migrate/sources';
import { verifyTarget, type VerifyReport } from '@session-migrate/verify';
import { startNode, type RedisNode } from './support/redis-topologies.ts';
import { newKey, sid, writeSessionFiles } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
/** More than two batches of 1,000 files, so that several are in flight. */
const N = 2600;

let root: string;
let dir: string;
let codec: EnvelopeCodec;
let node: RedisNode;
let conn: RedisConnection;
const expected = { live: 0, present: 0, destroyed: 0, missing: [] as string[], expired: 0, empty: 0, corrupt: 0 };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-verify-presence-'));
  ({ codec } = await newKey(root));
  node = await startNode();
  conn = await RedisConnection.open(specFromUrl(node.url, {}, 'target'));
  dir = join(root, 'sessions');
  const ids = writeSessionFiles(dir, 'pres', N);
  const pipe = node.admin.pipeline();
  ids.forEach((id, i) => {
    const path = join(dir, `sess_${id}`);
    // A session in Redis is present whatever its file holds now (an expired or corrupt file here):
    // its file is not read.
    if (i % 20 === 3 || i % 20 === 7) {
      if (i % 20 === 3) {
        const old = Date.now() / 1000 - 2 * 86400;
        utimesSync(path, old, old);
      } else writeFileSync(path, 'not a session');
      const key = codec.keyName(PREFIX, id);
      pipe.set(key, codec.seal(key, Buffer.from('user|s:1:"x";')), 'PX', 600_000);
      expected.live++;
      expected.present++;
      return;
    }
    if (i % 10 === 3) {
      const old = Date.now() / 1000 - 2 * 86400;
      utimesSync(path, old, old);
      expected.expired++;
      return;
    }
    if (i % 10 === 5 || i % 10 === 7) {
      const t = Date.now() / 1000 - 60;
      writeFileSync(path, i % 10 === 5 ? '' : 'not a session');
      utimesSync(path, t, t);
      if (i % 10 === 5) expected.empty++;
      else expected.corrupt++;
      return;
    }
    expected.live++;
    const key = codec.keyName(PREFIX, id);
    if (i % 50 === 1) expected.missing.push(key);
    else if (i % 50 === 11) {
      pipe.set(tombstoneKeyFor(PREFIX, key), '1', 'PX', 600_000);
      expected.destroyed++;
    } else {
      pipe.set(key, codec.seal(key, Buffer.from(`user|s:${String(i).length}:"${i}";cart|a:0:{}`)), 'PX', 600_000);
      expected.present++;
    }
  });
  await pipe.exec();
  // A symbolic link named like a session: skipped by the walk, not a failure (as before).
  symlinkSync(join(dir, `sess_${sid('pres', 0)}`), join(dir, `sess_${sid('link', 0)}`));
}, 120_000);

afterAll(async () => {
  conn?.close();
  await node?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function verify(workers: number, maxListed?: number): Promise<VerifyReport> {
  const source = openFilesSource(dir);
  return verifyTarget({
    client: conn,
    codec,
    prefix: PREFIX,
    sources: [{ source, check: 'presence' }],
    gcMaxlifetime: 1440,
    serializeHandler: 'php',
    workers,
    ...(maxListed !== undefined ? { maxListed } : {}),
  });
}

describe('verify --plan: presence of a files source', () => {
  it('counts every file exactly, on worker threads and on the main thread alike', async () => {
    const inline = await verify(0);
    expect(inline.presence).toEqual({
      checked: expected.live,
      present: expected.present,
      destroyed: expected.destroyed,
      missing: expected.missing.length,
      expired: expected.expired,
      empty: expected.empty,
      corrupt: expected.corrupt,
    });
    expect(inline.ok).toBe(false);
    expect(inline.failureCounts).toEqual({ 'missing-in-redis': expected.missing.length });
    expect(new Set(inline.failures.map((f) => f.key))).toEqual(new Set(expected.missing));
    for (const f of inline.failures) {
      expect(f.reason).toBe('missing-in-redis');
      expect(f.file).toMatch(/sess_pres/);
    }
    const pooled = await verify(2);
    // The same report, failures in the same order (the files' order).
    expect(pooled).toEqual(inline);
  }, 120_000);

  it("reports the scan's failures first, then the source's, within maxListed (counts complete)", async () => {
    // A plaintext value under the prefix: a failure of the scan.
    await node.admin.set(`${PREFIX}{${'0'.repeat(64)}}`, 'user|s:1:"x";', 'PX', 600_000);
    try {
      for (const workers of [0, 1]) {
        const report = await verify(workers, 10);
        expect(report.failures).toHaveLength(10);
        expect(report.failures[0]!.reason).not.toBe('missing-in-redis');
        expect(report.failures.slice(1).every((f) => f.reason === 'missing-in-redis')).toBe(true);
        expect(report.failureCounts['missing-in-redis']).toBe(expected.missing.length);
        expect(Object.values(report.failureCounts).reduce((a, b) => a + b, 0)).toBe(expected.missing.length + 1);
      }
    } finally {
      await node.admin.del(`${PREFIX}{${'0'.repeat(64)}}`);
    }
  }, 120_000);
});

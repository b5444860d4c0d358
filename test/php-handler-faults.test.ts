/**
 * The generated handler under production faults found by the adversarial review of the handler in
 * cluster, Sentinel and TLS topologies (real redis-server processes, real PHP with phpredis):
 *
 * - Redis Cluster resharding: while a slot is MIGRATING/IMPORTING, a script whose keys are split
 *   between the two nodes or partly missing gets TRYAGAIN (Redis cluster.c getNodeByQuery: a multi-key
 *   command on an importing slot whose keys are not all there). Every script of the handler names the
 *   session, its lock and its tombstone (usually missing), so every session in that slot got TRYAGAIN
 *   until the slot finished moving; phpredis's native handler (single-key commands) follows ASK and
 *   keeps working. The handler now waits and retries TRYAGAIN (the command was not run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec } from '@session-migrate/envelope';
import type { RedisTargetOptions } from '@session-migrate/generate';
import { startCluster } from './support/redis-topologies.ts';
import { renderInto, sessionRequest, vectors, type Rendered } from './php/harness.ts';

const MASTER = vectors.master_key_base64;
const PREFIX = 'smsess:';

interface Out {
  started: boolean;
  idBefore: string;
  idAfter: string;
  session: Record<string, unknown> | unknown[] | null;
  closed: boolean | null;
  destroyed: boolean | null;
}

let sandbox: string;
let codec: EnvelopeCodec;
const rendered: Rendered[] = [];

function render(redis: RedisTargetOptions): Rendered {
  const r = renderInto({ redis });
  rendered.push(r);
  return r;
}

function request(r: Rendered, args: string[], env: Record<string, string> = {}) {
  return sessionRequest<Out>(r, args, { dir: sandbox, env: { SESSION_MIGRATE_KEY: MASTER, ...env } });
}

beforeAll(async () => {
  sandbox = mkdtempSync(join(tmpdir(), 'sm-faults-'));
  codec = await EnvelopeCodec.create([Buffer.from(MASTER, 'base64')]);
});
afterAll(() => {
  for (const r of rendered) rmSync(r.dir, { recursive: true, force: true });
  if (sandbox) rmSync(sandbox, { recursive: true, force: true });
});

describe('Redis Cluster resharding while sessions are used', () => {
  it('a session in a slot that is being moved (MIGRATING/IMPORTING, keys split): the start waits for it and the write lands', async () => {
    const cluster = await startCluster();
    try {
      const r = render({
        topology: 'cluster',
        host: '127.0.0.1',
        port: cluster.nodes[0]!.port,
        seeds: cluster.nodes.map((x) => ({ host: '127.0.0.1', port: x.port })),
      });
      const first = request(r, ['--set={"n":1}']);
      expect(first.out.started, first.logs.join('\n')).toBe(true);
      const id = first.out.idAfter;
      const key = codec.keyName(PREFIX, id);
      const slot = Number(await cluster.nodes[0]!.admin.call('CLUSTER', 'KEYSLOT', key));
      const src = await cluster.ownerOf(slot);
      const dst = cluster.nodes.find((x) => x !== src)!;
      const srcId = cluster.ids.get(src.port)!;
      const dstId = cluster.ids.get(dst.port)!;
      await dst.admin.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', srcId);
      await src.admin.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', dstId);

      // A slot left half-moved (the session on the source, its lock and tombstone nowhere: ASK, then
      // TRYAGAIN) fails the start after the retries, with one line naming the key and the cause.
      const stuck = request(r, [`--id=${id}`]);
      expect(stuck.out.started).toBe(false);
      expect(stuck.logs, stuck.logs.join('\n')).toHaveLength(1);
      expect(stuck.logs[0]).toContain(`Redis LOCK+GET of ${key} failed: TRYAGAIN`);
      expect(stuck.logs[0]).toMatch(/still after 16 retries over 1600 ms: a slot migration that does not finish/);

      // The same, but the slot finishes moving while the request waits.
      // The slot finishes moving 400 ms later (redis-cli, so it runs while PHP blocks this process).
      const finish = [
        `sleep 0.4`,
        `redis-cli -p ${src.port} MIGRATE 127.0.0.1 ${dst.port} "" 0 5000 KEYS ${key} >/dev/null`,
        ...[dst, src, ...cluster.nodes.filter((n) => n !== src && n !== dst)].map(
          (n) => `redis-cli -p ${n.port} CLUSTER SETSLOT ${slot} NODE ${dstId} >/dev/null`,
        ),
      ].join(' && ');
      const bg = spawn('sh', ['-c', finish], { stdio: 'ignore' });
      const during = request(r, [`--id=${id}`, '--set={"n":2}']);
      await new Promise((res) => bg.once('exit', res));
      expect(during.out, during.logs.join('\n')).toMatchObject({ started: true, idAfter: id, session: { n: 1 }, closed: true });
      expect(during.logs).toEqual([]);
      const after = request(r, [`--id=${id}`]);
      expect(after.out, after.logs.join('\n')).toMatchObject({ started: true, session: { n: 2 } });
      expect(await dst.admin.exists(key)).toBe(1);
    } finally {
      await cluster.stop();
    }
  });
});

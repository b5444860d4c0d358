/**
 * verify's scan reads the values under the prefix with one MGET per batch; an ACL user without MGET
 * (a rule written as documented before MGET was added) gets NOPERM, and the scan goes on with GET
 * (packages/verify/src/scan.ts spreadMget): MGET is switched off at the first refusal for the rest of
 * the scan, and verify runs one scan, so a run writes at most one ACL LOG entry
 * (https://redis.io/commands/acl-log/). Learning the permission without a refused command is not
 * possible for such a user: ACL DRYRUN (Redis 7) and ACL GETUSER are @admin commands it may not run
 * either (each would be a refusal of its own).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyFile, type KeyProvider } from '@session-migrate/envelope';
import { verifyMigration } from '@session-migrate/verify';
import { startRedis, type RedisServer } from './support/servers.ts';

const PREFIX = 'smsess:';
let root: string;
let key: KeyProvider;
let redis: RedisServer;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-mget-acl-'));
  const keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
  key = { kind: 'file', path: keyFile };
  redis = await startRedis();
  // 3,000 values under the prefix: three SCAN batches of 1,000, each of which would try MGET.
  const pipe = redis.client.pipeline();
  for (let i = 0; i < 3000; i++) pipe.set(`${PREFIX}${randomBytes(32).toString('hex')}`, 'x', 'EX', 600);
  await pipe.exec();
  await redis.client.call('ACL', 'SETUSER', 'nomget', 'on', '>nomget-pass', '~*', '+@all', '-mget');
});

afterAll(async () => {
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('verify with an ACL user without MGET', () => {
  it('reads every value with GET instead, and writes one ACL LOG entry per run (MGET refused once)', async () => {
    for (let run = 0; run < 2; run++) {
      await redis.client.call('ACL', 'LOG', 'RESET');
      const v = await verifyMigration({
        target: `redis://nomget:nomget-pass@127.0.0.1:${redis.port}`,
        key,
        prefix: PREFIX,
        onWarning: () => {},
      });
      expect(v.report.keysScanned).toBe(3000);
      const log = (await redis.client.call('ACL', 'LOG')) as unknown[][];
      const entries = log.map((e) => {
        const m = new Map<string, unknown>();
        for (let i = 0; i + 1 < e.length; i += 2) m.set(String(e[i]), e[i + 1]);
        return { object: String(m.get('object')), count: Number(m.get('count')), username: String(m.get('username')) };
      });
      expect(entries).toEqual([{ object: 'mget', count: 1, username: 'nomget' }]);
    }
  });
});

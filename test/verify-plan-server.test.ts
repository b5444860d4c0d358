/**
 * verify --plan against a single node that is not the server the plan was made against (another
 * run ID: restarted, or replaced by one holding a copy of the data): verify checks what this server
 * holds and says, in a note on stderr, that it is not the planned server; apply refuses such a plan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from './support/servers.ts';
import { cli, newKey, writeSessionFiles } from './support/migrate-cli.ts';

let root: string;
let redis: RedisServer | undefined;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sm-verify-plan-server-'));
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('verify --plan on a server the plan was not made against', () => {
  it('notes it on stderr and checks what that server holds; on the planned server there is no note', async () => {
    const { keyFile } = await newKey(root);
    const dir = join(root, 'sessions');
    writeSessionFiles(dir, 'vps', 30);
    redis = await startRedis();
    const planFile = join(root, 'plan.json');
    const args = ['--source', `files:${dir}`, '--target', redis.url, '--key-file', keyFile, '--out', planFile];
    expect(cli(['plan', ...args, '--artifacts-dir', join(root, 'art')]).status).toBe(0);
    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    const same = cli(['verify', '--plan', planFile]);
    expect(same.status, same.stderr + same.stdout).toBe(0);
    expect(same.stderr).not.toMatch(/not the server the plan was made against/);

    // The same data on a new server on the same port: every key with its value and TTL.
    const keys = await redis.client.keys('*');
    const dumps = await Promise.all(keys.map(async (k) => [k, await redis!.client.dumpBuffer(k), await redis!.client.pttl(k)] as const));
    const port = redis.port;
    await redis.stop();
    redis = await startRedis([], port);
    for (const [k, dump, pttl] of dumps) await redis.client.restore(k, pttl > 0 ? pttl : 0, dump);

    const other = cli(['verify', '--plan', planFile]);
    expect(other.status, other.stderr + other.stdout).toBe(0);
    expect(other.stderr).toMatch(
      new RegExp(
        `^session-migrate: note: redis://127\\.0\\.0\\.1:${port}/0 is not the server the plan was made against \\(its run ID differs: restarted or replaced\\); verify checks what this server holds$`,
        'm',
      ),
    );
    // apply refuses the same plan there, nothing written.
    const a = cli(['apply', '--plan', planFile]);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/is not the server the plan was made against/);
  }, 60_000);
});

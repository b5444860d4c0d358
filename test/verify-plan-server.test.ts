/**
 * verify --plan against a single node that is not the server the plan was made against (another
 * run ID: restarted, or replaced by one holding a copy of the data): verify checks what this server
 * holds and says, in a note on stderr, that it is not the planned server; apply refuses such a plan.
 * Also when --target replaces the plan's URL (the override note names the URLs, the run-ID note says
 * whether it is the same server), and with --json the notes are in the document's `notes` too.
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
    // --target with another address of the planned server: the override note only (same run ID).
    const sameViaLocalhost = cli(['verify', '--plan', planFile, '--target', `redis://localhost:${redis.port}/0`, '--json']);
    expect(sameViaLocalhost.status, sameViaLocalhost.stderr + sameViaLocalhost.stdout).toBe(0);
    expect(sameViaLocalhost.stderr).toMatch(/note: verify overrides the plan: --target/);
    expect(sameViaLocalhost.stderr).not.toMatch(/not the server the plan was made against/);
    expect((JSON.parse(sameViaLocalhost.stdout) as { notes: string[] }).notes).toEqual([
      `note: verify overrides the plan: --target (plan: ${redis.url})`,
    ]);
    expect((JSON.parse(cli(['verify', '--plan', planFile, '--json']).stdout) as { notes: string[] }).notes).toEqual([]);

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
    // With --json the notes are in the document too (stderr unchanged).
    const otherJson = cli(['verify', '--plan', planFile, '--json']);
    expect(otherJson.status, otherJson.stderr + otherJson.stdout).toBe(0);
    expect(otherJson.stderr).toMatch(/session-migrate: note: .* is not the server the plan was made against/);
    expect((JSON.parse(otherJson.stdout) as { notes: string[] }).notes).toEqual([
      `note: redis://127.0.0.1:${port}/0 is not the server the plan was made against (its run ID differs: restarted or replaced); verify checks what this server holds`,
    ]);
    // --target replacing the plan's URL with another address of this new server: the override note
    // names the URLs, the run-ID note says it is not the planned server; each once.
    const viaLocalhost = `redis://localhost:${port}/0`;
    const over = cli(['verify', '--plan', planFile, '--target', viaLocalhost]);
    expect(over.status, over.stderr + over.stdout).toBe(0);
    expect(over.stderr.match(/^session-migrate: note: .*$/gm)).toEqual([
      `session-migrate: note: verify overrides the plan: --target (plan: redis://127.0.0.1:${port}/0)`,
      `session-migrate: note: ${viaLocalhost} is not the server the plan was made against (its run ID differs: restarted or replaced); verify checks what this server holds`,
    ]);
    const overJson = cli(['verify', '--plan', planFile, '--target', viaLocalhost, '--json']);
    expect(overJson.status, overJson.stderr + overJson.stdout).toBe(0);
    expect((JSON.parse(overJson.stdout) as { notes: string[] }).notes).toEqual([
      `note: verify overrides the plan: --target (plan: redis://127.0.0.1:${port}/0)`,
      `note: ${viaLocalhost} is not the server the plan was made against (its run ID differs: restarted or replaced); verify checks what this server holds`,
    ]);

    // apply refuses the same plan there, nothing written.
    const a = cli(['apply', '--plan', planFile]);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/is not the server the plan was made against/);
  }, 60_000);
});

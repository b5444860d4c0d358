/**
 * `session-migrate generate php` through the CLI binary: writes only the plan's artifacts, in the plan's
 * mode or the one asked for, and refuses contradictory or impossible modes with one line, exit 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from './support/servers.ts';

const BIN = join(import.meta.dirname, '../packages/cli/bin/session-migrate.js');
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

let redis: RedisServer;
let root: string;
beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-generate-cli-'));
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('generate', () => {
  it('writes the artifacts in the plan\'s mode, switches with --strict, refuses both modes at once', () => {
    const sessions = join(root, 'sessions');
    mkdirSync(join(sessions, 'a'), { recursive: true });
    const keyFile = join(root, 'k');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    const plan = join(root, 'plan.json');
    const artifacts = join(root, 'artifacts');
    const planned = cli(['plan', '--source', `files:1;${sessions}`, '--target', redis.url, '--key-file', keyFile, '--out', plan, '--artifacts-dir', artifacts, '--read-through']);
    expect(planned.status, planned.stderr).toBe(0);
    const bootstrap = () => readFileSync(join(artifacts, 'session-migrate-bootstrap.php'), 'utf8');

    const rt = cli(['generate', 'php', '--plan', plan, '--json']);
    expect(rt.status, rt.stderr).toBe(0);
    expect(JSON.parse(rt.stdout)).toMatchObject({ mode: 'read-through', dryRun: false });
    expect(bootstrap()).toContain(`'readThrough' => ['dir' => '${sessions}', 'depth' => 1],`);
    expect(JSON.parse(cli(['generate', 'php', '--plan', plan, '--json']).stdout).artifacts.every((a: { status: string }) => a.status === 'unchanged')).toBe(true);

    const dry = cli(['generate', 'php', '--plan', plan, '--strict', '--dry-run']);
    expect(dry.status).toBe(0);
    expect(bootstrap()).toContain("'readThrough' => ['dir'"); // a dry run writes nothing
    expect(cli(['generate', 'php', '--plan', plan, '--strict']).status).toBe(0);
    expect(bootstrap()).toContain("'readThrough' => null,");

    const both = cli(['generate', 'php', '--plan', plan, '--strict', '--read-through']);
    expect(both.status).toBe(2);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
  });
});

/**
 * A password the server does not use is refused like a wrong one (adversarial review): against a
 * redis-server with no requirepass, `SESSION_MIGRATE_REDIS_PASSWORD=xyz session-migrate plan` exited
 * 0 with "with AUTH" in the plan (ioredis only warns on "AUTH <password> called without any password
 * configured for the default user"), and the PHP handler, given the same variable, then failed every
 * session_start(). Every command that connects refuses it in one line, exit 2, naming the variable
 * and never the password: the target, a Redis source, the sentinels and the master behind them.
 * A named ACL user with `nopass` given a password is accepted, as Redis and phpredis accept it
 * (AUTH user password).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, newKey, planArgs, usageLine, writeSessionFiles } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';
import { startSentinel, type SentinelTopology } from './support/redis-topologies.ts';

const PASSWORD = 'Unused9pw';
const NO_PASSWORD = /requires no password, but (SESSION_MIGRATE_\w+_PASSWORD is set|the URL gives a password): AUTH with it is refused/;

let redis: RedisServer;
let root: string;
let keyFile: string;
let dir: string;
const plan = (target: string, ...extra: string[]) =>
  planArgs({ dir, target, keyFile, planFile: join(root, 'plan.json'), artifactsDir: join(root, 'art') }, ...extra);

/** Exit 2, one line matching `pattern`, no ioredis [WARN] line, the password nowhere. */
function refused(r: { status: number; stdout: string; stderr: string }, pattern: RegExp): void {
  const line = usageLine(r);
  expect(line).toMatch(pattern);
  expect(r.stderr + r.stdout).not.toContain(PASSWORD);
  expect(r.stderr).not.toMatch(/\[WARN\]/);
}

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-unneeded-pw-'));
  ({ keyFile } = await newKey(root));
  dir = join(root, 'sessions');
  writeSessionFiles(dir, 'np', 3);
  await redis.client.call('ACL', 'SETUSER', 'nopassuser', 'on', 'nopass', '~*', '+@all');
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a password given to a Redis that requires none', () => {
  it('plan and verify refuse SESSION_MIGRATE_REDIS_PASSWORD (and a URL password) in one line naming it, exit 2', () => {
    const env = { SESSION_MIGRATE_REDIS_PASSWORD: PASSWORD };
    const r = cli(plan(redis.url), env);
    refused(r, /^session-migrate: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 requires no password, but SESSION_MIGRATE_REDIS_PASSWORD is set/);
    refused(
      cli(plan(redis.url.replace('redis://', `redis://:${PASSWORD}@`))),
      /requires no password, but the URL gives a password: .*; remove it from the URL, or name the ACL user in the URL$/,
    );
    refused(cli(['verify', '--target', redis.url, '--key-file', keyFile], env), NO_PASSWORD);
    // Without the variable the same plan works.
    const ok = cli(plan(redis.url));
    expect(ok.status, ok.stderr).toBe(0);
    expect(cli(['verify', '--plan', join(root, 'plan.json')], env).stderr).toMatch(NO_PASSWORD);
  });

  it('a named ACL user with nopass given a password is accepted (Redis and phpredis accept AUTH user password), and so is user default', () => {
    const env = { SESSION_MIGRATE_REDIS_PASSWORD: PASSWORD };
    for (const user of ['nopassuser', 'default']) {
      const r = cli(plan(redis.url.replace('redis://', `redis://${user}@`)), env);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/\[WARN\]/);
    }
  });

  it('a Redis source: SESSION_MIGRATE_SOURCE_REDIS_PASSWORD is refused the same way', () => {
    const r = cli(
      [
        'plan',
        '--source',
        `redis:redis://127.0.0.1:${redis.port}/3`,
        '--target',
        redis.url,
        '--key-file',
        keyFile,
        '--prefix',
        'enc:',
        '--out',
        join(root, 'p2.json'),
      ],
      { SESSION_MIGRATE_SOURCE_REDIS_PASSWORD: PASSWORD },
    );
    refused(
      r,
      /^session-migrate: the source Redis at redis:\/\/127\.0\.0\.1:\d+\/3 requires no password, but SESSION_MIGRATE_SOURCE_REDIS_PASSWORD is set/,
    );
  });
});

describe('Sentinel: a password the sentinels or the master do not use', () => {
  let s: SentinelTopology;
  beforeAll(async () => {
    s = await startSentinel();
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('SESSION_MIGRATE_SENTINEL_PASSWORD and SESSION_MIGRATE_REDIS_PASSWORD are each refused in one line naming the variable', () => {
    refused(
      cli(plan(s.url), { SESSION_MIGRATE_SENTINEL_PASSWORD: PASSWORD }),
      /^session-migrate: the sentinel 127\.0\.0\.1:\d+ of redis\+sentinel:\/\/\S+ requires no password, but SESSION_MIGRATE_SENTINEL_PASSWORD is set/,
    );
    refused(
      cli(plan(s.url), { SESSION_MIGRATE_REDIS_PASSWORD: PASSWORD }),
      /^session-migrate: the master 127\.0\.0\.1:\d+ of redis\+sentinel:\/\/\S+ requires no password, but SESSION_MIGRATE_REDIS_PASSWORD is set/,
    );
    const ok = cli(plan(s.url));
    expect(ok.status, ok.stderr).toBe(0);
  });
});

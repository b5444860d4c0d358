/**
 * A Redis password in a URL together with bad input (operator review): `plan --target
 * redis://:pw@127.0.0.1:1` with a missing source directory, or a server that does not answer, printed
 * two lines, the "password ... is visible" warning and the error. Bad input gets one line: a command
 * that fails prints only its error; the warning is written when the command proceeds (its output, its
 * end with exit 0 or 1). The password is printed nowhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cli,
  cliTimed,
  EXIT_AFTER_ERROR_MS,
  newKey,
  planArgs,
  usageLine,
  writeSessionFiles,
  type CliResult,
} from './support/migrate-cli.ts';
import { freePort, startRedis, type RedisServer } from './support/servers.ts';

const PASSWORD = 'Visible7pw';
const WARNING = /^session-migrate: warning: the password in the (target URL|source spec) is visible to other users/m;

let redis: RedisServer;
let root: string;
let keyFile: string;
let dir: string;

/** Exit 2, exactly one stderr line (no warning), the password nowhere, no plan written. */
function oneLine(r: CliResult, pattern: RegExp): void {
  const lines = r.stderr.trim().split('\n');
  expect(r.status, r.stderr + r.stdout).toBe(2);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr + r.stdout).not.toContain(PASSWORD);
  expect(existsSync(join(root, 'plan.json'))).toBe(false);
}

beforeAll(async () => {
  redis = await startRedis();
  await redis.client.call('ACL', 'SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '+@all');
  root = mkdtempSync(join(tmpdir(), 'sm-pw-warning-'));
  ({ keyFile } = await newKey(root));
  dir = join(root, 'sessions');
  writeSessionFiles(dir, 'pw', 3);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const withPassword = (url: string): string => url.replace('redis://', `redis://app:${PASSWORD}@`);
const plan = (source: string, target: string): CliResult =>
  cli(planArgs({ dir: source, target, keyFile, planFile: join(root, 'plan.json'), artifactsDir: join(root, 'art') }));

describe('a password in the URL with bad input', () => {
  it('plan with a missing source directory: only the error', () => {
    oneLine(plan(join(root, 'missing'), withPassword(redis.url)), /source directory .*missing: no such file or directory/);
  });

  it('plan against a port nothing listens on: only the error', async () => {
    const closed = `redis://:${PASSWORD}@127.0.0.1:${await freePort()}/0`;
    oneLine(plan(dir, closed), /cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
  });

  it('plan against a port nothing listens on: the process exits at once after its error line (no ioredis timer left)', async () => {
    const closed = `redis://:${PASSWORD}@127.0.0.1:${await freePort()}/0`;
    const r = await cliTimed(
      planArgs({ dir, target: closed, keyFile, planFile: join(root, 'plan.json'), artifactsDir: join(root, 'art') }),
    );
    oneLine(r, /cannot connect to Redis at .*ECONNREFUSED/);
    expect(r.lingerMs).toBeLessThan(EXIT_AFTER_ERROR_MS);
  });

  it('a Redis source spec with a password and a closed port: only the error', async () => {
    const r = cli([
      'plan',
      '--source',
      `redis://:${PASSWORD}@127.0.0.1:${await freePort()}/0`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      join(root, 'plan.json'),
      '--artifacts-dir',
      join(root, 'art'),
    ]);
    oneLine(r, /cannot connect|source/);
  });

  it('verify with a wrong --key-file: only the error', () => {
    oneLine(cli(['verify', '--target', withPassword(redis.url), '--key-file', join(root, 'no.key')]), /no\.key: no such file/);
  });

  it('a command that proceeds keeps the warning, without the password', () => {
    const r = plan(dir, withPassword(redis.url));
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(WARNING);
    expect(r.stderr.match(new RegExp(WARNING.source, 'gm'))).toHaveLength(1);
    expect(r.stderr + r.stdout).not.toContain(PASSWORD);
    rmSync(join(root, 'plan.json'));
  });
});

describe('a password refused or missing (fresh-clone review: the hint said "give the password" when one was given)', () => {
  const userUrl = (): string => redis.url.replace('redis://', 'redis://app@');
  it('none given: where to give it', () => {
    oneLine(plan(dir, userUrl()), /WRONGPASS|NOAUTH/);
    expect(usageLine(plan(dir, userUrl()))).toMatch(
      /\(a user name but no password given: if that name was the password, write the URL as redis:\/\/:PASSWORD@host, or rather give the password in SESSION_MIGRATE_REDIS_PASSWORD\)$/,
    );
  });

  it('a password written where the user name goes (redis://SECRET@host): never echoed as the user, with or without a password in the environment', () => {
    const target = redis.url.replace('redis://', `redis://${PASSWORD}@`);
    for (const env of [{}, { SESSION_MIGRATE_REDIS_PASSWORD: 'Wr0ngOne9' }] as Array<Record<string, string>>) {
      const r = cli(planArgs({ dir, target, keyFile, planFile: join(root, 'plan.json'), artifactsDir: join(root, 'art') }), env);
      expect(r.status).toBe(2);
      expect(usageLine(r)).toMatch(/WRONGPASS|NOAUTH/);
      expect(r.stderr + r.stdout).not.toContain(PASSWORD);
    }
  });

  it('a wrong one in the environment: check it there (never its value)', () => {
    const r = cli(planArgs({ dir, target: userUrl(), keyFile, planFile: join(root, 'plan.json'), artifactsDir: join(root, 'art') }), {
      SESSION_MIGRATE_REDIS_PASSWORD: 'Wr0ngOne9',
    });
    oneLine(r, /WRONGPASS .*\(check the user name in the URL and the password given in SESSION_MIGRATE_REDIS_PASSWORD\)$/);
    expect(r.stderr).not.toContain('Wr0ngOne9');
  });

  it('a wrong one in the URL: check the URL', () => {
    const r = plan(dir, redis.url.replace('redis://', 'redis://app:Wr0ngOne9@'));
    expect(r.status).toBe(2);
    expect(usageLine(r)).toMatch(/WRONGPASS .*\(check the user name and the password given in the URL\)$/);
    expect(r.stderr + r.stdout).not.toContain('Wr0ngOne9');
  });
});

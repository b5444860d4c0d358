/**
 * Runs the PHP side's own PHPUnit suite (php/tests, php/phpunit.xml.dist; Debian's `phpunit` package,
 * installed by scripts/setup.sh) inside `npm test`, with a throwaway redis-server for the tests that
 * need one. A skipped test counts as a failure here: every PHPUnit test must run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis, type RedisServer } from './support/servers.ts';
import { REPO } from './php/harness.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe('PHPUnit (php/tests)', () => {
  it('passes with no test skipped, and writes no result cache into the checkout', () => {
    // PHPUnit 9 writes .phpunit.result.cache beside the configuration file unless cacheResult="false".
    const cache = join(REPO, 'php/.phpunit.result.cache');
    rmSync(cache, { force: true }); // a scratch file of an earlier run (ignored by git)
    const run = spawnSync('phpunit', ['-c', join(REPO, 'php/phpunit.xml.dist'), '--colors=never'], {
      cwd: REPO,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        TMPDIR: process.env.TMPDIR ?? '/tmp',
        SESSION_MIGRATE_TEST_REDIS_PORT: String(redis.port),
      },
      timeout: 120_000,
    });
    expect(run.error, 'phpunit is missing: run scripts/setup.sh (apt-get install phpunit)').toBeUndefined();
    expect(run.stdout + run.stderr, run.stdout + run.stderr).toMatch(/^OK \(\d+ tests?, \d+ assertions?\)$/m);
    expect(run.status).toBe(0);
    expect(existsSync(cache), 'php/phpunit.xml.dist must keep cacheResult="false"').toBe(false);
  });
});

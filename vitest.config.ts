/**
 * Two tiers of tests (CONTRIBUTING.md, "Test layers"), as vitest projects:
 *
 * - `unit`: starts no server and no PHP (no redis-server, php, php-cgi, php-fpm, nginx, no network
 *   socket); test/support/unit-guard.ts makes any attempt fail. `npm run test:unit`, well under 30 s.
 * - `integration`: everything that starts one of them. `npm run test:integration`.
 *
 * `npm test` type-checks and runs both. A test's tier is decided by what it starts, not by its
 * folder: by default the tests below packages/ and codemods/ are unit tests and those below test/
 * are integration tests, and the lists below name the files that are the other way round.
 */
import { configDefaults, defineConfig } from 'vitest/config';

const ALL = ['packages/*/test/**/*.test.ts', 'codemods/*/test/**/*.test.ts', 'test/**/*.test.ts'];

/** Tests below packages/ and codemods/ that start PHP, php-fpm or redis-server. */
const INTEGRATION = [
  'codemods/php/test/codemod.test.ts', // php -l (runCodemod)
  'codemods/php/test/fixtures.test.ts', // php -l
  'codemods/php/test/guards.test.ts', // php -l
  'codemods/php/test/redis-secrets.test.ts', // php -l (runCodemod)
  'codemods/php/test/static-value.test.ts', // php as the oracle
  'packages/audit/test/app.test.ts', // php as the oracle
  'packages/migrate/test/apply.test.ts', // redis-server
  'packages/migrate/test/plan-key.test.ts', // php
  'packages/php-ini/test/fuzz-cgi-vs-php.test.ts', // php-cgi
  'packages/php-ini/test/fuzz-loader-vs-php.test.ts', // php
  'packages/php-ini/test/fuzz-vs-php.test.ts', // php
  'packages/php-ini/test/ini-cases.test.ts', // php
  'packages/php-ini/test/validators-vs-php.test.ts', // php
  'packages/php-session/test/classify-equivalence.test.ts', // php (helpers.ts)
  'packages/php-session/test/differential.test.ts', // php (helpers.ts)
  'packages/php-session/test/loadable.test.ts', // php as the oracle
  'packages/php-session/test/malformed.test.ts', // php (helpers.ts)
  'packages/php-session/test/shared-cases.test.ts', // php
  'packages/php-session/test/unit.test.ts', // php
  'packages/redis/test/connection.test.ts', // redis-server
  'packages/sources/test/stable-read.test.ts', // php (a writer stopped mid-write)
  'packages/target/test/guarded.test.ts', // redis-server
  'packages/target/test/redis.test.ts', // redis-server
];

/**
 * Tests below test/ that start nothing: they read generated output or the repository's files. (The
 * rest of test/ runs the CLI end to end, as a process, and most of it starts servers and PHP.)
 */
const UNIT = [
  'test/docs.test.ts', // renders the CLI's --help in-process, reads the Markdown files
  'test/generate-iac-golden.test.ts',
  'test/generate-iac-review.test.ts', // reads the rendered templates and aws-cdk-lib's L1 classes
  'test/global-setup.test.ts', // files in a temporary directory only
  'test/self-contained.test.ts',
  'test/unit-guard.test.ts', // checks the unit tier's guard, so it must run in the unit tier
];

/**
 * Integration tests that run alone, one file at a time after the others (project `integration-alone`):
 * the ones whose timing is part of what they check (a failover or resharding while a scan or the
 * handler runs, a writer stalled or racing a rollback, traffic during a cutover), where a second test
 * file sharing the two cores would make them miss a window they wait for. Every other integration
 * file may run two at a time (`integration`, its maxWorkers below): most of their time is spent waiting on servers (apply's
 * retry budget, Sentinel's down-after and failover timers), and their ports come from
 * test/support/ports.ts, which keeps parallel workers apart.
 *
 * test/apply-live.test.ts (80 s) is not here any more: its windows are counted in keys or wait for
 * apply's own output, not for a time (kill -9 and SIGINT after 2,000 of 30,000 keys; Redis
 * restarted once apply printed its first retry), and its one time bound, the hang guard of "Redis
 * gone for good" (50 s), is spent waiting for ioredis's reconnects: 29 s measured beside another
 * vitest run with the machine at load 4.7 on 2 cores. It was here for its afterAll (~40,000 files
 * removed, past the 60 s hook timeout on a loaded machine); that removal now has its own 600 s
 * timeout and one shared 30,000-file source.
 */
const ALONE = [
  'test/cluster-scan-failover.test.ts',
  'test/cluster-scan-resharding.test.ts',
  'test/cutover-under-load.test.ts',
  'test/live-cutover.test.ts',
  'test/php-handler-stall.test.ts',
  'test/prod-redis-sentinel.test.ts', // verify right after a failover saw the old master once, beside another file under load
  'test/read-through-sentinel-failover.test.ts',
  'test/rollback-race.test.ts',
  'test/stable-read-live.test.ts',
];

/**
 * The integration projects' global setup: the common one, then the built CLI that their tests start
 * (test/support/cli-build.ts: about 0.15 s a start against 1 s through tsx).
 */
const INTEGRATION_SETUP = ['test/support/global-setup.ts', 'test/support/cli-build.ts'];

const UNIT_FILES = [...ALL.filter((g) => !g.startsWith('test/')), ...UNIT];
const INTEGRATION_FILES = ['test/**/*.test.ts', ...INTEGRATION];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/support/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: UNIT_FILES,
          exclude: [...configDefaults.exclude, ...INTEGRATION],
          setupFiles: ['test/support/unit-guard.ts'],
          // Two files at a time: vitest's default is cores - 1, one file at a time on this machine and
          // CI (2 cores). They start no server and wait on no timer window (a unit test's time bounds
          // are 30 times what they check: keyring.test.ts's 1 s --key-command timeout against 30 s).
          // Its own groupOrder (see integration's maxWorkers): first.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: INTEGRATION_FILES,
          globalSetup: INTEGRATION_SETUP,
          exclude: [...configDefaults.exclude, ...UNIT, ...ALONE],
          // Two files at a time (this machine and CI have 2 cores; vitest's default is cores - 1).
          // On a quiet machine the whole suite (154 files, 2,339 tests) took 642 s of vitest with 2
          // against 837 s for 147 files with 1. Files whose timing is part of what they check are in
          // ALONE. A project's own maxWorkers needs its own sequence.groupOrder (vitest 4.1): unit runs
          // first (order 0), then this, then integration-alone (maxWorkers 1 puts it in vitest's
          // sequential group, which runs last). Not 3: the project is mostly CPU, not waiting (1,104 s of
          // CPU for its 107 files, measured: a floor of about 550 s of wall on 2 cores, against about
          // 600 s with 2), and a run with 3 beside other test runs (load 10) failed two files on their
          // time bounds (audit-collect-users' live collects past 120 s; apply-live's torn reads).
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration-alone',
          include: ALONE,
          globalSetup: INTEGRATION_SETUP,
          maxWorkers: 1,
        },
      },
    ],
  },
});

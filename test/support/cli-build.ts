/**
 * Vitest global setup of the integration projects (vitest.config.ts): builds the CLI once per test
 * run (scripts/package/build.ts buildTestCli: the package's esbuild bundle, reused while the sources
 * are unchanged) and hands its path to every test process in SESSION_MIGRATE_TEST_CLI, which
 * test/support/migrate-cli.ts BIN reads. A source that does not build fails the run here, with the
 * build's one line.
 */
import { buildTestCli } from '../../scripts/package/build.ts';

/** The environment variable that carries the built CLI's bin to the test processes. */
export const TEST_CLI_ENV = 'SESSION_MIGRATE_TEST_CLI';

export default async function setup(): Promise<void> {
  if (process.env[TEST_CLI_ENV] !== undefined) return;
  process.env[TEST_CLI_ENV] = await buildTestCli();
}

/**
 * The CLI's one rule for repeated warnings (src/redis-options.ts `warn`): each text once per process,
 * whichever connection or use case said it (packages/redis keeps every line and leaves repeats to the
 * caller). Run in a child node process, whose stderr is what a user sees.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

it('warn writes each text once per process, in order, prefixed with the program name', () => {
  const module = pathToFileURL(join(import.meta.dirname, '../src/redis-options.ts')).href;
  const script = `const { warn } = await import(${JSON.stringify(module)}); for (const l of ['warning: a', 'warning: b', 'warning: a', 'warning: b', 'note: c']) warn(l);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toBe('session-migrate: warning: a\nsession-migrate: warning: b\nsession-migrate: note: c\n');
});

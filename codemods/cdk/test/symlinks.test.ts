/**
 * codemod cdk never follows a symbolic link (it could lead out of the app) and, like codemod php,
 * reports each one it did not follow as skipped: nobody looked at its target, so the run is
 * incomplete (exit 1). The walk rule has one home, @session-migrate/common walk-tree.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCdkCodemod } from '../src/run.ts';

const STACK = `import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import { Stack } from 'aws-cdk-lib';

export function sessions(stack: Stack) {
  return new elasticache.CfnReplicationGroup(stack, 'Sessions', {
    replicationGroupDescription: 'PHP sessions',
    engine: 'redis',
    atRestEncryptionEnabled: true,
    transitEncryptionEnabled: true,
    authToken: 'x',
  });
}
`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An app with one file without ElastiCache, and outside it a stack and a directory reached only by links. */
function appWithLinks(): { app: string; outside: string } {
  const root = mkdtempSync(join(tmpdir(), 'codemod-cdk-links-'));
  dirs.push(root);
  const app = join(root, 'app');
  const outside = join(root, 'outside');
  mkdirSync(join(app, 'lib'), { recursive: true });
  mkdirSync(join(outside, 'more'), { recursive: true });
  writeFileSync(join(app, 'lib', 'plain.ts'), 'export const x = 1;\n');
  writeFileSync(join(outside, 'evil.ts'), STACK);
  writeFileSync(join(outside, 'more', 'stack.ts'), STACK);
  symlinkSync(join(outside, 'evil.ts'), join(app, 'lib', 'link.ts'));
  symlinkSync(join(outside, 'more'), join(app, 'linkdir'));
  // A link whose name the codemod would never read: not worth a line (as codemod php).
  symlinkSync(join(outside, 'evil.ts'), join(app, 'README.md'));
  return { app, outside };
}

describe('codemod cdk: symbolic links', () => {
  it('are not followed and are reported as skipped, which leaves the run incomplete', () => {
    const { app, outside } = appWithLinks();
    const report = runCdkCodemod(app);
    expect(report.scanned).toBe(1);
    expect(report.files).toEqual([
      { path: 'lib/link.ts', changed: false, changes: [], findings: [], skipped: 'symbolic link: not followed' },
      { path: 'linkdir', changed: false, changes: [], findings: [], skipped: 'symbolic link: not followed' },
    ]);
    expect(report.incomplete).toBe(true);
    expect(readFileSync(join(outside, 'evil.ts'), 'utf8')).toBe(STACK);
    expect(readFileSync(join(outside, 'more', 'stack.ts'), 'utf8')).toBe(STACK);
  });

  it('the CLI names each one as codemod php does, and exits 1', () => {
    const { app } = appWithLinks();
    const bin = join(import.meta.dirname, '../../../packages/cli/bin/session-migrate.js');
    const r = spawnSync(process.execPath, [bin, 'codemod', 'cdk', app], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toContain('skipped lib/link.ts: symbolic link: not followed');
    expect(lines).toContain('skipped linkdir: symbolic link: not followed');
    expect(lines.at(-1)).toBe('incomplete: review the high and medium findings above, and any skipped file');
  });
});

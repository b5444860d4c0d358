/**
 * A guard of the CDK codemod that the README promises and no fixture exercises: a file changed on
 * disk while the codemod ran is never overwritten. The test saves another version of the file while
 * transformSource works on the first (as an editor or a `git checkout` would), and fails when the
 * guard is removed (checked by dropping `expected` from writeAtomically in src/run.ts).
 */
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** Called by the wrapped transformSource once it has the text: what an editor does meanwhile. */
const meanwhile = vi.hoisted(() => ({ edit: null as null | ((path: string) => void) }));
vi.mock('../src/transform.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/transform.ts')>();
  return {
    ...real,
    transformSource: (text: string, path: string, options?: Parameters<typeof real.transformSource>[2]) => {
      meanwhile.edit?.(path);
      return real.transformSource(text, path, options);
    },
  };
});

const { runCdkCodemod } = await import('../src/run.ts');

const STACK = `import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import { Stack } from 'aws-cdk-lib';

export function sessions(stack: Stack) {
  return new elasticache.CfnReplicationGroup(stack, 'Sessions', {
    replicationGroupDescription: 'PHP sessions',
    engine: 'redis',
    cacheNodeType: 'cache.t4g.small',
    numCacheClusters: 2,
  });
}
`;

let dir: string;
afterEach(() => {
  meanwhile.edit = null;
  rmSync(dir, { recursive: true, force: true });
});

describe('codemod cdk: a file changed on disk while the codemod ran', () => {
  it('is not rewritten: the other version stays, the file is reported as skipped with the reason', () => {
    dir = mkdtempSync(join(tmpdir(), 'codemod-cdk-guards-'));
    const file = join(dir, 'stack.ts');
    writeFileSync(file, STACK);
    chmodSync(file, 0o640);
    const saved = STACK.replace('numCacheClusters: 2,', 'numCacheClusters: 3, // scaled up by a colleague meanwhile');
    meanwhile.edit = (path) => writeFileSync(path, saved);

    const report = runCdkCodemod(dir);
    expect(readFileSync(file, 'utf8')).toBe(saved);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(report.files).toHaveLength(1);
    expect(report.files[0]).toMatchObject({
      path: 'stack.ts',
      changed: false,
      skipped: 'changed on disk while the codemod ran; not rewritten (run it again)',
    });
    expect(report.files[0]!.changes.length).toBeGreaterThan(0);
    expect(readdirSync(dir).sort()).toEqual(['stack.ts']);

    // Run again: the version on disk now is rewritten, the colleague's change kept.
    meanwhile.edit = null;
    const again = runCdkCodemod(dir);
    expect(again.files[0]).toMatchObject({ path: 'stack.ts', changed: true });
    expect(readFileSync(file, 'utf8')).toContain('numCacheClusters: 3, // scaled up by a colleague meanwhile');
    expect(readFileSync(file, 'utf8')).toContain('transitEncryptionEnabled: true');
  });
});

/**
 * A guard of the CDK codemod that the README promises and no fixture exercises: a file changed on
 * disk while the codemod ran is never overwritten. The test saves another version of the file while
 * transformSource works on the first (as an editor or a `git checkout` would), and fails when the
 * guard is removed (checked by dropping `expected` from writeAtomically in src/run.ts).
 */
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
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
const { UserFacingError } = await import('@session-migrate/common');

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

describe('codemod cdk: all files or none (the rule of @session-migrate/common rewrite-files.ts, shared with codemod php)', () => {
  /** An app with two stacks to change, a/ before z/ in walk order. */
  function twoStacks(): { a: string; z: string } {
    dir = mkdtempSync(join(tmpdir(), 'codemod-cdk-guards-'));
    for (const d of ['a', 'z']) mkdirSync(join(dir, d));
    const a = join(dir, 'a', 'stack.ts');
    const z = join(dir, 'z', 'stack.ts');
    writeFileSync(a, STACK);
    writeFileSync(z, STACK);
    return { a, z };
  }

  it('a file with several hard links refuses the run in one line naming it, and no file is written, not even the earlier ones', () => {
    const { a, z } = twoStacks();
    linkSync(z, join(dir, 'z-copy.ts.txt'));
    let error: unknown;
    try {
      runCdkCodemod(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UserFacingError);
    expect((error as Error).message).toBe(
      'cannot write z/stack.ts: has 2 hard links (rewriting it would split them; make it a file of its own first): nothing was changed',
    );
    expect(readFileSync(a, 'utf8')).toBe(STACK);
    expect(readFileSync(z, 'utf8')).toBe(STACK);
    expect(statSync(z).nlink).toBe(2);
    // A dry run writes nothing, so it still shows both diffs, and it carries the real run's refusal
    // (the CLI prints it and exits 2, as the real run does).
    const dry = runCdkCodemod(dir, { dryRun: true });
    expect(dry.files.filter((f) => f.changed).map((f) => f.path)).toEqual(['a/stack.ts', 'z/stack.ts']);
    expect(dry.refused).toBe((error as Error).message);
    expect(readFileSync(z, 'utf8')).toBe(STACK);
  });

  it('a file that vanished after its new text was computed refuses the run before anything is written', () => {
    const { a, z } = twoStacks();
    // While the later file is transformed, the earlier one (already read and transformed) is removed.
    meanwhile.edit = (path) => {
      if (path === z) unlinkSync(a);
    };
    expect(() => runCdkCodemod(dir)).toThrow('cannot write a/stack.ts: no such file or directory: nothing was changed');
    expect(readFileSync(z, 'utf8')).toBe(STACK);
    expect(readdirSync(join(dir, 'z'))).toEqual(['stack.ts']);
  });
});

/**
 * writePlanFile writes through the one atomic write (packages/common/src/atomic-write.ts): mode 0644
 * exactly, a symbolic link at the target or at the temporary name is never written through, and a
 * failed write is one line and leaves neither a temporary file nor a changed plan.
 */
import { lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { errorOf, pinnedTempName, tempDirPerTest } from '../../../test/support/atomic-write.ts';

const fixedRandom = vi.hoisted(() => ({ on: false }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, randomBytes: (n: number) => (fixedRandom.on ? Buffer.alloc(n, 0xab) : real.randomBytes(n)) };
});

const { PLAN_FORMAT, writePlanFile } = await import('../src/plan.ts');
const { UserFacingError } = await import('@session-migrate/common');
type Plan = import('../src/plan.ts').Plan;

const tmp = tempDirPerTest('plan-file-', () => {
  fixedRandom.on = false;
});
const plan = (n: number) => ({ format: PLAN_FORMAT, n }) as unknown as Plan;

describe('writePlanFile (atomic)', () => {
  it('writes mode 0644 exactly whatever the umask, replaces an earlier plan, and leaves no temporary file', () => {
    const dir = tmp();
    const p = join(dir, 'session-migrate.plan.json');
    const old = process.umask(0o077);
    try {
      writePlanFile(p, plan(1));
      writePlanFile(p, plan(2));
    } finally {
      process.umask(old);
    }
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ format: PLAN_FORMAT, n: 2 });
    expect(statSync(p).mode & 0o7777).toBe(0o644);
    expect(readdirSync(dir)).toEqual(['session-migrate.plan.json']);
  });

  it('never writes through a link planted at the temporary name; the error is one line and the plan is unchanged', () => {
    const dir = tmp();
    const p = join(dir, 'plan.json');
    writePlanFile(p, plan(1));
    const victim = join(dir, 'master.key');
    writeFileSync(victim, 'precious');
    fixedRandom.on = true;
    const planted = join(dir, pinnedTempName('plan.json'));
    symlinkSync(victim, planted);
    const err = errorOf(() => writePlanFile(p, plan(2)));
    expect(err).toBeInstanceOf(UserFacingError);
    expect((err as Error).message).toBe(`cannot write plan ${p}: EEXIST`);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual({ format: PLAN_FORMAT, n: 1 });
  });

  it('refuses a symbolic link at the target, and a missing directory, in one line', () => {
    const dir = tmp();
    const victim = join(dir, 'victim.json');
    writeFileSync(victim, JSON.stringify({ format: PLAN_FORMAT }));
    symlinkSync(victim, join(dir, 'link.json'));
    expect((errorOf(() => writePlanFile(join(dir, 'link.json'), plan(2))) as Error).message).toMatch(
      /not a regular file; refusing to replace it/,
    );
    expect(JSON.parse(readFileSync(victim, 'utf8'))).toEqual({ format: PLAN_FORMAT });
    expect((errorOf(() => writePlanFile(join(dir, 'no', 'plan.json'), plan(2))) as Error).message).toBe(
      `cannot write plan ${join(dir, 'no', 'plan.json')}: no such file or directory`,
    );
    expect(readdirSync(dir).sort()).toEqual(['link.json', 'victim.json']);
  });
});

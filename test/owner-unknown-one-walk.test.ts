/**
 * A plan that knows no PHP user (it saw no session file: `phpUids: []`): verify and purge count the
 * session files of a non-root owner written since (phpUserUnknown's rule) in the walk they make
 * anyway, not in a walk of their own before it. Counted here: FilesSource.candidates() (one call is
 * one walk of the directory) and lstat(2) calls on session files, with the same counts and verdicts
 * as before (test/foreign-owner.test.ts has the CLI's lines). Use cases called directly; real
 * redis-server; the files are chowned, so root only.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyFile, type KeyProvider } from '@session-migrate/envelope';
import { createPlan, purge } from '@session-migrate/migrate';
import { FilesSource } from '@session-migrate/sources';
import { verifyMigration } from '@session-migrate/verify';
import { startRedis, type RedisServer } from './support/servers.ts';

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const counted = { sessionLstats: 0 };
  const lstatSync = ((path: fs.PathLike, ...rest: unknown[]) => {
    if (String(path).includes('/sess_')) counted.sessionLstats++;
    return (real.lstatSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof real.lstatSync;
  return { ...real, default: { ...real, lstatSync }, lstatSync, counted };
});
const counted = (fs as unknown as { counted: { sessionLstats: number } }).counted;

const isRoot = process.getuid?.() === 0;
const WWW = 33;
let root: string;
let dir: string;
let planFile: string;
let key: KeyProvider;
let redis: RedisServer;

beforeAll(async () => {
  if (!isRoot) return;
  root = mkdtempSync(join(tmpdir(), 'sm-owner-walk-'));
  dir = join(root, 'sessions');
  mkdirSync(dir);
  chmodSync(dir, 0o1733);
  const keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
  key = { kind: 'file', path: keyFile };
  planFile = join(root, 'plan.json');
  redis = await startRedis();
  const plan = await createPlan({
    source: `files:${dir}`,
    target: redis.url,
    key,
    prefix: 'smsess:',
    out: planFile,
    gcMaxlifetime: 1440,
    serializeHandler: 'php',
    maxSessionBytes: 1 << 20,
    artifactsDir: join(root, 'artifacts'),
  });
  expect(plan.source).toMatchObject({ phpUids: [] });
  // Written since by PHP (www-data): 4 files of a non-root owner, and one of root's.
  for (let i = 0; i < 5; i++) {
    const p = join(dir, `sess_ownerwalk${String(i).padStart(18, '0')}`);
    writeFileSync(p, `n|i:${i};`, { mode: 0o600 });
    if (i < 4) chownSync(p, WWW, WWW);
  }
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Walks of the directory (FilesSource.candidates calls) and lstat calls on session files while `f` runs. */
async function walksOf<T>(f: () => Promise<T>): Promise<{ result: T; walks: number; lstats: number }> {
  const spy = vi.spyOn(FilesSource.prototype, 'candidates');
  counted.sessionLstats = 0;
  try {
    const result = await f();
    return { result, walks: spy.mock.calls.length, lstats: counted.sessionLstats };
  } finally {
    spy.mockRestore();
  }
}

describe.skipIf(!isRoot)('files of an unknown PHP user are counted in the walk verify and purge make anyway', () => {
  it('verify --plan (presence): one walk, an lstat per file, the 4 files counted', async () => {
    const { result, walks, lstats } = await walksOf(() => verifyMigration({ plan: planFile }));
    expect(result.report).toMatchObject({ ok: false, ownerUnknown: 4, failureCounts: { 'owner-unknown': 4 } });
    expect(walks).toBe(1);
    expect(lstats).toBe(5);
  });

  it('verify --source (compare): one walk, the owners as the reads saw them, the 4 files counted', async () => {
    const { result, walks } = await walksOf(() => verifyMigration({ plan: planFile, source: `files:${dir}` }));
    expect(result.report).toMatchObject({ ok: false, ownerUnknown: 4, failureCounts: { 'owner-unknown': 4 } });
    expect(walks).toBe(1);
  });

  it('verify --no-presence: the plan directory is neither checked nor walked, as before', async () => {
    const { result, walks } = await walksOf(() => verifyMigration({ plan: planFile, presence: false }));
    expect(result.report.ownerUnknown).toBeUndefined();
    expect(walks).toBe(0);
  });

  it('purge (dry run and not): one walk, every delete held back, the files kept', async () => {
    for (const dryRun of [true, false]) {
      const { result, walks, lstats } = await walksOf(() => purge({ plan: planFile, dryRun, allowPartial: false }));
      expect(result).toMatchObject({ ownerUnknown: 4, ok: false });
      expect(result.total.deleting).toBe(false);
      expect(walks).toBe(1);
      expect(lstats).toBeLessThanOrEqual(5 * 2); // purge's own lstat before each read, and the owner check of a refused open
    }
    for (let i = 0; i < 5; i++) expect(existsSync(join(dir, `sess_ownerwalk${String(i).padStart(18, '0')}`))).toBe(true);
  });
});

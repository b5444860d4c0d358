/**
 * The use cases called directly, without the CLI (packages/migrate/src/use-cases, packages/verify
 * use-case.ts): createPlan, applyPlan, verifyMigration, purge, rollback and rotate against a real
 * redis-server, with their typed reports; nothing is printed.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserFacingError } from '@session-migrate/common';
import { generateKeyFile, type KeyProvider } from '@session-migrate/envelope';
import { applyPlan, createPlan, purge, readPlanFile, rollback, rotate, type CreatePlanOptions } from '@session-migrate/migrate';
import { verifyMigration } from '@session-migrate/verify';
import { startRedis, type RedisServer } from './support/servers.ts';

const PREFIX = 'smsess:';
const IDS = ['usecase0000000000000000001', 'usecase0000000000000000002', 'usecase0000000000000000003'];
let root: string;
let sessions: string;
let planFile: string;
let key: KeyProvider;
let redis: RedisServer;
let stdout: ReturnType<typeof vi.spyOn>;

function writeSession(id: string, data: string, ageSeconds: number): void {
  const path = join(sessions, `sess_${id}`);
  writeFileSync(path, data, { mode: 0o600 });
  const t = Date.now() / 1000 - ageSeconds;
  utimesSync(path, t, t);
}

function planOptions(over: Partial<CreatePlanOptions> = {}): CreatePlanOptions {
  return {
    source: `files:${sessions}`,
    target: redis.url,
    key,
    prefix: PREFIX,
    out: planFile,
    gcMaxlifetime: 1440,
    serializeHandler: 'php',
    maxSessionBytes: 1 << 20,
    artifactsDir: join(root, 'artifacts'),
    ...over,
  };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-use-cases-'));
  sessions = join(root, 'sessions');
  mkdirSync(sessions, { mode: 0o700 });
  IDS.forEach((id, i) => writeSession(id, `user|s:5:"user${i}";n|i:${i};`, 60));
  writeSession('usecaseexpired000000000001', 'user|s:3:"old";', 5000); // past gc_maxlifetime
  const keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
  key = { kind: 'file', path: keyFile };
  planFile = join(root, 'plan.json');
  redis = await startRedis();
  // The use cases print nothing: any write to stdout fails the test at the end.
  stdout = vi.spyOn(process.stdout, 'write');
});

afterAll(async () => {
  stdout?.mockRestore();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('use cases, called directly', () => {
  it('createPlan counts the sources, reads the target and writes the plan it returns', async () => {
    const warnings: string[] = [];
    const plan = await createPlan({ ...planOptions(), onWarning: (w) => warnings.push(w) });
    expect(plan.summary).toMatchObject({ found: 4, live: 3, expired: 1, empty: 0, corrupt: 0 });
    expect(plan.target).toMatchObject({ url: redis.url, prefix: PREFIX, existingKeysUnderPrefix: 0, topology: 'standalone' });
    expect(plan.key).toMatchObject({ provider: 'file', file: key.kind === 'file' ? key.path : '' });
    expect(plan.ttlPolicy).toBe(
      "files: remaining lifetime, gc_maxlifetime (1440 s) minus the file's age; sessions already past it are not copied",
    );
    expect(plan.artifacts.files.length).toBeGreaterThan(2);
    expect(readPlanFile(planFile)).toEqual(plan);
    expect(warnings).toEqual([]);
  });

  it('createPlan refuses bad options before anything is written', async () => {
    const out = join(root, 'never.json');
    await expect(createPlan(planOptions({ out, gcMaxlifetime: 0 }))).rejects.toThrow(
      '--gc-maxlifetime must be a whole number of seconds from 1 to 2147483647, digits only',
    );
    await expect(createPlan(planOptions({ out, source: [] }))).rejects.toThrow('plan needs --source');
    await expect(createPlan(planOptions({ out, maxSessionBytes: 0 }))).rejects.toThrow(UserFacingError);
    await expect(createPlan(planOptions({ out, target: 'http://127.0.0.1:1/' }))).rejects.toThrow(UserFacingError);
    expect(existsSync(out)).toBe(false);
  });

  it('verifyMigration before apply: every live session of the plan is missing', async () => {
    const v = await verifyMigration({ plan: planFile });
    expect(v.report.ok).toBe(false);
    expect(v.report.presence).toMatchObject({ checked: 3, present: 0, missing: 3 });
    expect(v).toMatchObject({ prefix: PREFIX, gcMaxlifetime: 1440, serializeHandler: 'php' });
  });

  it('applyPlan with a bad worker count writes nothing: no artifact, no key (the option is checked before any write)', async () => {
    await expect(applyPlan({ plan: planFile, dryRun: false, workers: 100 })).rejects.toThrow(
      '--workers must be a whole number from 0 to 64, digits only',
    );
    expect(existsSync(join(root, 'artifacts'))).toBe(false);
    expect(await redis.client.dbsize()).toBe(0);
    // Checked before the plan is read: the bad number is the line, not the missing plan (fresh-clone review).
    await expect(applyPlan({ plan: join(root, 'no-such-plan.json'), dryRun: false, workers: 1000 })).rejects.toThrow(
      '--workers must be a whole number from 0 to 64, digits only',
    );
    await expect(applyPlan({ plan: join(root, 'no-such-plan.json'), dryRun: false, retries: -1 })).rejects.toThrow(/^--retries must be/);
  });

  it('applyPlan: a dry run writes nothing; then every live session is copied once; again, nothing to do', async () => {
    const dry = await applyPlan({ plan: planFile, dryRun: true, workers: 0 });
    expect(dry.result.dryRun).toBe(true);
    expect(dry.result.sessions.counts).toMatchObject({ migrated: 3, expired: 1 });
    expect(await redis.client.dbsize()).toBe(0);

    const progress: number[] = [];
    const applied = await applyPlan({
      plan: planFile,
      dryRun: false,
      workers: 0,
      onProgress: (n, total) => {
        progress.push(n);
        expect(total).toBe(4);
      },
    });
    expect(applied.ok).toBe(true);
    expect(applied.unreadable).toBe(0);
    expect(applied.result.sessions.counts).toMatchObject({ migrated: 3, alreadyPresent: 0, failed: 0, conflicts: 0, expired: 1 });
    expect(applied.result.nothingToDo).toBe(false);
    expect(applied.result.artifacts.every((a) => a.status === 'written')).toBe(true);
    expect(dry.result.artifacts.every((a) => a.status === 'would-write')).toBe(true);
    expect(applied.plan.artifacts.outDir).toBe(join(root, 'artifacts'));
    expect((await redis.client.keys(`${PREFIX}*`)).length).toBe(3);
    for (const k of await redis.client.keys(`${PREFIX}*`)) expect(await redis.client.ttl(k)).toBeGreaterThan(1300);
    expect(Math.max(0, ...progress)).toBeLessThanOrEqual(4);

    const again = await applyPlan({ plan: planFile, dryRun: false, workers: 0 });
    expect(again.ok).toBe(true);
    expect(again.result.nothingToDo).toBe(true);
    expect(again.result.artifacts.every((a) => a.status === 'unchanged')).toBe(true);
    expect(again.result.sessions.counts).toMatchObject({ migrated: 0, alreadyPresent: 3 });
  });

  it('applyPlan refuses another key (drift): nothing written', async () => {
    const other = join(root, 'other.key');
    generateKeyFile(other).fill(0);
    await expect(applyPlan({ plan: planFile, dryRun: false, key: { kind: 'file', path: other } })).rejects.toThrow(
      /no longer matches: .*nothing was written; re-run plan/,
    );
    await expect(applyPlan({ plan: planFile, dryRun: false, retries: 101 })).rejects.toThrow(
      '--retries must be a whole number from 0 to 100, digits only',
    );
  });

  it('verifyMigration after apply: OK, every session present and byte for byte the same', async () => {
    const fromPlan = await verifyMigration({ plan: planFile });
    expect(fromPlan.report.ok).toBe(true);
    expect(fromPlan.report.presence).toMatchObject({ checked: 3, present: 3, missing: 0 });
    expect(fromPlan.report.keysScanned).toBe(3);
    expect(fromPlan.report.keysValid).toBe(3);
    const compared = await verifyMigration({ target: redis.url, key, source: `files:${sessions}` });
    expect(compared.report.ok).toBe(true);
    expect(compared.report.source).toMatchObject({ checked: 3, matching: 3 });
  });

  it('verifyMigration: options override the plan, with a note; plaintext under the prefix fails', async () => {
    const notes: string[] = [];
    const v = await verifyMigration({ plan: planFile, gcMaxlifetime: 3600, onWarning: (w) => notes.push(w) });
    expect(notes).toEqual(['note: verify overrides the plan: --gc-maxlifetime 3600 (plan: 1440)']);
    expect(v.gcMaxlifetime).toBe(3600);
    await redis.client.set(`${PREFIX}planted`, 'user|s:5:"alice";', 'EX', 600);
    try {
      const bad = await verifyMigration({ plan: planFile });
      expect(bad.report.ok).toBe(false);
      expect(bad.report.failures.map((f) => f.key)).toContain(`${PREFIX}planted`);
    } finally {
      await redis.client.del(`${PREFIX}planted`);
    }
    await expect(verifyMigration({})).rejects.toThrow('verify needs --target and a key');
    await expect(verifyMigration({ plan: planFile, requireKeyId: 'nothex' })).rejects.toThrow('--require-key-id must be a key ID');
  });

  it('purge (dry run) proves every file and deletes nothing; rotate keeps every session under the one key', async () => {
    const p = await purge({ plan: planFile, dryRun: true, allowPartial: false });
    expect(p.ok).toBe(true);
    expect(p.total.deleting).toBe(true);
    expect(p.sources).toHaveLength(1);
    expect(p.heading).toBe(sessions);
    for (const id of IDS) expect(existsSync(join(sessions, `sess_${id}`))).toBe(true);

    const r = await rotate({ target: redis.url, key, prefix: PREFIX });
    expect(r.report.ok).toBe(true);
    expect(r.report.counts).toMatchObject({ sessionKeys: 3, alreadyCurrent: 3, reEncrypted: 0 });
    expect(r.targetUrl).toBe(redis.url);
  });

  it('rollback --to (dry run) tells its warning first and would write every session back', async () => {
    const notices: string[] = [];
    const r = await rollback({
      plan: planFile,
      to: `files:${sessions}`,
      removeKeys: false,
      dryRun: true,
      onNotice: (n) => notices.push(n),
    });
    expect(notices[0]).toMatch(/^WARNING: rollback to files writes session contents to disk in PLAINTEXT/);
    expect(r.mode).toBe('to');
    expect(r.ok).toBe(true);
    if (r.mode === 'to') expect(r.report.counts.written + r.report.counts.unchanged).toBe(3);
    await expect(rollback({ plan: planFile, removeKeys: false, dryRun: true })).rejects.toThrow('rollback needs exactly one of');
    expect(readFileSync(join(sessions, `sess_${IDS[0]}`), 'utf8')).toBe('user|s:5:"user0";n|i:0;');
  });

  it('printed nothing on stdout', () => {
    expect(stdout).not.toHaveBeenCalled();
  });
});

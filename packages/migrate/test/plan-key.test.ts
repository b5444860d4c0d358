/**
 * How plans record the key (docs/keys.md): new plans carry the provider and the lookup ID; plans
 * written before key rings (only `file` and `keyId`) stay readable; drift is judged on the lookup ID
 * when the plan has one (a rotated master key is not drift), on the key ID otherwise.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifactsForPlan, detectDrift, readPlanFile, type Plan } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sm-plan-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  format: 'session-migrate-plan',
  version: 2,
  createdAt: '',
  ttlPolicy: '',
  source: { kind: 'files', savePath: dir, dir, depth: 0, dev: 1, ino: 2 },
  target: {
    url: 'redis://127.0.0.1:6379/0',
    topology: 'standalone',
    host: '127.0.0.1',
    port: 6379,
    db: 0,
    tls: false,
    auth: false,
    prefix: 'smsess:',
    runId: 'r',
    existingKeysUnderPrefix: 0,
  },
  php: { gcMaxlifetime: 1440, serializeHandler: 'php' },
  limits: { maxSessionBytes: 1024 },
  summary: {
    found: 0,
    live: 0,
    liveBytes: 0,
    expired: 0,
    empty: 0,
    corrupt: 0,
    serializerMismatch: 0,
    formats: {},
    warnings: {},
    skipped: {},
    skippedSample: [],
  },
  artifacts: { outDir: join(dir, 'art'), installDir: '/srv/app', files: [] },
};
const write = (name: string, key: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify({ ...base, key }));
  return p;
};
const state = (over: Partial<Parameters<typeof detectDrift>[1]>) => ({
  keyId: 'aaaaaaaaaaaaaaaa',
  lookupId: 'bbbbbbbbbbbbbbbb',
  sourceIdentity: { dev: 1, ino: 2 },
  target: { topology: 'standalone' as const, runId: 'r' },
  ...over,
});

describe('plan key', () => {
  it('reads a plan from before key rings as provider file, without a lookup ID', () => {
    const plan = readPlanFile(write('old.json', { file: '/etc/sm/master.key', keyId: 'aaaaaaaaaaaaaaaa' }));
    expect(plan.key).toEqual({ provider: 'file', file: '/etc/sm/master.key', keyId: 'aaaaaaaaaaaaaaaa' });
    expect(detectDrift(plan, state({}))).toEqual([]);
    expect(detectDrift(plan, state({ keyId: 'cccccccccccccccc' }))[0]?.message).toBe(
      'key file /etc/sm/master.key now holds key ID cccccccccccccccc, the plan was made for aaaaaaaaaaaaaaaa',
    );
    // No lookup ID: the bootstrap accepts any key until apply fills the ID in.
    expect(artifactsForPlan(plan)[0]!.contents).toContain("'expectedLookupIds' => [],");
  });

  it('reads every provider; judges drift on the lookup ID, so a rotated master key is not drift', () => {
    for (const key of [
      { provider: 'ring', file: '/etc/sm/ring', keyId: 'aaaaaaaaaaaaaaaa', lookupId: 'bbbbbbbbbbbbbbbb' },
      { provider: 'env', env: 'SM_KEY', keyId: 'aaaaaaaaaaaaaaaa', lookupId: 'bbbbbbbbbbbbbbbb' },
      { provider: 'command', keyId: 'aaaaaaaaaaaaaaaa', lookupId: 'bbbbbbbbbbbbbbbb' },
    ]) {
      const plan: Plan = readPlanFile(write(`${key.provider}.json`, key));
      expect(plan.key).toEqual(key);
      expect(detectDrift(plan, state({ keyId: 'cccccccccccccccc' }))).toEqual([]);
      expect(detectDrift(plan, state({ lookupId: 'dddddddddddddddd' }))[0]?.message).toMatch(
        /now has lookup ID dddddddddddddddd, the plan was made for lookup ID bbbbbbbbbbbbbbbb$/,
      );
      expect(artifactsForPlan(plan)[0]!.contents).toContain("'expectedLookupIds' => ['bbbbbbbbbbbbbbbb'],");
      // The message names the key actually read (e.g. --key-file given to apply), not the plan's.
      expect(detectDrift(plan, state({ lookupId: 'dddddddddddddddd', keyDescription: 'key file /tmp/other.key' }))[0]?.message).toMatch(
        /^key file \/tmp\/other\.key now has lookup ID dddddddddddddddd/,
      );
    }
  });

  it('refuses a malformed key record', () => {
    for (const key of [
      { provider: 'file', keyId: 'aaaaaaaaaaaaaaaa' },
      { provider: 'env', keyId: 'aaaaaaaaaaaaaaaa' },
      { provider: 'vault', keyId: 'aaaaaaaaaaaaaaaa' },
      { provider: 'file', file: '/k', keyId: 'AAAA' },
      { provider: 'file', file: '/k', keyId: 'aaaaaaaaaaaaaaaa', lookupId: 'x' },
    ]) {
      expect(() => readPlanFile(write('bad.json', key)), JSON.stringify(key)).toThrow(/missing or malformed fields; re-run plan/);
    }
  });
});

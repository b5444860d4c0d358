/**
 * "Plan defaults, options override" (resolvePlanDefaults, packages/migrate/src/use-cases/shared.ts):
 * the one rule verify, purge and rollback follow. Unit tier: a plan file in a temporary directory, no
 * server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_GC_MAXLIFETIME, DEFAULT_MAX_SESSION_BYTES, DEFAULT_PREFIX, UserFacingError } from '@session-migrate/common';
import { resolvePlanDefaults, writePlanFile, type Plan } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sm-plan-defaults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MISSING = 'needs --target and a key, or --plan';

function planWith(
  over: {
    key?: Plan['key'];
    prefix?: string;
    gc?: number;
    handler?: Plan['php']['serializeHandler'];
    maxSessionBytes?: number;
    username?: string;
  } = {},
): string {
  const summary = {
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
  };
  const src = { kind: 'files' as const, savePath: '/var/lib/php/sessions', dir: '/var/lib/php/sessions', depth: 0, dev: 1, ino: 2 };
  const plan: Plan = {
    format: 'session-migrate-plan',
    version: 3,
    createdAt: '2026-01-01T00:00:00.000Z',
    ttlPolicy: '',
    source: src,
    sources: [{ ...src, summary }],
    target: {
      url: 'redis://10.0.0.5:6379/2',
      topology: 'standalone',
      host: '10.0.0.5',
      port: 6379,
      db: 2,
      tls: false,
      auth: false,
      ...(over.username !== undefined ? { username: over.username } : {}),
      prefix: over.prefix ?? 'app1:',
      runId: 'r',
      existingKeysUnderPrefix: 0,
    },
    key: over.key ?? { provider: 'file', file: '/etc/session-migrate/master.key', keyId: '0123456789abcdef', lookupId: 'fedcba9876543210' },
    php: { gcMaxlifetime: over.gc ?? 3600, serializeHandler: over.handler ?? 'php_serialize' },
    limits: { maxSessionBytes: over.maxSessionBytes ?? 65_536 },
    summary,
    artifacts: { outDir: '/srv/artifacts', installDir: '/srv/artifacts', files: [] },
  };
  const path = join(dir, `plan-${Math.random().toString(36).slice(2)}.json`);
  writePlanFile(path, plan);
  return path;
}

describe('resolvePlanDefaults: plan defaults, options override', () => {
  it('without a plan: the options given, else the built-in defaults', () => {
    const r = resolvePlanDefaults({ target: 'redis://127.0.0.1:6379/0', key: { kind: 'env', name: 'K' } }, { missing: MISSING });
    expect(r).toEqual({
      target: 'redis://127.0.0.1:6379/0',
      fromPlan: false,
      provider: { kind: 'env', name: 'K' },
      prefix: DEFAULT_PREFIX,
      gcMaxlifetime: DEFAULT_GC_MAXLIFETIME,
      serializeHandler: 'php',
      maxSessionBytes: DEFAULT_MAX_SESSION_BYTES,
      overrides: [],
    });
    expect(r.plan).toBeUndefined();
  });

  it("with a plan alone: the plan's target (recorded), key provider, prefix, gc_maxlifetime, serialize_handler and size limit", () => {
    const path = planWith();
    const r = resolvePlanDefaults({ plan: path }, { missing: MISSING });
    expect(r.plan?.target.url).toBe('redis://10.0.0.5:6379/2');
    expect(r.planPath).toBe(path);
    expect(r).toMatchObject({
      target: 'redis://10.0.0.5:6379/2',
      fromPlan: true,
      provider: { kind: 'file', path: '/etc/session-migrate/master.key' },
      prefix: 'app1:',
      gcMaxlifetime: 3600,
      serializeHandler: 'php_serialize',
      maxSessionBytes: 65_536,
      overrides: [],
    });
  });

  it('options given now win over the plan, and each difference is listed', () => {
    const r = resolvePlanDefaults(
      {
        plan: planWith(),
        target: 'redis://127.0.0.1:7000/0',
        key: { kind: 'ring', path: '/k.ring' },
        prefix: 'other:',
        gcMaxlifetime: 60,
        serializeHandler: 'php',
      },
      { missing: MISSING },
    );
    expect(r).toMatchObject({
      target: 'redis://127.0.0.1:7000/0',
      fromPlan: false,
      provider: { kind: 'ring', path: '/k.ring' },
      prefix: 'other:',
      gcMaxlifetime: 60,
      serializeHandler: 'php',
    });
    expect(r.overrides).toEqual([
      '--gc-maxlifetime 60 (plan: 3600)',
      '--serialize-handler php (plan: php_serialize)',
      '--prefix (plan: app1:)',
      '--target (plan: redis://10.0.0.5:6379/2)',
    ]);
    // The same values as the plan's are no override.
    expect(
      resolvePlanDefaults(
        { plan: planWith(), gcMaxlifetime: 3600, prefix: 'app1:', target: 'redis://10.0.0.5:6379/2' },
        { missing: MISSING },
      ).overrides,
    ).toEqual([]);
  });

  it("--target: compared with the plan's URL and user in one form (the user name kept, never a password); only the plan's is printed", () => {
    // A plan records its URL without the user name, and the user beside it.
    const withUser = planWith({ username: 'app' });
    const overrides = (target: string, plan = withUser) => resolvePlanDefaults({ plan, target }, { missing: MISSING }).overrides;
    // The same server and user, as typed: with the user, with a password too, the default port written out or not.
    for (const same of ['redis://app@10.0.0.5:6379/2', 'redis://app:s3cret@10.0.0.5:6379/2', 'redis://app@10.0.0.5/2'])
      expect(overrides(same), same).toEqual([]);
    expect(overrides('redis://10.0.0.5/2', planWith())).toEqual([]);
    // Another user (or none: the default user), another database: the plan's URL with its user.
    for (const other of ['redis://10.0.0.5:6379/2', 'redis://ops:s3cret@10.0.0.5:6379/2', 'redis://app@10.0.0.5:6379/0'])
      expect(overrides(other), other).toEqual(['--target (plan: redis://app@10.0.0.5:6379/2)']);
    // A password given in the plan-less form is no override either, and never printed.
    expect(overrides('redis://:s3cret@10.0.0.5:6379/2', planWith())).toEqual([]);
    expect(overrides('redis://u:s3cret@10.0.0.6:6379/2', planWith()).join()).not.toContain('s3cret');
  });

  it("refuses without a target or a key (and no plan), with the caller's message", () => {
    expect(() => resolvePlanDefaults({ key: { kind: 'env', name: 'K' } }, { missing: MISSING })).toThrow(new UserFacingError(MISSING));
    expect(() => resolvePlanDefaults({ target: 'redis://127.0.0.1:6379/0' }, { missing: MISSING })).toThrow(MISSING);
    expect(() => resolvePlanDefaults({ plan: planWith() }, { missing: MISSING, alsoMissing: (plan) => plan !== undefined })).toThrow(
      MISSING,
    );
  });

  it('a plan made with --key-command needs the key again', () => {
    const path = planWith({ key: { provider: 'command', keyId: '0123456789abcdef' } });
    expect(() => resolvePlanDefaults({ plan: path }, { missing: MISSING })).toThrow(/was made with --key-command/);
    expect(resolvePlanDefaults({ plan: path, key: { kind: 'env', name: 'K' } }, { missing: MISSING }).provider).toEqual({
      kind: 'env',
      name: 'K',
    });
  });

  it("checks, in order: missing target or key, the caller's own checks, the prefix, gc_maxlifetime", () => {
    const order: string[] = [];
    expect(() =>
      resolvePlanDefaults(
        { key: { kind: 'env', name: 'K' }, prefix: 'bad prefix' },
        { missing: MISSING, between: () => order.push('between') },
      ),
    ).toThrow(MISSING);
    expect(order).toEqual([]);
    expect(() =>
      resolvePlanDefaults(
        { target: 'redis://h:1/0', key: { kind: 'env', name: 'K' }, prefix: 'bad prefix', gcMaxlifetime: 0 },
        {
          missing: MISSING,
          between: () => {
            order.push('between');
          },
        },
      ),
    ).toThrow(/prefix "bad prefix" must be 1 to 128 printable ASCII characters/);
    expect(order).toEqual(['between']);
    for (const gc of [0, -1, 1.5, 2 ** 31]) {
      expect(() =>
        resolvePlanDefaults({ target: 'redis://h:1/0', key: { kind: 'env', name: 'K' }, gcMaxlifetime: gc }, { missing: MISSING }),
      ).toThrow('--gc-maxlifetime must be a whole number of seconds from 1 to 2147483647, digits only');
    }
    expect(() =>
      resolvePlanDefaults({ target: 'redis://h:1/0', key: { kind: 'env', name: 'K' }, prefix: 'a{b}:' }, { missing: MISSING }),
    ).toThrow(/prefix "a\{b\}:"/);
  });

  it('an unreadable plan is an error of its own', () => {
    expect(() => resolvePlanDefaults({ plan: join(dir, 'missing.json') }, { missing: MISSING })).toThrow(UserFacingError);
  });
});

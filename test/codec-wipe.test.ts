/**
 * Every use case that builds a codec from the key (verify, purge, rollback, rotate, apply, plan)
 * wipes it (EnvelopeCodec.wipe: the derived keys zeroed, the libsodium heap copies freed) however it
 * ends: on success and on each error path. The codecs are the real ones; the test only records which
 * ones were made (EnvelopeCodec.create) and reads their `wiped` state afterwards.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EnvelopeCodec, generateKeyFile, type KeyProvider } from '@session-migrate/envelope';
import { applyPlan, createPlan, purge, rollback, rotate } from '@session-migrate/migrate';
import { verifyMigration } from '@session-migrate/verify';
import { freePort, startRedis, type RedisServer } from './support/servers.ts';

const PREFIX = 'smwipe:';
let root: string;
let sessions: string;
let planFile: string;
let key: KeyProvider;
let redis: RedisServer;
let closedUrl: string;
const made: EnvelopeCodec[] = [];

/** Runs `fn`; returns how it ended and the codecs made meanwhile. */
async function codecsOf(fn: () => Promise<unknown>): Promise<{ threw: unknown; codecs: EnvelopeCodec[] }> {
  const from = made.length;
  let threw: unknown;
  try {
    await fn();
  } catch (err) {
    threw = err;
  }
  return { threw, codecs: made.slice(from) };
}

/** Expects at least one codec made, every one wiped, and the run to end as `expectThrow` says. */
async function expectWiped(fn: () => Promise<unknown>, expectThrow: RegExp | null): Promise<void> {
  const { threw, codecs } = await codecsOf(fn);
  if (expectThrow === null) expect(threw).toBeUndefined();
  else expect(String((threw as Error | undefined)?.message)).toMatch(expectThrow);
  expect(codecs.length).toBeGreaterThan(0);
  expect(codecs.map((c) => c.wiped)).toEqual(codecs.map(() => true));
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-codec-wipe-'));
  sessions = join(root, 'sessions');
  mkdirSync(sessions, { mode: 0o700 });
  for (let i = 0; i < 3; i++) {
    const path = join(sessions, `sess_codecwipe00000000000000${i}`);
    writeFileSync(path, `user|s:5:"user${i}";`, { mode: 0o600 });
    const t = Date.now() / 1000 - 60;
    utimesSync(path, t, t);
  }
  const keyFile = join(root, 'master.key');
  generateKeyFile(keyFile).fill(0);
  key = { kind: 'file', path: keyFile };
  planFile = join(root, 'plan.json');
  redis = await startRedis();
  closedUrl = `redis://127.0.0.1:${await freePort()}`;
  const create = EnvelopeCodec.create.bind(EnvelopeCodec);
  vi.spyOn(EnvelopeCodec, 'create').mockImplementation(async (...args) => {
    const codec = await create(...args);
    made.push(codec);
    return codec;
  });
  await createPlan({
    source: `files:${sessions}`,
    target: redis.url,
    key,
    prefix: PREFIX,
    out: planFile,
    gcMaxlifetime: 1440,
    serializeHandler: 'php',
    maxSessionBytes: 1 << 20,
    artifactsDir: join(root, 'artifacts'),
  });
  const applied = await applyPlan({ plan: planFile, dryRun: false, workers: 0 });
  expect(applied.ok).toBe(true);
});

afterAll(async () => {
  vi.restoreAllMocks();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('the key is wiped on every path', () => {
  it('plan and apply (the set-up above) wiped theirs', () => {
    expect(made.length).toBeGreaterThanOrEqual(2);
    expect(made.every((c) => c.wiped)).toBe(true);
  });

  it('verify: on success, with a bad --plaintext-prefix, and when Redis is not there', async () => {
    await expectWiped(() => verifyMigration({ plan: planFile }), null);
    await expectWiped(() => verifyMigration({ plan: planFile, plaintextPrefix: '' }), /prefix/i);
    // The target override's note goes to onWarning (not to process warnings, which would print in the run's log).
    const notes: string[] = [];
    await expectWiped(() => verifyMigration({ plan: planFile, target: closedUrl, onWarning: (l) => notes.push(l) }), /./);
    expect(notes).toEqual([expect.stringMatching(/^note: verify overrides the plan: --target/)]);
  });

  it('purge: on success (dry run) and when Redis is not there', async () => {
    await expectWiped(() => purge({ plan: planFile, dryRun: true, allowPartial: false }), null);
    await expectWiped(() => purge({ plan: planFile, target: closedUrl, dryRun: true, allowPartial: false }), /./);
  });

  it('rollback: on success (dry run), with a bad --to directory, and when Redis is not there', async () => {
    // The --remove-keys WARNING goes to onNotice (not to process warnings, which would print in the run's log).
    const notices: string[] = [];
    await expectWiped(() => rollback({ plan: planFile, removeKeys: true, dryRun: true, onNotice: (l) => notices.push(l) }), null);
    expect(notices).toEqual([expect.stringMatching(/^WARNING: --remove-keys deletes the migrated sessions/)]);
    await expectWiped(
      () => rollback({ plan: planFile, to: `files:${join(root, 'no', 'such', 'dir')}`, removeKeys: false, dryRun: true }),
      /./,
    );
    await expectWiped(() => rollback({ plan: planFile, target: closedUrl, removeKeys: true, dryRun: true }), /./);
  });

  it('rotate: on success and when Redis is not there', async () => {
    await expectWiped(() => rotate({ target: redis.url, key, prefix: PREFIX }), null);
    await expectWiped(() => rotate({ target: closedUrl, key, prefix: PREFIX }), /./);
  });
});

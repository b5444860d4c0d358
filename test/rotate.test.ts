/**
 * Online key rotation (docs/keys.md) against real redis-server and real PHP:
 * - rotation under load: PHP processes keep writing sessions through the generated handler (with
 *   the new key ring) while `session-migrate rotate` runs; afterwards every value opens under the new
 *   key ID and equals its last write (no lost update);
 * - TTLs kept to the millisecond budget, keys without TTL stay without;
 * - a crash in the middle, then a re-run finishes the job; a third run changes nothing;
 * - values that open with no key of the ring are reported and left untouched (exit 1);
 * - verify --require-key-id fails before the rotation and passes after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EnvelopeCodec, deriveLookupKey, formatKeyRing, loadSodium } from '@session-migrate/envelope';
import { rotateTarget } from '@session-migrate/migrate';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { startRedis, type RedisServer } from './support/servers.ts';
import { PHP_DIR, PHP_EXTENSIONS, renderInto, type Rendered } from './php/harness.ts';
import { BIN } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const sodium = await loadSodium();
const k0 = randomBytes(32);
const k1 = randomBytes(32);
const lookup = deriveLookupKey(sodium, k0);
const oldCodec = await EnvelopeCodec.create([k0]); // the deployment before rotation: a single key file
const newCodec = await EnvelopeCodec.fromRing({ lookupKey: lookup, current: k1, previous: [k0] });
const strangerCodec = await EnvelopeCodec.create([randomBytes(32)]);

let redis: RedisServer;
let dir: string;
let ringFile: string;
/** The target through the connection layer (what rotate takes). */
let conn: RedisConnection;

beforeAll(async () => {
  redis = await startRedis();
  conn = await RedisConnection.open(specFromUrl(redis.url, {}, 'target', { env: {} }));
  dir = mkdtempSync(join(tmpdir(), 'sm-rotate-'));
  ringFile = join(dir, 'ring');
  writeFileSync(ringFile, formatKeyRing(sodium, { lookupKey: lookup, current: k1, previous: [k0] }));
  chmodSync(ringFile, 0o600);
});
afterAll(async () => {
  conn?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sid = (i: number, tag: string) => `${tag}${String(i).padStart(6, '0')}abcdefghijklmnop`;

async function seed(ids: string[], ttlMs: (i: number) => number | undefined): Promise<Map<string, Buffer>> {
  const plaintexts = new Map<string, Buffer>();
  const pipe = redis.client.pipeline();
  ids.forEach((id, i) => {
    const key = oldCodec.keyName(PREFIX, id);
    const plaintext = Buffer.from(`n|i:0;id|s:${id.length}:"${id}";`);
    plaintexts.set(key, plaintext);
    const ttl = ttlMs(i);
    if (ttl === undefined) pipe.set(key, oldCodec.seal(key, plaintext));
    else pipe.set(key, oldCodec.seal(key, plaintext), 'PX', ttl);
  });
  await pipe.exec();
  return plaintexts;
}

describe('rotate', () => {
  it('keeps TTLs, survives a crash mid-run, is idempotent, and leaves values it cannot open untouched', async () => {
    await redis.client.flushdb();
    const ids = Array.from({ length: 240 }, (_, i) => sid(i, 'ttl'));
    const ttlOf = (i: number) => (i % 10 === 0 ? undefined : 600_000 + i * 1000);
    const plaintexts = await seed(ids, ttlOf);
    const keys = [...plaintexts.keys()];
    // A value sealed by a key outside the ring, plaintext planted under a session name, and a
    // non-session key under the prefix (another tool's marker): none may be touched.
    const strangerKey = newCodec.keyName(PREFIX, 'stranger0000000000000000001');
    const stranger = strangerCodec.seal(strangerKey, Buffer.from('x|i:1;'));
    await redis.client.set(strangerKey, stranger, 'EX', 3600);
    const plantedKey = `${PREFIX}{${'ab'.repeat(32)}}`;
    await redis.client.set(plantedKey, 'user|s:5:"admin";', 'EX', 3600);
    await redis.client.set(`${PREFIX}destroyed:{${'cd'.repeat(32)}}`, '1', 'EX', 3600);
    const started = Date.now(); // before the first PTTL below: every TTL has lost at most (now - started) since
    const before = new Map<string, number>();
    for (const k of keys) before.set(k, await redis.client.pttl(k));

    // Crash after the first batch.
    let batches = 0;
    await expect(
      rotateTarget({
        client: conn,
        codec: newCodec,
        prefix: PREFIX,
        scanCount: 40,
        onProgress: () => {
          if (++batches === 1) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const underNew = async () => {
      let n = 0;
      for (const k of keys) if ((await redis.client.getBuffer(k))!.subarray(3, 11).toString('hex') === newCodec.keyId) n++;
      return n;
    };
    const afterCrash = await underNew();
    expect(afterCrash).toBeGreaterThan(0);
    expect(afterCrash).toBeLessThan(keys.length);

    // Re-run: finishes, reports the three foreign values, touches none of them.
    const rerun = await rotateTarget({ client: conn, codec: newCodec, prefix: PREFIX, scanCount: 40 });
    expect(rerun.ok).toBe(false);
    expect(rerun.counts).toMatchObject({
      sessionKeys: keys.length + 2,
      otherKeys: 1,
      reEncrypted: keys.length - afterCrash,
      alreadyCurrent: afterCrash,
      notOpened: 2,
      notOpenedByReason: { 'unknown-key-id': 1, 'not-envelope': 1 },
      changedByPhp: 0,
      remainingOld: 0,
      failed: 0,
    });
    expect(rerun.problems.map((p) => p.key).sort()).toEqual([plantedKey, strangerKey].sort());
    expect(rerun).toMatchObject({ unknownKeyIds: { [strangerCodec.keyId]: 1 }, keyRingIds: [newCodec.keyId, oldCodec.keyId] });
    expect((await redis.client.getBuffer(strangerKey))!.equals(stranger)).toBe(true);
    expect(await redis.client.get(plantedKey)).toBe('user|s:5:"admin";');

    for (const [i, k] of keys.entries()) {
      const value = (await redis.client.getBuffer(k))!;
      const opened = newCodec.open(k, value);
      expect(opened).toMatchObject({ ok: true, keyId: newCodec.keyId });
      if (opened.ok) expect(opened.plaintext.equals(plaintexts.get(k)!)).toBe(true);
      const pttl = await redis.client.pttl(k);
      const elapsed = Date.now() - started;
      if (ttlOf(i) === undefined) expect(pttl).toBe(-1);
      else {
        // Kept, not reset: never more than before, and no less than what the elapsed time took (1 ms rounding).
        expect(pttl).toBeLessThanOrEqual(before.get(k)!);
        expect(pttl).toBeGreaterThanOrEqual(before.get(k)! - elapsed - 1);
      }
    }

    // Third run: nothing to do.
    const third = await rotateTarget({ client: conn, codec: newCodec, prefix: PREFIX });
    expect(third.counts).toMatchObject({ reEncrypted: 0, alreadyCurrent: keys.length, notOpened: 2 });
  });

  it('CLI: verify --require-key-id fails before and passes after; rotate exits 1 on a value it cannot open', async () => {
    await redis.client.flushdb();
    const keys = [
      ...(
        await seed(
          Array.from({ length: 30 }, (_, i) => sid(i, 'cli')),
          () => 900_000,
        )
      ).keys(),
    ];
    const verify = (extra: string[]) => cli(['verify', '--target', redis.url, '--key-ring', ringFile, '--json', ...extra]);
    const pre = verify(['--require-key-id', newCodec.keyId]);
    expect(pre.status).toBe(1);
    expect(JSON.parse(pre.stdout)).toMatchObject({ ok: false, keyIds: { [oldCodec.keyId]: 30 }, failureCounts: { 'other-key-id': 30 } });

    const r = cli(['rotate', '--target', redis.url, '--key-ring', ringFile, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      currentKeyId: newCodec.keyId,
      lookupId: newCodec.lookupId,
      counts: { reEncrypted: 30, keyIdsBefore: { [oldCodec.keyId]: 30 } },
    });
    expect(r.stderr).toMatch(/^rotate: done: 30 session keys, 30 re-encrypted$/m);
    const post = verify(['--require-key-id', newCodec.keyId]);
    expect(post.status, post.stdout).toBe(0);
    expect(JSON.parse(post.stdout)).toMatchObject({ ok: true, keyIds: { [newCodec.keyId]: 30 } });
    // The old key file (what the plan still names after keys ring rotate): before, one FAIL line per
    // value (up to 1,000) and nothing naming the key IDs or the next step. Now one line.
    const oldKeyFile = join(dir, 'old.key');
    writeFileSync(oldKeyFile, `${k0.toString('base64')}\n`, { mode: 0o600 });
    const old = cli(['verify', '--target', redis.url, '--key-file', oldKeyFile]);
    expect(old.status, old.stderr).toBe(1);
    expect(old.stdout).toContain('  failures    unknown-key-id 30\n');
    const fails = old.stdout.split('\n').filter((l) => l.startsWith('  FAIL '));
    expect(fails, old.stdout).toHaveLength(1);
    const keyName = `smsess:\\{[0-9a-f]{64}\\}`;
    expect(fails[0]).toMatch(
      new RegExp(
        `^ {2}FAIL {8}unknown-key-id: 30 value\\(s\\) sealed under key ID ${newCodec.keyId} \\(30\\), which the key given \\(key ID ${oldCodec.keyId}\\) does not hold \\((${keyName}, ){2}${keyName} and 27 more\\): if keys ring rotate \\(then rotate\\) made that key current, pass the key ring that holds it: --key-ring FILE \\(it overrides the plan's key\\)$`,
      ),
    );
    expect(verify(['--require-key-id', 'nothex']).stderr).toMatch(/--require-key-id must be a key ID/);

    await redis.client.set(keys[0]!, 'plain', 'EX', 60);
    const bad = cli(['rotate', '--target', redis.url, '--key-ring', ringFile]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('NOT OPENED  1 value(s) open with no key of the ring (not-envelope 1); left untouched');
    expect(await redis.client.get(keys[0]!)).toBe('plain');

    // A ring without the key the values are sealed under (keys ring rotate to a new key, then keys
    // ring retire of the one they are still under): before, one FAIL line per value (up to 1,000),
    // 'before by key ID: none' and 'rotate: done' on stderr beside INCOMPLETE. Now one line per reason.
    const retiredRing = join(dir, 'retired-ring');
    const k2 = randomBytes(32);
    writeFileSync(retiredRing, formatKeyRing(sodium, { lookupKey: lookup, current: k2, previous: [] }), { mode: 0o600 });
    const k2Id = (await EnvelopeCodec.fromRing({ lookupKey: lookup, current: k2, previous: [] })).keyId;
    const wall = cli(['rotate', '--target', redis.url, '--key-ring', retiredRing]);
    expect(wall.status, wall.stderr).toBe(1);
    expect(wall.stderr).toMatch(/^rotate: INCOMPLETE: 30 session keys, 0 re-encrypted, 30 not re-encrypted \(see the report\)$/m);
    expect(wall.stderr).not.toMatch(/done/);
    expect(wall.stdout).toContain('session-migrate rotate: INCOMPLETE\n');
    expect(wall.stdout).toContain(`  before      by key ID: none; not in the ring: ${newCodec.keyId} 29\n`);
    const wallFails = wall.stdout.split('\n').filter((l) => l.startsWith('  FAIL '));
    expect(wallFails, wall.stdout).toHaveLength(2);
    expect(wallFails[0]).toMatch(
      new RegExp(
        `^ {2}FAIL {8}unknown-key-id: 29 value\\(s\\) sealed under key ID ${newCodec.keyId} \\(29\\), which the key given \\(key ID ${k2Id}\\) does not hold \\((${keyName}, ){2}${keyName} and 26 more\\): left untouched; pass the key ring that holds it: --key-ring FILE \\(a ring from before keys ring retire dropped that key, or the ring PHP seals with\\), then run rotate again$`,
      ),
    );
    expect(wallFails[1]).toBe(
      `  FAIL        not-envelope: 1 value(s) are no envelope of session-migrate (${keys[0]}): left untouched; is --prefix the encrypted sessions' prefix? verify --target ... names what they are`,
    );
  });

  it('rotate --plan takes the target (with its ACL user), key and prefix from the plan; its next hint keeps the user', async () => {
    await redis.client.flushdb();
    await seed(
      Array.from({ length: 5 }, (_, i) => sid(i, 'pln')),
      () => 900_000,
    );
    await redis.client.call('ACL', 'SETUSER', 'rotator', 'on', '>rotator-pw', '~smsess:*', '+@all', '-@dangerous', '+info');
    try {
      const empty = join(dir, 'plan-src');
      rmSync(empty, { recursive: true, force: true });
      spawnSync('mkdir', ['-p', empty]);
      const planFile = join(dir, 'rotate.plan.json');
      const env = { ...process.env, SESSION_MIGRATE_REDIS_PASSWORD: 'rotator-pw' };
      const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env });
      const target = redis.url.replace('redis://', 'redis://rotator@');
      const plan = run([
        'plan',
        '--source',
        `files:${empty}`,
        '--target',
        target,
        '--key-ring',
        ringFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(dir, 'art'),
      ]);
      expect(plan.status, plan.stderr).toBe(0);
      const r = run(['rotate', '--plan', planFile]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('5 sessions');
      expect(r.stdout).toMatch(/next {8}session-migrate verify --target redis:\/\/rotator@127\.0\.0\.1:\d+\/0 /);
      expect(r.stdout + r.stderr).not.toContain('rotator-pw');
      // Without a plan, a target and a key are needed, as before.
      const none = run(['rotate']);
      expect(none.status).toBe(2);
      expect(none.stderr).toMatch(/rotate needs --target and a key ring .*or --plan/);
    } finally {
      await redis.client.call('ACL', 'DELUSER', 'rotator');
    }
  });

  it('under load: PHP keeps writing through the generated handler with the new ring; no update is lost', async () => {
    await redis.client.flushdb();
    const ids = Array.from({ length: 300 }, (_, i) => sid(i, 'load'));
    await seed(ids, () => 3_600_000);
    // PHP works on two thirds of the sessions; the others are idle and only rotate re-encrypts them.
    const active = ids.filter((_, i) => i % 3 !== 2);
    // The bootstrap as generated for the deployment before rotation (single key k0): the rotated ring
    // has the same lookup ID, so it passes the bootstrap's check without regenerating anything.
    expect(newCodec.lookupId).toBe(oldCodec.lookupId);
    const rendered: Rendered = renderInto({ redis: { host: '127.0.0.1', port: redis.port }, expectedLookupIds: [oldCodec.lookupId] });
    const stopFile = join(dir, 'stop');
    const progressFiles = [0, 1, 2].map((w) => join(dir, `progress-${w}`));
    let workers: Array<Promise<{ code: number | null; stdout: string; stderr: string }>> = [];
    const startWorkers = () =>
      [0, 1, 2].map((w) => {
        const mine = active.filter((_, i) => i % 3 === w);
        const child = spawn(
          'php',
          [
            '-n',
            '-c',
            rendered.iniFile,
            ...PHP_EXTENSIONS,
            '-d',
            'display_errors=stderr',
            '-d',
            'log_errors=0',
            join(PHP_DIR, 'rotate-writer.php'),
            stopFile,
            progressFiles[w]!,
            ...mine,
          ],
          {
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SESSION_MIGRATE_KEY_RING_FILE: ringFile },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
        });
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
        });
        return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
          child.on('close', (code) => resolve({ code, stdout, stderr })),
        );
      });
    const passes = (w: number) => {
      try {
        return Number(readFileSync(progressFiles[w]!, 'utf8'));
      } catch {
        return 0;
      }
    };
    /** Waits (polling, no deadline of ours: the test timeout bounds it) until every worker finished one more pass. */
    const onePassMore = async () => {
      const from = [0, 1, 2].map(passes);
      while ([0, 1, 2].some((w) => passes(w) <= from[w]!)) await new Promise((r) => setTimeout(r, 5));
    };
    let report;
    try {
      // Between reading each batch and writing it back, PHP rewrites every active session once: the
      // first batch was read before PHP started, so its active sessions must come out as changed-by-php.
      report = await rotateTarget({
        client: conn,
        codec: newCodec,
        prefix: PREFIX,
        scanCount: 20,
        beforeWrite: async () => {
          if (workers.length === 0) workers = startWorkers();
          await onePassMore();
        },
      });
    } finally {
      writeFileSync(stopFile, '');
      if (workers.length === 0) workers = startWorkers();
    }
    const results = await Promise.all(workers);
    expect(report.ok).toBe(true);
    expect(report.counts.sessionKeys).toBe(300);
    expect(report.counts.changedByPhp).toBeGreaterThan(0);
    expect(report.counts.reEncrypted).toBeGreaterThanOrEqual(100);
    expect(report.counts.gone + report.counts.remainingOld + report.counts.notOpened).toBe(0);

    const last = new Map<string, string>();
    for (const res of results) {
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toBe('');
      const out = JSON.parse(res.stdout) as { passes: number; writes: number; failures: number; last: Record<string, string> };
      expect(out.failures).toBe(0);
      expect(out.passes).toBeGreaterThanOrEqual(2);
      for (const [id, hex] of Object.entries(out.last)) last.set(id, hex);
    }
    expect(last.size).toBe(active.length);
    let lost = 0;
    for (const [i, id] of ids.entries()) {
      const key = newCodec.keyName(PREFIX, id);
      const opened = newCodec.open(key, (await redis.client.getBuffer(key))!);
      expect(opened).toMatchObject({ ok: true, keyId: newCodec.keyId });
      const expected = i % 3 === 2 ? Buffer.from(`n|i:0;id|s:${id.length}:"${id}";`).toString('hex') : last.get(id);
      if (!opened.ok || opened.plaintext.toString('hex') !== expected) lost++;
    }
    expect(lost).toBe(0);
    expect(await redis.client.dbsize()).toBe(300);
    rmSync(rendered.dir, { recursive: true, force: true });
  });
});

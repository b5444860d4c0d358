/**
 * The generated PHP handler class against the envelope spec: the shared vectors, interop with the
 * TypeScript EnvelopeCodec through a real Redis (binary values, BUG-24), key loading (BUG-22) and the
 * handler methods called directly. Real php and redis-server; no mocks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { PHP_DIR, PHP_EXTENSIONS, lastJson, renderInto, runPhp, vectors, type Rendered } from './php/harness.ts';

interface OpenResult {
  ok: boolean;
  plaintext: string | null;
  reason: string | null;
  keyId: string | null;
}
interface OpsOutput {
  construct: string | null;
  results: unknown[];
  logs: string[];
}
interface OpsRequest {
  keys: string[];
  prefix?: string;
  namespace?: string;
  locking?: Record<string, unknown>;
  ops: Array<Record<string, unknown>>;
}

const MASTER = vectors.master_key_base64;
const OTHER = vectors.other_master_key_base64;
const hex = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('hex');

let redis: RedisServer;
let rendered: Rendered;
let codec: EnvelopeCodec;
let tmp: string;

function ops(request: OpsRequest, env: Record<string, string> = {}): OpsOutput {
  const run = runPhp(
    [
      ...PHP_EXTENSIONS,
      '-d',
      'error_reporting=-1',
      '-d',
      'display_errors=stderr',
      join(PHP_DIR, 'envelope-ops.php'),
      rendered.autoloadFile,
    ],
    { input: JSON.stringify({ redisPort: redis.port, ...request }), env },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return lastJson<OpsOutput>(run);
}

beforeAll(async () => {
  redis = await startRedis();
  rendered = renderInto({ redis: { host: '127.0.0.1', port: redis.port } });
  codec = await EnvelopeCodec.create([Buffer.from(MASTER, 'base64')]);
  tmp = mkdtempSync(join(tmpdir(), 'sm-php-handler-'));
});

afterAll(async () => {
  await redis?.stop();
  if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('shared vectors (docs/envelope-vectors.json) in PHP', () => {
  it('derives the published key ID', () => {
    const out = ops({ keys: [MASTER], ops: [{ op: 'keyIds' }] });
    expect(out.results[0]).toEqual({ keyId: vectors.key_id, keyIds: [vectors.key_id] });
    const other = ops({ keys: [OTHER], ops: [{ op: 'keyIds' }] });
    expect(other.results[0]).toEqual({ keyId: vectors.other_key_id, keyIds: [vectors.other_key_id] });
  });

  it('names keys, seals with the vector nonce and opens every valid vector', () => {
    for (const v of vectors.valid) {
      const out = ops({
        keys: [MASTER],
        prefix: v.prefix,
        ops: [
          { op: 'keyName', sessionId: v.session_id },
          { op: 'seal', redisKey: v.redis_key, plaintextHex: v.plaintext_hex, nonceHex: v.nonce_hex },
          { op: 'open', redisKey: v.redis_key, envelopeHex: v.envelope_hex },
        ],
      });
      expect(out.results[0], v.name).toBe(v.redis_key);
      expect(out.results[1], v.name).toBe(v.envelope_hex);
      expect(out.results[2], v.name).toEqual({ ok: true, plaintext: v.plaintext_hex, reason: null, keyId: vectors.key_id });
      expect(out.logs).toEqual([]);
    }
  });

  it('rejects every invalid vector with its failure name', () => {
    const out = ops({
      keys: [MASTER],
      ops: vectors.invalid.map((v) => ({ op: 'open', redisKey: v.redis_key, envelopeHex: v.envelope_hex })),
    });
    expect(out.results).toHaveLength(vectors.invalid.length);
    vectors.invalid.forEach((v, i) => {
      const r = out.results[i] as OpenResult;
      expect({ name: v.name, ok: r.ok, reason: r.reason, plaintext: r.plaintext }).toEqual({
        name: v.name,
        ok: false,
        reason: v.expect,
        plaintext: null,
      });
      if (v.expect === 'not-envelope') expect(r.keyId).toBeNull();
      else expect(r.keyId).toBe(Buffer.from(v.envelope_hex, 'hex').subarray(3, 11).toString('hex'));
    });
  });

  it('opens values of every key in a ring, and writes and names keys with the first one', () => {
    const v = vectors.valid[0]!;
    const sealedByOther = vectors.invalid.find((x) => x.expect === 'unknown-key-id' && x.name.includes('another master key'))!;
    const out = ops({
      keys: [OTHER, MASTER],
      ops: [
        { op: 'keyIds' },
        { op: 'open', redisKey: v.redis_key, envelopeHex: v.envelope_hex },
        { op: 'open', redisKey: sealedByOther.redis_key, envelopeHex: sealedByOther.envelope_hex },
        { op: 'seal', redisKey: v.redis_key, plaintextHex: v.plaintext_hex, nonceHex: v.nonce_hex },
        { op: 'keyName', sessionId: v.session_id },
      ],
    });
    expect(out.results[0]).toEqual({ keyId: vectors.other_key_id, keyIds: [vectors.other_key_id, vectors.key_id] });
    expect(out.results[1]).toMatchObject({ ok: true, plaintext: v.plaintext_hex, keyId: vectors.key_id });
    expect(out.results[2]).toMatchObject({ ok: true, keyId: vectors.other_key_id });
    const sealed = Buffer.from(out.results[3] as string, 'hex');
    expect(sealed.subarray(3, 11).toString('hex')).toBe(vectors.other_key_id);
    expect(out.results[4]).not.toBe(v.redis_key);
  });
});

describe('PHP <-> TypeScript interop', () => {
  const plaintext = Buffer.from('uid|i:42;name|s:4:"Zoë";cart|a:1:{i:0;s:3:"\u0000x\u00ff";}', 'utf8');

  it('PHP seals with a fresh random nonce each time, and TypeScript opens what PHP sealed', () => {
    const key = codec.keyName('smsess:', 'interop0000000000000000000001');
    const out = ops({ keys: [MASTER], ops: [1, 2, 3].map(() => ({ op: 'seal', redisKey: key, plaintextHex: hex(plaintext) })) });
    const envelopes = (out.results as string[]).map((h) => Buffer.from(h, 'hex'));
    expect(new Set(envelopes.map((e) => e.subarray(11, 35).toString('hex'))).size).toBe(3);
    for (const e of envelopes) {
      expect(e.length).toBe(plaintext.length + 51);
      expect(codec.open(key, e)).toEqual({ ok: true, plaintext, keyId: vectors.key_id });
      expect(codec.open(key + 'x', e)).toMatchObject({ ok: false, reason: 'auth-failed' });
    }
  });

  it('PHP opens what TypeScript sealed with a random nonce', () => {
    const key = codec.keyName('smsess:', 'interop0000000000000000000002');
    const sealed = codec.seal(key, plaintext);
    const out = ops({
      keys: [MASTER],
      ops: [
        { op: 'open', redisKey: key, envelopeHex: hex(sealed) },
        { op: 'open', redisKey: key.replace('smsess:', 'other:'), envelopeHex: hex(sealed) },
      ],
    });
    expect(out.results[0]).toEqual({ ok: true, plaintext: hex(plaintext), reason: null, keyId: vectors.key_id });
    expect(out.results[1]).toMatchObject({ ok: false, reason: 'auth-failed' });
  });

  it('TypeScript writes a Buffer to Redis, the PHP handler reads the session from it', async () => {
    const sessionId = 'tswrite0000000000000000000001';
    const key = codec.keyName('smsess:', sessionId);
    const sealed = codec.seal(key, plaintext);
    await redis.client.set(key, sealed, 'EX', 600);
    const out = ops({
      keys: [MASTER],
      ops: [
        { op: 'rawGet', redisKey: key },
        { op: 'validateId', sessionId },
        { op: 'read', sessionId },
      ],
    });
    expect(out.results[0]).toBe(hex(sealed)); // phpredis sees the exact bytes (BUG-24)
    expect(out.results[1]).toBe(true);
    expect(out.results[2]).toBe(hex(plaintext));
    expect(out.logs).toEqual([]);
  });

  it('the PHP handler writes, TypeScript reads the binary value with getBuffer and opens it', async () => {
    const sessionId = 'phpwrite000000000000000000001';
    const key = codec.keyName('smsess:', sessionId);
    const out = ops({ keys: [MASTER], ops: [{ op: 'write', sessionId, dataHex: hex(plaintext) }] }, {});
    expect(out.results[0]).toBe(true);
    const stored = await redis.client.getBuffer(key);
    expect(stored).not.toBeNull();
    expect(stored!.length).toBe(plaintext.length + 51);
    expect(codec.open(key, stored!)).toEqual({ ok: true, plaintext, keyId: vectors.key_id });
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(1400); // php -n: session.gc_maxlifetime = 1440
    expect(ttl).toBeLessThanOrEqual(1440);
  });
});

describe('handler methods (called directly)', () => {
  it('read: miss is "", a value that does not open is "" plus one warning without the value', async () => {
    const planted = 'uid|i:1;admin|b:1;';
    const plantedId = 'planted00000000000000000000001';
    await redis.client.set(codec.keyName('smsess:', plantedId), Buffer.from(planted));
    const out = ops({
      keys: [MASTER],
      ops: [
        { op: 'read', sessionId: 'missing000000000000000000000001' },
        { op: 'read', sessionId: plantedId },
      ],
    });
    expect(out.results).toEqual(['', '']);
    expect(out.logs).toHaveLength(1);
    expect(out.logs[0]).toContain('not-envelope');
    expect(out.logs[0]).toContain(codec.keyName('smsess:', plantedId));
    expect(out.logs[0]).toContain(vectors.key_id); // the key IDs held
    expect(out.logs[0]).not.toContain('uid|i:1');
    expect(out.logs[0]).not.toContain(plantedId);
  });

  it('validateId is EXISTS, never constant; destroy deletes; gc returns 0', async () => {
    const sessionId = 'validate00000000000000000000001';
    const out = ops({
      keys: [MASTER],
      ops: [
        { op: 'validateId', sessionId },
        { op: 'write', sessionId, dataHex: hex('a|i:1;') },
        { op: 'validateId', sessionId },
        { op: 'destroy', sessionId },
        { op: 'validateId', sessionId },
        { op: 'destroy', sessionId },
        { op: 'gc' },
      ],
    });
    expect(out.results).toEqual([false, true, true, true, false, true, 0]);
    expect(await redis.client.exists(codec.keyName('smsess:', sessionId))).toBe(0);
  });

  it('updateTimestamp refreshes the TTL, and stores the session again when the key vanished', async () => {
    const sessionId = 'touch0000000000000000000000001';
    const key = codec.keyName('smsess:', sessionId);
    const data = Buffer.from('uid|i:7;');
    const first = ops({ keys: [MASTER], ops: [{ op: 'write', sessionId, dataHex: hex(data) }] });
    expect(first.results).toEqual([true]);
    const before = await redis.client.getBuffer(key);
    await redis.client.expire(key, 100);
    const touched = ops({ keys: [MASTER], ops: [{ op: 'updateTimestamp', sessionId, dataHex: hex(data) }] });
    expect(touched.results).toEqual([true]);
    expect(await redis.client.ttl(key)).toBeGreaterThan(1400);
    expect((await redis.client.getBuffer(key))!.equals(before!)).toBe(true); // refreshed, not rewritten

    await redis.client.del(key);
    const again = ops({ keys: [MASTER], ops: [{ op: 'updateTimestamp', sessionId, dataHex: hex(data) }] });
    expect(again.results).toEqual([true]);
    const restored = await redis.client.getBuffer(key);
    expect(restored).not.toBeNull();
    expect(codec.open(key, restored!)).toEqual({ ok: true, plaintext: data, keyId: vectors.key_id });
    expect(await redis.client.ttl(key)).toBeGreaterThan(1400);
  });

  it('a Redis that went away: read returns false, session_start() fails visibly, the failure is logged', async () => {
    const doomed = await startRedis();
    try {
      const sessionId = 'redisgone0000000000000000000001';
      const run = runPhp(
        [
          ...PHP_EXTENSIONS,
          '-d',
          'error_reporting=-1',
          '-d',
          'display_errors=stderr',
          join(PHP_DIR, 'envelope-ops.php'),
          rendered.autoloadFile,
        ],
        {
          input: JSON.stringify({
            redisPort: doomed.port,
            keys: [MASTER],
            ops: [
              { op: 'shutdownRedis' },
              { op: 'read', sessionId },
              { op: 'sessionStart', sessionId },
              { op: 'write', sessionId, dataHex: '' },
              { op: 'destroy', sessionId },
              { op: 'validateId', sessionId },
              { op: 'updateTimestamp', sessionId, dataHex: '' },
            ],
          }),
        },
      );
      const out = lastJson<OpsOutput>(run);
      expect(out.results[1]).toBe(false);
      expect(out.results[2]).toMatchObject({ started: false, active: false });
      // open() connects first, so PHP reports the storage module (before any ID is looked at)
      expect((out.results[2] as { warnings: string[] }).warnings.join('\n')).toMatch(/Failed to initialize storage module: user/);
      // write, destroy and updateTimestamp fail; validateId answers true: an error must never make
      // PHP issue a new session ID (a logout); the read() PHP calls next fails instead
      expect(out.results.slice(3)).toEqual([false, false, true, false]);
      expect(out.logs.length).toBeGreaterThanOrEqual(6);
      expect(out.logs[0]).toMatch(/^session-migrate: Redis READ of smsess:\{[0-9a-f]{64}\} failed: /);
      expect(out.logs.join('\n')).not.toContain(sessionId);
    } finally {
      await doomed.stop();
    }
  });

  it('stores raw envelopes even where phpredis would serialize: the handler opens its own raw connection', async () => {
    // The handler never shares the application's client (with its serializer or OPT_PREFIX): the
    // ConnectionFactory makes its own, with no serializer, no compression and no prefix.
    const sessionId = 'rawconn00000000000000000000001';
    const out = ops({ keys: [MASTER], ops: [{ op: 'write', sessionId, dataHex: hex('a|i:1;') }] });
    expect(out.results).toEqual([true]);
    const stored = await redis.client.getBuffer(codec.keyName('smsess:', sessionId));
    expect(stored!.subarray(0, 3).toString('latin1')).toBe('SM\x01');
  });

  it('refuses master keys that are not 32 raw bytes, and an empty ring', () => {
    const short = ops({ keys: [Buffer.alloc(31).toString('base64')], ops: [] });
    expect(short.construct).toMatch(/InvalidArgumentException: .*master key #0 is not 32 raw bytes/);
    const ring = ops({ keys: [MASTER, Buffer.alloc(33).toString('base64')], ops: [] });
    expect(ring.construct).toMatch(/master key #1 is not 32 raw bytes/);
    expect(ops({ keys: [], ops: [] }).construct).toMatch(/the master key ring is empty/);
  });
});

describe('KeyRingLoader::fromEnvironment() with a single key (strict base64, BUG-22)', () => {
  // The current key ID of the ring read from the environment (a single key is a ring of one).
  const script = () =>
    `require getenv('AUTOLOAD_FILE'); try { $r = \\SessionMigrate\\KeyRingLoader::fromEnvironment(); echo json_encode(['ok' => bin2hex($r->currentKeyId())]); } catch (\\Throwable $e) { echo json_encode(['error' => get_class($e) . ': ' . $e->getMessage()]); }`;
  const load = (env: Record<string, string>) => {
    const run = runPhp([...PHP_EXTENSIONS, '-d', 'error_reporting=-1', '-d', 'display_errors=stderr', '-r', script()], {
      env: { AUTOLOAD_FILE: rendered.autoloadFile, ...env },
    });
    expect(run.stderr).toBe('');
    return lastJson<{ ok?: string; error?: string }>(run);
  };
  const keyHex = vectors.key_id;
  const keyFile = (name: string, text: string, mode: number) => {
    const path = join(tmp, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  it('reads the base64 text from SESSION_MIGRATE_KEY', () => {
    expect(load({ SESSION_MIGRATE_KEY: MASTER })).toEqual({ ok: keyHex });
  });

  it('reads the file named by SESSION_MIGRATE_KEY_FILE (trailing newline; group-readable is allowed)', () => {
    expect(load({ SESSION_MIGRATE_KEY_FILE: keyFile('k600', `${MASTER}\n`, 0o600) })).toEqual({ ok: keyHex });
    expect(load({ SESSION_MIGRATE_KEY_FILE: keyFile('k640', `${MASTER}\n`, 0o640) })).toEqual({ ok: keyHex });
  });

  it('rejects malformed text without echoing it', () => {
    const urlSafe = Buffer.from(OTHER, 'base64').toString('base64url'); // what libsodium.js emits by default
    const malformed = [
      urlSafe,
      urlSafe + '=',
      MASTER.slice(0, -1),
      MASTER + MASTER,
      Buffer.alloc(33, 7).toString('base64'),
      `${MASTER.slice(0, 20)} ${MASTER.slice(20)}`,
    ];
    for (const text of malformed) {
      const out = load({ SESSION_MIGRATE_KEY: text });
      expect(out.ok, text).toBeUndefined();
      expect(out.error).toMatch(/^RuntimeException: session-migrate: environment variable SESSION_MIGRATE_KEY: not a session-migrate key/);
      for (const part of [text, text.slice(0, 12), text.slice(-12)]) expect(out.error).not.toContain(part);
    }
    const file = keyFile('bad', `${urlSafe}\n`, 0o600);
    const fromFile = load({ SESSION_MIGRATE_KEY_FILE: file });
    expect(fromFile.error).toContain(`key file ${file}: not a session-migrate key`);
    expect(fromFile.error).not.toContain(urlSafe.slice(0, 12));
  });

  it('rejects a key file others can read, a missing file, both variables, and neither', () => {
    expect(load({ SESSION_MIGRATE_KEY_FILE: keyFile('k644', `${MASTER}\n`, 0o644) }).error).toMatch(/accessible to others \(mode 0644\)/);
    expect(load({ SESSION_MIGRATE_KEY_FILE: join(tmp, 'nope') }).error).toMatch(/not a regular file or does not exist/);
    const both = load({ SESSION_MIGRATE_KEY: MASTER, SESSION_MIGRATE_KEY_FILE: keyFile('k2', MASTER, 0o600) });
    expect(both.error).toMatch(/SESSION_MIGRATE_KEY_FILE and SESSION_MIGRATE_KEY are all set; set only one/);
    expect(both.error).not.toContain(MASTER);
    expect(load({}).error).toMatch(
      /no master key: set SESSION_MIGRATE_KEY_FILE or SESSION_MIGRATE_KEY_RING_FILE \(preferred\), SESSION_MIGRATE_KEY or SESSION_MIGRATE_KEY_PROVIDER/,
    );
  });
});

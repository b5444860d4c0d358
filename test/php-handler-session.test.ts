/**
 * The generated handler through PHP's real session machinery: the rendered ini fragment (-c) loads
 * the rendered bootstrap as auto_prepend_file, which registers the handler; test/php/session-request.php
 * then plays one request of an application (php CLI), and php-cgi plays real HTTP requests with
 * cookies. A real redis-server holds the sessions. Cases: BUG-18 (lazy_write), BUG-19 (strict mode,
 * read miss), BUG-24 (binary values), failure modes (tampered, planted, wrong key, Redis down).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, deriveLookupKey, formatKeyRing, loadSodium } from '@session-migrate/envelope';
import { DEFAULT_FILES_HANDLER_TRAP_PATH, type RedisTargetOptions } from '@session-migrate/generate';
import { freePort, startRedis, type RedisServer } from './support/servers.ts';
import { PHP_DIR, PHP_EXTENSIONS, lastJson, renderInto, runPhp, sessionRequest, vectors, type Rendered } from './php/harness.ts';

const MASTER = vectors.master_key_base64;
const OTHER = vectors.other_master_key_base64;
const PREFIX = 'smsess:';
const MAXLIFETIME = 1000;

interface RequestOut {
  started: boolean;
  idBefore: string;
  idAfter: string;
  session: Record<string, unknown> | unknown[] | null;
  encoded: string | null;
  closed: boolean | null;
  regenerated?: boolean | null;
  destroyed?: boolean | null;
}
interface Request {
  out: RequestOut;
  stderr: string;
  logs: string[];
}

let redis: RedisServer;
let rendered: Rendered;
let codec: EnvelopeCodec;
let sandbox: string;

/**
 * One application request through the rendered ini + bootstrap. PHP's own diagnostics go to stderr
 * (display_errors=stderr); the handler's log lines (error_log()) go to a fresh file, returned as lines.
 */
function request(
  r: Rendered,
  args: string[],
  env: Record<string, string> = { SESSION_MIGRATE_KEY: MASTER },
  script = join(PHP_DIR, 'session-request.php'),
): Request {
  return sessionRequest<RequestOut>(r, args, { dir: sandbox, env, ini: [`session.gc_maxlifetime=${MAXLIFETIME}`], script });
}

/** Starts a session with data and returns its ID and Redis key name. */
function newSession(data: Record<string, unknown>, r: Rendered = rendered): { id: string; key: string } {
  const res = request(r, [`--set=${JSON.stringify(data)}`]);
  expect(res.out.started).toBe(true);
  expect(res.stderr).toBe('');
  return { id: res.out.idAfter, key: codec.keyName(PREFIX, res.out.idAfter) };
}

beforeAll(async () => {
  redis = await startRedis();
  rendered = renderInto({ redis: { host: '127.0.0.1', port: redis.port, timeoutSeconds: 2 } });
  codec = await EnvelopeCodec.create([Buffer.from(MASTER, 'base64')]);
  sandbox = mkdtempSync(join(tmpdir(), 'sm-php-session-'));
});

afterAll(async () => {
  await redis?.stop();
  if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
  if (sandbox) rmSync(sandbox, { recursive: true, force: true });
});

describe('sessions through session_start() with the generated ini, bootstrap and class', () => {
  it('writes an encrypted session and reads it back in the next request', async () => {
    const first = request(rendered, ['--set={"uid":42,"name":"Zoë"}']);
    expect(first.out).toMatchObject({ started: true, idBefore: '', session: [], closed: true });
    expect(first.out.idAfter).toMatch(/^[0-9a-v]{26,}$/);
    expect(first.stderr).toBe(''); // no deprecation, warning or notice under error_reporting=-1
    expect(first.logs).toEqual([]);

    const key = codec.keyName(PREFIX, first.out.idAfter);
    const stored = await redis.client.getBuffer(key);
    expect(stored).not.toBeNull();
    expect(codec.open(key, stored!)).toEqual({ ok: true, plaintext: Buffer.from('uid|i:42;name|s:4:"Zoë";'), keyId: vectors.key_id });
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(MAXLIFETIME - 10);
    expect(ttl).toBeLessThanOrEqual(MAXLIFETIME);
    expect((await redis.client.keys('*')).some((k) => k.includes(first.out.idAfter))).toBe(false); // no session ID in Redis

    const second = request(rendered, [`--id=${first.out.idAfter}`]);
    expect(second.out).toMatchObject({ started: true, idAfter: first.out.idAfter, session: { uid: 42, name: 'Zoë' } });
    expect(second.stderr).toBe('');
    expect(second.logs).toEqual([]);
  });

  it('strict mode: an unknown ID is rejected (validateId = EXISTS), a new one starts an empty session (BUG-19)', async () => {
    const unknown = 'unknown00000000000000000000001';
    const res = request(rendered, [`--id=${unknown}`]);
    expect(res.out.started).toBe(true);
    expect(res.out.session).toEqual([]);
    expect(res.out.idAfter).not.toBe(unknown);
    expect(res.stderr).toBe('');
    expect(await redis.client.exists(codec.keyName(PREFIX, unknown))).toBe(0);
    const fresh = await redis.client.getBuffer(codec.keyName(PREFIX, res.out.idAfter));
    expect(fresh).not.toBeNull();
    expect(codec.open(codec.keyName(PREFIX, res.out.idAfter), fresh!)).toEqual({
      ok: true,
      plaintext: Buffer.alloc(0),
      keyId: vectors.key_id,
    });
  });

  it('a key that expired between requests is a miss: empty session, new ID, no error (BUG-19)', async () => {
    const { id, key } = newSession({ uid: 5 });
    await redis.client.del(key);
    const res = request(rendered, [`--id=${id}`]);
    expect(res.out).toMatchObject({ started: true, session: [] });
    expect(res.out.idAfter).not.toBe(id);
    expect(res.stderr).toBe('');
    expect(res.logs).toEqual([]);
  });

  it('lazy_write: a read-only request brings a TTL of 100 back to gc_maxlifetime without rewriting (BUG-18)', async () => {
    const { id, key } = newSession({ uid: 7 });
    const before = await redis.client.getBuffer(key);
    await redis.client.expire(key, 100);
    const res = request(rendered, [`--id=${id}`]);
    expect(res.out).toMatchObject({ started: true, idAfter: id, session: { uid: 7 }, closed: true });
    expect(res.stderr).toBe('');
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeGreaterThan(MAXLIFETIME - 10);
    expect((await redis.client.getBuffer(key))!.equals(before!)).toBe(true); // updateTimestamp, not write

    const changed = request(rendered, [`--id=${id}`, '--set={"uid":8}']);
    expect(changed.out.started).toBe(true);
    const after = await redis.client.getBuffer(key);
    expect(after!.equals(before!)).toBe(false); // a change is written, with a new nonce
    expect(codec.open(key, after!)).toMatchObject({ ok: true, plaintext: Buffer.from('uid|i:8;') });
  });

  it('lazy_write: a key deleted during a read-only request is stored again on close (phpredis#1411)', async () => {
    const { id, key } = newSession({ uid: 9 });
    const res = request(rendered, [`--id=${id}`, `--delete-mid-request=${key}`, `--port=${redis.port}`]);
    expect(res.out).toMatchObject({ started: true, session: { uid: 9 }, closed: true });
    expect(res.stderr).toBe('');
    const restored = await redis.client.getBuffer(key);
    expect(restored).not.toBeNull();
    expect(codec.open(key, restored!)).toMatchObject({ ok: true, plaintext: Buffer.from('uid|i:9;') });
    expect(await redis.client.ttl(key)).toBeGreaterThan(MAXLIFETIME - 10);
  });

  it('session_regenerate_id(true) moves the session to the new ID; session_destroy() deletes it', async () => {
    const { id, key } = newSession({ uid: 21 });
    const login = request(rendered, [`--id=${id}`, '--regenerate', '--set={"role":"admin"}']);
    expect(login.out).toMatchObject({ started: true, regenerated: true, closed: true });
    expect(login.stderr).toBe('');
    const newId = login.out.idAfter;
    expect(newId).not.toBe(id);
    expect(await redis.client.exists(key)).toBe(0);
    const newKey = codec.keyName(PREFIX, newId);
    expect(codec.open(newKey, (await redis.client.getBuffer(newKey))!)).toMatchObject({
      ok: true,
      plaintext: Buffer.from('uid|i:21;role|s:5:"admin";'),
    });

    const logout = request(rendered, [`--id=${newId}`, '--destroy']);
    expect(logout.out).toMatchObject({ started: true, idBefore: newId, session: { uid: 21, role: 'admin' }, destroyed: true });
    expect(logout.stderr).toBe('');
    expect(await redis.client.exists(newKey)).toBe(0);
  });

  it('works with another namespace, database, an odd prefix and the previous auto_prepend_file chained', async () => {
    const prefix = "it's\\odd:";
    const chained = join(sandbox, 'previous-prepend.php');
    writeFileSync(chained, "<?php\ndefine('PREVIOUS_PREPEND_RAN', session_status() === PHP_SESSION_NONE);\n");
    const probe = join(sandbox, 'probe.php');
    writeFileSync(
      probe,
      "<?php\nsession_start();\n$_SESSION['x'] = 1;\nsession_write_close();\necho json_encode(['started' => true, 'idBefore' => '', 'idAfter' => session_id(), 'session' => [], 'encoded' => '', 'closed' => defined('PREVIOUS_PREPEND_RAN') && PREVIOUS_PREPEND_RAN]), \"\\n\";\n",
    );
    const r = renderInto({
      namespace: 'Acme\\Sessions',
      redis: { host: '127.0.0.1', port: redis.port, db: 3, prefix },
      previousAutoPrependFile: chained,
    });
    try {
      expect(readFileSync(r.handlerFile, 'utf8')).toContain('namespace Acme\\Sessions;');
      const res = request(r, [], { SESSION_MIGRATE_KEY: MASTER }, probe);
      expect(res.stderr).toBe('');
      expect(res.out.closed).toBe(true); // the chained file ran, before any session started
      const db3 = redis.client.duplicate({ db: 3 });
      try {
        const key = codec.keyName(prefix, res.out.idAfter);
        expect(await db3.keys('*')).toEqual([key]);
        expect(codec.open(key, (await db3.getBuffer(key))!)).toMatchObject({ ok: true, plaintext: Buffer.from('x|i:1;') });
        expect(await redis.client.exists(key)).toBe(0);
      } finally {
        db3.disconnect();
      }
    } finally {
      rmSync(r.dir, { recursive: true, force: true });
    }
  });
});

describe('over a unix socket', () => {
  it('connects to the socket path given as host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sm-sock-'));
    const socket = join(dir, 'redis.sock');
    const server = await startRedis(['--unixsocket', socket, '--unixsocketperm', '700']);
    const r = renderInto({ redis: { host: socket } });
    try {
      const res = request(r, ['--set={"via":"socket"}']);
      expect(res.out.started).toBe(true);
      expect(res.stderr).toBe('');
      expect(await server.client.exists(codec.keyName(PREFIX, res.out.idAfter))).toBe(1);
      expect(await redis.client.exists(codec.keyName(PREFIX, res.out.idAfter))).toBe(0);
    } finally {
      await server.stop();
      rmSync(r.dir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('values that can never open (not-envelope, auth-failed): empty session, one warning, never the value; the value is replaced', () => {
  /** Windows of the value's bytes (as text and hex) that must not appear in a log line. */
  function valueFragments(value: Buffer, from = 11): string[] {
    const parts: string[] = [];
    for (let i = from; i + 8 <= value.length; i += 4) {
      parts.push(value.subarray(i, i + 8).toString('hex'), value.subarray(i, i + 8).toString('latin1'));
    }
    return parts;
  }

  function expectOneWarning(logs: string[], key: string, reason: string, keyIds: string[], value: Buffer, id: string): void {
    expect(logs).toHaveLength(1);
    const line = logs[0]!;
    expect(line).toContain('session-migrate: warning:');
    expect(line).toContain(key);
    expect(line).toContain(reason);
    for (const k of keyIds) expect(line).toContain(k);
    expect(line).not.toContain(id);
    for (const part of valueFragments(value)) expect(line).not.toContain(part);
  }

  it('a tampered value: auth-failed', async () => {
    const { id, key } = newSession({ uid: 42, role: 'admin' });
    const value = (await redis.client.getBuffer(key))!;
    value.writeUInt8(value.readUInt8(value.length - 20) ^ 0x01, value.length - 20);
    await redis.client.set(key, value, 'KEEPTTL');
    const res = request(rendered, [`--id=${id}`]);
    expect(res.out).toMatchObject({ started: true, idAfter: id, session: [] });
    expect(res.stderr).toBe('');
    expectOneWarning(res.logs, key, 'auth-failed', [vectors.key_id], value, id);
    // PHP then writes the (empty) session: the tampered bytes are replaced by a valid envelope.
    expect(codec.open(key, (await redis.client.getBuffer(key))!)).toMatchObject({ ok: true, plaintext: Buffer.alloc(0) });
  });

  it('plaintext planted in Redis: not-envelope, nothing of it reaches $_SESSION', async () => {
    const id = 'planted0000000000000000000000a';
    const key = codec.keyName(PREFIX, id);
    const planted = Buffer.from('uid|i:1;admin|b:1;name|s:5:"mallo";');
    await redis.client.set(key, planted, 'EX', 600);
    const res = request(rendered, [`--id=${id}`]);
    expect(res.out).toMatchObject({ started: true, idAfter: id, session: [] });
    expectOneWarning(res.logs, key, 'not-envelope', [vectors.key_id], planted, id);
    expect(res.logs[0]).not.toContain('admin');
    expect(res.logs[0]).not.toContain('mallo');
    // the session that started empty is written (PHP calls write() for an empty session, even with
    // lazy_write): the planted value is replaced, never kept alive by a refreshed TTL
    expect(codec.open(key, (await redis.client.getBuffer(key))!)).toMatchObject({ ok: true, plaintext: Buffer.alloc(0) });
    expect(await redis.client.ttl(key)).toBeGreaterThan(MAXLIFETIME - 10);
  });

  it('a PHP process with the wrong master key cannot find or open existing sessions', async () => {
    const { id } = newSession({ uid: 11 });
    const res = request(rendered, [`--id=${id}`], { SESSION_MIGRATE_KEY: OTHER });
    expect(res.out.started).toBe(true);
    expect(res.out.session).toEqual([]);
    expect(res.out.idAfter).not.toBe(id); // key names come from the key: the ID is unknown under it
  });
});

describe('values under a key ID or envelope version this host lacks: session_start() fails, the value stays (issue 11)', () => {
  /** Host A's ring after a rotation: same lookup key as MASTER alone (so the same key names), OTHER current, MASTER previous. */
  async function rotatedRing(): Promise<string> {
    const sodium = await loadSodium();
    return formatKeyRing(sodium, {
      lookupKey: deriveLookupKey(sodium, Buffer.from(MASTER, 'base64')),
      current: Buffer.from(OTHER, 'base64'),
      previous: [Buffer.from(MASTER, 'base64')],
    });
  }

  async function expectUntouched(key: string, value: Buffer, ttlBefore: number): Promise<void> {
    expect((await redis.client.getBuffer(key))!.equals(value)).toBe(true);
    const ttl = await redis.client.ttl(key);
    expect(ttl).toBeLessThanOrEqual(ttlBefore);
    expect(ttl).toBeGreaterThan(ttlBefore - 10);
    expect(await redis.client.exists(key.replace(PREFIX, `${PREFIX}lock:`))).toBe(0); // the lock was released
  }

  function expectOneFailureLine(res: Request, key: string, reason: string, keyId: string, value: Buffer, id: string): void {
    expect(res.out).toMatchObject({ started: false, session: null });
    expect(res.out.idAfter === '' || res.out.idAfter === id).toBe(true); // never a new ID
    expect(res.stderr).toContain('session_start(): Failed to read session data: user');
    expect(res.logs).toHaveLength(1);
    const line = res.logs[0]!;
    expect(line).toContain(key);
    expect(line).toContain(`key ID ${keyId}`);
    expect(line).toContain(reason);
    expect(line).toContain('session_start() fails and the value is left untouched');
    expect(line).not.toContain(id);
    for (let i = 11; i + 8 <= value.length; i += 4) {
      expect(line).not.toContain(value.subarray(i, i + 8).toString('hex'));
      expect(line).not.toContain(value.subarray(i, i + 8).toString('latin1'));
    }
  }

  it('host B with the old key reads a session host A sealed under its rotated key: fails visibly, the value stays, host A still reads it', async () => {
    const ringA = { SESSION_MIGRATE_KEY: await rotatedRing() };
    const hostB = { SESSION_MIGRATE_KEY: MASTER };
    const first = request(rendered, ['--set={"uid":77,"cart":3}'], ringA);
    expect(first.out.started, first.logs.join('\n')).toBe(true);
    const id = first.out.idAfter;
    const key = codec.keyName(PREFIX, id);
    const value = (await redis.client.getBuffer(key))!;
    expect(value.subarray(3, 11).toString('hex')).toBe(vectors.other_key_id);
    const ttlBefore = await redis.client.ttl(key);

    for (const locking of [true, false]) {
      const r = locking
        ? rendered
        : renderInto({ redis: { host: '127.0.0.1', port: redis.port, timeoutSeconds: 2 }, locking: { enabled: false } });
      try {
        for (const args of [
          [`--id=${id}`],
          [`--id=${id}`, '--set={"uid":0}'],
          [`--id=${id}`, '--regenerate'],
          [`--id=${id}`, '--destroy'],
        ]) {
          const res = request(r, args, hostB);
          expectOneFailureLine(res, key, 'unknown-key-id', vectors.other_key_id, value, id);
          expect(res.logs[0]).toContain(`key IDs held: ${vectors.key_id}`);
          await expectUntouched(key, value, ttlBefore);
        }
      } finally {
        if (r !== rendered) rmSync(r.dir, { recursive: true, force: true });
      }
    }

    const back = request(rendered, [`--id=${id}`], ringA);
    expect(back.out).toMatchObject({ started: true, idAfter: id, session: { uid: 77, cart: 3 } });
    expect(back.logs).toEqual([]);
  });

  it('an envelope version this handler does not read (a newer handler wrote it): fails visibly, the value stays', async () => {
    const { id, key } = newSession({ uid: 4 });
    const value = (await redis.client.getBuffer(key))!;
    value[2] = 2; // version 2
    await redis.client.set(key, value, 'KEEPTTL');
    const ttlBefore = await redis.client.ttl(key);
    const res = request(rendered, [`--id=${id}`, '--set={"uid":5}']);
    expectOneFailureLine(res, key, 'unsupported-version', vectors.key_id, value, id);
    await expectUntouched(key, value, ttlBefore);
  });
});

describe('key or Redis unavailable: session_start() fails visibly, never a files session', () => {
  const SESSION_DIRS = ['/tmp', '/var/lib/php/sessions'];
  const sessFiles = (dir: string, id: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f === `sess_${id}`) : []);

  async function unreachable(): Promise<Rendered> {
    const port = await freePort(); // nothing listens there
    return renderInto({ redis: { host: '127.0.0.1', port, timeoutSeconds: 1 } });
  }

  it('control: without the fragment, PHP writes sess_<id> into the temp directory (the check below can fail)', () => {
    const id = 'control000000000000000000000001';
    const dir = mkdtempSync(join(sandbox, 'files-'));
    const run = runPhp(
      [
        '-d',
        `session.save_path=${dir}`,
        '-d',
        'session.use_cookies=0',
        join(PHP_DIR, 'session-request.php'),
        `--id=${id}`,
        '--set={"a":1}',
      ],
      { env: { TMPDIR: dir } },
    );
    expect(lastJson<RequestOut>(run).started).toBe(true);
    expect(sessFiles(dir, id)).toEqual([`sess_${id}`]);
  });

  it('Redis unreachable: session_start() returns false with a warning, the reason is logged, no sess_ file anywhere', async () => {
    const r = await unreachable();
    try {
      const id = 'redisdown0000000000000000000001';
      const tmp = mkdtempSync(join(sandbox, 'tmp-'));
      const res = request(r, [`--id=${id}`, '--set={"a":1}'], { SESSION_MIGRATE_KEY: MASTER, TMPDIR: tmp });
      expect(res.out).toMatchObject({ started: false, session: null, closed: null });
      expect(res.stderr).toContain('session_start(): Failed to initialize storage module: user');
      expect(res.logs).toHaveLength(1);
      expect(res.logs[0]).toMatch(
        /session-migrate: sessions are unavailable: Redis at redis:\/\/127\.0\.0\.1:\d+\/0: .*Connection refused/,
      );
      expect(res.logs[0]).not.toContain(MASTER);
      expect(readdirSync(tmp)).toEqual([]);
      for (const dir of SESSION_DIRS) expect(sessFiles(dir, id)).toEqual([]);
      expect(existsSync(DEFAULT_FILES_HANDLER_TRAP_PATH)).toBe(false);
    } finally {
      rmSync(r.dir, { recursive: true, force: true });
    }
  });

  it('no master key in the environment: the same visible failure', () => {
    const id = 'nokey000000000000000000000001';
    const tmp = mkdtempSync(join(sandbox, 'tmp-'));
    const res = request(rendered, [`--id=${id}`, '--set={"a":1}'], { TMPDIR: tmp });
    expect(res.out.started).toBe(false);
    expect(res.stderr).toContain('Failed to initialize storage module: user');
    expect(res.logs).toEqual([
      expect.stringMatching(/session-migrate: sessions are unavailable: no master key: set SESSION_MIGRATE_KEY_FILE/),
    ]);
    expect(readdirSync(tmp)).toEqual([]);
    for (const dir of SESSION_DIRS) expect(sessFiles(dir, id)).toEqual([]);
  });

  it('a script that never starts a session needs neither the key nor Redis', async () => {
    const r = await unreachable();
    try {
      const script = join(sandbox, 'no-session.php');
      writeFileSync(
        script,
        '<?php echo json_encode(["started" => false, "idBefore" => "", "idAfter" => "", "session" => null, "encoded" => null, "closed" => null]), "\\n";\n',
      );
      const res = request(r, [], {}, script);
      expect(res.stderr).toBe('');
      expect(res.logs).toEqual([]);
    } finally {
      rmSync(r.dir, { recursive: true, force: true });
    }
  });
});

describe('Redis password from SESSION_MIGRATE_REDIS_PASSWORD, never baked in', () => {
  const password = 'pa,ss+w&rd#1';
  let secured: RedisServer;
  let r: Rendered;

  beforeAll(async () => {
    secured = await startRedis();
    // set after start: servers.ts's own client connects without a password and stays authenticated
    await secured.client.config('SET', 'requirepass', password);
    const target: RedisTargetOptions = { host: '127.0.0.1', port: secured.port };
    r = renderInto({ redis: target });
  });
  afterAll(async () => {
    await secured?.stop();
    if (r) rmSync(r.dir, { recursive: true, force: true });
  });

  it('authenticates with the password from the environment', async () => {
    for (const artifact of r.artifacts) expect(artifact.contents).not.toContain(password);
    const res = request(r, ['--set={"a":1}'], { SESSION_MIGRATE_KEY: MASTER, SESSION_MIGRATE_REDIS_PASSWORD: password });
    expect(res.out.started).toBe(true);
    expect(res.stderr).toBe('');
    expect(await secured.client.exists(codec.keyName(PREFIX, res.out.idAfter))).toBe(1);
  });

  it('fails visibly without it or with a wrong one, naming the cause and the variable, without logging the password', async () => {
    const none = request(r, ['--set={"a":1}']);
    expect(none.out.started).toBe(false);
    expect(none.stderr).toContain('Failed to read session data: user');
    expect(none.logs).toEqual([
      expect.stringMatching(
        /session-migrate: Redis (LOCK\+GET|READ) of smsess:\{[0-9a-f]{64}\} failed: NOAUTH .*\(the server needs a password: set SESSION_MIGRATE_REDIS_PASSWORD\)$/,
      ),
    ]);
    // phpredis 5.3.7 reports a refused AUTH while connecting as a bare failure, and 6.x only at the first
    // command (the handler then sends AUTH itself at connect): with both, open() fails and the log names the reply
    const wrongPassword = { SESSION_MIGRATE_KEY: MASTER, SESSION_MIGRATE_REDIS_PASSWORD: 'not-it' };
    const wrong = request(r, ['--set={"a":1}'], wrongPassword);
    expect(wrong.out.started).toBe(false);
    expect(wrong.stderr).toContain('Failed to initialize storage module: user');
    expect(wrong.logs).toEqual([
      expect.stringMatching(
        /^session-migrate: sessions are unavailable: Redis at redis:\/\/127\.0\.0\.1:\d+\/0: authentication failed \(WRONGPASS invalid username-password pair[^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD$/,
      ),
    ]);
    const notPersistent = renderInto({ redis: { host: '127.0.0.1', port: secured.port, persistent: false } });
    const asCluster = renderInto({
      redis: { topology: 'cluster', host: '127.0.0.1', port: secured.port, seeds: [{ host: '127.0.0.1', port: secured.port }] },
    });
    await secured.client.call('ACL', 'SETUSER', 'app', 'on', '>app-pw', `~${PREFIX}*`, '+@all');
    const asUser = renderInto({ redis: { host: '127.0.0.1', port: secured.port, username: 'app' } });
    try {
      const once = request(notPersistent, ['--set={"a":1}'], wrongPassword);
      expect(once.logs).toEqual([
        expect.stringMatching(/: authentication failed \(WRONGPASS [^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD$/),
      ]);
      // RedisCluster says "Couldn't map cluster keyspace using any provided seed": the seed is asked why
      const cluster = request(asCluster, ['--set={"a":1}'], wrongPassword);
      expect(cluster.out.started).toBe(false);
      expect(cluster.logs).toEqual([
        expect.stringMatching(
          /sessions are unavailable: Redis Cluster redis:\/\/127\.0\.0\.1:\d+: authentication failed \(WRONGPASS [^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD$/,
        ),
      ]);
      const user = request(asUser, ['--set={"a":1}'], wrongPassword);
      expect(user.logs).toEqual([
        expect.stringMatching(
          /Redis at redis:\/\/app@127\.0\.0\.1:\d+\/0: authentication failed \(WRONGPASS [^)]*\): check SESSION_MIGRATE_REDIS_PASSWORD and the ACL user app$/,
        ),
      ]);
      for (const res of [wrong, once, cluster, user]) expect(res.logs.join('\n') + res.stderr).not.toContain('not-it');
    } finally {
      await secured.client.call('ACL', 'DELUSER', 'app');
      for (const x of [notPersistent, asCluster, asUser]) rmSync(x.dir, { recursive: true, force: true });
    }
  });
});

// An ACL user without SESSION_MIGRATE_REDIS_PASSWORD (AUTH <user> ""): test/php-handler-nopass.test.ts.

describe('over CGI with cookies (php-cgi)', () => {
  const script = () => {
    const path = join(sandbox, 'cgi-app.php');
    writeFileSync(
      path,
      "<?php\nsession_start();\n$before = $_SESSION;\n$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;\necho json_encode(['id' => session_id(), 'before' => $before]);\n",
    );
    return path;
  };

  function cgi(
    path: string,
    cgiEnv: Record<string, string>,
  ): { headers: string[]; body: { id: string; before: Record<string, number> | [] } } {
    const run = runPhp(
      [
        '-c',
        rendered.iniFile,
        ...PHP_EXTENSIONS,
        '-d',
        'error_reporting=-1',
        '-d',
        'display_errors=stderr',
        '-d',
        `error_log=${join(sandbox, 'cgi.log')}`,
      ],
      {
        binary: 'php-cgi',
        env: {
          SESSION_MIGRATE_KEY: MASTER,
          REDIRECT_STATUS: '200',
          GATEWAY_INTERFACE: 'CGI/1.1',
          REQUEST_METHOD: 'GET',
          SCRIPT_FILENAME: path,
          SCRIPT_NAME: '/app.php',
          REQUEST_URI: '/app.php',
          SERVER_NAME: 'localhost',
          HTTPS: 'on',
          QUERY_STRING: '',
          ...cgiEnv,
        },
      },
    );
    expect(run.stderr).toBe('');
    const [head, body] = run.stdout.split(/\r?\n\r?\n/, 2);
    return { headers: (head ?? '').split(/\r?\n/), body: JSON.parse(body ?? '') };
  }

  it('issues a hardened cookie, keeps the session by cookie, and ignores IDs in the URL or unknown cookies', async () => {
    const path = script();
    const first = cgi(path, {});
    const setCookie = first.headers.filter((h) => h.startsWith('Set-Cookie:'));
    expect(setCookie).toEqual([`Set-Cookie: PHPSESSID=${first.body.id}; path=/; secure; HttpOnly; SameSite=Lax`]);
    expect(await redis.client.exists(codec.keyName(PREFIX, first.body.id))).toBe(1);

    const second = cgi(path, { HTTP_COOKIE: `PHPSESSID=${first.body.id}` });
    expect(second.body).toEqual({ id: first.body.id, before: { n: 1 } });
    expect(second.headers.some((h) => h.startsWith('Set-Cookie:'))).toBe(false);

    const viaUrl = cgi(path, { QUERY_STRING: `PHPSESSID=${first.body.id}`, REQUEST_URI: `/app.php?PHPSESSID=${first.body.id}` });
    expect(viaUrl.body.id).not.toBe(first.body.id);
    expect(viaUrl.body.before).toEqual([]);

    const forged = cgi(path, { HTTP_COOKIE: 'PHPSESSID=attackerchosen0000000000000001' });
    expect(forged.body.id).not.toBe('attackerchosen0000000000000001');
    expect(forged.headers.filter((h) => h.startsWith('Set-Cookie:'))).toEqual([expect.stringContaining(`PHPSESSID=${forged.body.id};`)]);
  });
});

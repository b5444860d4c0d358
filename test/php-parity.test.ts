/**
 * Parity with phpredis (issue 11 item 3): one PHP application (test/php/parity-app.php) runs under real
 * php-fpm behind nginx, once with phpredis's native `redis` save handler (the oracle, with
 * redis.session.locking_enabled=1 and phpredis 6's lock defaults) and once with the generated handler
 * (its ini fragment and bootstrap, locking on by default). Every scenario runs against both and their
 * observations must be equal, except for the differences docs/phpredis-parity.md lists on purpose
 * (encrypted values and hashed key names, which these observations never compare).
 *
 * Covered: session_regenerate_id(true/false), strict mode with unknown and invalid IDs, lazy_write
 * with updateTimestamp (TTL refreshed, value unchanged), destroy, gc, empty sessions, session_reset,
 * session_abort, read_and_close, session_create_id, concurrent requests with locking on (none lost)
 * and off (the last write wins), and Redis going away in the middle of a request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderArtifacts, writeArtifacts, type LockingOptions } from '@session-migrate/generate';
import { startRedis, type RedisServer } from './support/servers.ts';
import { SessionHttp } from '../bench/http/common.ts';
import { makeDocroot, startPhpStack, type PhpStack } from './support/http.ts';
import { PHP_DIR, vectors } from './php/harness.ts';

const APP = readFileSync(join(PHP_DIR, 'parity-app.php'), 'utf8');
const LOCK_DEFAULTS = { retries: 100, waitMicros: 20_000 }; // phpredis 6 (redis.c INI defaults)

interface View {
  started: boolean | null;
  id: string;
  status: number;
  [k: string]: unknown;
}

interface Handler {
  name: 'phpredis' | 'generated';
  stack: PhpStack;
  http: SessionHttp;
}

let redis: RedisServer;
let docroot: string;
let scratch: string;
const stacks: PhpStack[] = [];

/** php-fpm + nginx with phpredis's native handler. */
async function nativeStack(port: number, locking: boolean, workers = 2): Promise<PhpStack> {
  const stack = await startPhpStack({
    docroot,
    fpm: {
      workers,
      env: { PARITY_REDIS_PORT: String(port) },
      ini: {
        'session.save_handler': 'redis',
        'session.save_path': `tcp://127.0.0.1:${port}?persistent=1`,
        'session.use_strict_mode': 1,
        'session.lazy_write': 1,
        'session.use_only_cookies': 1,
        'session.gc_probability': 0,
        'redis.session.locking_enabled': locking ? 1 : 0,
        'redis.session.lock_retries': LOCK_DEFAULTS.retries,
        'redis.session.lock_wait_time': LOCK_DEFAULTS.waitMicros,
      },
    },
  });
  stacks.push(stack);
  return stack;
}

/** php-fpm + nginx with the generated handler (its ini fragment in conf.d, the key in the pool's env). */
async function generatedStack(port: number, locking: LockingOptions = {}, workers = 2): Promise<PhpStack> {
  const dir = mkdtempSync(join(scratch, 'artifacts-'));
  const artifacts = renderArtifacts({ installDir: dir, redis: { host: '127.0.0.1', port }, locking });
  writeArtifacts(dir, artifacts);
  const stack = await startPhpStack({
    docroot,
    fpm: {
      workers,
      env: { PARITY_REDIS_PORT: String(port), SESSION_MIGRATE_KEY: vectors.master_key_base64 },
      ini: { 'session.gc_probability': 0 },
      iniFiles: [join(dir, artifacts[1]!.path)],
    },
  });
  stacks.push(stack);
  return stack;
}

async function view(h: Handler, path: string, sid?: string): Promise<View & { httpStatus: number; setCookie?: string }> {
  const a = await h.http.get(path, sid);
  let body: View;
  try {
    body = JSON.parse(a.body) as View;
  } catch {
    throw new Error(`${h.name} ${path}: HTTP ${a.status}, not JSON: ${a.body.slice(0, 300)}`);
  }
  return { ...body, httpStatus: a.status, ...(a.setCookie !== undefined ? { setCookie: a.setCookie } : {}) };
}

/** A new session holding {a: '1'}; returns its ID. */
async function newSession(h: Handler): Promise<string> {
  const v = await view(h, '/index.php?a=set&k=a&v=1');
  expect(v.started, h.name).toBe(true);
  expect(v.setCookie, h.name).toBeDefined();
  return v.setCookie!;
}

/** Lock keys left in Redis (none may outlive a request). */
async function lockKeys(): Promise<string[]> {
  return [...(await redis.client.keys('*_LOCK')), ...(await redis.client.keys('*lock:{*'))];
}

let native: Handler;
let generated: Handler;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'sm-parity-'));
  docroot = makeDocroot({ 'index.php': APP });
  redis = await startRedis();
  const [n, g] = await Promise.all([nativeStack(redis.port, true), generatedStack(redis.port)]);
  native = { name: 'phpredis', stack: n, http: new SessionHttp(n.base) };
  generated = { name: 'generated', stack: g, http: new SessionHttp(g.base) };
}, 120_000);

afterAll(async () => {
  native?.http.close();
  generated?.http.close();
  await Promise.all(stacks.map((s) => s.stop()));
  await redis?.stop();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Runs `scenario` against both handlers and returns [phpredis, generated]. */
async function both<T>(scenario: (h: Handler) => Promise<T>): Promise<[T, T]> {
  const a = await scenario(native);
  const b = await scenario(generated);
  return [a, b];
}

describe("parity with phpredis's native handler (php-fpm behind nginx)", () => {
  it('a session round trip, and no lock outlives a request', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const read = await view(h, '/index.php?a=get', id);
      return { sameId: read.id === id, session: read.session, cookieAgain: read.setCookie !== undefined };
    });
    expect(a).toEqual({ sameId: true, session: { a: '1' }, cookieAgain: false });
    expect(b).toEqual(a);
    expect(await lockKeys()).toEqual([]);
  });

  it('session_regenerate_id(true) and (false): new ID, data carried over, old session deleted or kept', async () => {
    for (const del of [1, 0]) {
      const [a, b] = await both(async (h) => {
        const id = await newSession(h);
        const r = await view(h, `/index.php?a=regen&del=${del}`, id);
        const next = await view(h, '/index.php?a=get', r.setCookie);
        const old = await view(h, '/index.php?a=get', id);
        return {
          result: r.result,
          changed: r.changed,
          oldExists: r.oldExists,
          session: r.session,
          newCookie: r.setCookie !== undefined && r.setCookie === r.id,
          next: next.session,
          // the old ID afterwards: accepted with its data (false), or refused by strict mode (true)
          oldRefused: old.id !== id,
          oldSession: old.session,
        };
      });
      expect(a, `del=${del}`).toMatchObject({ result: true, changed: true, newCookie: true, oldExists: del === 1 ? 0 : 1 });
      expect(b, `del=${del}`).toEqual(a);
    }
    expect(await lockKeys()).toEqual([]);
  });

  it('strict mode: an unknown ID and an ID with invalid characters both get a new ID and an empty session', async () => {
    for (const presented of ['unknown0000000000000000000000001', 'bad!id$with*chars']) {
      const [a, b] = await both(async (h) => {
        const v = await view(h, '/index.php?a=get', presented);
        return {
          replaced: v.id !== presented,
          session: v.session,
          cookie: v.setCookie !== undefined,
          valid: /^[A-Za-z0-9,-]+$/.test(v.id),
        };
      });
      expect(a, presented).toEqual({ replaced: true, session: [], cookie: true, valid: true });
      expect(b, presented).toEqual(a);
    }
  });

  it('lazy_write: an unchanged session is not rewritten, its TTL is refreshed (updateTimestamp)', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const before = await view(h, '/index.php?a=expire&ttl=100', id);
      await view(h, '/index.php?a=get', id); // reads, changes nothing
      const after = await view(h, '/index.php?a=raw', id);
      return { ttlBefore: before.ttl, refreshed: (after.ttl as number) > 1400, unchanged: after.sha1 === before.sha1 };
    });
    expect(a).toEqual({ ttlBefore: 100, refreshed: true, unchanged: true });
    expect(b).toEqual(a);
  });

  it('session_destroy(): true, the key is gone, strict mode refuses the ID afterwards', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const d = await view(h, '/index.php?a=destroy', id);
      const again = await view(h, '/index.php?a=get', id);
      return { result: d.result, keyExists: d.keyExists, refused: again.id !== id, session: again.session };
    });
    expect(a).toEqual({ result: true, keyExists: 0, refused: true, session: [] });
    expect(b).toEqual(a);
    expect(await lockKeys()).toEqual([]);
  });

  it('session_gc(): nothing to collect (keys expire by TTL); phpredis answers false, the generated handler 0 (docs/phpredis-parity.md)', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const v = await view(h, '/index.php?a=gc', id);
      return { gc: v.gc, type: v.type };
    });
    expect(a).toEqual({ gc: false, type: 'boolean' }); // redis_session.c PS_GC_FUNC reports no count
    expect(b).toEqual({ gc: 0, type: 'integer' }); // the count PHP documents for session_gc()
  });

  it('an empty session is written at its first close (PHP calls write with ""): its ID is accepted next time', async () => {
    const [a, b] = await both(async (h) => {
      const first = await view(h, '/index.php?a=get');
      const raw = await view(h, '/index.php?a=raw', first.setCookie);
      const again = await view(h, '/index.php?a=get', first.setCookie);
      return { session: first.session, stored: raw.sha1 !== null, acceptedLater: again.id === first.setCookie, session2: again.session };
    });
    expect(a).toEqual({ session: [], stored: true, acceptedLater: true, session2: [] });
    expect(b).toEqual(a);
  });

  it('session_abort() and read_and_close release the lock at once', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const abort = await view(h, '/index.php?a=abort', id);
      const afterAbort = await view(h, '/index.php?a=get', id);
      const rac = await view(h, '/index.php?a=rac', id);
      return {
        abortLock: abort.lockAfter,
        abortStatus: abort.status,
        afterAbort: afterAbort.session,
        racSession: rac.session,
        racLock: rac.lockAfter,
        racStatus: rac.status,
      };
    });
    expect(a).toEqual({ abortLock: 0, abortStatus: 1, afterAbort: { a: '1' }, racSession: { a: '1' }, racLock: 0, racStatus: 1 });
    expect(b).toEqual(a);
    expect(await lockKeys()).toEqual([]);
  });

  it('session_reset() brings back the stored data; under the lock it already holds (phpredis waits for its own lock, and 6.x then reads nothing: docs/phpredis-parity.md)', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const started = Date.now();
      const reset = await view(h, '/index.php?a=reset', id);
      const ms = Date.now() - started;
      const locks = await lockKeys();
      for (const k of locks) await redis.client.del(k); // phpredis leaves its first lock behind until its TTL
      return {
        reset: reset.reset,
        before: reset.before,
        session: reset.session,
        phpredis: String(reset.phpredis),
        ms,
        locks: locks.length,
      };
    });
    // When its lock wait runs out, phpredis 5.x reads anyway (a notice) and brings the data back;
    // phpredis 6.x fails the read ("Failed to acquire session lock", redis_session.c PS_READ_FUNC of
    // 6.0.2 and 6.1.0), so session_reset() leaves $_SESSION empty. The generated handler brings the
    // data back with either.
    const nativeSession = Number(a.phpredis.split('.')[0]) >= 6 ? [] : { a: '1' };
    expect({ reset: a.reset, before: a.before, session: a.session }).toEqual({ reset: true, before: { a: '1' }, session: nativeSession });
    expect({ reset: b.reset, before: b.before, session: b.session }).toEqual({ reset: true, before: { a: '1' }, session: { a: '1' } });
    expect(b.phpredis).toBe(a.phpredis);
    // The generated handler re-reads under the lock it holds: no wait for itself, no lock left behind.
    expect(a.ms).toBeGreaterThan(1500); // phpredis: 100 retries x 20 ms for a lock its own request holds
    expect(b.locks).toBe(0);
    expect(b.ms).toBeLessThan(a.ms);
  });

  it('session_create_id(): valid IDs with the prefix, while a session is active and after it is closed', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const v = await view(h, '/index.php?a=create&p=pfx-', id);
      return { active: v.active, inactive: v.inactive, distinct: v.distinct, length: v.length };
    });
    expect(a).toMatchObject({ active: true, inactive: true, distinct: true });
    expect(b).toEqual(a);
    expect(await lockKeys()).toEqual([]);
  });

  it('50 concurrent requests on one session with locking on: none lost, none failed', async () => {
    const [a, b] = await both(async (h) => {
      const id = await newSession(h);
      const answers = await Promise.all(Array.from({ length: 50 }, () => view(h, '/index.php?a=incr&sleep=2', id)));
      const final = await view(h, '/index.php?a=get', id);
      return { failed: answers.filter((x) => x.httpStatus !== 200).length, n: (final.session as { n?: number }).n };
    });
    expect(a).toEqual({ failed: 0, n: 50 });
    expect(b).toEqual(a);
    expect(await lockKeys()).toEqual([]);
  });

  it('with locking off, a destroy is not undone by a request that read the session before it and writes after (phpredis undoes it)', async () => {
    const n = await nativeStack(redis.port, false);
    const g = await generatedStack(redis.port, { enabled: false });
    const handlers: Handler[] = [
      { name: 'phpredis', stack: n, http: new SessionHttp(n.base) },
      { name: 'generated', stack: g, http: new SessionHttp(g.base) },
    ];
    const after: Record<string, unknown> = {};
    try {
      for (const h of handlers) {
        const id = await newSession(h);
        const slow = view(h, '/index.php?a=incr&sleep=600', id); // reads {a: 1}, writes {a: 1, n: 1} 600 ms later
        await new Promise((r) => setTimeout(r, 200));
        const logout = await view(h, '/index.php?a=destroy', id);
        expect({ result: logout.result, keyExists: logout.keyExists }, h.name).toEqual({ result: true, keyExists: 0 });
        expect((await slow).httpStatus, h.name).toBe(200);
        const next = await view(h, '/index.php?a=get', id);
        after[h.name] = { session: next.session, sameId: next.setCookie === undefined };
      }
    } finally {
      for (const h of handlers) h.http.close();
    }
    // phpredis: the slow request's SETEX brings the session back, the logout is undone.
    expect(after['phpredis']).toEqual({ session: { a: '1', n: 1 }, sameId: true });
    // generated: the tombstone stands; strict mode refuses the ID, a new empty session starts.
    expect(after['generated']).toEqual({ session: [], sameId: false });
  });

  it('with locking off, concurrent requests overwrite each other: the last write wins (documented)', async () => {
    const n = await nativeStack(redis.port, false);
    const g = await generatedStack(redis.port, { enabled: false });
    const handlers: Handler[] = [
      { name: 'phpredis', stack: n, http: new SessionHttp(n.base) },
      { name: 'generated', stack: g, http: new SessionHttp(g.base) },
    ];
    try {
      for (const h of handlers) {
        const id = await newSession(h);
        const answers = await Promise.all(Array.from({ length: 20 }, () => view(h, '/index.php?a=incr&sleep=100', id)));
        const final = await view(h, '/index.php?a=get', id);
        expect(
          answers.every((x) => x.httpStatus === 200),
          h.name,
        ).toBe(true);
        // two workers interleave: each writes what it read plus one, so updates are lost
        expect((final.session as { n: number }).n, h.name).toBeLessThan(20);
      }
    } finally {
      for (const h of handlers) h.http.close();
    }
  });
});

describe('Redis going away in the middle of a request (same for both handlers)', () => {
  it("the write fails with PHP's warning, never a files session; while Redis is down session_start() fails; afterwards the ID is refused", async () => {
    let doomed = await startRedis();
    const n = await nativeStack(doomed.port, true, 1);
    const g = await generatedStack(doomed.port, {}, 1);
    const handlers: Handler[] = [
      { name: 'phpredis', stack: n, http: new SessionHttp(n.base) },
      { name: 'generated', stack: g, http: new SessionHttp(g.base) },
    ];
    try {
      const results = [];
      for (const h of handlers) {
        const id = await newSession(h);
        h.stack.fpm.clearErrorLog();
        // phpredis answers this one with a fatal error (no JSON): see the assertions below
        const pending = h.http.get('/index.php?a=sleepwrite&sleep=700&k=b&v=2', id).then((x): View & { httpStatus: number } => {
          try {
            return { ...(JSON.parse(x.body) as View), httpStatus: x.status };
          } catch {
            return { started: null, id: '', status: 0, httpStatus: x.status };
          }
        });
        await new Promise((r) => setTimeout(r, 250));
        const samePort = doomed.port;
        await doomed.stop(); // Redis goes away while the request holds its session
        const during = await pending;
        const down = await view(h, '/index.php?a=get', id);
        doomed = await startRedis([], samePort); // back, empty (as after a restart without persistence)
        const after = await view(h, '/index.php?a=get', id);
        const log = h.stack.fpm.readErrorLog();
        results.push({
          duringStatus: during.httpStatus,
          closed: during.closed,
          writeFailureReported: /Failed to write session data|Uncaught RedisException: Connection lost/.test(String(during.error) + log),
          downStarted: down.started,
          downStatus: down.httpStatus,
          afterRefused: after.id !== id,
          afterSession: after.session,
        });
      }
      // Both report the failed write (phpredis lets RedisException "Connection lost" escape from
      // session_write_close(), a fatal error; the generated handler returns false, so PHP warns
      // "Failed to write session data": docs/phpredis-parity.md); neither falls back to anything.
      for (const r of results)
        expect(r).toMatchObject({ writeFailureReported: true, downStarted: false, downStatus: 503, afterRefused: true, afterSession: [] });
      expect(results[0]!.duringStatus).toBe(500);
      expect(results[1]).toMatchObject({ duringStatus: 200, closed: true });
    } finally {
      for (const h of handlers) h.http.close();
      await doomed.stop();
    }
  });
});

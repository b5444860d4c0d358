/**
 * verify scans every key of the database (issue 13 item 1) against real redis-servers: a single node
 * holding every class of key (envelopes, the handler's tombstone and lock, plaintext sessions that
 * real PHP encoded under all four serialize handlers, empty phpredis sessions, phpredis locks with and
 * without a TTL, other applications' strings, binary values, values past the GETRANGE cap, hashes,
 * lists, sets, sorted sets, streams), and a 3-master cluster. PHP's session_decode() is the oracle for
 * what counts as a plaintext session. No value and no session ID is ever printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis, Cluster } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { lockKeyFor, tombstoneKeyFor } from '@session-migrate/envelope';
import { loadableSessionFormat } from '@session-migrate/php-session';
import { startCluster, startNode, type ClusterTopology, type RedisNode } from './support/redis-topologies.ts';
import { cli, newKey, sid } from './support/migrate-cli.ts';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { verifyTarget } from '@session-migrate/verify';

const PREFIX = 'smsess:';
const PHP_SCRIPT = join(import.meta.dirname, 'php/session-formats.php');
const PHP = ['-n', '-d', 'extension=igbinary'];

let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let node: RedisNode;
/** Sessions real PHP encoded, per serialize_handler. */
let encoded: Array<{ handler: string; bytes: Buffer }>;

/** PHP's verdict per payload: the handlers under which session_decode() succeeds with an array. */
function phpLoads(payloads: Buffer[]): string[][] {
  const r = spawnSync('php', [...PHP, PHP_SCRIPT, 'decode'], {
    input: payloads.map((p) => p.toString('hex')).join('\n') + '\n',
    encoding: 'utf8',
    cwd: root,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => (l === '-' ? [] : l.split(',')));
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-verify-db-'));
  ({ keyFile, codec } = await newKey(root));
  node = await startNode();
  const r = spawnSync('php', [...PHP, PHP_SCRIPT, 'encode'], { encoding: 'utf8', cwd: root });
  expect(r.status, r.stderr).toBe(0);
  encoded = r.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [handler, hex] = l.split(' ');
      return { handler: handler!, bytes: Buffer.from(hex!, 'hex') };
    });
  expect(encoded.map((e) => e.handler)).toEqual(['php', 'php_binary', 'php_serialize', 'igbinary']);
});
afterAll(async () => {
  await node?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Values of other applications: none is a session for PHP (checked against PHP below). */
const OTHER_STRINGS: Buffer[] = [
  Buffer.from('{"user":"MARKER-secret-json","roles":["admin"]}'),
  Buffer.from('42'),
  Buffer.from('OK'),
  Buffer.from('i:5;'), // a serialize()d int: PHP accepts it, but $_SESSION is no array
  Buffer.from('s:20:"MARKER-secret-string";'),
  Buffer.from('host-a|12345'), // phpredis's lock secret shape
  Buffer.from('MARKER-secret-pipe|not serialized'),
  Buffer.from([0x00, 0x00, 0x00, 0x02, 0xff, 0x00, 0x13]), // an igbinary header with garbage
  Buffer.from([0x80, 0x01, 0x02, 0xff, 0xfe, 0x7c, 0x00]),
  // PHP loads these as an empty $_SESSION (php_serialize ignores what follows `N;`): no session data.
  Buffer.concat([Buffer.from('N;'), Buffer.from('8a1f566e1e1bd708acf2221125a476ac', 'hex')]),
  Buffer.from('a:0:{}'),
  Buffer.from('000000021400', 'hex'),
];

async function seal(client: Redis | Cluster, id: string, data: string, ttlMs = 600_000): Promise<string> {
  const key = codec.keyName(PREFIX, id);
  await client.set(key, codec.seal(key, Buffer.from(data)), 'PX', ttlMs);
  return key;
}

interface Report {
  ok: boolean;
  scope: string;
  keysTotal: number;
  keysScanned: number;
  keysValid: number;
  classes: Record<string, number>;
  otherTypes: Record<string, number>;
  largeValues: number;
  plaintextFormats: Record<string, number>;
  staleLocks: { count: number; keys: string[] };
  failureCounts: Record<string, number>;
  failures: Array<{ key: string; reason: string }>;
  nodes: string[];
}

describe('verify scans every key of the database', () => {
  it('classifies every kind of key, fails only on plaintext sessions, prints no value and no session ID', async () => {
    const c = node.admin;
    await c.flushall();
    // Ours: envelopes (one larger than the 16 KiB GETRANGE reads first), a tombstone and a handler lock.
    const ids = Array.from({ length: 12 }, (_, i) => sid('env', i));
    for (const id of ids) await seal(c, id, `user|s:3:"abc";n|i:${id.length};`);
    await seal(c, sid('big', 0), `blob|s:40000:"${'x'.repeat(40_000)}";`);
    const gone = codec.keyName(PREFIX, sid('gone', 0));
    await c.set(tombstoneKeyFor(PREFIX, gone), '1', 'EX', 600);
    await c.set(lockKeyFor(PREFIX, codec.keyName(PREFIX, ids[0]!)), 'owner-token', 'PX', 30_000);

    // Plaintext sessions PHP itself encoded, under every serialize handler, in several places.
    const plainIds: string[] = [];
    for (const [i, e] of encoded.entries()) {
      const id = `${'PLAINID'}${i}${randomBytes(12).toString('hex')}`;
      plainIds.push(id);
      await c.set(`PHPREDIS_SESSION:${id}`, e.bytes, 'EX', 900);
      await c.set(`framework:sessions:${id}`, e.bytes);
    }
    // One past the 16 KiB cap, under a binary (non-UTF-8) key name.
    const bigPlainName = Buffer.concat([Buffer.from('cache:\xff:', 'latin1'), Buffer.from(`PLAINIDBIG${randomBytes(12).toString('hex')}`)]);
    await c.set(bigPlainName, Buffer.from(`user|s:40000:"${'y'.repeat(40_000)}";`));
    // Two past the 8 MiB verify reads of other values, which begin like a PHP session: read whole all
    // the same (one whose first value decodes within the first 16 KiB, one whose first value is the
    // long one), so they fail as plaintext (an adversarial review found them let through as "large").
    const big = 9 * 1024 * 1024;
    await c.set('app:bigsession:1', Buffer.from(`user|s:5:"alice";blob|s:${big}:"${'z'.repeat(big)}";`));
    await c.set('app:bigsession:2', Buffer.from(`blob|s:${big}:"${'z'.repeat(big)}";user|s:3:"bob";`));
    // phpredis's empty session (SET key "" NX EX; `a:0:{}` under php_serialize) and its locks: with a
    // TTL, and a stale one without.
    await c.set(`PHPREDIS_SESSION:${sid('empty', 0)}`, '', 'EX', 900);
    await c.set(`PHPREDIS_SESSION:${sid('empty', 1)}`, 'a:0:{}', 'EX', 900);
    await c.set(`PHPREDIS_SESSION:${sid('lock', 0)}_LOCK`, 'web-1|4242', 'PX', 30_000);
    await c.set(`PHPREDIS_SESSION:${sid('stale', 0)}_LOCK`, 'web-2|4343');
    // Other applications: strings (some binary, one 9 MiB: past what verify reads), an empty one, every other type.
    for (const [i, v] of OTHER_STRINGS.entries()) await c.set(`app:value:${i}`, v);
    await c.set('app:empty', '');
    await c.set('app:large', Buffer.alloc(9 * 1024 * 1024, 0x61));
    await c.set('app:mid', Buffer.alloc(20_000, 0x62));
    await c.hset('app:hash', 'user', 'MARKER-secret-hash');
    await c.rpush('app:list', 'MARKER-secret-list', 'b');
    await c.sadd('app:set', 'MARKER-secret-set');
    await c.zadd('app:zset', 1, 'MARKER-secret-zset');
    await c.xadd('app:stream', '*', 'f', 'MARKER-secret-stream');
    // A key under the prefix that PHP would load: planted plaintext, named for what it is.
    await c.set(`${PREFIX}planted`, encoded[0]!.bytes);

    // Our classifier agrees with PHP on every value used here.
    const strings = [...encoded.map((e) => e.bytes), ...OTHER_STRINGS];
    const verdicts = phpLoads(strings);
    strings.forEach((s, i) => expect(loadableSessionFormat(s) !== undefined, `value ${i}`).toBe(verdicts[i]!.length > 0));
    encoded.forEach((e, i) => expect(verdicts[i]).toContain(loadableSessionFormat(e.bytes)));

    const r = cli(['verify', '--target', node.url, '--key-file', keyFile, '--json']);
    expect(r.status, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.scope).toBe('database');
    expect(report.classes).toEqual({
      envelope: 13,
      tombstone: 1,
      'handler-lock': 1,
      invalid: 0,
      'plaintext-session': 4 + 4 + 1 + 1 + 2,
      'empty-session': 2,
      lock: 1,
      'stale-lock': 1,
      other: OTHER_STRINGS.length + 3 + 5, // the strings, app:empty, app:large, app:mid, and the 5 other types
    });
    expect(report.keysTotal).toBe(13 + 1 + 1 + 12 + 2 + 1 + 1 + OTHER_STRINGS.length + 3 + 5);
    expect(report.keysScanned).toBe(13 + 1 + 1 + 1);
    expect(report.keysValid).toBe(13);
    expect(report.otherTypes).toEqual({ string: OTHER_STRINGS.length + 3, hash: 1, list: 1, set: 1, zset: 1, stream: 1 });
    expect(report.largeValues).toBe(1);
    expect(report.plaintextFormats).toEqual({ php: 6, php_binary: 2, php_serialize: 2, igbinary: 2 });
    expect(report.staleLocks.count).toBe(1);
    expect(report.failureCounts).toEqual({ 'plaintext-session': 12 });
    expect(report.failures.map((f) => f.key).sort()).toContain(`${PREFIX}planted`);
    // The stale lock is a warning with the fix, on stderr.
    expect(r.stderr).toMatch(/1 phpredis session lock\(s\) without a TTL .*redis\.session\.lock_expire/);

    // Nothing of any value, and no session ID, in any output.
    const human = cli(['verify', '--target', node.url, '--key-file', keyFile]);
    expect(human.status).toBe(1);
    for (const out of [r.stdout, r.stderr, human.stdout, human.stderr]) {
      expect(out).not.toMatch(/MARKER/);
      for (const id of plainIds) expect(out).not.toContain(id);
      expect(out).not.toContain(sid('stale', 0));
    }
    expect(human.stdout).toMatch(/FAIL +PHPREDIS_SESSION:PLAINI…: plaintext-session/);
    expect(human.stdout).toMatch(/FAIL +cache:\\\\xff:PLAINI…: plaintext-session/);
    expect(human.stdout).toMatch(/scanned +\d+ key\(s\): every key of the database/);
    expect(human.stdout).toMatch(
      /other +20 key\(s\) of other applications, not sessions \(string 15, .*; 1 string\(s\) larger than 8\.0 MiB not read\): not a failure/,
    );

    // --prefix-only: today's scope; the plaintext elsewhere is not looked at, the planted key still fails.
    const prefixOnly = cli(['verify', '--target', node.url, '--key-file', keyFile, '--prefix-only', '--json']);
    const pr = JSON.parse(prefixOnly.stdout) as Report;
    expect(pr.scope).toBe('prefix');
    expect(pr.keysTotal).toBe(16);
    expect(pr.failureCounts).toEqual({ 'plaintext-session': 1 });

    // Once the plaintext is gone: exit 0, with the stale-lock warning still on stderr.
    await c.del(
      `${PREFIX}planted`,
      bigPlainName,
      'app:bigsession:1',
      'app:bigsession:2',
      ...plainIds.flatMap((id) => [`PHPREDIS_SESSION:${id}`, `framework:sessions:${id}`]),
    );
    const clean = cli(['verify', '--target', node.url, '--key-file', keyFile]);
    expect(clean.status, clean.stdout).toBe(0);
    expect(clean.stderr).toMatch(/without a TTL/);
    expect(clean.stdout).toMatch(/locks +1 phpredis session lock\(s\) with a TTL, 1 without one/);
  });

  it('under the prefix every non-envelope fails with its own reason: empty, plaintext, garbage, another type, no TTL', async () => {
    const c = node.admin;
    await c.flushall();
    await seal(c, sid('ok', 0), 'a|i:1;');
    await c.set(`${PREFIX}empty`, '');
    await c.set(`${PREFIX}garbage`, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    await c.hset(`${PREFIX}hash`, 'a', 'b');
    const noTtl = codec.keyName(PREFIX, sid('nottl', 0));
    await c.set(noTtl, codec.seal(noTtl, Buffer.from('a|i:1;')));
    await c.set(`${PREFIX}destroyed:{bad}`, '1', 'EX', 60);
    const r = cli(['verify', '--target', node.url, '--key-file', keyFile, '--json']);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.failureCounts).toEqual({ 'empty-value': 1, 'not-envelope': 1, 'wrong-type': 1, 'no-ttl': 1, 'bad-tombstone': 1 });
    expect(report.classes).toMatchObject({ envelope: 1, invalid: 5 });
  });

  // Fresh-clone review: a Redis source in the target's database before purge, and one plaintext session
  // under a name that is no session ID. The plaintext-remains entries used up the listing cap (1,000
  // in the CLI), so the plaintext-session failure verify says to fix first was listed nowhere.
  it("a Redis source's plaintext keys left until purge do not use up the listing cap: every other failure is listed", async () => {
    const c = node.admin;
    await c.flushall();
    const pipe = c.pipeline();
    for (let i = 0; i < 60; i++) pipe.set(`PHPREDIS_SESSION:${sid('left', i)}`, 'user|s:5:"alice";', 'EX', 600);
    pipe.set('PHPREDIS_SESSION:bad.id!', 'user|s:5:"alice";', 'EX', 600);
    await pipe.exec();
    await seal(c, sid('ok', 0), 'a|i:1;');
    const conn = await RedisConnection.open(specFromUrl(node.url, {}, 'target'));
    try {
      const report = await verifyTarget({
        client: conn,
        codec,
        prefix: PREFIX,
        plaintext: { client: conn, prefix: 'PHPREDIS_SESSION:', url: node.url },
        maxListed: 20,
      });
      expect(report.failureCounts).toEqual({ 'plaintext-remains': 60, 'plaintext-session': 1 });
      // SUMMARIZED_LISTED (10) plaintext-remains entries, apart from the cap of 20 the others get.
      expect(report.failures.filter((f) => f.reason === 'plaintext-remains')).toHaveLength(10);
      expect(report.failures.filter((f) => f.reason !== 'plaintext-remains')).toEqual([
        { key: 'PHPREDIS_SESSION:bad.id!', reason: 'plaintext-session' },
      ]);
    } finally {
      conn.close();
    }
  });

  it('keys deleted, expiring or replaced by another type during the scan are never a failure (live traffic)', async () => {
    const c = node.admin;
    await c.flushall();
    const n = 20_000;
    for (let i = 0; i < n; i += 1000) {
      const pipe = c.pipeline();
      for (let j = i; j < i + 1000; j++) {
        const key = codec.keyName(PREFIX, sid('race', j));
        pipe.set(key, codec.seal(key, Buffer.from('a|i:1;')), 'PX', j % 4 === 0 ? 50 + (j % 400) : 600_000);
        pipe.set(`app:race:${j}`, j % 2 === 0 ? '' : 'v');
      }
      await pipe.exec();
    }
    const conn = await RedisConnection.open(specFromUrl(node.url, {}, 'target'));
    // Meanwhile: logouts delete sessions (DEL), other keys vanish or turn into hashes.
    let stop = false;
    let changed = 0;
    const churn = (async () => {
      for (let j = 0; !stop && j < n; j++, changed++) {
        const k = `app:race:${j}`;
        if (j % 3 === 0) await c.del(codec.keyName(PREFIX, sid('race', j)), k);
        else if (j % 3 === 1) await c.multi().del(k).hset(k, 'f', 'v').exec();
      }
    })();
    try {
      const report = await verifyTarget({ client: conn, codec, prefix: PREFIX, scanCount: 200 });
      const during = changed;
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      // The churn really ran alongside the scan.
      expect(during).toBeGreaterThan(500);
      expect(report.keysTotal).toBeLessThan(2 * n);
    } finally {
      stop = true;
      await churn;
      conn.close();
    }
  });

  it('many keys of other applications: every one classified, counts exact, whichever way the scan reads them', async () => {
    const c = node.admin;
    // Mostly strings (GETRANGE first), then mostly other types (the scan asks TYPE first): every
    // kind of string (empty, past the cap, a plaintext session, binary) in both.
    for (const otherShare of [1, 6]) {
      await c.flushall();
      const n = 12_000;
      const expected = { string: 0, hash: 0, list: 0, plaintext: 0 };
      for (let i = 0; i < n; i += 1000) {
        const pipe = c.pipeline();
        for (let j = i; j < i + 1000; j++) {
          const kind = j % 10;
          if (kind < otherShare) {
            if (j % 3 === 0) {
              pipe.hset(`bulk:h:${j}`, 'f', 'v');
              expected.hash++;
            } else {
              pipe.rpush(`bulk:l:${j}`, 'v');
              expected.list++;
            }
          } else if (kind === 7) {
            pipe.set(`PHPREDIS_SESSION:${sid('bulk', j)}`, encoded[j % 4]!.bytes);
            expected.plaintext++;
          } else {
            pipe.set(
              `bulk:s:${j}`,
              j % 7 === 0 ? '' : j % 11 === 0 ? Buffer.alloc(20_000, 0x41) : j % 3 === 0 ? binaryNoSession(64, j) : `value-${j}`,
            );
            expected.string++;
          }
        }
        await pipe.exec();
      }
      for (let i = 0; i < 10; i++) await seal(c, sid('few', i), 'a|i:1;');
      const r = cli(['verify', '--target', node.url, '--key-file', keyFile, '--json']);
      expect(r.status, r.stderr).toBe(1);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.keysTotal).toBe(n + 10);
      expect(report.otherTypes).toEqual(
        Object.fromEntries(Object.entries({ string: expected.string, hash: expected.hash, list: expected.list }).filter(([, v]) => v > 0)),
      );
      expect(report.classes).toMatchObject({ envelope: 10, 'plaintext-session': expected.plaintext, invalid: 0 });
      expect(report.failureCounts).toEqual({ 'plaintext-session': expected.plaintext });
    }
  });
});

/**
 * Binary bytes that PHP can never load as a session, whatever the seed: no `|` (the php handler's
 * delimiter: no variable at all), a first byte of 0xff (php_binary: an undefined name of 127 bytes,
 * longer than the value; php_serialize wants `a:`; igbinary wants its 0x00000002 header). Random bytes
 * would now and then hold `|N;` and be, correctly, a plaintext session: a flaky count.
 */
function binaryNoSession(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = (x & 0xff) === 0x7c ? 0x7d : x & 0xff;
  }
  b[0] = 0xff;
  return b;
}

describe('verify with many keys of other applications', () => {
  it("classifies 200,000 non-session keys with V8's heap capped at 48 MiB: bounded memory, counts exact", async () => {
    const c = node.admin;
    await c.flushall();
    const n = 200_000;
    for (let i = 0; i < n; i += 5000) {
      const pipe = c.pipeline();
      for (let j = i; j < i + 5000; j++) {
        if (j % 5 === 0) pipe.hset(`many:h:${j}`, 'f', 'v');
        else pipe.set(`many:s:${j}`, j % 2 === 0 ? `value-${j}` : binaryNoSession(48, j));
      }
      await pipe.exec();
    }
    // Memory that grew with the keys would end in a heap-limit crash here (bench/verify.ts measures the peak).
    const r = cli(['verify', '--target', node.url, '--key-file', keyFile, '--json'], { NODE_OPTIONS: '--max-old-space-size=48' });
    expect(r.status, r.stderr.slice(0, 500) + r.stdout.slice(0, 3000)).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.keysTotal).toBe(n);
    expect(report.otherTypes).toEqual({ string: n - n / 5, hash: n / 5 });
    await c.flushall();
  }, 180_000);
});

describe('verify on a Redis Cluster', () => {
  let cluster: ClusterTopology;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('scans every master: plaintext anywhere fails, whatever its slot', async () => {
    const client = cluster.client();
    for (let i = 0; i < 60; i++) await seal(client, sid('clu', i), 'a|i:1;');
    // Plaintext spread over the slots (so over all masters), and other keys.
    for (let i = 0; i < 30; i++) await client.set(`PHPREDIS_SESSION:${sid('cpl', i)}`, encoded[i % 4]!.bytes, 'EX', 600);
    for (let i = 0; i < 90; i++) await client.set(`other:${i}`, `x${i}`);
    const perNode = await Promise.all(cluster.nodes.map(async (n) => (await n.admin.keys('PHPREDIS_SESSION:*')).length));
    expect(perNode.every((k) => k > 0)).toBe(true);
    const r = cli(['verify', '--target', cluster.url, '--key-file', keyFile, '--json']);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.nodes).toHaveLength(3);
    expect(report.keysTotal).toBe(180);
    expect(report.classes).toMatchObject({ envelope: 60, 'plaintext-session': 30, other: 90 });
    expect(report.failureCounts).toEqual({ 'plaintext-session': 30 });
    for (let i = 0; i < 30; i++) expect(r.stdout).not.toContain(sid('cpl', i));
  });
});

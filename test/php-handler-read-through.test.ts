/**
 * Read-through (migrating) mode of the generated handler, with real PHP and a real redis-server:
 * on a Redis miss the handler reads the legacy `files` session (save_path `N;/path`, php-src
 * ext/session/mod_files.c), never through a symbolic link, never for an ID PHP would refuse, never
 * when the file is past gc_maxlifetime or the session has a tombstone; destroy() leaves the tombstone
 * `<prefix>destroyed:{<64 hex>}` = "1" with TTL gc_maxlifetime. Nothing plaintext is ever written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, lockKeyFor, tombstoneKeyFor } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { caseFile } from './support/fixtures.ts';
import { PHP_DIR, PHP_EXTENSIONS, lastJson, renderInto, runPhp, sessionRequest, vectors, type Rendered } from './php/harness.ts';

const MASTER = vectors.master_key_base64;
const PREFIX = 'smsess:';
/** php -n: session.gc_maxlifetime is PHP's default. */
const PHP_DEFAULT_MAXLIFETIME = 1440;
const hex = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'latin1') : b).toString('hex');

interface OpsOutput {
  construct: string | null;
  results: unknown[];
  logs: string[];
}

let redis: RedisServer;
let rendered: Rendered;
let codec: EnvelopeCodec;
let tmp: string;
let seq = 0;

/**
 * Runs envelope-ops.php with read-through over `dir` at `depth`; `o.asUid`: as that user (and
 * group), through setpriv(1) (only when this process is root); `o.locking`: SessionLock options;
 * `o.timeoutMs`: kill PHP after this long (a hang fails the test instead of stalling it).
 */
function ops(
  dir: string,
  depth: number,
  list: Array<Record<string, unknown>>,
  o: { asUid?: number; autoload?: string; locking?: Record<string, unknown>; ini?: string[]; timeoutMs?: number } = {},
): OpsOutput {
  if (o.asUid !== undefined || o.timeoutMs !== undefined) {
    const php = [
      'php',
      '-n',
      ...PHP_EXTENSIONS,
      ...['-d', 'error_reporting=-1', '-d', 'display_errors=stderr'],
      ...(o.ini ?? []).flatMap((setting) => ['-d', setting]),
      join(PHP_DIR, 'envelope-ops.php'),
      o.autoload ?? rendered.autoloadFile,
    ];
    const argv = o.asUid !== undefined ? [`--reuid=${o.asUid}`, `--regid=${o.asUid}`, '--clear-groups', ...php] : php;
    const input = JSON.stringify({ redisPort: redis.port, keys: [MASTER], readThrough: { dir, depth }, locking: o.locking, ops: list });
    const res = spawnSync(o.asUid !== undefined ? 'setpriv' : argv.shift()!, argv, {
      encoding: 'utf8',
      input,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: tmpdir() },
      timeout: o.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
    expect(res.signal, 'php was killed: it hung').toBeNull();
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const out = lastJson<OpsOutput>({ status: res.status, stdout: res.stdout, stderr: res.stderr });
    expect(out.construct).toBeNull();
    return out;
  }
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
    { input: JSON.stringify({ redisPort: redis.port, keys: [MASTER], readThrough: { dir, depth }, locking: o.locking, ops: list }) },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const out = lastJson<OpsOutput>(run);
  expect(out.construct).toBeNull();
  return out;
}

/** A fresh legacy session directory with `depth` levels prepared for `ids`. */
function legacyDir(): string {
  const dir = join(tmp, `legacy-${++seq}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** Writes a legacy session file where PHP's files handler keeps it (creating the depth directories). */
function plantSession(dir: string, depth: number, id: string, data: string, ageSeconds = 10): string {
  let d = dir;
  for (let i = 0; i < depth; i++) {
    d = join(d, id[i]!);
    mkdirSync(d, { recursive: true });
  }
  const file = join(d, `sess_${id}`);
  writeFileSync(file, Buffer.from(data, 'latin1'), { mode: 0o600 });
  const t = Date.now() / 1000 - ageSeconds;
  utimesSync(file, t, t);
  return file;
}

/** Every path below a directory (to prove nothing was written). */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: false }).map(String).sort();
}

const keyOf = (id: string) => codec.keyName(PREFIX, id);
const tombstoneOf = (id: string) => tombstoneKeyFor(PREFIX, keyOf(id));
const lockOf = (id: string) => lockKeyFor(PREFIX, keyOf(id));
/** The user the "another user" tests run PHP as (nobody); they need root to switch to it. */
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  redis = await startRedis();
  rendered = renderInto({ redis: { host: '127.0.0.1', port: redis.port, timeoutSeconds: 2 } });
  codec = await EnvelopeCodec.create([Buffer.from(MASTER, 'base64')]);
  tmp = mkdtempSync(join(tmpdir(), 'sm-read-through-'));
});

afterAll(async () => {
  await redis?.stop();
  if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('read-through: a Redis miss reads the legacy file', () => {
  it('depth 0: read returns the file bytes, validateId is true, nothing is written until PHP writes', async () => {
    const dir = legacyDir();
    const id = 'rtdepth0aaaaaaaaaaaaaaaaaaaaaa1';
    const data = 'uid|i:42;name|s:4:"Zo\xc3\xab";';
    plantSession(dir, 0, id, data);
    const before = tree(dir);
    const out = ops(dir, 0, [
      { op: 'validateId', sessionId: id },
      { op: 'read', sessionId: id },
      { op: 'tombstoneName', sessionId: id },
    ]);
    expect(out.results[0]).toBe(true);
    expect(out.results[1]).toBe(hex(data));
    expect(out.results[2]).toBe(tombstoneOf(id)); // PHP and TypeScript agree on the tombstone name
    expect(await redis.client.exists(keyOf(id))).toBe(0); // read alone stores nothing
    expect(tree(dir)).toEqual(before);
    expect(out.logs).toEqual([`session-migrate: read-through: took over the legacy session file of ${keyOf(id)}`]);
    expect(out.logs.join('\n')).not.toContain(id);
  });

  it('after write() the session lives in Redis: the (older) file is no longer read', async () => {
    const dir = legacyDir();
    const id = 'rtwrite0aaaaaaaaaaaaaaaaaaaaaa1';
    plantSession(dir, 0, id, 'v|i:1;');
    const out = ops(dir, 0, [
      { op: 'read', sessionId: id },
      { op: 'write', sessionId: id, dataHex: hex('v|i:2;') },
      { op: 'read', sessionId: id },
    ]);
    expect(out.results).toEqual([hex('v|i:1;'), true, hex('v|i:2;')]);
    const stored = await redis.client.getBuffer(keyOf(id));
    expect(codec.open(keyOf(id), stored!)).toMatchObject({ ok: true, plaintext: Buffer.from('v|i:2;') });
    expect(readFileSync(join(dir, `sess_${id}`), 'latin1')).toBe('v|i:1;'); // never writes plaintext
  });

  it('depth 2: reads dir/<c1>/<c2>/sess_<id>; a file at the wrong depth is not a session', async () => {
    const dir = legacyDir();
    const id = 'b-,depth2aaaaaaaaaaaaaaaaaaaaaa';
    plantSession(dir, 2, id, 'd|i:2;');
    const wrong = 'wrongdepth2aaaaaaaaaaaaaaaaaaaa';
    plantSession(dir, 0, wrong, 'd|i:0;');
    const out = ops(dir, 2, [
      { op: 'read', sessionId: id },
      { op: 'read', sessionId: wrong },
      { op: 'validateId', sessionId: wrong },
    ]);
    expect(out.results).toEqual([hex('d|i:2;'), '', false]);
    // An ID no longer than the depth: PHP's files handler has no path for it.
    expect(ops(dir, 2, [{ op: 'read', sessionId: 'b-' }]).results).toEqual(['']);
  });

  it('BUG-15 tree (save_path 2;0660;tree): reads exactly the three real sessions, never the decoys', async () => {
    const tree = join(legacyDir(), 'tree');
    cpSync(caseFile('BUG-15', 'tree'), tree, { recursive: true }); // fresh mtimes: live
    const expected = JSON.parse(readFileSync(caseFile('BUG-15', 'expected.json'), 'utf8')) as {
      expected_toolkit: { discover_tree_with_depth_2: string[] };
    };
    const real = expected.expected_toolkit.discover_tree_with_depth_2.map((p) => p.split('/sess_')[1]!);
    expect(real).toHaveLength(3);
    const decoys = ['abcdef0123456789abcdef01234567.bak', 'ab.cd0123456789abcdef012345', 'zz0000000000000000000000000000'];
    const list = [...real, ...decoys].flatMap((sessionId) => [
      { op: 'validateId', sessionId },
      { op: 'read', sessionId },
    ]);
    const out = ops(tree, 2, list);
    const fileHex = (p: string) => readFileSync(join(tree, p.replace(/^tree\//, ''))).toString('hex');
    expect(out.results).toEqual([
      ...expected.expected_toolkit.discover_tree_with_depth_2.flatMap((p) => [true, fileHex(p)]),
      ...decoys.flatMap(() => [false, '']),
    ]);
  });

  it('a symlinked session file or directory is never followed', async () => {
    const dir = legacyDir();
    const outside = join(tmp, `outside-${seq}`);
    mkdirSync(join(outside, 'k'), { recursive: true });
    writeFileSync(join(outside, 'secret'), 'admin|b:1;');
    const fileLink = 'symlinkfileaaaaaaaaaaaaaaaaaaaa';
    symlinkSync(join(outside, 'secret'), join(dir, `sess_${fileLink}`));
    const out0 = ops(dir, 0, [
      { op: 'validateId', sessionId: fileLink },
      { op: 'read', sessionId: fileLink },
    ]);
    expect(out0.results).toEqual([false, '']);

    // depth 2: the first level is a symlink to a directory that holds a valid-looking session
    const dir2 = legacyDir();
    const id = 'sksymlinkdiraaaaaaaaaaaaaaaaaaa';
    writeFileSync(join(outside, 'k', `sess_${id}`), 'admin|b:1;');
    symlinkSync(outside, join(dir2, 's'));
    const out2 = ops(dir2, 2, [
      { op: 'validateId', sessionId: id },
      { op: 'read', sessionId: id },
      { op: 'destroy', sessionId: id },
    ]);
    expect(out2.results).toEqual([false, '', true]);
    expect(existsSync(join(outside, 'k', `sess_${id}`))).toBe(true); // destroy did not follow it either

    // a symlinked base directory is refused too
    const linkedBase = join(tmp, `linked-base-${seq}`);
    const realBase = legacyDir();
    plantSession(realBase, 0, 'linkedbaseaaaaaaaaaaaaaaaaaaaaa', 'x|i:1;');
    symlinkSync(realBase, linkedBase);
    const linked = ops(linkedBase, 0, [{ op: 'read', sessionId: 'linkedbaseaaaaaaaaaaaaaaaaaaaaa' }]);
    expect(linked.results).toEqual(['']);
    // ... and said in the log: otherwise every user of the fleet starts empty without a word
    expect(linked.logs).toEqual([
      `session-migrate: read-through: the legacy session directory ${linkedBase} is missing, not a directory, a symbolic link or not reachable by this process (open_basedir?): no legacy session can be read`,
    ]);
  });

  it("a file past gc_maxlifetime is gone, as PHP's files GC would delete it", async () => {
    const dir = legacyDir();
    const old = 'expiredaaaaaaaaaaaaaaaaaaaaaaaa';
    const live = 'stillliveaaaaaaaaaaaaaaaaaaaaaa';
    plantSession(dir, 0, old, 'o|i:1;', PHP_DEFAULT_MAXLIFETIME + 5);
    plantSession(dir, 0, live, 'l|i:1;', PHP_DEFAULT_MAXLIFETIME - 60);
    const out = ops(dir, 0, [
      { op: 'validateId', sessionId: old },
      { op: 'read', sessionId: old },
      { op: 'validateId', sessionId: live },
      { op: 'read', sessionId: live },
    ]);
    expect(out.results).toEqual([false, '', true, hex('l|i:1;')]);
  });

  it('an ID outside [A-Za-z0-9,-] never touches the file system, even where a file exists for it', async () => {
    const dir = legacyDir();
    // files at exactly the paths the bad IDs would name
    writeFileSync(join(dir, 'sess_ab.c'), 'dot|i:1;');
    mkdirSync(join(dir, 'sess_q'));
    writeFileSync(join(tmp, `escaped-${seq}`), 'escaped|i:1;');
    const traversal = `q/../../escaped-${seq}`;
    const bad = ['ab.c', traversal, 'a b', 'x\u0000y', ''];
    const list = bad.flatMap((sessionId) => [
      { op: 'validateId', sessionId },
      { op: 'read', sessionId },
    ]);
    const out = ops(dir, 0, list);
    expect(out.results).toEqual(bad.flatMap(() => [false, '']));
    expect(out.logs).toEqual([]);
    // destroy of such an ID removes nothing from the file system
    ops(dir, 0, [
      { op: 'destroy', sessionId: 'ab.c' },
      { op: 'destroy', sessionId: traversal },
    ]);
    expect(existsSync(join(dir, 'sess_ab.c'))).toBe(true);
    expect(existsSync(join(tmp, `escaped-${seq}`))).toBe(true);
  });
});

describe('read-through: hostile and broken legacy files (php-src ext/session/mod_files.c is the oracle)', () => {
  /**
   * Where PHP running as NOBODY finds the handler and the legacy directories: the tests' own temp root
   * is private (0700), so this one lives directly in /tmp (searchable, not listable), removed afterwards.
   */
  let shared: string;
  let sharedAutoload: string;
  beforeAll(() => {
    if (!isRoot) return;
    shared = mkdtempSync('/tmp/sm-rt-nobody-');
    chmodSync(shared, 0o711);
    const r = renderInto({ redis: { host: '127.0.0.1', port: redis.port, timeoutSeconds: 2 } }, join(shared, 'gen'));
    spawnSync('chmod', ['-R', 'a+rX', r.dir]);
    sharedAutoload = r.autoloadFile;
  });
  afterAll(() => {
    if (shared) rmSync(shared, { recursive: true, force: true });
  });
  function sharedDir(): string {
    const dir = join(shared, `legacy-${++seq}`);
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    return dir;
  }

  it.skipIf(!isRoot)("a file of another user is not a session (ps_files_open: 'not created by your uid'); root's and our own are", () => {
    const dir = sharedDir();
    const planted = 'plantedbyotheruseraaaaaaaaaaaa1';
    const own = 'ownedbyphpuseraaaaaaaaaaaaaaaa1';
    const rootOwned = 'ownedbyrootaaaaaaaaaaaaaaaaaaa1';
    for (const [id, uid] of [
      [planted, 4242],
      [own, NOBODY],
      [rootOwned, 0],
    ] as const) {
      const file = plantSession(dir, 0, id, `admin|b:1;who|i:${uid};`);
      chmodSync(file, 0o644);
      chownSync(file, uid, uid);
    }
    const out = ops(
      dir,
      0,
      [planted, own, rootOwned].flatMap((sessionId) => [
        { op: 'validateId', sessionId },
        { op: 'read', sessionId },
      ]),
      { asUid: NOBODY, autoload: sharedAutoload },
    );
    expect(out.results).toEqual([false, '', true, hex('admin|b:1;who|i:65534;'), true, hex('admin|b:1;who|i:0;')]);
    const refused = `session-migrate: read-through: the legacy session file of ${keyOf(planted)} belongs to uid 4242, not to this process's user or root; ignored, as PHP's files handler ignores it`;
    expect(out.logs.filter((l) => l.includes('belongs to uid'))).toEqual([refused, refused]);
    expect(out.logs.join('\n')).not.toContain(planted);
    // PHP's files handler running as root accepts any owner (getuid() == 0): so does the handler.
    expect(ops(dir, 0, [{ op: 'read', sessionId: planted }]).results).toEqual([hex('admin|b:1;who|i:4242;')]);
  });

  it.skipIf(!isRoot)('a live file PHP cannot read fails the read (as ps_files_read) instead of starting an empty session', async () => {
    const dir = sharedDir();
    const id = 'unreadableaaaaaaaaaaaaaaaaaaaa1';
    const file = plantSession(dir, 0, id, 'cart|i:3;');
    chownSync(file, NOBODY, NOBODY);
    chmodSync(file, 0o000);
    const out = ops(
      dir,
      0,
      [
        { op: 'validateId', sessionId: id },
        { op: 'read', sessionId: id },
        { op: 'sessionStart', sessionId: id },
      ],
      { asUid: NOBODY, autoload: sharedAutoload },
    );
    expect(out.results[0]).toBe(true);
    expect(out.results[1]).toBe(false);
    expect(out.results[2]).toMatchObject({ started: false, active: false });
    expect(out.logs).toContain(`session-migrate: read-through: cannot open the legacy session file of ${keyOf(id)}`);
    expect(out.logs.join('\n')).not.toContain(id);
    expect(await redis.client.exists(keyOf(id))).toBe(0); // nothing stored that would hide the file
    chmodSync(file, 0o600); // readable again: the session is served
    expect(ops(dir, 0, [{ op: 'read', sessionId: id }], { asUid: NOBODY, autoload: sharedAutoload }).results).toEqual([hex('cart|i:3;')]);
  });

  it('a FIFO swapped in for the file between lstat() and open() never blocks the worker', async () => {
    const dir = legacyDir();
    const id = 'fifoswapaaaaaaaaaaaaaaaaaaaaaa1';
    const target = plantSession(dir, 0, id, 'f|i:1;');
    const spareFile = join(dir, 'spare-file');
    const spareFifo = join(dir, 'spare-fifo');
    expect(spawnSync('mkfifo', [spareFifo]).status).toBe(0);
    // T alternates: regular file, absent, FIFO, absent, ... as fast as rename(2) goes
    const swapper = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const [t, f, p] = process.argv.slice(1);
         process.stdout.write('swapping\\n');
         for (;;) { fs.renameSync(t, f); fs.renameSync(p, t); fs.renameSync(t, p); fs.renameSync(f, t); }`,
        target,
        spareFile,
        spareFifo,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    await new Promise((resolve) => swapper.stdout!.once('data', resolve));
    try {
      const reads = Array.from({ length: 2000 }, () => ({ op: 'read', sessionId: id }));
      const out = ops(dir, 0, reads, { timeoutMs: 15_000 });
      for (const r of out.results) expect([hex('f|i:1;'), '', false]).toContain(r);
      expect(out.results).toContain(hex('f|i:1;'));
    } finally {
      swapper.kill('SIGKILL');
    }
    await new Promise((resolve) => swapper.once('exit', resolve));
    expect(await redis.client.exists(keyOf(id))).toBe(0);
  });

  it('a directory, a FIFO or an empty file under a session name: only the empty file is a (empty) session, as PHP reads it', () => {
    const dir = legacyDir();
    const asDir = 'isadirectoryaaaaaaaaaaaaaaaaaa1';
    const asFifo = 'isafifoaaaaaaaaaaaaaaaaaaaaaaa1';
    const empty = 'isemptyaaaaaaaaaaaaaaaaaaaaaaa1';
    mkdirSync(join(dir, `sess_${asDir}`));
    expect(spawnSync('mkfifo', [join(dir, `sess_${asFifo}`)]).status).toBe(0);
    plantSession(dir, 0, empty, '');
    const out = ops(
      dir,
      0,
      [asDir, asFifo, empty].flatMap((sessionId) => [
        { op: 'validateId', sessionId },
        { op: 'read', sessionId },
      ]),
      { timeoutMs: 20_000 },
    );
    expect(out.results).toEqual([false, '', false, '', true, '']);
  });
});

describe('read-through: two requests of a session that lives only in its legacy file', () => {
  it('validateId while another request holds the lock: the file makes the ID exist, unless a tombstone says destroyed', async () => {
    const dir = legacyDir();
    const id = 'busylockaaaaaaaaaaaaaaaaaaaaaa1';
    const gone = 'busylockdestroyedaaaaaaaaaaaaa1';
    const none = 'busylocknofileaaaaaaaaaaaaaaaa1';
    plantSession(dir, 0, id, 'b|i:1;');
    plantSession(dir, 0, gone, 'b|i:2;');
    await redis.client.set(tombstoneOf(gone), '1', 'EX', 600);
    for (const s of [id, gone, none]) await redis.client.set(lockOf(s), 'another-request', 'PX', 60_000);
    const out = ops(
      dir,
      0,
      [id, gone, none].map((sessionId) => ({ op: 'validateId', sessionId })),
      { locking: { enabled: true, retries: 0, waitMicros: 1000 } },
    );
    expect(out.results).toEqual([true, false, false]);
    for (const s of [id, gone, none]) expect(await redis.client.get(lockOf(s))).toBe('another-request'); // untouched
  });
});

describe('read-through: destroy and tombstones', () => {
  it('destroy sets the tombstone ("1", TTL gc_maxlifetime), deletes the key and the legacy file', async () => {
    const dir = legacyDir();
    const id = 'destroyaaaaaaaaaaaaaaaaaaaaaaa1';
    const file = plantSession(dir, 0, id, 'u|i:1;');
    const out = ops(dir, 0, [
      { op: 'read', sessionId: id },
      { op: 'write', sessionId: id, dataHex: hex('u|i:2;') },
      { op: 'destroy', sessionId: id },
      { op: 'validateId', sessionId: id },
      { op: 'read', sessionId: id },
    ]);
    expect(out.results).toEqual([hex('u|i:1;'), true, true, false, '']);
    expect(await redis.client.exists(keyOf(id))).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(await redis.client.get(tombstoneOf(id))).toBe('1');
    const ttl = await redis.client.ttl(tombstoneOf(id));
    expect(ttl).toBeGreaterThan(PHP_DEFAULT_MAXLIFETIME - 10);
    expect(ttl).toBeLessThanOrEqual(PHP_DEFAULT_MAXLIFETIME);
  });

  it('a tombstone blocks the file: a stale copy of a destroyed session is never read', async () => {
    const dir = legacyDir();
    const id = 'tombstoneaaaaaaaaaaaaaaaaaaaaa1';
    plantSession(dir, 0, id, 'stale|i:1;');
    await redis.client.set(tombstoneOf(id), '1', 'EX', 600);
    const out = ops(dir, 0, [
      { op: 'validateId', sessionId: id },
      { op: 'read', sessionId: id },
    ]);
    expect(out.results).toEqual([false, '']);
    expect(out.logs).toEqual([]);
    expect(existsSync(join(dir, `sess_${id}`))).toBe(true); // read never deletes
  });

  it('strict mode (no read-through) ignores legacy files; its destroy leaves a tombstone too, and the file', async () => {
    const dir = legacyDir();
    const id = 'strictmodeaaaaaaaaaaaaaaaaaaaa1';
    plantSession(dir, 0, id, 's|i:1;');
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
          redisPort: redis.port,
          keys: [MASTER],
          ops: [
            { op: 'validateId', sessionId: id },
            { op: 'read', sessionId: id },
            { op: 'destroy', sessionId: id },
          ],
        }),
      },
    );
    expect(lastJson<OpsOutput>(run).results).toEqual([false, '', true]);
    // The tombstone keeps a logout from coming back through an apply re-run or a rollback to files
    // (docs/runbook.md); TTL session.gc_maxlifetime (PHP's default 1440 s here).
    expect(await redis.client.get(tombstoneOf(id))).toBe('1');
    const ttl = await redis.client.ttl(tombstoneOf(id));
    expect(ttl).toBeGreaterThan(1400);
    expect(ttl).toBeLessThanOrEqual(1440);
    expect(existsSync(join(dir, `sess_${id}`))).toBe(true); // strict mode never touches the legacy files
  });
});

describe('read-through through session_start() with the generated ini and bootstrap', () => {
  const MAXLIFETIME = 1000;
  let rt: Rendered;
  let dir: string;

  beforeAll(() => {
    dir = legacyDir();
    rt = renderInto({ redis: { host: '127.0.0.1', port: redis.port, timeoutSeconds: 2 }, readThrough: { savePath: `2;0600;${dir}` } });
  });
  afterAll(() => {
    if (rt) rmSync(rt.dir, { recursive: true, force: true });
  });

  /** Writes a session with PHP's real files handler (save_path 2;DIR), as the fleet did before. */
  function phpFilesWrite(id: string, data: Record<string, unknown>): void {
    for (const sub of [join(dir, id[0]!), join(dir, id[0]!, id[1]!)]) mkdirSync(sub, { recursive: true });
    const run = runPhp([
      '-d',
      `session.save_path="2;${dir}"`,
      '-d',
      'session.use_strict_mode=0',
      '-d',
      'session.use_cookies=0',
      '-d',
      'session.cache_limiter=',
      '-d',
      'error_reporting=-1',
      '-d',
      'display_errors=stderr',
      '-r',
      'session_id($argv[1]); session_start(); foreach (json_decode($argv[2], true) as $k => $v) { $_SESSION[$k] = $v; } session_write_close();',
      '--',
      id,
      JSON.stringify(data),
    ]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  }

  /** One request through the ini + bootstrap; the handler's error_log() lines come back as `logs`. */
  function request(args: string[]): { started: boolean; idAfter: string; session: unknown; stderr: string; logs: string[] } {
    const r = sessionRequest<{ started: boolean; idAfter: string; session: unknown }>(rt, args, {
      dir: tmp,
      env: { SESSION_MIGRATE_KEY: MASTER, TMPDIR: tmpdir() },
      ini: [`session.gc_maxlifetime=${MAXLIFETIME}`],
    });
    return { ...r.out, stderr: r.stderr, logs: r.logs };
  }

  it('strict mode accepts the legacy ID, the session is served and then stored encrypted (unchanged: updateTimestamp)', async () => {
    const id = 'c0ffee00112233445566778899aabbcc';
    phpFilesWrite(id, { user: 'alice', cart: [1, 2] });
    const fileBytes = readFileSync(join(dir, 'c', '0', `sess_${id}`));
    const before = tree(dir);

    const first = request([`--id=${id}`]);
    expect(first).toMatchObject({ started: true, idAfter: id, session: { user: 'alice', cart: [1, 2] }, stderr: '' });
    expect(first.logs).toEqual([`session-migrate: read-through: took over the legacy session file of ${keyOf(id)}`]);
    const stored = await redis.client.getBuffer(keyOf(id));
    expect(stored).not.toBeNull();
    expect(codec.open(keyOf(id), stored!)).toMatchObject({ ok: true, plaintext: fileBytes });
    expect(await redis.client.ttl(keyOf(id))).toBeGreaterThan(MAXLIFETIME - 10);

    const second = request([`--id=${id}`, '--set={"step":2}']);
    expect(second.session).toEqual({ user: 'alice', cart: [1, 2] });
    expect(second.logs).toEqual([]); // served from Redis now
    const third = request([`--id=${id}`, '--destroy']);
    expect(third.session).toEqual({ user: 'alice', cart: [1, 2], step: 2 });
    expect(existsSync(join(dir, 'c', '0', `sess_${id}`))).toBe(false); // logout removed the plaintext
    expect(tree(dir)).toEqual(before.filter((p) => !p.endsWith(`sess_${id}`)));

    const after = request([`--id=${id}`]);
    expect(after.idAfter).not.toBe(id); // strict mode: the destroyed ID is not accepted again
    expect(after.session).toEqual([]);
  });

  it('session_regenerate_id(true) of a file-only session: the new ID carries it, the old ID never comes back from its file', async () => {
    const id = 'feed00112233445566778899aabbccdd';
    phpFilesWrite(id, { user: 'carol' });
    const login = request([`--id=${id}`, '--regenerate']);
    expect(login).toMatchObject({ started: true, session: { user: 'carol' }, stderr: '' });
    expect(login.idAfter).not.toBe(id);
    expect(existsSync(join(dir, 'f', 'e', `sess_${id}`))).toBe(false);
    expect(await redis.client.get(tombstoneOf(id))).toBe('1');
    expect(request([`--id=${login.idAfter}`]).session).toEqual({ user: 'carol' });
    // a copy of the old file coming back (a host still on files, a restore) is not read: tombstone
    phpFilesWrite(id, { user: 'carol', stale: true });
    const replay = request([`--id=${id}`]);
    expect(replay.idAfter).not.toBe(id);
    expect(replay.session).toEqual([]);
    expect(await redis.client.exists(keyOf(id))).toBe(0);
  });

  it('strict mode: a request that finds the lock taken by a concurrent request of a file-only session keeps its session ID', async () => {
    const id = 'ab1e55e0112233445566778899aabbcc';
    phpFilesWrite(id, { user: 'bob' });
    // the first request of this session (the page) holds the lock for 600 ms, not yet stored in Redis
    await redis.client.set(lockOf(id), 'first-request', 'PX', 600);
    const second = request([`--id=${id}`]); // an AJAX call of the same page
    expect(second).toMatchObject({ started: true, idAfter: id, session: { user: 'bob' }, stderr: '' });
    const stored = await redis.client.getBuffer(keyOf(id));
    expect(codec.open(keyOf(id), stored!)).toMatchObject({ ok: true });
  });
});

describe('generate: readThrough option', () => {
  it('bakes the parsed save_path into the bootstrap and notes the mode in the ini fragment; strict by default', async () => {
    const { renderArtifacts, GenerateOptionsError } = await import('@session-migrate/generate');
    const base = { installDir: '/opt/sm', redis: { host: '127.0.0.1' } };
    const [strictBoot, strictIni] = renderArtifacts(base);
    expect(strictBoot!.contents).toContain("'readThrough' => null,");
    expect(strictIni!.contents).toContain('; Strict mode: sessions live only in Redis');
    const [boot, ini] = renderArtifacts({ ...base, readThrough: { savePath: '2;0600;/var/lib/php/sessions;x' } });
    expect(boot!.contents).toContain("'readThrough' => ['dir' => '/var/lib/php/sessions;x', 'depth' => 2],");
    expect(ini!.contents).toContain('; below /var/lib/php/sessions;x (depth 2)');
    for (const savePath of ['0660;/var/lib/php/sessions', '-1;/x', 'sessions', '2;relative/dir', '', '/a"b', '/a\nb']) {
      expect(() => renderArtifacts({ ...base, readThrough: { savePath } }), JSON.stringify(savePath)).toThrow(GenerateOptionsError);
    }
  });

  it('the read-through bootstrap passes php -l and phpcs PSR-12', () => {
    const dir = mkdtempSync(join(tmp, 'psr12-'));
    const r = renderInto({ redis: { host: '127.0.0.1' }, readThrough: { savePath: '1;/srv/sessions' } }, dir);
    for (const f of r.phpFiles) expect(runPhp(['-l', f]).status).toBe(0);
    const cs = spawnSync('phpcs', ['--standard=PSR12', '--report=summary', ...r.phpFiles], { encoding: 'utf8' });
    expect(cs.stdout + cs.stderr).toBe('');
    expect(cs.status).toBe(0);
  });
});

describe("read-through of an old phpredis key of another type (phpredis's own handler is the oracle)", () => {
  // A key named like an old session that holds a hash, a list... (another application's key, a
  // corrupted one): phpredis's PS_READ_FUNC (redis_session.c) GETs it, Redis answers WRONGTYPE,
  // redis_sock_read() returns NULL with a length that is not -1, and the read is FAILURE: PHP's
  // php_session_initialize() (php-src ext/session/session.c) aborts the session and warns "Failed to
  // read session data"; session_start() is false, nothing is written, the key is left as it was.
  // Ours must fail the same way, log one line naming the encrypted key (never the old key, which holds
  // the session ID, nor the key's contents), and never write over the other type's key.
  const OLD = 'PHPREDIS_SESSION:';
  const SECRET = 'another-apps-secret-value';
  let rt: Rendered;

  beforeAll(() => {
    rt = renderInto({
      redis: { host: '127.0.0.1', port: redis.port, timeoutSeconds: 2 },
      readThrough: { savePath: `0;${legacyDir()}`, redisPrefixes: [OLD] },
    });
  });
  afterAll(() => {
    if (rt) rmSync(rt.dir, { recursive: true, force: true });
  });

  const plant: Record<string, (key: string) => Promise<unknown>> = {
    hash: (key) => redis.client.hset(key, 'field', SECRET),
    list: (key) => redis.client.rpush(key, SECRET),
    set: (key) => redis.client.sadd(key, SECRET),
  };
  const dump = async (key: string) => ({ type: await redis.client.type(key), dump: hex((await redis.client.dumpBuffer(key)) ?? '') });

  /** One request of phpredis's own handler (session.save_handler=redis) on this Redis. */
  function nativeRequest(id: string, strict: boolean): { out: { started: boolean; session: unknown }; stderr: string } {
    const run = runPhp([
      ...PHP_EXTENSIONS,
      ...['-d', 'session.save_handler=redis', '-d', `session.save_path=tcp://127.0.0.1:${redis.port}`],
      ...['-d', `session.use_strict_mode=${strict ? 1 : 0}`, '-d', 'redis.session.locking_enabled=1'],
      ...[
        '-d',
        'session.use_cookies=0',
        '-d',
        'session.cache_limiter=',
        '-d',
        'error_reporting=-1',
        '-d',
        'display_errors=stderr',
        '-d',
        'log_errors=0',
      ],
      join(PHP_DIR, 'session-request.php'),
      `--id=${id}`,
      '--set={"n":1}',
    ]);
    expect(run.status).toBe(0);
    return { out: lastJson(run), stderr: run.stderr };
  }

  // Strict mode: validateId() answers "exists" (EXISTS is 1, as phpredis's PS_VALIDATE_SID_FUNC
  // finds), read() fails. Without it, PHP calls read() alone.
  for (const [type, strict] of Object.keys(plant).flatMap((t) => [[t, true] as const, [t, false] as const])) {
    it(`a ${type} (${strict ? 'strict' : 'no strict'} mode): session_start() fails as phpredis's does, one log line naming the encrypted key, the ${type} untouched`, async () => {
      const id = `0dd${type}${strict ? 's' : 'n'}`.padEnd(32, '7');
      const ini = [`session.use_strict_mode=${strict ? 1 : 0}`];
      const old = OLD + id;
      await plant[type]!(old);
      const before = await dump(old);

      const native = nativeRequest(id, strict);
      expect(native.out).toMatchObject({ started: false, session: null });
      expect(native.stderr).toContain('session_start(): Failed to read session data: redis');
      expect(await dump(old)).toEqual(before);

      const ours = sessionRequest<{ started: boolean; idAfter: string; session: unknown }>(rt, [`--id=${id}`, '--set={"n":1}'], {
        dir: tmp,
        env: { SESSION_MIGRATE_KEY: MASTER, TMPDIR: tmpdir() },
        ini,
      });
      expect(ours.out).toMatchObject({ started: false, session: null });
      expect(ours.stderr).toContain('session_start(): Failed to read session data: user');
      expect(ours.logs).toHaveLength(1);
      expect(ours.logs[0]).toContain(keyOf(id));
      expect(ours.logs[0]).toContain('WRONGTYPE');
      for (const secret of [id, SECRET, hex(SECRET)]) {
        expect(ours.logs[0]).not.toContain(secret);
        expect(ours.stderr).not.toContain(secret);
      }
      expect(await dump(old)).toEqual(before);
      expect(await redis.client.exists(keyOf(id), lockOf(id), tombstoneOf(id))).toBe(0);
      // The next request fails the same way at once (no leftover lock to wait for).
      const again = sessionRequest<{ started: boolean }>(rt, [`--id=${id}`], {
        dir: tmp,
        env: { SESSION_MIGRATE_KEY: MASTER, TMPDIR: tmpdir() },
        ini,
      });
      expect(again.out.started).toBe(false);
      expect(await dump(old)).toEqual(before);
      await redis.client.del(old);
    });
  }
});

/**
 * `session-migrate rollback` through the CLI binary, with sessions written by real PHP's files handler
 * (depth 2, mode from the save_path): files -> Redis -> files gives byte-identical files (content,
 * layout, mode, owner, mtime within the second); back into the original directory it replaces stale
 * files with newer Redis copies, keeps files newer than Redis, removes files of destroyed sessions,
 * refuses symlinks; --remove-keys deletes only envelopes that open with the key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Redis } from 'ioredis';
import { EnvelopeCodec, generateKeyFile, readKeyFile, tombstoneKeyFor } from '@session-migrate/envelope';
import { WARNING_TO_FILES } from '@session-migrate/migrate';
import { freePort, startRedis, type RedisServer } from './support/servers.ts';
import { BIN, planArgs } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every regular file under dir: relative path -> { bytes, mode, uid, gid, mtimeMs }. */
function tree(dir: string): Map<string, { data: Buffer; mode: number; uid: number; gid: number; mtimeMs: number }> {
  const out = new Map<string, { data: Buffer; mode: number; uid: number; gid: number; mtimeMs: number }>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = lstatSync(p);
        out.set(relative(dir, p), { data: readFileSync(p), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs });
      }
    }
  };
  walk(dir);
  return out;
}

let redis: RedisServer;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let sessions: string;
let planFile: string;
const ids = [
  'ab0000000000000000000000001',
  'ab0000000000000000000000002',
  'cd0000000000000000000000003',
  'ef0000000000000000000000004',
  'ef0000000000000000000000005',
];

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-rollback-'));
  keyFile = join(root, 'master.key');
  expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
  codec = await EnvelopeCodec.create([readKeyFile(keyFile)]);
  sessions = join(root, 'sessions');
  for (const id of ids) mkdirSync(join(sessions, id[0]!, id[1]!), { recursive: true, mode: 0o700 });
  // Real PHP writes them through the files handler, depth 2, mode 0640 from the save_path.
  for (const [i, id] of ids.entries()) {
    const r = spawnSync(
      'php',
      [
        '-d',
        'session.save_handler=files',
        '-d',
        `session.save_path="2;0640;${sessions}"`,
        '-r',
        'session_id($argv[1]); session_start(); $_SESSION["user"] = $argv[1]; $_SESSION["cart"] = array_fill(0, (int) $argv[2], "Zoë"); session_write_close(); echo "ok";',
        id,
        String(i + 1),
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout + r.stderr).toBe('ok');
  }
  // Ages from 0 to 400 s, so the mtime carried through the TTL is checked.
  ids.forEach((id, i) => {
    const t = Date.now() / 1000 - i * 100;
    utimesSync(join(sessions, id[0]!, id[1]!, `sess_${id}`), t, t);
  });
  planFile = join(root, 'plan.json');
  expect(
    cli([
      'plan',
      '--source',
      `files:2;0640;${sessions}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--artifacts-dir',
      join(root, 'art'),
    ]).status,
  ).toBe(0);
  const apply = cli(['apply', '--plan', planFile, '--json']);
  expect(apply.status, apply.stderr).toBe(0);
  expect((JSON.parse(apply.stdout) as { sessions: { counts: { migrated: number } } }).sessions.counts.migrated).toBe(5);
});
afterAll(async () => {
  await redis.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('rollback --to files', () => {
  it('round trip files -> Redis -> files: byte-identical content, same layout, mode, owner; mtime within 1 s', () => {
    const out = join(root, 'restored');
    mkdirSync(out, { mode: 0o700 });
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(out, 4321, 4322);
    const r = cli(['rollback', '--plan', planFile, '--to', `files:2;0640;${out}`, '--ids-from', `files:2;${sessions}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/WARNING: rollback to files writes session contents to disk in PLAINTEXT/);
    expect(r.stdout).toMatch(/wrote 5, unchanged 0/);
    const before = tree(sessions);
    const after = tree(out);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [path, b] of before) {
      const a = after.get(path)!;
      expect(a.data.equals(b.data), path).toBe(true);
      expect(a.mode.toString(8)).toBe(b.mode.toString(8));
      expect(a.mode).toBe(0o640);
      if (asRoot) expect([a.uid, a.gid]).toEqual([4321, 4322]);
      // PHP's GC ages the restored file as Redis would have expired it.
      expect(Math.abs(a.mtimeMs - b.mtimeMs)).toBeLessThan(1500);
    }
    // No temporary file left behind.
    expect(readdirSync(join(out, 'a', 'b')).filter((f) => !f.startsWith('sess_'))).toEqual([]);
    // Running it again changes nothing.
    const again = cli(['rollback', '--plan', planFile, '--to', `files:2;0640;${out}`, '--ids-from', `files:2;${sessions}`, '--json']);
    expect((JSON.parse(again.stdout) as { counts: Record<string, number> }).counts).toMatchObject({ written: 0, unchanged: 5 });
  });

  it('into the original directory: newer Redis copies replace stale files, newer files are kept, destroyed sessions lose their file, symlinks are refused', async () => {
    const file = (id: string) => join(sessions, id[0]!, id[1]!, `sess_${id}`);
    // The handler updated session 0 in Redis after the cutover.
    const k0 = codec.keyName(PREFIX, ids[0]!);
    await redis.client.set(k0, codec.seal(k0, Buffer.from('user|s:7:"updated";')), 'EX', 1440);
    // Session 1's file was written after the Redis copy (and differs): kept.
    writeFileSync(file(ids[1]!), 'user|s:5:"newer";');
    const future = Date.now() / 1000 + 60;
    utimesSync(file(ids[1]!), future, future);
    // Session 2 was destroyed through the handler: no key, a tombstone newer than the file.
    const k2 = codec.keyName(PREFIX, ids[2]!);
    await redis.client.del(k2);
    await redis.client.set(tombstoneKeyFor(PREFIX, k2), '1', 'EX', 1440);
    const old = Date.now() / 1000 - 30;
    utimesSync(file(ids[2]!), old, old);
    // Session 3's file was replaced by a symlink to a file outside.
    const outside = join(root, 'outside.txt');
    writeFileSync(outside, 'not a session');
    const link = file(ids[3]!);
    spawnSync('rm', ['-f', link]);
    symlinkSync(outside, link);

    const dry = cli(['rollback', '--plan', planFile, '--to', `files:2;0640;${sessions}`, '--dry-run', '--json']);
    expect(dry.status).toBe(1);
    expect((JSON.parse(dry.stdout) as { counts: Record<string, number> }).counts).toMatchObject({
      written: 1,
      'newer-file-kept': 1,
      'destroyed-file-removed': 1,
      failed: 1,
      unchanged: 1,
    });
    expect(readFileSync(file(ids[0]!), 'utf8')).not.toBe('user|s:7:"updated";');
    expect(existsSync(file(ids[2]!))).toBe(true);

    // A process that has session 0's file open while rollback replaces it (a PHP request that opened
    // it and waits for its lock): the file is written in place under the lock, as PHP's files
    // handler writes, so the process reads the Redis copy from the same inode (after a rename it
    // would read the old, unlinked file and its write would be lost).
    const before0 = readFileSync(file(ids[0]!));
    const inode0 = statSync(file(ids[0]!)).ino;
    const reader = openSync(file(ids[0]!), 'r');
    const r = cli(['rollback', '--plan', planFile, '--to', `files:2;0640;${sessions}`, '--json']);
    try {
      expect(readFileSync(reader).equals(before0)).toBe(false);
      expect(fstatSync(reader).ino).toBe(inode0);
      expect(statSync(file(ids[0]!)).ino).toBe(inode0);
    } finally {
      closeSync(reader);
    }
    expect(readdirSync(join(sessions, ids[0]![0]!, ids[0]![1]!)).filter((f) => !f.startsWith('sess_'))).toEqual([]);
    expect(r.status).toBe(1); // the symlink
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      counts: Record<string, number>;
      failures: Array<{ reason: string; file: string }>;
    };
    expect(report.ok).toBe(false); // the exit 1 verdict, in the document as in a stopped run's
    expect(report.counts).toMatchObject({ written: 1, 'newer-file-kept': 1, 'destroyed-file-removed': 1, failed: 1, unchanged: 1 });
    expect(report.failures[0]!.reason).toMatch(/symbolic link/);
    expect(report.failures[0]!.file).not.toContain(ids[3]);
    expect(readFileSync(file(ids[0]!), 'utf8')).toBe('user|s:7:"updated";');
    expect(statSync(file(ids[0]!)).mode & 0o777).toBe(0o640);
    expect(readFileSync(file(ids[1]!), 'utf8')).toBe('user|s:5:"newer";');
    expect(existsSync(file(ids[2]!))).toBe(false);
    expect(readlinkSync(link)).toBe(outside);
    expect(readFileSync(outside, 'utf8')).toBe('not a session');
  });

  it('a file locked by another process (a PHP request) is left and reported: a HELD line and exit 1', async () => {
    rmSync(join(sessions, ids[3]![0]!, ids[3]![1]!, `sess_${ids[3]}`)); // the symlink of the test before (a failure of its own)
    const path = join(sessions, ids[4]![0]!, ids[4]![1]!, `sess_${ids[4]}`);
    const k4 = codec.keyName(PREFIX, ids[4]!);
    await redis.client.set(k4, codec.seal(k4, Buffer.from('user|s:4:"held";')), 'EX', 1440);
    const old = Date.now() / 1000 - 30;
    utimesSync(path, old, old);
    const before = readFileSync(path);
    // util-linux flock(1) takes the exclusive flock PHP's files handler holds during a request.
    const holder = spawn('flock', ['-x', path, '-c', 'echo locked; sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      const r = cli(['rollback', '--plan', planFile, '--to', `files:2;0640;${sessions}`]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toContain('held by PHP 1,');
      expect(r.stdout).toMatch(/^ {2}HELD {8}1 file\(s\) locked by PHP requests/m);
      expect(readFileSync(path).equals(before)).toBe(true);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('rollback --remove-keys', () => {
  it('--remove-keys with a key that opens none of the values: exit 2, one line naming the key IDs, nothing deleted (dry run alike)', async () => {
    // Before: exit 0, "removed 0 envelope(s) ...; left 4 that do not open with the key", "ok": true.
    const wrongKey = join(root, 'wrong.key');
    const wrongId = (await EnvelopeCodec.create([generateKeyFile(wrongKey)])).keyId;
    const before = (await redis.client.keys(`${PREFIX}*`)).sort();
    // Not --plan: a plan refuses a key other than its own (its lookup ID) before anything is read.
    const wrong = ['rollback', '--target', redis.url, '--prefix', PREFIX, '--key-file', wrongKey];
    const line = (verb: string) =>
      `session-migrate: rollback ${verb} nothing: none of the 4 key(s) under "smsess:" opens with the key given (key ID ${wrongId}); ` +
      `sealed under key ID ${codec.keyId} (4): give the key or key ring that sealed them: --key-file FILE or --key-ring FILE\n`;
    const dry = cli([...wrong, '--remove-keys', '--dry-run', '--json']);
    expect([dry.status, dry.stdout, dry.stderr.replace(/^session-migrate: WARNING: .*\n/, '')]).toEqual([2, '', line('would remove')]);
    const r = cli([...wrong, '--remove-keys']);
    expect([r.status, r.stderr]).toEqual([2, line('removed')]);
    expect((await redis.client.keys(`${PREFIX}*`)).sort()).toEqual(before);
  });

  it('deletes only envelopes that open with the key; dry run deletes nothing; usage errors', async () => {
    await redis.client.set(`${PREFIX}planted`, 'user|s:5:"admin";', 'EX', 60);
    const keysBefore = (await redis.client.keys(`${PREFIX}*`)).length;
    const dry = cli(['rollback', '--plan', planFile, '--remove-keys', '--dry-run', '--json']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/WARNING: --remove-keys deletes the migrated sessions from Redis/);
    expect(dry.stderr).toContain('PHP must be back on the files handler first.'); // a plan of a files source
    expect(JSON.parse(dry.stdout)).toMatchObject({ ok: true, removed: 4, leftNotOpening: 1, tombstones: 1 });
    expect((await redis.client.keys(`${PREFIX}*`)).length).toBe(keysBefore);

    const r = cli(['rollback', '--plan', planFile, '--remove-keys']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed 4 envelope\(s\)/);
    const left = (await redis.client.keys(`${PREFIX}*`)).sort();
    expect(left).toHaveLength(2);
    expect(left).toContain(`${PREFIX}planted`);
    expect(left.some((k) => k.startsWith(`${PREFIX}destroyed:`))).toBe(true);

    const both = cli(['rollback', '--plan', planFile, '--remove-keys', '--to', `files:${sessions}`]);
    expect(both.status).toBe(2);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
    expect(both.stderr).toMatch(/exactly one of --to/);
  });
});

describe('rollback: bad input is checked before the WARNING (one line on stderr, adversarial review)', () => {
  it('--to files:/nonexistent with --ids-from, or an unreachable target: one line, exit 2, no WARNING', async () => {
    const dead = `redis://127.0.0.1:${await freePort()}/0`;
    const cases: Array<{ args: string[]; error: RegExp }> = [
      {
        args: ['--to', `files:${join(root, 'nonexistent')}`, '--ids-from', `files:${sessions}`, '--plan', planFile],
        error: /^session-migrate: rollback directory .*nonexistent: no such file or directory/,
      },
      {
        args: ['--to', `files:${sessions}`, '--target', dead, '--key-file', keyFile],
        error: /^session-migrate: cannot connect to Redis at .*ECONNREFUSED/,
      },
      {
        args: ['--remove-keys', '--target', dead, '--key-file', keyFile],
        error: /^session-migrate: cannot connect to Redis at .*ECONNREFUSED/,
      },
      {
        args: ['--to-sources', '--plan', planFile, '--target', dead],
        error: /^session-migrate: cannot connect to Redis at .*ECONNREFUSED/,
      },
      // --ids-from means something only with --to: with --remove-keys it was ignored, and every
      // migrated key removed, not only the sessions it lists.
      {
        args: ['--remove-keys', '--ids-from', `files:${sessions}`, '--target', dead, '--key-file', keyFile],
        error: /^session-migrate: --ids-from needs --to files:SAVE_PATH; --remove-keys removes every migrated key\n$/,
      },
      {
        args: ['--to-sources', '--ids-from', `files:${sessions}`, '--plan', planFile, '--target', dead],
        error: /^session-migrate: --ids-from needs --to files:SAVE_PATH; --to-sources takes the IDs of each source directory\n$/,
      },
    ];
    for (const { args, error } of cases) {
      for (const json of [[], ['--json']]) {
        const r = cli(['rollback', ...args, ...json]);
        const where = [...args, ...json].join(' ');
        expect(r.status, where).toBe(2);
        expect(
          r.stderr.split('\n').filter((l) => l !== ''),
          where,
        ).toHaveLength(1);
        expect(r.stderr, where).toMatch(error);
        expect(r.stdout, where).toBe('');
      }
    }
  });
});

describe('rollback --to files with a --gc-maxlifetime smaller than the sessions were written with (adversarial review)', () => {
  it('is refused before any file is written: a newer file is never overwritten with an older Redis copy', async () => {
    const dir = join(root, 'gc-small');
    mkdirSync(dir, { mode: 0o700 });
    const id = 'gcsmallgcsmall000000000000000020';
    const key = codec.keyName(PREFIX, id);
    // PHP runs with gc_maxlifetime 86400: the handler wrote this session an hour ago.
    await redis.client.set(key, codec.seal(key, Buffer.from('user|s:3:"old";')), 'EX', 86_400 - 3600);
    // PHP back on the files handler wrote the file 10 minutes ago: newer than the Redis copy.
    const path = join(dir, `sess_${id}`);
    writeFileSync(path, 'user|s:5:"newer";');
    const t = Date.now() / 1000 - 600;
    utimesSync(path, t, t);
    const args = ['rollback', '--target', redis.url, '--key-file', keyFile, '--to', `files:${dir}`, '--json'];
    // The operator forgets --gc-maxlifetime 86400 (default 1440).
    const r = cli(args);
    expect(r.status).toBe(2);
    // The PLAINTEXT warning, then one line.
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/rollback refused: .*TTL of \d+ s, longer than the gc_maxlifetime given \(1440 s\).*nothing was written$/);
    expect(r.stderr).not.toContain(id);
    expect(readFileSync(path, 'utf8')).toBe('user|s:5:"newer";');
    const right = cli([...args, '--gc-maxlifetime', '86400']);
    expect(right.status, right.stderr).toBe(0);
    expect((JSON.parse(right.stdout) as { counts: Record<string, number> }).counts).toMatchObject({ 'newer-file-kept': 1, written: 0 });
    expect(readFileSync(path, 'utf8')).toBe('user|s:5:"newer";');
    await redis.client.del(key);
  });
});

describe('rollback after purge (fresh-clone review): no file is left to list the session IDs', () => {
  it('--to-sources and --to write nothing and say so (exit 2, one line: the count and the --ids-from fix); a listing kept from before purge writes them back', () => {
    const dir = join(root, 'purged');
    const listing = join(root, 'listing');
    mkdirSync(dir, { mode: 0o700 });
    mkdirSync(listing, { mode: 0o700 });
    const pids = ['pu0000000000000000000000001', 'pu0000000000000000000000002', 'pu0000000000000000000000003'];
    for (const id of pids) writeFileSync(join(dir, `sess_${id}`), 'user|s:4:"pure";', { mode: 0o600 });
    // The names of two of them, kept before purge (empty files: names only).
    for (const id of pids.slice(0, 2)) writeFileSync(join(listing, `sess_${id}`), '');
    const plan = join(root, 'purged.plan.json');
    const target = redis.url.replace(/\/0$/, '/3');
    const made = cli(planArgs({ dir, target, keyFile, planFile: plan, artifactsDir: join(root, 'purged-art') }));
    expect(made.status, made.stderr).toBe(0);
    const applied = cli(['apply', '--plan', plan]);
    expect(applied.status, applied.stderr).toBe(0);
    const purged = cli(['purge', '--plan', plan]);
    expect(purged.status, purged.stderr + purged.stdout).toBe(0);
    expect(readdirSync(dir)).toEqual([]);

    const line = (listedBy: string) =>
      `session-migrate: rollback wrote nothing: none of the 3 session(s) under "smsess:" in Redis has its session ID listed by ${listedBy} ` +
      '(no sess_<id> file there names it: deleted by purge?), so PHP on files would log all of those users out. ' +
      `Give the IDs from a copy of the session directory's sess_<id> names made before purge (empty files are enough): rollback --plan ${plan} --to 'files:${dir}' --ids-from files:LISTING; ` +
      `without one, the only way back to files is rollback --plan ${plan} --remove-keys with PHP on files (every user logs in again)`;
    for (const [args, listedBy] of [
      [['--to-sources'], `the plan's source files:${dir}`],
      [['--to', `files:${dir}`], `files:${dir}`],
    ] as const) {
      for (const json of [[], ['--json']]) {
        const r = cli(['rollback', '--plan', plan, ...args, ...json]);
        const where = [...args, ...json].join(' ');
        expect(r.status, where + r.stderr).toBe(2);
        // The PLAINTEXT warning (on stderr with --json), then the one line.
        expect(
          r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('session-migrate: WARNING: rollback to files')),
          where,
        ).toEqual([line(listedBy)]);
        expect(r.stdout, where).toBe(json.length > 0 ? '' : `${WARNING_TO_FILES}\n`);
      }
    }
    expect(readdirSync(dir)).toEqual([]);
    // --remove-keys now logs every user out: its WARNING says so (the files source holds no session file).
    const remove = cli(['rollback', '--plan', plan, '--remove-keys', '--dry-run']);
    expect(remove.status, remove.stderr).toBe(0);
    expect(remove.stdout.split('\n')[0]).toBe(
      'WARNING: --remove-keys deletes the migrated sessions from Redis. Users whose session exists only in Redis ' +
        '(logged in or updated since the cutover) are logged out; PHP must be back on the files handler first. ' +
        "The plan's files source directories hold no session file now (purge ran?): every user of those sources logs in again.",
    );

    const back = cli(['rollback', '--plan', plan, '--to', `files:${dir}`, '--ids-from', `files:${listing}`]);
    expect(back.status, back.stderr).toBe(0);
    expect(back.stdout).toContain('  files       wrote 2, unchanged 0,');
    const lines = back.stdout.split('\n');
    expect(lines).toContain('  redis       3 session key(s) under "smsess:"; 1 with no listed session ID (not written back)');
    expect(lines).toContain(
      '  NOT WRITTEN 1 session(s) in Redis with no listed session ID: PHP on files logs those users out (expected for sessions created since the cutover; ' +
        'for sessions whose files purge deleted, give their IDs: --to files:SAVE_PATH --ids-from files:LISTING, a copy of the sess_<id> names from before purge)',
    );
    expect(readdirSync(dir).sort()).toEqual(pids.slice(0, 2).map((id) => `sess_${id}`));
    expect(readFileSync(join(dir, `sess_${pids[0]}`), 'utf8')).toBe('user|s:4:"pure";');
  });

  it('--remove-keys on a plan whose source is phpredis keys: the warning says PHP must be back on the phpredis handler, not on files', async () => {
    const src = new Redis(redis.url.replace(/\/0$/, '/4'));
    try {
      await src.set('PHPREDIS_SESSION:rk0000000000000000000000001', 'user|s:2:"rk";', 'EX', 1440);
    } finally {
      src.disconnect();
    }
    const plan = join(root, 'redis-source.plan.json');
    const made = cli([
      'plan',
      '--source',
      `redis:${redis.url.replace(/\/0$/, '/4')}?prefix=PHPREDIS_SESSION%3A`,
      '--target',
      redis.url.replace(/\/0$/, '/5'),
      '--key-file',
      keyFile,
      '--out',
      plan,
      '--artifacts-dir',
      join(root, 'redis-source-art'),
    ]);
    expect(made.status, made.stderr).toBe(0);
    const r = cli(['rollback', '--plan', plan, '--remove-keys', '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      'WARNING: --remove-keys deletes the migrated sessions from Redis. PHP must be back on the phpredis handler (its plaintext keys) first: ' +
        'users whose session exists only in the migrated keys (logged in or updated since the cutover, and every user once purge deleted the plaintext keys) are logged out.',
    );
  });
});

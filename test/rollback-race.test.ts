/**
 * rollback --to files racing PHP's files handler (packages/migrate/src/rollback.ts, replaceFile):
 * a file PHP holds (flock LOCK_EX, php-src ext/session/mod_files.c ps_files_open), writes, creates
 * or removes between rollback's check and its rename or unlink is left as PHP left it and counted
 * as `newer-file-kept`, never clobbered. The race is made deterministic with rollbackTestHooks
 * (run with the lock held, just before the replacement); the writer is real PHP where it can be.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { tombstoneKeyFor } from '@session-migrate/envelope';
import { RedisConnection, specFromUrl } from '@session-migrate/redis';
import { rollbackTestHooks, rollbackToFiles, type RollbackToFilesReport } from '@session-migrate/migrate';
import { startRedis, type RedisServer } from './support/servers.ts';
import { newKey, sid } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
const STALE = 'user|s:5:"stale";';
const FROM_REDIS = 'user|s:5:"redis";';

let redis: RedisServer;
let conn: RedisConnection;
let codec: EnvelopeCodec;
let root: string;
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
  conn = await RedisConnection.open(specFromUrl(redis.url, {}, 'target'));
  root = mkdtempSync(join(tmpdir(), 'sm-rollback-race-'));
  ({ codec } = await newKey(root));
});
afterAll(async () => {
  conn.close();
  await redis.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});
afterEach(() => {
  delete rollbackTestHooks.beforeReplace;
});

/** A directory with one session: a stale file (10 min old) and a newer copy in Redis (TTL 1440 s). */
async function staleFileNewerRedis(withFile = true): Promise<{ dir: string; id: string; path: string }> {
  const dir = mkdtempSync(join(root, 'd-'));
  const id = sid('race', n++);
  const path = join(dir, `sess_${id}`);
  if (withFile) {
    writeFileSync(path, STALE, { mode: 0o600 });
    const t = Date.now() / 1000 - 600;
    utimesSync(path, t, t);
  }
  const key = codec.keyName(PREFIX, id);
  await conn.client.set(key, codec.seal(key, Buffer.from(FROM_REDIS)), 'EX', 1440);
  return { dir, id, path };
}

const run = (dir: string, id: string): Promise<RollbackToFilesReport> =>
  rollbackToFiles({
    client: conn,
    codec,
    prefix: PREFIX,
    layout: { dir, depth: 0, mode: 0o600 },
    ids: [id],
    gcMaxlifetime: 1440,
    dryRun: false,
  });

/** Real PHP tries flock(LOCK_EX | LOCK_NB) on `path`: 'locked' when it got it, 'busy' when someone holds it. */
function phpTryLock(path: string): string {
  const r = spawnSync('php', ['-r', '$f = fopen($argv[1], "r"); echo flock($f, LOCK_EX | LOCK_NB) ? "locked" : "busy";', path], {
    encoding: 'utf8',
  });
  return r.stdout + r.stderr;
}

/**
 * A PHP request on the files handler with `dir` as save_path, for session `id`, running `code`
 * between session_start() and session_write_close(); its stdout and stderr are collected in `output()`.
 */
function phpRequest(
  dir: string,
  id: string,
  code: string,
  stdin: 'pipe' | 'ignore',
): { php: ChildProcess; output: () => string; exited: Promise<void> } {
  const php = spawn(
    'php',
    [
      '-d',
      'session.save_handler=files',
      '-d',
      `session.save_path=${dir}`,
      '-r',
      `session_id($argv[1]); session_start(); ${code} session_write_close(); echo "done";`,
      id,
    ],
    { stdio: [stdin, 'pipe', 'pipe'] },
  );
  let out = '';
  php.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  php.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { php, output: () => out, exited: new Promise<void>((resolve) => php.on('close', () => resolve())) }; // 'close': after the pipes' last data
}

describe('rollback --to files racing PHP', () => {
  it('holds an exclusive flock across the check and the rename; a write in that window is kept and reported, not overwritten', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    let phpSaw = '';
    rollbackTestHooks.beforeReplace = (p) => {
      phpSaw = phpTryLock(p);
      // A writer that does not lock (or a system without flock(1)): caught by the check before the rename.
      writeFileSync(p, 'user|s:4:"race";');
    };
    const report = await run(dir, id);
    expect(phpSaw).toBe('busy');
    expect(report.counts).toMatchObject({ written: 0, 'newer-file-kept': 1, failed: 0 });
    expect(readFileSync(path, 'utf8')).toBe('user|s:4:"race";');
    // The lock is gone afterwards, and no temporary file is left.
    expect(phpTryLock(path)).toBe('locked');
    expect(spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout.trim()).toBe(`sess_${id}`);
  });

  it('a PHP request that opens the file while rollback holds its lock waits, then reads the Redis copy; its write is kept', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    const inode = statSync(path).ino;
    let request: ReturnType<typeof phpRequest> | undefined;
    rollbackTestHooks.beforeReplace = () => {
      request = phpRequest(dir, id, 'echo json_encode($_SESSION), "\\n"; $_SESSION["by"] = "php";', 'ignore');
      // Until PHP has opened the file and waits for its lock (a blocked flock shows as "->" in /proc/locks).
      const deadline = Date.now() + 10_000;
      while (
        !readFileSync('/proc/locks', 'utf8')
          .split('\n')
          .some((l) => l.includes('->') && l.includes(`:${inode} `))
      ) {
        if (Date.now() > deadline) throw new Error('PHP never waited for the lock');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    };
    const report = await run(dir, id);
    expect(report.counts).toMatchObject({ written: 1, 'newer-file-kept': 0, failed: 0 });
    await request!.exited;
    // PHP read what rollback wrote (the Redis copy), and its own write is in the file.
    expect(request!.output()).toBe('{"user":"redis"}\ndone');
    expect(readFileSync(path, 'utf8')).toBe(`${FROM_REDIS}by|s:3:"php";`);
    expect(statSync(path).ino).toBe(inode);
  });

  it('without flock(1) on the PATH, the check before the rename still keeps the racing write', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    rollbackTestHooks.beforeReplace = (p) => writeFileSync(p, 'user|s:4:"race";');
    const savedPath = process.env.PATH;
    process.env.PATH = join(root, 'empty-bin');
    try {
      const report = await run(dir, id);
      expect(report.counts).toMatchObject({ written: 0, 'newer-file-kept': 1 });
    } finally {
      process.env.PATH = savedPath;
    }
    expect(readFileSync(path, 'utf8')).toBe('user|s:4:"race";');
  });

  it('a session file PHP holds open in a request is left to PHP (held-by-php), and PHP writes it after', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    const { php, output, exited } = phpRequest(dir, id, 'echo "locked\\n"; fgets(STDIN); $_SESSION["by"] = "php";', 'pipe');
    try {
      await expect.poll(output, { timeout: 10_000 }).toContain('locked');
      const report = await run(dir, id);
      expect(report.counts).toMatchObject({ written: 0, 'held-by-php': 1, 'newer-file-kept': 0, failed: 0 });
      expect(readFileSync(path, 'utf8')).toBe(STALE);
    } finally {
      php.stdin!.end('\n');
      await exited;
    }
    expect(output()).toBe('locked\ndone');
    expect(readFileSync(path, 'utf8')).toBe(`${STALE}by|s:3:"php";`);
  });

  it('the stale file of a destroyed session that PHP holds open is counted held-by-php, not removed under PHP', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    const key = codec.keyName(PREFIX, id);
    await conn.client.del(key);
    await conn.client.set(tombstoneKeyFor(PREFIX, key), '1', 'EX', 1440);
    const { php, output, exited } = phpRequest(dir, id, 'echo "locked\\n"; fgets(STDIN);', 'pipe');
    try {
      await expect.poll(output, { timeout: 10_000 }).toContain('locked');
      const report = await run(dir, id);
      expect(report.counts).toMatchObject({ 'held-by-php': 1, 'destroyed-file-removed': 0, 'newer-file-kept': 0, failed: 0 });
      expect(readFileSync(path, 'utf8')).toBe(STALE);
    } finally {
      php.stdin!.end('\n');
      await exited;
    }
  });

  it('a file created after the check (PHP starting a session) is not replaced', async () => {
    const { dir, id, path } = await staleFileNewerRedis(false);
    rollbackTestHooks.beforeReplace = (p) => writeFileSync(p, 'user|s:3:"new";');
    const report = await run(dir, id);
    expect(report.counts).toMatchObject({ written: 0, 'newer-file-kept': 1 });
    expect(readFileSync(path, 'utf8')).toBe('user|s:3:"new";');
  });

  it('without a race, the Redis copy replaces the stale file', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    let calls = 0;
    rollbackTestHooks.beforeReplace = () => calls++;
    const report = await run(dir, id);
    expect(calls).toBe(1);
    expect(report.counts).toMatchObject({ written: 1, 'newer-file-kept': 0 });
    expect(readFileSync(path, 'utf8')).toBe(FROM_REDIS);
  });

  it('the stale file of a destroyed session is not removed when PHP writes it between the check and the unlink', async () => {
    const { dir, id, path } = await staleFileNewerRedis();
    const key = codec.keyName(PREFIX, id);
    await conn.client.del(key);
    await conn.client.set(tombstoneKeyFor(PREFIX, key), '1', 'EX', 1440);
    rollbackTestHooks.beforeReplace = (p) => writeFileSync(p, 'user|s:5:"again";');
    const report = await run(dir, id);
    expect(report.counts).toMatchObject({ 'destroyed-file-removed': 0, 'newer-file-kept': 1 });
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('user|s:5:"again";');
  });
});

/**
 * Several sources in one plan (issue 13 item 3), through the CLI against a real redis-server: two
 * session directories (one written by real PHP's files handler at depth 1, one flat) and a plaintext
 * phpredis source (another database of the same server). The plan records every source with its own
 * counts; a session ID in two sources is a conflict the plan reports, and the copy written last wins
 * (within 1 s: the source given first); apply, verify (--plan: presence of every source; --source
 * repeated: byte for byte), purge and rollback --to-sources follow the plan's sources and report each
 * one on its own. Bad input: a source given twice, the same directory through a symlink, the same
 * Redis keys under two spellings, overlapping prefixes, --read-through with two files sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { startNode, type RedisNode } from './support/redis-topologies.ts';
import { cli, newKey, sid, usageLine } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
const SRC = 'PHPREDIS_SESSION:';
let node: RedisNode;
let srcDb: Redis;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let dirA: string;
let dirB: string;
const srcUrl = () => `redis:redis://127.0.0.1:${node.port}/1?prefix=${encodeURIComponent(SRC)}`;

/** Writes sess_<id> with an age in seconds (depth 0 under `dir`, or `depth` one-character levels). */
function write(dir: string, id: string, data: string, ageSeconds: number, depth = 0): string {
  let d = dir;
  for (let i = 0; i < depth; i++) d = join(d, id[i]!);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  const path = join(d, `sess_${id}`);
  writeFileSync(path, data);
  const t = Date.now() / 1000 - ageSeconds;
  utimesSync(path, t, t);
  return path;
}

/** Session IDs of the duplicates: one per case. */
const DUP = {
  newerInB: sid('dnb', 0), // A older, B newer, different: B wins
  identical: sid('did', 0), // same bytes in A and B: no conflict
  newerInA: sid('dna', 0), // A newer: A wins
  tie: sid('dti', 0), // different bytes written in the same second: A (given first) wins
  newerInRedis: sid('dnr', 0), // A older than the phpredis key's last write: the Redis source wins
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-several-'));
  ({ keyFile, codec } = await newKey(root));
  node = await startNode();
  srcDb = new Redis({ host: '127.0.0.1', port: node.port, db: 1, lazyConnect: true });
  await srcDb.connect();
  dirA = join(root, 'a');
  dirB = join(root, 'b');
  mkdirSync(dirA, { mode: 0o700 });
  mkdirSync(dirB, { mode: 0o700 });
  // A: depth 1, written by real PHP's files handler; B: flat.
  const phpIds = Array.from({ length: 6 }, (_, i) => sid('aph', i));
  for (const id of phpIds) mkdirSync(join(dirA, id[0]!), { recursive: true, mode: 0o700 });
  for (const id of phpIds) {
    const r = spawnSync(
      'php',
      [
        '-n',
        '-d',
        'session.save_handler=files',
        '-d',
        `session.save_path="1;${dirA}"`,
        '-r',
        'session_id($argv[1]); session_start(); $_SESSION["user"] = $argv[1]; $_SESSION["n"] = 7; session_write_close(); echo "ok";',
        id,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stdout + r.stderr).toBe('ok');
  }
  for (let i = 0; i < 4; i++) write(dirB, sid('bonly', i), `user|s:1:"${i}";`, 60);
  for (let i = 0; i < 3; i++) await srcDb.set(`${SRC}${sid('ronly', i)}`, `user|s:1:"${i}";`, 'EX', 1200);
  // The duplicates (gc_maxlifetime 1440 s).
  write(dirA, DUP.newerInB, 'who|s:5:"old-a";', 600, 1);
  write(dirB, DUP.newerInB, 'who|s:5:"new-b";', 30);
  write(dirA, DUP.identical, 'who|s:4:"same";', 300, 1);
  write(dirB, DUP.identical, 'who|s:4:"same";', 100);
  write(dirA, DUP.newerInA, 'who|s:5:"new-a";', 20, 1);
  write(dirB, DUP.newerInA, 'who|s:5:"old-b";', 500);
  write(dirA, DUP.tie, 'who|s:5:"tie-a";', 200, 1);
  write(dirB, DUP.tie, 'who|s:5:"tie-b";', 200);
  write(dirA, DUP.newerInRedis, 'who|s:5:"old-a";', 900, 1);
  // phpredis writes with SETEX gc_maxlifetime: 1430 s left = written 10 s ago.
  await srcDb.set(`${SRC}${DUP.newerInRedis}`, 'who|s:5:"new-r";', 'EX', 1430);
});
afterAll(async () => {
  srcDb?.disconnect();
  await node?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface PlanJson {
  version: number;
  source: { kind: string; dir?: string };
  sources: Array<{ kind: string; dir?: string; prefix?: string; summary: { found: number; live: number } }>;
  summary: { found: number; live: number };
  duplicates: {
    ids: number;
    identical: number;
    newerWins: number;
    ties: number;
    superseded: number[];
    sample: Array<{ id: string; winner: number; reason: string }>;
  };
}

const planFile = () => join(root, 'plan.json');
const sources = () => ['--source', `files:1;${dirA}`, '--source', `files:${dirB}`, '--source', srcUrl()];

async function valueOf(id: string): Promise<string | undefined> {
  const key = codec.keyName(PREFIX, id);
  const v = await node.admin.getBuffer(key);
  if (v === null) return undefined;
  const opened = codec.open(key, v);
  return opened.ok ? opened.plaintext.toString() : `(${opened.reason})`;
}

describe('several sources', () => {
  it('plan records every source with its own counts, and reports the IDs in two sources with the copy that wins', () => {
    const r = cli([
      'plan',
      ...sources(),
      '--target',
      node.url,
      '--key-file',
      keyFile,
      '--out',
      planFile(),
      '--artifacts-dir',
      join(root, 'art'),
    ]);
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(planFile(), 'utf8')) as PlanJson;
    expect(plan.version).toBe(3);
    expect(plan.sources.map((s) => s.kind)).toEqual(['files', 'files', 'redis']);
    expect(plan.sources.map((s) => s.summary.found)).toEqual([6 + 5, 4 + 4, 3 + 1]);
    expect(plan.duplicates).toMatchObject({ ids: 5, identical: 1, newerWins: 3, ties: 1 });
    // Losers: A's copies of newerInB, identical (B's is the later write), newerInRedis; B's of newerInA and tie.
    expect(plan.duplicates.superseded).toEqual([3, 2, 0]);
    const winners = Object.fromEntries(plan.duplicates.sample.map((d) => [d.id, [d.winner, d.reason]]));
    expect(winners[`${DUP.newerInB.slice(0, 6)}…`]).toEqual([1, 'newer']);
    expect(winners[`${DUP.newerInA.slice(0, 6)}…`]).toEqual([0, 'newer']);
    expect(winners[`${DUP.tie.slice(0, 6)}…`]).toEqual([0, 'tie']);
    expect(winners[`${DUP.newerInRedis.slice(0, 6)}…`]).toEqual([2, 'newer']);
    // Each session once in the total.
    expect(plan.summary.found).toBe(11 + 8 + 4);
    expect(plan.summary.live).toBe(11 + 8 + 4 - 5);
    // The table: one row per source and the total; no session ID in any output.
    expect(r.stdout).toMatch(/sources +3, counted each on its own/);
    expect(r.stdout).toMatch(/#1 +11 +8 +0 +0 +0 +0 +3/);
    expect(r.stdout).toMatch(/#2 +8 +6 +0 +0 +0 +0 +2/);
    expect(r.stdout).toMatch(/#3 +4 +4 +0 +0 +0 +0 +0/);
    expect(r.stdout).toMatch(/total +23 +18 +0 +0 +0 +0 +5/);
    expect(r.stdout).toMatch(
      /duplicates +5 session ID\(s\) are in more than one source: 1 the same .*, 3 different \(the copy written last wins\), 1 different and written within 1 s \(the source given first wins\)/,
    );
    for (const id of Object.values(DUP)) expect(r.stdout + r.stderr).not.toContain(id);
  });

  it('apply copies each source on its own and only the winning copy of a duplicate; verify --plan checks every source', async () => {
    const a = cli(['apply', '--plan', planFile(), '--json']);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const out = JSON.parse(a.stdout) as {
      sessions: { counts: Record<string, number> };
      sources: Array<{ source: string; superseded: number; sessions: { counts: { migrated: number; skipped: Record<string, number> } } }>;
    };
    expect(out.sources.map((s) => s.source)).toEqual([
      `#1 files:1;${dirA}`,
      `#2 files:${dirB}`,
      `#3 redis:redis://127.0.0.1:${node.port}/1?prefix=${encodeURIComponent(SRC)}`,
    ]);
    expect(out.sources.map((s) => s.sessions.counts.migrated)).toEqual([11 - 3, 8 - 2, 4]);
    expect(out.sources.map((s) => s.superseded)).toEqual([3, 2, 0]);
    expect(out.sources.map((s) => s.sessions.counts.skipped.superseded ?? 0)).toEqual([3, 2, 0]);
    expect(out.sessions.counts).toMatchObject({ migrated: 18, conflicts: 0, failed: 0 });
    // The winning copies, and nothing else, are in Redis.
    expect(await valueOf(DUP.newerInB)).toBe('who|s:5:"new-b";');
    expect(await valueOf(DUP.identical)).toBe('who|s:4:"same";');
    expect(await valueOf(DUP.newerInA)).toBe('who|s:5:"new-a";');
    expect(await valueOf(DUP.tie)).toBe('who|s:5:"tie-a";');
    expect(await valueOf(DUP.newerInRedis)).toBe('who|s:5:"new-r";');
    expect(await node.admin.dbsize()).toBe(18);
    const human = cli(['apply', '--plan', planFile()]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/sources +3, each copied on its own/);
    expect(human.stdout).toMatch(/total +0 +18 +0 +0 +0 +0 +0 +5/);
    // Each kind of source with its own noun: the files sources' superseded copies, the Redis source's keys.
    expect(human.stdout).toMatch(
      /^ {2}not copied {2}0 expired, 0 empty, 0 that PHP would reject; skipped files: superseded 5; skipped keys: none$/m,
    );

    // verify --plan: presence of every source's sessions, each on its own; the Redis source's keys
    // are plaintext left until purge.
    const v = cli(['verify', '--plan', planFile(), '--json']);
    expect(v.status).toBe(1);
    const report = JSON.parse(v.stdout) as {
      presence: Record<string, number>;
      sources: Array<{ source: string; presence: Record<string, number> }>;
      failureCounts: Record<string, number>;
      duplicates: { ids: number };
    };
    expect(report.sources.map((s) => [s.presence.present, s.presence.missing, s.presence.superseded ?? 0])).toEqual([
      [8, 0, 3],
      [6, 0, 2],
      [4, 0, 0],
    ]);
    expect(report.presence).toMatchObject({ present: 18, missing: 0, superseded: 5 });
    expect(report.failureCounts).toEqual({ 'plaintext-remains': 4 });
    expect(report.duplicates.ids).toBe(5);
    // A lost session of source #2 fails verify, named by key.
    await node.admin.del(codec.keyName(PREFIX, sid('bonly', 2)));
    const lost = cli(['verify', '--plan', planFile(), '--json']);
    expect((JSON.parse(lost.stdout) as { failureCounts: Record<string, number> }).failureCounts).toEqual({
      'plaintext-remains': 4,
      'missing-in-redis': 1,
    });
    expect(cli(['apply', '--plan', planFile()]).status).toBe(0);
    // --source repeated: byte for byte, each on its own (the files sources only: no plaintext check).
    const both = cli(['verify', '--plan', planFile(), '--source', `files:1;${dirA}`, '--source', `files:${dirB}`]);
    expect(both.status, both.stdout).toBe(0);
    // Between these two only: A's copy of the session the Redis source won is compared (newer in Redis).
    expect(both.stdout).toMatch(/#1 files:1;.* +9 +9 +0 +0 +2/);
    expect(both.stdout).toMatch(/#2 files:.* +6 +6 +0 +0 +2/);

    // purge (dry run): B's copy of the tie lost to A's, which Redis holds: it is not the same and
    // not newer, but superseded, so it does not block; the other losing copies are older than Redis.
    const dry = cli(['purge', '--plan', planFile(), '--dry-run', '--json']);
    expect(dry.status, dry.stdout).toBe(0);
    const d = JSON.parse(dry.stdout) as {
      complete: boolean;
      sources: Array<{ deletable: Record<string, number>; blocked: Record<string, number> }>;
    };
    expect(d.complete).toBe(true);
    expect(d.sources.map((x) => x.deletable.superseded ?? 0)).toEqual([0, 1, 0]);
    expect(d.sources.map((x) => x.deletable.newer ?? 0)).toEqual([2, 1, 0]);
    // purge of source #2 alone: the tie is a duplicate only with #1, so there it is an older copy.
    const alone = cli(['purge', '--plan', planFile(), '--source', `files:${dirB}`, '--dry-run', '--json']);
    expect(alone.status).toBe(1);
    expect((JSON.parse(alone.stdout) as { blocked: Record<string, number> }).blocked).toEqual({ older: 1 });
  });

  it('rollback --to-sources writes each source directory back from Redis, a key without a listed ID counted once', async () => {
    // A session updated through the handler since (newer in Redis), and one created only in Redis.
    const key = codec.keyName(PREFIX, sid('bonly', 1));
    await node.admin.set(key, codec.seal(key, Buffer.from('user|s:7:"updated";')), 'EX', 1440);
    const only = codec.keyName(PREFIX, sid('new', 0));
    await node.admin.set(only, codec.seal(only, Buffer.from('a|i:1;')), 'EX', 1440);
    const r = cli(['rollback', '--plan', planFile(), '--to-sources', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { keysWithoutKnownId: number; targets: Array<{ source: string; counts: Record<string, number> }> };
    expect(out.targets.map((t) => t.source)).toEqual([`#1 files:1;${dirA}`, `#2 files:${dirB}`]);
    expect(out.targets[1]!.counts.written).toBeGreaterThanOrEqual(1);
    expect(readFileSync(join(dirB, `sess_${sid('bonly', 1)}`), 'utf8')).toBe('user|s:7:"updated";');
    // The Redis source's sessions have no directory; the one created in Redis has no ID anywhere.
    expect(out.keysWithoutKnownId).toBe(3 + 1);
    expect(r.stderr).toMatch(/1 Redis source\(s\) of the plan are not written back/);
    await node.admin.del(only);
  });

  it('purge judges every source before deleting anywhere (one session missing: nothing deleted in any source), and reports each source', async () => {
    const dry = cli(['purge', '--plan', planFile(), '--dry-run', '--json']);
    expect(dry.status, dry.stdout).toBe(0);
    const d = JSON.parse(dry.stdout) as {
      sources: Array<{ source: string; deletable: Record<string, number>; sessions: number }>;
      complete: boolean;
    };
    expect(d.complete).toBe(true);
    expect(d.sources.map((s) => s.sessions)).toEqual([11, 8, 4]);
    expect(d.sources.map((s) => s.deletable.superseded ?? 0)).toEqual([expect.any(Number), expect.any(Number), 0]);
    // A session of source #3 missing from Redis: nothing is deleted in any source.
    const missing = codec.keyName(PREFIX, sid('ronly', 0));
    const saved = await node.admin.getBuffer(missing);
    const savedTtl = await node.admin.pttl(missing);
    await node.admin.del(missing);
    const refused = cli(['purge', '--plan', planFile()]);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toMatch(/REFUSED +nothing was deleted/);
    expect(readdirSync(dirB).length).toBe(8);
    expect(await srcDb.dbsize()).toBe(4);
    await node.admin.set(missing, saved!, 'PX', savedTtl);
    const p = cli(['purge', '--plan', planFile()]);
    expect(p.status, p.stdout).toBe(0);
    expect(p.stdout).toMatch(/#1 files:1;.* +11 +11 +\d+ +0 +11 +0/);
    expect(p.stdout).toMatch(/total +23 +23 +\d+ +0 +23 +0/);
    expect(readdirSync(dirB)).toEqual([]);
    expect(await srcDb.dbsize()).toBe(0);
    // Now nothing plaintext is left anywhere: verify passes (the presence check has nothing left to read).
    const v = cli(['verify', '--plan', planFile()]);
    expect(v.status, v.stdout).toBe(0);
  });
});

describe('several sources: bad input', () => {
  const plan = (extra: string[]) =>
    cli([
      'plan',
      ...extra,
      '--target',
      node.url,
      '--key-file',
      keyFile,
      '--out',
      join(root, 'bad.json'),
      '--artifacts-dir',
      join(root, 'bad-art'),
    ]);

  it('refuses a source given twice, the same directory through a symlink, the same Redis keys twice, overlapping prefixes; nothing written', () => {
    mkdirSync(join(root, 'real', 'sessions'), { recursive: true });
    symlinkSync(join(root, 'real'), join(root, 'link'));
    const real = `files:${join(root, 'real', 'sessions')}`;
    expect(usageLine(plan(['--source', real, '--source', real]))).toMatch(
      /--source files:.*real\/sessions is given twice: give each source once/,
    );
    expect(usageLine(plan(['--source', real, '--source', `files:${join(root, 'link', 'sessions')}`]))).toMatch(
      /are the same directory .*through a symbolic link or a bind mount\): give it once/,
    );
    expect(
      usageLine(
        plan(['--source', srcUrl(), '--source', `redis:tcp://127.0.0.1:${node.port}?prefix=${encodeURIComponent(SRC)}&database=1`]),
      ),
    ).toMatch(/are the same keys \(prefix "PHPREDIS_SESSION:"/);
    expect(
      usageLine(plan(['--source', srcUrl(), '--source', `redis:redis://127.0.0.1:${node.port}/1?prefix=PHPREDIS_SESSION:app`])),
    ).toMatch(/overlap: prefix/);
    // A depth-1 layout's level directory given as a source of its own: read twice.
    mkdirSync(join(root, 'real', 'sessions', 'q'), { recursive: true });
    expect(
      usageLine(
        plan(['--source', `files:1;${join(root, 'real', 'sessions')}`, '--source', `files:${join(root, 'real', 'sessions', 'q')}`]),
      ),
    ).toMatch(/lies inside the depth-1 layout of files:1;/);
    expect(existsSync(join(root, 'bad.json'))).toBe(false);
  });

  it('--read-through says what the handler can read through: one files source (plus phpredis keys of the target database), never two', () => {
    const two = plan(['--source', `files:1;${dirA}`, '--source', `files:${dirB}`, '--read-through']);
    expect(usageLine(two)).toMatch(
      /--read-through: the generated handler reads through one legacy save_path, and 2 sources are files: sources .*plan without --read-through/,
    );
    // The phpredis keys in database 1 cannot be read over the handler's connection (database 0), and
    // cannot wait for apply after the switch either: refused, with the two plans to make instead.
    const elsewhere = plan(['--source', srcUrl(), '--source', `files:${dirB}`, '--read-through']);
    expect(usageLine(elsewhere)).toMatch(
      /--read-through: the handler reads old phpredis keys only in the target's own Redis database, and redis:.* is elsewhere; make one plan for that Redis source without --read-through and apply it before the handler switch, and one plan for the files source with --read-through/,
    );
    expect(existsSync(join(root, 'bad.json'))).toBe(false);
    const sameDb = `redis:redis://127.0.0.1:${node.port}/0?prefix=${encodeURIComponent(SRC)}`;
    const one = plan(['--source', sameDb, '--source', `files:${dirB}`, '--read-through']);
    expect(one.status, one.stderr).toBe(0);
    expect(one.stdout).toMatch(
      /read-through \(migrating\) mode: a Redis miss falls back to the files in .*\/b .*, then the old phpredis keys PHPREDIS_SESSION:<ID> in the target's Redis \(read, never written; apply copies them too\)/,
    );
    // The handler's legacy directory is the files source, whatever the order given.
    const written = JSON.parse(readFileSync(join(root, 'bad.json'), 'utf8')) as PlanJson;
    expect(written.source).toMatchObject({ kind: 'files', dir: dirB });
    expect(written.sources.map((s) => s.kind)).toEqual(['redis', 'files']);
  });

  it('generate php --read-through on a plan of two files sources is refused the same way', () => {
    const p = join(root, 'two.json');
    const made = cli([
      'plan',
      '--source',
      `files:1;${dirA}`,
      '--source',
      `files:${dirB}`,
      '--target',
      node.url,
      '--key-file',
      keyFile,
      '--out',
      p,
      '--artifacts-dir',
      join(root, 'two-art'),
    ]);
    expect(made.status, made.stderr).toBe(0);
    expect(usageLine(cli(['generate', 'php', '--plan', p, '--read-through']))).toMatch(
      /--read-through: the generated handler reads through one legacy save_path, and 2 sources are files: sources/,
    );
    expect(cli(['generate', 'php', '--plan', p, '--strict']).status).toBe(0);
  });

  it('a plan of format 2 (one source) is still read', async () => {
    const dir = join(root, 'v2');
    write(dir, sid('vtwo', 0), 'a|i:1;', 30);
    const p = join(root, 'v2.json');
    expect(
      cli([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        node.url,
        '--key-file',
        keyFile,
        '--out',
        p,
        '--artifacts-dir',
        join(root, 'v2-art'),
      ]).status,
    ).toBe(0);
    const v3 = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    delete v3.sources;
    delete v3.duplicates;
    writeFileSync(p, JSON.stringify({ ...v3, version: 2 }));
    const a = cli(['apply', '--plan', p, '--json']);
    expect(a.status, a.stderr).toBe(0);
    expect((JSON.parse(a.stdout) as { sessions: { counts: { migrated: number } }; sources?: unknown }).sessions.counts.migrated).toBe(1);
  });
});

/**
 * purge, rotate and rollback stopped by a lost connection after they changed something exit 1 with
 * one line that says how many they changed first and that a re-run finishes (`<command> NOT DONE:
 * N ...`, stoppedRun in packages/common/src/errors.ts; docs/operator-guide.md Exit codes), not exit
 * 2, which says nothing changed; stopped before any change, they stay one line, exit 2. The loss is
 * made deterministic by a TCP relay (test/support/relay.ts) in front of a real redis-server that cuts
 * the connection at a chosen command (the nth compare-and-delete, the nth GET of a re-check) and
 * refuses connections after, as a dead server does; a re-run through the relay reopened finishes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, deriveLookupKey, formatKeyRing, loadSodium } from '@session-migrate/envelope';
import { startNode, type RedisNode } from './support/redis-topologies.ts';
import {
  cliChild,
  countPresent,
  newKey,
  planArgs,
  writePlaintextSessions,
  writeSessionFiles,
  type CliResult,
} from './support/migrate-cli.ts';
import { startRelay, type Relay } from './support/relay.ts';
import { freePort } from './support/ports.ts';

const PREFIX = 'smsess:';
const SOURCE_PREFIX = 'PHPREDIS_SESSION:';
const MAX = 1440;
let root: string;
let source: RedisNode;
let target: RedisNode;
let relay: Relay | undefined;
let keyFile: string;
let codec: EnvelopeCodec;
let n = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-stopped-part-way-'));
  [source, target] = await Promise.all([startNode(), startNode()]);
  ({ keyFile, codec } = await newKey(root));
}, 30_000);
afterAll(async () => {
  relay?.stop();
  await source?.stop();
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});
beforeEach(async () => {
  relay?.stop();
  relay = undefined;
  await Promise.all([source.admin.flushall(), target.admin.flushall()]);
});

/** A relay to `node`, cutting nothing yet. */
async function relayTo(node: RedisNode): Promise<string> {
  relay = await startRelay(node.port);
  return `redis://127.0.0.1:${relay.port}/0`;
}

/** What apply leaves for each session: its bytes sealed under its key, with a TTL. */
async function copied(sessions: ReadonlyArray<{ id: string; data: string }>): Promise<void> {
  const pipe = target.admin.pipeline();
  for (const { id, data } of sessions) {
    const key = codec.keyName(PREFIX, id);
    pipe.set(key, codec.seal(key, Buffer.from(data)), 'EX', MAX - 100);
  }
  await pipe.exec();
}

/** The one stderr line of a run that failed (the CLI's `session-migrate: ...`). */
function oneLine(r: CliResult): string {
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('(node:'));
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

// cliChild, not cli: the relay runs in this process, whose event loop spawnSync would block.
const run = async (args: string[]): Promise<CliResult> => cliChild(args).done;

describe('purge stopped part-way', () => {
  it('a Redis source lost at its 6th compare-and-delete: exit 1, 5 keys deleted, one line; a re-run finishes', async () => {
    const ids = await writePlaintextSessions(source.admin, SOURCE_PREFIX, 'pr', 20, MAX);
    await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";` })));
    const sourceUrl = await relayTo(source);
    relay!.cutAt('\r\neval\r\n', 6);
    const args = [
      'purge',
      '--source',
      `redis:${sourceUrl}`,
      '--target',
      target.url,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      String(MAX),
    ];
    const r = await run(args);
    // Before: exit 2, "purge stopped: source Redis ... failed while removing ...", as if nothing was deleted.
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(oneLine(r)).toMatch(
      /^session-migrate: purge NOT DONE: 5 key\(s\) deleted \(and maybe those in flight when it failed\) before it stopped: source Redis at redis:\/\/127\.0\.0\.1:\d+\/0 failed while removing PHPREDIS_SESSION:pr0000…: .*; each was proven in Redis and checked again right before its delete; run purge again to finish/,
    );
    expect(r.stderr).not.toMatch(/user\|s:/); // never a value
    expect(await source.admin.dbsize()).toBe(15);
    await relay!.reopen();
    const again = await run(args);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(again.stdout).toMatch(/deleted {5}15 key\(s\)/);
    expect(await source.admin.dbsize()).toBe(0);
    expect(await target.admin.dbsize()).toBe(20); // the Redis copies are untouched
  }, 20_000);

  /** purge of the plaintext keys of `source` through the relay, and the 20 sessions there, copied to the target. */
  const lostReplyPurge = async (tag: string): Promise<string[]> => {
    const ids = await writePlaintextSessions(source.admin, SOURCE_PREFIX, tag, 20, MAX);
    await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";` })));
    const sourceUrl = await relayTo(source);
    return ['purge', '--source', `redis:${sourceUrl}`, '--target', target.url, '--key-file', keyFile, '--gc-maxlifetime', String(MAX)];
  };

  it('a compare-and-delete whose reply was lost, sent again by ioredis: the key it deleted counts as deleted', async () => {
    const args = await lostReplyPurge('lr');
    // The first compare-and-delete runs, its reply is cut; sent again, it finds the key gone. Before:
    // counted neither deleted nor kept ("deleted 19" for the 20 keys this run deleted).
    relay!.loseReplyTo('\r\neval\r\n', 1);
    const r = await run([...args, '--json']);
    expect(relay!.cut).toBe(true);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      sessions: 20,
      deleted: 20,
      deletedBytes: 10 * 'user|s:1:"0";'.length + 10 * 'user|s:2:"10";'.length,
      changed: 0,
      lost: 0,
      remaining: { files: 0, bytes: 0 },
    });
    expect(await source.admin.dbsize()).toBe(0);
  }, 20_000);

  it('a lost reply, then the source stops taking deletes (a replica now): exit 1, 1 key deleted, not exit 2 "nothing was deleted"', async () => {
    const args = await lostReplyPurge('lq');
    // While ioredis reconnects, the source becomes a read-only replica (of a master that does not
    // answer: it keeps its data). The compare-and-delete sent again finds its key gone; the next one
    // gets READONLY, an error reply (it did not run). Before: exit 2, "nothing was deleted".
    const nowhere = await freePort();
    relay!.loseReplyTo('\r\neval\r\n', 1, () => source.admin.replicaof('127.0.0.1', nowhere));
    try {
      const r = await run(args);
      expect(r.status, r.stderr + r.stdout).toBe(1);
      expect(oneLine(r)).toMatch(
        /^session-migrate: purge NOT DONE: 1 key\(s\) deleted before it stopped: source Redis at redis:\/\/127\.0\.0\.1:\d+\/0 failed while removing PHPREDIS_SESSION:lq0000…: .*READONLY.*; each was proven in Redis and checked again right before its delete; run purge again to finish/,
      );
      expect(await source.admin.dbsize()).toBe(19);
    } finally {
      await source.admin.replicaof('NO', 'ONE');
    }
  }, 20_000);

  it('a lost reply, then an error reply to the compare-and-delete sent again: exit 1, its first send may have deleted the key', async () => {
    const args = await lostReplyPurge('lp');
    // While ioredis reconnects, EVAL is taken from the user: the second send gets NOPERM, an error
    // reply, which says nothing of the first send (it ran). Before: exit 2, "nothing was deleted".
    relay!.loseReplyTo('\r\neval\r\n', 1, () => source.admin.acl('SETUSER', 'default', '-eval'));
    try {
      const r = await run(args);
      expect(r.status, r.stderr + r.stdout).toBe(1);
      expect(oneLine(r)).toMatch(
        /^session-migrate: purge NOT DONE: 0 key\(s\) deleted \(and maybe those in flight when it failed\) before it stopped: source Redis at redis:\/\/127\.0\.0\.1:\d+\/0 failed while removing PHPREDIS_SESSION:lp0000…: .*NOPERM.*; each was proven in Redis and checked again right before its delete; run purge again to finish/,
      );
      expect(await source.admin.dbsize()).toBe(19);
    } finally {
      await source.admin.acl('SETUSER', 'default', '+@all');
    }
  }, 20_000);

  it('the target lost at the re-check of the second batch of 500: exit 1, 500 files deleted; a re-run finishes', async () => {
    const dir = join(root, `files-${++n}`);
    const ids = writeSessionFiles(dir, 'pt', 600);
    await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";cart|a:0:{}` })));
    const targetUrl = await relayTo(target);
    // 600 GETs judge, 500 re-check the first batch, 1101 to 1200 the second: cut in the middle.
    relay!.cutAt('\r\nget\r\n', 1150);
    const args = ['purge', '--source', `files:${dir}`, '--target', targetUrl, '--key-file', keyFile, '--gc-maxlifetime', String(MAX)];
    const r = await run([...args, '--json']);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(oneLine(r)).toMatch(
      /^session-migrate: purge NOT DONE: 500 file\(s\) deleted before it stopped: .*\(Redis at redis:\/\/127\.0\.0\.1:\d+\/0\); each was proven in Redis and checked again right before its delete; run purge again to finish/,
    );
    // --json: the document a script reads on stdout (before: nothing on stdout, the line alone).
    expect(JSON.parse(r.stdout)).toEqual({
      ok: false,
      stopped: {
        command: 'purge',
        reason: expect.stringMatching(/\(Redis at redis:\/\/127\.0\.0\.1:\d+\/0\)$/),
        done: 500,
        what: 'file(s) deleted',
        inFlight: false,
        rerun: expect.stringMatching(/; run purge again to finish/),
      },
      counts: { sessions: 600, deleted: 500, deletedBytes: expect.any(Number), changed: 0, lost: 0 },
    });
    expect(readdirSync(dir)).toHaveLength(100);
    await relay!.reopen();
    const again = await run(args);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(again.stdout).toMatch(/deleted {5}100 file\(s\)/);
    expect(readdirSync(dir)).toHaveLength(0);
  }, 20_000);

  it('the target lost at the re-check of the first batch, before any delete: exit 2, nothing deleted', async () => {
    const dir = join(root, `files-${++n}`);
    mkdirSync(dir);
    const ids = writeSessionFiles(dir, 'p0', 20);
    await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";cart|a:0:{}` })));
    const targetUrl = await relayTo(target);
    relay!.cutAt('\r\nget\r\n', 21); // 20 GETs judge; the 21st is the re-check's first
    const r = await run([
      'purge',
      '--source',
      `files:${dir}`,
      '--target',
      targetUrl,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      String(MAX),
    ]);
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(oneLine(r)).toMatch(/^session-migrate: purge stopped: .*; nothing was deleted .*re-running is safe$/);
    expect(readdirSync(dir)).toHaveLength(20);
  }, 20_000);
});

/**
 * Whether this file system lets root make a file immutable (chattr +i: unlink then fails with EPERM,
 * even for root, which the tests run as): ext4, xfs, btrfs; not overlayfs or tmpfs.
 */
function immutableFiles(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'sm-chattr-'));
  const probe = join(dir, 'probe');
  writeFileSync(probe, '');
  const ok = spawnSync('chattr', ['+i', probe]).status === 0;
  if (ok) spawnSync('chattr', ['-i', probe]);
  rmSync(dir, { recursive: true, force: true });
  return ok;
}

describe('purge stopped by a session file it may not delete', () => {
  it.skipIf(!immutableFiles())(
    'names the file with its session ID shortened, not the full ID nor a Redis address; a re-run finishes once it can',
    async () => {
      const dir = join(root, `files-${++n}`);
      const ids = writeSessionFiles(dir, 'pi', 30);
      await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";cart|a:0:{}` })));
      const stuck = join(dir, `sess_${ids[12]!}`);
      expect(spawnSync('chattr', ['+i', stuck]).status).toBe(0);
      const args = ['purge', '--source', `files:${dir}`, '--target', target.url, '--key-file', keyFile, '--gc-maxlifetime', String(MAX)];
      try {
        const r = await run(args);
        const line = oneLine(r);
        const left = readdirSync(dir).length;
        // Before: "EPERM: operation not permitted, unlink '<dir>/sess_<the whole ID>' (Redis at redis://...)".
        expect(line).toContain(`could not delete the session file ${dir}/sess_${ids[12]!.slice(0, 6)}…: operation not permitted (EPERM`);
        expect(line).not.toContain(ids[12]!);
        expect(line).not.toContain('Redis at');
        if (left === 30)
          expect([r.status, line]).toEqual([2, expect.stringMatching(/^session-migrate: purge stopped: .*nothing was deleted/)]);
        else {
          expect(r.status, r.stderr + r.stdout).toBe(1);
          expect(line).toMatch(new RegExp(`^session-migrate: purge NOT DONE: ${30 - left} file\\(s\\) deleted before it stopped: `));
        }
      } finally {
        spawnSync('chattr', ['-i', stuck]);
      }
      const again = await run(args);
      expect(again.status, again.stderr + again.stdout).toBe(0);
      expect(readdirSync(dir)).toHaveLength(0);
    },
    20_000,
  );
});

describe('rotate stopped part-way', () => {
  /** 300 sessions under an old key, and a ring whose current key is new; underK1 counts those under the new one. */
  async function oldValues(): Promise<{ ring: string; underK1: () => Promise<number> }> {
    const sodium = await loadSodium();
    const [k0, k1] = [randomBytes(32), randomBytes(32)];
    const lookup = deriveLookupKey(sodium, k0);
    const oldCodec = await EnvelopeCodec.create([k0]);
    const ringCodec = await EnvelopeCodec.fromRing({ lookupKey: lookup, current: k1, previous: [k0] });
    const ring = join(root, `ring-${++n}`);
    writeFileSync(ring, formatKeyRing(sodium, { lookupKey: lookup, current: k1, previous: [k0] }));
    chmodSync(ring, 0o600);
    const keys: string[] = [];
    const pipe = target.admin.pipeline();
    for (let i = 0; i < 300; i++) {
      const key = oldCodec.keyName(PREFIX, `rot${String(i).padStart(10, '0')}abcdefghijklmn`);
      keys.push(key);
      pipe.set(key, oldCodec.seal(key, Buffer.from(`n|i:${i};`)), 'EX', 3600);
    }
    await pipe.exec();
    const underK1 = async (): Promise<number> => {
      const values = await target.admin.mgetBuffer(...keys);
      return values.filter((v, i) => {
        const o = v === null ? undefined : ringCodec.open(keys[i]!, v);
        return o?.ok === true && o.keyId === ringCodec.keyId;
      }).length;
    };
    return { ring, underK1 };
  }

  it('the target lost in the second batch of compare-and-sets: exit 1 with the count re-encrypted; a re-run finishes', async () => {
    const { ring, underK1 } = await oldValues();
    const targetUrl = await relayTo(target);
    relay!.cutAt('\r\neval\r\n', 150); // SCAN COUNT 100: the first batch's are through
    const args = ['rotate', '--target', targetUrl, '--key-ring', ring, '--scan-count', '100'];
    const r = await run(args);
    // Before: exit 2, "Redis at ... failed during rotate ...", as if nothing was rewritten.
    expect(r.status, r.stderr + r.stdout).toBe(1);
    const m =
      /^session-migrate: rotate NOT DONE: (\d+) value\(s\) re-encrypted(?: \(and maybe those in flight when it failed\))? before it stopped: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 failed: .*; every value is under the old key or the new one, each valid; run rotate again to finish$/.exec(
        r.stderr.trim().split('\n').at(-1)!,
      );
    expect(m, r.stderr).not.toBeNull();
    const reported = Number(m![1]);
    expect(reported).toBeGreaterThan(0);
    expect(await underK1()).toBeGreaterThanOrEqual(reported);
    expect(await underK1()).toBeLessThan(300);
    await relay!.reopen();
    const again = await run(args);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(await underK1()).toBe(300);
  }, 20_000);

  it('a compare-and-set whose reply was lost, sent again by ioredis: counted re-encrypted, and the stop says so (exit 1, not 2)', async () => {
    const { ring, underK1 } = await oldValues();
    const targetUrl = await relayTo(target);
    // The first batch's compare-and-sets run; their replies are cut and ioredis sends them again on
    // the new connection, where each finds the value it wrote itself. Before: -1 ("PHP wrote
    // meanwhile"), re-read and counted changedByPhp, and the stop at the next SCAN said exit 2,
    // "nothing was rewritten", with 100 values rewritten.
    relay!.loseReplyTo('\r\neval\r\n', 1);
    const r = await run(['rotate', '--target', targetUrl, '--key-ring', ring, '--scan-count', '100', '--json']);
    expect(relay!.cut).toBe(true);
    // The connection closed during the run: SCAN may have skipped keys, so rotate stops at the next SCAN.
    expect(r.status, r.stderr + r.stdout).toBe(1);
    // The first SCAN's batch: COUNT 100 is a hint, SCAN returns at least 100 keys, at times a few more (102 seen).
    const doc = JSON.parse(r.stdout) as { counts: Record<string, number> };
    const first = doc.counts.sessionKeys!;
    expect(first).toBeGreaterThanOrEqual(100);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(`^session-migrate: rotate NOT DONE: ${first} value\\(s\\) re-encrypted before it stopped: `),
    );
    expect(doc.counts).toMatchObject({ sessionKeys: first, reEncrypted: first, changedByPhp: 0, alreadyCurrent: 0 });
    expect(await underK1()).toBe(first);
  }, 20_000);

  it('a compare-and-set whose reply was lost, then an error reply to it sent again: exit 1, not exit 2 "nothing was rewritten"', async () => {
    const { ring, underK1 } = await oldValues();
    const targetUrl = await relayTo(target);
    // The first batch's compare-and-sets run, their replies are cut; while ioredis reconnects, EVAL is
    // taken from the user, so the second send gets NOPERM, error replies that say nothing of the first
    // (it ran). Before: exit 2, "nothing was rewritten", with the first batch rewritten.
    relay!.loseReplyTo('\r\neval\r\n', 1, () => target.admin.acl('SETUSER', 'default', '-eval'));
    try {
      const r = await run(['rotate', '--target', targetUrl, '--key-ring', ring, '--scan-count', '100', '--json']);
      expect(r.status, r.stderr + r.stdout).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^session-migrate: rotate NOT DONE: 0 value\(s\) re-encrypted \(and maybe those in flight when it failed\) before it stopped: .*NOPERM/,
      );
      const doc = JSON.parse(r.stdout) as { stopped: Record<string, unknown>; counts: Record<string, number> };
      expect(doc.stopped).toMatchObject({ command: 'rotate', done: 0, inFlight: true });
      // The first SCAN's batch (COUNT 100 is a hint: at least 100 keys), rewritten by the first send:
      // all of it, or the part the relay let through before the first replies came back (the
      // pipeline may reach it in several chunks; a full run saw 72 of 100).
      expect(doc.counts.sessionKeys).toBeGreaterThanOrEqual(100);
      const rewritten = await underK1();
      expect(rewritten).toBeGreaterThan(0);
      expect(rewritten).toBeLessThanOrEqual(doc.counts.sessionKeys!);
    } finally {
      await target.admin.acl('SETUSER', 'default', '+@all');
    }
  }, 20_000);

  it('the connection lost at the second SCAN: "run again" said once, not Redis\'s own too; --json prints the counts and the reason', async () => {
    const { ring, underK1 } = await oldValues();
    const targetUrl = await relayTo(target);
    relay!.cutAt('\r\nscan\r\n', 2); // the first SCAN batch (COUNT 100) is rotated, the next SCAN is cut
    const args = ['rotate', '--target', targetUrl, '--key-ring', ring, '--scan-count', '100'];
    const r = await run([...args, '--json']);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    const line = r.stderr.trim().split('\n').at(-1)!;
    // Before: "...: keys may have been skipped; run again; every value is under ...; run rotate again to finish".
    expect(line).toMatch(
      /^session-migrate: rotate NOT DONE: \d+ value\(s\) re-encrypted before it stopped: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 failed: the connection closed during SCAN of 127\.0\.0\.1:\d+ \(a restart or fail-over\?\): keys may have been skipped; every value is under the old key or the new one, each valid; run rotate again to finish$/,
    );
    expect(line.match(/run (rotate )?again/g)).toHaveLength(1);
    // --json: the document a script reads on stdout (before: nothing on stdout, the line alone).
    const doc = JSON.parse(r.stdout) as { ok: boolean; stopped: Record<string, unknown>; counts: Record<string, number> };
    expect(doc.ok).toBe(false);
    expect(doc.stopped).toMatchObject({ command: 'rotate', what: 'value(s) re-encrypted', inFlight: false });
    expect(doc.stopped.reason).toMatch(/keys may have been skipped$/);
    expect(doc.stopped.done).toBe(doc.counts.reEncrypted);
    expect(doc.counts.reEncrypted).toBeGreaterThan(0);
    expect(await underK1()).toBe(doc.counts.reEncrypted);
    await relay!.reopen();
    const again = await run(args);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(await underK1()).toBe(300);
  }, 20_000);
});

describe('rollback stopped part-way', () => {
  it('--to: the target lost in the second batch of 500 reads: exit 1, 500 files written; a re-run finishes', async () => {
    const ids = writeSessionFiles(join(root, `ids-${++n}`), 'rb', 600);
    await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";` })));
    const to = join(root, `to-${n}`);
    mkdirSync(to);
    const targetUrl = await relayTo(target);
    relay!.cutAt('\r\nget\r\n', 550); // 500 GETs read the first batch (written), 501 to 600 the second
    const args = [
      'rollback',
      '--to',
      `files:${to}`,
      '--ids-from',
      `files:${join(root, `ids-${n}`)}`,
      '--target',
      targetUrl,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      String(MAX),
    ];
    const r = await run([...args, '--json']);
    // Before: exit 2 (the directory being restored was not counted), as if nothing was written.
    expect(r.status, r.stderr + r.stdout).toBe(1);
    const doc = JSON.parse(r.stdout) as { stopped: Record<string, unknown>; counts: Record<string, number> };
    expect(doc.stopped).toMatchObject({ command: 'rollback', done: 500, what: 'file(s) written or removed', inFlight: false });
    expect(doc.counts).toMatchObject({ written: 500 }); // the batch that failed is counted too, as its report would
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^session-migrate: rollback NOT DONE: 500 file\(s\) written or removed before it stopped: .*; each change follows what Redis holds; run rollback again to finish \(re-running is safe\)$/,
    );
    expect(readdirSync(to)).toHaveLength(500);
    await relay!.reopen();
    const again = await run(args);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(readdirSync(to)).toHaveLength(600);
  }, 20_000);

  it('--to --dry-run: the target lost in the second batch: exit 2, nothing written (it wrote nothing)', async () => {
    const ids = writeSessionFiles(join(root, `ids-${++n}`), 'rd', 600);
    await copied(ids.map((id, i) => ({ id, data: `user|s:${String(i).length}:"${i}";` })));
    const to = join(root, `to-${n}`);
    mkdirSync(to);
    const targetUrl = await relayTo(target);
    relay!.cutAt('\r\nget\r\n', 550);
    const r = await run([
      'rollback',
      '--dry-run',
      '--to',
      `files:${to}`,
      '--ids-from',
      `files:${join(root, `ids-${n}`)}`,
      '--target',
      targetUrl,
      '--key-file',
      keyFile,
      '--gc-maxlifetime',
      String(MAX),
    ]);
    // Before: exit 1, the 500 files a dry run would write counted as written.
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^session-migrate: rollback stopped: .*; re-running is safe$/);
    expect(readdirSync(to)).toHaveLength(0);
  }, 20_000);

  it('--remove-keys: a compare-and-delete whose reply was lost, sent again by ioredis: the key is not reported left', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `rl${String(i).padStart(10, '0')}abcdefghijklmn`);
    await copied(ids.map((id) => ({ id, data: 'a|i:1;' })));
    const targetUrl = await relayTo(target);
    // The first compare-and-delete runs, its reply is cut; sent again, it finds the key gone: its own
    // delete (before: counted leftChanged, "1 rewritten meanwhile", for a key no longer there).
    relay!.loseReplyTo('\r\neval\r\n', 1);
    const r = await run(['rollback', '--remove-keys', '--target', targetUrl, '--key-file', keyFile, '--json']);
    expect(relay!.cut).toBe(true);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: true,
      dryRun: false,
      removed: 20,
      leftNotOpening: 0,
      leftChanged: 0,
      goneMeanwhile: 0,
      tombstones: 0,
    });
    expect(await target.admin.dbsize()).toBe(0);
  }, 20_000);

  it('--remove-keys: a lost reply, then the target stops taking deletes (a replica now): exit 1, not exit 2 "nothing changed"', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `rq${String(i).padStart(10, '0')}abcdefghijklmn`);
    await copied(ids.map((id) => ({ id, data: 'a|i:1;' })));
    const targetUrl = await relayTo(target);
    // The first compare-and-delete runs, its reply is cut; while ioredis reconnects, the target becomes
    // a read-only replica (of a master that does not answer: it keeps its data). Sent again, it finds
    // the key gone (its own delete); the next one gets READONLY, an error reply. Before: exit 2, as if
    // nothing was deleted.
    const nowhere = await freePort();
    relay!.loseReplyTo('\r\neval\r\n', 1, () => target.admin.replicaof('127.0.0.1', nowhere));
    try {
      const r = await run(['rollback', '--remove-keys', '--target', targetUrl, '--key-file', keyFile, '--json']);
      expect(r.status, r.stderr + r.stdout).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(
        /^session-migrate: rollback NOT DONE: 1 key\(s\) deleted before it stopped: .*READONLY.*; run rollback again to finish \(re-running is safe\)$/,
      );
      const doc = JSON.parse(r.stdout) as { stopped: Record<string, unknown>; counts: Record<string, number> };
      expect(doc.stopped).toMatchObject({ command: 'rollback', done: 1, inFlight: false });
      expect(doc.counts).toEqual({ removed: 1, leftNotOpening: 0, leftChanged: 0, goneMeanwhile: 0, tombstones: 0 });
      expect(await target.admin.dbsize()).toBe(19);
    } finally {
      await target.admin.replicaof('NO', 'ONE');
    }
  }, 20_000);

  it('--remove-keys: the target lost at its 6th compare-and-delete: exit 1, 5 keys deleted; a re-run finishes', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `rk${String(i).padStart(10, '0')}abcdefghijklmn`);
    await copied(ids.map((id) => ({ id, data: 'a|i:1;' })));
    const targetUrl = await relayTo(target);
    relay!.cutAt('\r\neval\r\n', 6);
    const args = ['rollback', '--remove-keys', '--target', targetUrl, '--key-file', keyFile];
    const r = await run([...args, '--json']);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^session-migrate: rollback NOT DONE: 5 key\(s\) deleted \(and maybe those in flight when it failed\) before it stopped: .*; run rollback again to finish \(re-running is safe\)$/,
    );
    // --json: the document a script reads on stdout (before: nothing on stdout, the line alone).
    const doc = JSON.parse(r.stdout) as { ok: boolean; stopped: Record<string, unknown>; counts: Record<string, number> };
    expect(doc.ok).toBe(false);
    expect(doc.stopped).toMatchObject({ command: 'rollback', done: 5, what: 'key(s) deleted', inFlight: true });
    expect(doc.counts).toEqual({ removed: 5, leftNotOpening: 0, leftChanged: 0, goneMeanwhile: 0, tombstones: 0 });
    expect(await target.admin.dbsize()).toBe(15);
    await relay!.reopen();
    const again = await run(args);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(await target.admin.dbsize()).toBe(0);
  }, 20_000);
});

describe('apply whose write ran but whose reply was lost', () => {
  it('the connection cut after Redis ran the guarded write: ioredis sends it again, and the sessions count as migrated, not already present', async () => {
    // ioredis sends a command again after a reconnect when its reply never came
    // (autoResendUnfulfilledCommands); the second run finds the key holding the very bytes the first
    // wrote. A SENTINEL FAILOVER does this (ioredis reconnects at +switch-master): CI saw a first apply
    // report "migrated 0 ..., already present 20" for the 20 sessions it had just written
    // (test/sentinel-open-failover.test.ts).
    const N = 20;
    const dir = join(root, 'lost-reply-sessions');
    const ids = writeSessionFiles(dir, 'lrp', N);
    const targetUrl = await relayTo(target);
    const planFile = join(root, 'lost-reply-plan.json');
    const p = await run(planArgs({ dir, target: targetUrl, keyFile, planFile, artifactsDir: join(root, 'lost-reply-artifacts') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    // The first EVAL (EVALSHA's NOSCRIPT on a fresh target comes first): the write that carries the 20 sessions.
    relay!.loseReplyTo('\r\neval\r\n', 1);
    const a = await run(['apply', '--plan', planFile]);
    expect(relay!.cut).toBe(true);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect(a.stdout).toMatch(
      new RegExp(
        `^ {2}sessions {4}migrated ${N} \\([^)]*\\), already present 0, newer in Redis 0, destroyed 0, conflicts 0, failed 0$`,
        'm',
      ),
    );
    expect(await countPresent(target.admin, codec, PREFIX, ids)).toBe(N);
    // A re-run: every session is one this run did not write.
    const again = await run(['apply', '--plan', planFile]);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^ {2}sessions {4}migrated 0 \\(0 B\\), already present ${N},`, 'm'));
  }, 30_000);

  it('the write sent again gets an error reply (EVAL no longer allowed: NOPERM): exit 1, the sessions failed as maybe written, never exit 2 "nothing was written"', async () => {
    const N = 20;
    const dir = join(root, 'lost-reply-noperm-sessions');
    writeSessionFiles(dir, 'lrn', N);
    const targetUrl = await relayTo(target);
    const planFile = join(root, 'lost-reply-noperm-plan.json');
    const p = await run(planArgs({ dir, target: targetUrl, keyFile, planFile, artifactsDir: join(root, 'lost-reply-noperm-artifacts') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    // The first EVAL writes the 20 sessions; its reply is cut, and EVAL is taken from the user before
    // ioredis sends it again: the second send's NOPERM says nothing of the first. Before: exit 2,
    // "apply stopped, nothing was written to Redis", with the 20 sessions in Redis.
    await target.admin.script('FLUSH'); // the guarded write's first send is then EVAL (after EVALSHA's NOSCRIPT)
    relay!.loseReplyTo('\r\neval\r\n', 1, () => target.admin.acl('SETUSER', 'default', '-eval'));
    let a: CliResult;
    try {
      a = await run(['apply', '--plan', planFile, '--json']);
    } finally {
      await target.admin.acl('SETUSER', 'default', '+@all');
    }
    expect(relay!.cut).toBe(true);
    expect(a.status, a.stderr + a.stdout).toBe(1);
    const doc = JSON.parse(a.stdout) as { sessions: { counts: Record<string, number>; failures: Array<{ reason: string }> } };
    expect(doc.sessions.counts).toMatchObject({ migrated: 0, failed: N, notDone: 0 });
    expect(doc.sessions.failures[0]!.reason).toMatch(/NOPERM.*: the replies were lost, so they may have been written; .*run apply again/);
    expect(Number(await target.admin.dbsize())).toBe(N);
  }, 30_000);
});

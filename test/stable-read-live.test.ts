/**
 * The stable-read rule through the CLI, deterministically: real PHP processes hold session files in
 * the exact states of a files-handler write in progress (test/php/stalled-write.php: flock(LOCK_EX),
 * ftruncate to 0, and for one of them the first half of the new version), the state a reader meets
 * when PHP is descheduled mid-write on a loaded machine. plan, apply (inline and on workers),
 * verify --source and purge must never take them for empty or corrupt sessions: they are reported
 * `unstable`, apply and verify exit 1, purge deletes neither, and once PHP has finished a re-run
 * copies the versions PHP wrote. A genuinely empty file written just now is still `empty`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { stallPhpWrite, type StalledWriter } from './support/stalled-writer.ts';
import { BIN } from './support/migrate-cli.ts';

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

interface ApplyCounts {
  migrated: number;
  alreadyPresent: number;
  unstable: number;
  empty: number;
  corrupt: number;
  failed: number;
  conflicts: number;
}
const applyCounts = (r: CliResult): ApplyCounts => (JSON.parse(r.stdout) as { sessions: { counts: ApplyCounts } }).sessions.counts;

/** A valid session under serialize_handler=php whose length depends on `n`. */
const version = (tag: string, n: number): string => `user|s:${tag.length}:"${tag}";pad|s:${n}:"${'x'.repeat(n)}";`;

let redis: RedisServer;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-stable-live-'));
  keyFile = join(root, 'master.key');
  expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
  codec = await EnvelopeCodec.create([readKeyFile(keyFile)]);
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('session files PHP holds half-written (0 bytes, or a prefix of the new version, under its lock)', () => {
  it('plan, apply, verify --source and purge report them unstable, never empty or corrupt; a re-run after PHP finishes copies them', async () => {
    const dir = join(root, 'sessions');
    mkdirSync(dir, { mode: 0o700 });
    const ids = {
      ok1: 'stableok00000000000000000001',
      ok2: 'stableok00000000000000000002',
      empty: 'stableempty00000000000000001',
      truncated: 'stalltrunc000000000000000001',
      partial: 'stallpart0000000000000000001',
    };
    writeFileSync(join(dir, `sess_${ids.ok1}`), version('alice', 10));
    writeFileSync(join(dir, `sess_${ids.ok2}`), version('bob', 20));
    writeFileSync(join(dir, `sess_${ids.empty}`), ''); // a real empty session, written just now
    const finalTruncated = version('carol', 5);
    const finalPartial = version('dave', 300);
    writeFileSync(join(dir, `sess_${ids.truncated}`), version('carol', 400));
    writeFileSync(join(dir, `sess_${ids.partial}`), version('dave', 100));
    const planFile = join(root, 'stall.plan.json');
    const writers: StalledWriter[] = [];
    try {
      writers.push(await stallPhpWrite(join(dir, `sess_${ids.truncated}`), 'truncate', finalTruncated));
      writers.push(await stallPhpWrite(join(dir, `sess_${ids.partial}`), 'partial', finalPartial));
      expect(readFileSync(join(dir, `sess_${ids.truncated}`)).length).toBe(0);

      const planned = cli([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        redis.url,
        '--key-file',
        keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(root, 'art'),
      ]);
      expect(planned.status, planned.stderr).toBe(0);
      const summary = (
        JSON.parse(readFileSync(planFile, 'utf8')) as {
          summary: { live: number; empty: number; corrupt: number; skipped: Record<string, number> };
        }
      ).summary;
      expect(summary).toMatchObject({ live: 2, empty: 1, corrupt: 0 });
      expect(summary.skipped.unstable).toBe(2);

      // Inline and on worker threads: the same rule.
      for (const workers of ['0', '2']) {
        await redis.client.flushdb();
        const r = cli(['apply', '--plan', planFile, '--json', '--workers', workers]);
        expect(r.status, r.stderr).toBe(1);
        expect(applyCounts(r)).toMatchObject({ migrated: 2, unstable: 2, empty: 1, corrupt: 0, failed: 0, conflicts: 0 });
        expect(await redis.client.exists(codec.keyName(PREFIX, ids.truncated), codec.keyName(PREFIX, ids.partial))).toBe(0);
      }

      // verify --source does not count them as empty or corrupt (which it would not look for in Redis).
      const verify = cli(['verify', '--plan', planFile, '--source', `files:${dir}`, '--json']);
      expect(verify.status, verify.stdout).toBe(1);
      const report = JSON.parse(verify.stdout) as {
        failureCounts: Record<string, number>;
        source: { matching: number; empty: number; corrupt: number };
      };
      expect(report.failureCounts).toEqual({ 'source-unreadable': 2 });
      expect(report.source).toMatchObject({ matching: 2, empty: 1, corrupt: 0 });

      // purge, even with --allow-partial, deletes neither (a 0-byte file would otherwise be `empty`,
      // and PHP's pwrite would then land in an unlinked file: the session lost).
      const purged = cli(['purge', '--plan', planFile, '--allow-partial', '--json']);
      expect(purged.status, purged.stderr).toBe(1);
      const p = JSON.parse(purged.stdout) as { blocked: Record<string, number>; deletable: Record<string, number>; deleted: number };
      // Both are unstable: purge with a plan reads by plan's rule (looksCompleteFor the plan's
      // serialize_handler), so the prefix PHP is writing is never judged `corrupt` (deletable).
      expect(p.blocked).toEqual({ 'unreadable-file': 2 });
      expect(p.deletable).toEqual({ same: 2, empty: 1 });
      expect(existsSync(join(dir, `sess_${ids.truncated}`))).toBe(true);
      expect(existsSync(join(dir, `sess_${ids.partial}`))).toBe(true);
    } finally {
      for (const w of writers) await w.finish();
    }

    // PHP finished its writes: a re-run copies exactly what it wrote.
    expect(readFileSync(join(dir, `sess_${ids.truncated}`), 'latin1')).toBe(finalTruncated);
    const again = cli(['apply', '--plan', planFile, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(applyCounts(again)).toMatchObject({ migrated: 2, unstable: 0, empty: 0, corrupt: 0 });
    for (const [id, data] of [
      [ids.truncated, finalTruncated],
      [ids.partial, finalPartial],
    ] as const) {
      const opened = codec.open(codec.keyName(PREFIX, id), (await redis.client.getBuffer(codec.keyName(PREFIX, id)))!);
      expect(opened.ok && opened.plaintext.toString('latin1')).toBe(data);
    }
    const verified = cli(['verify', '--plan', planFile, '--source', `files:${dir}`, '--json']);
    expect(verified.status, verified.stdout).toBe(0);
  }, 120_000);
});

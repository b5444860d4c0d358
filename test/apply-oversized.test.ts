/**
 * A live session larger than the plan's --max-session-bytes is not copied, so its user would be
 * logged out at the cutover: apply exits 1 with a FAIL line naming the limit, verify --plan fails it
 * (`source-unreadable`; its FAIL line names the file, its size and the limit), purge keeps it. A plan with a larger limit then copies it and every check
 * passes. (Before, apply and verify reported success with `skipped files: oversized 1`; found by an
 * adversarial review.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, newKey, planArgs, writeSessionFiles } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';

let root: string;
let redis: RedisServer;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-oversized-'));
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("a live session over the plan's size limit", () => {
  it('apply exits 1 naming the limit, verify fails it, purge keeps it; a larger limit copies it', async () => {
    const dir = join(root, 'sessions');
    writeSessionFiles(dir, 'small', 3);
    const bigId = 'big0000000000000000000000a';
    const blob = 'x'.repeat(3000);
    const bigFile = join(dir, `sess_${bigId}`);
    writeFileSync(bigFile, `user|s:3:"big";blob|s:${blob.length}:"${blob}";`);
    mkdirSync(join(root, 'key'));
    const { keyFile } = await newKey(join(root, 'key'));
    const planFile = join(root, 'plan.json');
    const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'art') }, '--max-session-bytes', '2048'));
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(
      /^ {2}WARNING {5}1 session\(s\) larger than --max-session-bytes \(2048 bytes\): apply would not copy them .*run plan again with a larger --max-session-bytes$/m,
    );

    const a = cli(['apply', '--plan', planFile]);
    expect(a.status, a.stdout + a.stderr).toBe(1);
    expect(a.stdout).toContain('  sessions    migrated 3 (');
    expect(a.stdout).toMatch(
      /^ {2}FAIL +1 session\(s\) larger than the plan's limit \(2048 bytes\): not copied, their users would be logged out; run plan again with a larger --max-session-bytes, then apply$/m,
    );
    expect(a.stdout).not.toMatch(/next +deploy the artifacts/);
    const again = cli(['apply', '--plan', planFile, '--json']);
    expect(again.status).toBe(1);
    expect(JSON.parse(again.stdout)).toMatchObject({
      nothingToDo: false,
      sessions: { counts: { alreadyPresent: 3, skipped: { oversized: 1 } } },
    });

    // verify's FAIL line says what apply's says, for the one file: its size and the plan's limit.
    const bigBytes = statSync(bigFile).size;
    const vText = cli(['verify', '--plan', planFile]);
    expect(vText.status, vText.stdout + vText.stderr).toBe(1);
    const failLines = vText.stdout.split('\n').filter((l) => l.startsWith('  FAIL '));
    expect(failLines, vText.stdout).toHaveLength(1);
    expect(failLines[0]).toMatch(
      new RegExp(
        `^ {2}FAIL +\\S*sess_big\\S*: ${bigBytes} bytes, larger than the plan's limit \\(2048 bytes\\): not copied, its user would be logged out; run plan again with a larger --max-session-bytes, then apply$`,
      ),
    );
    expect(vText.stdout + vText.stderr).not.toContain('xxxx'); // never its contents
    const v = cli(['verify', '--plan', planFile, '--json']);
    expect(v.status, v.stdout + v.stderr).toBe(1);
    const vJson = JSON.parse(v.stdout) as { failureCounts: Record<string, number>; failures: Array<Record<string, unknown>> };
    expect(vJson.failureCounts).toEqual({ 'source-unreadable': 1 });
    expect(vJson.failures).toEqual([
      expect.objectContaining({ reason: 'source-unreadable', oversized: { bytes: bigBytes, maxBytes: 2048 } }),
    ]);
    const purge = cli(['purge', '--plan', planFile]);
    expect(purge.status).not.toBe(0);
    expect(existsSync(bigFile)).toBe(true);

    const larger = join(root, 'plan-larger.json');
    const p2 = cli(
      planArgs({ dir, target: redis.url, keyFile, planFile: larger, artifactsDir: join(root, 'art') }, '--max-session-bytes', '8192'),
    );
    expect(p2.status, p2.stderr).toBe(0);
    const a2 = cli(['apply', '--plan', larger]);
    expect(a2.status, a2.stdout + a2.stderr).toBe(0);
    expect(a2.stdout).toContain('  sessions    migrated 1 (');
    const v2 = cli(['verify', '--plan', larger]);
    expect(v2.status, v2.stdout + v2.stderr).toBe(0);
  });
});

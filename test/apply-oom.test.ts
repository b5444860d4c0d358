/**
 * apply stopped by a permanent error (OOM: Redis at maxmemory with noeviction refuses writes; it is
 * not retried): the summary says it once, with one instruction. It said "NOT DONE ... Redis kept
 * failing after the retries" (nothing was retried) and repeated "run the command again; fix it and
 * run apply again" (adversarial review).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, newKey, planArgs, sid } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';

const TOTAL = 3000;
let redis: RedisServer;
let root: string;
let planFile: string;
let keyFileOf: string;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-apply-oom-'));
  const { keyFile } = await newKey(root);
  keyFileOf = keyFile;
  const dir = join(root, 'sessions');
  mkdirSync(dir, { mode: 0o700 });
  const t = Date.now() / 1000 - 60;
  const filler = 'x'.repeat(2000);
  for (let i = 0; i < TOTAL; i++) {
    const path = join(dir, `sess_${sid('oom', i)}`);
    writeFileSync(path, `user|s:${filler.length}:"${filler}";`);
    utimesSync(path, t, t);
  }
  planFile = join(root, 'plan.json');
  const p = cli(planArgs({ dir, target: redis.url, keyFile, planFile, artifactsDir: join(root, 'art') }));
  expect(p.status, p.stderr).toBe(0);
  // Room for about a quarter of the sessions, then OOM (noeviction: writes are refused, nothing evicted).
  const used = Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))![1]);
  await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.client.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024));
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('apply stopped by OOM', () => {
  it('STOPPED names the error and one instruction; NOT DONE says apply stopped at that error, not that Redis kept failing', async () => {
    const r = cli(['apply', '--plan', planFile, '--workers', '0']);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    const written = await redis.client.dbsize();
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(TOTAL);
    // The line names the server, as plan and verify do (`Redis at URL failed during ...`).
    const at = `Redis at ${redis.url.replace(/[.]/g, '\\.')} failed during apply: `;
    expect(r.stdout).toMatch(
      new RegExp(
        `^ {2}STOPPED {5}${at}` +
          /OOM command not allowed when used memory > 'maxmemory'\.: Redis reached maxmemory and refuses writes: raise maxmemory \(a larger node\) or free memory, then run apply again$/
            .source,
        'm',
      ),
    );
    expect(r.stdout).toMatch(/^ {2}NOT DONE {4}\d+ session\(s\) not written: apply stopped at the error above$/m);
    expect(r.stdout).not.toMatch(/kept failing/);
    expect(r.stdout.match(/run (apply|the command) again/g)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/retry/);
  });

  it('with several sources, a source not started says apply stopped at the error, not that Redis kept failing', async () => {
    const second = join(root, 'second');
    mkdirSync(second, { mode: 0o700 });
    writeFileSync(join(second, `sess_${sid('two', 0)}`), 'user|s:3:"two";');
    const several = join(root, 'several.json');
    const p = cli([
      ...planArgs({
        dir: join(root, 'sessions'),
        target: redis.url,
        keyFile: keyFileOf,
        planFile: several,
        artifactsDir: join(root, 'art2'),
      }),
      '--source',
      `files:${second}`,
    ]);
    expect(p.status, p.stderr).toBe(0);
    // Room for some more of the first source's sessions, then OOM again before the second source.
    const used = Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))![1]);
    await redis.client.config('SET', 'maxmemory', String(used + 1024 * 1024));
    const r = cli(['apply', '--plan', several, '--workers', '0']);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stdout).toMatch(
      /^ {2}NOT DONE {4}.*second: not started, apply stopped at the error below while copying an earlier source; run apply again$/m,
    );
    expect(r.stdout).not.toMatch(/kept failing/);
  });
});

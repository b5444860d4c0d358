/**
 * A Redis that is still loading its data set (after a restart or a full sync: INFO `loading:1`; every
 * other command answers LOADING) when plan, apply or verify connects. The probe's INFO passed, then
 * ioredis's ready check waited silently until the load had finished (INFO again every
 * `loading_eta_seconds`): about 50 s here, minutes for a large data set on ElastiCache. Now the
 * first contact refuses such a node at once: one line naming the URL and the time left, exit 2,
 * nothing written.
 *
 * The load is provoked for real: `DEBUG RELOAD` (saves, then loads the RDB again) of a data set
 * with a delay per key (`key-load-delay`, microseconds; src/rdb.c of https://github.com/redis/redis),
 * with events processed every KiB of RDB read (`loading-process-events-interval-bytes`), so other
 * clients are answered (INFO, LOADING) while it loads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startNode, type RedisNode } from './support/redis-topologies.ts';
import { cli, newKey, planArgs, usageLine, writeSessionFiles } from './support/migrate-cli.ts';

let node: RedisNode;
let root: string;
let keyFile: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-loading-'));
  ({ keyFile } = await newKey(root));
  node = await startNode({ args: ['--enable-debug-command', 'yes'] });
}, 30_000);
afterAll(async () => {
  await node?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Waits until INFO of `node` says `loading:<want>`. */
async function waitLoading(want: '0' | '1', timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!String(await node.admin.info('persistence')).includes(`loading:${want}`)) {
    if (Date.now() > deadline) throw new Error(`loading:${want} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a Redis still loading its data set when a command connects', () => {
  it('plan, apply and verify: one line naming the URL, at once; exit 2, nothing written', async () => {
    const dir = join(root, 'files');
    writeSessionFiles(dir, 'loadg', 10);
    const target = `${node.url.replace(/\/\d*$/, '')}/0`;
    const planFile = join(root, 'plan.json');
    const p = cli(planArgs({ dir, target, keyFile, planFile, artifactsDir: join(root, 'art') }));
    expect(p.status, p.stderr + p.stdout).toBe(0);
    // 5000 keys of filler, 8 ms each to load: 40 s of LOADING.
    const fill = node.admin.pipeline();
    for (let i = 0; i < 5000; i++) fill.set(`filler:${i}`, 'x'.repeat(64));
    await fill.exec();
    await node.admin.call('CONFIG', 'SET', 'loading-process-events-interval-bytes', '1024');
    await node.admin.call('CONFIG', 'SET', 'key-load-delay', '8000');
    const reloader = new Redis({ host: node.host, port: node.port, lazyConnect: true, commandTimeout: 120_000 });
    await reloader.connect();
    const reload = reloader.call('DEBUG', 'RELOAD');
    reload.catch(() => undefined);
    try {
      await waitLoading('1', 10_000);
      const planFile2 = join(root, 'plan2.json');
      const runs: Array<[string, string[]]> = [
        ['plan', planArgs({ dir, target, keyFile, planFile: planFile2, artifactsDir: join(root, 'art2') })],
        ['apply', ['apply', '--plan', planFile]],
        ['verify', ['verify', '--plan', planFile]],
      ];
      for (const [name, args] of runs) {
        const started = Date.now();
        const r = cli(args, {}, 60_000);
        const seconds = (Date.now() - started) / 1000;
        expect(usageLine(r), name).toMatch(
          new RegExp(
            `^session-migrate: Redis at ${target.replace(/[.]/g, '\\.')} is loading its data set into memory \\(INFO loading:1, about \\d+ s left\\): run the command again once it has loaded; nothing was written$`,
          ),
        );
        expect(r.stdout, name).toBe('');
        expect(seconds, name).toBeLessThan(10);
      }
      expect(existsSync(planFile2)).toBe(false);
      // Still loading: nothing could have been written meanwhile; checked once the load ended.
      await waitLoading('1', 1000);
    } finally {
      await node.admin.call('CONFIG', 'SET', 'key-load-delay', '0');
      await reload;
      reloader.disconnect();
    }
    expect(Number(await node.admin.dbsize())).toBe(5000);
  }, 180_000);
});

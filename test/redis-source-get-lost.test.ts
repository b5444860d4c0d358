/**
 * A Redis source whose connection is lost during the GETs that follow a finished SCAN (its master
 * dies then): those sessions are not copied (RedisSource counts them `unreadable`), and apply says
 * why in Redis's terms (the connection lost, never a value) and what to do (run apply again once the
 * source Redis answers), not the files source's "could not be read (permissions?): run apply as the
 * PHP user or root". The loss is made deterministic by a TCP relay in front of a real redis-server:
 * plan reads through it; during apply it cuts the source connection when the first GET arrives (the
 * SCAN has had its reply by then) and refuses every connection after, as a dead server does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode, type RedisNode } from './support/redis-topologies.ts';
import { cliChild, newKey, planArgs, sid } from './support/migrate-cli.ts';
import { startRelay, type Relay } from './support/relay.ts';

const SOURCE_PREFIX = 'PHPREDIS_SESSION:';
let root: string;
let source: RedisNode | undefined;
let target: RedisNode | undefined;
let relay: Relay | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-source-get-lost-'));
  [source, target] = await Promise.all([startNode(), startNode()]);
}, 30_000);
afterAll(async () => {
  relay?.stop();
  await source?.stop();
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** 20 sessions on the source, a new relay to it (cutting nothing yet), and a plan read through it. */
async function planThroughRelay(tag: string): Promise<{ planFile: string; sourceUrl: string }> {
  relay?.stop();
  relay = await startRelay(source!.port);
  const { keyFile } = await newKey(mkdtempSync(join(root, `${tag}-`)));
  await source!.admin.flushall();
  await target!.admin.flushall();
  const pipe = source!.admin.pipeline();
  for (let i = 0; i < 20; i++) pipe.set(`${SOURCE_PREFIX}${sid(tag, i)}`, `user|s:1:"${i % 10}";`, 'EX', 3600);
  await pipe.exec();
  const planFile = join(root, `plan-${tag}.json`);
  const sourceUrl = `redis://127.0.0.1:${relay.port}/0`;
  // cliChild, not cli: the relay runs in this process, whose event loop spawnSync would block.
  const p = await cliChild(
    planArgs({ source: `redis:${sourceUrl}`, target: target!.url, keyFile, planFile, artifactsDir: join(root, `artifacts-${tag}`) }),
  ).done;
  expect(p.status, p.stderr + p.stdout).toBe(0);
  return { planFile, sourceUrl };
}

describe('a Redis source whose connection is lost at the GETs after SCAN', () => {
  it('apply exits 1 naming the lost connection and advising a re-run once the source answers, not the files wording', async () => {
    const { planFile, sourceUrl } = await planThroughRelay('gl');
    relay!.cutAt('\r\nget\r\n');
    const r = await cliChild(['apply', '--plan', planFile]).done;
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stdout).not.toMatch(/permissions\?|as the PHP user or root/);
    expect(r.stdout).toContain(
      `  FAIL        20 session(s) could not be read from the source Redis at ${sourceUrl} (the connection to Redis was lost): not copied; run apply again once the source Redis answers\n`,
    );
    expect(r.stdout).not.toMatch(/^ {2}next/m);
    expect(await target!.admin.dbsize()).toBe(0);
  }, 30_000);

  it('a source lost at its first SCAN, before any write: one line, exit 2, nothing written', async () => {
    const { planFile, sourceUrl } = await planThroughRelay('gs');
    relay!.cutAt('\r\nscan\r\n');
    const r = await cliChild(['apply', '--plan', planFile]).done;
    expect(r.status, r.stderr + r.stdout).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `^session-migrate: source Redis at ${sourceUrl.replace(/[.]/g, '\\.')} failed while reading: the connection closed during SCAN of [^\n]*; run again\n$`,
      ),
    );
    expect(r.stdout).not.toMatch(/NOT DONE|^ {2}next/m);
    expect(await target!.admin.dbsize()).toBe(0);
  }, 30_000);
});

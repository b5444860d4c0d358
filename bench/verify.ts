/**
 * Benchmark: verify's whole-database scan against the prefix scan it replaced, in the same run, and
 * its memory with many non-session keys.
 *
 *   npx tsx bench/verify.ts [N] [M]     (defaults: N = 100000, M = 1000000)
 *
 * 1. Speed. A fresh local redis-server holds N envelopes (~1 KiB sessions, with a TTL) under the
 *    prefix in database 0. Baseline: the prefix scan of verify before issue 13 (SCAN MATCH prefix*,
 *    then GET + PTTL per key in pipelines, open each envelope), reimplemented below as it was, on
 *    database 0. Database 1 holds the same envelopes plus N keys of other kinds (plaintext phpredis
 *    sessions, JSON and binary strings of 50 B to 40 KiB, counters, hashes, lists, sets, zsets,
 *    streams, phpredis locks): 2N mixed keys, which `verifyTarget` scans whole. Prints µs per key
 *    for the baseline, for verify --prefix-only on database 0 and for the whole-database scan, and
 *    the ratio whole-database / baseline (goal: <= 1, i.e. at least as fast per key). The three run
 *    in interleaved rounds (the best of 5 each), so a change of the machine's load hits all three.
 * 2. Memory. `session-migrate verify --json` (a child process; peak RSS from /proc VmHWM) over a
 *    database of M/10 and of M non-session keys. Prints both peaks and their ratio (goal: flat, about
 *    1), then runs M again with V8's old space capped at 48 MiB (it must complete: nothing per key is
 *    kept).
 *
 * In-process timings: the Node.js and Redis work per key, without process start-up.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { ChainableCommander, Redis } from 'ioredis';
import { EnvelopeCodec, generateKeyFile } from '../packages/envelope/src/index.ts';
import { RedisConnection, specFromUrl } from '../packages/redis/src/index.ts';
import { verifyTarget } from '../packages/verify/src/index.ts';
import { startRedis } from '../packages/cli/src/sandbox.ts';

const N = Number(process.argv[2] ?? 100_000);
const M = Number(process.argv[3] ?? 1_000_000);
const PREFIX = 'smsess:';
const root = mkdtempSync(join(tmpdir(), 'sm-bench-verify-'));
const cli = join(import.meta.dirname, '../packages/cli/bin/session-migrate.js');

function sessionPayload(i: number): Buffer {
  const items = Array.from(
    { length: 6 },
    (_, j) => `i:${j};O:8:"CartItem":2:{s:3:"sku";s:9:"SKU-${String(i % 10000).padStart(4, '0')}${j}";s:3:"qty";i:${((i + j) % 5) + 1};}`,
  ).join('');
  return Buffer.from(
    `user|a:2:{s:2:"id";i:${i};s:5:"email";s:${`user${i}@example.com`.length}:"user${i}@example.com";}cart|a:6:{${items}}csrf|s:64:"${'ab'.repeat(32)}";locale|s:5:"en_GB";`,
  );
}

const sid = (tag: string, i: number): string => `${tag}${String(i).padStart(22, '0')}`;

async function load(client: Redis, n: number, add: (pipe: ChainableCommander, i: number) => void): Promise<void> {
  for (let i = 0; i < n; i += 2000) {
    const pipe = client.pipeline();
    for (let j = i; j < Math.min(n, i + 2000); j++) add(pipe, j);
    await pipe.exec();
  }
}

/** Keys of other kinds than envelopes: the mix of a database shared by a PHP application. */
function addOther(pipe: ChainableCommander, i: number): void {
  switch (i % 12) {
    case 0:
      pipe.set(`PHPREDIS_SESSION:${sid('plain', i)}`, sessionPayload(i), 'EX', 3600);
      break;
    case 1:
      pipe.set(`cache:json:${i}`, JSON.stringify({ id: i, name: `item ${i}`, tags: ['a', 'b', 'c'], price: i / 100 }));
      break;
    case 2:
      pipe.set(`cache:bin:${i}`, Buffer.alloc(50 + (i % 200), i % 256));
      break;
    case 3:
      pipe.set(`counter:${i}`, String(i));
      break;
    case 4:
      pipe.set(`cache:page:${i}`, Buffer.alloc(i % 48 === 4 ? 40_000 : 2_000, 0x3c));
      break;
    case 5:
      pipe.hset(`hash:${i}`, 'a', '1', 'b', '2');
      break;
    case 6:
      pipe.rpush(`list:${i}`, 'a', 'b');
      break;
    case 7:
      pipe.sadd(`set:${i}`, 'a');
      break;
    case 8:
      pipe.zadd(`zset:${i}`, 1, 'a');
      break;
    case 9:
      pipe.xadd(`stream:${i}`, '*', 'f', 'v');
      break;
    case 10:
      pipe.set(`PHPREDIS_SESSION:${sid('lock', i)}_LOCK`, 'web-1|1234', 'PX', 60_000);
      break;
    default:
      pipe.set(`laravel_cache:${i}`, `a:2:{s:1:"a";i:${i};s:1:"b";s:3:"xyz";}`, 'EX', 3600);
      break;
  }
}

/** The prefix scan of verify before issue 13 (packages/verify/src/verify.ts at 4d60bff), its hot loop. */
async function legacyPrefixScan(client: RedisConnection, codec: EnvelopeCodec): Promise<number> {
  let valid = 0;
  for await (const keys of client.scan(PREFIX, 1000)) {
    const replies = await client.runGrouped(
      keys.map((key) => ({
        key,
        build: (pipe: ChainableCommander) => {
          pipe.getBuffer(key);
          pipe.pttl(key);
        },
      })),
    );
    keys.forEach((rawKey, i) => {
      const [getErr, value] = replies[i]?.[0] ?? [new Error('no reply'), null];
      const [, pttl] = replies[i]?.[1] ?? [null, -2];
      if (getErr || value === null) return;
      const opened = codec.open(rawKey, value as Buffer);
      if (opened.ok && pttl !== -1) valid++;
    });
  }
  return valid;
}

async function best(rounds: number, fn: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return min;
}

/** Peak RSS (KiB) of `verify --json` over the database. */
async function verifyPeakRss(url: string, keyFile: string, nodeArgs: string[] = []): Promise<{ rssKiB: number; keys: number; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'verify', '--target', url, '--key-file', keyFile, '--json'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const status = execFileSync('cat', [`/proc/${child.pid}/status`], { encoding: 'utf8' });
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      /* exited */
    }
  }, 50);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await once(child, 'exit');
  clearInterval(poll);
  return { rssKiB: peak, keys: out === '' ? 0 : (JSON.parse(out) as { keysTotal: number }).keysTotal, ms: Date.now() - t0 };
}

async function main(): Promise<void> {
  const keyFile = join(root, 'master.key');
  const key = generateKeyFile(keyFile);
  const codec = await EnvelopeCodec.create([key]);
  const redis = await startRedis();
  // Database 0: the N envelopes alone (the baseline's world); database 1: the same plus N other keys.
  const conn0 = await RedisConnection.open(specFromUrl(redis.url, {}, 'target'));
  const conn1 = await RedisConnection.open(specFromUrl(redis.url.replace(/\/0$/, '/1'), {}, 'target'));
  try {
    const envelopes = (pipe: ChainableCommander, i: number): void => {
      const k = codec.keyName(PREFIX, sid('env', i));
      pipe.set(k, codec.seal(k, sessionPayload(i)), 'EX', 3600);
    };
    await load(redis.client, N, envelopes);
    await conn1.client.flushdb();
    await load(conn1.client as Redis, N, envelopes);
    await load(conn1.client as Redis, N, addOther);
    const total = Number(await conn1.client.dbsize());
    // Rounds interleaved (the machine's load changes over time); the best of each.
    let report: Awaited<ReturnType<typeof verifyTarget>> | undefined;
    const runs: Record<string, () => Promise<unknown>> = {
      baseline: () => legacyPrefixScan(conn0, codec),
      prefixOnly: () => verifyTarget({ client: conn0, codec, prefix: PREFIX, scope: 'prefix' }),
      whole: async () => {
        report = await verifyTarget({ client: conn1, codec, prefix: PREFIX });
      },
    };
    const ms: Record<string, number> = {};
    for (let round = 0; round < 5; round++) {
      for (const [name, fn] of Object.entries(runs)) ms[name] = Math.min(ms[name] ?? Infinity, await best(1, fn));
    }
    const baselineMs = ms.baseline!;
    const prefixOnlyMs = ms.prefixOnly!;
    const wholeMs = ms.whole!;
    const perKey = (t: number, keys: number): number => (t * 1000) / keys;
    console.log(`verify speed (${N} envelopes; whole database: ${total} mixed keys)`);
    console.log(
      `  baseline: prefix scan before issue 13    ${perKey(baselineMs, N).toFixed(2)} µs/key (${N} keys, ${baselineMs.toFixed(0)} ms)`,
    );
    console.log(
      `  verify --prefix-only                      ${perKey(prefixOnlyMs, N).toFixed(2)} µs/key (${N} keys, ${prefixOnlyMs.toFixed(0)} ms)`,
    );
    console.log(
      `  verify, whole database                    ${perKey(wholeMs, total).toFixed(2)} µs/key (${total} keys, ${wholeMs.toFixed(0)} ms)`,
    );
    console.log(`  ratio whole database / baseline per key   ${(perKey(wholeMs, total) / perKey(baselineMs, N)).toFixed(2)} (goal <= 1)`);
    console.log(`  ratio --prefix-only / baseline per key    ${(prefixOnlyMs / baselineMs).toFixed(2)}`);
    console.log(`  classes: ${JSON.stringify(report?.classes)}`);
    // Memory: M/10 and M keys that are no session (the envelopes and the mix removed first).
    await redis.client.flushall();
    conn0.close();
    conn1.close();
    const small = Math.max(1, Math.round(M / 10));
    const other = (pipe: ChainableCommander, i: number): void => {
      if (i % 5 === 0) pipe.hset(`m:h:${i}`, 'f', 'v');
      else pipe.set(`m:s:${i}`, i % 2 === 0 ? `value-${i}` : Buffer.alloc(64, i % 256));
    };
    await load(redis.client, small, other);
    const a = await verifyPeakRss(redis.url, keyFile);
    await load(redis.client, M, (pipe, i) => {
      if (i >= small) other(pipe, i);
    });
    const b = await verifyPeakRss(redis.url, keyFile);
    console.log('verify memory (keys of other applications only)');
    console.log(
      `  ${a.keys} keys: peak RSS ${(a.rssKiB / 1024).toFixed(1)} MiB; ${b.keys} keys: peak RSS ${(b.rssKiB / 1024).toFixed(1)} MiB; ratio ${(b.rssKiB / a.rssKiB).toFixed(2)} (goal: about 1; V8 lets its heap grow while it can)`,
    );
    // The same scan with V8's old space capped at 48 MiB: it completes (nothing per key is kept).
    const capped = await verifyPeakRss(redis.url, keyFile, ['--max-old-space-size=48']);
    console.log(
      `  ${capped.keys} keys with --max-old-space-size=48: ${capped.keys === b.keys ? 'completed' : 'FAILED'}, peak RSS ${(capped.rssKiB / 1024).toFixed(1)} MiB, ${capped.ms} ms`,
    );
  } finally {
    conn0.close();
    conn1.close();
    codec.wipe();
    key.fill(0);
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();

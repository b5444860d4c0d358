/**
 * Benchmark: `apply` against `redis-cli --pipe` of the same data, in the same run.
 *
 *   npx tsx bench/apply.ts [N]          (default N = 100000 sessions of about 1 KiB)
 *
 * Writes N PHP-serialized session files, times `apply` (plan excluded) into a fresh local
 * redis-server, then times `redis-cli --pipe` loading the same payloads as plaintext SETs into another
 * fresh redis-server. Prints sessions/s for both, their ratio (goal: >= 0.5), and apply's peak RSS at
 * N/10 and N (goal: memory that does not grow with N).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { startRedis } from '../packages/cli/src/sandbox.ts';

const N = Number(process.argv[2] ?? 100_000);
/** Worker threads for apply, the same at both sizes so their peak RSS compares (default: one per core). */
const WORKERS = Number(process.env.BENCH_WORKERS ?? availableParallelism());
const root = mkdtempSync(join(tmpdir(), 'sm-bench-'));
const cli = join(import.meta.dirname, '../build/package/bin/session-migrate.js');

/** A realistic ~1 KiB `php`-format session: user, cart of objects, flash messages, CSRF token. */
function sessionPayload(i: number): Buffer {
  const items = Array.from({ length: 6 }, (_, j) =>
    `i:${j};O:8:"CartItem":3:{s:3:"sku";s:9:"SKU-${String(i % 10000).padStart(4, '0')}${j}";s:3:"qty";i:${(i + j) % 5 + 1};s:5:"price";d:${(i % 997) / 10 + j};}`).join('');
  const token = (i * 2654435761 >>> 0).toString(16).padStart(8, '0').repeat(8);
  return Buffer.from(
    `user|a:3:{s:2:"id";i:${i};s:5:"email";s:${`user${i}@example.com`.length}:"user${i}@example.com";s:5:"roles";a:2:{i:0;s:8:"customer";i:1;s:10:"newsletter";}}` +
    `cart|a:6:{${items}}csrf|s:64:"${token}";flash|a:1:{i:0;s:32:"Your cart was saved successfully";}` +
    `last_seen|i:${1_700_000_000 + i};locale|s:5:"en_GB";` +
    `history|a:4:{${[0, 1, 2, 3].map((k) => { const u = `/catalog/category-${(i + k) % 50}/product-${(i * 7 + k) % 1000}?ref=home`; return `i:${k};s:${u.length}:"${u}";`; }).join('')}}`, 'latin1');
}

function sessionId(i: number): string {
  return `bench${String(i).padStart(21, '0')}`;
}

function writeFiles(dir: string, n: number): number {
  mkdirSync(dir, { mode: 0o700 });
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const p = sessionPayload(i);
    bytes += p.length;
    writeFileSync(join(dir, `sess_${sessionId(i)}`), p);
  }
  return bytes;
}

function run(args: string[]): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const out = execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, out };
}

/** Runs plan + apply for n sessions; returns apply's wall time and its peak RSS (KiB, from /usr/bin/time or /proc). */
async function benchApply(n: number, label: string): Promise<{ ms: number; copyMs: number; rssKiB: number }> {
  const dir = join(root, `sessions-${label}`);
  writeFiles(dir, n);
  const redis = await startRedis();
  try {
    const key = join(root, `key-${label}`);
    run(['keys', 'generate', '--out', key]);
    const plan = join(root, `plan-${label}.json`);
    run(['plan', '--source', `files:${dir}`, '--target', redis.url, '--key-file', key, '--out', plan, '--artifacts-dir', join(root, `art-${label}`), '--json']);
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [cli, 'apply', '--plan', plan, '--json', '--workers', String(WORKERS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let peak = 0;
    const poll = setInterval(() => {
      try {
        const status = execFileSync('cat', [`/proc/${child.pid}/status`], { encoding: 'utf8' });
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak = Math.max(peak, hwm);
      } catch { /* exited */ }
    }, 50);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const [code] = await once(child, 'exit');
    clearInterval(poll);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (code !== 0) throw new Error(`apply exited ${code}`);
    const result = JSON.parse(out) as { copyMs: number; sessions: { counts: { migrated: number } } };
    if (result.sessions.counts.migrated !== n) throw new Error(`apply migrated ${result.sessions.counts.migrated} of ${n}`);
    return { ms, copyMs: result.copyMs, rssKiB: peak };
  } finally {
    await redis.stop();
  }
}

/** Loads the same payloads as plaintext `SET key value EX ttl` with redis-cli --pipe. */
async function benchPipe(n: number): Promise<number> {
  const resp = join(root, 'pipe.resp');
  const out = createWriteStream(resp);
  const bulk = (b: Buffer) => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
  for (let i = 0; i < n; i++) {
    const parts = [Buffer.from('SET'), Buffer.from(`PHPREDIS_SESSION:${sessionId(i)}`), sessionPayload(i), Buffer.from('EX'), Buffer.from('1440')];
    out.write(Buffer.concat([Buffer.from(`*${parts.length}\r\n`), ...parts.map(bulk)]));
  }
  out.end();
  await once(out, 'finish');
  const redis = await startRedis();
  try {
    const t0 = process.hrtime.bigint();
    execFileSync('sh', ['-c', `redis-cli -p ${redis.port} --pipe < '${resp}'`], { stdio: 'ignore' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const size = await redis.client.dbsize();
    if (size !== n) throw new Error(`redis-cli --pipe loaded ${size} of ${n}`);
    return ms;
  } finally {
    await redis.stop();
  }
}

try {
  const bytes = Array.from({ length: 10 }, (_, i) => sessionPayload(i).length).reduce((a, b) => a + b) / 10;
  console.log(`bench/apply: ${N} sessions of about ${Math.round(bytes)} bytes (php serialize_handler), apply with ${WORKERS} worker thread(s)`);
  const pipeMs = await benchPipe(N);
  const small = await benchApply(Math.max(1, Math.floor(N / 10)), 'small');
  const full = await benchApply(N, 'full');
  const pipeRate = N / (pipeMs / 1000);
  const applyRate = N / (full.ms / 1000);
  const copyRate = N / (full.copyMs / 1000);
  console.log(`redis-cli --pipe (plaintext, baseline): ${pipeRate.toFixed(0)} sessions/s (${(pipeMs / 1000).toFixed(2)} s, process start included)`);
  console.log(`session-migrate apply, whole command:   ${applyRate.toFixed(0)} sessions/s (${(full.ms / 1000).toFixed(2)} s, process start and checks included)`);
  console.log(`session-migrate apply, session copy:    ${copyRate.toFixed(0)} sessions/s (${(full.copyMs / 1000).toFixed(2)} s: read, check, encrypt, write)`);
  console.log(`ratio apply / --pipe: ${(applyRate / pipeRate).toFixed(2)} whole command, ${(copyRate / pipeRate).toFixed(2)} session copy (goal >= 0.50)`);
  console.log(`apply peak RSS: ${(small.rssKiB / 1024).toFixed(0)} MiB at N=${Math.floor(N / 10)}, ${(full.rssKiB / 1024).toFixed(0)} MiB at N=${N} (goal: flat)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}

/**
 * Running the session-migrate CLI in tests, and the session fixtures the production-Redis tests
 * share: session files with a given age, plaintext phpredis keys, a key file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis, Cluster } from 'ioredis';
import { EnvelopeCodec, generateKeyFile } from '@session-migrate/envelope';

/**
 * The clone's own bin, which runs the TypeScript sources through tsx (the README's `npx
 * session-migrate` in a clone): about 1 s of CPU a start. Tests of that path use it.
 */
export const SOURCE_BIN = join(import.meta.dirname, '../../packages/cli/bin/session-migrate.js');

/**
 * The CLI the tests start: the built bundle of the same sources (test/support/cli-build.ts, a global
 * setup of the integration projects; about 0.15 s a start), or SOURCE_BIN in a process without that
 * setup.
 */
export const BIN = process.env.SESSION_MIGRATE_TEST_CLI ?? SOURCE_BIN;

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI to completion with extra environment variables (passwords); TMPDIR and PATH are kept.
 * The environment given replaces any SESSION_MIGRATE_* variable of this process.
 */
export function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 180_000): CliResult {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESSION_MIGRATE_')));
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...base, ...env }, timeout: timeoutMs });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The arguments of `plan` for one source: `plan --source files:DIR --target TARGET --key-file KEY
 * --out PLAN --artifacts-dir ART` (or `--source SOURCE` as given, e.g. `redis:URL`), then `extra`
 * (TLS options, --gc-maxlifetime, ...).
 */
export function planArgs(
  p: ({ dir: string } | { source: string }) & { target: string; keyFile: string; planFile: string; artifactsDir: string },
  ...extra: string[]
): string[] {
  return [
    'plan',
    '--source',
    'source' in p ? p.source : `files:${p.dir}`,
    '--target',
    p.target,
    '--key-file',
    p.keyFile,
    '--out',
    p.planFile,
    '--artifacts-dir',
    p.artifactsDir,
    ...extra,
  ];
}

/** Sends `sig` to the process `pid` (a CLI a test freezes: SIGSTOP, SIGCONT); one that has exited meanwhile (ESRCH) is left alone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Starts the CLI in the background; `done` resolves with its exit status and output. */
export function cliChild(args: string[], env: Record<string, string> = {}): { pid: number; done: Promise<CliResult> } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESSION_MIGRATE_')));
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  // 'close', not 'exit': 'exit' may come before the pipes' last data (a loaded machine; CI saw an
  // apply --json whose stdout was still empty at 'exit'); 'close' comes once they ended.
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr })));
  return { pid: child.pid ?? -1, done };
}

/**
 * How long the CLI may live after its last output when it fails to connect. A refused connection
 * (WRONGPASS, ECONNREFUSED, a TLS certificate problem) used to keep the process 2 s after its error
 * line: ioredis armed its disconnectTimeout (2000 ms) timer on the already closed socket
 * (packages/redis/src/connection.ts disconnectClient). Now it exits within tens of milliseconds;
 * 1000 ms leaves room for a loaded machine and still fails with the old 2 s.
 */
export const EXIT_AFTER_ERROR_MS = 1000;

/**
 * Runs the CLI to completion (asynchronously) like cli(), and measures `lingerMs`: milliseconds from
 * its last output (stdout or stderr, as received here) to the exit of its process; negative when
 * output was still arriving through the pipes after the exit; and `ms`, from its start to its exit.
 * @param killAfterMs ends the process (SIGKILL, by its PID) after this long, so a run that hangs fails
 *   its test rather than hanging it (status -1)
 * @param onStart called with the process's PID once started (a test that freezes it: SIGSTOP, SIGCONT)
 */
export function cliTimed(
  args: string[],
  env: Record<string, string> = {},
  killAfterMs?: number,
  onStart?: (pid: number) => void,
): Promise<CliResult & { lingerMs: number; ms: number }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESSION_MIGRATE_')));
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } });
  if (child.pid !== undefined) onStart?.(child.pid);
  const stop = killAfterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
  let stdout = '';
  let stderr = '';
  let lastOutputAt = performance.now();
  let exitAt = 0;
  let status = -1;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    lastOutputAt = performance.now();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    lastOutputAt = performance.now();
  });
  child.on('exit', (code) => {
    exitAt = performance.now();
    status = code ?? -1;
    clearTimeout(stop);
  });
  return new Promise((resolve) =>
    child.on('close', () =>
      resolve({ status, stdout, stderr, lingerMs: Math.round(exitAt - lastOutputAt), ms: Math.round(exitAt - started) }),
    ),
  );
}

/** Asserts a usage error: exit 2 and exactly one line on stderr. Returns that line. */
export function usageLine(r: CliResult): string {
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => !/^session-migrate: warning:/.test(l));
  if (r.status !== 2 || lines.length !== 1) throw new Error(`expected exit 2 and one line, got ${r.status}: ${r.stderr}${r.stdout}`);
  return lines[0]!;
}

/** A session ID of PHP's charset, unique per tag and number. */
export const sid = (tag: string, i: number): string => `${tag}${String(i).padStart(8, '0')}abcdefghijkl`;

/**
 * Writes `n` session files `sess_<id>` (php serializer, a few bytes each) aged `ageSeconds`.
 * @returns the IDs
 */
export function writeSessionFiles(dir: string, tag: string, n: number, ageSeconds = 60): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ids: string[] = [];
  const t = Date.now() / 1000 - ageSeconds;
  for (let i = 0; i < n; i++) {
    const id = sid(tag, i);
    const path = join(dir, `sess_${id}`);
    writeFileSync(path, `user|s:${String(i).length}:"${i}";cart|a:0:{}`);
    utimesSync(path, t, t);
    ids.push(id);
  }
  return ids;
}

/** Writes `n` plaintext phpredis sessions `<prefix><id>` with a TTL, through any client. */
export async function writePlaintextSessions(
  client: Redis | Cluster,
  prefix: string,
  tag: string,
  n: number,
  ttlSeconds = 1440,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = sid(tag, i);
    await client.set(`${prefix}${id}`, `user|s:${String(i).length}:"${i}";`, 'EX', ttlSeconds);
    ids.push(id);
  }
  return ids;
}

/** A new key file in `dir` and its codec (to name and open keys in assertions). */
export async function newKey(dir: string): Promise<{ keyFile: string; codec: EnvelopeCodec }> {
  const keyFile = join(dir, 'master.key');
  const key = generateKeyFile(keyFile);
  const codec = await EnvelopeCodec.create([key]);
  key.fill(0);
  return { keyFile, codec };
}

/** Counts the IDs whose session key exists (through a client that routes by key, e.g. a Cluster). */
export async function countPresent(client: Redis | Cluster, codec: EnvelopeCodec, prefix: string, ids: string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const found = await Promise.all(chunk.map((id) => client.exists(codec.keyName(prefix, id))));
    n += found.reduce((a, b) => a + b, 0);
  }
  return n;
}

/**
 * Values `--master-wait-ms` refuses (apply, verify, plan: checkMasterWaitMs), each with the end of
 * the one line that names the option: `session-migrate: --master-wait-ms must be <end>`.
 */
export const BAD_MASTER_WAIT_MS: ReadonlyArray<readonly [value: string, end: string]> = [
  ['-1', 'a whole number of milliseconds from 0 to 600000, digits only'],
  ['1.5', 'a whole number of milliseconds from 0 to 600000, digits only'],
  ['600001', 'a whole number of milliseconds from 0 to 600000, digits only'],
  ['1e3', 'a whole number of milliseconds from 0 to 600000, digits only'],
  ['soon', 'a number'],
];

/**
 * Shared parts of the HTTP benchmark (bench/http/bench.ts) and the cutover-under-load scenario
 * (bench/http/cutover.ts, test/cutover-under-load.test.ts): the application, a keep-alive HTTP client
 * with real session cookies, Redis with a plain and a TLS port signed by a private CA, the generated
 * handler's artifacts made by the repository's own CLI (`plan`, `generate php`), so whatever the
 * handler becomes is what gets measured.
 *
 * Everything runs on 127.0.0.1, in temporary directories, stopped by PID.
 */
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

export const HERE = fileURLToPath(new URL('./', import.meta.url));
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/**
 * The CLI the scenarios run: in a test run the built one the integration projects' global setup
 * made (test/support/cli-build.ts hands its path in SESSION_MIGRATE_TEST_CLI; about 0.15 s a start),
 * else the clone's bin (TypeScript through tsx: 1 s or more a start).
 */
export const CLI = process.env.SESSION_MIGRATE_TEST_CLI ?? join(REPO, 'packages/cli/bin/session-migrate.js');
/** The benchmark's application (bench/http/app.php): new / hit / peek. */
export const APP_PHP = readFileSync(join(HERE, 'app.php'), 'utf8');
export const WRK_SCRIPT = join(HERE, 'sessions.lua');
export const SESSION_COOKIE = 'PHPSESSID';

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end without blocking the event loop (load keeps running meanwhile). */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const timer = options.timeoutMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.once('error', reject);
    child.once('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs the session-migrate CLI of this checkout. */
export function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], { env, timeoutMs: 300_000 });
}

/** Runs the CLI and throws with its stderr (one line) when it exits non-zero. */
export async function cliOk(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const r = await cli(args, env);
  if (r.status !== 0)
    throw new Error(
      `session-migrate ${args[0]} ${args[1] ?? ''} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`,
    );
  return r;
}

// ---------------------------------------------------------------------------------------------- TLS

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * A private CA and a server certificate for 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost) signed by it,
 * EC P-256, valid 2 days, made with openssl in `dir`.
 */
export function makeTlsFiles(dir: string): TlsFiles {
  const ossl = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=session-migrate bench CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  ossl(['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  ossl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  ]);
  return { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') };
}

/** redis-server arguments that add a TLS port (clients are not asked for a certificate). */
export function redisTlsArgs(tls: TlsFiles, tlsPort: number): string[] {
  return [
    '--tls-port',
    String(tlsPort),
    '--tls-cert-file',
    tls.certFile,
    '--tls-key-file',
    tls.keyFile,
    '--tls-ca-cert-file',
    tls.caFile,
    '--tls-auth-clients',
    'no',
  ];
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) used so far by the processes of process group `pgid` (php-fpm and nginx
 * run their masters in a group of their own: test/support/http.ts starts them detached) or by the one
 * process `pid`: fields 14 and 15 of /proc/<pid>/stat (proc(5)). Processes that exited are not counted,
 * so the delta over a run counts the static php-fpm workers that live through it. 10 ms resolution.
 */
export function cpuSeconds(match: { pgid: number } | { pid: number }): number {
  const pids = 'pid' in match ? [String(match.pid)] : readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    if ('pgid' in match && Number(f[2]) !== match.pgid) continue;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / USER_HZ;
}

/** INFO stats total_connections_received: connections accepted since the server started. */
export async function totalConnections(client: Redis): Promise<number> {
  const info = await client.info('stats');
  const m = /total_connections_received:(\d+)/.exec(info);
  if (!m) throw new Error('INFO stats has no total_connections_received');
  return Number(m[1]);
}

// --------------------------------------------------------------------------------------------- HTTP

export interface Answer {
  status: number;
  /** The session ID of a Set-Cookie for the session cookie, if the answer set one. */
  setCookie?: string;
  body: string;
}

/** A keep-alive HTTP client for one origin; each call sends the given session cookie (or none). */
export class SessionHttp {
  private readonly agent: Agent;

  constructor(
    readonly base: string,
    maxSockets = 64,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  get(path: string, sid?: string, timeoutMs = 30_000): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = sid !== undefined ? { cookie: `${SESSION_COOKIE}=${sid}` } : {};
      const req = request(this.base + path, { agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let setCookie: string | undefined;
          for (const sc of res.headers['set-cookie'] ?? []) {
            const m = new RegExp(`^\\s*${SESSION_COOKIE}=([^;]*)`).exec(sc);
            if (m) setCookie = m[1];
          }
          resolve({
            status: res.statusCode ?? 0,
            ...(setCookie !== undefined ? { setCookie } : {}),
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The app's JSON answer to hit/peek/new. */
export interface AppView {
  n?: number;
  k?: number;
  h?: string;
  missing?: true;
  bytes?: number;
  error?: string;
}

export function parseView(body: string): AppView | undefined {
  try {
    return JSON.parse(body) as AppView;
  } catch {
    return undefined;
  }
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` at a time. */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  });
  await Promise.all(lanes);
}

/**
 * Creates `n` sessions through the application (`?a=new`, no cookie: PHP issues the ID), each of
 * about 1 KB, and returns their IDs (index = the session's `k`).
 * @throws Error when an answer is not 200 or sets no cookie.
 */
export async function createSessions(http: SessionHttp, n: number, concurrency = 16): Promise<{ ids: string[]; bytes: number }> {
  const ids: string[] = new Array<string>(n);
  let bytes = 0;
  await pool(n, concurrency, async (k) => {
    const a = await http.get(`/index.php?a=new&k=${k}`);
    if (a.status !== 200 || a.setCookie === undefined)
      throw new Error(
        `creating session ${k}: HTTP ${a.status}${a.setCookie === undefined ? ', no session cookie' : ''}: ${a.body.slice(0, 200)}`,
      );
    ids[k] = a.setCookie;
    bytes = parseView(a.body)?.bytes ?? bytes;
  });
  return { ids, bytes };
}

export interface LostUpdateResult {
  /** Requests sent at once on one session. */
  sent: number;
  /** 2xx answers that say the session was there and counted. */
  ok: number;
  /** Answers other than 2xx (and network errors). */
  failed: number;
  /** The session's counter afterwards (it started at 0). */
  final: number;
  /** ok - final: increments answered as done that the session does not hold. */
  lost: number;
}

/**
 * Creates one session, sends `concurrent` `hit` requests on it at once (each on its own connection),
 * then reads the counter: every 2xx answer should have added one.
 */
export async function lostUpdateProbe(base: string, concurrent = 50): Promise<LostUpdateResult> {
  const http = new SessionHttp(base, concurrent);
  try {
    const created = await http.get('/index.php?a=new&k=999999');
    if (created.status !== 200 || created.setCookie === undefined)
      throw new Error(`lost-update probe: creating the session failed (HTTP ${created.status})`);
    const sid = created.setCookie;
    let ok = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: concurrent }, async () => {
        try {
          const a = await http.get('/index.php?a=hit', sid, 60_000);
          const v = parseView(a.body);
          if (a.status >= 200 && a.status < 300 && v?.n !== undefined) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }),
    );
    const peek = parseView((await http.get('/index.php?a=peek', sid)).body);
    const final = peek?.n ?? 0;
    return { sent: concurrent, ok, failed, final, lost: ok - final };
  } finally {
    http.close();
  }
}

// ---------------------------------------------------------------------------- the generated handler

/**
 * The conf.d fragment(s) among a plan's generated artifacts: the `*.ini` files the plan lists in
 * `artifacts.files` (paths relative to `artifacts.outDir`), so nothing here depends on how the
 * generator lays its files out. A plan without that list falls back to the `*.ini` files at the top
 * of the artifacts directory.
 */
export function artifactIniFiles(planFile: string): string[] {
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { artifacts?: { outDir?: string; files?: string[] } };
  const outDir = plan.artifacts?.outDir;
  if (outDir === undefined) throw new Error(`${planFile}: no artifacts.outDir`);
  const listed = (plan.artifacts?.files ?? []).filter((f) => f.endsWith('.ini')).map((f) => (isAbsolute(f) ? f : join(outDir, f)));
  const files =
    listed.length > 0
      ? listed
      : readdirSync(outDir)
          .filter((f) => f.endsWith('.ini'))
          .sort()
          .map((f) => join(outDir, f));
  if (files.length === 0) throw new Error(`${planFile}: the generated artifacts hold no .ini fragment`);
  return files;
}

export interface GeneratedHandler {
  planFile: string;
  artifactsDir: string;
  /** The ini fragments to load (after php.ini) into php-fpm. */
  iniFiles: string[];
  /** env[] lines the PHP pool needs (the key file). */
  env: Record<string, string>;
}

/**
 * Makes the generated handler's artifacts the way an operator does: `session-migrate plan` (source
 * `files:<sourceDir>`, the given target) then `generate php --plan` in the given mode.
 * @param env environment of the CLI (e.g. NODE_EXTRA_CA_CERTS for a private CA).
 */
export async function generateHandler(options: {
  dir: string;
  target: string;
  keyFile: string;
  sourceDir: string;
  gcMaxlifetime: number;
  mode: 'strict' | 'read-through';
  env?: NodeJS.ProcessEnv;
}): Promise<GeneratedHandler> {
  const planFile = join(options.dir, 'plan.json');
  const artifactsDir = join(options.dir, 'artifacts');
  await cliOk(
    [
      'plan',
      '--source',
      `files:${options.sourceDir}`,
      '--target',
      options.target,
      '--key-file',
      options.keyFile,
      '--out',
      planFile,
      '--gc-maxlifetime',
      String(options.gcMaxlifetime),
      '--artifacts-dir',
      artifactsDir,
      ...(options.mode === 'read-through' ? ['--read-through'] : []),
    ],
    options.env,
  );
  await cliOk(['generate', 'php', '--plan', planFile, options.mode === 'strict' ? '--strict' : '--read-through'], options.env);
  return { planFile, artifactsDir, iniFiles: artifactIniFiles(planFile), env: { SESSION_MIGRATE_KEY_FILE: options.keyFile } };
}

/** Median of numbers (NaN for none). */
export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

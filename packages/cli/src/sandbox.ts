/**
 * A local sandbox with real processes, for `session-migrate demo` and the end-to-end tests:
 * a throwaway redis-server and PHP's built-in web server (`php -S`), both on free loopback ports,
 * stopped by PID. Nothing here reaches beyond 127.0.0.1.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer, createConnection } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { UserFacingError } from '@session-migrate/common';

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** SIGKILL to a child still running, without waiting for it (a signal handler's last act before exit). */
function killChildNow(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * Every server this module spawned that has not exited, from the moment of its spawn, with the
 * directory it owns (removed when it is killed). A signal that arrives while a server starts (before
 * startRedis or startPhpServer returned it to its caller) still finds it here: killSpawnedNow.
 */
const spawned = new Map<ChildProcess, string | undefined>();

function tracked(child: ChildProcess, dir?: string): ChildProcess {
  spawned.set(child, dir);
  child.once('exit', () => spawned.delete(child));
  return child;
}

/**
 * Ends at once (SIGKILL, without waiting) every server startRedis or startPhpServer spawned that is
 * still running, started or still starting, and removes their directories: for a signal handler
 * about to exit the process.
 */
export function killSpawnedNow(): void {
  for (const [child, dir] of spawned) {
    killChildNow(child);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new UserFacingError(`${what} exited at start (code ${child.exitCode})`);
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new UserFacingError(`${what} did not listen on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Checks that a program runs; throws a one-line error with the Debian package to install. */
export function requireProgram(program: string, args: string[], debianPackage: string): void {
  try {
    execFileSync(program, args, { stdio: 'ignore' });
  } catch {
    throw new UserFacingError(`${program} is needed (Debian/Ubuntu: apt-get install ${debianPackage})`);
  }
}

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:PORT/0 */
  url: string;
  pid: number;
  /** A client for assertions; closed by stop(). */
  client: Redis;
  stop(): Promise<void>;
  /**
   * Ends the server at once (SIGKILL, its directory removed) without waiting, for a process about to
   * exit (a signal handler); a no-op after stop().
   */
  killNow(): void;
}

/**
 * Starts `redis-server` on a loopback port with no persistence (`--save ''`).
 * @param port a port to reuse (to stand in for a restarted server); default a free one.
 */
export async function startRedis(extraArgs: string[] = [], port?: number): Promise<RedisServer> {
  requireProgram('redis-server', ['--version'], 'redis-server');
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sm-redis-'));
  const child = tracked(
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], {
      stdio: 'ignore',
    }),
    dir,
  );
  try {
    await waitForPort(port, child, 'redis-server');
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  await client.ping();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    pid: child.pid ?? -1,
    client,
    async stop() {
      client.disconnect();
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    killNow() {
      client.disconnect();
      killChildNow(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PhpServer {
  port: number;
  base: string;
  pid: number;
  stop(): Promise<void>;
  /** Ends the server at once (SIGKILL) without waiting, for a process about to exit; a no-op after stop(). */
  killNow(): void;
}

/**
 * Starts `php -S 127.0.0.1:PORT -t DOCROOT -c PHP_INI` with PHP_INI_SCAN_DIR=":<scanDir>" (the leading
 * `:` keeps the system's scan dir, which loads the installed extensions, and adds ours after it).
 * @param options.port the port to listen on; default a free one.
 */
export async function startPhpServer(options: {
  docroot: string;
  phpIni: string;
  scanDir?: string;
  env?: Record<string, string>;
  port?: number;
}): Promise<PhpServer> {
  requireProgram('php', ['-v'], 'php-cli php-redis');
  const port = options.port ?? (await freePort());
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.scanDir !== undefined) env.PHP_INI_SCAN_DIR = `:${options.scanDir}`;
  else delete env.PHP_INI_SCAN_DIR;
  const child = tracked(spawn('php', ['-c', options.phpIni, '-S', `127.0.0.1:${port}`, '-t', options.docroot], { stdio: 'ignore', env }));
  try {
    await waitForPort(port, child, 'php -S');
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    stop: () => stopChild(child),
    killNow: () => killChildNow(child),
  };
}

/** An HTTP client with a one-cookie jar (the session cookie), like a browser tab. */
export class CookieClient {
  cookies = new Map<string, string>();

  /** GET a path; returns the status and body. Stores Set-Cookie values (ignoring attributes). */
  get(base: string, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const req = request(base + path, { headers: cookie !== '' ? { cookie } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          for (const sc of res.headers['set-cookie'] ?? []) {
            const [pair] = sc.split(';');
            const eq = (pair ?? '').indexOf('=');
            if (eq > 0) {
              const name = pair!.slice(0, eq).trim();
              const value = pair!.slice(eq + 1).trim();
              if (value === 'deleted' || value === '') this.cookies.delete(name);
              else this.cookies.set(name, value);
            }
          }
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end();
    });
  }
}

/** The demo application: logs a user in, keeps a cart, and reports its session as JSON. */
export const DEMO_APP_PHP = `<?php
declare(strict_types=1);

// A tiny application that keeps its state in $_SESSION, like a real shop.
if (@session_start() === false) {
    http_response_code(500);
    header('Content-Type: application/json');
    echo json_encode(['error' => 'session_start failed']);
    exit;
}
$action = $_GET['action'] ?? 'whoami';
if ($action === 'login') {
    session_regenerate_id(true);
    $_SESSION['user'] = (string) ($_GET['user'] ?? 'anonymous');
    $_SESSION['cart'] = [];
    $_SESSION['logged_in_at'] = time();
} elseif ($action === 'add') {
    $_SESSION['cart'][] = ['sku' => (string) ($_GET['sku'] ?? ''), 'qty' => (int) ($_GET['qty'] ?? 1)];
}
header('Content-Type: application/json');
echo json_encode([
    'handler' => ini_get('session.save_handler'),
    'session' => $_SESSION,
    // session_encode() returns false for an empty session.
    'encoded' => base64_encode((string) session_encode()),
]);
`;

/** Files of a sandbox under one temporary directory. */
export interface SandboxLayout {
  root: string;
  docroot: string;
  sessions: string;
  phpIni: string;
  confD: string;
  keyFile: string;
  planFile: string;
  artifactsDir: string;
}

/** Creates the sandbox directory tree and the PHP configuration of the `files` phase. */
export function createSandbox(options: { gcMaxlifetime: number }): SandboxLayout {
  const root = mkdtempSync(join(tmpdir(), 'session-migrate-demo-'));
  const layout: SandboxLayout = {
    root,
    docroot: join(root, 'app'),
    sessions: join(root, 'sessions'),
    phpIni: join(root, 'php.ini'),
    confD: join(root, 'conf.d'),
    keyFile: join(root, 'master.key'),
    planFile: join(root, 'session-migrate.plan.json'),
    artifactsDir: join(root, 'artifacts'),
  };
  mkdirSync(layout.docroot);
  mkdirSync(layout.sessions, { mode: 0o700 });
  mkdirSync(layout.confD);
  writeFileSync(join(layout.docroot, 'index.php'), DEMO_APP_PHP);
  writeFileSync(
    layout.phpIni,
    [
      '; the application as it runs before the migration: plaintext session files',
      'session.save_handler = files',
      `session.save_path = "${layout.sessions}"`,
      'session.serialize_handler = php',
      `session.gc_maxlifetime = ${options.gcMaxlifetime}`,
      'session.gc_probability = 0',
      'display_errors = stderr',
      'html_errors = Off',
      'log_errors = On',
      `error_log = "${join(root, 'php-error.log')}"`,
      '',
    ].join('\n'),
  );
  return layout;
}

/** Removes a sandbox directory. */
export function removeSandbox(layout: SandboxLayout): void {
  rmSync(layout.root, { recursive: true, force: true });
}

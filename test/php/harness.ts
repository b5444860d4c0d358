/**
 * Shared helpers of the PHP-side tests (test/php-handler*.test.ts): run the real `php` binary with a
 * clean environment, render the generated artifacts into a temporary directory, and load the shared
 * envelope vectors.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AUTOLOAD_FILE,
  HANDLER_FILE,
  renderArtifacts,
  writeArtifacts,
  type Artifact,
  type GenerateOptions,
} from '@session-migrate/generate';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const PHP_DIR = fileURLToPath(new URL('./', import.meta.url));

/**
 * `-n` ignores the machine's php.ini and conf.d, so extensions must be named. On this Debian build
 * sodium is compiled in, but redis.so needs igbinary.so loaded first ("undefined symbol:
 * igbinary_serialize" otherwise).
 */
export const PHP_EXTENSIONS = ['-d', 'extension=igbinary', '-d', 'extension=redis'];

export interface PhpRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `php -n` with `args` (`-n`: the machine's php.ini and conf.d are never read; pass `-c FILE`
 * to use one ini file). The environment holds PATH, TMPDIR and only the variables in `env`, so no
 * SESSION_MIGRATE_* variable leaks in from the shell.
 */
export function runPhp(args: string[], opts: { env?: Record<string, string>; input?: string; binary?: string } = {}): PhpRun {
  const res = spawnSync(opts.binary ?? 'php', ['-n', ...args], {
    encoding: 'utf8',
    input: opts.input ?? '',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: opts.env?.TMPDIR ?? tmpdir(), ...opts.env },
    timeout: 30_000,
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** Parses the last non-empty stdout line as JSON, with the whole run in the error if it fails. */
export function lastJson<T>(run: PhpRun): T {
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`php printed no JSON (status ${run.status})\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

/** What sessionRequest returns: the script's last JSON line, PHP's stderr, the handler's log lines. */
export interface SessionRequest<Out> {
  out: Out;
  stderr: string;
  /** The handler's error_log() lines, without PHP's "[date] " prefix. */
  logs: string[];
}

let sessionRequests = 0;

/**
 * One application request: php (CLI) runs `script` (default test/php/session-request.php) with
 * `args` through the rendered ini fragment and bootstrap of `r`. PHP's own diagnostics go to stderr
 * (display_errors=stderr); the handler's error_log() lines go to a fresh file in `o.dir` and come
 * back as `logs`. TMPDIR is `o.dir` unless `o.env` sets it. `o.ini`: more `-d` settings.
 * @throws Error with PHP's stderr when php exits non-zero
 */
export function sessionRequest<Out>(
  r: Rendered,
  args: string[],
  o: { dir: string; env?: Record<string, string>; ini?: string[]; script?: string },
): SessionRequest<Out> {
  const logFile = join(o.dir, `php-${process.pid}-${++sessionRequests}.log`);
  const ini = (o.ini ?? []).flatMap((setting) => ['-d', setting]);
  const run = runPhp(
    [
      '-c',
      r.iniFile,
      ...PHP_EXTENSIONS,
      ...['-d', 'error_reporting=-1', '-d', 'display_errors=stderr', '-d', 'log_errors=0', '-d', `error_log=${logFile}`],
      ...ini,
      o.script ?? join(PHP_DIR, 'session-request.php'),
      ...args,
    ],
    { env: { TMPDIR: o.dir, ...o.env } },
  );
  if (run.status !== 0) throw new Error(`php exited ${run.status}\nstderr: ${run.stderr}`);
  const logs = existsSync(logFile)
    ? readFileSync(logFile, 'latin1')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.replace(/^\[[^\]]*\] /, ''))
    : [];
  return { out: lastJson<Out>(run), stderr: run.stderr, logs };
}

export interface Rendered {
  dir: string;
  artifacts: Artifact[];
  /** src/EncryptedRedisSessionHandler.php (load autoloadFile first: it needs the other classes). */
  handlerFile: string;
  /** autoload.php: the PSR-4 autoloader of the handler's classes. */
  autoloadFile: string;
  bootstrapFile: string;
  iniFile: string;
  /** Every rendered PHP file (bootstrap, autoloader, classes). */
  phpFiles: string[];
}

/** Renders the artifacts for `installDir = dir` (a new temp dir) and writes them there. */
export function renderInto(options: Omit<GenerateOptions, 'installDir'>, dir = mkdtempSync(join(tmpdir(), 'sm-gen-'))): Rendered {
  const artifacts = renderArtifacts({ ...options, installDir: dir });
  writeArtifacts(dir, artifacts);
  const [bootstrap, ini] = artifacts;
  if (!bootstrap || !ini) throw new Error('expected the bootstrap and the ini fragment first');
  return {
    dir,
    artifacts,
    handlerFile: join(dir, HANDLER_FILE),
    autoloadFile: join(dir, AUTOLOAD_FILE),
    bootstrapFile: join(dir, bootstrap.path),
    iniFile: join(dir, ini.path),
    phpFiles: artifacts.filter((a) => a.path.endsWith('.php')).map((a) => join(dir, a.path)),
  };
}

export interface Vectors {
  master_key_base64: string;
  key_id: string;
  other_master_key_base64: string;
  other_key_id: string;
  valid: Array<{
    name: string;
    prefix: string;
    session_id: string;
    redis_key: string;
    nonce_hex: string;
    plaintext_hex: string;
    envelope_hex: string;
  }>;
  invalid: Array<{ name: string; redis_key: string; envelope_hex: string; expect: string }>;
}

export const vectors = JSON.parse(readFileSync(join(REPO, 'docs/envelope-vectors.json'), 'utf8')) as Vectors;

/** Lines PHP prints for deprecations, warnings and notices (display_errors=1 format). */
export const PHP_DIAGNOSTIC = /(Deprecated|Warning|Notice|Fatal error|Parse error):/;

/**
 * Writes a session through one of PHP's own save handlers (`redis`/`rediscluster`: phpredis's native
 * ones; `files`: PHP's), as the application did before the migration: `session_id(ID)`,
 * `session_start()`, the entries of `data`, `session_write_close()`. Fails the test on any PHP output
 * on stderr or a failed write.
 */
export function phpNativeWrite(
  handler: 'redis' | 'rediscluster' | 'files',
  savePath: string,
  id: string,
  data: Record<string, unknown>,
  serializer = 'php',
): void {
  const r = spawnSync(
    'php',
    [
      '-n',
      ...PHP_EXTENSIONS,
      '-d',
      `session.serialize_handler=${serializer}`,
      '-d',
      `session.save_handler=${handler}`,
      '-d',
      `session.save_path="${savePath}"`,
      '-d',
      'session.gc_maxlifetime=1440',
      '-r',
      'session_id($argv[1]); session_start(); foreach (json_decode($argv[2], true) as $k => $v) { $_SESSION[$k] = $v; } echo session_write_close() ? "ok" : "failed";',
      id,
      JSON.stringify(data),
    ],
    { encoding: 'utf8' },
  );
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('ok');
}

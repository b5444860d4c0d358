/**
 * php-fpm behind nginx for tests and benchmarks, started on loopback in a temporary directory and
 * stopped by PID. Nothing is written outside that directory: php-fpm gets its own php-fpm.conf
 * (`-y`), prefix (`-p`), php.ini (`-c`) and scan directory (PHP_INI_SCAN_DIR), so the machine's
 * /etc/php is never read unless asked for (`systemIni: true`); nginx gets `-p`/`-c`/`-e` and every
 * temp path inside the directory, so nothing under /etc/nginx or /var is read or written.
 *
 *   const fpm = await startPhpFpm({ workers: 4, ini: { 'session.save_path': dir }, env: { SESSION_MIGRATE_KEY_FILE: key } });
 *   const web = await startNginx({ fpm, docroot });
 *   await new CookieClient().get(web.base, '/index.php');
 *   await fpm.reload({ iniFiles: [generatedFragment] });    // SIGUSR2, as an operator's reload does
 *   fpm.readErrorLog();                                     // PHP's error_log
 *   await web.stop(); await fpm.stop();                     // by PID; temp dirs removed
 *
 * Root: php-fpm refuses a pool running as root unless started with `-R` (php-src
 * sapi/fpm/fpm/fpm_unix.c, "please specify user and group other than root"), and nginx's workers
 * switch to `nobody` by default, which cannot enter the 0700 temp directories. As root, php-fpm gets
 * `-R` and nginx `user root;`; as any other user neither directive is written (both would only warn).
 *
 * Reload: SIGUSR2 makes the php-fpm master re-read php-fpm.conf and re-execute itself with the same
 * arguments and environment (php-src sapi/fpm/fpm/fpm_signals.c, fpm_pctl.c), keeping its PID and its
 * listening socket; the old workers get SIGQUIT and finish their request first, for up to
 * `process_control_timeout` (set to 10 s here, as operators do for graceful reloads). The ini files
 * and the pool's env[] lines are rewritten before the signal, so the new workers see them.
 *
 * Sources: https://www.php.net/manual/en/install.fpm.configuration.php ,
 * https://nginx.org/en/docs/switches.html , https://nginx.org/en/docs/http/ngx_http_fastcgi_module.html
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { freePort } from './servers.ts';

export { CookieClient, freePort } from './servers.ts';

/** A php.ini value: strings are written double-quoted (ini syntax), numbers and booleans as they are. */
export type IniValue = string | number | boolean;
export type IniSettings = Record<string, IniValue>;

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Finds a program on PATH or in the sbin directories (php-fpm and nginx live in /usr/sbin, which a
 * normal user's PATH often lacks). `envVar` (e.g. PHP_FPM_BIN) overrides the search.
 * @throws Error naming the Debian package to install when none is found.
 */
export function findProgram(names: string[], debianPackage: string, envVar?: string): string {
  const forced = envVar !== undefined ? process.env[envVar] : undefined;
  if (forced !== undefined && forced !== '') return forced;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => d !== '');
  for (const name of names) {
    for (const dir of dirs) {
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        /* next */
      }
    }
  }
  throw new Error(`${names[0]} is needed (Debian/Ubuntu: apt-get install ${debianPackage}; or set ${envVar ?? 'PATH'})`);
}

/** php-fpm for the same PHP version as the `php` CLI (php-fpm8.2 here), else a generic `php-fpm`. */
export function findPhpFpm(): string {
  const v = spawnSync('php', ['-n', '-r', 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;'], { encoding: 'utf8' });
  const version = v.status === 0 ? v.stdout.trim() : '';
  return findProgram([...(version !== '' ? [`php-fpm${version}`] : []), 'php-fpm'], 'php-fpm', 'PHP_FPM_BIN');
}

/** Renders ini settings, one `name = value` per line; strings double-quoted, quotes refused. */
export function renderIni(settings: IniSettings): string {
  return (
    Object.entries(settings)
      .map(([k, v]) => {
        if (!/^[A-Za-z0-9_.\-[\]]+$/.test(k)) throw new Error(`ini name not allowed: ${k}`);
        if (typeof v === 'boolean') return `${k} = ${v ? 'On' : 'Off'}`;
        if (typeof v === 'number') return `${k} = ${v}`;
        if (/["\n\r]/.test(v)) throw new Error(`ini value of ${k} holds a quote or a line break`);
        return `${k} = "${v}"`;
      })
      .join('\n') + '\n'
  );
}

/** Tail of a file (for error messages), '' if missing. */
function tail(file: string, bytes = 2000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > bytes ? text.slice(-bytes) : text;
  } catch {
    return '';
  }
}

async function canConnect(target: { path: string } | { port: number; host: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(target as { path: string }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Masters still running when this process exits (a test that crashed before stop()): each gets
 * SIGTERM, on which php-fpm and nginx stop their workers themselves. Best effort only.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
});
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/**
 * Stops a master by PID: `signal` first, SIGKILL after `graceMs`; resolves when it has exited. The
 * masters are started in their own process group (`detached`), whose ID is the master's PID: a
 * worker left behind by a master that was killed outright gets SIGKILL through that group.
 */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  if (child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* no process left in the group */
    }
  }
}

// ------------------------------------------------------------------------------------------ php-fpm

/** What a php-fpm instance runs with. Everything but `workers`, `listen` and `systemIni` can change at reload(). */
export interface PhpFpmOptions {
  /** Static workers (`pm = static`, `pm.max_children`). Default 4. */
  workers?: number;
  /**
   * Settings written to the instance's php.ini after the base settings below (later lines win).
   * Base: log_errors On into `errorLogFile`, display_errors Off, error_reporting E_ALL,
   * html_errors Off, opcache on (unless `opcache: false`), session.gc_probability 0.
   */
  ini?: IniSettings;
  /**
   * ini files copied, in this order, into the instance's scan directory (`NN-<name>`), e.g. a
   * generated conf.d fragment; they load after php.ini and so win over `ini` for the same setting.
   */
  iniFiles?: string[];
  /**
   * env[NAME] = value lines of the pool. The pool runs with `clear_env = yes`, so workers see only
   * these plus PATH and TMPDIR (taken from this process): no SESSION_MIGRATE_* variable leaks in.
   */
  env?: Record<string, string>;
  /**
   * false (default): `-c <own php.ini>` and PHP_INI_SCAN_DIR=<own conf.d>, so nothing under /etc/php is
   * read and the extensions in `extensions` are loaded by name. true: the machine's php.ini and conf.d
   * for php-fpm, with the own scan directory appended (PHP_INI_SCAN_DIR=":<dir>") and `ini` in it.
   */
  systemIni?: boolean;
  /** Extensions loaded by name when `systemIni` is false. Default igbinary, redis (redis.so needs igbinary first). */
  extensions?: string[];
  /** Load and enable OPcache (as production does). Default true. */
  opcache?: boolean;
  /** Listen on a unix socket in the temp dir (default) or on a free loopback TCP port. */
  listen?: 'unix' | 'tcp';
  /** php-fpm's log_level. Default notice (reload detection reads its notices). */
  logLevel?: 'debug' | 'notice' | 'warning' | 'error';
}

export interface PhpFpm {
  /** The instance's temporary directory (php-fpm.conf, php.ini, conf.d/, logs, socket). */
  dir: string;
  /** PID of the php-fpm master (unchanged by reload). */
  pid: number;
  /** What nginx's fastcgi_pass takes: `unix:/…/php-fpm.sock` or `127.0.0.1:PORT`. */
  fastcgiAddress: string;
  /** PHP's error_log file (the `error_log` ini setting, unless `ini` changes it). */
  errorLogFile: string;
  /** php-fpm's own log (master and pool notices, workers' stderr). */
  fpmLogFile: string;
  /** The PHP error log's text ('' if nothing was logged yet). */
  readErrorLog(): string;
  /** Empties the PHP error log (e.g. between phases). */
  clearErrorLog(): void;
  /**
   * Rewrites php.ini, the scan directory and the pool's env[] lines with `next` (each field given
   * replaces the previous one; fields left out stay), checks the configuration with `php-fpm -t`,
   * sends SIGUSR2 and resolves once the new master reports "ready to handle connections".
   * @throws Error with php-fpm's message when the new configuration is invalid (nothing is signalled)
   *   or when php-fpm exits or is not ready within 20 s.
   */
  reload(next?: Pick<PhpFpmOptions, 'ini' | 'iniFiles' | 'env'>): Promise<void>;
  /** SIGTERM to the master (SIGKILL after 10 s), then removes `dir`. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

interface FpmState {
  ini: IniSettings;
  iniFiles: Array<{ name: string; text: string }>;
  env: Record<string, string>;
}

/** Reads ini files now (a later reload does not depend on them still existing). */
function snapshotIniFiles(files: string[]): Array<{ name: string; text: string }> {
  return files.map((f) => ({ name: basename(f), text: readFileSync(f, 'utf8') }));
}

function checkEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`env name not allowed: ${k}`);
    if (/["\n\r]/.test(v)) throw new Error(`env value of ${k} holds a quote or a line break`);
  }
}

/**
 * Starts php-fpm (`-F`, foreground, a child of this process) with a static pool in a new temporary
 * directory, and waits until it accepts connections.
 * @throws Error with the tail of php-fpm's log when the configuration is refused or it exits at start.
 */
export async function startPhpFpm(options: PhpFpmOptions = {}): Promise<PhpFpm> {
  const bin = findPhpFpm();
  const dir = mkdtempSync(join(tmpdir(), 'sm-fpm-'));
  const workers = options.workers ?? 4;
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new Error('workers: 1 to 256');
  const confD = join(dir, 'conf.d');
  mkdirSync(confD);
  const phpIni = join(dir, 'php.ini');
  const fpmConf = join(dir, 'php-fpm.conf');
  const errorLogFile = join(dir, 'php-error.log');
  const fpmLogFile = join(dir, 'php-fpm.log');
  let sock = join(dir, 'php-fpm.sock');
  let listen = options.listen ?? 'unix';
  if (listen === 'unix' && Buffer.byteLength(sock) > 100) listen = 'tcp'; // sun_path holds 108 bytes
  let fastcgiAddress: string;
  if (listen === 'tcp') {
    const port = await freePort();
    sock = `127.0.0.1:${port}`;
    fastcgiAddress = sock;
  } else {
    fastcgiAddress = `unix:${sock}`;
  }
  const opcache = options.opcache ?? true;
  const extensions = options.extensions ?? ['igbinary', 'redis'];
  checkEnv(options.env ?? {});
  let state: FpmState = { ini: options.ini ?? {}, iniFiles: snapshotIniFiles(options.iniFiles ?? []), env: options.env ?? {} };

  const writeConfig = (s: FpmState): void => {
    const base: IniSettings = {
      log_errors: true,
      error_log: errorLogFile,
      display_errors: false,
      display_startup_errors: true,
      html_errors: false,
      'session.gc_probability': 0,
    };
    const lines = ['; written by test/support/http.ts'];
    if (options.systemIni !== true) {
      for (const e of extensions) lines.push(`extension = ${e}`);
      if (opcache) lines.push('zend_extension = opcache');
    }
    lines.push('error_reporting = E_ALL');
    const ini = renderIni({
      ...base,
      ...(opcache ? { 'opcache.enable': 1, 'opcache.memory_consumption': 64 } : { 'opcache.enable': 0 }),
      ...s.ini,
    });
    if (options.systemIni === true) {
      // php.ini is the machine's; ours goes last into the scan directory.
      writeFileSync(phpIni, '; unused: systemIni\n');
    } else {
      writeFileSync(phpIni, lines.join('\n') + '\n' + ini);
    }
    for (const f of readdirSync(confD)) unlinkSync(join(confD, f));
    if (options.systemIni === true) writeFileSync(join(confD, '00-sm-test.ini'), lines.slice(1).join('\n') + '\n' + ini);
    s.iniFiles.forEach((f, i) => writeFileSync(join(confD, `${String(10 + i).padStart(2, '0')}-${f.name}`), f.text));

    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: tmpdir(), ...s.env };
    const pool = [
      '; written by test/support/http.ts',
      '[global]',
      `pid = ${join(dir, 'php-fpm.pid')}`,
      `error_log = ${fpmLogFile}`,
      `log_level = ${options.logLevel ?? 'notice'}`,
      'daemonize = no',
      'process_control_timeout = 10s',
      '',
      '[app]',
      `listen = ${sock}`,
      ...(listen === 'unix' ? ['listen.mode = 0600'] : ['listen.allowed_clients = 127.0.0.1']),
      'listen.backlog = 4096',
      'pm = static',
      `pm.max_children = ${workers}`,
      'clear_env = yes',
      'catch_workers_output = yes',
      'decorate_workers_output = no',
      'request_terminate_timeout = 120s',
      ...Object.entries(env).map(([k, v]) => `env[${k}] = "${v}"`),
      '',
    ];
    writeFileSync(fpmConf, pool.join('\n'));
  };
  writeConfig(state);

  const args = ['-F', '-p', dir, '-y', fpmConf, '-c', phpIni, ...(isRoot() ? ['-R'] : [])];
  if (options.systemIni === true) args.splice(args.indexOf('-c'), 2);
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: tmpdir() };
  childEnv.PHP_INI_SCAN_DIR = options.systemIni === true ? `:${confD}` : confD;

  const checkConfig = (): void => {
    const t = spawnSync(bin, [...args.filter((a) => a !== '-F'), '-t'], { env: childEnv, encoding: 'utf8', timeout: 30_000 });
    if (t.status !== 0) {
      const msg =
        `${t.stderr}${t.stdout}`
          .split('\n')
          .filter((l) => /ERROR|error/.test(l))
          .join(' | ') || `${t.stderr}${t.stdout}`.trim();
      throw new Error(`php-fpm refused the configuration in ${dir}: ${msg}`);
    }
  };
  try {
    checkConfig();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const readyCount = (): number => tail(fpmLogFile, 1 << 20).split('ready to handle connections').length - 1;
  const child = spawn(bin, args, { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  track(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });

  const waitReady = async (count: number, what: string): Promise<void> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`php-fpm exited ${what} (code ${child.exitCode ?? child.signalCode}): ${(tail(fpmLogFile) || stderr).trim()}`);
      }
      if (readyCount() >= count) {
        const up =
          listen === 'unix' ? await canConnect({ path: sock }) : await canConnect({ host: '127.0.0.1', port: Number(sock.split(':')[1]) });
        if (up) return;
      }
      if (Date.now() > deadline) throw new Error(`php-fpm was not ready ${what} within 20 s: ${(tail(fpmLogFile) || stderr).trim()}`);
      await sleep(25);
    }
  };
  try {
    await waitReady(1, 'at start');
  } catch (err) {
    await stopChild(child, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    dir,
    pid: child.pid ?? -1,
    fastcgiAddress,
    errorLogFile,
    fpmLogFile,
    readErrorLog: () => (existsSync(errorLogFile) ? readFileSync(errorLogFile, 'utf8') : ''),
    clearErrorLog: () => {
      if (existsSync(errorLogFile)) writeFileSync(errorLogFile, '');
    },
    async reload(next = {}) {
      const previous = state;
      if (next.env !== undefined) checkEnv(next.env);
      state = {
        ini: next.ini ?? state.ini,
        iniFiles: next.iniFiles !== undefined ? snapshotIniFiles(next.iniFiles) : state.iniFiles,
        env: next.env ?? state.env,
      };
      writeConfig(state);
      try {
        checkConfig();
      } catch (err) {
        state = previous;
        writeConfig(state);
        throw err;
      }
      const before = readyCount();
      child.kill('SIGUSR2');
      await waitReady(before + 1, 'after reload');
    },
    async stop(opts = {}) {
      await stopChild(child, 'SIGTERM');
      if (opts.keepDir !== true) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------------------- nginx

export interface NginxOptions {
  /** Where PHP requests go: a running php-fpm, or a fastcgi_pass address (`unix:/path`, `127.0.0.1:PORT`). */
  fpm: PhpFpm | string;
  /** Document root; every path that is not a file there is served by `/index.php` (front controller). */
  docroot: string;
  /** worker_processes. Default 1. */
  workers?: number;
  /** Write an access log (`access.log` in the temp dir). Default false (benchmarks). */
  accessLog?: boolean;
  /** Reuse connections to php-fpm (`fastcgi_keep_conn`, upstream keepalive). Default false, as Debian's default site. */
  keepaliveToFpm?: boolean;
}

export interface Nginx {
  dir: string;
  pid: number;
  port: number;
  /** `http://127.0.0.1:PORT` */
  base: string;
  /** nginx's error log text. */
  readErrorLog(): string;
  /** SIGTERM to the master (SIGKILL after 10 s), then removes `dir`. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

/** fastcgi_param lines (as Debian's /etc/nginx/fastcgi_params, written out so nothing under /etc is read). */
const FASTCGI_PARAMS = [
  'SCRIPT_FILENAME $document_root$fastcgi_script_name',
  'QUERY_STRING $query_string',
  'REQUEST_METHOD $request_method',
  'CONTENT_TYPE $content_type',
  'CONTENT_LENGTH $content_length',
  'SCRIPT_NAME $fastcgi_script_name',
  'REQUEST_URI $request_uri',
  'DOCUMENT_URI $document_uri',
  'DOCUMENT_ROOT $document_root',
  'SERVER_PROTOCOL $server_protocol',
  'REQUEST_SCHEME $scheme',
  'HTTPS $https if_not_empty',
  'GATEWAY_INTERFACE CGI/1.1',
  'SERVER_SOFTWARE nginx/$nginx_version',
  'REMOTE_ADDR $remote_addr',
  'REMOTE_PORT $remote_port',
  'SERVER_ADDR $server_addr',
  'SERVER_PORT $server_port',
  'SERVER_NAME $server_name',
  'REDIRECT_STATUS 200',
].map((p) => `      fastcgi_param ${p};`);

/**
 * Starts nginx (`daemon off`, a child of this process) on a free loopback port in front of php-fpm,
 * with `-p`/`-c`/`-e` and all temp paths in a new temporary directory.
 * @throws Error with nginx's error log when it refuses the configuration or does not listen within 10 s.
 */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const bin = findProgram(['nginx'], 'nginx', 'NGINX_BIN');
  const dir = mkdtempSync(join(tmpdir(), 'sm-nginx-'));
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', t), { recursive: true });
  const port = await freePort();
  const upstream = typeof options.fpm === 'string' ? options.fpm : options.fpm.fastcgiAddress;
  if (/[;{}\s"']/.test(upstream) || /[;{}"'\n]/.test(options.docroot))
    throw new Error('nginx: unexpected characters in the upstream or docroot');
  const errorLog = join(dir, 'error.log');
  const keep = options.keepaliveToFpm === true;
  const conf = [
    '# written by test/support/http.ts',
    'daemon off;',
    'master_process on;',
    `worker_processes ${options.workers ?? 1};`,
    `pid ${join(dir, 'nginx.pid')};`,
    `lock_file ${join(dir, 'nginx.lock')};`,
    `error_log ${errorLog} warn;`,
    ...(isRoot() ? [`user ${userInfo().username};`] : []),
    'events { worker_connections 4096; }',
    'http {',
    '  default_type text/plain;',
    options.accessLog === true ? `  access_log ${join(dir, 'access.log')};` : '  access_log off;',
    `  client_body_temp_path ${join(dir, 'tmp/client_body')};`,
    `  proxy_temp_path ${join(dir, 'tmp/proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'tmp/fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'tmp/uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'tmp/scgi')};`,
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 75s;',
    `  upstream php { server ${upstream};${keep ? ' keepalive 16;' : ''} }`,
    '  server {',
    `    listen 127.0.0.1:${port} backlog=4096;`,
    '    server_name localhost;',
    `    root ${options.docroot};`,
    '    index index.php;',
    '    location / { try_files $uri /index.php$is_args$args; }',
    '    location ~ \\.php$ {',
    '      try_files $uri =404;',
    '      fastcgi_pass php;',
    ...(keep ? ['      fastcgi_keep_conn on;'] : []),
    ...FASTCGI_PARAMS,
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const child = spawn(bin, ['-p', `${dir}/`, '-c', confFile, '-e', errorLog], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  track(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const deadline = Date.now() + 10_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`nginx exited at start (code ${child.exitCode ?? child.signalCode}): ${(tail(errorLog) || stderr).trim()}`);
      }
      if (await canConnect({ host: '127.0.0.1', port })) break;
      if (Date.now() > deadline) throw new Error(`nginx did not listen on 127.0.0.1:${port}: ${(tail(errorLog) || stderr).trim()}`);
      await sleep(25);
    }
  } catch (err) {
    await stopChild(child, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    pid: child.pid ?? -1,
    port,
    base: `http://127.0.0.1:${port}`,
    readErrorLog: () => tail(errorLog, 1 << 20),
    async stop(opts = {}) {
      await stopChild(child, 'SIGTERM');
      if (opts.keepDir !== true) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --------------------------------------------------------------------------------------- together

export interface PhpStack {
  fpm: PhpFpm;
  nginx: Nginx;
  /** `http://127.0.0.1:PORT` of nginx. */
  base: string;
  /** Stops nginx, then php-fpm (each by PID), and removes their temp dirs. */
  stop(): Promise<void>;
}

/** php-fpm plus nginx in front of it; if nginx fails to start, php-fpm is stopped again. */
export async function startPhpStack(options: {
  docroot: string;
  fpm?: PhpFpmOptions;
  nginx?: Omit<NginxOptions, 'fpm' | 'docroot'>;
}): Promise<PhpStack> {
  const fpm = await startPhpFpm(options.fpm);
  let nginx: Nginx;
  try {
    nginx = await startNginx({ ...options.nginx, fpm, docroot: options.docroot });
  } catch (err) {
    await fpm.stop();
    throw err;
  }
  return {
    fpm,
    nginx,
    base: nginx.base,
    async stop() {
      await nginx.stop();
      await fpm.stop();
    },
  };
}

/** Writes `files` (relative path -> contents) into a new temporary docroot and returns its path. */
export function makeDocroot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sm-docroot-'));
  for (const [rel, text] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
  }
  return root;
}

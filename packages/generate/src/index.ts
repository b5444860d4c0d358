/**
 * Renders the PHP side of session-migrate: the handler's classes, copied from the repository's `php/`
 * folder (valid PHP sources, PSR-4 namespace `SessionMigrate\`, reviewed and tested as they are), and
 * the two files generated from the repository's `templates/` folder:
 *
 * - `session-migrate-bootstrap.php`: the auto_prepend_file that registers the handler, with this
 *   deployment's configuration (Redis topology and connection, prefix, lookup IDs, read-through, locking);
 * - `99-session-migrate.ini`: the conf.d fragment that loads the bootstrap and hardens the session ini;
 * - `autoload.php` and `src/*.php`: the sources (the namespace is rewritten when another one is asked for).
 *
 * Templates use `{{NAME}}` placeholders only. Values are validated, then inserted as PHP or ini literals,
 * so nothing a caller passes can end a string or a comment early. No secret is ever rendered: the master
 * key and the Redis passwords come from the environment of the PHP process at run time.
 */
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, posix, sep } from 'node:path';
import {
  DEFAULT_LOCKING as SHARED_DEFAULT_LOCKING,
  DEFAULT_PREFIX,
  UserFacingError,
  assetPath,
  isAtLeast,
  phpString,
  writeFileAtomic,
  makeDirectories,
} from '@session-migrate/common';
import { SAVE_PATH_FAILS_AT, parseFilesSavePath } from '@session-migrate/php-ini';

/** One file to write: a path relative to the output directory, its text and its permission bits. */
export interface Artifact {
  /** Path relative to the output directory, with `/` separators (e.g. `session-migrate-bootstrap.php`). */
  path: string;
  /** File contents (UTF-8). */
  contents: string;
  /** Permission bits, e.g. `0o644`. */
  mode: number;
}

/** Names of the two generated files, relative to the output directory and to `installDir`. */
export interface ArtifactFileNames {
  /** Bootstrap for auto_prepend_file. Default `session-migrate-bootstrap.php`. */
  bootstrap: string;
  /** conf.d fragment. Default `99-session-migrate.ini` (the `99-` makes it load after the others). */
  ini: string;
}

/** A Redis node: host name or IP address, and TCP port. */
export interface RedisNode {
  host: string;
  port: number;
}

/**
 * TLS to Redis (present means on). Paths are absolute paths on the PHP host. The server certificate is
 * always verified: against `caFile`, or the system CA store without it.
 */
export interface RedisTlsOptions {
  /** PEM file of the CA that signed the server certificate (a private CA). */
  caFile?: string;
  /** Client certificate (PEM), when the server asks for one. */
  certFile?: string;
  /** Client certificate's private key (PEM). */
  keyFile?: string;
  /** Name the server certificate must carry, when it differs from the host name (e.g. an IP address). */
  serverName?: string;
}

/**
 * Where the generated handler connects (the contract with `plan`). No password here: it comes from
 * `SESSION_MIGRATE_REDIS_PASSWORD` (and `SESSION_MIGRATE_SENTINEL_PASSWORD` for the sentinels, with
 * `SESSION_MIGRATE_SENTINEL_USERNAME` when they have an ACL user) in the environment of the PHP process.
 */
export interface RedisTargetOptions {
  /** `standalone` (default), `cluster` (RedisCluster from `seeds`) or `sentinel` (master `masterName` from `sentinels`). */
  topology?: 'standalone' | 'cluster' | 'sentinel';
  /** Host name or IP address, or the absolute path of a unix socket (standalone); a cluster's first seed when `seeds` is absent. */
  host: string;
  /** TCP port, 1 to 65535. Default 6379. Ignored for a unix socket. */
  port?: number;
  /** Database index for SELECT, 0 or more. Default 0. A cluster has only database 0. */
  db?: number;
  /** Prefix of session key names. Default `smsess:` (docs/envelope.md). */
  prefix?: string;
  /** Connect and read timeout in seconds, more than 0 and at most 3600. Default 2.5. */
  timeoutSeconds?: number;
  /** Redis 6 ACL user name, used with the password from the environment. Default: none. */
  username?: string;
  /** TLS settings; present means TLS on. */
  tls?: RedisTlsOptions;
  /** Cluster: seed nodes. Default: `[{ host, port }]`. */
  seeds?: RedisNode[];
  /** Sentinel: the sentinels, asked in order. */
  sentinels?: RedisNode[];
  /** Sentinel: name of the monitored master. */
  masterName?: string;
  /**
   * Persistent connections (phpredis pconnect, one per PHP worker, with a persistent ID covering host,
   * port, database, user and TLS settings). Default true.
   */
  persistent?: boolean;
}

/**
 * Session locking of the generated handler (php/src/SessionLock.php). Defaults: on, 20 000 µs between
 * 100 retries (phpredis 6's redis.session.lock_wait_time and lock_retries), lock TTL max_execution_time
 * or 30 s when that is 0, and session_start() fails when the lock cannot be taken.
 */
export interface LockingOptions {
  /** Lock sessions at all. Default true (the files handler locks). */
  enabled?: boolean;
  /** Pause between two attempts, in microseconds, 1 to 10 000 000. Default 20 000. */
  waitMicros?: number;
  /** Attempts after the first, 0 to 100 000 (never unbounded). Default 100. */
  retries?: number;
  /** Lock TTL in seconds when max_execution_time is 0, 1 to 86 400. Default 30. */
  ttlSeconds?: number;
  /** When the lock cannot be taken: `fail` session_start() (default, phpredis 6) or open `readonly` (writes refused). */
  onFailure?: 'fail' | 'readonly';
}

/** Everything renderArtifacts needs. */
export interface GenerateOptions {
  /**
   * Absolute POSIX directory where the files will be installed on the PHP host. The ini fragment
   * points auto_prepend_file at `installDir/<bootstrap file name>`; the bootstrap loads the classes
   * from its own directory.
   */
  installDir: string;
  /** Redis connection baked into the bootstrap. */
  redis: RedisTargetOptions;
  /** Session locking baked into the bootstrap. Default: see LockingOptions. */
  locking?: LockingOptions;
  /** PHP namespace of the handler classes. Default `SessionMigrate`. */
  namespace?: string;
  /** File names; each defaults as documented on ArtifactFileNames. */
  fileNames?: Partial<ArtifactFileNames>;
  /**
   * Absolute path of the auto_prepend_file the host used before, if any (the fragment replaces it);
   * the bootstrap requires it after registering the handler.
   */
  previousAutoPrependFile?: string;
  /**
   * Lookup IDs (16 lowercase hex characters each, docs/keys.md) the key ring given to PHP must have;
   * the bootstrap refuses any other, so a wrong key fails visibly instead of silently logging
   * everyone out. The lookup ID stays the same when master keys rotate. Default: none (any key is
   * accepted).
   */
  expectedLookupIds?: string[];
  /**
   * session.save_path written by the fragment: a path that cannot exist, so the files handler fails
   * instead of writing plaintext. Default `/dev/null/session-migrate-files-handler-disabled`
   * (below a character device: not even root can create it).
   */
  filesHandlerTrapPath?: string;
  /**
   * Read-through (migrating) mode: on a Redis miss the handler reads the session from the legacy
   * `files` save_path (plaintext, never written), and PHP then stores it encrypted in Redis.
   * destroy() leaves a tombstone key `<prefix>destroyed:{<64 hex>}` (TTL gc_maxlifetime) so a bulk copy
   * never brings a destroyed session back. Default: off (strict mode). See docs/runbook.md.
   */
  readThrough?: ReadThroughOptions;
}

/** The legacy session files a read-through handler falls back to. */
export interface ReadThroughOptions {
  /**
   * session.save_path of the old `files` handler, exactly as in php.ini: `/path`, `N;/path` or
   * `N;MODE;/path` (php-src ext/session/mod_files.c). The path must be absolute. Expiry uses
   * session.gc_maxlifetime at run time, as PHP's files GC does.
   */
  savePath: string;
  /**
   * Key prefixes of old phpredis sessions (plaintext `<prefix><session ID>`, phpredis default
   * `PHPREDIS_SESSION:`) in the same Redis data as the target: a session with no live file is read
   * from such a key (never written), over the handler's own connection. Default: none.
   */
  redisPrefixes?: readonly string[];
}

/** The two template texts, as read by loadTemplates(). */
export interface Templates {
  bootstrap: string;
  ini: string;
}

/** One PHP source file copied into the artifacts: its path below the output directory and its text. */
export interface PhpSource {
  path: string;
  contents: string;
}

/** Result of writeArtifacts: artifact paths (as given) split by whether the file on disk changed. */
export interface WriteResult {
  /** Files created or rewritten (contents or mode differed, or the file was missing). */
  changed: string[];
  /** Files that already had exactly these contents and mode; not touched. */
  unchanged: string[];
}

/**
 * Invalid generation options; the message names the option and never contains a secret. A
 * UserFacingError (exit code 2, usage or input error), which the CLI prints as one line like any other.
 */
export class GenerateOptionsError extends UserFacingError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'GenerateOptionsError';
  }
}

export const DEFAULT_FILE_NAMES: Readonly<ArtifactFileNames> = Object.freeze({
  bootstrap: 'session-migrate-bootstrap.php',
  ini: '99-session-migrate.ini',
});
/** The namespace the sources in `php/` are written in. */
export const DEFAULT_NAMESPACE = 'SessionMigrate';
/** The Redis key prefix the handler uses by default: @session-migrate/common's DEFAULT_PREFIX, its one home. */
export { DEFAULT_PREFIX };
export const DEFAULT_REDIS_PORT = 6379;
/** Seconds. */
export const DEFAULT_REDIS_TIMEOUT = 2.5;
export const DEFAULT_FILES_HANDLER_TRAP_PATH = '/dev/null/session-migrate-files-handler-disabled';
/** Defaults of LockingOptions (the same as php/src/SessionLock.php), defined in @session-migrate/common (defaults.ts). */
export const DEFAULT_LOCKING: Readonly<Required<LockingOptions>> = SHARED_DEFAULT_LOCKING;
/** Permission bits of every generated file: nothing in them is secret. */
export const ARTIFACT_MODE = 0o644;
/** Path of the autoloader among the artifacts (the bootstrap requires it). */
export const AUTOLOAD_FILE = 'autoload.php';
/** Folder of the classes among the artifacts (PSR-4 root). */
export const SOURCE_DIR = 'src';
/** Path of the handler class among the artifacts. */
export const HANDLER_FILE = `${SOURCE_DIR}/EncryptedRedisSessionHandler.php`;

/** Absolute path of the `templates/` folder (of the repository, or of the installed package: common/src/assets.ts). */
export const TEMPLATES_DIR = assetPath('templates');
/** Absolute path of the `php/` folder, the handler's sources (of the repository, or of the installed package). */
export const PHP_SOURCES_DIR = assetPath('php');

const TEMPLATE_FILES: Readonly<Record<keyof Templates, string>> = {
  bootstrap: 'session-migrate-bootstrap.php.tpl',
  ini: 'session-migrate.ini.tpl',
};

/** Reads the two templates (UTF-8) from `dir`, by default the repository's `templates/`. */
export function loadTemplates(dir: string = TEMPLATES_DIR): Templates {
  return {
    bootstrap: readFileSync(join(dir, TEMPLATE_FILES.bootstrap), 'utf8'),
    ini: readFileSync(join(dir, TEMPLATE_FILES.ini), 'utf8'),
  };
}

/**
 * Reads the handler's sources from `dir` (by default the repository's `php/`): `autoload.php` and
 * every `src/**\/*.php`, sorted by path.
 */
export function loadPhpSources(dir: string = PHP_SOURCES_DIR): PhpSource[] {
  const out: PhpSource[] = [{ path: AUTOLOAD_FILE, contents: readFileSync(join(dir, AUTOLOAD_FILE), 'utf8') }];
  const walk = (relative: string): void => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.php')) out.push({ path, contents: readFileSync(join(dir, path), 'utf8') });
    }
  };
  walk(SOURCE_DIR);
  return out;
}

/**
 * Renders the bootstrap and the ini fragment, and copies the sources. Deterministic: the same options,
 * templates and sources always give the same artifacts, so writeArtifacts can tell whether anything
 * changed.
 *
 * @param templates template texts; by default read from the repository's `templates/`.
 * @param sources   the handler's sources; by default read from the repository's `php/`.
 * @returns the bootstrap, the ini fragment, then `autoload.php` and `src/...` (sorted), each with mode 0o644.
 * @throws GenerateOptionsError when an option is out of range or holds characters that cannot be
 *   rendered safely (quotes, `$`, backslashes or control characters in paths, for example).
 */
export function renderArtifacts(
  options: GenerateOptions,
  templates: Templates = loadTemplates(),
  sources: PhpSource[] = loadPhpSources(),
): Artifact[] {
  const names = artifactFileNames(options.fileNames);
  const { values, namespace } = templateValues(options, names);
  return [
    { path: names.bootstrap, contents: fill(TEMPLATE_FILES.bootstrap, templates.bootstrap, values), mode: ARTIFACT_MODE },
    { path: names.ini, contents: fill(TEMPLATE_FILES.ini, templates.ini, values), mode: ARTIFACT_MODE },
    ...sources.map((source) => ({ path: source.path, contents: withNamespace(source.contents, namespace), mode: ARTIFACT_MODE })),
  ];
}

/**
 * The bootstrap's and the ini fragment's file names: DEFAULT_FILE_NAMES with `given`'s defined ones.
 * @throws GenerateOptionsError for a handler name (fixed by PSR-4: HANDLER_FILE), a name that is not
 *   a plain file name that renders safely (checkFileName), two equal names, or a name the handler's
 *   sources take (AUTOLOAD_FILE, SOURCE_DIR).
 */
function artifactFileNames(given: GenerateOptions['fileNames']): ArtifactFileNames {
  if ((given as { handler?: unknown } | undefined)?.handler !== undefined) {
    throw new GenerateOptionsError(
      `fileNames.handler: the handler is ${HANDLER_FILE} (PSR-4); only the bootstrap and ini names can change`,
    );
  }
  const names: ArtifactFileNames = { ...DEFAULT_FILE_NAMES, ...definedOnly(given ?? {}) };
  for (const [what, name] of Object.entries(names)) checkFileName(`fileNames.${what}`, name);
  if (names.bootstrap === names.ini) throw new GenerateOptionsError('fileNames: the two file names must differ');
  for (const name of Object.values(names)) {
    if (name === AUTOLOAD_FILE || name === SOURCE_DIR)
      throw new GenerateOptionsError(`fileNames: ${name} is taken by the handler's sources`);
  }
  return names;
}

/**
 * The templates' placeholder values (`{{NAME}}` → PHP or ini text, rendered safely), and the PHP
 * root namespace the sources are renamed to. Checks the options in a fixed order, so the first bad
 * one is the one named: installDir, filesHandlerTrapPath, namespace, redis, locking,
 * previousAutoPrependFile, readThrough, expectedLookupIds.
 * @throws GenerateOptionsError for a value out of range or that cannot be rendered safely.
 */
function templateValues(options: GenerateOptions, names: ArtifactFileNames): { values: Record<string, string>; namespace: string } {
  const installDir = checkIniPath('installDir', options.installDir);
  const bootstrapPath = posix.join(installDir, names.bootstrap);
  const trapPath = checkIniPath('filesHandlerTrapPath', options.filesHandlerTrapPath ?? DEFAULT_FILES_HANDLER_TRAP_PATH);
  const namespace = checkNamespace(options.namespace ?? DEFAULT_NAMESPACE);
  const redis = renderRedis(options.redis);
  const locking = renderLocking(options.locking ?? {});
  const chain = renderChain(options.previousAutoPrependFile, bootstrapPath);
  const readThrough =
    options.readThrough !== undefined
      ? renderReadThrough(options.readThrough.savePath, options.readThrough.redisPrefixes ?? [])
      : undefined;
  const expectedLookupIds = checkLookupIds(options.expectedLookupIds ?? []);
  const values: Record<string, string> = {
    EXPECTED_LOOKUP_IDS: `[${expectedLookupIds.map(phpString).join(', ')}]`,
    NAMESPACE: namespace,
    INI_FILE: names.ini,
    REDIS_CONFIG: redis.php,
    REDIS_PREFIX: phpString(redis.prefix),
    LOCKING_CONFIG: locking.php,
    CHAIN_PREVIOUS_PREPEND: chain,
    BOOTSTRAP_PATH: bootstrapPath,
    FILES_TRAP_PATH: trapPath,
    READ_THROUGH: readThrough?.php ?? 'null',
    READ_THROUGH_NOTE: readThrough?.iniNote ?? '; Strict mode: sessions live only in Redis; no session file is read.',
    CONNECTION_NOTE: redis.iniNote,
    LOCKING_NOTE: locking.iniNote,
  };
  return { values, namespace };
}

/**
 * The bootstrap's PHP that runs the auto_prepend_file it replaced (`previous`, absolute), or a
 * comment saying there is none (undefined or '').
 * @throws GenerateOptionsError for a path that cannot be rendered safely, or the bootstrap itself
 *   (`bootstrapPath`: it would include itself).
 */
function renderChain(previous: string | undefined, bootstrapPath: string): string {
  if (previous === undefined || previous === '') return '// No previous auto_prepend_file to chain.';
  const path = checkIniPath('previousAutoPrependFile', previous);
  if (path === bootstrapPath) throw new GenerateOptionsError('previousAutoPrependFile: is the bootstrap itself');
  return `// The auto_prepend_file this bootstrap replaced, run in the global scope as before.\nrequire_once ${phpString(path)};`;
}

/**
 * The key ring lookup IDs the bootstrap expects, as given.
 * @throws GenerateOptionsError when one is not 16 lowercase hex characters (a lookup ID's form, docs/keys.md).
 */
function checkLookupIds(ids: readonly string[]): readonly string[] {
  for (const id of ids) {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new GenerateOptionsError('expectedLookupIds: each must be 16 lowercase hex characters');
  }
  return ids;
}

/**
 * A source in another root namespace than `SessionMigrate`: its `namespace` line and fully qualified
 * `\SessionMigrate\` names are renamed (the sources name nothing else of theirs).
 */
function withNamespace(text: string, namespace: string): string {
  if (namespace === DEFAULT_NAMESPACE) return text;
  return text.replace(/^namespace SessionMigrate;$/m, `namespace ${namespace};`).replace(/\\SessionMigrate\\/g, `\\${namespace}\\`);
}

/** A PHP array literal's lines at 8 spaces, each with its comment. */
function phpLines(entries: Array<[key: string, value: string, comment: string]>): string {
  return entries
    .map(([key, value, comment]) => `        ${phpString(key)} => ${value},${comment !== '' ? ` // ${comment}` : ''}`)
    .join('\n');
}

/** A list of nodes as a PHP array literal: `[]`, or one node per line (under an entry at 8 spaces). */
function phpNodes(nodes: RedisNode[]): string {
  if (nodes.length === 0) return '[]';
  return `[\n${nodes.map((n) => `            ['host' => ${phpString(n.host)}, 'port' => ${n.port}],`).join('\n')}\n        ]`;
}

/**
 * The bootstrap's `redis` entries and the ini fragment's connection note.
 * @throws GenerateOptionsError for a value that cannot work or cannot be rendered safely.
 */
function renderRedis(redis: RedisTargetOptions): { php: string; iniNote: string; prefix: string } {
  const { topology, host, port, db, prefix, username, timeout, persistent } = checkRedisConnection(redis);
  const { seeds, sentinels, masterName } = checkRedisNodes(redis, topology, host, port);
  const { tls, tlsNote } = renderTls(redis.tls, host);
  const php = phpLines([
    ['topology', phpString(topology), "'standalone', 'cluster' (RedisCluster) or 'sentinel' (RedisSentinel)"],
    ['host', phpString(host), 'host name, IP, or a unix socket path (starts with "/")'],
    ['port', String(port), ''],
    ['database', String(db), 'SELECT index'],
    ['username', phpString(username), "Redis 6 ACL user, '' for none (password: environment)"],
    ['timeout', Number.isInteger(timeout) ? timeout.toFixed(1) : String(timeout), 'connect and read timeout, seconds'],
    ['persistent', persistent ? 'true' : 'false', 'pconnect: one connection per PHP worker'],
    ['tls', tls, 'null, or verified TLS with these files'],
    ['seeds', phpNodes(seeds), 'cluster seeds'],
    ['sentinels', phpNodes(sentinels), 'sentinels, asked in order'],
    ['masterName', phpString(masterName), 'name of the master the sentinels monitor'],
  ]);
  const where =
    topology === 'cluster'
      ? `Redis Cluster, seeds ${seeds.map((n) => `${n.host}:${n.port}`).join(', ')}`
      : topology === 'sentinel'
        ? `Sentinel master "${masterName}" from ${sentinels.map((n) => `${n.host}:${n.port}`).join(', ')}, database ${db}`
        : host.startsWith('/')
          ? `unix socket ${host}, database ${db}`
          : `${host}:${port}, database ${db}`;
  const iniNote = [
    `;   server       ${where}`,
    `;   user         ${username !== '' ? `${username} (ACL), password from SESSION_MIGRATE_REDIS_PASSWORD` : 'default; password (if any) from SESSION_MIGRATE_REDIS_PASSWORD'}`,
    `;   TLS          ${tlsNote}`,
    `;   connections  ${persistent ? 'persistent (one per PHP worker, with a persistent ID for this configuration)' : 'one per request'}; timeout ${timeout} s`,
  ].join('\n');
  return { php, iniNote, prefix };
}

/**
 * The connection settings of `redis`, checked, with their defaults.
 * @throws GenerateOptionsError for a value that cannot work or cannot be rendered safely.
 */
function checkRedisConnection(redis: RedisTargetOptions): {
  topology: string;
  host: string;
  port: number;
  db: number;
  prefix: string;
  username: string;
  timeout: number;
  persistent: boolean;
} {
  const topology = redis.topology ?? 'standalone';
  if (!['standalone', 'cluster', 'sentinel'].includes(topology))
    throw new GenerateOptionsError('redis.topology: must be standalone, cluster or sentinel');
  const host = checkText('redis.host', redis.host);
  if (host === '') throw new GenerateOptionsError('redis.host: empty');
  if (/^[a-z]+:\/\//i.test(host))
    throw new GenerateOptionsError('redis.host: a host name, IP address or socket path, without a scheme (TLS is redis.tls)');
  const port = checkInt('redis.port', redis.port ?? DEFAULT_REDIS_PORT, 1, 65535);
  const db = checkInt('redis.db', redis.db ?? 0, 0, 1_000_000);
  if (topology === 'cluster' && db !== 0) throw new GenerateOptionsError('redis.db: a Redis Cluster has only database 0');
  const prefix = checkText('redis.prefix', redis.prefix ?? DEFAULT_PREFIX);
  if (/[{}]/.test(prefix))
    throw new GenerateOptionsError('redis.prefix: must not contain "{" or "}" (key layout 2 puts a hash tag after it)');
  const username = checkText('redis.username', redis.username ?? '');
  const timeout = redis.timeoutSeconds ?? DEFAULT_REDIS_TIMEOUT;
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) {
    throw new GenerateOptionsError('redis.timeoutSeconds: must be more than 0 and at most 3600 seconds');
  }
  const persistent = redis.persistent ?? true;
  if (typeof persistent !== 'boolean') throw new GenerateOptionsError('redis.persistent: must be true or false');
  return { topology, host, port, db, prefix, username, timeout, persistent };
}

/**
 * A cluster's seeds (default: host:port) or Sentinel's sentinels and master name, checked; each only
 * for its topology.
 * @throws GenerateOptionsError for a missing or misplaced list, or a node that is not host and port
 */
function checkRedisNodes(
  redis: RedisTargetOptions,
  topology: string,
  host: string,
  port: number,
): { seeds: RedisNode[]; sentinels: RedisNode[]; masterName: string } {
  const nodes = (what: string, list: RedisNode[] | undefined): RedisNode[] =>
    (list ?? []).map((n, i) => {
      const h = checkText(`${what}[${i}].host`, n.host);
      if (h === '' || /[\s/]/.test(h)) throw new GenerateOptionsError(`${what}[${i}].host: must be a host name or IP address`);
      return { host: h, port: checkInt(`${what}[${i}].port`, n.port, 1, 65535) };
    });
  const seeds = topology === 'cluster' ? (redis.seeds !== undefined ? nodes('redis.seeds', redis.seeds) : [{ host, port }]) : [];
  if (topology === 'cluster' && seeds.length === 0) throw new GenerateOptionsError('redis.seeds: a cluster needs at least one seed');
  const sentinels = topology === 'sentinel' ? nodes('redis.sentinels', redis.sentinels) : [];
  const masterName = topology === 'sentinel' ? checkText('redis.masterName', redis.masterName ?? '') : '';
  if (topology === 'sentinel' && (sentinels.length === 0 || masterName === '')) {
    throw new GenerateOptionsError('redis.sentinels, redis.masterName: Sentinel needs at least one sentinel and the master name');
  }
  if (topology !== 'cluster' && redis.seeds !== undefined && redis.seeds.length > 0)
    throw new GenerateOptionsError('redis.seeds: only for topology cluster');
  if (topology !== 'sentinel' && (redis.sentinels?.length ?? 0) > 0)
    throw new GenerateOptionsError('redis.sentinels: only for topology sentinel');
  return { seeds, sentinels, masterName };
}

/**
 * The bootstrap's `tls` value (`null`, `[]` for the system CA store, or the files and server name)
 * and the ini fragment's TLS note. Paths only: the files are read by PHP, never here.
 * @throws GenerateOptionsError for a certificate without its key (or the reverse), a bad server name,
 *   or TLS on a unix socket
 */
function renderTls(options: RedisTargetOptions['tls'], host: string): { tls: string; tlsNote: string } {
  if (options === undefined) return { tls: 'null', tlsNote: 'off' };
  const entries: string[] = [];
  const notes: string[] = [];
  for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
    const value = options[key];
    if (value === undefined || value === '') continue;
    entries.push(`            ${phpString(key)} => ${phpString(checkIniPath(`redis.tls.${key}`, value))},`);
    notes.push(`${key} ${value}`);
  }
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new GenerateOptionsError('redis.tls: certFile and keyFile go together (a client certificate and its key)');
  }
  if (options.serverName !== undefined && options.serverName !== '') {
    const name = checkText('redis.tls.serverName', options.serverName);
    if (/[\s/]/.test(name)) throw new GenerateOptionsError('redis.tls.serverName: must be a host name');
    entries.push(`            'serverName' => ${phpString(name)},`);
    notes.push(`server name ${name}`);
  }
  if (host.startsWith('/')) throw new GenerateOptionsError('redis.tls: not for a unix socket');
  return {
    tls: entries.length === 0 ? '[]' : `[\n${entries.join('\n')}\n        ]`,
    tlsNote: `on, server certificate verified (${notes.length > 0 ? notes.join(', ') : 'system CA store'})`,
  };
}

/**
 * The bootstrap's `locking` entries and the ini fragment's locking note.
 * @throws GenerateOptionsError for a value out of range.
 */
function renderLocking(options: LockingOptions): { php: string; iniNote: string } {
  const o = { ...DEFAULT_LOCKING, ...definedOnly(options) };
  if (typeof o.enabled !== 'boolean') throw new GenerateOptionsError('locking.enabled: must be true or false');
  checkInt('locking.waitMicros', o.waitMicros, 1, 10_000_000);
  checkInt('locking.retries', o.retries, 0, 100_000);
  checkInt('locking.ttlSeconds', o.ttlSeconds, 1, 86_400);
  if (o.onFailure !== 'fail' && o.onFailure !== 'readonly') throw new GenerateOptionsError('locking.onFailure: must be fail or readonly');
  const php = phpLines([
    ['enabled', o.enabled ? 'true' : 'false', 'lock each session while a request uses it'],
    ['waitMicros', String(o.waitMicros), 'pause between two attempts, microseconds'],
    ['retries', String(o.retries), 'attempts after the first'],
    ['ttlSeconds', String(o.ttlSeconds), 'lock TTL when max_execution_time is 0'],
    ['onFailure', phpString(o.onFailure), "'fail' session_start(), or open 'readonly'"],
  ]);
  // SessionLock::maxWaitMillis (php/src/SessionLock.php): each attempt's round trip is allowed 5 ms.
  const waitMs = Math.floor((o.retries * (o.waitMicros + 5000)) / 1000);
  const iniNote = o.enabled
    ? [
        `;   locking      on: a request waits for the lock ${o.retries} times ${o.waitMicros} microseconds, at most ${waitMs} ms`,
        ';                (round trips included), then tries once more',
        ';   lock TTL     max_execution_time, or ' + `${o.ttlSeconds} s when that is 0; never a lock without a TTL. A request`,
        ';                that runs longer loses its lock: its write is refused and logged, never overwriting another',
        `;   on failure   ${
          o.onFailure === 'fail'
            ? 'session_start() fails with a warning, the reason in the error log (as phpredis 6)'
            : 'the session opens read-only: its writes are refused and logged (as phpredis lock_failure_readonly)'
        }`,
      ].join('\n')
    : [
        ';   locking      off: concurrent requests of one session may overwrite each other (the last write',
        ';                wins), as with phpredis without redis.session.locking_enabled',
      ].join('\n');
  return { php, iniNote };
}

/**
 * Refuses what would make writeArtifacts write anywhere but below `dir`: an artifact path that is
 * empty, absolute or leaves `dir` (`..`), and, between `dir` and an artifact's file, a directory
 * (`src/`, `conf.d/`) that is a symbolic link or is not a directory at all. Writing through such a
 * link would put the handler's classes wherever it points. `dir` itself may be a link (whoever gave
 * the path chose it); a directory not there yet is fine (writeArtifacts creates it). Checks every
 * artifact and writes nothing, so a caller can check before a dry run or before a write of its own;
 * writeArtifacts calls it first, so nothing is written when any artifact is refused.
 *
 * @throws UserFacingError (one line, naming the path) for a linked or non-directory component, or
 *   when `dir` is (or is below) something other than a directory; Error for a path outside `dir` (a
 *   caller's bug, not the user's input)
 */
export function refuseLinkedArtifactDirectories(dir: string, artifacts: readonly Artifact[]): void {
  const notDir = nonDirectoryOnPath(dir);
  if (notDir !== undefined)
    throw new UserFacingError(`${notDir} exists and is not a directory; refusing to write the artifacts into ${dir}`);
  for (const artifact of artifacts) {
    const relative = normalize(artifact.path);
    if (artifact.path === '' || isAbsolute(artifact.path) || relative === '..' || relative.startsWith(`..${sep}`)) {
      throw new Error(`artifact path ${JSON.stringify(artifact.path)} is not inside the output directory`);
    }
    let at = dir;
    for (const part of dirname(relative)
      .split(sep)
      .filter((p) => p !== '' && p !== '.')) {
      at = join(at, part);
      let st;
      try {
        st = lstatSync(at);
      } catch {
        break; // not there yet (created as a directory), or not to be looked at: the write says why
      }
      if (st.isSymbolicLink()) throw new UserFacingError(`${at} is a symbolic link; refusing to write the artifacts through it`);
      if (!st.isDirectory()) throw new UserFacingError(`${at} exists and is not a directory; refusing to write the artifacts through it`);
    }
  }
}

/**
 * The part of an output directory's path that is not a directory, when `dir` is, or would be created
 * below, something else: the first part of `dir` that exists must be a directory (a link to one is
 * followed: whoever gave the path chose it). A part that cannot be looked at (EACCES) is left to the
 * write, which names it.
 * @returns that part, or undefined when `dir` is a directory or can be created as far as is known
 */
export function nonDirectoryOnPath(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    let st;
    try {
      st = statSync(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(d) !== d) continue;
      return undefined;
    }
    return st.isDirectory() ? undefined : d;
  }
}

/**
 * Writes artifacts below `dir` (created if missing), after refuseLinkedArtifactDirectories: nothing
 * is written through a linked directory inside `dir`. Each file is written with the one atomic write
 * (@session-migrate/common writeFileAtomic: a temporary file with an unpredictable name in the same
 * directory, O_EXCL|O_NOFOLLOW, its mode set exactly, fsynced, renamed over the target, the directory
 * fsynced), so readers see either the old or the new file. A file whose contents and mode are already right is not touched, so running
 * the same generation twice reports every file as unchanged.
 *
 * @throws UserFacingError (nothing written) when a directory between `dir` and a file is a symbolic
 *   link or not a directory; Error when an artifact path is absolute or leaves `dir`, or on a
 *   filesystem error (the temporary file is removed); code ELOOP when a target is a symbolic link
 *   (never written through).
 */
export function writeArtifacts(dir: string, artifacts: readonly Artifact[]): WriteResult {
  refuseLinkedArtifactDirectories(dir, artifacts);
  const result: WriteResult = { changed: [], unchanged: [] };
  for (const artifact of artifacts) {
    const target = join(dir, normalize(artifact.path));
    const contents = Buffer.from(artifact.contents, 'utf8');
    const mode = artifact.mode & 0o7777;
    if (isSameFile(target, contents, mode)) {
      result.unchanged.push(artifact.path);
      continue;
    }
    makeDirectories(dirname(target));
    writeFileAtomic(target, contents, { mode });
    result.changed.push(artifact.path);
  }
  return result;
}

/**
 * The bootstrap's read-through config (a PHP array literal) and the ini fragment's note for a legacy
 * save_path.
 * @throws GenerateOptionsError when the save_path has an error PHP would fail on, or its path is not
 *   an absolute path that renders safely.
 */
function renderReadThrough(savePath: string, redisPrefixes: readonly string[]): { php: string; iniNote: string } {
  checkText('readThrough.savePath', savePath);
  const parsed = parseFilesSavePath(savePath);
  const fatal = parsed.findings.find((f) => isAtLeast(f.severity, SAVE_PATH_FAILS_AT));
  if (fatal !== undefined) throw new GenerateOptionsError(`readThrough.savePath: ${fatal.message}`);
  if (savePath === '') throw new GenerateOptionsError('readThrough.savePath: empty; give the directory explicitly');
  const dir = checkIniPath('readThrough.savePath', parsed.path);
  const depth = checkInt('readThrough depth', parsed.depth, 0, 64);
  for (const p of redisPrefixes) {
    checkText('readThrough.redisPrefixes', p);
    if (p === '') throw new GenerateOptionsError('readThrough.redisPrefixes: a prefix must not be empty');
  }
  const prefixes = redisPrefixes.length > 0 ? `, 'redisPrefixes' => [${redisPrefixes.map(phpString).join(', ')}]` : '';
  return {
    php: `['dir' => ${phpString(dir)}, 'depth' => ${depth}${prefixes}]`,
    iniNote: [
      `; Read-through (migrating) mode: on a Redis miss the handler reads the old plaintext session file`,
      ...(redisPrefixes.length > 0
        ? [
            `; below ${dir} (depth ${depth}), else the old phpredis key (${redisPrefixes.join(', ')}<ID>) in the`,
            '; same Redis; PHP then stores the session encrypted in Redis. No file or old key is written.',
          ]
        : [`; below ${dir} (depth ${depth}); PHP then stores the session encrypted in Redis. No file is written.`]),
      '; Regenerate without read-through (strict mode) once every host has migrated and verify passes.',
    ].join('\n'),
  };
}

/** Replaces every `{{NAME}}`; a placeholder without a value is a template bug and throws. */
function fill(templateName: string, template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template ${templateName}: unknown placeholder {{${name}}}`);
    return value;
  });
}

function isSameFile(target: string, contents: Buffer, mode: number): boolean {
  try {
    const st = lstatSync(target);
    if (!st.isFile() || (st.mode & 0o7777) !== mode || st.size !== contents.length) return false;
    return readFileSync(target).equals(contents);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Text baked into a PHP string literal: any printable characters. */
function checkText(what: string, value: string): string {
  if (typeof value !== 'string' || CONTROL.test(value)) {
    throw new GenerateOptionsError(`${what}: must be text without control characters`);
  }
  return value;
}

/** An absolute POSIX path that can sit inside a double-quoted ini value and a PHP literal. */
function checkIniPath(what: string, value: string): string {
  checkText(what, value);
  if (!value.startsWith('/')) throw new GenerateOptionsError(`${what}: must be an absolute path`);
  if (/["\\$]/.test(value)) throw new GenerateOptionsError(`${what}: must not contain ", \\ or $`);
  const cleaned = posix.normalize(value);
  return cleaned.length > 1 && cleaned.endsWith('/') ? cleaned.slice(0, -1) : cleaned;
}

function checkFileName(what: string, value: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value)) {
    throw new GenerateOptionsError(`${what}: must be a plain file name ([A-Za-z0-9._-], no directory)`);
  }
}

function checkNamespace(value: string): string {
  const normalized = value.replace(/^\\+/, '');
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\\[A-Za-z_][A-Za-z0-9_]*)*$/.test(normalized)) {
    throw new GenerateOptionsError('namespace: must be a PHP namespace such as SessionMigrate or Acme\\Session');
  }
  return normalized;
}

function checkInt(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new GenerateOptionsError(`${what}: must be an integer from ${min} to ${max}`);
  }
  return value;
}

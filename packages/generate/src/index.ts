/**
 * Renders the PHP side of session-migrate from the repository's `templates/` folder:
 *
 * - `EncryptedRedisSessionHandler.php`: the session handler class (docs/envelope.md, version 1);
 * - `session-migrate-bootstrap.php`: the auto_prepend_file that registers it;
 * - `99-session-migrate.ini`: the conf.d fragment that loads the bootstrap and hardens the session ini.
 *
 * Templates use `{{NAME}}` placeholders only. Values are validated, then inserted as PHP or ini literals,
 * so nothing a caller passes can end a string or a comment early. No secret is ever rendered: the master
 * key and the Redis password come from the environment of the PHP process at run time.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, posix, sep } from 'node:path';
import { assetPath } from '@session-migrate/common';
import { parseFilesSavePath } from '@session-migrate/php-ini';

/** One file to write: a path relative to the output directory, its text and its permission bits. */
export interface Artifact {
  /** Path relative to the output directory, with `/` separators (e.g. `session-migrate-bootstrap.php`). */
  path: string;
  /** File contents (UTF-8). */
  contents: string;
  /** Permission bits, e.g. `0o644`. */
  mode: number;
}

/** Names of the generated files, relative to the output directory and to `installDir`. */
export interface ArtifactFileNames {
  /** Handler class file. Default `EncryptedRedisSessionHandler.php`. */
  handler: string;
  /** Bootstrap for auto_prepend_file. Default `session-migrate-bootstrap.php`. */
  bootstrap: string;
  /** conf.d fragment. Default `99-session-migrate.ini` (the `99-` makes it load after the others). */
  ini: string;
}

/** Where the generated handler connects. No password here: it comes from `SESSION_MIGRATE_REDIS_PASSWORD`. */
export interface RedisTargetOptions {
  /** Host name or IP address, or the absolute path of a unix socket. */
  host: string;
  /** TCP port, 1 to 65535. Default 6379. Ignored for a unix socket. */
  port?: number;
  /** Database index for SELECT, 0 or more. Default 0. */
  db?: number;
  /** Prefix of session key names. Default `smsess:` (docs/envelope.md). */
  prefix?: string;
  /** Connect and read timeout in seconds, more than 0 and at most 3600. Default 2.5. */
  timeoutSeconds?: number;
  /** Redis 6 ACL user name, used with the password from the environment. Default: none. */
  username?: string;
  /** How the data is served (default `standalone`). */
  topology?: 'standalone' | 'cluster' | 'sentinel';
  /** TLS to Redis (present means on): CA, client certificate and key (absolute paths), name to verify. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
  /** Cluster: seed nodes. */
  seeds?: Array<{ host: string; port: number }>;
  /** Sentinel: the sentinels and the master group name (password: SESSION_MIGRATE_SENTINEL_PASSWORD). */
  sentinels?: Array<{ host: string; port: number }>;
  masterName?: string;
}

/** Everything renderArtifacts needs. */
export interface GenerateOptions {
  /**
   * Absolute POSIX directory where the files will be installed on the PHP host. The ini fragment
   * points auto_prepend_file at `installDir/<bootstrap file name>`; the bootstrap loads the handler
   * from its own directory.
   */
  installDir: string;
  /** Redis connection baked into the bootstrap. */
  redis: RedisTargetOptions;
  /** PHP namespace of the handler class. Default `SessionMigrate`. */
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
}

/** The three template texts, as read by loadTemplates(). */
export interface Templates {
  handler: string;
  bootstrap: string;
  ini: string;
}

/** Result of writeArtifacts: artifact paths (as given) split by whether the file on disk changed. */
export interface WriteResult {
  /** Files created or rewritten (contents or mode differed, or the file was missing). */
  changed: string[];
  /** Files that already had exactly these contents and mode; not touched. */
  unchanged: string[];
}

/** Invalid generation options; the message names the option and never contains a secret. */
export class GenerateOptionsError extends Error {
  /** Exit code for a CLI (2 = usage or input error), as UserFacingError in @session-migrate/common. */
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = 'GenerateOptionsError';
  }
}

export const DEFAULT_FILE_NAMES: Readonly<ArtifactFileNames> = Object.freeze({
  handler: 'EncryptedRedisSessionHandler.php',
  bootstrap: 'session-migrate-bootstrap.php',
  ini: '99-session-migrate.ini',
});
export const DEFAULT_NAMESPACE = 'SessionMigrate';
export const DEFAULT_PREFIX = 'smsess:';
export const DEFAULT_REDIS_PORT = 6379;
/** Seconds. */
export const DEFAULT_REDIS_TIMEOUT = 2.5;
export const DEFAULT_FILES_HANDLER_TRAP_PATH = '/dev/null/session-migrate-files-handler-disabled';
/** Permission bits of every generated file: nothing in them is secret. */
export const ARTIFACT_MODE = 0o644;

/** Absolute path of the `templates/` folder (of the repository, or of the installed package: common/src/assets.ts). */
export const TEMPLATES_DIR = assetPath('templates');

const TEMPLATE_FILES: Readonly<Record<keyof Templates, string>> = {
  handler: 'EncryptedRedisSessionHandler.php.tpl',
  bootstrap: 'session-migrate-bootstrap.php.tpl',
  ini: 'session-migrate.ini.tpl',
};

/** Reads the three templates (UTF-8) from `dir`, by default the repository's `templates/`. */
export function loadTemplates(dir: string = TEMPLATES_DIR): Templates {
  return {
    handler: readFileSync(join(dir, TEMPLATE_FILES.handler), 'utf8'),
    bootstrap: readFileSync(join(dir, TEMPLATE_FILES.bootstrap), 'utf8'),
    ini: readFileSync(join(dir, TEMPLATE_FILES.ini), 'utf8'),
  };
}

/**
 * Renders the handler class, the bootstrap and the ini fragment. Deterministic: the same options and
 * templates always give the same artifacts, so writeArtifacts can tell whether anything changed.
 *
 * @param templates template texts; by default read from the repository's `templates/`.
 * @returns three artifacts (handler, bootstrap, ini, in that order), each with mode 0o644.
 * @throws GenerateOptionsError when an option is out of range or holds characters that cannot be
 *   rendered safely (quotes, `$`, backslashes or control characters in paths, for example).
 */
export function renderArtifacts(options: GenerateOptions, templates: Templates = loadTemplates()): Artifact[] {
  const names: ArtifactFileNames = { ...DEFAULT_FILE_NAMES, ...definedOnly(options.fileNames ?? {}) };
  for (const [what, name] of Object.entries(names)) checkFileName(`fileNames.${what}`, name);
  if (new Set(Object.values(names)).size !== 3) throw new GenerateOptionsError('fileNames: the three file names must differ');

  const installDir = checkIniPath('installDir', options.installDir);
  const bootstrapPath = posix.join(installDir, names.bootstrap);
  const trapPath = checkIniPath('filesHandlerTrapPath', options.filesHandlerTrapPath ?? DEFAULT_FILES_HANDLER_TRAP_PATH);
  const namespace = checkNamespace(options.namespace ?? DEFAULT_NAMESPACE);

  const redis = options.redis;
  // The current template takes TLS as phpredis does: a `tls://` scheme on the host.
  const host = checkText('redis.host', redis.tls !== undefined && !redis.host.startsWith('tls://') ? `tls://${redis.host}` : redis.host);
  if (host === '') throw new GenerateOptionsError('redis.host: empty');
  const port = checkInt('redis.port', redis.port ?? DEFAULT_REDIS_PORT, 1, 65535);
  const db = checkInt('redis.db', redis.db ?? 0, 0, 1_000_000);
  const prefix = checkText('redis.prefix', redis.prefix ?? DEFAULT_PREFIX);
  if (/[{}]/.test(prefix)) throw new GenerateOptionsError('redis.prefix: must not contain "{" or "}" (key layout 2 puts a hash tag after it)');
  const username = checkText('redis.username', redis.username ?? '');
  const timeout = redis.timeoutSeconds ?? DEFAULT_REDIS_TIMEOUT;
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) {
    throw new GenerateOptionsError('redis.timeoutSeconds: must be more than 0 and at most 3600 seconds');
  }

  let chain = '// No previous auto_prepend_file to chain.';
  if (options.previousAutoPrependFile !== undefined && options.previousAutoPrependFile !== '') {
    const previous = checkIniPath('previousAutoPrependFile', options.previousAutoPrependFile);
    if (previous === bootstrapPath) throw new GenerateOptionsError('previousAutoPrependFile: is the bootstrap itself');
    chain = `// The auto_prepend_file this bootstrap replaced, run in the global scope as before.\nrequire_once ${phpString(previous)};`;
  }

  const readThrough = options.readThrough !== undefined ? renderReadThrough(options.readThrough.savePath) : undefined;

  const expectedLookupIds = options.expectedLookupIds ?? [];
  for (const id of expectedLookupIds) {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new GenerateOptionsError('expectedLookupIds: each must be 16 lowercase hex characters');
  }

  const values: Record<string, string> = {
    EXPECTED_LOOKUP_IDS: `[${expectedLookupIds.map(phpString).join(', ')}]`,
    NAMESPACE: namespace,
    HANDLER_FILE: phpString(names.handler),
    INI_FILE: names.ini,
    REDIS_HOST: phpString(host),
    REDIS_PORT: String(port),
    REDIS_DB: String(db),
    REDIS_TIMEOUT: Number.isInteger(timeout) ? timeout.toFixed(1) : String(timeout),
    REDIS_PREFIX: phpString(prefix),
    REDIS_USERNAME: phpString(username),
    CHAIN_PREVIOUS_PREPEND: chain,
    BOOTSTRAP_PATH: bootstrapPath,
    FILES_TRAP_PATH: trapPath,
    READ_THROUGH: readThrough?.php ?? 'null',
    READ_THROUGH_NOTE: readThrough?.iniNote ?? '; Strict mode: sessions live only in Redis; no session file is read.',
  };
  return [
    { path: names.handler, contents: fill(TEMPLATE_FILES.handler, templates.handler, values), mode: ARTIFACT_MODE },
    { path: names.bootstrap, contents: fill(TEMPLATE_FILES.bootstrap, templates.bootstrap, values), mode: ARTIFACT_MODE },
    { path: names.ini, contents: fill(TEMPLATE_FILES.ini, templates.ini, values), mode: ARTIFACT_MODE },
  ];
}

/**
 * Writes artifacts below `dir` (created if missing). Each file is written to a temporary file in the
 * same directory, fsynced, given its mode, then renamed over the target, so readers see either the
 * old or the new file. A file whose contents and mode are already right is not touched, so running
 * the same generation twice reports every file as unchanged.
 *
 * @throws Error when an artifact path is absolute or leaves `dir`, or on a filesystem error (the
 *   temporary file is removed).
 */
export function writeArtifacts(dir: string, artifacts: readonly Artifact[]): WriteResult {
  const result: WriteResult = { changed: [], unchanged: [] };
  for (const artifact of artifacts) {
    const relative = normalize(artifact.path);
    if (artifact.path === '' || isAbsolute(artifact.path) || relative === '..' || relative.startsWith(`..${sep}`)) {
      throw new Error(`artifact path ${JSON.stringify(artifact.path)} is not inside the output directory`);
    }
    const target = join(dir, relative);
    const contents = Buffer.from(artifact.contents, 'utf8');
    const mode = artifact.mode & 0o7777;
    if (isSameFile(target, contents, mode)) {
      result.unchanged.push(artifact.path);
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fd = openSync(temp, 'wx', mode);
      try {
        writeAll(fd, contents);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      chmodSync(temp, mode); // openSync's mode is reduced by the umask
      renameSync(temp, target);
    } catch (err) {
      try {
        unlinkSync(temp);
      } catch {
        // already renamed or never created
      }
      throw err;
    }
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
function renderReadThrough(savePath: string): { php: string; iniNote: string } {
  checkText('readThrough.savePath', savePath);
  const parsed = parseFilesSavePath(savePath);
  const fatal = parsed.findings.find((f) => f.severity === 'error');
  if (fatal !== undefined) throw new GenerateOptionsError(`readThrough.savePath: ${fatal.message}`);
  if (savePath === '') throw new GenerateOptionsError('readThrough.savePath: empty; give the directory explicitly');
  const dir = checkIniPath('readThrough.savePath', parsed.path);
  const depth = checkInt('readThrough depth', parsed.depth, 0, 64);
  return {
    php: `['dir' => ${phpString(dir)}, 'depth' => ${depth}]`,
    iniNote: [
      `; Read-through (migrating) mode: on a Redis miss the handler reads the old plaintext session file`,
      `; below ${dir} (depth ${depth}); PHP then stores the session encrypted in Redis. No file is written.`,
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

/** A PHP single-quoted string literal: only `\` and `'` need escaping there. */
function phpString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
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

function writeAll(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
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

/**
 * Per-request layers on top of the startup configuration, as pure functions (plus readers that
 * collect their inputs through an IniFileSystem).
 *
 * Order (test/fixtures/reference/php-ini-semantics.md sections 2, 5, 6; BUG-14):
 *   php.ini/conf.d (startup) < FPM pool php_value/php_flag < pool php_admin_value/php_admin_flag
 *   < [HOST=] < [PATH=] (root -> leaf) < .user.ini (docroot -> script dir) < ini_set().
 * - FPM (sapi/fpm/fpm/fpm_php.c `fpm_php_apply_defines`): every php_value first, then every
 *   php_admin_value; inside one pool the FIRST occurrence of a key wins (php-src #8398/#13249);
 *   php_admin_* lowers the directive to PHP_INI_SYSTEM (ini_set() returns false, .user.ini ignored).
 * - [HOST=]/[PATH=] (main/php_ini.c `php_ini_activate_config` with PHP_INI_SYSTEM at ACTIVATE stage,
 *   Zend/zend_ini.c `zend_alter_ini_entry_ex`): applied and LOCKED (case 55).
 * - .user.ini (sapi/cgi/cgi_main.c `php_cgi_ini_activate_user_config`): applied in PHP_INI_PERDIR
 *   mode: directives whose access lacks PERDIR (PHP_INI_SYSTEM ones) or that are locked are ignored.
 * - ini_set(): PHP_INI_USER mode; returns the old value or false.
 * A value the directive's validator rejects leaves the previous value (rejectReason()).
 */
import { posix } from 'node:path';
import { envOriginOf, parseIni, type EnvOrigin, type IniEntry, type IniError } from './parser.ts';
import {
  directiveInfo,
  iniGetFor,
  rejectReason,
  PHP_INI_PERDIR,
  PHP_INI_SYSTEM,
  PHP_INI_USER,
  type DirectiveContext,
} from './directives.ts';
import { isFsError, type IniFileSystem } from './fs.ts';
import type { Configuration } from './loader.ts';

export type Origin =
  | 'default'
  | 'php.ini'
  | 'pool php_value'
  | 'pool php_admin_value'
  | 'fastcgi PHP_VALUE'
  | 'fastcgi PHP_ADMIN_VALUE'
  | 'host-section'
  | 'path-section'
  | '.user.ini'
  | 'ini_set';

/**
 * A directive's value for the request and the line that set it; its EnvOrigin is that line's
 * (php.ini / conf.d and pool lines only; none for .user.ini, ini_set() and defaults).
 */
export interface EffectiveSetting extends EnvOrigin {
  value: string;
  origin: Origin;
  file: string | null;
  line: number | null;
  /** True when lowered to PHP_INI_SYSTEM for the request (php_admin_*, [PATH=]/[HOST=]). */
  locked: boolean;
}

/** A php_value/php_flag/php_admin_value/php_admin_flag line of an FPM pool, with its value's EnvOrigin. */
export interface PoolValue extends EnvOrigin {
  key: string;
  /** After ini parsing and, for flags, normalisation to '1'/'0'. */
  value: string;
  admin: boolean;
  flag: boolean;
  file: string;
  line: number;
  /**
   * Position among all php_value/php_flag/php_admin_* lines of the configuration, in the order
   * php-fpm read them (parseFpmConfig sets it): interleaves phpValues and phpAdminValues as written.
   */
  seq?: number;
}

export interface FpmPool {
  name: string;
  file: string;
  line: number;
  /** php_value + php_flag, in file order (duplicates kept; the first wins when applied). */
  phpValues: PoolValue[];
  /** php_admin_value + php_admin_flag, in file order. */
  phpAdminValues: PoolValue[];
  /** Every other pool setting (listen, user, pm, env[X] as 'env[X]', ...): last wins. */
  settings: Map<string, { value: string; file: string; line: number }>;
}

export interface RequestLayers {
  /** FPM pool whose php_value/php_admin_value apply (worker start). */
  pool?: FpmPool | null;
  /**
   * FPM FastCGI params of this (or an earlier) request: `PHP_VALUE` / `PHP_ADMIN_VALUE`, newline-
   * separated `key=value` lines (fpm_main.c init_request_info -> fastcgi_ini_parser). They change
   * the worker's master value WITHOUT a changeability check (even over php_admin_value) and persist
   * for later requests of that worker (test/fixtures/reference/fpm-check request 3).
   */
  fastcgiParams?: { PHP_VALUE?: string; PHP_ADMIN_VALUE?: string };
  /** SERVER_NAME for [HOST=] (CGI/FPM only). */
  serverName?: string | null;
  /** Directory of SCRIPT_FILENAME for [PATH=] (CGI/FPM only). */
  scriptDir?: string | null;
  /** Entries of the .user.ini files in application order (see collectUserIni). */
  userIni?: IniEntry[];
  /** Runtime ini_set() calls in order. */
  iniSet?: Array<[string, string]>;
}

export interface EffectiveValues {
  /** Directive -> ini_get() string or false (unknown name). */
  values: Record<string, string | false>;
  settings: Record<string, EffectiveSetting>;
  /** What each ini_set() returned (old value, or false when locked / rejected / unknown). */
  iniSetResults: Array<{ key: string; returned: string | false }>;
  /** Layer values PHP ignored, with the reason. */
  ignored: Array<{ key: string; origin: Origin; file: string | null; line: number | null; reason: string }>;
  /**
   * Set when PHP would stop every such request with a fatal error during request startup: a numeric
   * or empty session.name in .user.ini, or session.save_handler = user in [PATH=]/[HOST=]/.user.ini
   * (session.c raises E_ERROR outside the runtime stage; checked against php-cgi 8.2.36).
   */
  fatal?: { key: string; origin: Origin; file: string | null; line: number | null; message: string };
}

const HANDLER_MODULES: Record<string, string | null> = {
  files: null,
  redis: 'redis',
  rediscluster: 'redis',
  memcached: 'memcached',
  memcache: 'memcache',
};
const SERIALIZER_MODULES: Record<string, string | null> = {
  php: null,
  php_binary: null,
  php_serialize: null,
  igbinary: 'igbinary',
  msgpack: 'msgpack',
};

/** Dedupe pool values keeping the FIRST occurrence of each key (FPM applies the list that way). */
export function firstWins(values: PoolValue[]): PoolValue[] {
  const seen = new Set<string>();
  return values.filter((v) => (seen.has(v.key) ? false : (seen.add(v.key), true)));
}

type Setting = EffectiveSetting & { access: number };

/** Whether the directive is one session.c guards with SESSION_CHECK_OUTPUT_STATE (no change after headers are sent). */
const checksOutput = (key: string): boolean =>
  key.startsWith('session.') &&
  !key.startsWith('session.upload_progress.') &&
  key !== 'session.trans_sid_tags' &&
  key !== 'session.trans_sid_hosts';

/**
 * The settings of one request while its layers are applied: each directive starts at its startup
 * value (php.ini or default) the first time a layer or the report asks for it.
 */
class RequestIniState {
  readonly state = new Map<string, Setting>();
  readonly ignored: EffectiveValues['ignored'] = [];
  // A value rejected during request activation prints a warning; with display_errors on, that output
  // sends the headers, and every later session.* change of the request then fails
  // (ext/session/session.c SESSION_CHECK_OUTPUT_STATE: "Session ini settings cannot be changed after
  // headers have already been sent"). Found by test/fuzz-cgi-vs-php.test.ts.
  private headersSent = false;
  fatal: EffectiveValues['fatal'];
  private readonly ctx: DirectiveContext;
  private readonly modules: Set<string>;

  constructor(readonly config: Configuration) {
    this.ctx = config.context;
    this.modules = new Set(this.ctx.extensions ?? []);
  }

  /** The current setting of `key`, or null when PHP has no such directive. */
  get(key: string): Setting | null {
    const cur = this.state.get(key);
    if (cur) return cur;
    const { config, ctx } = this;
    const info = directiveInfo(key, ctx);
    if (!info.exists) return null;
    const raw = config.settings.get(key);
    const v = iniGetFor(key, raw?.value, ctx);
    const fromFile = raw !== undefined && v === raw.value && rejectReason(key, raw.value, config.phpVersion) === null;
    const s = {
      value: v === false ? '' : v,
      origin: (fromFile ? 'php.ini' : 'default') as Origin,
      file: fromFile ? raw!.file : null,
      line: fromFile ? raw!.line : null,
      locked: false,
      access: info.access ?? 7,
      ...(fromFile ? envOriginOf(raw!) : {}),
    };
    this.state.set(key, s);
    return s;
  }

  /** The error when `value` names a save/serialize handler whose extension is not loaded, else null. */
  private moduleMissing(key: string, value: string): string | null {
    const table = key === 'session.save_handler' ? HANDLER_MODULES : key === 'session.serialize_handler' ? SERIALIZER_MODULES : null;
    if (!table) return null;
    const need = Object.prototype.hasOwnProperty.call(table, value) ? table[value] : undefined;
    if (need === null) return null;
    if (need !== undefined && this.modules.has(need)) return null;
    return key === 'session.save_handler'
      ? `Session save handler "${value}" cannot be found`
      : `Serialization handler "${value}" cannot be found`;
  }

  /** Whether a warning reaches the response (display_errors as this request sees it). */
  private displaysErrors(): boolean {
    const d = this.get('display_errors')?.value.toLowerCase() ?? '1';
    // main.c php_error_cb: "stderr" is honoured only by the cli/cgi/phpdbg SAPI names; php-cgi
    // registers as "cgi-fcgi", so there (and in FPM) the warning still goes to the response
    if (d === 'stderr') return this.config.sapi !== 'cli';
    return (
      d === 'on' || d === 'yes' || d === 'true' || d === 'stdout' || (Number.parseInt(d, 10) !== 0 && !Number.isNaN(Number.parseInt(d, 10)))
    );
  }

  /** A layer value that did not apply. */
  ignore(key: string, origin: Origin, file: string | null, line: number | null, reason: string): void {
    this.ignored.push({ key, origin, file, line, reason });
  }

  /**
   * zend_alter_ini_entry_ex in `mode`: applies `value` unless the directive is unknown, not
   * changeable at this level, locked, guarded by sent headers, or rejected by its validator.
   * Returns whether it applied.
   */
  alter(
    key: string,
    value: string,
    origin: Origin,
    file: string | null,
    line: number | null,
    mode: number,
    lockOnActivate: boolean,
  ): boolean {
    const s = this.get(key);
    if (!s) {
      this.ignore(key, origin, file, line, 'PHP has no such directive');
      return false;
    }
    if (lockOnActivate) s.locked = true;
    const modifiable = s.locked ? PHP_INI_SYSTEM : s.access;
    if (!(modifiable & mode)) {
      this.ignore(
        key,
        origin,
        file,
        line,
        s.locked ? 'locked by php_admin_value or a [PATH=]/[HOST=] section' : 'not changeable at this level (PHP_INI_SYSTEM)',
      );
      return false;
    }
    const perRequest = origin === 'host-section' || origin === 'path-section' || origin === '.user.ini';
    if (perRequest && this.headersSent && checksOutput(key)) {
      this.ignore(
        key,
        origin,
        file,
        line,
        'rejected: session ini settings cannot be changed after headers have already been sent (an earlier warning was displayed)',
      );
      return false;
    }
    // after startup the modules are activated: an unknown save/serialize handler is rejected
    // at runtime the modules are activated: ini_set() of an unknown save/serialize handler fails
    // (php-cgi accepts unknown ones in [PATH=]/.user.ini, checked against php-cgi 8.2.36)
    const why = rejectReason(key, value, this.config.phpVersion) ?? (origin === 'ini_set' ? this.moduleMissing(key, value) : null);
    if (why) {
      this.ignore(key, origin, file, line, `rejected: ${why}`);
      // session.c raises E_ERROR outside the runtime stage for these (OnUpdateName: only at HTACCESS)
      const fatalHere = (origin === '.user.ini' && key === 'session.name') || (perRequest && key === 'session.save_handler');
      if (fatalHere && !this.fatal) this.fatal = { key, origin, file, line, message: `PHP Request Startup: ${why}` };
      if (perRequest && this.displaysErrors()) this.headersSent = true;
      return false;
    }
    setFrom(s, { value, origin, file, line });
    return true;
  }
}

/** A layer's value replacing a setting's, with where it was set (and its EnvOrigin, or none). */
function setFrom(s: Setting, v: Pick<EffectiveSetting, 'value' | 'origin' | 'file' | 'line'> & EnvOrigin): void {
  Object.assign(s, { value: v.value, origin: v.origin, file: v.file, line: v.line });
  if (v.envVars !== undefined) s.envVars = v.envVars;
  else delete s.envVars;
  if (v.envVarsVia !== undefined) s.envVarsVia = v.envVarsVia;
  else delete s.envVarsVia;
}

/** fpm_php_apply_defines: every php_value first, then every php_admin_value (admin locks); first occurrence wins. */
function applyPool(st: RequestIniState, pool: FpmPool): void {
  for (const [list, origin] of [
    [pool.phpValues, 'pool php_value'],
    [pool.phpAdminValues, 'pool php_admin_value'],
  ] as const) {
    for (const v of firstWins(list)) {
      if (v.key === 'extension') continue;
      const s = st.get(v.key);
      if (!s) {
        st.ignore(v.key, origin, v.file, v.line, `PHP has no such directive ("Unable to set ${origin.slice(5)}")`);
      } else if (rejectReason(v.key, v.value, st.config.phpVersion) !== null) {
        st.ignore(v.key, origin, v.file, v.line, 'rejected by the directive');
      } else {
        setFrom(s, { value: v.value, origin, file: v.file, line: v.line, ...envOriginOf(v) });
        if (origin === 'pool php_admin_value') s.locked = true;
      }
    }
  }
}

/** FastCGI PHP_VALUE / PHP_ADMIN_VALUE: applied without a changeability check; PHP_ADMIN_VALUE locks. */
function applyFastcgiParams(st: RequestIniState, params: NonNullable<RequestLayers['fastcgiParams']>): void {
  for (const param of ['PHP_VALUE', 'PHP_ADMIN_VALUE'] as const) {
    const text = params[param];
    if (text === undefined) continue;
    const origin: Origin = param === 'PHP_VALUE' ? 'fastcgi PHP_VALUE' : 'fastcgi PHP_ADMIN_VALUE';
    const parsed = parseIni(`${text}\n`, { file: `(fastcgi ${param})`, lookup: (n) => st.config.settings.get(n)?.value });
    for (const e of parsed.entries) {
      if (e.offset !== undefined || e.extension) continue;
      const s = st.get(e.key);
      if (!s) {
        st.ignore(e.key, origin, e.file, e.line, 'PHP has no such directive');
        continue;
      }
      if (rejectReason(e.key, e.value, st.config.phpVersion) !== null) {
        st.ignore(e.key, origin, e.file, e.line, 'rejected by the directive');
        continue;
      }
      setFrom(s, { value: e.value, origin, file: e.file, line: e.line });
      if (param === 'PHP_ADMIN_VALUE') s.locked = true;
    }
  }
}

/** [HOST=] then [PATH=] sections (root -> leaf), applied in PHP_INI_SYSTEM mode and locked. */
function applySections(st: RequestIniState, serverName: string | null | undefined, scriptDir: string | null | undefined): void {
  const { config } = st;
  if (serverName) {
    const table = config.hostSections.get(serverName.toLowerCase());
    for (const [k, v] of table ?? []) if (!v.array) st.alter(k, v.value, 'host-section', v.file, v.line, PHP_INI_SYSTEM, true);
  }
  if (scriptDir) {
    const path = scriptDir.endsWith('/') ? scriptDir : scriptDir + '/';
    let at = path.indexOf('/', 1);
    while (at >= 0) {
      const table = config.pathSections.get(path.slice(0, at));
      for (const [k, v] of table ?? []) if (!v.array) st.alter(k, v.value, 'path-section', v.file, v.line, PHP_INI_SYSTEM, true);
      at = path.indexOf('/', at + 1);
    }
  }
}

/** The .user.ini entries in PHP_INI_PERDIR mode: one hash for all files, deeper files overwrite, in first-insertion order. */
function applyUserIni(st: RequestIniState, userIni: readonly IniEntry[]): void {
  const merged = new Map<string, IniEntry>();
  for (const e of userIni) if (e.scope.kind === 'global' && e.offset === undefined && !e.extension) merged.set(e.key, e);
  for (const [k, e] of merged) st.alter(k, e.value, '.user.ini', e.file, e.line, PHP_INI_PERDIR, false);
}

/** ini_set() calls in PHP_INI_USER mode, with what each returned (old value, or false). */
function applyIniSet(st: RequestIniState, calls: ReadonlyArray<[string, string]>): EffectiveValues['iniSetResults'] {
  const iniSetResults: EffectiveValues['iniSetResults'] = [];
  for (const [k, v] of calls) {
    const before = st.get(k)?.value;
    const ok = st.alter(k, v, 'ini_set', null, null, PHP_INI_USER, false);
    iniSetResults.push({ key: k, returned: ok && before !== undefined ? before : false });
  }
  return iniSetResults;
}

/** ini_get() of each reported key (false for unknown ones) and its public setting. */
function reportValues(st: RequestIniState, names: readonly string[]): Pick<EffectiveValues, 'values' | 'settings'> {
  const values: Record<string, string | false> = {};
  const settings: Record<string, EffectiveSetting> = {};
  for (const k of names) {
    const s = st.get(k);
    if (!s) {
      values[k] = false;
      continue;
    }
    values[k] = s.value;
    const { access: _a, ...pub } = s;
    void _a;
    settings[k] = pub;
  }
  return { values, settings };
}

/**
 * Effective values for one request / pool. `keys`: directives to report (default: every key any
 * layer or the configuration mentions plus every session.* directive).
 */
export function effectiveForRequest(config: Configuration, layersIn: RequestLayers = {}, keys?: string[]): EffectiveValues {
  // Only CGI/FastCGI/FPM (sapi_cgi_activate) apply [HOST=]/[PATH=] and .user.ini; the CLI and
  // Apache mod_php ignore them (test/fixtures/ini-cases 23-25, 59). Pools and PHP_VALUE are FPM-only.
  const perDir = config.sapi === 'cgi' || config.sapi === 'fpm';
  const layers: RequestLayers = perDir ? layersIn : { iniSet: layersIn.iniSet };
  const st = new RequestIniState(config);
  if (!perDir) {
    for (const e of layersIn.userIni ?? []) st.ignore(e.key, '.user.ini', e.file, e.line, `the ${config.sapi} SAPI never reads .user.ini`);
  }
  if (layers.pool) applyPool(st, layers.pool);
  if (layers.fastcgiParams) applyFastcgiParams(st, layers.fastcgiParams);
  applySections(st, layers.serverName, layers.scriptDir);
  if (layers.userIni) applyUserIni(st, layers.userIni);
  const iniSetResults = applyIniSet(st, layers.iniSet ?? []);

  const names =
    keys ??
    [
      ...new Set([
        ...config.settings.keys(),
        ...st.state.keys(),
        ...(layers.pool ? [...layers.pool.phpValues, ...layers.pool.phpAdminValues].map((v) => v.key) : []),
        ...(layers.userIni ?? []).map((e) => e.key),
      ]),
    ].sort();
  const { values, settings } = reportValues(st, names);
  const { ignored, fatal } = st;
  return fatal ? { values, settings, iniSetResults, ignored, fatal } : { values, settings, iniSetResults, ignored };
}

/** Pool-level effective values (BUG-14): php.ini < php_value < .user.ini < ini_set, admin locks. */
export function effectiveForPool(
  config: Configuration,
  pool: FpmPool | null,
  extra: Omit<RequestLayers, 'pool'> = {},
  keys?: string[],
): EffectiveValues {
  return effectiveForRequest(config, { ...extra, pool }, keys);
}

export interface UserIniOptions {
  fs: IniFileSystem;
  /** DOCUMENT_ROOT (a trailing '/' is ignored). */
  documentRoot: string;
  /** Directory of the script. */
  scriptDir: string;
  /** user_ini.filename as effective for the request; '' disables (case 58). */
  filename: string;
  env?: Record<string, string | undefined>;
  /** `${NAME}` in .user.ini looks at the main configuration hash: pass config.settings lookup. */
  lookup?: (name: string) => string | undefined;
}

/**
 * Reads the .user.ini files PHP would read for a script (cgi_main.c
 * php_cgi_ini_activate_user_config): every directory from DOCUMENT_ROOT down to the script's
 * directory when the latter starts with the docroot (a string prefix test, as in PHP), otherwise
 * only the script's directory. Returns the entries in application order.
 */
export function collectUserIni(opts: UserIniOptions): { files: string[]; entries: IniEntry[]; errors: IniError[]; partial: boolean } {
  const out = { files: [] as string[], entries: [] as IniEntry[], errors: [] as IniError[], partial: false };
  if (opts.filename === '') return out;
  let docRoot = opts.documentRoot;
  if (docRoot.length > 0 && docRoot.endsWith('/')) docRoot = docRoot.slice(0, -1);
  const path = opts.scriptDir.endsWith('/') ? opts.scriptDir : opts.scriptDir + '/';
  const dirs: string[] = [];
  const sLen = Math.min(path.length, docRoot.length);
  if (path.slice(0, sLen) === docRoot.slice(0, sLen)) {
    let at = path.indexOf('/', docRoot.length);
    while (at >= 0) {
      dirs.push(path.slice(0, at));
      at = path.indexOf('/', at + 1);
    }
  } else {
    dirs.push(path.slice(0, -1));
  }
  for (const dir of dirs) {
    const file = posix.join(dir || '/', opts.filename);
    const st = opts.fs.stat(file);
    if (isFsError(st)) {
      if (st.code !== 'ENOENT' && st.code !== 'ENOTDIR') {
        out.errors.push({ file, line: 0, kind: 'io', message: st.error });
        out.partial = true;
      }
      continue;
    }
    if (st.type !== 'file') continue;
    const data = opts.fs.readFile(file);
    if (isFsError(data)) {
      out.errors.push({ file, line: 0, kind: 'io', message: data.error });
      out.partial = true;
      continue;
    }
    const r = parseIni(data, { file, mode: 'user.ini', env: opts.env, lookup: opts.lookup });
    out.files.push(file);
    out.entries.push(...r.entries);
    out.errors.push(...r.errors);
  }
  return out;
}

/**
 * Effective values for a CGI/FastCGI (or FPM) request: [HOST=] for `serverName`, [PATH=] for the
 * script's directory, then the .user.ini files (read through `fs`, named by the effective
 * user_ini.filename), then `iniSet`.
 */
export function effectiveForCgiRequest(
  config: Configuration,
  req: {
    fs: IniFileSystem;
    scriptFilename: string;
    documentRoot: string;
    serverName?: string;
    pool?: FpmPool | null;
    iniSet?: Array<[string, string]>;
    env?: Record<string, string | undefined>;
  },
  keys?: string[],
): EffectiveValues & { userIniFiles: string[]; errors: IniError[]; partial: boolean } {
  const scriptDir = posix.dirname(req.scriptFilename);
  const base = effectiveForRequest(config, { pool: req.pool, serverName: req.serverName, scriptDir }, ['user_ini.filename']);
  const filename = base.values['user_ini.filename'];
  const u = collectUserIni({
    fs: req.fs,
    documentRoot: req.documentRoot,
    scriptDir,
    filename: typeof filename === 'string' ? filename : '.user.ini',
    env: req.env,
    lookup: (n) => config.settings.get(n)?.value,
  });
  const r = effectiveForRequest(
    config,
    { pool: req.pool, serverName: req.serverName, scriptDir, userIni: u.entries, iniSet: req.iniSet },
    keys,
  );
  return { ...r, userIniFiles: u.files, errors: u.errors, partial: u.partial };
}

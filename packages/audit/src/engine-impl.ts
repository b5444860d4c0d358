/**
 * The IniEngine the CLI uses: packages/php-ini (parseIni, loadConfiguration, iniGetValues,
 * directiveInfo, rejectReason, parseRedisSavePath) reading through an AuditFs, so one code path serves
 * the live host, a --root copy and a collected document.
 */
import {
  BUILTIN_EXTENSIONS,
  PHP_INI_PERDIR,
  PHP_INI_USER,
  directiveInfo,
  iniGetValues,
  knownDirectiveNames,
  loadConfiguration,
  parseIni,
  parseRedisClusterSavePath,
  parseRedisSavePath,
  rejectReason,
  type Configuration,
  type IniEntry,
  type IniError,
  type LoadOptions,
  type Sapi,
  type Setting,
} from '@session-migrate/php-ini';
import { iniFs, type AuditFs } from './vfs.ts';
import type {
  DirectiveFacts,
  HashEntry,
  IniEngine,
  IniSyntaxError,
  LoadSpec,
  LoadedConfiguration,
  RedisSavePathView,
  ValueFinding,
} from './engine.ts';

const SAPI: Record<LoadSpec['sapi'], Sapi> = { cli: 'cli', fpm: 'fpm', apache2: 'apache2handler', cgi: 'cgi' };

const facts = (name: string, version: string, extensions?: string[]): DirectiveFacts | null => {
  const info = directiveInfo(name, {
    phpVersion: version,
    ...(extensions !== undefined ? { extensions } : { extensions: ALL_EXTENSIONS }),
  });
  if (!info.exists) return null;
  const access = info.access ?? 7;
  return {
    default: info.default ?? '',
    changeable: (access & PHP_INI_USER) !== 0 ? 'all' : (access & PHP_INI_PERDIR) !== 0 ? 'perdir' : 'system',
  };
};

/** Every module in php-ini's directive table: a name any of them registers is "a PHP directive". */
const ALL_EXTENSIONS = [
  ...new Set(
    knownDirectiveNames()
      .map((n) => directiveInfo(n).extension ?? 'Core')
      .concat(BUILTIN_EXTENSIONS, ['redis', 'opcache', 'igbinary']),
  ),
];

/**
 * `loadConfiguration` options for one LoadSpec: the SAPI's module name, reads through `fs`, and `-n`
 * when the spec names neither a `-c` file nor a compiled config dir (nothing to search).
 */
function loadOptions(fs: AuditFs, spec: LoadSpec): LoadOptions {
  return {
    sapi: SAPI[spec.sapi],
    fs: iniFs(fs),
    env: spec.env,
    phpVersion: spec.phpVersion,
    buildDefaults: spec.defaults,
    ...(spec.iniFile !== undefined && spec.iniFile !== null ? { iniPath: spec.iniFile } : {}),
    ...(spec.configDir !== undefined ? { configFilePath: spec.configDir } : {}),
    scanDir: spec.scanDir ?? null,
    ...(spec.compiledScanDir !== undefined ? { defaultScanDir: spec.compiledScanDir } : {}),
    noIni: spec.noIni === true || (spec.iniFile === undefined && spec.configDir === undefined),
  };
}

/**
 * The global-scope assignments read from files, in load order: `[PATH=]`/`[HOST=]` entries,
 * `extension=` lines and built-in pseudo-files (`(cli built-in)`, `(-d)`) are left out.
 */
function globalFileEntries(entries: readonly IniEntry[]): HashEntry[] {
  const out: HashEntry[] = [];
  for (const e of entries) {
    if (e.scope.kind !== 'global' || e.extension !== undefined || e.file.startsWith('(')) continue;
    out.push({ key: e.key, value: e.value, file: e.file, line: e.line, ...(e.offset !== undefined ? { offset: e.offset } : {}) });
  }
  return out;
}

/**
 * Splits php-ini's errors: syntax errors stay structured (file, line, message); I/O errors and
 * notices become one `file[:line]: message` line each (an I/O message that already starts with its
 * file is kept as it is).
 */
function sortErrors(errors: readonly IniError[]): { errors: IniSyntaxError[]; problems: string[] } {
  const out: { errors: IniSyntaxError[]; problems: string[] } = { errors: [], problems: [] };
  for (const err of errors) {
    if (err.kind === 'syntax') out.errors.push({ file: err.file, line: err.line, message: err.message });
    else if (err.kind === 'io') out.problems.push(err.message.startsWith(err.file) ? err.message : `${err.file}: ${err.message}`);
    else out.problems.push(`${err.file}${err.line > 0 ? ':' + err.line : ''}: ${err.message}`);
  }
  return out;
}

/** `[PATH=]`/`[HOST=]` tables as HashEntry lists: scalar keys only (`key[x] = v` arrays are dropped). */
function sectionEntries(tables: Map<string, Map<string, Setting>>): Map<string, HashEntry[]> {
  return new Map(
    [...tables].map(([name, t]) => [
      name,
      [...t].filter(([, s]) => s.array === undefined).map(([key, s]): HashEntry => ({ key, value: s.value, file: s.file, line: s.line })),
    ]),
  );
}

/**
 * ini_get() for every name, with the assignment behind it: the file/line of the setting when the
 * value came from a file and PHP accepted it as written (or the name is unknown, value false);
 * null when the compiled default stands (no setting, a built-in pseudo-file, or a rejected value).
 */
function valuesWithOrigin(cfg: Configuration, phpVersion: string): LoadedConfiguration['values'] {
  const out: LoadedConfiguration['values'] = new Map();
  for (const [name, value] of Object.entries(iniGetValues(cfg))) {
    const s = cfg.settings.get(name);
    const fromFile =
      s !== undefined &&
      !s.file.startsWith('(') &&
      value !== false &&
      value === s.value &&
      rejectReason(name, s.value, phpVersion) === null;
    out.set(name, {
      value,
      origin: fromFile ? { file: s.file, line: s.line } : s !== undefined && value === false ? { file: s.file, line: s.line } : null,
    });
  }
  return out;
}

/** IniEngine.load: one SAPI's startup configuration from `fs`, adapted to the audit's shapes. Never throws for bad input. */
function load(fs: AuditFs, spec: LoadSpec): LoadedConfiguration {
  const cfg = loadConfiguration(loadOptions(fs, spec));
  const { errors, problems } = sortErrors(cfg.errors);
  return {
    loadedFile: cfg.loadedFile,
    scannedFiles: cfg.scannedFiles,
    entries: globalFileEntries(cfg.entries),
    errors,
    problems,
    values: valuesWithOrigin(cfg, spec.phpVersion),
    extensions: [...(cfg.context.extensions ?? [])],
    extensionLines: cfg.extensions.filter((e) => e.kind === 'extension').map((e) => ({ value: e.value, name: e.name })),
    pathSections: sectionEntries(cfg.pathSections),
    hostSections: sectionEntries(cfg.hostSections),
  };
}

/**
 * IniEngine.parseText: one ini text (a .user.ini, or an FPM file in `fpm` mode), global-scope
 * entries in order with a `{section}` marker at each section change, and its syntax errors.
 */
function parseText(
  text: string | Uint8Array,
  file: string,
  env: Record<string, string>,
  lookup: Map<string, string>,
  phpVersion: string,
  mode: 'fpm' | 'user.ini',
): ReturnType<IniEngine['parseText']> {
  const parsed = parseIni(text, { file, mode, env, lookup: (n) => lookup.get(n), phpVersion });
  const entries: Array<HashEntry | { section: string; line: number; file: string }> = [];
  let section: string | null = null;
  for (const e of parsed.entries) {
    if (e.section !== section && e.section !== null) entries.push({ section: e.section, line: e.line, file });
    section = e.section;
    if (e.scope.kind !== 'global') continue;
    entries.push({ key: e.key, value: e.value, file, line: e.line, ...(e.offset !== undefined ? { offset: e.offset } : {}) });
  }
  const errors: IniSyntaxError[] = parsed.errors
    .filter((x) => x.kind === 'syntax')
    .map((x) => ({ file, line: x.line, message: x.message }));
  return { entries, errors };
}

/**
 * IniEngine.redis: a phpredis save_path (`rediscluster`: one query string with `seed[]` servers)
 * with secrets reduced to flags. Invalid hosts are dropped; the no-auth / no-tls findings are left
 * out because the audit has its own rules for them (redis-no-auth, redis-no-tls).
 */
function redisView(value: string, handler: 'redis' | 'rediscluster' = 'redis'): RedisSavePathView {
  const r = handler === 'rediscluster' ? parseRedisClusterSavePath(value) : parseRedisSavePath(value);
  return {
    servers: r.hosts
      .filter((h) => !h.invalid)
      .map((h) => ({
        scheme: h.scheme ?? 'tcp',
        host: h.scheme === 'unix' ? (h.socket ?? '') : (h.host ?? ''),
        port: h.port,
        tls: h.scheme === 'tls',
        auth: h.auth !== null,
        ...(h.database !== null ? { database: h.database } : {}),
        prefix: h.prefix,
      })),
    findings: r.findings
      .filter((f) => f.id !== 'save-path-no-auth' && f.id !== 'save-path-no-tls')
      .map((f): ValueFinding => ({ id: f.id, severity: f.severity, message: f.message })),
  };
}

/** Creates the engine: packages/php-ini behind the IniEngine interface (see engine.ts). */
export function defaultEngine(): IniEngine {
  return {
    load,
    parseText,
    accepts(name, value, phpVersion, extensions) {
      return directiveInfo(name, { phpVersion, extensions }).exists && rejectReason(name, value, phpVersion, 'runtime') === null;
    },
    directive: (name, v) => facts(name, v),
    directiveNames: (v) => knownDirectiveNames().filter((n) => facts(n, v) !== null),
    removedIn: (name) => directiveInfo(name).removedIn ?? null,
    deprecation: (name, value, v) => deprecationOf(name, value, v),
    redis: redisView,
  };
}

const truthy = (v: string) => ['on', 'yes', 'true'].includes(v.trim().toLowerCase()) || (parseInt(v, 10) || 0) !== 0;

/**
 * The E_DEPRECATED a value triggers in that version (php-ini's directiveInfo deprecatedIn, and which
 * values count: UPGRADING 8.4 — sid_length != 32, sid_bits_per_character != 4, use_only_cookies off,
 * use_trans_sid on, referer_check non-empty, trans_sid_tags / trans_sid_hosts set at all).
 */
export function deprecationOf(name: string, value: string, version: string): string | null {
  const info = directiveInfo(name, version);
  if (info.deprecatedIn === undefined) return null;
  const [a, b] = version.split('.').map((x) => parseInt(x, 10));
  const [c, d] = info.deprecatedIn.split('.').map((x) => parseInt(x, 10));
  if ((a ?? 0) * 100 + (b ?? 0) < (c ?? 0) * 100 + (d ?? 0)) return null;
  const hit =
    name === 'session.sid_length'
      ? value.trim() !== '32'
      : name === 'session.sid_bits_per_character'
        ? value.trim() !== '4'
        : name === 'session.use_only_cookies'
          ? !truthy(value)
          : name === 'session.use_trans_sid'
            ? truthy(value)
            : name === 'session.referer_check'
              ? value !== ''
              : true;
  return hit ? `${info.note ?? 'deprecated'} (this host: PHP ${version})` : null;
}

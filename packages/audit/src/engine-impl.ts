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
  type Sapi,
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

/** Creates the engine. */
export function defaultEngine(): IniEngine {
  return {
    load(fs: AuditFs, spec: LoadSpec): LoadedConfiguration {
      const cfg = loadConfiguration({
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
      });
      const out: LoadedConfiguration = {
        loadedFile: cfg.loadedFile,
        scannedFiles: cfg.scannedFiles,
        entries: [],
        errors: [],
        problems: [],
        values: new Map(),
        extensions: [...(cfg.context.extensions ?? [])],
      };
      for (const e of cfg.entries) {
        if (e.scope.kind !== 'global' || e.extension !== undefined || e.file.startsWith('(')) continue;
        out.entries.push({
          key: e.key,
          value: e.value,
          file: e.file,
          line: e.line,
          ...(e.offset !== undefined ? { offset: e.offset } : {}),
        });
      }
      for (const err of cfg.errors) {
        if (err.kind === 'syntax') out.errors.push({ file: err.file, line: err.line, message: err.message });
        else if (err.kind === 'io') out.problems.push(err.message.startsWith(err.file) ? err.message : `${err.file}: ${err.message}`);
        else out.problems.push(`${err.file}${err.line > 0 ? ':' + err.line : ''}: ${err.message}`);
      }
      const sections = (m: Map<string, Map<string, { value: string; array?: unknown; file: string; line: number }>>) =>
        new Map(
          [...m].map(([name, t]) => [
            name,
            [...t]
              .filter(([, s]) => s.array === undefined)
              .map(([key, s]): HashEntry => ({ key, value: s.value, file: s.file, line: s.line })),
          ]),
        );
      out.extensionLines = cfg.extensions.filter((e) => e.kind === 'extension').map((e) => ({ value: e.value, name: e.name }));
      out.pathSections = sections(cfg.pathSections);
      out.hostSections = sections(cfg.hostSections);
      const values = iniGetValues(cfg);
      for (const [name, value] of Object.entries(values)) {
        const s = cfg.settings.get(name);
        const fromFile =
          s !== undefined &&
          !s.file.startsWith('(') &&
          value !== false &&
          value === s.value &&
          rejectReason(name, s.value, spec.phpVersion) === null;
        out.values.set(name, {
          value,
          origin: fromFile ? { file: s.file, line: s.line } : s !== undefined && value === false ? { file: s.file, line: s.line } : null,
        });
      }
      return out;
    },
    parseText(text, file, env, lookup, phpVersion, mode) {
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
    },
    accepts(name, value, phpVersion, extensions) {
      return directiveInfo(name, { phpVersion, extensions }).exists && rejectReason(name, value, phpVersion, 'runtime') === null;
    },
    directive: (name, v) => facts(name, v),
    directiveNames: (v) => knownDirectiveNames().filter((n) => facts(n, v) !== null),
    removedIn: (name) => directiveInfo(name).removedIn ?? null,
    deprecation: (name, value, v) => deprecationOf(name, value, v),
    redis: (value: string, handler: 'redis' | 'rediscluster' = 'redis'): RedisSavePathView => {
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
        // no-auth / no-tls are the audit's own rules (redis-no-auth, redis-no-tls).
        findings: r.findings
          .filter((f) => f.id !== 'save-path-no-auth' && f.id !== 'save-path-no-tls')
          .map((f): ValueFinding => ({ id: f.id, severity: f.severity, message: f.message })),
      };
    },
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

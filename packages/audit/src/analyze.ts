/**
 * Builds the audited configurations of one host (or one --ini file) and runs the rules on them.
 * Precedence per configuration, lowest first (test/fixtures/cases BUG-14, php-ini-semantics.md §2, §5-7):
 * compiled defaults < php.ini < conf.d (scan order) < FPM pool php_value/php_flag < pool
 * php_admin_* (locks) < .user.ini (docroot → directory; locked and PHP_INI_SYSTEM keys ignored);
 * for mod_php: php.ini < Apache php_value < php_admin_value (locks) < .htaccess php_value.
 */
import { posix } from 'node:path';
import { DEFAULT_GC_MAXLIFETIME } from '@session-migrate/common';
import { directiveInfo, parseFilesSavePath } from '@session-migrate/php-ini';
import type { AuditedConfig, DirectiveValue, Finding, HostReport, Layer, ResolvedSavePath } from './model.ts';
import type { AuditFs } from './vfs.ts';
import type { HashEntry, IniEngine, IniSyntaxError, LoadedConfiguration, ValueFinding } from './engine.ts';
import { discoverLayouts, parsePhpIniOutput, type SapiLayout } from './layouts.ts';
import { effectivePoolDefines, readFpmConfig } from './pools.ts';
import { mergeApacheDefines, parseApacheText, readApacheConfigs, walkFiles, type ApacheDefine } from './perdir.ts';
import { checkConfig, finding, type SessionFileWalk } from './rules.ts';
import { redactValue } from './output.ts';
import { readApps, type PhpLint } from './app.ts';
import { NO_CLEANERS, appFindings, appRunsUnder, readCleaners, runtimeFindings, runtimeValues, type Cleaners } from './runtime.ts';
import type { AppReport } from './model.ts';

/** What a php binary (live, or recorded by the collect script) says about its CLI configuration. */
export interface PhpProbe {
  version: string;
  /** `php --ini` output. */
  iniOutput: string;
  /** ini_get_all(null, false): directive -> value (null for PHP's null). */
  values: Record<string, string | null>;
  sysTempDir?: string;
}

/** Options of a host audit. */
export interface HostAuditOptions {
  fs: AuditFs;
  engine: IniEngine;
  host: string;
  env: Record<string, string>;
  /** Document roots to look for .user.ini / .htaccess in (host paths). */
  docroots: string[];
  probe?: PhpProbe | null;
  /** PHP version when nothing tells (default 8.2). */
  assumeVersion?: string;
  /** Session files to lstat per configuration (default 20). */
  sampleSize?: number;
  /**
   * SERVER_NAME of the requests the document-root variants stand for: CGI/FPM variants then apply
   * the `[HOST=name]` section whose name equals it lower-cased (php-ini-semantics §5.1). Unset: no
   * [HOST=] section applies.
   */
  serverName?: string;
  /** Application directories whose PHP code is read for run-time session settings (--app). */
  apps?: string[];
  /** Also read the PHP code below each document root (default true; false for collected documents, which hold no code). */
  appsFromDocroots?: boolean;
  /** `php -l` for application files php-parser refuses (app.ts PhpLint); absent: not asked. */
  phpLint?: PhpLint;
}

const DEFAULT_VERSION = '8.2';
const MAX_VARIANTS_PER_ROOT = 50;

/** Line reader with a cache (for rules that look at the raw text of a line). */
function lineReader(fs: AuditFs): (file: string, line: number) => string | null {
  const cache = new Map<string, string[] | null>();
  return (file, line) => {
    let lines = cache.get(file);
    if (lines === undefined) {
      const r = fs.readFile(file);
      lines = r.ok ? r.data.toString('latin1').split(/\r\n|\n|\r/) : null;
      cache.set(file, lines);
    }
    return lines?.[line - 1] ?? null;
  };
}

/** The directive table of a configuration (ini_get() values with the file and line that set them). */
function baseValues(loaded: LoadedConfiguration): Record<string, DirectiveValue> {
  const values: Record<string, DirectiveValue> = {};
  for (const [name, { value, origin }] of loaded.values) {
    const layer: Layer = origin !== null && origin.file === loaded.loadedFile ? 'php.ini' : 'conf.d';
    values[name] = { value, origin: origin === null ? 'default' : { file: origin.file, line: origin.line, layer } };
  }
  return values;
}

/**
 * Applies one override that PHP validates on its own (zend_alter_ini_entry): a rejected value leaves
 * the previous one in place, unknown directives are ignored, and in PERDIR mode (.user.ini, .htaccess)
 * locked and PHP_INI_SYSTEM directives are ignored too.
 */
function applyOverride(
  engine: IniEngine,
  d: Draft,
  key: string,
  value: string,
  file: string,
  line: number,
  layer: Layer,
  opts: { lock: boolean; perdir: boolean },
): void {
  const values = d.cfg.values;
  const version = d.cfg.phpVersion;
  const facts = engine.directive(key, version);
  if (facts === null || !engine.accepts(key, value, version, d.extensions)) return;
  const prev = values[key];
  if (opts.perdir && (facts.changeable === 'system' || prev?.locked === true)) return;
  values[key] = { value, origin: { file, line, layer }, ...(opts.lock || prev?.locked === true ? { locked: true } : {}) };
}

/** Resolves save_handler + save_path into the report shape. */
function resolveSavePath(
  engine: IniEngine,
  values: Record<string, DirectiveValue>,
  sysTemp: string,
): { resolved: ResolvedSavePath; findings: ValueFinding[] } {
  const handler = String(values['session.save_handler']?.value ?? 'files');
  const raw = values['session.save_path']?.value;
  const value = raw === false || raw === undefined ? '' : raw;
  if (handler === 'files') {
    if (value === '') return { resolved: { kind: 'files', depth: 0, mode: '0600', path: sysTemp, systemTemp: true }, findings: [] };
    // the depth must stay below the session ID length PHP generates (session.sid_length)
    const sidLength = Number(values['session.sid_length']?.value);
    const p = parseFilesSavePath(value, Number.isInteger(sidLength) && sidLength > 0 ? sidLength : undefined);
    const findings = p.findings
      .filter((f) => f.id !== 'save-path-empty')
      .map((f) => ({ id: f.id, severity: f.severity, message: f.message }));
    return { resolved: { kind: 'files', depth: p.depth, mode: '0' + p.mode.toString(8), path: p.path, systemTemp: false }, findings };
  }
  if (handler === 'redis' || handler === 'rediscluster') {
    const r = engine.redis(value, handler);
    return { resolved: { kind: 'redis', servers: r.servers }, findings: r.findings };
  }
  return { resolved: { kind: 'other', handler, value: redactValue('session.save_path', value) }, findings: [] };
}

/** Everything needed to finish one configuration. */
interface Draft {
  cfg: AuditedConfig;
  entries: HashEntry[];
  errors: IniSyntaxError[];
  /** Modules loaded: which directives exist. */
  extensions: string[];
  /** [PATH=dir] / [HOST=name] sections of the SAPI's php.ini + scan dir (applied by CGI/FPM variants only). */
  pathSections: Map<string, HashEntry[]>;
  hostSections: Map<string, HashEntry[]>;
  /** apache2: httpd-config php_* lines inside `<Directory>` / `<VirtualHost DocumentRoot>` (applied by document-root variants at or below). */
  apacheScoped?: Array<ApacheDefine & { scope: { kind: 'directory'; path: string } }>;
}

/** The applications' run-time settings in this configuration, and what they mean (runtime.ts). */
interface RuntimeInput {
  apps: AppReport[];
  cleaners: Cleaners;
  webConfigs: boolean;
}

function finish(
  engine: IniEngine,
  fs: AuditFs,
  d: Draft,
  sysTemp: string,
  sampleSize: number,
  lineText: (f: string, l: number) => string | null,
  rt: RuntimeInput,
  walks?: Map<string, SessionFileWalk>,
): Finding[] {
  const { resolved, findings } = resolveSavePath(engine, d.cfg.values, sysTemp);
  d.cfg.savePath = resolved;
  const out = checkConfig(d.cfg, {
    fs,
    engine,
    entries: d.entries,
    syntaxErrors: d.errors,
    savePathFindings: findings,
    lineText,
    sampleSize,
    extensions: d.extensions,
    ...(walks !== undefined ? { walks } : {}),
  });
  // Each application is its own requests: its settings are worked out on their own.
  const apps = rt.apps.filter((a) => appRunsUnder(d.cfg, a, rt.webConfigs) && a.settings.length > 0);
  for (const a of apps) {
    const runtime = runtimeValues(d.cfg, a.settings, engine, d.extensions);
    d.cfg.runtime = [...(d.cfg.runtime ?? []), ...runtime];
    out.push(...runtimeFindings(d.cfg, runtime, rt.cleaners));
  }
  if (apps.length === 0) out.push(...runtimeFindings(d.cfg, [], rt.cleaners));
  return out;
}

/** What auditIniFile audits: one ini file (and scan dirs), as `php -c FILE` would load it. */
export interface IniFileAuditOptions {
  fs: AuditFs;
  engine: IniEngine;
  iniFile: string;
  /** PHP_INI_SCAN_DIR (':'-joined, "" = none); undefined: `-n`, no scanning. */
  scanDirs?: string;
  env: Record<string, string>;
  /** "8.2": picks the version-dependent rules (default 8.2, then reported as assumed). */
  phpVersion?: string;
  /** sys_get_temp_dir() of the host (default /tmp). */
  sysTempDir?: string;
  /** Compiled defaults of the PHP build (`php -n -r` ini_get_all), when known. */
  defaults?: Record<string, string>;
  extensionProbe?: ExtensionProbe;
  /** Application directories to read too (--app). */
  apps?: string[];
  /** `php -l` for application files php-parser refuses (app.ts PhpLint). */
  phpLint?: PhpLint;
}

/**
 * Audits exactly what `php -n -c FILE` (or, with scanDirs, `php -c FILE` with PHP_INI_SCAN_DIR) loads.
 * `scanDirs` is the PHP_INI_SCAN_DIR string (':'-joined, "" = none) or undefined for none; `defaults`
 * are the compiled defaults of the PHP build to compare with (`php -n -r` ini_get_all), when known;
 * `phpVersion` "8.2" picks the version-dependent rules (default 8.2).
 */
export function auditIniFile(opts: IniFileAuditOptions): HostReport {
  const version = opts.phpVersion ?? DEFAULT_VERSION;
  const loaded = loadIniFile(opts, version);
  const cfg = iniFileConfig(opts, loaded, version);
  if (opts.extensionProbe !== undefined && (loaded.extensionLines ?? []).length > 0) applyExtensionProbe(cfg, loaded, opts.extensionProbe);
  const apps = readApps(
    opts.fs,
    (opts.apps ?? []).map((dir) => ({ dir, implied: false })),
    opts.phpLint,
  );
  const findings = finish(
    opts.engine,
    opts.fs,
    {
      cfg,
      entries: loaded.entries,
      errors: loaded.errors,
      extensions: loaded.extensions,
      pathSections: new Map(),
      hostSections: new Map(),
    },
    opts.sysTempDir ?? '/tmp',
    20,
    lineReader(opts.fs),
    { apps, cleaners: NO_CLEANERS, webConfigs: false },
  );
  for (const p of loaded.problems) findings.push(incomplete(cfg.id, p));
  const problems = [...cfg.problems];
  addAppResults(apps, findings, problems);
  return {
    host: 'ini',
    source: opts.iniFile,
    configs: [cfg],
    findings: dedupe(findings),
    partial: cfg.partial || apps.some((a) => a.problems.length > 0),
    problems,
    ...(apps.length > 0 ? { apps } : {}),
  };
}

/** The CLI SAPI's startup from exactly `opts.iniFile` (`-n` unless scan dirs are given). Never throws for bad input. */
function loadIniFile(opts: IniFileAuditOptions, version: string): LoadedConfiguration {
  return opts.engine.load(opts.fs, {
    sapi: 'cli',
    iniFile: opts.iniFile,
    noIni: opts.scanDirs === undefined,
    ...(opts.scanDirs !== undefined ? { scanDir: opts.scanDirs } : {}),
    env: opts.env,
    phpVersion: version,
    defaults: opts.defaults ?? {},
  });
}

/**
 * The one configuration of an ini-file audit (id `ini`, CLI SAPI): its values, files and read
 * problems (partial when any); the save_path is resolved later (finish).
 */
function iniFileConfig(opts: IniFileAuditOptions, loaded: LoadedConfiguration, version: string): AuditedConfig {
  return configOf('ini', 'cli', version, opts.phpVersion !== undefined ? 'php-binary' : 'assumed', loaded);
}

/**
 * A configuration as a SAPI's ini files make it (id, SAPI, PHP version and where it came from): its
 * values, files and read problems (partial when any); the save_path is resolved later.
 */
function configOf(
  id: string,
  sapi: string,
  version: string,
  vsource: AuditedConfig['phpVersionSource'],
  loaded: LoadedConfiguration,
): AuditedConfig {
  return {
    id,
    sapi,
    phpVersion: version,
    phpVersionSource: vsource,
    loadedFile: loaded.loadedFile,
    scannedFiles: loaded.scannedFiles,
    values: baseValues(loaded),
    savePath: { kind: 'other', handler: '', value: '' },
    partial: loaded.problems.length > 0,
    problems: [...loaded.problems],
  };
}

/**
 * Appends each application's findings, then one `incomplete` finding per problem reading it (also
 * added to `problems`), application by application.
 */
function addAppResults(apps: readonly AppReport[], findings: Finding[], problems: string[]): void {
  for (const a of apps) {
    findings.push(...appFindings(a));
    for (const p of a.problems) {
      findings.push(incomplete(null, p));
      problems.push(p);
    }
  }
}

/**
 * What a real php binary reports for a list of `extension=` lines loaded in that order (the CLI runs
 * `php -n -d extension_dir=… -d extension=… … -r ini_get_all()`): the modules that really loaded
 * (lower-cased get_loaded_extensions()) and every directive with its default. null = no php to ask.
 */
export type ExtensionProbe = (
  lines: Array<{ value: string; name: string }>,
  extensionDir: string | null,
) => { loaded: string[]; directives: Record<string, string> } | null;

/**
 * Makes `values` follow the local php for extension directives: a directive of a module that loaded
 * is added (the file's value, else php's default) when php-ini's table does not know it (cli.*,
 * exif.*, phar.*, …); the directives of a module that php could not load (redis without igbinary
 * loaded before it on Debian, a module not installed) disappear, or become false when the file sets them.
 */
function applyExtensionProbe(cfg: AuditedConfig, loaded: LoadedConfiguration, probe: ExtensionProbe): void {
  const lines = loaded.extensionLines ?? [];
  const dir = cfg.values['extension_dir']?.value;
  const r = probe(lines, typeof dir === 'string' && cfg.values['extension_dir']?.origin !== 'default' ? dir : null);
  if (r === null) return;
  const lastSet = new Map<string, HashEntry>();
  for (const e of loaded.entries) if (e.offset === undefined) lastSet.set(e.key, e);
  const failed = new Set(lines.map((l) => l.name.toLowerCase()).filter((n) => !r.loaded.includes(n)));
  for (const k of Object.keys(cfg.values)) {
    const module = directiveInfo(k).extension?.toLowerCase();
    if (module === undefined || !failed.has(module) || k in r.directives) continue;
    const set = lastSet.get(k);
    if (set === undefined) delete cfg.values[k];
    else
      cfg.values[k] = {
        value: false,
        origin: { file: set.file, line: set.line, layer: set.file === loaded.loadedFile ? 'php.ini' : 'conf.d' },
      };
  }
  for (const [k, def] of Object.entries(r.directives)) {
    const cur = cfg.values[k];
    if (cur !== undefined && cur.value !== false) continue;
    const set = lastSet.get(k);
    cfg.values[k] =
      set !== undefined
        ? { value: set.value, origin: { file: set.file, line: set.line, layer: set.file === loaded.loadedFile ? 'php.ini' : 'conf.d' } }
        : { value: def, origin: 'default' };
  }
}

function incomplete(config: string | null, problem: string): Finding {
  return finding('audit-incomplete', config, problem);
}

/** One finding per rule and location (shared php.ini lines are reported once, for the first configuration). */
function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  const out: Finding[] = [];
  for (const f of findings) {
    const key =
      f.file !== undefined &&
      [
        'ini-syntax-error',
        'removed-directive',
        'unknown-directive',
        'deprecated-directive',
        'secret-in-world-readable-file',
        'fpm-invalid-flag',
      ].includes(f.id)
        ? `${f.id}\0${f.file}\0${f.line ?? 0}`
        : `${f.id}\0${f.config}\0${f.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}

/**
 * Audits a host: every standard PHP layout on `fs`, the live or recorded php binary's CLI view, FPM
 * pools, Apache php_* lines and .user.ini/.htaccess files below the document roots.
 */
export function auditHost(opts: HostAuditOptions): HostReport {
  const audit = new HostAudit(opts);
  audit.binaryCli();
  for (const l of audit.layouts) audit.layout(l);
  audit.documentRootVariants();
  return audit.finish();
}

/** One host audit in progress: the configurations found so far and what they report. */
class HostAudit {
  private readonly fs: AuditFs;
  private readonly engine: IniEngine;
  private readonly sampleSize: number;
  private readonly lineText: (file: string, line: number) => string | null;
  private readonly findings: Finding[] = [];
  private readonly problems: string[] = [];
  private readonly drafts: Draft[] = [];
  readonly layouts: SapiLayout[];
  private readonly probe: PhpProbe | null;
  private readonly probeVersion: string | null;
  private readonly sysTemp: string;
  /** PHPRC / PHP_INI_SCAN_DIR of the auditing shell say nothing about how the services start. */
  private readonly layoutEnv: Record<string, string>;
  /** session.save_path of each Debian SAPI's php.ini (+ conf.d), files handler: what sessionclean cleans. */
  private readonly iniSavePaths: Array<{ path: string; gcMaxlifetime: number }> = [];
  /** The config directory the php binary's own CLI view covers (that layout's CLI is not read again). */
  private probeCovers: string | null = null;

  constructor(private readonly opts: HostAuditOptions) {
    this.fs = opts.fs;
    this.engine = opts.engine;
    this.sampleSize = opts.sampleSize ?? 20;
    this.lineText = lineReader(opts.fs);
    this.layouts = discoverLayouts(opts.fs);
    this.probe = opts.probe ?? null;
    this.probeVersion = this.probe === null ? null : (/^(\d+\.\d+)/.exec(this.probe.version)?.[1] ?? null);
    this.sysTemp = this.probe?.sysTempDir || '/tmp';
    this.layoutEnv = Object.fromEntries(Object.entries(opts.env).filter(([k]) => k !== 'PHPRC' && k !== 'PHP_INI_SCAN_DIR'));
  }

  /** The CLI as the php binary sees it (`php --ini`, ini_get_all()), when there is one to ask. */
  binaryCli(): void {
    const { probe, probeVersion } = this;
    const probeIni = probe === null ? null : parsePhpIniOutput(probe.iniOutput);
    if (probe === null || probeIni === null || probeVersion === null) return;
    const loaded = this.engine.load(this.fs, {
      sapi: 'cli',
      iniFile: probeIni.loadedFile,
      ...(probeIni.configPath !== null ? { configDir: probeIni.configPath } : {}),
      scanDir: (probeIni.scanDirs ?? []).join(':'),
      env: this.layoutEnv,
      phpVersion: probeVersion,
      defaults: {},
    });
    const d = newDraft(`${this.opts.host}/cli`, 'cli', probeVersion, 'php-binary', loaded);
    // The binary's own values win (it knows its compiled defaults and loaded extensions).
    // Where our reading differs, PHP is right: a default differs (Debian's save_path), or an extension's
    // directive we do not model; the origin then stays "default" or becomes the binary itself.
    for (const [k, pv] of Object.entries(probe.values)) {
      const ours = d.cfg.values[k];
      const value = pv ?? '';
      if (ours !== undefined && ours.value === value) continue;
      const origin =
        ours === undefined || ours.origin === 'default'
          ? ('default' as const)
          : { file: 'php binary', line: 0, layer: 'php-binary' as const };
      d.cfg.values[k] = { value, origin };
    }
    this.drafts.push(d);
    this.probeCovers = probeIni.configPath;
  }

  /** The configurations of one PHP layout: its SAPI as configured, and for FPM one per pool. */
  layout(l: SapiLayout): void {
    const { opts, fs, probeVersion } = this;
    if (l.sapi === 'cli' && this.probeCovers !== null && this.probeCovers === l.configDir) return;
    const version = l.version ?? probeVersion ?? opts.assumeVersion ?? DEFAULT_VERSION;
    const vsource: AuditedConfig['phpVersionSource'] = l.version !== null ? 'layout' : probeVersion !== null ? 'php-binary' : 'assumed';
    // Compiled defaults differ per build: only Debian patches session.save_path (php-ini-semantics §1).
    const loaded = this.engine.load(fs, {
      sapi: l.sapi,
      configDir: l.configDir,
      compiledScanDir: l.scanDirs[0] ?? '',
      env: this.layoutEnv,
      phpVersion: version,
      defaults: { 'session.save_path': '', ...l.defaults },
    });
    const base = newDraft(`${opts.host}/${l.name}/${l.sapi}`, l.sapi, version, vsource, loaded);
    if (l.layout === 'debian' && l.mainIni !== null && String(base.cfg.values['session.save_handler']?.value ?? 'files') === 'files')
      this.recordDebianSavePath(base);
    if (l.mainIni === null && l.layout === 'docker') {
      this.findings.push(
        finding(
          'php-ini-missing',
          base.cfg.id,
          `no php.ini in ${l.configDir}: ${l.sapi} runs on compiled defaults${fs.stat(`${l.configDir}/php.ini-production`) !== null ? ' (php.ini-production is there but not loaded)' : ''}`,
        ),
      );
    }
    if (l.sapi === 'fpm') this.fpmPools(l, base, version);
    else if (l.sapi === 'apache2') this.apacheServer(base);
    else this.drafts.push(base);
  }

  /** What Debian's sessionclean will clean for this SAPI: its files save_path and gc_maxlifetime. */
  private recordDebianSavePath(base: Draft): void {
    const sp = base.cfg.values['session.save_path']?.value;
    const gc = parseInt(String(base.cfg.values['session.gc_maxlifetime']?.value ?? String(DEFAULT_GC_MAXLIFETIME)), 10);
    if (typeof sp === 'string' && sp !== '')
      this.iniSavePaths.push({ path: parseFilesSavePath(sp).path, gcMaxlifetime: Number.isNaN(gc) ? DEFAULT_GC_MAXLIFETIME : gc });
  }

  /** One configuration per FPM pool: the SAPI's, then the pool's php_value/php_flag and (locking) php_admin_* lines. */
  private fpmPools(l: SapiLayout, base: Draft, version: string): void {
    const { engine, findings } = this;
    const fpm = readFpmConfig(
      this.fs,
      l.fpmConf ?? null,
      l.fpmPoolGlob ?? null,
      this.opts.env,
      version,
      l.layout === 'docker' ? '/usr/local' : '/usr',
    );
    this.problems.push(...fpm.problems);
    for (const e of fpm.errors)
      findings.push(
        finding('ini-syntax-error', base.cfg.id, `${e.message}: php-fpm refuses this line (${e.file}:${e.line})`, {
          file: e.file,
          line: e.line,
        }),
      );
    if (fpm.pools.length === 0) this.drafts.push(base);
    for (const pool of fpm.pools) {
      const d = clone(base, `${base.cfg.id}:${pool.name}`);
      d.cfg.pool = pool.name;
      d.cfg.partial ||= fpm.problems.length > 0;
      for (const def of pool.defines) {
        if (def.value === null) {
          findings.push(
            finding(
              'fpm-invalid-flag',
              d.cfg.id,
              `${def.kind}[${def.key}] at ${def.file}:${def.line} is not a boolean: php-fpm refuses to start`,
              { file: def.file, line: def.line },
            ),
          );
        } else d.entries.push({ key: def.key, value: def.value, file: def.file, line: def.line });
      }
      for (const [key, def] of effectivePoolDefines(pool)) {
        applyOverride(engine, d, key, def.value as string, def.file, def.line, def.locked ? 'pool-admin' : 'pool', {
          lock: def.locked,
          perdir: false,
        });
      }
      if (d.cfg.values['session.save_handler']?.locked === true || d.cfg.values['session.save_path']?.locked === true) {
        const o =
          d.cfg.values['session.save_path']?.locked === true
            ? d.cfg.values['session.save_path']?.origin
            : d.cfg.values['session.save_handler']?.origin;
        findings.push(
          finding(
            'codemod-target-locked',
            d.cfg.id,
            `pool ${pool.name}: ${['session.save_handler', 'session.save_path'].filter((k) => d.cfg.values[k]?.locked === true).join(' and ')} pinned by php_admin_value; ini_set() returns false`,
            o !== undefined && o !== 'default' ? { file: o.file, line: o.line } : undefined,
          ),
        );
      }
      this.drafts.push(d);
    }
  }

  /** mod_php: the server-level php_* lines of httpd's configuration apply to every request. */
  private apacheServer(base: Draft): void {
    const ap = readApacheConfigs(this.fs);
    this.problems.push(...ap.problems);
    // Server-level lines apply to every request; <Directory>/<VirtualHost> lines only to the
    // document-root variants at or below their directory; <Location>/<Files>/regex ones to none.
    base.apacheScoped = ap.defines.filter(
      (x): x is ApacheDefine & { scope: { kind: 'directory'; path: string } } => x.scope?.kind === 'directory',
    );
    for (const [key, def] of mergeApacheDefines(ap.defines.filter((x) => x.scope === undefined || x.scope.kind === 'server'))) {
      base.entries.push({ key, value: def.value, file: def.file, line: def.line });
      applyOverride(this.engine, base, key, def.value, def.file, def.line, def.locked ? 'apache-admin' : 'apache', {
        lock: def.locked,
        perdir: false,
      });
    }
    this.drafts.push(base);
  }

  /** Document-root variants: .user.ini (and [PATH=]/[HOST=]) for cgi/fpm, .htaccess for apache2. */
  documentRootVariants(): void {
    const variants: Draft[] = [];
    for (const root of this.opts.docroots) {
      const st = this.fs.stat(root);
      if (st === null || st.type !== 'dir') {
        this.problems.push(`document root ${root}: not a directory on ${this.fs.label}`);
        continue;
      }
      for (const d of this.drafts) {
        if (d.cfg.sapi === 'cli') continue;
        const dirs = d.cfg.sapi === 'apache2' ? this.htaccessDirs(root, d) : this.userIniDirs(root, d);
        for (const dir of dirs.slice(0, MAX_VARIANTS_PER_ROOT))
          variants.push(perDirVariant(this.opts, d, root, dir, d.cfg.sapi === 'apache2' ? '.htaccess' : perDirFileName(d)));
      }
    }
    this.drafts.push(...variants);
  }

  /** apache2: every directory holding a .htaccess, and those of <Directory> blocks at or below the root, sorted. */
  private htaccessDirs(root: string, d: Draft): string[] {
    const { files, truncated } = walkFiles(this.fs, root, (n) => n === '.htaccess');
    if (truncated) this.problems.push(`${root}: too many directories; .htaccess files read in part`);
    const dirs = files.map((f) => posix.dirname(f));
    const scoped = d.apacheScoped ?? [];
    if (scoped.some((x) => isAtOrBelow(root, x.scope.path))) dirs.unshift(root);
    for (const x of scoped)
      if (x.scope.path !== root && isAtOrBelow(x.scope.path, root) && this.fs.stat(x.scope.path)?.type === 'dir') dirs.push(x.scope.path);
    return [...new Set(dirs)].sort();
  }

  /**
   * CGI/FPM: a variant per directory holding a .user.ini, plus the document root itself and every
   * [PATH=] section directory below it when [PATH=]/[HOST=] sections apply there.
   */
  private userIniDirs(root: string, d: Draft): string[] {
    const name = String(d.cfg.values['user_ini.filename']?.value ?? '.user.ini');
    const dirs: string[] = [];
    if (name !== '' && !name.includes('/')) {
      const { files, truncated } = walkFiles(this.fs, root, (n) => n === name);
      if (truncated) this.problems.push(`${root}: too many directories; ${name} files read in part`);
      dirs.push(...files.map((f) => posix.dirname(f)));
    }
    const sectionDirs = [...d.pathSections.keys()];
    if (
      sectionDirs.some((p) => isAtOrBelow(root, p) || isAtOrBelow(p, root)) ||
      (this.opts.serverName !== undefined && d.hostSections.has(this.opts.serverName.toLowerCase()))
    )
      dirs.unshift(root);
    for (const p of sectionDirs) if (p !== root && isAtOrBelow(p, root) && this.fs.stat(p)?.type === 'dir') dirs.push(p);
    return [...new Set(dirs)];
  }

  /** Application code (--app directories and, unless told otherwise, the document roots), the rules, the report. */
  finish(): HostReport {
    const { opts, fs, findings, problems, drafts } = this;
    const apps = readApps(
      fs,
      [
        ...(opts.apps ?? []).map((dir) => ({ dir, implied: false })),
        ...(opts.appsFromDocroots === false ? [] : opts.docroots.map((dir) => ({ dir, implied: true }))),
      ],
      opts.phpLint,
    );
    const rt: RuntimeInput = {
      apps,
      cleaners: apps.length > 0 ? readCleaners(fs, this.iniSavePaths) : NO_CLEANERS,
      webConfigs: drafts.some((d) => d.cfg.sapi !== 'cli'),
    };
    for (const a of apps) {
      findings.push(...appFindings(a));
      problems.push(...a.problems);
    }
    const configs: AuditedConfig[] = [];
    // One walk of each session directory for every configuration that names it (rules.ts sessionFileWalk).
    const walks = new Map<string, SessionFileWalk>();
    for (const d of drafts) {
      findings.push(...finish(this.engine, fs, d, this.sysTemp, this.sampleSize, this.lineText, rt, walks));
      for (const p of d.cfg.problems) findings.push(incomplete(d.cfg.id, p));
      configs.push(d.cfg);
    }
    if (this.layouts.length === 0 && this.probe === null)
      problems.push(`no PHP configuration found on ${fs.label} (looked for Debian, RHEL, Remi, Alpine and Docker layouts)`);
    for (const p of new Set(problems)) findings.push(incomplete(null, p));
    const partial = problems.length > 0 || configs.some((c) => c.partial);
    return {
      host: opts.host,
      source: fs.label,
      configs,
      findings: dedupe(findings),
      partial,
      problems: [...new Set(problems)],
      ...(apps.length > 0 ? { apps } : {}),
    };
  }
}

/** The per-directory file a CGI/FPM variant reads (user_ini.filename), or null when it names none PHP would read. */
function perDirFileName(d: Draft): string | null {
  const name = String(d.cfg.values['user_ini.filename']?.value ?? '.user.ini');
  return name === '' || name.includes('/') ? null : name;
}

/** A draft of one configuration as the SAPI's ini files make it. */
function newDraft(
  id: string,
  sapi: string,
  version: string,
  vsource: AuditedConfig['phpVersionSource'],
  loaded: LoadedConfiguration,
): Draft {
  return {
    cfg: configOf(id, sapi, version, vsource, loaded),
    entries: [...loaded.entries],
    errors: [...loaded.errors],
    extensions: loaded.extensions,
    pathSections: loaded.pathSections ?? new Map(),
    hostSections: loaded.hostSections ?? new Map(),
  };
}

/** A copy of a draft (its values deep enough to change them) under another configuration ID. */
function clone(d: Draft, id: string): Draft {
  return {
    cfg: {
      ...d.cfg,
      id,
      values: Object.fromEntries(Object.entries(d.cfg.values).map(([k, x]) => [k, { ...x }])),
      problems: [...d.cfg.problems],
    },
    entries: [...d.entries],
    errors: [...d.errors],
    extensions: d.extensions,
    pathSections: d.pathSections,
    hostSections: d.hostSections,
    ...(d.apacheScoped !== undefined ? { apacheScoped: d.apacheScoped } : {}),
  };
}

/**
 * The variant of `base` for requests of scripts in `dir` below the document root `root`: CGI/FPM
 * apply [HOST=]/[PATH=] sections, then the `name` files (.user.ini) from the root down; apache2
 * applies <Directory> blocks and .htaccess files level by level.
 */
function perDirVariant(o: HostAuditOptions, base: Draft, root: string, dir: string, name: string | null): Draft {
  const d = clone(base, `${base.cfg.id}@${dir}`);
  d.cfg.directory = dir;
  if (name !== '.htaccess') applySections(o, d, base, dir);
  if (name === null) return d;
  const chain: string[] = [];
  for (let p = dir; ; p = posix.dirname(p)) {
    chain.unshift(posix.join(p, name));
    if (p === root || p === '/' || !p.startsWith(root)) break;
  }
  applyPerDirChain(o, d, chain, name);
  return d;
}

/**
 * sapi_cgi_activate(): [HOST=SERVER_NAME], then [PATH=] for every prefix of the script's directory
 * ending before a '/', root first (deeper wins); applied at PHP_INI_SYSTEM, so they lock the value
 * against .user.ini and ini_set() (php-ini-semantics §5.1-5.3).
 */
function applySections(o: HostAuditOptions, d: Draft, base: Draft, dir: string): void {
  const apply = (entries: HashEntry[] | undefined, layer: Layer) => {
    for (const e of entries ?? []) {
      d.entries.push(e);
      applyOverride(o.engine, d, e.key, e.value, e.file, e.line, layer, { lock: true, perdir: false });
    }
  };
  if (o.serverName !== undefined) apply(base.hostSections.get(o.serverName.toLowerCase()), 'host-section');
  const path = dir.endsWith('/') ? dir : dir + '/';
  for (let at = path.indexOf('/', 1); at >= 0; at = path.indexOf('/', at + 1))
    apply(base.pathSections.get(path.slice(0, at)), 'path-section');
}

/**
 * The per-directory files of `chain` (root first), each over the last. apache2: httpd merges per
 * directory level, root first: <Directory> blocks of a level (and a <VirtualHost> at its
 * DocumentRoot), then that level's .htaccess; an admin value is never overridden by a non-admin one
 * (apache_config.c php_merge_dir).
 */
function applyPerDirChain(o: HostAuditOptions, d: Draft, chain: string[], name: string): void {
  const { fs, engine } = o;
  const scoped = name === '.htaccess' ? (d.apacheScoped ?? []) : [];
  const applyLevel = (level: string) => {
    for (const def of scoped) {
      if (def.scope.path !== level) continue;
      const admin = def.kind.startsWith('php_admin');
      if (!admin && d.cfg.values[def.key]?.locked === true) continue;
      d.entries.push({ key: def.key, value: def.value, file: def.file, line: def.line });
      applyOverride(engine, d, def.key, def.value, def.file, def.line, admin ? 'apache-admin' : 'apache', { lock: admin, perdir: false });
    }
  };
  const firstInChain = posix.dirname(chain[0]!);
  const above: string[] = [];
  for (let p = posix.dirname(firstInChain); p !== firstInChain; p = posix.dirname(p)) {
    above.unshift(p);
    if (p === '/') break;
  }
  for (const level of above) applyLevel(level);
  for (const f of chain) {
    applyLevel(posix.dirname(f));
    if (fs.lstat(f)?.type !== 'file') continue;
    const r = fs.readFile(f);
    if (!r.ok) {
      d.cfg.problems.push(`${f}: ${r.error}`);
      d.cfg.partial = true;
      continue;
    }
    if (r.data.includes(0)) {
      d.cfg.problems.push(`${f}: binary data (NUL bytes); not read`);
      d.cfg.partial = true;
      continue;
    }
    if (name === '.htaccess') {
      const defs: ApacheDefine[] = parseApacheText(r.data.toString('latin1'), f, true);
      for (const def of defs) {
        d.entries.push({ key: def.key, value: def.value, file: f, line: def.line });
        applyOverride(engine, d, def.key, def.value, f, def.line, 'htaccess', { lock: false, perdir: true });
      }
      continue;
    }
    const lookup = new Map<string, string>();
    const parsed = engine.parseText(r.data, f, o.env, lookup, d.cfg.phpVersion, 'user.ini');
    d.errors.push(...parsed.errors);
    for (const e of parsed.entries) {
      if ('section' in e || e.offset !== undefined) continue;
      d.entries.push(e);
      applyOverride(engine, d, e.key, e.value, f, e.line, 'user.ini', { lock: false, perdir: true });
    }
  }
}

/** True when `path` is `dir` or inside it (per path component: /a/su is not inside /a/sub). */
function isAtOrBelow(path: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir : dir + '/';
  return path === dir || path.startsWith(d);
}

export { discoverLayouts, type SapiLayout };

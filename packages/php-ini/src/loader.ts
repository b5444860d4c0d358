/**
 * Which ini files PHP loads at startup and the resulting configuration hash, as
 * `php [-n] [-c PATH] [-d k=v]...` with PHPRC / PHP_INI_SCAN_DIR would build it.
 *
 * Rules from php-src 8.2 main/php_ini.c `php_init_config()` (checked against test/fixtures/ini-cases):
 * 1. `sapi_module.ini_defaults` first (CLI: display_errors=1).
 * 2. ONE main file: `-c PATH` (a regular file is read; otherwise PATH is a search path), else
 *    (unless -n) the search path `$PHPRC : [cwd, not for CLI] : binary dir : PHP_CONFIG_FILE_PATH`
 *    where PHPRC may also name the file itself. In the search path `php-<sapi>.ini` (php-cli.ini,
 *    php-cgi-fcgi.ini, php-fpm-fcgi.ini) is looked for before `php.ini`, first hit wins (case 38).
 * 3. Unless -n: the scan dirs = `$PHP_INI_SCAN_DIR` if set (even empty: "" disables scanning,
 *    case 34), else the compiled dir; split on ':', an empty element means the compiled dir
 *    (case 33); per dir, names sorted by bytes (alphasort in the C locale, case 30), only names
 *    whose text after the last '.' is exactly "ini", only regular files after following symlinks
 *    (case 31). A file with a syntax error keeps its earlier entries but is left out of the scanned
 *    list (case 36). The [PATH=]/[HOST=] section is reset per file (case 37).
 * 4. CLI built-in entries (php_cli.c HARDCODED_INI), then `-d` entries, parsed like a file (case 40).
 * Later assignments win (case 26). `extension=` lines are queued, not stored (case 44).
 */
import { posix } from 'node:path';
import { envOriginOf, parseIni, type EnvOrigin, type IniEntry, type IniError, type IniValueOrigin } from './parser.ts';
import { SAPI_MODULE_NAMES, startupConstants, type Sapi } from './constants.ts';
import { createRootFs, isFsError, rootExists, type IniFileSystem } from './fs.ts';
import {
  BUILTIN_EXTENSIONS,
  CLI_HARDCODED_INI,
  CLI_INI_DEFAULTS,
  directiveInfo,
  iniGetFor,
  knownDirectiveNames,
  rejectReason,
  type DirectiveContext,
} from './directives.ts';

/** One value in the configuration hash, where it was set and its EnvOrigin. */
export interface Setting extends EnvOrigin {
  /** The string value ('' when `array` is set). */
  value: string;
  /** `key[x] = v` inside a [PATH=]/[HOST=] section: the array PHP stores there, in order. */
  array?: Array<{ offset: string; value: string }>;
  /** File path as PHP sees it, or '(cli built-in)' / '(-d)' / '(sapi default)'. */
  file: string;
  line: number;
}

export interface LoadedExtension {
  kind: 'extension' | 'zend_extension';
  /** As written (`redis`, `redis.so`, `/usr/lib/php/.../redis.so`). */
  value: string;
  /** Normalised module name (`redis`, `opcache`). */
  name: string;
  file: string;
  line: number;
}

export interface Configuration {
  sapi: Sapi;
  phpVersion: string;
  /** php_ini_loaded_file(): the main ini file, or null. */
  loadedFile: string | null;
  /** php_ini_scanned_files(): scan-dir files parsed WITHOUT syntax error, in load order. */
  scannedFiles: string[];
  /** Every file PHP opened (main + scanned, including ones with syntax errors), in order. */
  parsedFiles: string[];
  /** The scan directories in the order they were processed (after ':' expansion); [] = no scanning. */
  scanDirs: string[];
  /** The global configuration hash: key -> last string value (get_cfg_var()). */
  settings: Map<string, Setting>;
  /** `key[] = v` / `key[k] = v` entries (the hash holds an array for these keys). */
  arrays: Map<string, IniEntry[]>;
  /** [PATH=dir] tables (dir without trailing '/'), used only by CGI/FastCGI/FPM. */
  pathSections: Map<string, Map<string, Setting>>;
  /** [HOST=name] tables (name lower-cased). */
  hostSections: Map<string, Map<string, Setting>>;
  extensions: LoadedExtension[];
  /** Every entry in load order (to show overridden assignments). */
  entries: IniEntry[];
  errors: IniError[];
  /** True when something could not be read, so the result may differ from what PHP sees. */
  partial: boolean;
  /** Context for directiveInfo()/iniGetValues(): version, loaded modules, sapi, build defaults. */
  context: DirectiveContext;
}

export interface LoadOptions {
  /** SAPI whose startup to reproduce (default 'cli'). */
  sapi?: Sapi;
  /** `-c PATH`: a file, or a directory/search path. */
  iniPath?: string | null;
  /** `-n`: no search path and no scan dir (a `-c` file is still read, case 35). */
  noIni?: boolean;
  /**
   * PHP_INI_SCAN_DIR. undefined: taken from `env` if the variable is present there; null: unset
   * (the compiled dir is used); '' disables scanning; ':'-joined list, empty element = compiled dir.
   */
  scanDir?: string | null;
  /** Compiled --with-config-file-scan-dir (Debian CLI: /etc/php/8.2/cli/conf.d). */
  defaultScanDir?: string;
  /** Compiled --with-config-file-path (Debian CLI: /etc/php/8.2/cli). */
  configFilePath?: string;
  /** Directory of the PHP binary (part of the search path); default none. */
  binaryDir?: string | null;
  /** Current directory (relative paths; CGI/FPM search it too). Default '/'. */
  cwd?: string;
  /** `-d` options in order: ['session.name=X', 'display_errors'] or {name: value}. */
  defines?: string[] | Record<string, string>;
  /** Environment: PHPRC, PHP_INI_SCAN_DIR and `${VAR}` values. */
  env?: Record<string, string | undefined>;
  /** Audit a copied filesystem: every path is looked up under this directory. */
  root?: string;
  /** File access (default: createRootFs({ root })). */
  fs?: IniFileSystem;
  /** PHP version to model (default '8.2'). */
  phpVersion?: string;
  /** Compiled-in modules (default: Debian php8.2 `php -n -m`). */
  builtinExtensions?: string[];
  /** Build-specific compiled defaults, e.g. what `php -i` reported ({'session.save_path': ''}). */
  buildDefaults?: Record<string, string>;
  /** Constants available to ini values (default startupConstants({sapi, phpVersion})). */
  constants?: Record<string, string>;
}

/** `extension=` value -> module name: basename, without `php_` prefix and `.so`/`.dll` suffix. */
export function extensionModuleName(value: string): string {
  let n = posix.basename(value.replace(/\\/g, '/'));
  n = n.replace(/\.(so|dll)$/i, '').replace(/^php_/i, '');
  const lower = n.toLowerCase();
  if (lower === 'opcache' || lower === 'zend_opcache') return 'opcache';
  return n;
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** `-d` argument -> ini line, as php_cli.c does (non-alphanumeric values get double quotes). */
export function defineToIniLine(arg: string): string {
  const eq = arg.indexOf('=');
  if (eq < 0) return `${arg}=1\n`;
  const val = arg.slice(eq + 1);
  const first = val.charAt(0);
  if (val !== '' && !/^[A-Za-z0-9]$/.test(first) && first !== '"' && first !== "'") return `${arg.slice(0, eq + 1)}"${val}"\n`;
  return `${arg}\n`;
}

/**
 * Reproduces PHP's startup configuration (php_init_config, in the order of the module comment).
 * Never throws for bad input: unreadable files, symlink loops, a missing root are recorded in
 * `errors` and make `partial` true.
 */
export function loadConfiguration(opts: LoadOptions = {}): Configuration {
  const startup = new Startup(opts);
  if (!startup.rootExists()) return startup.cfg;
  startup.sapiDefaults();
  startup.mainFile();
  startup.scanDirectories();
  startup.builtinsAndDefines();
  return startup.finish();
}

/** One run of php_init_config: the configuration being built and how files are read into it. */
class Startup {
  readonly cfg: Configuration;
  private readonly sapi: Sapi;
  private readonly phpVersion: string;
  private readonly env: Record<string, string | undefined>;
  private readonly configFilePath: string;
  private readonly defaultScanDir: string;
  private readonly cwd: string;
  private readonly constants: Record<string, string>;
  private fs: IniFileSystem | null = null;

  constructor(private readonly opts: LoadOptions) {
    const sapi: Sapi = opts.sapi ?? 'cli';
    const phpVersion = opts.phpVersion ?? '8.2';
    const sapiDir = sapi === 'cli' ? 'cli' : sapi === 'cgi' ? 'cgi' : sapi === 'fpm' ? 'fpm' : 'apache2';
    this.sapi = sapi;
    this.phpVersion = phpVersion;
    this.env = opts.env ?? {};
    this.configFilePath = opts.configFilePath ?? `/etc/php/8.2/${sapiDir}`;
    this.defaultScanDir = opts.defaultScanDir ?? `/etc/php/8.2/${sapiDir}/conf.d`;
    this.cwd = opts.cwd ?? '/';
    this.constants = opts.constants ?? startupConstants({ sapi, phpVersion: /^\d+\.\d+\.\d+/.test(phpVersion) ? phpVersion : undefined });
    this.cfg = {
      sapi,
      phpVersion,
      loadedFile: null,
      scannedFiles: [],
      parsedFiles: [],
      scanDirs: [],
      settings: new Map(),
      arrays: new Map(),
      pathSections: new Map(),
      hostSections: new Map(),
      extensions: [],
      entries: [],
      errors: [],
      partial: false,
      context: { phpVersion, sapi, extensions: [...(opts.builtinExtensions ?? BUILTIN_EXTENSIONS)], defaults: opts.buildDefaults },
    };
  }

  /** False (and recorded) when a `root` to audit is given and is not a directory. */
  rootExists(): boolean {
    const { opts, cfg } = this;
    if (opts.root !== undefined && !opts.fs && !rootExists(opts.root)) {
      cfg.errors.push({
        file: opts.root,
        line: 0,
        kind: 'io',
        message: `root directory ${opts.root} does not exist or is not a directory`,
      });
      cfg.partial = true;
      return false;
    }
    this.fs = opts.fs ?? createRootFs({ root: opts.root });
    return true;
  }

  /** 1. sapi_module.ini_defaults (the CLI: display_errors=1). */
  sapiDefaults(): void {
    if (this.sapi !== 'cli') return;
    for (const [k, v] of Object.entries(CLI_INI_DEFAULTS)) this.cfg.settings.set(k, { value: v, file: '(sapi default)', line: 0 });
  }

  /** 2. The one main file: `-c`, else PHPRC (a file or a directory), the cwd (not the CLI), the binary's dir, the compiled path. */
  mainFile(): void {
    const { opts, env, sapi } = this;
    let fileName: string | null = null;
    let searchPath: string | null = null;
    if (opts.iniPath !== undefined && opts.iniPath !== null) {
      fileName = opts.iniPath;
      searchPath = opts.iniPath;
    } else if (!opts.noIni) {
      const parts: string[] = [];
      const phprc = env.PHPRC;
      if (phprc) {
        parts.push(phprc);
        fileName = phprc;
      }
      if (sapi !== 'cli') parts.push(this.cwd);
      if (opts.binaryDir) parts.push(opts.binaryDir);
      parts.push(this.configFilePath);
      searchPath = parts.join(':');
    }
    if (searchPath === null) return;
    const found = this.findMainFile(fileName, searchPath);
    if (found) {
      this.cfg.loadedFile = found;
      this.loadFile(found);
    }
  }

  /** The file itself when `fileName` names a regular file, else `php-<sapi>.ini` then `php.ini` along `searchPath`. */
  private findMainFile(fileName: string | null, searchPath: string): string | null {
    if (fileName && this.isRegular(this.abs(fileName)) === true) return this.abs(fileName);
    for (const name of [`php-${SAPI_MODULE_NAMES[this.sapi]}.ini`, 'php.ini']) {
      for (const dir of searchPath.split(':')) {
        if (dir === '') break; // php_fopen_with_path stops at an empty element
        const p = this.abs(`${dir}/${name}`);
        if (this.isRegular(p) === true) return p;
      }
    }
    return null;
  }

  /** 3. The scan directories (PHP_INI_SCAN_DIR, else the compiled one): their `*.ini` files in byte order. */
  scanDirectories(): void {
    const { opts, env, cfg } = this;
    let scanVar: string | null;
    if (opts.scanDir !== undefined) scanVar = opts.scanDir;
    else
      scanVar =
        Object.prototype.hasOwnProperty.call(env, 'PHP_INI_SCAN_DIR') && env.PHP_INI_SCAN_DIR !== undefined ? env.PHP_INI_SCAN_DIR : null;
    const scanPath = scanVar ?? this.defaultScanDir;
    if (opts.noIni || scanPath.length === 0) return;
    for (const el of scanPath.split(':')) {
      const dir = el === '' ? this.defaultScanDir : el;
      if (dir.length === 0) continue;
      cfg.scanDirs.push(dir);
      this.scanDirectory(dir);
    }
  }

  private scanDirectory(dir: string): void {
    const { cfg } = this;
    const names = this.fs!.readDir(this.abs(dir));
    if (isFsError(names)) {
      if (names.code !== 'ENOENT' && names.code !== 'ENOTDIR') {
        cfg.errors.push({ file: dir, line: 0, kind: 'io', message: names.error });
        cfg.partial = true;
      }
      return;
    }
    names.sort(byteCompare);
    for (const name of names) {
      const dot = name.lastIndexOf('.');
      if (dot < 0 || name.slice(dot) !== '.ini') continue;
      const file = dir.endsWith('/') ? dir + name : `${dir}/${name}`;
      if (this.isRegular(this.abs(file)) !== true) continue;
      if (this.loadFile(file)) cfg.scannedFiles.push(file);
    }
  }

  /** 4. The CLI's hard-coded entries, then the `-d` options, each parsed like a file. */
  builtinsAndDefines(): void {
    const { opts, env, constants, phpVersion, cfg } = this;
    const { lookup, lookupOrigin } = this;
    if (this.sapi === 'cli') {
      this.apply(parseIni(CLI_HARDCODED_INI, { file: '(cli built-in)', env, lookup, lookupOrigin, constants }).entries);
    }
    const defines = Array.isArray(opts.defines) ? opts.defines : Object.entries(opts.defines ?? {}).map(([k, v]) => `${k}=${v}`);
    if (defines.length > 0) {
      const r = parseIni(defines.map(defineToIniLine).join(''), { file: '(-d)', env, lookup, lookupOrigin, constants, phpVersion });
      this.apply(r.entries);
      cfg.errors.push(...r.errors);
    }
  }

  /** The loaded extensions join the context (their directives exist from now on). */
  finish(): Configuration {
    const { cfg } = this;
    cfg.context = { ...cfg.context, extensions: [...(cfg.context.extensions ?? []), ...cfg.extensions.map((e) => e.name)] };
    // NB: `session.save_handler = user` prints "Fatal error: PHP Startup: ..." but PHP 8.2 keeps
    // running with the default (php-cgi 8.2.36): see startupRejections().
    return cfg;
  }

  private abs(p: string): string {
    return posix.normalize(posix.isAbsolute(p) ? p : posix.join(this.cwd, p));
  }

  /** `${NAME}` from the configuration so far (zend_ini_get_var's first place to look). */
  private readonly lookup = (name: string): string | undefined => {
    const { cfg } = this;
    if (cfg.arrays.has(name)) {
      cfg.errors.push({
        file: '',
        line: 0,
        kind: 'notice',
        message: `\${${name}} names an array (${name}[]): PHP 8.2 aborts at startup ("Out of memory")`,
      });
      return '';
    }
    return cfg.settings.get(name)?.value;
  };

  /** Where a key of the configuration so far was set and the environment variables of its value (ParseIniOptions.lookupOrigin). */
  private readonly lookupOrigin = (name: string): IniValueOrigin | undefined => this.cfg.settings.get(name);

  /** php_ini_parser_cb: entries into the configuration hash, the [PATH=]/[HOST=] tables or the extension queue; later ones win. */
  private apply(entries: IniEntry[]): void {
    const { cfg } = this;
    for (const e of entries) {
      cfg.entries.push(e);
      if (e.extension) {
        cfg.extensions.push({ kind: e.extension, value: e.value, name: extensionModuleName(e.value), file: e.file, line: e.line });
        continue;
      }
      const setting: Setting = {
        value: e.value,
        file: e.file,
        line: e.line,
        ...envOriginOf(e),
      };
      if (e.scope.kind !== 'global') {
        const table = e.scope.kind === 'path' ? cfg.pathSections : cfg.hostSections;
        let m = table.get(e.scope.name);
        if (!m) table.set(e.scope.name, (m = new Map()));
        if (e.offset === undefined) m.set(e.key, setting);
        else {
          const prev = m.get(e.key);
          m.set(e.key, { value: '', file: e.file, line: e.line, array: [...(prev?.array ?? []), { offset: e.offset, value: e.value }] });
        }
        continue;
      }
      if (e.offset !== undefined) {
        const list = cfg.arrays.get(e.key) ?? [];
        list.push(e);
        cfg.arrays.set(e.key, list);
        cfg.settings.delete(e.key);
        if (directiveInfo(e.key, cfg.context).exists) {
          cfg.errors.push({
            file: e.file,
            line: e.line,
            kind: 'notice',
            message: `${e.key}[] makes PHP 8.2 abort at startup ("Out of memory"): a directive cannot be an array`,
          });
        }
        continue;
      }
      cfg.arrays.delete(e.key);
      cfg.settings.set(e.key, setting);
    }
  }

  /** Reads and parses one file; returns true when it parsed without syntax error. */
  private loadFile(path: string): boolean {
    const { cfg } = this;
    const data = this.fs!.readFile(path);
    if (isFsError(data)) {
      cfg.errors.push({ file: path, line: 0, kind: 'io', message: data.error });
      cfg.partial = true;
      return false;
    }
    cfg.parsedFiles.push(path);
    const r = parseIni(data, {
      file: path,
      mode: 'php.ini',
      env: this.env,
      lookup: this.lookup,
      lookupOrigin: this.lookupOrigin,
      constants: this.constants,
      phpVersion: this.phpVersion,
    });
    for (const sec of r.sections) {
      // php_ini_parser_cb creates the [PATH=]/[HOST=] table when it sees the header
      if (sec.scope.kind === 'path' && !cfg.pathSections.has(sec.scope.name)) cfg.pathSections.set(sec.scope.name, new Map());
      if (sec.scope.kind === 'host' && !cfg.hostSections.has(sec.scope.name)) cfg.hostSections.set(sec.scope.name, new Map());
    }
    this.apply(r.entries);
    cfg.errors.push(...r.errors);
    return !r.errors.some((e) => e.kind === 'syntax');
  }

  /** True for a regular file (after links), false when absent, 'error' (recorded) when it cannot be told. */
  private isRegular(path: string): boolean | 'error' {
    const { cfg } = this;
    const st = this.fs!.stat(path);
    if (isFsError(st)) {
      if (st.code === 'ENOENT' || st.code === 'ENOTDIR') return false;
      cfg.errors.push({ file: path, line: 0, kind: 'io', message: st.error });
      cfg.partial = true;
      return 'error';
    }
    return st.type === 'file';
  }
}

/**
 * The strings `ini_get()` returns after startup: for each key, the configuration value when the
 * directive exists and its validator accepts it, else the compiled default; `false` for names PHP
 * does not know. Without `keys`: every directive PHP knows plus every key set in the files.
 */
export function iniGetValues(config: Configuration, keys?: string[], phpVersion?: string): Record<string, string | false> {
  const ctx: DirectiveContext = { ...config.context, phpVersion: phpVersion ?? config.context.phpVersion };
  const names = keys ?? [...new Set([...knownDirectiveNames(), ...config.settings.keys()])].sort();
  const out: Record<string, string | false> = {};
  for (const k of names) out[k] = iniGetFor(k, config.settings.get(k)?.value, ctx);
  return out;
}

/** Startup warnings PHP prints for rejected values (the compiled default stays). */
export function startupRejections(config: Configuration): Array<{ key: string; setting: Setting; message: string }> {
  const out: Array<{ key: string; setting: Setting; message: string }> = [];
  for (const [key, setting] of config.settings) {
    if (!directiveInfo(key, config.context).exists) continue;
    const why = rejectReason(key, setting.value, config.phpVersion);
    if (why) out.push({ key, setting, message: why });
  }
  return out;
}

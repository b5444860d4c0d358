/**
 * Where PHP's configuration lives on the standard layouts (test/fixtures/reference/php-ini-semantics.md §9),
 * found by looking at the audited filesystem only: Debian/Ubuntu, RHEL-family (+ Remi SCL), Alpine and
 * the official Docker image. For each SAPI: the main ini file PHP would load (php-<sapi>.ini before
 * php.ini, php-src main/php_ini.c), its scan dir, and the php-fpm.conf for the fpm SAPI.
 */
import { posix } from 'node:path';
import type { AuditFs } from './vfs.ts';

/** One SAPI installation found on disk. */
export interface SapiLayout {
  layout: 'debian' | 'rhel' | 'remi' | 'alpine' | 'docker';
  sapi: 'cli' | 'fpm' | 'apache2' | 'cgi';
  /** "8.2" when the layout says so, else null. */
  version: string | null;
  /** Directory PHP searches for the main ini file (its compiled --with-config-file-path). */
  configDir: string;
  /** The main ini file PHP loads, or null when there is none (compiled defaults). */
  mainIni: string | null;
  /** Scan directories (compiled --with-config-file-scan-dir), in order. */
  scanDirs: string[];
  /** php-fpm.conf for the fpm SAPI. */
  fpmConf?: string;
  /** Pool directory to glob when there is no php-fpm.conf. */
  fpmPoolGlob?: string;
  /** Compiled defaults that differ from upstream (Debian patches session.save_path). */
  defaults: Record<string, string>;
  /** Prefix for configuration IDs: `debian-8.2`, `rhel`, `docker`. */
  name: string;
}

/** php_module name per SAPI, used for the php-<sapi>.ini file name (php-src main/php_ini.c). */
const SAPI_MODULE: Record<SapiLayout['sapi'], string> = { cli: 'cli', fpm: 'fpm-fcgi', apache2: 'apache2handler', cgi: 'cgi-fcgi' };

/** PHP extension API number (the extension dir name) to PHP version. */
const API_VERSIONS: Record<string, string> = {
  '20170718': '7.2',
  '20180731': '7.3',
  '20190902': '7.4',
  '20200930': '8.0',
  '20210902': '8.1',
  '20220829': '8.2',
  '20230831': '8.3',
  '20240924': '8.4',
  '20250925': '8.5',
};

const isDir = (fs: AuditFs, p: string) => fs.stat(p)?.type === 'dir';
const isFile = (fs: AuditFs, p: string) => fs.stat(p)?.type === 'file';

/** The main ini in `dir` as PHP picks it: php-<sapi module>.ini first, then php.ini; null if neither. */
export function mainIniIn(fs: AuditFs, dir: string, sapi: SapiLayout['sapi']): string | null {
  for (const name of [`php-${SAPI_MODULE[sapi]}.ini`, 'php.ini']) {
    const p = posix.join(dir, name);
    if (isFile(fs, p)) return p;
  }
  return null;
}

function versionFromApiDir(fs: AuditFs, dir: string): string | null {
  for (const n of (fs.readdir(dir) ?? []).sort()) {
    const m = /(\d{8})$/.exec(n);
    if (m !== null && API_VERSIONS[m[1] as string] !== undefined) return API_VERSIONS[m[1] as string] as string;
  }
  return null;
}

/**
 * Finds every standard PHP installation on `fs`.
 * @returns one entry per SAPI and version, Debian versions in ascending order.
 */
export function discoverLayouts(fs: AuditFs): SapiLayout[] {
  const out: SapiLayout[] = [];
  for (const family of [debianLayouts, rhelLayouts, remiLayouts, alpineLayouts, dockerLayouts]) family(fs, out);
  return out;
}

/** Debian / Ubuntu: /etc/php/<ver>/<sapi>/php.ini + conf.d; compiled save_path /var/lib/php/sessions. */
function debianLayouts(fs: AuditFs, out: SapiLayout[]): void {
  for (const ver of (fs.readdir('/etc/php') ?? []).filter((v) => /^\d+\.\d+$/.test(v)).sort()) {
    for (const sapi of ['cli', 'fpm', 'apache2', 'cgi'] as const) {
      const dir = `/etc/php/${ver}/${sapi}`;
      if (!isDir(fs, dir)) continue;
      out.push({
        layout: 'debian',
        sapi,
        version: ver,
        configDir: dir,
        mainIni: mainIniIn(fs, dir, sapi),
        scanDirs: [`${dir}/conf.d`],
        ...(sapi === 'fpm' ? { fpmConf: `${dir}/php-fpm.conf`, fpmPoolGlob: `${dir}/pool.d/*.conf` } : {}),
        defaults: { 'session.save_path': '/var/lib/php/sessions' },
        name: `debian-${ver}`,
      });
    }
  }
}

/** RHEL family: /etc/php.ini + /etc/php.d, php-fpm.conf + php-fpm.d; mod_php reads the same files. */
function rhelLayouts(fs: AuditFs, out: SapiLayout[]): void {
  if (isFile(fs, '/etc/php.ini') || isDir(fs, '/etc/php.d')) {
    const version: string | null = null;
    const sapis: SapiLayout['sapi'][] = ['cli'];
    if (isFile(fs, '/etc/php-fpm.conf') || isDir(fs, '/etc/php-fpm.d')) sapis.push('fpm');
    if (isDir(fs, '/etc/httpd')) sapis.push('apache2');
    for (const sapi of sapis) {
      out.push({
        layout: 'rhel',
        sapi,
        version,
        configDir: '/etc',
        mainIni: mainIniIn(fs, '/etc', sapi),
        scanDirs: ['/etc/php.d'],
        ...(sapi === 'fpm' ? { fpmConf: '/etc/php-fpm.conf', fpmPoolGlob: '/etc/php-fpm.d/*.conf' } : {}),
        defaults: {},
        name: 'rhel',
      });
    }
  }
}

/** Remi SCL: /etc/opt/remi/phpXY/{php.ini,php.d,php-fpm.conf,php-fpm.d}. */
function remiLayouts(fs: AuditFs, out: SapiLayout[]): void {
  for (const d of (fs.readdir('/etc/opt/remi') ?? []).filter((v) => /^php\d\d+$/.test(v)).sort()) {
    const base = `/etc/opt/remi/${d}`;
    const digits = d.slice(3);
    const version = `${digits[0]}.${digits.slice(1)}`;
    const sapis: SapiLayout['sapi'][] = ['cli'];
    if (isFile(fs, `${base}/php-fpm.conf`) || isDir(fs, `${base}/php-fpm.d`)) sapis.push('fpm');
    for (const sapi of sapis) {
      out.push({
        layout: 'remi',
        sapi,
        version,
        configDir: base,
        mainIni: mainIniIn(fs, base, sapi),
        scanDirs: [`${base}/php.d`],
        ...(sapi === 'fpm' ? { fpmConf: `${base}/php-fpm.conf`, fpmPoolGlob: `${base}/php-fpm.d/*.conf` } : {}),
        defaults: {},
        name: `remi-${d}`,
      });
    }
  }
}

/** Alpine: /etc/php<digits>/php.ini + conf.d, php-fpm.conf + php-fpm.d. */
function alpineLayouts(fs: AuditFs, out: SapiLayout[]): void {
  for (const d of (fs.readdir('/etc') ?? []).filter((v) => /^php\d+$/.test(v)).sort()) {
    const base = `/etc/${d}`;
    if (!isDir(fs, base)) continue;
    const digits = d.slice(3);
    const version = digits.length >= 2 ? `${digits[0]}.${digits.slice(1)}` : null;
    const sapis: SapiLayout['sapi'][] = ['cli'];
    if (isFile(fs, `${base}/php-fpm.conf`) || isDir(fs, `${base}/php-fpm.d`)) sapis.push('fpm');
    for (const sapi of sapis) {
      out.push({
        layout: 'alpine',
        sapi,
        version,
        configDir: base,
        mainIni: mainIniIn(fs, base, sapi),
        scanDirs: [`${base}/conf.d`],
        ...(sapi === 'fpm' ? { fpmConf: `${base}/php-fpm.conf`, fpmPoolGlob: `${base}/php-fpm.d/*.conf` } : {}),
        defaults: {},
        name: `alpine-${d}`,
      });
    }
  }
}

/** Official Docker image: PHP_INI_DIR=/usr/local/etc/php, no php.ini by default. */
function dockerLayouts(fs: AuditFs, out: SapiLayout[]): void {
  if (isDir(fs, '/usr/local/etc/php')) {
    const base = '/usr/local/etc/php';
    const version = versionFromApiDir(fs, '/usr/local/lib/php/extensions');
    const sapis: SapiLayout['sapi'][] = ['cli'];
    if (isFile(fs, '/usr/local/etc/php-fpm.conf') || isDir(fs, '/usr/local/etc/php-fpm.d')) sapis.push('fpm');
    if (isDir(fs, '/etc/apache2') && !isDir(fs, '/etc/php')) sapis.push('apache2');
    for (const sapi of sapis) {
      out.push({
        layout: 'docker',
        sapi,
        version,
        configDir: base,
        mainIni: mainIniIn(fs, base, sapi),
        scanDirs: [`${base}/conf.d`],
        ...(sapi === 'fpm' ? { fpmConf: '/usr/local/etc/php-fpm.conf', fpmPoolGlob: '/usr/local/etc/php-fpm.d/*.conf' } : {}),
        defaults: {},
        name: 'docker',
      });
    }
  }
}

/** The php --ini report of a binary (`php --ini` output, php-src sapi/cli/php_cli.c). */
export interface PhpIniReport {
  configPath: string | null;
  loadedFile: string | null;
  scanDirs: string[] | null;
  scannedFiles: string[];
}

/**
 * Parses `php --ini` output.
 * @throws nothing: unknown lines are ignored; missing fields come back null/empty.
 */
export function parsePhpIniOutput(text: string): PhpIniReport {
  const get = (label: string): string | null => {
    const m = new RegExp(`^${label.replace(/[()]/g, '\\$&')}:[ \\t]*(.*)$`, 'm').exec(text);
    return m === null ? null : (m[1] as string).trim();
  };
  const none = (v: string | null) => (v === null || v === '(none)' ? null : v);
  const scan = none(get('Scan for additional .ini files in'));
  const scannedStart = text.indexOf('Additional .ini files parsed:');
  let scannedFiles: string[] = [];
  if (scannedStart >= 0) {
    const rest = text.slice(scannedStart + 'Additional .ini files parsed:'.length);
    const joined = rest
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .join('');
    scannedFiles =
      joined === '(none)'
        ? []
        : joined
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '');
  }
  return {
    configPath: none(get('Configuration File (php.ini) Path')),
    loadedFile: none(get('Loaded Configuration File')),
    scanDirs: scan === null ? null : scan.split(':'),
    scannedFiles,
  };
}

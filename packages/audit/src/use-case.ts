/**
 * The audit use case behind `session-migrate audit`: finds the effective PHP session configuration of
 * one ini file (`--ini`), of documents written by the collect script (`--from-collected`), of a
 * mounted filesystem (`--root`) or of this host, and returns one HostReport per host audited, printing
 * nothing (renderTable, renderJson, renderSarif and renderFleet in output.ts print them). Also the
 * probes of a local php binary the live-host and `--ini` audits ask (`php --ini`, `php -n`,
 * ini_get_all()).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { UserFacingError, describeFsError, printable, severityRank, type Severity } from '@session-migrate/common';
import { PhpLintUnavailable, lintPhpText } from '@session-migrate/codemod-php/php-files';
import { auditHost, auditIniFile, type ExtensionProbe, type PhpProbe } from './analyze.ts';
import type { PhpLint } from './app.ts';
import { MAX_COLLECTED_BYTES, parseCollected } from './collected.ts';
import { defaultEngine } from './engine-impl.ts';
import type { IniEngine } from './engine.ts';
import type { HostReport } from './model.ts';
import { loadPhpParser } from './php-parser.ts';
import { RootFs } from './vfs.ts';

const PROBE_PHP =
  'echo json_encode(array("version" => PHP_VERSION, "sys_temp_dir" => sys_get_temp_dir(), "values" => ini_get_all(null, false)), JSON_INVALID_UTF8_SUBSTITUTE | JSON_PARTIAL_OUTPUT_ON_ERROR);';

/**
 * Asks a php binary for its CLI configuration (`php --ini`, ini_get_all()).
 * @returns null when there is no such binary; throws UserFacingError when it runs but answers nonsense.
 */
export function probePhp(php: string): PhpProbe | null {
  const run = (args: string[]) =>
    execFileSync(php, args, { encoding: 'utf8', timeout: 20_000, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
  let iniOutput: string;
  let json: string;
  try {
    iniOutput = run(['--ini']);
    json = run(['-r', PROBE_PHP]);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return null;
    throw new UserFacingError(`${printable(php)} --ini / -r failed: ${printable(e.message.split('\n')[0] ?? '')}`);
  }
  let parsed: { version?: unknown; sys_temp_dir?: unknown; values?: unknown };
  try {
    parsed = JSON.parse(json) as typeof parsed;
  } catch {
    throw new UserFacingError(`${printable(php)} -r did not print JSON (is it PHP?)`);
  }
  if (typeof parsed.version !== 'string' || typeof parsed.values !== 'object' || parsed.values === null)
    throw new UserFacingError(`${printable(php)} -r printed an unexpected document`);
  const values: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(parsed.values)) values[k] = typeof v === 'string' ? v : v === null ? null : String(v);
  return {
    version: parsed.version,
    iniOutput,
    values,
    ...(typeof parsed.sys_temp_dir === 'string' ? { sysTempDir: parsed.sys_temp_dir } : {}),
  };
}

/**
 * The compiled defaults and version of a php binary (`php -n`: no ini file at all), or null without php.
 */
export function phpDefaults(php: string): { version: string; defaults: Record<string, string>; sysTempDir: string } | null {
  let out: string;
  try {
    out = execFileSync(php, ['-n', '-r', PROBE_PHP], {
      encoding: 'utf8',
      timeout: 20_000,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
  } catch {
    return null;
  }
  try {
    const p = JSON.parse(out) as { version: string; sys_temp_dir: string; values: Record<string, unknown> };
    const defaults: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.values)) defaults[k] = typeof v === 'string' ? v : '';
    return { version: /^\d+\.\d+/.exec(p.version)?.[0] ?? '8.2', defaults, sysTempDir: p.sys_temp_dir };
  } catch {
    return null;
  }
}

/**
 * PhpLint backed by the local php (`php -n -l`, codemod php's lintPhpText, short_open_tag off as the
 * audit's parser reads): undefined when php cannot be run.
 */
export function localPhpLint(php: string): PhpLint {
  return (source) => {
    try {
      return lintPhpText(php, source, false);
    } catch (err) {
      if (err instanceof PhpLintUnavailable) return undefined;
      throw err;
    }
  };
}

/**
 * ExtensionProbe backed by the local php: `php -n [-d extension_dir=DIR] -d extension=A -d extension=B …`
 * in the file's load order, then get_loaded_extensions() and ini_get_all() of each requested module
 * that loaded. A module that fails to load (missing, or a dependency loaded later) is simply absent.
 * @returns null when php cannot be run or answers nonsense.
 */
export function localExtensionProbe(php: string): ExtensionProbe {
  return (lines, extensionDir) => {
    const code =
      'echo json_encode(array("loaded" => array_map("strtolower", get_loaded_extensions()), "directives" => array_map(function ($e) { $a = @ini_get_all(strtolower($e), false); return $a === false ? array() : $a; }, array_combine(get_loaded_extensions(), get_loaded_extensions()))));';
    const args = [
      '-n',
      ...(extensionDir !== null ? ['-d', `extension_dir=${extensionDir}`] : []),
      ...lines.flatMap((l) => ['-d', `extension=${l.value}`]),
      '-r',
      code,
    ];
    let out: string;
    try {
      out = execFileSync(php, args, {
        encoding: 'utf8',
        timeout: 20_000,
        maxBuffer: 64 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
    } catch {
      return null;
    }
    try {
      const p = JSON.parse(out.slice(out.indexOf('{'))) as { loaded: string[]; directives: Record<string, Record<string, unknown>> };
      const wanted = new Set(lines.map((l) => l.name.toLowerCase()));
      const directives: Record<string, string> = {};
      for (const [mod, d] of Object.entries(p.directives)) {
        if (!wanted.has(mod.toLowerCase())) continue;
        for (const [k, v] of Object.entries(d)) directives[k] = typeof v === 'string' ? v : '';
      }
      return { loaded: p.loaded.filter((m) => wanted.has(m)), directives };
    } catch {
      return null;
    }
  };
}

function readCollected(path: string): string {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserFacingError(`--from-collected ${printable(path)}: not a regular file`);
    if (st.size > MAX_COLLECTED_BYTES) throw new UserFacingError(`--from-collected ${printable(path)}: too large (${st.size} bytes)`);
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    throw new UserFacingError(`--from-collected ${printable(path)}: ${describeFsError(err)}`);
  }
}

/** A stat() (which follows links) failure: ELOOP there means a loop of symbolic links, not a refused link. */
function statError(err: unknown): string {
  return (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'symlink loop (too many levels of symbolic links)' : describeFsError(err);
}

/**
 * `--app` and `--docroot` name directories the operator means: one that does not exist (a typo, a
 * path of another host) is a usage error, as a missing `--ini` or `--root` is, never an
 * audit-incomplete finding that `--fail-on` lets pass with exit 0. On the live host the path is
 * stat()ed as given (relative to the working directory); below `--root` through the root's
 * filesystem, which never leaves it.
 * @throws UserFacingError naming the option and the path.
 */
function requireDirectories(option: 'app' | 'docroot', given: readonly string[], root: RootFs | null, rootDir: string | undefined): void {
  for (const d of given) {
    if (root === null) {
      let st;
      try {
        st = statSync(resolve(d));
      } catch (err) {
        throw new UserFacingError(`--${option} ${printable(d)}: ${statError(err)}`);
      }
      if (!st.isDirectory()) throw new UserFacingError(`--${option} ${printable(d)}: not a directory`);
      continue;
    }
    const below = `below --root ${printable(rootDir ?? '/')}`;
    // As the audit itself looks (packages/audit/src/app.ts readApp): lstat, then the real path.
    if (root.lstat(d) === null) throw new UserFacingError(`--${option} ${printable(d)}: no such file or directory (${below})`);
    const real = root.realpath(d);
    if (real === null)
      throw new UserFacingError(`--${option} ${printable(d)}: a symlink loop, or a symbolic link out of the root (${below})`);
    if (root.stat(real)?.type !== 'dir') throw new UserFacingError(`--${option} ${printable(d)}: not a directory (${below})`);
  }
}

/** What to audit: at most one of `ini`, `fromCollected` (non-empty) and `root`; none = this host. */
export interface AuditOptions {
  /** An ini file: audit exactly what `php -n -c FILE` loads. */
  ini?: string;
  /** With `ini`: PHP_INI_SCAN_DIR (':'-joined; "" = none). */
  scanDir?: string;
  /** A mounted or copied filesystem to audit (nothing outside it is read). */
  root?: string;
  /** Document roots searched for .user.ini / .htaccess; their PHP code is read as with `app`. */
  docroot: string[];
  /** Application directories whose PHP code is read for run-time session settings. */
  app: string[];
  /** SERVER_NAME of the requests docroot variants stand for ([HOST=] sections). */
  host?: string;
  /** Files written by the collect script (collectScript()). */
  fromCollected: string[];
  /** The php binary asked on the live host and for `ini` (its version and compiled defaults). */
  php: string;
  /** Findings at or above this severity make `failed` true; 'none' (default): never. */
  failOn?: Severity | 'none';
  /** The environment the live host's and `ini`'s configuration sees (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface AuditReport {
  /** One report per host audited (one for `ini`, `root` and the live host; one per collected file). */
  reports: HostReport[];
  /** Whether a finding is at or above `failOn` (the CLI's exit 1). */
  failed: boolean;
}

/**
 * Runs the audit. Loads codemod php's parser for application code unless only collected documents
 * are read (after the options are checked, so bad input fails at once).
 * @throws UserFacingError (one line) on conflicting options (more than one of ini/fromCollected/root;
 *   scanDir without ini; app with fromCollected; docroot with ini), on a
 *   missing or wrong-type ini/root/app/docroot path, an unreadable or oversized collected document, or
 *   a php binary that runs but answers nonsense. A file that exists but cannot be read inside the
 *   audit is a finding (audit-incomplete), not an error.
 */
export async function runAudit(o: AuditOptions): Promise<AuditReport> {
  // Application code (--app, document roots) is read with codemod php's parser, loaded only for audit.
  checkOptions(o);
  if (o.fromCollected.length === 0) await loadPhpParser();
  const engine = defaultEngine();
  const env = Object.fromEntries(Object.entries(o.env ?? process.env).filter((e): e is [string, string] => e[1] !== undefined));
  const reports: HostReport[] =
    o.ini !== undefined
      ? [auditIni(o, o.ini, engine, env)]
      : o.fromCollected.length > 0
        ? auditCollected(o, engine)
        : [auditThisHost(o, engine, env)];
  const failOn = o.failOn ?? 'none';
  if (failOn === 'none') return { reports, failed: false };
  const threshold = severityRank(failOn);
  return { reports, failed: reports.some((r) => r.findings.some((f) => severityRank(f.severity) >= threshold)) };
}

/**
 * Refuses conflicting options (runAudit's @throws). These rules are the library's, not the CLI's
 * (packages/cli/src/option-needs.ts): a caller of runAudit would otherwise get `scanDir` ignored
 * without `ini`, so "--scan-dir needs --ini" lives here only. (`--fleet needs --from-collected` is the
 * CLI's: the fleet summary is printed by the CLI with renderFleet, runAudit has no such option.)
 */
function checkOptions(o: AuditOptions): void {
  const modes = [o.ini !== undefined, o.fromCollected.length > 0, o.root !== undefined].filter(Boolean).length;
  if (modes > 1) throw new UserFacingError('use only one of --ini, --from-collected and --root');
  if (o.scanDir !== undefined && o.ini === undefined) throw new UserFacingError('--scan-dir needs --ini');
  if (o.app.length > 0 && o.fromCollected.length > 0)
    throw new UserFacingError('--app reads application code on this host or below --root; collected documents hold no application code');
  if (o.docroot.length > 0 && o.ini !== undefined)
    throw new UserFacingError(
      '--docroot reads .user.ini and .htaccess of a host (this one, or below --root), which --ini does not audit; give the application code with --app',
    );
}

/** `--ini FILE`: exactly what `php -n -c FILE` (with --scan-dir, `php -c FILE`) loads, on this host. */
function auditIni(o: AuditOptions, ini: string, engine: IniEngine, env: Record<string, string>): HostReport {
  const path = resolve(ini);
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new UserFacingError(`--ini ${printable(ini)}: ${statError(err)}`);
  }
  if (!st.isFile()) throw new UserFacingError(`--ini ${printable(ini)}: not a regular file`);
  // A file that cannot be read (too large, permissions) is reported as audit-incomplete, result partial.
  // The local php (if any) tells its version and compiled defaults (Debian patches save_path), so
  // the values equal what `php -n -c FILE` prints on this machine.
  requireDirectories('app', o.app, null, undefined);
  const local = phpDefaults(o.php);
  return auditIniFile({
    fs: new RootFs('/'),
    engine,
    iniFile: path,
    ...(local !== null
      ? {
          phpVersion: local.version,
          defaults: local.defaults,
          sysTempDir: local.sysTempDir,
          extensionProbe: localExtensionProbe(o.php),
        }
      : {}),
    ...(o.scanDir !== undefined
      ? {
          scanDirs: o.scanDir
            .split(':')
            .map((d) => (d === '' ? d : resolve(d)))
            .join(':'),
        }
      : {}),
    env,
    apps: o.app.map((d) => resolve(d)),
    phpLint: localPhpLint(o.php),
  });
}

/** `--from-collected FILE...`: one report per document written by the collect script. */
function auditCollected(o: AuditOptions, engine: IniEngine): HostReport[] {
  return o.fromCollected.map((file) => {
    const c = parseCollected(readCollected(file), file);
    return auditHost({
      fs: c.fs,
      engine,
      host: c.host,
      env: {},
      docroots: [...c.docroots, ...o.docroot],
      probe: c.probe,
      appsFromDocroots: false,
      ...(o.host !== undefined ? { serverName: o.host } : {}),
    });
  });
}

/** This host, or the filesystem below `--root` (then no php is asked about its configuration). */
function auditThisHost(o: AuditOptions, engine: IniEngine, env: Record<string, string>): HostReport {
  let fs: RootFs;
  if (o.root !== undefined) {
    let st;
    try {
      st = statSync(o.root);
    } catch (err) {
      throw new UserFacingError(`--root ${printable(o.root)}: ${statError(err)}`);
    }
    if (!st.isDirectory()) throw new UserFacingError(`--root ${printable(o.root)}: not a directory`);
    fs = new RootFs(o.root);
  } else fs = new RootFs('/');
  requireDirectories('app', o.app, o.root !== undefined ? fs : null, o.root);
  requireDirectories('docroot', o.docroot, o.root !== undefined ? fs : null, o.root);
  const probe = o.root === undefined ? probePhp(o.php) : null;
  // Live host: relative --app and --docroot paths are relative to the working directory; below --root they are host paths.
  const hostPath = (d: string) => (o.root === undefined ? resolve(d) : d);
  return auditHost({
    fs,
    engine,
    host: o.root === undefined ? hostname() : 'root',
    env: o.root === undefined ? env : {},
    docroots: o.docroot.map(hostPath),
    apps: o.app.map(hostPath),
    probe,
    phpLint: localPhpLint(o.php),
    ...(o.host !== undefined ? { serverName: o.host } : {}),
  });
}

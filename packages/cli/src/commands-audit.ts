/**
 * `session-migrate audit`: wires packages/audit to the command line. Exit codes: 0 no finding at or
 * above --fail-on, 1 at least one, 2 usage or bad input (UserFacingError).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { UserFacingError, describeFsError, printable } from '@session-migrate/common';
import {
  MAX_COLLECTED_BYTES, RootFs, auditHost, auditIniFile, collectScript, defaultEngine, fleetJson, parseCollected,
  renderFleet, renderJson, renderSarif, renderTable, severityRank, type HostReport, type PhpProbe, type Severity,
  type ExtensionProbe, loadPhpParser } from '@session-migrate/audit';
import type { Print } from './commands/context.ts';

import { FAIL_ON } from './commands/audit.ts';

export { FAIL_ON };

export interface AuditOptions {
  ini?: string;
  scanDir?: string;
  root?: string;
  docroot: string[];
  /** Application directories whose PHP code is read for run-time session settings. */
  app: string[];
  /** SERVER_NAME of the requests docroot variants stand for ([HOST=] sections). */
  host?: string;
  fromCollected: string[];
  fleet: boolean;
  json: boolean;
  sarif: boolean;
  failOn: (typeof FAIL_ON)[number];
  php: string;
  version: string;
}

const PROBE_PHP = 'echo json_encode(array("version" => PHP_VERSION, "sys_temp_dir" => sys_get_temp_dir(), "values" => ini_get_all(null, false)), JSON_INVALID_UTF8_SUBSTITUTE | JSON_PARTIAL_OUTPUT_ON_ERROR);';

/**
 * Asks a php binary for its CLI configuration (`php --ini`, ini_get_all()).
 * @returns null when there is no such binary; throws UserFacingError when it runs but answers nonsense.
 */
export function probePhp(php: string): PhpProbe | null {
  const run = (args: string[]) => execFileSync(php, args, { encoding: 'utf8', timeout: 20_000, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
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
  try { parsed = JSON.parse(json) as typeof parsed; } catch { throw new UserFacingError(`${printable(php)} -r did not print JSON (is it PHP?)`); }
  if (typeof parsed.version !== 'string' || typeof parsed.values !== 'object' || parsed.values === null) throw new UserFacingError(`${printable(php)} -r printed an unexpected document`);
  const values: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(parsed.values)) values[k] = typeof v === 'string' ? v : v === null ? null : String(v);
  return { version: parsed.version, iniOutput, values, ...(typeof parsed.sys_temp_dir === 'string' ? { sysTempDir: parsed.sys_temp_dir } : {}) };
}

/**
 * The compiled defaults and version of a php binary (`php -n`: no ini file at all), or null without php.
 */
export function phpDefaults(php: string): { version: string; defaults: Record<string, string>; sysTempDir: string } | null {
  let out: string;
  try {
    out = execFileSync(php, ['-n', '-r', PROBE_PHP], { encoding: 'utf8', timeout: 20_000, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
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
 * ExtensionProbe backed by the local php: `php -n [-d extension_dir=DIR] -d extension=A -d extension=B …`
 * in the file's load order, then get_loaded_extensions() and ini_get_all() of each requested module
 * that loaded. A module that fails to load (missing, or a dependency loaded later) is simply absent.
 * @returns null when php cannot be run or answers nonsense.
 */
export function localExtensionProbe(php: string): ExtensionProbe {
  return (lines, extensionDir) => {
    const code = 'echo json_encode(array("loaded" => array_map("strtolower", get_loaded_extensions()), "directives" => array_map(function ($e) { $a = @ini_get_all(strtolower($e), false); return $a === false ? array() : $a; }, array_combine(get_loaded_extensions(), get_loaded_extensions()))));';
    const args = ['-n', ...(extensionDir !== null ? ['-d', `extension_dir=${extensionDir}`] : []), ...lines.flatMap((l) => ['-d', `extension=${l.value}`]), '-r', code];
    let out: string;
    try {
      out = execFileSync(php, args, { encoding: 'utf8', timeout: 20_000, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
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

/** Prints the collect script. */
export function auditCollectScript(print: Print): number {
  process.stdout.write(collectScript());
  void print;
  return 0;
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
      try { st = statSync(resolve(d)); } catch (err) { throw new UserFacingError(`--${option} ${printable(d)}: ${statError(err)}`); }
      if (!st.isDirectory()) throw new UserFacingError(`--${option} ${printable(d)}: not a directory`);
      continue;
    }
    const below = `below --root ${printable(rootDir ?? '/')}`;
    // As the audit itself looks (packages/audit/src/app.ts readApp): lstat, then the real path.
    if (root.lstat(d) === null) throw new UserFacingError(`--${option} ${printable(d)}: no such file or directory (${below})`);
    const real = root.realpath(d);
    if (real === null) throw new UserFacingError(`--${option} ${printable(d)}: a symlink loop, or a symbolic link out of the root (${below})`);
    if (root.stat(real)?.type !== 'dir') throw new UserFacingError(`--${option} ${printable(d)}: not a directory (${below})`);
  }
}

/**
 * Runs an audit and prints it.
 * @returns 1 when a finding is at or above `failOn`, else 0.
 * @throws UserFacingError on conflicting options or unreadable input.
 */
export async function auditCommand(o: AuditOptions, print: Print): Promise<number> {
  // Application code (--app, document roots) is read with codemod php's parser, loaded only for audit.
  if (o.fromCollected.length === 0) await loadPhpParser();
  if (o.json && o.sarif) throw new UserFacingError('--json and --sarif exclude each other');
  const modes = [o.ini !== undefined, o.fromCollected.length > 0, o.root !== undefined].filter(Boolean).length;
  if (modes > 1) throw new UserFacingError('use only one of --ini, --from-collected and --root');
  if (o.scanDir !== undefined && o.ini === undefined) throw new UserFacingError('--scan-dir needs --ini');
  if (o.fleet && o.fromCollected.length === 0) throw new UserFacingError('--fleet needs --from-collected FILE...');
  if (o.app.length > 0 && o.fromCollected.length > 0) throw new UserFacingError('--app reads application code on this host or below --root; collected documents hold no application code');
  if (o.docroot.length > 0 && o.ini !== undefined) throw new UserFacingError('--docroot reads .user.ini and .htaccess of a host (this one, or below --root), which --ini does not audit; give the application code with --app');
  const engine = defaultEngine();
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  const reports: HostReport[] = [];
  if (o.ini !== undefined) {
    const path = resolve(o.ini);
    let st;
    try { st = statSync(path); } catch (err) { throw new UserFacingError(`--ini ${printable(o.ini)}: ${statError(err)}`); }
    if (!st.isFile()) throw new UserFacingError(`--ini ${printable(o.ini)}: not a regular file`);
    // A file that cannot be read (too large, permissions) is reported as audit-incomplete, result partial.
    // The local php (if any) tells its version and compiled defaults (Debian patches save_path), so
    // the values equal what `php -n -c FILE` prints on this machine.
    requireDirectories('app', o.app, null, undefined);
    const local = phpDefaults(o.php);
    reports.push(auditIniFile({ fs: new RootFs('/'), engine, iniFile: path, ...(local !== null ? { phpVersion: local.version, defaults: local.defaults, sysTempDir: local.sysTempDir, extensionProbe: localExtensionProbe(o.php) } : {}), ...(o.scanDir !== undefined ? { scanDirs: o.scanDir.split(':').map((d) => (d === '' ? d : resolve(d))).join(':') } : {}), env, apps: o.app.map((d) => resolve(d)) }));
  } else if (o.fromCollected.length > 0) {
    for (const file of o.fromCollected) {
      const c = parseCollected(readCollected(file), file);
      reports.push(auditHost({ fs: c.fs, engine, host: c.host, env: {}, docroots: [...c.docroots, ...o.docroot], probe: c.probe, appsFromDocroots: false, ...(o.host !== undefined ? { serverName: o.host } : {}) }));
    }
  } else {
    let fs: RootFs;
    if (o.root !== undefined) {
      let st;
      try { st = statSync(o.root); } catch (err) { throw new UserFacingError(`--root ${printable(o.root)}: ${statError(err)}`); }
      if (!st.isDirectory()) throw new UserFacingError(`--root ${printable(o.root)}: not a directory`);
      fs = new RootFs(o.root);
    } else fs = new RootFs('/');
    requireDirectories('app', o.app, o.root !== undefined ? fs : null, o.root);
    requireDirectories('docroot', o.docroot, o.root !== undefined ? fs : null, o.root);
    const probe = o.root === undefined ? probePhp(o.php) : null;
    // Live host: relative --app and --docroot paths are relative to the working directory; below --root they are host paths.
    const hostPath = (d: string) => (o.root === undefined ? resolve(d) : d);
    reports.push(auditHost({ fs, engine, host: o.root === undefined ? hostname() : 'root', env: o.root === undefined ? env : {}, docroots: o.docroot.map(hostPath), apps: o.app.map(hostPath), probe, ...(o.host !== undefined ? { serverName: o.host } : {}) }));
  }
  if (o.fleet) {
    print(o.json ? JSON.stringify(fleetJson(reports), null, 2) : renderFleet(reports).trimEnd());
  } else if (o.json) print(renderJson(reports));
  else if (o.sarif) print(renderSarif(reports, o.version));
  else print(renderTable(reports).trimEnd());
  if (o.failOn === 'none') return 0;
  const threshold = severityRank(o.failOn as Severity);
  return reports.some((r) => r.findings.some((f) => severityRank(f.severity) >= threshold)) ? 1 : 0;
}

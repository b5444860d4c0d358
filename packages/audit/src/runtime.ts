/**
 * What the application's run-time session settings (app.ts) do in each audited configuration, and
 * the findings about them. PHP rules (php-src 8.2): ini_set() changes only PHP_INI_USER directives
 * (Zend/zend_ini.c zend_alter_ini_entry_ex, stage RUNTIME), never one locked by php_admin_value or
 * a [PATH=]/[HOST=] section, and a value its on_modify validator rejects leaves the old one
 * (ext/session/session.c). The files handler's own garbage collection runs with probability
 * gc_probability/gc_divisor per session start, on the save_path of that request, and never below a
 * depth N > 0 (ext/session/mod_files.c PS_GC_FUNC). Debian's /usr/lib/php/sessionclean (cron.d/php,
 * phpsessionclean.timer) removes expired files only in the session.save_path of each SAPI's php.ini
 * (with its conf.d), read by `php -c /etc/php/V/<sapi>/php.ini`: not from pools, .user.ini or
 * ini_set(); Debian's php.ini sets gc_probability = 0.
 */
import { posix } from 'node:path';
import { parseFilesSavePath } from '@session-migrate/php-ini';
import type { AppReport, AuditedConfig, Finding, RuntimeSetting, RuntimeValue } from './model.ts';
import type { IniEngine } from './engine.ts';
import type { AuditFs } from './vfs.ts';
import { finding, phpBool } from './rules.ts';
import { redactValue } from './output.ts';
import { isInside } from './app.ts';

/** Who cleans expired session files outside PHP, as far as the audit can tell. */
export interface Cleaners {
  /**
   * Directories Debian's sessionclean cleans (php.ini save paths) and after how many seconds of
   * inactivity (the largest php.ini gc_maxlifetime of the SAPIs that share the directory, whole
   * minutes, as sessionclean's `find -cmin +N`), when it is installed.
   */
  sessionclean: Map<string, number> | null;
  /** Text of the cron tables read (to look for a directory named in a cleanup job). */
  cronText: string;
  /** Where the cron text came from (for messages), e.g. "/etc/cron.d/*". */
  cronFiles: string[];
  /** False for `--ini FILE`, where the host's cleaners are not part of the audit. */
  known: boolean;
}

/**
 * Reads Debian's sessionclean presence and the cron tables of `fs`.
 * @param iniSavePaths the files-handler save path and gc_maxlifetime (seconds) of each Debian SAPI's php.ini.
 */
export function readCleaners(fs: AuditFs, iniSavePaths: Array<{ path: string; gcMaxlifetime: number }>): Cleaners {
  let sessionclean: Map<string, number> | null = null;
  if (fs.lstat('/usr/lib/php/sessionclean') !== null) {
    sessionclean = new Map();
    for (const p of iniSavePaths) {
      const dir = posix.normalize(p.path);
      const minutes = Math.floor(p.gcMaxlifetime / 60);
      sessionclean.set(dir, Math.max(sessionclean.get(dir) ?? 0, minutes * 60));
    }
  }
  const files: string[] = [];
  for (const f of ['/etc/crontab', '/etc/anacrontab']) if (fs.lstat(f)?.type === 'file') files.push(f);
  for (const d of [
    '/etc/cron.d',
    '/etc/cron.hourly',
    '/etc/cron.daily',
    '/etc/cron.weekly',
    '/etc/cron.monthly',
    '/var/spool/cron/crontabs',
    '/var/spool/cron',
  ]) {
    for (const n of (fs.readdir(d) ?? []).sort()) if (fs.stat(posix.join(d, n))?.type === 'file') files.push(posix.join(d, n));
  }
  let cronText = '';
  const read: string[] = [];
  for (const f of files.slice(0, 500)) {
    const r = fs.readFile(f);
    if (!r.ok || r.data.length > 1024 * 1024) continue;
    cronText += r.data.toString('latin1') + '\n';
    read.push(f);
  }
  return { sessionclean, cronText, cronFiles: read, known: true };
}

/** No knowledge of the host's cleaners (`--ini FILE`). */
export const NO_CLEANERS: Cleaners = { sessionclean: null, cronText: '', cronFiles: [], known: false };

/**
 * Whether the application at `app` runs under `cfg`: a configuration for a directory (a .user.ini,
 * .htaccess or [PATH=] variant) when the directories overlap; otherwise every web configuration
 * (fpm, apache2, cgi), or the CLI ones when the host has nothing else (`--ini FILE`).
 */
export function appRunsUnder(cfg: AuditedConfig, app: AppReport, webConfigsExist: boolean): boolean {
  if (app.realDir === null) return false;
  if (cfg.directory !== undefined) {
    return [app.dir, app.realDir].some((d) => isInside(cfg.directory!, d) || isInside(d, cfg.directory!));
  }
  return cfg.sapi !== 'cli' || !webConfigsExist;
}

const where = (s: RuntimeSetting) => `${s.via}() at ${s.file}:${s.line}`;
const loc = (s: RuntimeSetting) => ({ file: s.file, line: s.line });
/** A value in a message, secrets redacted (a session.save_path value by the save_path rule: redactValue). */
const shown = (v: string | false | undefined, directive: string | null = null) =>
  v === undefined ? '(unset)' : v === false ? '(unknown)' : JSON.stringify(redactValue(directive, v));

/**
 * Works out each setting in `cfg`: PHP accepts it or refuses it, and whether it differs.
 * @param extensions modules the configuration loads (which directives exist).
 */
export function runtimeValues(cfg: AuditedConfig, settings: RuntimeSetting[], engine: IniEngine, extensions: string[]): RuntimeValue[] {
  return settings.map((s): RuntimeValue => {
    if (s.via === 'session_set_save_handler') return { ...s, status: 'handler' };
    if (s.directive === null) return { ...s, status: 'unresolved' };
    const current = cfg.values[s.directive];
    const configured = current?.value;
    const base = { ...s, ...(configured !== undefined ? { configured } : {}) };
    const facts = engine.directive(s.directive, cfg.phpVersion);
    if (facts === null || !engine.accepts(s.directive, facts.default, cfg.phpVersion, extensions)) {
      return {
        ...base,
        status: 'refused',
        reason: `PHP ${cfg.phpVersion}${facts !== null ? ' with the modules this configuration loads' : ''} has no directive ${s.directive}: ${s.via}() returns false`,
      };
    }
    if (facts.changeable !== 'all') {
      return {
        ...base,
        status: 'refused',
        reason: `${s.directive} can only be set in php.ini${facts.changeable === 'perdir' ? ', .user.ini or the pool' : ''} (PHP_INI_${facts.changeable === 'perdir' ? 'PERDIR' : 'SYSTEM'}), not at run time`,
      };
    }
    if (current?.locked === true) {
      const o = current.origin;
      return {
        ...base,
        status: 'refused',
        reason: `${s.directive} is pinned${o !== 'default' ? ` at ${o.file}:${o.line}` : ''} (php_admin_value or a [PATH=]/[HOST=] section): ${s.via}() cannot change it`,
      };
    }
    if (s.value === null) return { ...base, status: 'unresolved' };
    if (!engine.accepts(s.directive, s.value, cfg.phpVersion, extensions)) {
      return {
        ...base,
        status: 'refused',
        reason: `PHP rejects ${shown(s.value, s.directive)} for ${s.directive}: the value stays ${shown(configured, s.directive)}`,
      };
    }
    return { ...base, status: s.value === configured ? 'same' : 'differs' };
  });
}

/** The hardening settings the configuration rules check, and what counts as weak at run time. */
const WEAK: Array<{ key: string; rule: string; weak: (v: string) => boolean; what: string }> = [
  { key: 'session.use_strict_mode', rule: 'strict-mode-off', weak: (v) => !phpBool(v), what: 'turned off' },
  { key: 'session.cookie_secure', rule: 'cookie-not-secure', weak: (v) => !phpBool(v), what: 'turned off' },
  { key: 'session.cookie_httponly', rule: 'cookie-not-httponly', weak: (v) => !phpBool(v), what: 'turned off' },
  { key: 'session.cookie_samesite', rule: 'cookie-no-samesite', weak: (v) => v === '', what: 'emptied' },
  { key: 'session.use_only_cookies', rule: 'use-only-cookies-off', weak: (v) => !phpBool(v), what: 'turned off' },
  { key: 'session.use_trans_sid', rule: 'use-trans-sid-on', weak: (v) => phpBool(v), what: 'turned on' },
];

/** Whole seconds of an ini integer value (PHP reads a leading integer), or null. */
function seconds(v: string | false | undefined): number | null {
  if (typeof v !== 'string') return null;
  const m = /^\s*[+-]?\d+/.exec(v);
  return m === null ? null : parseInt(m[0], 10);
}

/** One configuration's run-time values as the runtimeFindings checks read them. */
interface RuntimeView {
  cfg: AuditedConfig;
  runtime: RuntimeValue[];
  cleaners: Cleaners;
  out: Finding[];
  /** Records a finding of the configuration, at the setting's file:line when given. */
  make: (rule: string, message: string, s?: RuntimeSetting) => void;
  /** The run-time settings of `key` PHP takes (differs or same, with a static value). */
  applied: (key: string) => RuntimeValue[];
  /** The configuration's own value of `key`. */
  configured: (key: string) => string | false | undefined;
  /** Where the configuration's value of `key` comes from (file:line, or compiled default). */
  originOf: (key: string) => string;
}

/**
 * Findings of one configuration about its run-time values (runtimeValues) and the effective
 * cookie lifetime. `cleaners` tells who removes files from a save path PHP's GC does not clean.
 */
export function runtimeFindings(cfg: AuditedConfig, runtime: RuntimeValue[], cleaners: Cleaners): Finding[] {
  const out: Finding[] = [];
  const v: RuntimeView = {
    cfg,
    runtime,
    cleaners,
    out,
    make: (rule, message, s) => out.push(finding(rule, cfg.id, message, s !== undefined ? loc(s) : undefined)),
    applied: (key) => runtime.filter((r) => r.directive === key && (r.status === 'differs' || r.status === 'same') && r.value !== null),
    configured: (key) => cfg.values[key]?.value,
    originOf: (key) => {
      const o = cfg.values[key]?.origin;
      return o === undefined || o === 'default' ? 'compiled default' : `${o.file}:${o.line}`;
    },
  };
  differingOrRefused(v);
  weakenedHardening(v);
  // (A user save handler registered elsewhere in the code is reported on its own: requests that do
  // not run it still store sessions with the files handler.)
  const handlers = v.applied('session.save_handler').map((r) => r.value);
  const handler = handlers.length > 0 ? handlers[handlers.length - 1] : v.configured('session.save_handler');
  if (handler === 'files') saveDirWithoutGc(v);
  if (handler === 'files' && cleaners.sessionclean !== null) gcCutByCleaner(v, cleaners.sessionclean);
  cookieOutlivesGc(v);
  return out;
}

/** runtime-setting-differs and runtime-setting-ignored, one per run-time setting. */
function differingOrRefused({ runtime, make, originOf }: RuntimeView): void {
  for (const r of runtime) {
    if (r.status === 'differs') {
      make(
        'runtime-setting-differs',
        `${r.directive} is set to ${shown(r.value ?? '', r.directive)} at run time by ${where(r)}; the configuration has ${shown(r.configured, r.directive)} (${originOf(r.directive!)})`,
        r,
      );
    } else if (r.status === 'refused') {
      make(
        'runtime-setting-ignored',
        `${where(r)} sets ${r.directive}${r.value !== null ? ` to ${shown(r.value, r.directive)}` : ''}, which PHP refuses here: ${r.reason}`,
        r,
      );
    }
  }
}

/** Hardening turned off at run time where the configuration has it on. */
function weakenedHardening({ make, applied, configured }: RuntimeView): void {
  for (const w of WEAK) {
    const conf = configured(w.key);
    if (conf === undefined || conf === false || w.weak(conf)) continue;
    for (const r of applied(w.key)) {
      if (w.weak(r.value!)) make(w.rule, `${w.key} is ${w.what} at run time by ${where(r)} (the configuration has ${shown(conf)})`, r);
    }
  }
}

/** A run-time save path no garbage collection cleans (runtime-save-path-no-gc), for the files handler. */
function saveDirWithoutGc({ runtime, cleaners, make, applied, configured, originOf }: RuntimeView): void {
  const prob = applied('session.gc_probability')
    .map((r) => seconds(r.value!))
    .concat(applied('session.gc_probability').length === 0 ? [seconds(configured('session.gc_probability'))] : []);
  const div = applied('session.gc_divisor')
    .map((r) => seconds(r.value!))
    .concat(applied('session.gc_divisor').length === 0 ? [seconds(configured('session.gc_divisor'))] : []);
  const gcOn = prob.every((p) => p !== null && p > 0) && div.every((d) => d !== null && d > 0);
  for (const r of runtime.filter((x) => x.directive === 'session.save_path' && x.status === 'differs' && x.value !== null)) {
    const sp = parseFilesSavePath(r.value!);
    if (sp.findings.some((f) => f.severity === 'high')) continue;
    const dir = posix.normalize(sp.path);
    if (gcOn && sp.depth === 0) continue;
    const cron = cleaners.cronText.includes(dir) || cleaners.cronText.includes(sp.path);
    const byClean = cleaners.sessionclean?.has(dir) === true;
    if (cron || byClean) continue;
    const why =
      sp.depth > 0
        ? `PHP never garbage-collects below a depth of ${sp.depth}`
        : `PHP's own garbage collection is off here (session.gc_probability=${prob.map(String).join('/')}, from ${applied('session.gc_probability').length > 0 ? 'the code' : originOf('session.gc_probability')})`;
    const who = !cleaners.known
      ? "no cleaner is known to an audit of one ini file (a cron job that reads php.ini, such as Debian's sessionclean, cleans only its session.save_path)"
      : cleaners.sessionclean !== null
        ? `/usr/lib/php/sessionclean cleans only php.ini's session.save_path (${[...cleaners.sessionclean.keys()].join(', ') || 'none'})${cleaners.cronFiles.length > 0 ? ', and no cron job names it' : ''}`
        : `no cron job names it (${cleaners.cronFiles.length} cron file(s) read)`;
    make(
      'runtime-save-path-no-gc',
      `session.save_path is ${shown(r.value!, 'session.save_path')} at run time (${where(r)}), not the configured ${shown(configured('session.save_path'), 'session.save_path')}; ${why}, and ${who}: session files there are never deleted, and expired session IDs stay valid`,
      r,
    );
  }
}

/**
 * A longer gc_maxlifetime set at run time, in a directory Debian's sessionclean cleans with
 * php.ini's gc_maxlifetime: the files go after php.ini's lifetime, whatever the code says.
 */
function gcCutByCleaner({ make, applied, configured }: RuntimeView, sessionclean: ReadonlyMap<string, number>): void {
  const paths = applied('session.save_path').map((r) => r.value!);
  const dirs = (paths.length > 0 ? paths : [String(configured('session.save_path') ?? '')])
    .filter((p) => p !== '')
    .map((p) => posix.normalize(parseFilesSavePath(p).path));
  for (const dir of new Set(dirs)) {
    const limit = sessionclean.get(dir);
    if (limit === undefined) continue;
    const longer = applied('session.gc_maxlifetime').filter((r) => (seconds(r.value!) ?? 0) > limit + 60);
    for (const r of longer) {
      make(
        'runtime-gc-maxlifetime-cut-by-cleaner',
        `session.gc_maxlifetime is ${seconds(r.value!)} s at run time (${where(r)}), but /usr/lib/php/sessionclean deletes session files in ${dir} after ${limit / 60} minutes without change (php.ini's session.gc_maxlifetime): sessions end after ${limit / 60} minutes of inactivity`,
        r,
      );
    }
  }
}

/** The cookie outlives the session: gc_maxlifetime (or the Redis TTL derived from it) ends it first. */
function cookieOutlivesGc({ cfg, out, applied, configured, originOf }: RuntimeView): void {
  const lifetimes = applied('session.cookie_lifetime');
  const gcs = applied('session.gc_maxlifetime');
  const gc = gcs.length > 0 ? Math.max(...gcs.map((r) => seconds(r.value!) ?? 0)) : seconds(configured('session.gc_maxlifetime'));
  const lifeList: Array<{ seconds: number | null; from: string; s?: RuntimeSetting }> =
    lifetimes.length > 0
      ? lifetimes.map((r) => ({ seconds: seconds(r.value!), from: `at run time by ${where(r)}`, s: r }))
      : [{ seconds: seconds(configured('session.cookie_lifetime')), from: `(${originOf('session.cookie_lifetime')})` }];
  const worst = lifeList
    .filter((l) => l.seconds !== null && l.seconds > 0 && gc !== null && gc > 0 && l.seconds > gc)
    .sort((a, b) => b.seconds! - a.seconds!)[0];
  if (worst !== undefined) {
    const o = cfg.values['session.cookie_lifetime']?.origin;
    out.push(
      finding(
        'cookie-lifetime-above-gc-maxlifetime',
        cfg.id,
        `session.cookie_lifetime is ${worst.seconds} s ${worst.from}, above session.gc_maxlifetime ${gc} s (${gcs.length > 0 ? `at run time by ${where(gcs[0]!)}` : originOf('session.gc_maxlifetime')}): the session data can be removed while the browser still sends the cookie, and users are logged out before the cookie says`,
        worst.s !== undefined ? loc(worst.s) : o !== undefined && o !== 'default' ? { file: o.file, line: o.line } : undefined,
      ),
    );
  }
}

/** Host-wide findings about one application: settings whose value or name is not static, user save handlers. */
export function appFindings(app: AppReport): Finding[] {
  const out: Finding[] = [];
  for (const s of app.settings) {
    if (s.via === 'session_set_save_handler') {
      out.push(
        finding(
          'runtime-custom-save-handler',
          null,
          `${where(s)} registers a user save handler (${s.handler ?? 'computed'}): session.save_handler and save_path of the configuration do not apply to the requests that run it, and the audit cannot see where it stores sessions`,
          loc(s),
        ),
      );
    } else if (s.value === null) {
      out.push(
        finding(
          'runtime-setting-unresolved',
          null,
          s.directive === null
            ? `${where(s)} sets session settings whose names are not known before the request runs (${s.expression ?? 'computed'})`
            : `${where(s)} sets ${s.directive} to a value not known before the request runs (${s.expression ?? 'computed'})`,
          loc(s),
        ),
      );
    }
  }
  return out;
}

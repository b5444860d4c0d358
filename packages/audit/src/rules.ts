/**
 * The checks behind every rule in catalog.ts, on one audited configuration. Pure apart from the
 * AuditFs stat calls on the save path (never opens a session file, never follows a symbolic link).
 */
import { posix } from 'node:path';
import { isAtLeast, redactSessionPath } from '@session-migrate/common';
import { SAVE_PATH_FAILS_AT } from '@session-migrate/php-ini';
import { decidePhpUids, type PhpOwnerDecision } from '@session-migrate/sources/files';
import { rule } from './catalog.ts';
import type { AuditedConfig, Finding, Location, Origin } from './model.ts';
import type { AuditFs } from './vfs.ts';
import { otherReadable } from './vfs.ts';
import type { HashEntry, IniEngine, IniSyntaxError, ValueFinding } from './engine.ts';

/** What the checks may look at besides the configuration itself. */
export interface RuleContext {
  fs: AuditFs;
  engine: IniEngine;
  /** Every assignment that fed this configuration (ini files, pool, .user.ini, Apache), in order. */
  entries: HashEntry[];
  syntaxErrors: IniSyntaxError[];
  /** Findings php-ini reported about the save_path value. */
  savePathFindings: ValueFinding[];
  /** The raw text of a file's line (1-based), or null. */
  lineText(file: string, line: number): string | null;
  /** Session file sampling: how many files to check for their mode (their owners: up to OWNER_COUNT_LIMIT). */
  sampleSize: number;
  /** Modules the configuration loads (built-in and `extension=` lines), when known. */
  extensions?: readonly string[];
  /**
   * The session-file walks done so far in this audit run, by depth and directory (sessionFileWalk),
   * shared by every configuration of one filesystem. Absent: each configuration walks on its own.
   */
  walks?: Map<string, SessionFileWalk>;
}

/**
 * PHP's boolean reading of an ini string (zend_ini_parse_bool): on/yes/true (any case) are true,
 * anything else is its integer value != 0 ("2" true, "enabled" false).
 */
export function phpBool(value: string | false | undefined): boolean {
  if (value === false || value === undefined) return false;
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  return parseInt(v, 10) !== 0 && !Number.isNaN(parseInt(v, 10));
}

const SHARED_TEMP = ['/tmp', '/var/tmp', '/dev/shm'];

/** A finding of `ruleId` (severity and fix from the catalogue) for configuration `config`. */
export function finding(ruleId: string, config: string | null, message: string, location?: Location): Finding {
  const r = rule(ruleId);
  return {
    id: ruleId,
    severity: r.severity,
    message,
    fix: r.fix,
    config,
    ...(location !== undefined ? { file: location.file, ...(location.line !== undefined ? { line: location.line } : {}) } : {}),
  };
}

const make = (ruleId: string, config: AuditedConfig, message: string, location?: Location): Finding =>
  finding(ruleId, config.id, message, location);

const at = (o: Origin | undefined): Location | undefined =>
  o === undefined || o === 'default' ? undefined : { file: o.file, line: o.line };

function where(o: Origin | undefined): string {
  return o === undefined || o === 'default' ? 'compiled default' : `${o.file}:${o.line}`;
}

/** Levenshtein distance, capped: enough to suggest the directive a typo meant. */
function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min((dp[j] as number) + 1, (dp[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}

/** Text after the first `=` of an ini line, up to the first `;` outside quotes, and what follows the `;`. */
export function splitRawValue(line: string): { value: string; comment: string | null } | null {
  const eq = line.indexOf('=');
  if (eq < 0) return null;
  const rest = line.slice(eq + 1);
  let quote: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (quote !== null) {
      if (c === '\\' && quote === '"') {
        i++;
        continue;
      }
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ';') return { value: rest.slice(0, i), comment: rest.slice(i + 1) };
  }
  return { value: rest, comment: null };
}

function mapValueFinding(f: ValueFinding): string | null {
  switch (f.id) {
    case 'save-path-depth-looks-like-mode':
      return 'save-path-depth-looks-like-mode';
    case 'save-path-invalid-depth':
    case 'save-path-invalid-mode':
    case 'save-path-empty-directory':
      return 'save-path-invalid';
    case 'save-path-non-numeric-depth':
      return 'save-path-non-numeric-depth';
    case 'save-path-mode-unreadable':
      return 'save-path-mode-unreadable';
    case 'save-path-comma-splits-hosts':
    case 'save-path-plus-is-space':
    case 'save-path-ampersand-splits-query':
    case 'save-path-no-host':
    case 'save-path-invalid-url':
      return 'redis-save-path-malformed';
    default:
      return isAtLeast(f.severity, SAVE_PATH_FAILS_AT) && f.id.startsWith('save-path') ? 'redis-save-path-malformed' : null;
  }
}

/** The effective value of directive `k` in `cfg`, as ini_get() reports it ('' when unset or unknown). */
function iniValue(cfg: AuditedConfig, k: string): string {
  const x = cfg.values[k]?.value;
  return x === false || x === undefined ? '' : x;
}

/** Syntax errors: PHP ignores the rest of the file. */
function checkSyntax(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  return ctx.syntaxErrors.map((e) =>
    make('ini-syntax-error', cfg, `${e.message}: PHP ignores every line after ${e.file}:${e.line}`, { file: e.file, line: e.line }),
  );
}

/** The files handler stores sessions in clear text. */
function checkStorage(cfg: AuditedConfig): Finding[] {
  if (iniValue(cfg, 'session.save_handler') !== 'files') return [];
  const origin = cfg.values['session.save_handler']?.origin;
  return [
    make(
      'plaintext-files-storage',
      cfg,
      `sessions are stored in clear text by the files handler (save_handler set by ${where(origin)})`,
      at(origin),
    ),
  ];
}

/** Values typed without quotes that PHP reads differently: save_path cut at ';', SameSite None as ''. */
function checkUnquotedValues(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  const out: Finding[] = [];
  const sp = cfg.values['session.save_path'];
  if (sp !== undefined && sp.origin !== 'default') {
    const raw = ctx.lineText(sp.origin.file, sp.origin.line);
    const split = raw === null ? null : splitRawValue(raw);
    if (
      split !== null &&
      split.comment !== null &&
      /^\s*(\/|\d+;|[0-7]{3,4};|[a-z]+:\/\/)/i.test(split.comment) &&
      !/["']/.test(split.value)
    ) {
      out.push(
        make(
          'save-path-truncated-by-comment',
          cfg,
          `session.save_path is "${String(sp.value)}": the unquoted ';' at ${sp.origin.file}:${sp.origin.line} starts a comment`,
          at(sp.origin),
        ),
      );
    }
  }
  const sameSite = cfg.values['session.cookie_samesite'];
  if (sameSite !== undefined && sameSite.origin !== 'default' && sameSite.value === '') {
    const raw = ctx.lineText(sameSite.origin.file, sameSite.origin.line);
    const split = raw === null ? null : splitRawValue(raw);
    if (split !== null && /^\s*none\s*$/i.test(split.value)) {
      out.push(
        make(
          'samesite-none-unquoted',
          cfg,
          `session.cookie_samesite = None (unquoted) at ${sameSite.origin.file}:${sameSite.origin.line} is the empty string: no SameSite attribute`,
          at(sameSite.origin),
        ),
      );
    }
  }
  return out;
}

/** save_path forms: the save_path parser's findings, as audit rules. */
function checkSavePathForms(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  const origin = cfg.values['session.save_path']?.origin;
  const out: Finding[] = [];
  for (const f of ctx.savePathFindings) {
    const id = mapValueFinding(f);
    if (id !== null) out.push(make(id, cfg, f.message, at(origin)));
  }
  return out;
}

/** A files save_path: shared temp dirs, depth (sub-directories, no GC), MODE and umask, the directory itself. */
function checkFilesSavePath(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  if (cfg.savePath.kind !== 'files') return [];
  const out: Finding[] = [];
  const sp = cfg.values['session.save_path'];
  const { depth, path, systemTemp } = cfg.savePath;
  if (systemTemp || SHARED_TEMP.some((t) => path === t || path.startsWith(t + '/'))) {
    out.push(
      make(
        'save-path-shared-temp',
        cfg,
        systemTemp
          ? `session.save_path is empty: sessions go to the system temp dir ${path}`
          : `sessions are stored in the shared temporary directory ${path}`,
        at(sp?.origin),
      ),
    );
  }
  if (depth > 0) {
    out.push(
      make(
        'session-subdirs-required',
        cfg,
        `save_path depth ${depth}: PHP does not create the ${depth} levels of sub-directories below ${path}`,
        at(sp?.origin),
      ),
    );
    out.push(make('gc-disabled-by-depth', cfg, `save_path depth ${depth}: PHP never garbage-collects files below ${path}`, at(sp?.origin)));
  }
  if (/^[^;]*;[^;]*;/.test(String(sp?.value ?? ''))) {
    out.push(make('file-mode-umask', cfg, `save_path MODE ${cfg.savePath.mode} is reduced by the PHP process umask`, at(sp?.origin)));
  }
  if (iniValue(cfg, 'session.save_handler') === 'files')
    out.push(
      ...checkSaveDir(cfg, ctx, path, depth, sp?.origin, systemTemp || SHARED_TEMP.some((t) => path === t || path.startsWith(t + '/'))),
    );
  return out;
}

/** A redis save_path: servers without TLS, connections without (lower-case) auth. */
function checkRedisSavePath(cfg: AuditedConfig): Finding[] {
  if (cfg.savePath.kind !== 'redis') return [];
  const out: Finding[] = [];
  const sp = cfg.values['session.save_path'];
  for (const s of cfg.savePath.servers) {
    if (s.scheme === 'unix') continue;
    if (!s.tls)
      out.push(
        make(
          'redis-no-tls',
          cfg,
          `Redis ${s.host}${s.port !== null ? ':' + s.port : ''} is reached over ${s.scheme}:// without TLS`,
          at(sp?.origin),
        ),
      );
  }
  if (cfg.savePath.servers.some((s) => !s.auth)) {
    // phpredis reads only lower-case `auth`: `AUTH=` or `Auth=` is ignored, and silently so.
    const ignored = /(?:^|[?&\s,])(?!auth)[aA][uU][tT][hH](?:\[[^\]=&]*\]|%5B[^=&]*?%5D)?=/.test(String(sp?.value ?? ''));
    out.push(
      make(
        'redis-no-auth',
        cfg,
        ignored
          ? 'session.save_path has no lower-case auth parameter (phpredis ignores AUTH= in another case): the Redis connection is unauthenticated; write auth='
          : 'session.save_path has no auth parameter: the Redis connection is unauthenticated',
        at(sp?.origin),
      ),
    );
  }
  return out;
}

/** A Redis password in save_path, in an ini file every user can read. */
function checkSecretInFile(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  const sp = cfg.values['session.save_path'];
  if (sp === undefined || sp.origin === 'default' || !/(?:^|[?&\s,])auth(?:\[[^\]=&]*\]|%5B[^=&]*?%5D)?=[^&\s,]/i.test(String(sp.value)))
    return [];
  const st = ctx.fs.stat(sp.origin.file);
  if (st === null || st.mode < 0 || !otherReadable(st.mode)) return [];
  return [
    make(
      'secret-in-world-readable-file',
      cfg,
      `${sp.origin.file} (mode ${st.mode.toString(8).padStart(4, '0')}) holds the Redis password of session.save_path and is readable by every user`,
      at(sp.origin),
    ),
  ];
}

/** Session hardening: strict mode, cookie flags, SameSite, cookies only, no trans sid. */
function checkHardening(cfg: AuditedConfig): Finding[] {
  const out: Finding[] = [];
  const v = (k: string) => cfg.values[k];
  const val = (k: string) => iniValue(cfg, k);
  if (!phpBool(val('session.use_strict_mode')))
    out.push(
      make(
        'strict-mode-off',
        cfg,
        `session.use_strict_mode is off (${where(v('session.use_strict_mode')?.origin)})`,
        at(v('session.use_strict_mode')?.origin),
      ),
    );
  if (!phpBool(val('session.cookie_secure')))
    out.push(
      make(
        'cookie-not-secure',
        cfg,
        `session.cookie_secure is off (${where(v('session.cookie_secure')?.origin)})`,
        at(v('session.cookie_secure')?.origin),
      ),
    );
  if (!phpBool(val('session.cookie_httponly')))
    out.push(
      make(
        'cookie-not-httponly',
        cfg,
        `session.cookie_httponly is off (${where(v('session.cookie_httponly')?.origin)})`,
        at(v('session.cookie_httponly')?.origin),
      ),
    );
  if (v('session.cookie_samesite') !== undefined && val('session.cookie_samesite') === '')
    out.push(
      make(
        'cookie-no-samesite',
        cfg,
        `session.cookie_samesite is empty (${where(v('session.cookie_samesite')?.origin)})`,
        at(v('session.cookie_samesite')?.origin),
      ),
    );
  if (v('session.use_only_cookies') !== undefined && !phpBool(val('session.use_only_cookies')))
    out.push(
      make(
        'use-only-cookies-off',
        cfg,
        `session.use_only_cookies is off (${where(v('session.use_only_cookies')?.origin)})`,
        at(v('session.use_only_cookies')?.origin),
      ),
    );
  if (phpBool(val('session.use_trans_sid')))
    out.push(
      make(
        'use-trans-sid-on',
        cfg,
        `session.use_trans_sid is on (${where(v('session.use_trans_sid')?.origin)})`,
        at(v('session.use_trans_sid')?.origin),
      ),
    );
  return out;
}

/**
 * The session.* name `key` was probably meant to be (edit distance under 3), or, for any name with
 * "session" in it that PHP does not know (openssl_session_save_path from hardening guides,
 * session_save_path, session-cookie-secure), the part from "session" on, with `.`/`_`/`-` as the
 * separator after it, compared with the session.* names. `sessionAt`: where "session" starts, or -1.
 */
function closestSessionName(key: string, known: readonly string[]): { best: string | null; sessionAt: number } {
  const lower = key.replace(/^#+\s*/, '').toLowerCase();
  let best: string | null = null;
  let bestD = 3;
  for (const k of known) {
    const d = k === lower ? 0 : distance(lower, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  const sessionAt = lower.indexOf('session');
  if (sessionAt >= 0 && best === null) {
    const tail = lower
      .slice(sessionAt + 'session'.length)
      .replace(/^[\s._-]+/, '')
      .replace(/-/g, '_');
    const guess = `session.${tail}`;
    let guessD = Math.max(3, Math.floor(guess.length / 6) + 1);
    for (const k of known) {
      const d = k === guess ? 0 : distance(guess, k);
      if (d < guessD) {
        best = k;
        guessD = d;
      }
    }
  }
  return { best, sessionAt };
}

/** Names that do nothing (unknown, removed, `#`-prefixed), and deprecated directives. */
function checkDirectiveNames(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  const out: Finding[] = [];
  const known = ctx.engine.directiveNames(cfg.phpVersion).filter((n) => n.startsWith('session.'));
  const seen = new Set<string>();
  for (const e of ctx.entries) {
    if (e.offset !== undefined || seen.has(`${e.key}\0${e.file}\0${e.line}`)) continue;
    seen.add(`${e.key}\0${e.file}\0${e.line}`);
    if (ctx.engine.directive(e.key, cfg.phpVersion) !== null) {
      const note = ctx.engine.deprecation(e.key, e.value, cfg.phpVersion);
      if (note !== null)
        out.push(make('deprecated-directive', cfg, `${e.key} at ${e.file}:${e.line}: ${note}`, { file: e.file, line: e.line }));
      continue;
    }
    const removed = ctx.engine.removedIn(e.key);
    if (removed !== null) {
      out.push(
        make('removed-directive', cfg, `${e.key} at ${e.file}:${e.line} was removed in PHP ${removed}: the line does nothing`, {
          file: e.file,
          line: e.line,
        }),
      );
      continue;
    }
    const { best, sessionAt } = closestSessionName(e.key, known);
    if (sessionAt >= 0 && !e.key.startsWith('#') && directiveOfUnmodelledModule(e.key, cfg, ctx)) continue;
    if (e.key.startsWith('session.') || best !== null || sessionAt >= 0) {
      const hint = e.key.startsWith('#')
        ? ` ('#' is not a comment since PHP 7.0${best !== null ? `; it hides ${best}` : ''})`
        : best !== null
          ? ` (did you mean ${best}?)`
          : '';
      out.push(
        make('unknown-directive', cfg, `${e.key} at ${e.file}:${e.line} is not a PHP directive${hint}: the line does nothing`, {
          file: e.file,
          line: e.line,
        }),
      );
    }
  }
  return out;
}

/**
 * Runs every configuration-level rule.
 * @returns findings in rule order; never throws on odd input.
 */
export function checkConfig(cfg: AuditedConfig, ctx: RuleContext): Finding[] {
  return [
    ...checkSyntax(cfg, ctx),
    ...checkStorage(cfg),
    ...checkUnquotedValues(cfg, ctx),
    ...checkSavePathForms(cfg, ctx),
    ...checkFilesSavePath(cfg, ctx),
    ...checkRedisSavePath(cfg),
    ...checkSecretInFile(cfg, ctx),
    ...checkHardening(cfg),
    ...checkDirectiveNames(cfg, ctx),
  ];
}

/**
 * A directive PHP may well know although the audit's directive table does not: one the configuration
 * reports with a value (a module the local php loaded, `--ini` with an extension probe), or
 * `<module>.name` of a module loaded with `extension=` that the table has no directive of at all
 * (pecl memcache's memcache.session_redundancy, suhosin7's suhosin.session.*). Nothing can be said
 * about those, so no unknown-directive is reported for them.
 */
function directiveOfUnmodelledModule(key: string, cfg: AuditedConfig, ctx: RuleContext): boolean {
  const v = cfg.values[key];
  if (v !== undefined && v.value !== false) return true;
  const dot = key.indexOf('.');
  if (dot <= 0) return false;
  const module = key.slice(0, dot).toLowerCase();
  if (!(ctx.extensions ?? []).some((x) => x.toLowerCase() === module)) return false;
  return !ctx.engine.directiveNames(cfg.phpVersion).some((n) => n.toLowerCase().startsWith(`${module}.`));
}

/** Directory and sample-file permission checks for the files handler (lstat only). */
function checkSaveDir(
  cfg: AuditedConfig,
  ctx: RuleContext,
  path: string,
  depth: number,
  origin: Origin | undefined,
  sharedTemp: boolean,
): Finding[] {
  if (!path.startsWith('/'))
    return [
      make(
        'save-path-missing',
        cfg,
        `save_path directory "${path}" is relative: PHP resolves it against the working directory of each request`,
        at(origin),
      ),
    ];
  const st = ctx.fs.lstat(path);
  // A copied /etc has no /tmp: the shared temp dir is already save-path-shared-temp.
  if (st === null && sharedTemp) return [];
  if (st === null || st.type !== 'dir') {
    const what =
      st === null ? 'does not exist' : st.type === 'symlink' ? 'is a symbolic link (not followed by the audit)' : 'is not a directory';
    return [make('save-path-missing', cfg, `session directory ${path} ${what} on ${ctx.fs.label}`, at(origin))];
  }
  return [
    ...checkSaveDirMode(cfg, path, st.mode, origin, sharedTemp),
    ...sessionFileFindings(cfg, ctx, path, sessionFileWalk(ctx, path, depth), origin),
  ];
}

/** save-path-world-readable / -writable for a session directory's mode (a shared temp dir is save-path-shared-temp instead). */
function checkSaveDirMode(cfg: AuditedConfig, path: string, dirMode: number, origin: Origin | undefined, sharedTemp: boolean): Finding[] {
  const out: Finding[] = [];
  if (sharedTemp || dirMode < 0) return out;
  const mode = dirMode.toString(8).padStart(4, '0');
  if (otherReadable(dirMode))
    out.push(
      make('save-path-world-readable', cfg, `session directory ${path} has mode ${mode}: other users can list session IDs`, at(origin)),
    );
  if ((dirMode & 0o002) !== 0 && (dirMode & 0o1000) === 0)
    out.push(
      make('save-path-world-writable', cfg, `session directory ${path} has mode ${mode} (world-writable, no sticky bit)`, at(origin)),
    );
  return out;
}

/**
 * What one walk of a session directory's files saw (sessionFileWalk): the modes of the first
 * `sampled` files by name, and the owners of up to OWNER_COUNT_LIMIT files.
 */
export interface SessionFileWalk {
  sampled: number;
  /** Sampled files readable by other users, and the first of them (redacted path and mode). */
  others: number;
  exampleOthers: string;
  /** Sampled files readable by their group (and not by others), and the first of them. */
  group: number;
  exampleGroup: string;
  /** Session files lstat'ed for their owner (at most OWNER_COUNT_LIMIT). */
  counted: number;
  /** Session files per owning uid. */
  owners: Map<number, number>;
}

/**
 * The walk of a session directory's files, done once per directory, depth and audit run: several
 * configurations naming the same directory (the CLI, FPM and its pools, document-root variants) share
 * it through RuleContext.walks instead of lstat'ing up to OWNER_COUNT_LIMIT files each.
 */
function sessionFileWalk(ctx: RuleContext, path: string, depth: number): SessionFileWalk {
  const key = `${depth}:${path}`;
  const known = ctx.walks?.get(key);
  if (known !== undefined) return known;
  const walk = walkSessionFiles(ctx.fs, path, depth, ctx.sampleSize);
  ctx.walks?.set(key, walk);
  return walk;
}

/**
 * Walks `depth` levels of a session directory (the files handler's `N;` subdirectories, one
 * character each), lstat only: a symbolic link is neither followed nor counted. The first
 * `sampleSize` session files by name are checked for their mode, up to OWNER_COUNT_LIMIT for their owner.
 */
export function walkSessionFiles(fs: AuditFs, path: string, depth: number, sampleSize: number): SessionFileWalk {
  const w: SessionFileWalk = { sampled: 0, others: 0, exampleOthers: '', group: 0, exampleGroup: '', counted: 0, owners: new Map() };
  const visit = (dir: string, level: number) => {
    const names = fs.readdir(dir);
    if (names === null) return;
    for (const n of names.sort()) {
      if (w.counted >= OWNER_COUNT_LIMIT) return;
      const p = posix.join(dir, n);
      if (level < depth) {
        if (n.length === 1 && fs.lstat(p)?.type === 'dir') visit(p, level + 1);
        continue;
      }
      if (!n.startsWith('sess_')) continue;
      const fst = fs.lstat(p);
      if (fst === null || fst.type !== 'file') continue;
      w.counted++;
      if (fst.uid >= 0) w.owners.set(fst.uid, (w.owners.get(fst.uid) ?? 0) + 1);
      if (w.sampled >= sampleSize) continue;
      w.sampled++;
      sampleMode(w, p, fst.mode);
    }
  };
  visit(path, 0);
  return w;
}

/** Counts one sampled session file's mode into the walk (others-readable first, else group-readable). */
function sampleMode(w: SessionFileWalk, p: string, mode: number): void {
  if (mode < 0) return;
  if (otherReadable(mode)) {
    w.others++;
    w.exampleOthers ||= `${redactSessionPath(p)} (mode ${mode.toString(8).padStart(4, '0')})`;
  } else if ((mode & 0o040) !== 0) {
    w.group++;
    w.exampleGroup ||= `${redactSessionPath(p)} (mode ${mode.toString(8).padStart(4, '0')})`;
  }
}

/** The session-file findings of one configuration from its directory's walk. */
function sessionFileFindings(
  cfg: AuditedConfig,
  ctx: RuleContext,
  path: string,
  w: SessionFileWalk,
  origin: Origin | undefined,
): Finding[] {
  const out: Finding[] = [];
  if (w.others > 0)
    out.push(
      make(
        'session-file-readable-by-others',
        cfg,
        `${w.others} of ${w.sampled} sampled session files in ${path} are readable by other users, e.g. ${w.exampleOthers}`,
        at(origin),
      ),
    );
  if (w.group > 0)
    out.push(
      make(
        'session-file-group-readable',
        cfg,
        `${w.group} of ${w.sampled} sampled session files in ${path} are group-readable, e.g. ${w.exampleGroup}`,
        at(origin),
      ),
    );
  const describe = (uid: number): string => ctx.fs.describeUid?.(uid) ?? String(uid);
  const foreign = foreignOwnerMessage(path, w.owners, w.counted >= OWNER_COUNT_LIMIT, describe);
  if (foreign !== undefined) out.push(make('session-file-foreign-owner', cfg, foreign, at(origin)));
  return out;
}

/** How many session files of a directory the audit lstats for their owner, at most (sessionFileOwners). */
export const OWNER_COUNT_LIMIT = 50_000;

/**
 * The message of `session-file-foreign-owner` for a session directory's files per owning uid, or
 * undefined when PHP reads them all. PHP's files handler refuses a session file owned by neither root
 * nor the uid it runs as (php-src ext/session/mod_files.c, ps_files_open), and session-migrate skips
 * it (`foreign-owner`). The audit does not know the uid PHP runs as (an FPM pool's `user` is not read,
 * and a collected host's user names are not ours), so it takes the owner of most files, as plan does
 * without --php-user (packages/sources files.ts decidePhpUids: owners in similar numbers are reported
 * as such). Names uids and counts, never a file's contents.
 * @param capped the walk stopped at OWNER_COUNT_LIMIT files: the counts are of those
 * @param describe names a uid (AuditFs.describeUid: `33 (www-data)` from the live host's or the --root's
 *   user database); default the bare uid
 */
export function foreignOwnerMessage(
  path: string,
  owners: ReadonlyMap<number, number>,
  capped: boolean,
  describe: (uid: number) => string = String,
): string | undefined {
  const total = [...owners.values()].reduce((a, b) => a + b, 0);
  const of = capped ? `of the first ${total} session files` : `of the ${total} session files`;
  const list = (entries: ReadonlyArray<[number, number]>): string =>
    `${entries
      .slice(0, 4)
      .map(([uid, n]) => `uid ${describe(uid)}: ${n}`)
      .join(', ')}${entries.length > 4 ? ', ...' : ''}`;
  const ranked = [...owners].filter(([uid]) => uid !== 0).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  let decision: PhpOwnerDecision;
  try {
    decision = decidePhpUids(owners, undefined, path, describe);
  } catch {
    // Owners in similar numbers: which one is PHP's is not known; the others' files are not PHP's.
    return `session files in ${path} belong to several users (${list(ranked)}; counts ${of}): PHP's files handler reads only those of the user it runs as (and root's), the others are no sessions of it and session-migrate does not migrate them (plan asks for --php-user)`;
  }
  if (decision.refused === 0) return undefined;
  const [php] = decision.uids;
  const foreign = ranked.filter(([uid]) => uid !== php);
  return `${decision.refused} ${of} in ${path} are owned by another user than uid ${describe(php!)} (the owner of most of them, taken as the user PHP runs as) and root: ${list(foreign)}; PHP's files handler does not read them, and session-migrate does not migrate them (foreign-owner)`;
}

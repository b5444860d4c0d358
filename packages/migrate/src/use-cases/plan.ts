/**
 * The plan use case: scan every source and the target, build a Plan and write it (packages/migrate
 * plan.ts has the Plan file format). Prints nothing; returns the plan.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  DEFAULT_GC_MAXLIFETIME,
  UserFacingError,
  checkAclUserName,
  describeFsError,
  printable,
  checkWholeNumber,
} from '@session-migrate/common';
import { envOriginOf, parseFilesSavePath, readSessionIni, redactRedisSavePath, type SessionIniValue } from '@session-migrate/php-ini';
import type { KeyProvider } from '@session-migrate/envelope';
import type { LockingOptions } from '@session-migrate/generate';
import type { SerializeHandler } from '@session-migrate/php-session';
import {
  FilesSource,
  decidePhpUids,
  describeUid,
  resolvePhpUser,
  type PhpOwnerDecision,
  type Source,
  type SourceDescription,
} from '@session-migrate/sources';
import { memoryWarnings, readMemory, specFromUrl, type RedisConnection, type TlsFiles } from '@session-migrate/redis';
import {
  CLEANUP_MARGIN_SECONDS,
  PLAN_FORMAT,
  PLAN_VERSION,
  describeEnvVars,
  describeIniSetting,
  describePhpIniRules,
  expectedMemoryBytes,
  summarizeFilesByOwner,
  summarizeSource,
  writePlanFile,
  type FilesSummary,
  type GcMaxlifetimeFrom,
  type PhpIniRules,
  type Plan,
  type PlanTarget,
  type SourceSummary,
  type SummaryOptions,
} from '../plan.ts';
import { GENERATE_CHOICES_FILE, artifactsForPlan, describeChoices, readGenerateChoices, readThroughRedisPrefixes } from '../artifacts.ts';
import { resolveDuplicates, sumSummaries } from '../several-sources.ts';
import { readAgainAfterFailover } from '../source-failover.ts';
import {
  checkGcMaxlifetime,
  checkMasterWaitMs,
  checkPrefix,
  checkSourcesAgainstTarget,
  closeSources,
  codecFromProvider,
  openSources,
  openTarget,
  planKeyFor,
  readThroughSource,
  redisFailure,
  sourceList,
  withWarnings,
  type OnWarning,
} from './shared.ts';

export interface CreatePlanOptions {
  /** One source or several: `files:DIR` (or `files:N;MODE;DIR`, a save_path) or `redis:URL`. */
  source: string | readonly string[];
  /** Target URL: redis://, rediss://, redis+sentinel://, rediss+sentinel:// (a cluster is detected). */
  target: string;
  /** Where the key comes from; the plan records the provider, never the key. */
  key: KeyProvider;
  prefix: string;
  /** Plan file to write (atomically). */
  out: string;
  /**
   * session.gc_maxlifetime, seconds: the TTL migrated sessions get. Absent: the value PHP runs with
   * per `phpIni`, else DEFAULT_GC_MAXLIFETIME. With `phpIni`, a value shorter than PHP's is refused
   * unless `allowShorterTtl` (gcMaxlifetimeFromIni).
   */
  gcMaxlifetime?: number;
  /**
   * The PHP configuration the sessions were written under (plan --php-ini, --php-ini-scan-dir,
   * --fpm-pool, --fpm-pool-name): its effective session.gc_maxlifetime is read (readSessionIni).
   */
  phpIni?: PlanPhpIni;
  /** Accept a --gc-maxlifetime shorter than phpIni's session.gc_maxlifetime (plan --allow-shorter-ttl). */
  allowShorterTtl?: boolean;
  serializeHandler: SerializeHandler;
  /** Bytes; larger sessions are reported, not migrated. */
  maxSessionBytes: number;
  /** Where apply writes the PHP artifacts (must be a directory or creatable). */
  artifactsDir: string;
  /** Where the PHP files will live on the PHP hosts; default: artifactsDir. */
  installDir?: string;
  /** Generate the handler in read-through (migrating) mode over the one files source (docs/runbook.md). */
  readThrough?: boolean;
  /**
   * Locking and connection choices of the generated handler, and the Redis ACL user it connects as
   * (handlerUser, checked by checkAclUserName); absent: its defaults, and the target's user.
   */
  handler?: { locking?: LockingOptions; persistent?: boolean; handlerUser?: string };
  /** TLS files of the target and of a Redis source. */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  /**
   * The user(s) PHP runs as (plan --php-user, a name or a uid): only their session files and root's
   * are taken, as PHP's files handler does. Absent: the owner of most session files (decidePhpUids).
   */
  phpUsers?: readonly string[];
  /**
   * How long to wait for a failover to finish, ms, 0 to 600000 (checkMasterWaitMs; default 30000,
   * DEFAULT_FAILOVER_WAIT_MS; 0 looks once): a SCAN of a Redis Cluster (the target, a Redis source)
   * for a replica to take over the slots of a master lost mid-scan; a Sentinel target or Redis
   * source, before plan connects, for the master the sentinels report to answer as master
   * (commandRedisWait, as every command opens its target and sources: OpenOptions.waitForSentinelMaster), so the plan records the master after
   * the failover. None in time: one line, no plan written, exit 2 (run again).
   */
  masterWaitMs?: number;
  /**
   * Warning and note lines as they arise (OnWarning): a password in a URL, where the TTL comes from,
   * a PHP configuration that disagrees with the options, an artifacts directory this user cannot
   * write, the connections' notes. Default: warnToProcess (`process.emitWarning(line, { type: 'SessionMigrateWarning' })`); pass a function to take them instead.
   */
  onWarning?: OnWarning;
}

/** Where plan reads the PHP configuration from (see readSessionIni in packages/php-ini). */
export interface PlanPhpIni {
  /** The php.ini of the SAPI that writes the sessions, e.g. /etc/php/8.2/fpm/php.ini. */
  file: string;
  /** PHP_INI_SCAN_DIR (':'-separated, '' for none); default: conf.d beside `file` when it exists. */
  scanDir?: string;
  /** A php-fpm.conf or pool file whose pool's php_value / php_admin_value apply. */
  fpmConf?: string;
  /** The pool, when fpmConf defines several. */
  fpmPool?: string;
  /**
   * The PHP version whose ini rules apply (plan --php-version: "8.3", major.minor): from 8.3 on,
   * `${NAME:-fallback}`. Default: the version of the `php` on the PATH, else 8.2 (phpIniRulesFor).
   */
  phpVersion?: string;
}

/**
 * The PHP versions --php-version takes: the ini rules this package knows, 7.0 to 7.4 (7.4 was the
 * last 7.x, https://www.php.net/releases/) and 8.x with a one-digit minor (8.5 is the newest today;
 * a later 8.x is read by the 8.3+ rules). `8.99` or `7.9` is no PHP version: refused, not guessed.
 */
const PHP_VERSION_RE = /^(?:(7)\.0?([0-4])|(8)\.0?(\d))(?:\.\d+)?$/;

/** major.minor of a PHP_VERSION_RE match. */
const majorMinor = (m: RegExpExecArray): string => `${m[1] ?? m[3]}.${Number(m[2] ?? m[4])}`;

/**
 * The PHP version whose ini rules --php-ini is read by, as an operator expects: the one given
 * (--php-version), else that of the `php` on the PATH (`php -n -r 'echo PHP_VERSION;'`, asked once,
 * 10 s at most), else 8.2, the version this package's rules are checked against (said as assumed).
 * A php on the PATH need not be the PHP that writes the sessions (another version's php-fpm):
 * plan prints the version and how it was chosen.
 * @param php the binary to ask (default `php`, looked up in PATH)
 * @returns major.minor and how it was chosen
 * @throws UserFacingError for a --php-version that is not 7.0-7.4 or 8.x (`8.3`, `8.3.4`)
 */
export function phpIniRulesFor(given: string | undefined, php = 'php'): PhpIniRules {
  if (given !== undefined) {
    const m = PHP_VERSION_RE.exec(given.trim());
    if (m === null)
      throw new UserFacingError(
        `--php-version ${printable(given)}: not a PHP version whose ini rules plan knows (give 7.0 to 7.4 or 8.x as major.minor, e.g. 8.3)`,
      );
    return { phpVersion: majorMinor(m), from: 'option' };
  }
  let out: string;
  try {
    out = execFileSync(php, ['-n', '-r', 'echo PHP_VERSION;'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    // no php (ENOENT, EACCES), or one that fails or hangs (an exit status, a signal): assumed
    const e = err as NodeJS.ErrnoException & { status?: number | null; signal?: string | null };
    if (e.code === 'ENOENT' || e.code === 'EACCES' || typeof e.status === 'number' || typeof e.signal === 'string')
      return { phpVersion: '8.2', from: 'assumed' };
    throw err;
  }
  const m = PHP_VERSION_RE.exec(out.trim());
  return m !== null ? { phpVersion: majorMinor(m), from: 'php-binary' } : { phpVersion: '8.2', from: 'assumed' };
}

/**
 * A warning when a setting plan uses was expanded from `${NAME}` read from plan's own environment
 * (EnvOrigin.envVars of the SessionIniValue): PHP expands it from its own process's environment (php-fpm's when it
 * starts: php-src Zend/zend_ini_parser.y zend_ini_get_var, getenv), which may hold another value.
 * `shown` is the value to name (gc_maxlifetime's number), or undefined to name none: the values of
 * other variables are never printed.
 */
export function noteEnvExpansion(key: string, v: SessionIniValue, shown: string | undefined, onWarning: OnWarning | undefined): void {
  if (v.envVars === undefined) return;
  onWarning?.(
    `warning: ${key}${shown !== undefined ? ` ${shown}` : ''} (${describeIniSetting(v)}) is expanded from ${describeEnvVars(v)}, read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
  );
}

/**
 * The TTL plan gives migrated sessions, from --gc-maxlifetime and the effective session.gc_maxlifetime
 * of the PHP configuration given (readSessionIni: php.ini + scan dir + FPM pool, as php-src
 * main/php_ini.c and sapi/fpm/fpm/fpm_php.c apply them). Sessions live in Redis for the TTL; PHP's
 * files GC keeps them gc_maxlifetime after their last write (ext/session/mod_files.c
 * ps_files_cleanup_dir), so a shorter TTL logs users out before PHP would have:
 * - no --gc-maxlifetime: PHP's value (a note says where it was set);
 * - --gc-maxlifetime shorter: refused, unless allowShorterTtl (then a warning);
 * - equal or longer: taken (longer: a note; sessions live longer in Redis than PHP would keep them).
 * Without phpIni: --gc-maxlifetime, else DEFAULT_GC_MAXLIFETIME, as before.
 * The files are read by the ini rules of the PHP version phpIniRulesFor picks (phpIni.phpVersion,
 * else `phpBinary` on the PATH, else 8.2), said in a note.
 * @param env the environment `${NAME}` is expanded from (plan's; PHP uses its own)
 * @param phpBinary the php asked for its version when phpIni.phpVersion is not given
 * @returns seconds, where they came from (recorded in the plan: Plan php.gcMaxlifetimeFrom), the
 *   values readSessionIni read (for the consistency notes) and the version whose rules read them
 *   (Plan php.iniRules), if any
 * @throws UserFacingError (one line) for a file that cannot be read or parsed, a session.gc_maxlifetime
 *   that is not a whole number of seconds from 1 to 2^31-1, or a shorter --gc-maxlifetime
 */
export function gcMaxlifetimeFromIni(
  options: Pick<CreatePlanOptions, 'gcMaxlifetime' | 'phpIni' | 'allowShorterTtl' | 'onWarning'>,
  env: Record<string, string | undefined> = process.env,
  phpBinary = 'php',
): {
  gcMaxlifetime: number;
  from: GcMaxlifetimeFrom;
  ini?: Extract<ReturnType<typeof readSessionIni>, { ok: true }>;
  iniRules?: PhpIniRules;
} {
  const given = options.gcMaxlifetime;
  if (options.phpIni === undefined)
    return given !== undefined
      ? { gcMaxlifetime: given, from: { kind: 'option' } }
      : { gcMaxlifetime: DEFAULT_GC_MAXLIFETIME, from: { kind: 'default' } };
  if (given !== undefined) checkGcMaxlifetime(given);
  const p = options.phpIni;
  const iniRules = phpIniRulesFor(p.phpVersion, phpBinary);
  const rules = describePhpIniRules(iniRules);
  const ini = readSessionIni({
    phpVersion: iniRules.phpVersion,
    iniFile: p.file,
    ...(p.scanDir !== undefined ? { scanDir: p.scanDir } : {}),
    ...(p.fpmConf !== undefined ? { fpmConf: p.fpmConf } : {}),
    ...(p.fpmPool !== undefined ? { fpmPool: p.fpmPool } : {}),
    env,
  });
  // a syntax error may be one in another PHP version's rules only (${VAR:-default} is 8.3+): say whose
  if (!ini.ok) throw new UserFacingError(`${printable(ini.error)}${ini.error.includes('syntax error') ? ` (${rules})` : ''}`);
  const v = ini.values['session.gc_maxlifetime'];
  const fromIni: GcMaxlifetimeFrom = {
    kind: 'php-ini',
    phpIni: resolve(p.file),
    ...(ini.pool !== undefined ? { pool: ini.pool } : {}),
    file: v.file,
    line: v.line,
    origin: v.origin,
    // the plan records where each key of envVarsVia was set, not its variables (EnvOrigin<EnvVarSite>)
    ...envOriginOf({ envVars: v.envVars, envVarsVia: v.envVarsVia?.map(({ key, file, line }) => ({ key, file, line })) }),
  };
  const from = `${describeIniSetting(v)}; --php-ini ${printable(p.file)}${ini.pool !== undefined ? `, pool ${printable(ini.pool)}` : ''}`;
  const php = /^\s*\d+\s*$/.test(v.value) ? Number(v.value.trim()) : NaN;
  if (!Number.isInteger(php) || php < 1 || php > 2 ** 31 - 1)
    throw new UserFacingError(
      `session.gc_maxlifetime "${printable(v.value)}" (${from}${v.envVars !== undefined ? `, expanded from ${describeEnvVars(v)} of plan's environment` : ''}) is not a whole number of seconds from 1 to 2147483647; plan cannot take it as a TTL (${rules})`,
    );
  // Said once the value is taken (a refusal is one line); not for --php-version (the operator chose;
  // the summary's PHP rules line says it again)
  const noteRules = (): void => {
    if (iniRules.from !== 'option') options.onWarning?.(`note: --php-ini ${printable(p.file)} ${rules}`);
  };
  noteEnvExpansion('session.gc_maxlifetime', v, String(php), options.onWarning);
  for (const d of ini.perDirectory)
    options.onWarning?.(
      `warning: [${printable(d.section)}] in ${printable(d.file)}:${d.line} sets session.gc_maxlifetime ${printable(d.value)} for the scripts it covers; plan gives every session one TTL: check it is not longer than the TTL taken`,
    );
  if (given === undefined) {
    options.onWarning?.(`note: TTL of migrated sessions ${php} s: session.gc_maxlifetime from ${from}`);
    noteRules();
    return { gcMaxlifetime: php, from: fromIni, ini, iniRules };
  }
  if (given < php) {
    const why = `--gc-maxlifetime ${given} is shorter than session.gc_maxlifetime ${php} that PHP runs with (${from}): migrated sessions would expire in Redis up to ${php - given} s before PHP would have removed them, logging their users out early`;
    if (options.allowShorterTtl !== true)
      throw new UserFacingError(`${why}; leave out --gc-maxlifetime to take ${php}, or give --allow-shorter-ttl`);
    options.onWarning?.(`warning: ${why} (--allow-shorter-ttl)`);
  } else if (given > php)
    options.onWarning?.(
      `note: --gc-maxlifetime ${given} is longer than session.gc_maxlifetime ${php} (${from}): migrated sessions stay in Redis up to ${given - php} s longer than PHP would have kept them; nobody is logged out early`,
    );
  noteRules();
  return { gcMaxlifetime: given, from: { kind: 'option' }, ini, iniRules };
}

/**
 * Warnings when the PHP configuration read for gc_maxlifetime disagrees with the plan's other inputs:
 * its session.serialize_handler is not --serialize-handler (apply would decode with the wrong one), or
 * the plan has files sources while its save handler is not `files`, or its save_path directory
 * (mod_files.c syntax, parseFilesSavePath) is none of the files sources (the php.ini may be another
 * pool's). Directories are compared as the
 * sources' own duplicate check does (packages/sources distinct.ts): by device and inode where the
 * save_path exists, so a save_path through a symbolic link (/var/lib/php/sessions -> /srv/sessions)
 * names the same directory as a source given by its target; by absolute path where it does not.
 */
export function iniConsistency(
  ini: NonNullable<ReturnType<typeof gcMaxlifetimeFromIni>['ini']>,
  serializeHandler: string,
  sources: readonly SourceDescription[],
  onWarning: OnWarning | undefined,
): void {
  const ser = ini.values['session.serialize_handler'];
  noteEnvExpansion('session.serialize_handler', ser, undefined, onWarning);
  if (ser.value !== serializeHandler)
    onWarning?.(
      `warning: session.serialize_handler is ${printable(ser.value)} in the PHP configuration (${describeIniSetting(ser)}), but --serialize-handler is ${serializeHandler}: sessions in the other format would not be migrated; check which is right`,
    );
  const files = sources.filter((d) => d.kind === 'files');
  if (files.length === 0) return;
  const handler = ini.values['session.save_handler'];
  noteEnvExpansion('session.save_handler', handler, undefined, onWarning);
  if (handler.value !== 'files') {
    onWarning?.(
      `warning: session.save_handler is ${printable(handler.value)} in the PHP configuration (${describeIniSetting(handler)}), not files, but the plan reads session files: is --php-ini the configuration of the PHP that writes these sessions?`,
    );
    return;
  }
  const sp = ini.values['session.save_path'];
  noteEnvExpansion('session.save_path', sp, undefined, onWarning);
  const path = parseFilesSavePath(sp.value).path;
  const st = statOrUndefined(path);
  const same = (d: SourceDescription): boolean =>
    d.kind === 'files' && (st !== undefined ? d.dev === st.dev && d.ino === st.ino : resolve(d.dir) === resolve(path));
  if (!files.some(same))
    onWarning?.(
      `warning: session.save_path in the PHP configuration is ${printable(redactRedisSavePath(sp.value))} (${describeIniSetting(sp)}), which no files source reads: is --php-ini the configuration of the PHP that writes these sessions?`,
    );
}

/** stat(2) of a path (symbolic links followed), or undefined when it cannot be read. */
function statOrUndefined(path: string): { dev: number; ino: number } | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * A note when the artifacts directory holds generate php's recorded choices (GENERATE_CHOICES_FILE):
 * apply renders with them, over this plan's mode, locking and persistent connections, field by field.
 * A damaged record is apply's error, not plan's.
 */
function noteGenerateChoices(outDir: string, onWarning: OnWarning | undefined): void {
  let kept;
  try {
    kept = readGenerateChoices(outDir);
  } catch {
    return;
  }
  if (kept === undefined) return;
  onWarning?.(
    `note: ${join(outDir, GENERATE_CHOICES_FILE)} holds the choices generate php made (${describeChoices(kept)}); apply keeps them over this plan's: run generate php --plan PLAN to take this plan's, or remove the file`,
  );
}

/**
 * A warning when this user cannot write the artifacts directory (or create it in its nearest existing
 * parent, `existing`): apply, run as this user, would stop there before writing to Redis. A warning,
 * not a refusal: apply may run as another user (root, the deploy user) than plan. access(2) with
 * W_OK|X_OK: the permission bits, ACLs and a read-only mount, as the write will meet them.
 */
function noteUnwritable(outDir: string, existing: string, onWarning: OnWarning | undefined): void {
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (err) {
    onWarning?.(
      `warning: --artifacts-dir ${printable(outDir)}: ${printable(existing)}: ${describeFsError(err)} for this user; apply run as this user would stop there (before writing to Redis): choose a directory it can write, or run apply as a user who can`,
    );
  }
}

/**
 * Builds a plan: checks the options, reads the key's IDs (the codec is wiped at once), opens every
 * source and the target (for writing: a replica is refused now), counts every source (each on its
 * own, and the session IDs in several), reads the target's keys under the prefix and its memory,
 * and writes the plan file.
 * @returns the plan as written to `options.out`.
 * @throws UserFacingError for a bad option, key, source or target, or a Redis failure; no plan file
 *   is written then.
 */
export async function createPlan(given: CreatePlanOptions): Promise<Plan> {
  const input = withWarnings(given);
  const prefix = checkPlanOptions(input);
  // Before anything is read or connected: a refused --gc-maxlifetime writes nothing.
  const { gcMaxlifetime, from, ini, iniRules } = gcMaxlifetimeFromIni(input);
  const options: ResolvedPlanOptions = {
    ...input,
    gcMaxlifetime,
    gcMaxlifetimeFrom: from,
    ...(iniRules !== undefined ? { iniRules } : {}),
  };
  const specs = sourceList(options.source);
  const outDir = resolve(options.artifactsDir);
  noteUnwritable(outDir, checkCanCreateDir(outDir, '--artifacts-dir'), options.onWarning);
  const { codec, ids } = await codecFromProvider(options.key);
  codec.wipe(); // plan only needs the IDs
  const warning = options.onWarning !== undefined ? { onWarning: options.onWarning } : {};
  noteGenerateChoices(outDir, options.onWarning);
  // The target URL and TLS options are checked before anything is opened.
  const targetSpec = specFromUrl(options.target, options.tls ?? {}, 'target', warning);
  const phpUids = options.phpUsers !== undefined && options.phpUsers.length > 0 ? options.phpUsers.map(resolvePhpUser) : undefined;
  const failoverWait = options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {};
  const sources = await openSources(specs, {
    maxSessionBytes: options.maxSessionBytes,
    ...(options.sourceTls !== undefined ? { tls: options.sourceTls } : {}),
    ...failoverWait,
    ...warning,
  });
  try {
    const descriptions = sources.map((s) => s.describe());
    // The handler reads through one legacy save_path: say so before anything is read or connected.
    const primary = options.readThrough === true ? readThroughSource(descriptions) : descriptions[0]!;
    if (ini !== undefined) iniConsistency(ini, options.serializeHandler, descriptions, options.onWarning);
    const php = { gcMaxlifetime: options.gcMaxlifetime, serializeHandler: options.serializeHandler };
    // Files sources are read now, before the target is connected, as their owners decide errors
    // (decidePhpUids) that come before any Redis error.
    const filesSummaries = new Map<Source, SourceSummary>();
    for (const s of sources) {
      if (!(s instanceof FilesSource)) continue;
      const { summary, pastCleanup } = await decideOwnersAndSummarize(s, phpUids, php);
      filesSummaries.set(s, summary);
      const evidence = gcMaxlifetimeEvidence(s.describe().savePath, summary.found, pastCleanup, options.gcMaxlifetime);
      if (evidence !== undefined) options.onWarning?.(evidence);
    }
    // write: the plan is for writing; a replica is refused now rather than by apply.
    // Behind Sentinel: the master after a failover in progress, not the one going away (openTarget).
    const conn = await openTarget({ spec: targetSpec }, { write: true, command: 'plan', prefix, ...failoverWait, ...warning });
    try {
      checkSourcesAgainstTarget(sources, { ...conn.description, prefix });
      // The handler reads through a Redis source only over its own connection: the target's data.
      if (options.readThrough === true) readThroughRedisPrefixes(descriptions, conn.description);
      const plan = await buildPlan(options, { sources, descriptions, primary, conn, prefix, outDir, ids, filesSummaries });
      writePlanFile(options.out, plan);
      return plan;
    } finally {
      conn.close();
    }
  } finally {
    await closeSources(sources);
  }
}

/**
 * Settles which uids PHP runs as for a files source (--php-user, else the owner of most of its
 * session files: decidePhpUids) and restricts the source to them, so the plan's counts, and apply,
 * verify and purge after it, take only the files PHP's files handler would (packages/sources
 * phpAcceptsOwner). Recorded in the source's description (`phpUids`, `phpUidsFrom`). The owners are
 * counted in the same walk that reads and counts the sessions (summarizeFilesByOwner): one walk of
 * the directory, not one to count owners and one to read.
 * @returns the source's summary, with the owner rule applied
 * @throws UserFacingError when the owners are ambiguous and no --php-user was given
 */
async function decideOwnersAndSummarize(
  files: FilesSource,
  given: readonly number[] | undefined,
  php: SummaryOptions,
): Promise<FilesSummary> {
  const d = files.describe();
  let decision: PhpOwnerDecision | undefined;
  const result = await summarizeFilesByOwner(files, php, (owners) => {
    decision = decidePhpUids(owners, given, `source files:${d.savePath}`, describeUid);
    return decision.uids;
  });
  files.acceptOwners(decision!.uids, decision!.inferred ? 'files' : 'php-user');
  return result;
}

/**
 * Session files older than gc_maxlifetime plus CLEANUP_MARGIN_SECONDS, as a share of those found,
 * from which plan warns that --gc-maxlifetime may be too small (gcMaxlifetimeEvidence).
 */
export const PAST_CLEANUP_WARN_SHARE = 0.1;

/**
 * plan's check of --gc-maxlifetime against the session files themselves: a warning when at least
 * PAST_CLEANUP_WARN_SHARE of them (and at least one) last changed more than gc_maxlifetime +
 * CLEANUP_MARGIN_SECONDS ago. Where PHP's sessions are cleaned, no such file is left:
 * - PHP's own GC deletes every session file whose mtime is more than gc_maxlifetime old (php-src
 *   ext/session/mod_files.c, ps_files_cleanup_dir: `(now - sbuf.st_mtime) > maxlifetime`);
 * - Debian's sessionclean (package php-common, built from https://salsa.debian.org/php-team/php-defaults,
 *   run at :09 and :39 by /etc/cron.d/php or phpsessionclean.timer) deletes `sess_*` files whose
 *   ctime is more than the largest session.gc_maxlifetime of the SAPIs' php.ini files for that
 *   save_path old, in whole minutes (`find -cmin +N`): at most 30 minutes and a run's duration late.
 * So many files past gc_maxlifetime + 1 h mean PHP runs with a longer session.gc_maxlifetime than
 * the plan's (apply would skip live sessions as expired and give the others too short TTLs: only
 * verify would tell, afterwards), or nothing cleans the directory (then PHP still serves those files:
 * its files handler reads a session file whatever its age, mod_files.c ps_files_read). Either way
 * the operator checks the value; a warning, not a refusal: a directory nobody cleans is legitimate,
 * and plan cannot tell the two apart from the files. A few stale files are not worth a line.
 * @param found session files the plan took (summary.found); pastCleanup: FilesSummary.pastCleanup
 * @returns the warning (one line), or undefined
 */
export function gcMaxlifetimeEvidence(savePath: string, found: number, pastCleanup: number, gcMaxlifetime: number): string | undefined {
  if (pastCleanup === 0 || pastCleanup < found * PAST_CLEANUP_WARN_SHARE) return undefined;
  const share = Math.round((pastCleanup / found) * 100);
  return `warning: source files:${printable(savePath)}: ${pastCleanup} of ${found} session files (${share} %) last changed more than --gc-maxlifetime ${gcMaxlifetime} s + ${CLEANUP_MARGIN_SECONDS / 3600} h ago and are still there, which PHP's GC and Debian's sessionclean do not leave: PHP runs with a longer session.gc_maxlifetime (apply would skip these as expired and give the others too short TTLs), or nothing cleans this directory; check session.gc_maxlifetime (php -i, the FPM pool's php_admin_value) and run plan again with --gc-maxlifetime SECONDS if it is longer (or with --php-ini FILE, which reads it)`;
}

/** CreatePlanOptions with the TTL settled, and where it came from (gcMaxlifetimeFromIni). */
type ResolvedPlanOptions = CreatePlanOptions & { gcMaxlifetime: number; gcMaxlifetimeFrom: GcMaxlifetimeFrom; iniRules?: PhpIniRules };

/** The option checks of createPlan, before anything is read. @returns the prefix. */
function checkPlanOptions(options: CreatePlanOptions): string {
  const prefix = checkPrefix(options.prefix);
  if (options.gcMaxlifetime !== undefined) checkGcMaxlifetime(options.gcMaxlifetime);
  checkMasterWaitMs(options.masterWaitMs);
  checkWholeNumber('max-session-bytes', options.maxSessionBytes, 1, 2 ** 31 - 1, 'bytes');
  if (options.handler?.handlerUser !== undefined) checkAclUserName(options.handler.handlerUser, '--handler-user');
  if (options.artifactsDir === '' || options.installDir === '')
    throw new UserFacingError('--artifacts-dir and --install-dir cannot be empty');
  if (sourceList(options.source).length === 0)
    throw new UserFacingError('plan needs --source (files:DIR or redis:URL; repeat it for several sources)');
  return prefix;
}

/** What the sources and the target are now, made into a Plan (artifacts' file list included). */
async function buildPlan(
  options: ResolvedPlanOptions,
  open: {
    sources: Source[];
    descriptions: SourceDescription[];
    primary: SourceDescription;
    conn: RedisConnection;
    prefix: string;
    outDir: string;
    ids: { currentKeyId: string; lookupId: string };
    /** Summaries of the sources read already (files sources: decideOwnersAndSummarize). */
    filesSummaries: ReadonlyMap<Source, SourceSummary>;
  },
): Promise<Plan> {
  const { sources, descriptions, conn, prefix } = open;
  const php = { gcMaxlifetime: options.gcMaxlifetime, serializeHandler: options.serializeHandler };
  // Behind Sentinel, a Redis source's SCAN cut short by a failover: counted again from the beginning
  // on the new master (readAgainAfterFailover), never merged with the counts of the pass cut short.
  const { parts, duplicates } = await readAgainAfterFailover(sources, 'plan', options.masterWaitMs, async () => {
    const counted: SourceSummary[] = [];
    for (const source of sources) counted.push(open.filesSummaries.get(source) ?? (await summarizeSource(source, php)));
    return { parts: counted, duplicates: (await resolveDuplicates(sources, php)).report };
  });
  // The sources as read: behind Sentinel, after such a new start, the master the counts came from.
  const read = sources.map((s) => s.describe());
  const primary = read[descriptions.indexOf(open.primary)] ?? open.primary;
  const summary = sumSummaries(parts);
  // A superseded copy is not copied: the total counts each session once.
  summary.live -= duplicates.superseded.reduce((a, b) => a + b, 0);
  summary.liveBytes -= duplicates.supersededBytes.reduce((a, b) => a + b, 0);
  const installDir = options.installDir !== undefined ? resolve(options.installDir) : open.outDir;
  const plan: Plan = {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    createdAt: new Date().toISOString(),
    source: primary,
    sources: read.map((d, i) => ({ ...d, summary: parts[i]! })),
    ...(sources.length > 1 ? { duplicates } : {}),
    target: { ...conn.description, prefix, ...(await targetState(conn, prefix, expectedMemoryBytes(summary, prefix))) },
    key: planKeyFor(options.key, { keyId: open.ids.currentKeyId, lookupId: open.ids.lookupId }),
    php: {
      ...php,
      gcMaxlifetimeFrom: options.gcMaxlifetimeFrom,
      ...(options.iniRules !== undefined ? { iniRules: options.iniRules } : {}),
    },
    limits: { maxSessionBytes: options.maxSessionBytes },
    summary,
    ttlPolicy: ttlPolicy(descriptions, options.gcMaxlifetime),
    artifacts: {
      outDir: open.outDir,
      installDir,
      files: [],
      ...(options.readThrough === true ? { readThrough: true } : {}),
      ...(options.handler?.locking !== undefined ? { locking: options.handler.locking } : {}),
      ...(options.handler?.persistent !== undefined ? { persistent: options.handler.persistent } : {}),
      ...(options.handler?.handlerUser !== undefined ? { handlerUser: options.handler.handlerUser } : {}),
    },
  };
  plan.artifacts.files = artifactsForPlan(plan).map((a) => a.path);
  return plan;
}

/** The plan's TTL policy in words: how each kind of source gets its remaining lifetime, and which copy of a duplicate wins. */
export function ttlPolicy(sources: readonly SourceDescription[], gcMaxlifetime: number): string {
  const kinds = new Set(sources.map((d) => d.kind));
  return [
    ...(kinds.has('files')
      ? [`files: remaining lifetime, gc_maxlifetime (${gcMaxlifetime} s) minus the file's age; sessions already past it are not copied`]
      : []),
    ...(kinds.has('redis')
      ? [`Redis: the source key's remaining PTTL, kept to the millisecond; keys without a TTL get gc_maxlifetime (${gcMaxlifetime} s)`]
      : []),
    ...(sources.length > 1
      ? ['a session ID in several sources: the copy written last (longest remaining lifetime) wins; within 1 s, the source given first']
      : []),
  ].join('; ');
}

/**
 * Checks that `dir` is a directory or can be created (its nearest existing ancestor is a directory).
 * @returns that nearest existing directory (`dir` itself when it exists).
 * @throws UserFacingError naming the option when it is, or is below, something else
 */
function checkCanCreateDir(dir: string, option: string): string {
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) throw new UserFacingError(`${option} ${dir}: ${d} is not a directory`);
      return d;
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      if (dirname(d) === d) throw new UserFacingError(`${option} ${dir}: ${describeFsError(err)}`);
    }
  }
}

/** What plan records about the target beside its description: keys under the prefix now, and memory. */
async function targetState(
  conn: RedisConnection,
  prefix: string,
  expectedBytes: number,
): Promise<Pick<PlanTarget, 'existingKeysUnderPrefix' | 'memory' | 'replicasAtPlan' | 'mastersAtPlan'>> {
  try {
    const nodes = await readMemory(conn);
    let existingKeysUnderPrefix = 0;
    for await (const keys of conn.scan(prefix)) existingKeysUnderPrefix += keys.length;
    const memory = { expectedBytes, nodes, warnings: memoryWarnings(nodes, expectedBytes) };
    if (conn.topology === 'cluster') {
      // By node ID: a failover before apply changes the shard's master and its host:port.
      const masters = await conn.clusterMasters();
      return {
        existingKeysUnderPrefix,
        memory,
        replicasAtPlan: Object.fromEntries(masters.map((m) => [m.id, m.replicas])),
        mastersAtPlan: Object.fromEntries(masters.map((m) => [m.id, { node: m.node, replicaIds: m.replicaIds }])),
      };
    }
    return { existingKeysUnderPrefix, memory, replicasAtPlan: Object.fromEntries(await conn.replicasPerMaster()) };
  } catch (err) {
    throw redisFailure(err, conn, 'plan');
  }
}

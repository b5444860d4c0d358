/**
 * `session-migrate plan`: scan the source(s) and the target and write a plan file. The work is the
 * createPlan use case (packages/migrate/src/use-cases/plan.ts); this module parses, calls, prints.
 */
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { printable } from '@session-migrate/common';
import type { CreatePlanOptions, Plan, PlanPhpIni } from '@session-migrate/migrate';
import type { LockingOptions } from '@session-migrate/generate';
import type { SerializeHandler } from '@session-migrate/php-session';
import type { HostPort } from '@session-migrate/redis';
import { DEFAULT_ARTIFACTS_DIR, DEFAULT_MAX_SESSION_BYTES, DEFAULT_PLAN_FILE } from '../defaults.ts';
import { handlerChoicesFromArgs, handlerOptions } from '../handler-options.ts';
import { keyProviderFromArgs } from '../key-options.ts';
import { checkOptionNeeds } from '../option-needs.ts';
import { firstFew, formatBytes, formatCounts, sourcesTable } from '../output.ts';
import { allTlsOptions, tlsFilesFromArgs, warn } from '../redis-options.ts';
import {
  masterWaitOption,
  TARGET_OPTION,
  given,
  keyOptions,
  phpOptions,
  defineCommand,
  type CommandFactory,
  type OptionArgs,
  type Print,
} from './context.ts';

/** plan's arguments: the use case's options, and `--json`. */
export interface PlanArgs extends Omit<CreatePlanOptions, 'onWarning'> {
  json: boolean;
}

/**
 * plan's options, in --help's order: the key provider and --prefix (keyOptions), --gc-maxlifetime and
 * --serialize-handler (phpOptions), both roles' TLS files, the handler's choices, then plan's own
 * (--master-wait-ms: masterWaitOption, shared by every command with a target).
 */
function planOptions(y: Argv) {
  const options = handlerOptions(allTlsOptions(phpOptions(keyOptions(y))))
    .option('source', {
      type: 'string',
      array: true,
      demandOption: true,
      describe:
        "repeatable: several directories, or files plus a Redis source. files:DIR (DIR may be a save_path like '2;/var/lib/php/sessions'), or redis:URL for plaintext phpredis sessions (redis[s]://[USER@]host:port/db?prefix=P, redis[s]+sentinel://host:port/MASTER/db?prefix=P, or tcp://host:port?auth=..&prefix=..&database=..; a cluster is detected; TLS: --source-tls-*; password: SESSION_MIGRATE_SOURCE_REDIS_PASSWORD)",
    })
    .option('target', { ...TARGET_OPTION, demandOption: true })
    .option('out', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file to write' })
    .option('artifacts-dir', {
      type: 'string',
      default: DEFAULT_ARTIFACTS_DIR,
      describe: 'where apply writes the PHP class and ini fragment',
    })
    .option('install-dir', { type: 'string', describe: 'where the PHP files will live on the PHP hosts (default: the artifacts dir)' })
    .option('max-session-bytes', {
      type: 'number',
      default: DEFAULT_MAX_SESSION_BYTES,
      describe:
        'larger sessions are not migrated, and apply and verify fail on them (their users would be logged out): raise it to copy them',
    })
    .option('read-through', {
      type: 'boolean',
      default: false,
      describe: 'generate the handler in read-through (migrating) mode: a Redis miss reads the old session file (docs/runbook.md)',
    })
    .option('php-user', {
      type: 'string',
      array: true,
      describe:
        "the user PHP runs as, a name or a uid (repeatable: several pools): only its session files and root's are taken, as PHP's files handler does; default: the owner of most session files (plan prints it)",
    })
    .option('gc-maxlifetime', {
      type: 'number',
      // phpOptions' default is dropped: plan must tell a value given from none (gcMaxlifetimeFromIni).
      default: undefined,
      describe:
        "session.gc_maxlifetime in seconds: the TTL migrated sessions get (default: the --php-ini value, else 1440); with --php-ini, a shorter value than PHP's is refused (it logs users out early) unless --allow-shorter-ttl",
    })
    .option('master-wait-ms', masterWaitOption('plan'));
  return phpIniOptions(options).option('json', { type: 'boolean', default: false, describe: 'print the plan as JSON' });
}

/**
 * plan's options that say which php.ini PHP runs with (--php-ini and what goes with it); read with
 * phpIniFromArgs.
 */
function phpIniOptions<T>(y: Argv<T>) {
  return y
    .option('php-ini', {
      type: 'string',
      describe:
        "the php.ini of the PHP that writes these sessions (e.g. /etc/php/8.2/fpm/php.ini): plan reads the session.gc_maxlifetime PHP runs with from it, its scan directory and --fpm-pool, and warns when its serialize_handler or files save_path differ from the plan's",
    })
    .option('php-ini-scan-dir', {
      type: 'string',
      describe: "with --php-ini: PHP_INI_SCAN_DIR, ':'-separated, '' for none (default: conf.d beside the php.ini, when it exists)",
    })
    .option('fpm-pool', {
      type: 'string',
      describe:
        'with --php-ini: a php-fpm pool file or php-fpm.conf (include= followed) whose php_value / php_admin_value apply over the php.ini',
    })
    .option('fpm-pool-name', { type: 'string', describe: 'with --fpm-pool: the pool, when the file defines several' })
    .option('php-version', {
      type: 'string',
      describe:
        'with --php-ini: the PHP version (major.minor, e.g. 8.3) whose ini rules the files are read by (8.3 added ${VAR:-default}); default: the version of the php on the PATH, else 8.2 (plan says which)',
    })
    .option('allow-shorter-ttl', {
      type: 'boolean',
      default: false,
      describe: "with --php-ini: accept a --gc-maxlifetime shorter than PHP's session.gc_maxlifetime (sessions expire early in Redis)",
    });
}

/**
 * plan's arguments from its parsed options; an option not given stays absent (the use case's default).
 * @throws UserFacingError for a key option, --php-ini group, TLS file or handler choice given wrong
 */
function planArgsFromOptions(a: OptionArgs<typeof planOptions>): PlanArgs {
  return {
    source: a.source,
    target: a.target,
    key: keyProviderFromArgs(a, true)!,
    prefix: a.prefix,
    out: a.out,
    ...given('gcMaxlifetime', a['gc-maxlifetime'] as number | undefined),
    ...given('phpIni', phpIniFromArgs(a)),
    allowShorterTtl: a['allow-shorter-ttl'],
    serializeHandler: a['serialize-handler'] as SerializeHandler,
    maxSessionBytes: a['max-session-bytes'],
    artifactsDir: a['artifacts-dir'],
    ...given('installDir', a['install-dir'] as string | undefined),
    readThrough: a['read-through'],
    ...given('phpUsers', a['php-user'] as string[] | undefined),
    ...given('masterWaitMs', a['master-wait-ms'] as number | undefined),
    json: a.json,
    tls: tlsFilesFromArgs(a, 'target'),
    sourceTls: tlsFilesFromArgs(a, 'source'),
    handler: handlerChoicesFromArgs(a),
  };
}

export const planModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'plan',
    describe: 'scan the source and target and write a plan file',
    builder: planOptions,
    handler: (a) => run(() => planCommand(planArgsFromOptions(a), print))(),
  });

/**
 * plan's --php-ini, --php-ini-scan-dir, --fpm-pool, --fpm-pool-name and --php-version as the use case's phpIni.
 * @returns undefined without --php-ini. @throws UserFacingError (checkOptionNeeds) when the others, or
 *   --allow-shorter-ttl, come without it, or --fpm-pool-name without --fpm-pool.
 */
export function phpIniFromArgs(a: Record<string, unknown>): PlanPhpIni | undefined {
  const file = a['php-ini'] as string | undefined;
  const scanDir = a['php-ini-scan-dir'] as string | undefined;
  const fpmConf = a['fpm-pool'] as string | undefined;
  const fpmPool = a['fpm-pool-name'] as string | undefined;
  const phpVersion = a['php-version'] as string | undefined;
  // "--php-version needs --php-ini FILE", "--fpm-pool and --php-version need --php-ini FILE": what was given
  checkOptionNeeds(a, ['php-ini-scan-dir', 'fpm-pool', 'fpm-pool-name', 'php-version', 'allow-shorter-ttl'], 'php-ini', '--php-ini FILE');
  if (file === undefined) return undefined;
  checkOptionNeeds(a, ['fpm-pool-name'], 'fpm-pool', '--fpm-pool FILE');
  return {
    file,
    ...given('scanDir', scanDir),
    ...given('fpmConf', fpmConf),
    ...given('fpmPool', fpmPool),
    ...given('phpVersion', phpVersion),
  };
}

/**
 * Runs createPlan and prints the plan (a summary, or the plan as JSON).
 * @returns 0. @throws UserFacingError from createPlan.
 */
export async function planCommand(args: PlanArgs, print: Print): Promise<number> {
  const [
    { createPlan, describeGcMaxlifetimeFrom, describeHandlerUser, describePhpIniRules, handlerUserFor },
    { formatHostPort },
    { DEFAULT_LOCKING },
    { describeUid },
  ] = await Promise.all([
    import('@session-migrate/migrate'),
    import('@session-migrate/redis'),
    import('@session-migrate/generate'),
    import('@session-migrate/sources'),
  ]);
  const { json, ...options } = args;
  const plan = await createPlan({ ...options, onWarning: warn });
  if (json) print(JSON.stringify(plan, null, 2));
  else
    printPlanSummary(plan, args.out, print, {
      formatHostPort,
      locking: DEFAULT_LOCKING,
      describeUid,
      handlerUserLine: (p) => describeHandlerUser(handlerUserFor(p)),
      ttlFromLine: (p) => `${p.php.gcMaxlifetime} s: ${describeGcMaxlifetimeFrom(p.php.gcMaxlifetimeFrom)}`,
      iniRulesLine: (p) => (p.php.iniRules !== undefined ? `--php-ini ${describePhpIniRules(p.php.iniRules)}` : undefined),
    });
  return 0;
}

/** What the plan printer needs from packages loaded with the use case. */
interface PlanPrintHelpers {
  formatHostPort: (h: HostPort) => string;
  locking: Readonly<Required<LockingOptions>>;
  /** `33 (www-data)` for a uid (packages/sources users.ts). */
  describeUid: (uid: number) => string;
  /** The line on the ACL user the handler connects as (packages/migrate artifacts.ts describeHandlerUser). */
  handlerUserLine: (plan: Plan) => string;
  /** Where the plan's TTL came from (packages/migrate plan.ts describeGcMaxlifetimeFrom). */
  ttlFromLine: (plan: Plan) => string;
  /** The PHP version whose ini rules --php-ini was read by (describePhpIniRules), undefined without --php-ini. */
  iniRulesLine: (plan: Plan) => string | undefined;
}

/** How a plan's target (or Redis source) is named in reports: URL, topology, user, TLS, nodes. */
export function describeRedisForPrint(
  t: Plan['target'] | Extract<Plan['source'], { kind: 'redis' }>,
  formatHostPort: (h: HostPort) => string,
): string {
  const parts: string[] = [t.url];
  if (t.topology === 'cluster')
    parts.push(`Redis Cluster, ${t.nodes?.length ?? 0} master(s): ${(t.nodes ?? []).map(formatHostPort).join(', ')}`);
  else if (t.topology === 'sentinel') parts.push(`Sentinel master "${t.masterName ?? ''}", now at ${formatHostPort(t)}`);
  if (t.username !== undefined) parts.push(`user "${printable(t.username)}"`);
  if (t.auth) parts.push('with AUTH');
  if (t.tls)
    parts.push(
      `TLS${t.tlsFiles?.caFile !== undefined ? `, CA ${printable(t.tlsFiles.caFile)}` : ', system CAs'}${t.tlsFiles?.certFile !== undefined ? `, client certificate ${printable(t.tlsFiles.certFile)}` : ''}${t.tlsFiles?.serverName !== undefined ? `, name ${printable(t.tlsFiles.serverName)}` : ''}`,
    );
  return parts.join('; ');
}

/** How a plan's source is named in reports (never with a password). */
export function describeSourceForPrint(source: Plan['source'], formatHostPort: (h: HostPort) => string): string {
  return source.kind === 'redis'
    ? `redis:${printable(source.spec)} (${describeRedisForPrint(source, formatHostPort)}, key prefix "${printable(source.prefix)}")`
    : `files:${printable(source.savePath)} (${printable(source.dir)}, depth ${source.depth})`;
}

function printPlanSummary(plan: Plan, planPath: string, print: Print, h: PlanPrintHelpers): void {
  print('session-migrate plan');
  printPlanSources(plan, print, h);
  printPlanSessions(plan, print, h);
  printPlanTarget(plan, planPath, print, h);
}

/** The source line, or with several sources their table and duplicates. */
function printPlanSources(plan: Plan, print: Print, h: PlanPrintHelpers): void {
  const s = plan.summary;
  if (plan.sources.length === 1) {
    print(`  source      ${describeSourceForPrint(plan.source, h.formatHostPort)}`);
    return;
  }
  print(`  sources     ${plan.sources.length}, counted each on its own:`);
  plan.sources.forEach((d, i) => print(`    #${i + 1} ${describeSourceForPrint(d, h.formatHostPort)}`));
  const sup = plan.duplicates?.superseded ?? [];
  for (const line of sourcesTable(
    ['found', 'to migrate', 'expired', 'empty', 'rejected', 'skipped', 'superseded'],
    [
      ...plan.sources.map((d, i) => ({
        label: `#${i + 1}`,
        values: [
          d.summary.found,
          d.summary.live - (sup[i] ?? 0),
          d.summary.expired,
          d.summary.empty,
          d.summary.corrupt,
          Object.values(d.summary.skipped).reduce((a, b) => a + b, 0),
          sup[i] ?? 0,
        ],
      })),
      {
        label: 'total',
        values: [
          s.found,
          s.live,
          s.expired,
          s.empty,
          s.corrupt,
          Object.values(s.skipped).reduce((a, b) => a + b, 0),
          sup.reduce((a, b) => a + b, 0),
        ],
      },
    ],
  ))
    print(line);
  const dup = plan.duplicates;
  if (dup !== undefined && dup.ids > 0) {
    print(
      `  duplicates  ${dup.ids} session ID(s) are in more than one source: ${dup.identical} the same (or only one copy live), ${dup.newerWins} different (the copy written last wins), ${dup.ties} different and written within 1 s (the source given first wins); the losing copies are not copied (superseded)`,
    );
    for (const d of dup.sample.slice(0, 10))
      print(
        `                ${d.id}: #${d.winner + 1} wins (${d.reason}); ${d.copies.map((c) => `#${c.source + 1} ${printable(c.location)}${c.ttlSeconds !== undefined ? ` ${c.ttlSeconds} s left` : ''}`).join(', ')}`,
      );
  }
}

/** What was found: sessions, formats, skipped entries and their warnings. */
function printPlanSessions(plan: Plan, print: Print, h: PlanPrintHelpers): void {
  const s = plan.summary;
  if ((s.noTtl ?? 0) > 0)
    print(`  NOTE        ${s.noTtl} source key(s) have no TTL: they get gc_maxlifetime (${plan.php.gcMaxlifetime} s)`);
  print(
    `  sessions    ${s.found} found: ${s.live} to migrate (${formatBytes(s.liveBytes)}), ${s.expired} already expired, ${s.empty} empty, ${s.corrupt} that PHP would reject`,
  );
  print(`  formats     ${formatCounts(s.formats)} (configured serialize_handler: ${plan.php.serializeHandler})`);
  if (s.serializerMismatch > 0) {
    print(
      `  WARNING     ${s.serializerMismatch} session(s) are not in the configured serialize_handler format (${plan.php.serializeHandler}): PHP fails to load them and deletes them; they are not migrated`,
    );
  }
  if (Object.keys(s.warnings).length > 0) print(`  notes       ${formatCounts(s.warnings)}`);
  for (const line of ownerLines(plan, h.describeUid)) print(line);
  print(`  skipped     ${formatCounts(s.skipped)}`);
  for (const k of s.skippedSample.slice(0, 10))
    print(`                ${printable(k.location)}: ${k.reason}${k.detail !== undefined ? ` (${printable(k.detail)})` : ''}`);
  const unread = s.skipped.unreadable ?? 0;
  if (unread > 0)
    print(
      `  WARNING     ${unread} session file(s) cannot be read by this user: apply would not copy them (their users would be logged out); run as the PHP user or root`,
    );
  const oversized = s.skipped.oversized ?? 0;
  if (oversized > 0)
    print(
      `  WARNING     ${oversized} session(s) larger than --max-session-bytes (${plan.limits.maxSessionBytes} bytes): apply would not copy them (their users would be logged out) and exits 1, verify fails them; run plan again with a larger --max-session-bytes`,
    );
  for (const d of plan.sources) {
    if (d.summary.found > 0) continue;
    print(
      `  WARNING     no session${d.kind === 'redis' ? 's' : ' files'} found in ${d.kind === 'redis' ? describeSourceForPrint(d, h.formatHostPort) : printable(d.dir)}${(d.summary.skipped.subdirectory ?? 0) > 0 ? "; it has one-character subdirectories: if session.save_path is 'N;/path', give --source 'files:N;/path'" : ''}`,
    );
  }
}

/**
 * plan's `owners` lines, one per files source: whose session files are taken (root's and the uids
 * PHP runs as that the plan recorded) and how many of other owners are not, since PHP's files
 * handler refuses them (packages/sources files.ts phpAcceptsOwner); an inferred user is said to be
 * one, so the operator checks it.
 */
export function ownerLines(plan: Pick<Plan, 'sources'>, describeUid: (uid: number) => string): string[] {
  const files = plan.sources.filter((d) => d.kind === 'files');
  return files.flatMap((d) => {
    if (d.kind !== 'files' || d.phpUids === undefined) return [];
    const where = files.length > 1 ? `files:${printable(d.savePath)}: ` : '';
    const refused = d.summary.skipped['foreign-owner'] ?? 0;
    const users = d.phpUids.map((u) => `uid ${describeUid(u)}`).join(', ');
    const taken =
      d.phpUids.length === 0
        ? `no session file yet, so the user PHP runs as is not known: only root's session files are taken, and apply fails on others; give --php-user`
        : d.phpUids.includes(0)
          ? `PHP runs as root (${d.phpUidsFrom === 'files' ? "every session file is root's" : '--php-user'}): session files of every owner are taken, as PHP's files handler does for root`
          : `session files owned by ${users} are taken${d.phpUidsFrom === 'files' ? ' (the owner of most of them: check it, or give --php-user)' : ' (--php-user)'}, and root's`;
    const others =
      refused > 0 ? `; ${refused} file(s) owned by other users are not: PHP's files handler refuses them ("not created by your uid")` : '';
    return [`  owners      ${where}${taken}${others}`];
  });
}

/**
 * plan's `replicas` line: the replicas connected to each master (`host:port`, or `*` for the one
 * master of a single server or Sentinel; a cluster's, recorded by node ID, named by their
 * `host:port` in target.mastersAtPlan) that the plan recorded as target.replicasAtPlan, fewest
 * first (a master without replica is never hidden in "and N more"); undefined when the plan has no
 * record. apply compares with it and names a master that has fewer then.
 */
export function replicasAtPlanLine(
  replicasAtPlan: Readonly<Record<string, number>> | undefined,
  mastersAtPlan?: Readonly<Record<string, { node: string }>>,
): string | undefined {
  if (replicasAtPlan === undefined) return undefined;
  // A cluster's masters are recorded by node ID: shown by their host:port at plan.
  const entries = Object.entries(replicasAtPlan)
    .map(([key, n]): [string, number] => [mastersAtPlan?.[key]?.node ?? key, n])
    .sort((a, b) => a[1] - b[1]);
  if (entries.length === 0) return undefined;
  return `  replicas    connected now: ${firstFew(entries.map(([node, n]) => `${node === '*' ? 'the master' : node}: ${n}`))} (apply names a master that has fewer when it runs)`;
}

/** Target, memory, key, TTL policy, artifacts, handler mode and the next step. */
function printPlanTarget(plan: Plan, planPath: string, print: Print, h: PlanPrintHelpers): void {
  const s = plan.summary;
  print(`  target      ${describeRedisForPrint(plan.target, h.formatHostPort)}`);
  print(`  prefix      "${plan.target.prefix}", ${plan.target.existingKeysUnderPrefix} key(s) under it now`);
  const replicas = replicasAtPlanLine(plan.target.replicasAtPlan, plan.target.mastersAtPlan);
  if (replicas !== undefined) print(replicas);
  const m = plan.target.memory;
  if (m !== undefined) {
    print(
      `  memory      expected ~${formatBytes(m.expectedBytes)} in Redis for ${s.live} session(s); ${m.nodes.map((n) => `${n.node}: used ${formatBytes(n.usedBytes)}, maxmemory ${n.maxmemory > 0 ? formatBytes(n.maxmemory) : 'none'}, policy ${n.policy}`).join('; ')}`,
    );
    for (const w of m.warnings) print(`  WARNING     ${w}`);
  }
  const from =
    plan.key.file !== undefined
      ? printable(plan.key.file)
      : plan.key.env !== undefined
        ? `environment variable ${plan.key.env}`
        : '--key-command';
  print(
    `  key         lookup ID ${plan.key.lookupId ?? 'unknown'} (checked by the PHP bootstrap), current key ID ${plan.key.keyId} (from ${from})`,
  );
  print(`  TTL         ${plan.ttlPolicy}`);
  print(`  TTL from    ${h.ttlFromLine(plan)}`);
  const rules = h.iniRulesLine(plan);
  if (rules !== undefined) print(`  PHP rules   ${rules}`);
  const generated = plan.artifacts.files.filter((f) => f !== 'autoload.php' && !f.startsWith('src/'));
  print(
    `  artifacts   ${generated.map((f) => resolve(plan.artifacts.outDir, f)).join(', ')}, and the handler's classes in ${resolve(plan.artifacts.outDir, 'src')}/ (${plan.artifacts.files.length - generated.length} files with autoload.php)`,
  );
  print(`  install dir ${plan.artifacts.installDir} (where PHP loads the bootstrap from; --install-dir)`);
  const lock = { ...h.locking, ...(plan.artifacts.locking ?? {}) };
  print(
    `  locking     ${lock.enabled ? `on: up to ${lock.retries} retries ${lock.waitMicros} µs apart, lock TTL max_execution_time or ${lock.ttlSeconds} s, on failure ${lock.onFailure}` : 'off: the last write wins (--locking to turn it on)'}; ${plan.artifacts.persistent === false ? 'one Redis connection per request' : 'persistent Redis connections'}`,
  );
  const others = plan.sources.length - 1;
  const legacyPrefixes = plan.artifacts.readThrough === true ? plan.sources.flatMap((d) => (d.kind === 'redis' ? [d.prefix] : [])) : [];
  print(
    `  handler     ${plan.artifacts.readThrough === true ? `read-through (migrating) mode: a Redis miss falls back to the files in ${plan.source.kind === 'files' ? printable(plan.source.dir) : '?'} (docs/runbook.md)${legacyPrefixes.length > 0 ? `, then the old phpredis keys ${legacyPrefixes.map((p) => `${printable(p)}<ID>`).join(', ')} in the target's Redis (read, never written; apply copies them too)` : ''}${others > legacyPrefixes.length ? `; the other source(s) are not read through: apply copies them` : ''}` : 'strict mode: sessions only in Redis'}`,
  );
  print(`  redis user  ${h.handlerUserLine(plan)}`);
  print(planWrittenLine(printable(planPath), plan.artifacts.readThrough === true));
}

/**
 * plan's last line: where the plan is and what to run next. A read-through plan's next step is the
 * handler, not apply: an apply while a host still writes files leaves older copies in Redis, which the
 * read-through handler then serves (docs/runbook.md, "Phase 1" and "Hosts not yet switched").
 * @param planPath the plan file, already made printable
 */
export function planWrittenLine(planPath: string, readThrough: boolean): string {
  return readThrough
    ? `  plan        written to ${planPath}; read-through: first 'session-migrate generate php --plan ${planPath}', deploy it to every PHP host, then 'session-migrate apply --plan ${planPath}' (docs/runbook.md)`
    : `  plan        written to ${planPath}; run 'session-migrate apply --plan ${planPath}'`;
}

/**
 * The verify use case: from a plan and/or options (plan defaults, options override:
 * migrate's resolvePlanDefaults), open the target and the sources and run verifyTarget (verify.ts).
 * Prints nothing; returns the report and what the caller should warn about.
 *
 * Named verifyMigration because `verifyTarget` is the lower-level check it runs (an open connection
 * and codec in, a VerifyReport out), exported by this package since before the use cases.
 */
import { UserFacingError, printable } from '@session-migrate/common';
import type { EnvelopeCodec, KeyProvider } from '@session-migrate/envelope';
import {
  checkMasterWaitMs,
  checkPrefix,
  checkSourcesAgainstTarget,
  checkTargetGivenNow,
  closeSources,
  withCodecForPlan,
  decideOwnersGivenNow,
  openPlanSources,
  openSources,
  ownersNotRecordedWarning,
  openTarget,
  targetFrom,
  phpUidsGivenNow,
  phpUserUnknown,
  redisFailure,
  resolvePlanDefaults,
  sourceList,
  sourceRowLabel,
  withWarnings,
  type OnWarning,
  type Plan,
  type PlanTarget,
} from '@session-migrate/migrate';
import type { SerializeHandler } from '@session-migrate/php-session';
import { DEFAULT_MAX_SESSION_BYTES, RedisSource, sameRedisData, sourceLabel, type Source } from '@session-migrate/sources';
import { memoryWarnings, readMemory, type RedisConnection, type TlsFiles } from '@session-migrate/redis';
import { verifyTarget, type PlaintextCheck, type SourceCheck, type VerifyOptions, type VerifyReport } from './verify.ts';

export interface VerifyMigrationOptions {
  /** A plan file whose target, key provider, prefix, gc_maxlifetime and serialize_handler are the defaults. */
  plan?: string;
  /** Target URL (replaces the plan's). */
  target?: string;
  /** Where the key comes from; default: the plan's provider. */
  key?: KeyProvider;
  prefix?: string;
  /** Sources to compare byte for byte: files:DIR or redis:URL. */
  source?: string | readonly string[];
  /**
   * The user(s) PHP runs as (--php-user, a name or a uid), for the files sources given now: only
   * their session files and root's are PHP's (migrate's decideOwnersGivenNow). Absent: the plan's
   * record for that directory, else the owner of most session files, as plan decides it.
   */
  phpUsers?: readonly string[];
  /** Fail when any value is sealed under another key ID (16 lowercase hex characters; after a rotation). */
  requireKeyId?: string;
  /** Seconds. */
  gcMaxlifetime?: number;
  serializeHandler?: SerializeHandler;
  /** Fail while plaintext keys remain under this prefix on the target server (e.g. PHPREDIS_SESSION:). */
  plaintextPrefix?: string;
  /**
   * With a plan and no source: check that every live session of every source of the plan is present,
   * or destroyed through the handler (its tombstone, left in read-through and strict mode); default true.
   */
  presence?: boolean;
  /** Classify only the keys under the prefix (a database shared with other applications); default: every key of the database. */
  prefixOnly?: boolean;
  /** TLS files of the target (replace the plan's) and of a Redis source. */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  /**
   * How long to wait for a failover to finish, ms, 0 to 600000 (migrate's checkMasterWaitMs; default
   * 30000, DEFAULT_FAILOVER_WAIT_MS; 0 looks once): behind Sentinel, for the master the sentinels
   * report when the target or a Redis source is opened (migrate's commandRedisWait) and before the scan; in a Redis Cluster (the target or a Redis source), for a replica to take
   * over the slots of a master lost mid-scan. None in time: Redis failed, exit 2 (run again).
   */
  masterWaitMs?: number;
  /**
   * Warning and note lines as they arise (OnWarning): options that override the plan (`verify
   * overrides the plan: ...`, before anything is opened), a password in a URL, the connections'
   * notes, another server than the plan's, the memory warnings, phpredis locks without a TTL
   * (staleLockWarning). Every line but the last is also kept in `report.notes`. Default: warnToProcess (`process.emitWarning(line, { type: 'SessionMigrateWarning' })`); pass a function to take them instead.
   */
  onWarning?: OnWarning;
}

export interface VerifyMigrationReport {
  report: VerifyReport;
  /** What was checked against: the resolved prefix, gc_maxlifetime (s), serialize_handler, size limit (bytes) of values read. */
  prefix: string;
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  maxValueBytes: number;
  /** An eviction policy that can drop sessions, or too little headroom (INFO memory): one line each. */
  memoryWarnings: string[];
}

/**
 * Opens the sources given with --source (repeatable: compared byte for byte, each on its own; a files
 * source with the uids PHP runs as: --php-user, the plan's, else the owner of most session files:
 * decideOwnersGivenNow) and the target. @throws what opening throws (the opened sources closed).
 */
async function openGivenAndTarget(
  specs: string[],
  phpUids: readonly number[] | undefined,
  sourceOptions: Parameters<typeof openSources>[1],
  r: ReturnType<typeof resolveVerifyDefaults>,
  options: VerifyMigrationOptions,
  onWarning: (line: string) => void,
): Promise<{ given: Source[]; client: RedisConnection }> {
  let given: Source[] = [];
  try {
    given = specs.length > 0 ? await openSources(specs, sourceOptions) : [];
    decideOwnersGivenNow(given, r.plan, phpUids, onWarning);
    const client = await openTarget(targetFrom(r, options.tls), {
      command: options.prefixOnly === true ? 'verify-prefix-only' : 'verify',
      prefix: r.prefix,
      onWarning,
      ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
    });
    return { given, client };
  } catch (err) {
    await closeSources(given);
    throw err;
  }
}

/**
 * The plan's sources verify reads when no --source is given: every live session of every source
 * must be present (`wantPresence`: all of them, in the plan's order), and a plan's plaintext Redis
 * sources are checked too (their prefixes must be empty in the end: with --no-presence only those
 * are opened, so no session directory is read, nor needed: --no-presence's promise, docs/operator-guide.md).
 * Warns when the plan predates the record of PHP users and its files sources are opened. None with
 * --source or without a plan.
 */
async function planSourcesToCheck(
  given: Source[],
  wantPresence: boolean,
  sourceOptions: Parameters<typeof openPlanSources>[2],
  r: ReturnType<typeof resolveVerifyDefaults>,
  onWarning: (line: string) => void,
): Promise<Source[]> {
  if (r.plan === undefined || given.length > 0) return [];
  if (!wantPresence) {
    const redis = r.plan.sources.filter((d) => d.kind === 'redis');
    return redis.length === 0 ? [] : openPlanSources({ ...r.plan, sources: redis }, r.planPath!, sourceOptions);
  }
  const sources = await openPlanSources(r.plan, r.planPath!, sourceOptions);
  const old = ownersNotRecordedWarning(r.plan, r.planPath!);
  if (old !== undefined) onWarning(`warning: ${old}`);
  return sources;
}

/**
 * Verifies the target: no plaintext session anywhere in the database (or under the prefix), every
 * value under the prefix an authentic envelope with a TTL, and the sources present or identical.
 * `report.ok` is the verdict (the CLI's exit 0 or 1).
 * @throws UserFacingError without a target or key (and no plan), for a bad option, key, source or a
 *   Redis failure.
 */
export async function verifyMigration(options: VerifyMigrationOptions): Promise<VerifyMigrationReport> {
  const specs = sourceList(options.source);
  const phpUids = phpUidsGivenNow(options.phpUsers, specs, 'verify', options.plan !== undefined); // an unknown user: exit 2 before anything is read
  checkMasterWaitMs(options.masterWaitMs); // bad input: exit 2 before anything is read
  const r = resolveVerifyDefaults(options);
  const warning = withWarnings(options).onWarning;
  const { notes, onWarning } = keepingNotes(warning);
  // Options that contradict the plan are allowed (e.g. another target), but never silently.
  if (r.overrides.length > 0) onWarning(`note: verify overrides the plan: ${r.overrides.join(', ')}`);
  // The key's codec is wiped when verify ends, however it ends (withCodecForPlan).
  const v = await withCodecForPlan(r, ({ codec }) => verifyWithCodec(options, r, specs, phpUids, notes, onWarning, codec));
  const stale = staleLockWarning(v.report);
  if (stale !== undefined) warning(stale); // not in report.notes: report.staleLocks says it
  return v;
}

/**
 * verify's warning for phpredis session locks without a TTL (`report.staleLocks`, key names with the
 * session ID shortened); undefined when there are none.
 */
export function staleLockWarning(report: Pick<VerifyReport, 'staleLocks'>): string | undefined {
  const stale = report.staleLocks;
  if (stale === undefined || stale.count === 0) return undefined;
  return `warning: ${stale.count} phpredis session lock(s) without a TTL (stale-lock: ${stale.keys.slice(0, 5).map(printable).join(', ')}${stale.count > 5 ? ', ...' : ''}): one never expires if the request holding it died, and blocks its session until deleted; set redis.session.lock_expire (or a max_execution_time above 0) on the PHP hosts, then DEL the locks no request holds`;
}

/** verifyMigration once the defaults are resolved, with the key's codec (wiped by the caller). */
async function verifyWithCodec(
  options: VerifyMigrationOptions,
  r: ReturnType<typeof resolveVerifyDefaults>,
  specs: string[],
  phpUids: readonly number[] | undefined,
  notes: string[],
  onWarning: (line: string) => void,
  codec: EnvelopeCodec,
): Promise<VerifyMigrationReport> {
  if (options.plaintextPrefix !== undefined) checkPrefix(options.plaintextPrefix, false);
  const maxValueBytes = Math.max(r.maxSessionBytes, DEFAULT_MAX_SESSION_BYTES);
  checkTargetGivenNow(r, options.tls); // bad URL or TLS options: exit 2 before anything is opened
  const sourceOptions = sourceOptionsFor(r, options, onWarning);
  const { given, client } = await openGivenAndTarget(specs, phpUids, sourceOptions, r, options, onWarning);
  let planSources: Source[] = [];
  try {
    checkSourcesAgainstTarget(given, { ...client.description, prefix: r.prefix });
    // Also with --target (the override note names the URLs; this one says whether it is the same server).
    notePlanServer(r.plan?.target, client, onWarning);
    // With --plan alone, every live session of every source of the plan must be present; and a plan's
    // plaintext Redis sources are checked too (their prefixes must be empty in the end).
    const wantPresence = given.length === 0 && r.plan !== undefined && options.presence !== false;
    planSources = await planSourcesToCheck(given, wantPresence, sourceOptions, r, onWarning);
    const plaintext = plaintextChecks(client, options.plaintextPrefix, given.length > 0 ? given : planSources);
    const sources = sourceChecks(given, wantPresence ? planSources : [], r.plan);
    // Files of a non-root owner while the plan knows no PHP user: maybe PHP's sessions, not copied.
    // verifyTarget counts them in the sources it walks, which are every files source verify opens;
    // a plan's files source with --no-presence is not opened, and is named as not checked (ownerCheckNotMade).
    const report = await verifyTarget(targetVerifyOptions(client, codec, r, options, maxValueBytes, sources, plaintext));
    const notChecked = ownerCheckNotMade(r.plan, given, wantPresence);
    if (notChecked.length > 0) report.ownerUnknownNotChecked = notChecked;
    // Memory: an eviction policy that can drop sessions, or too little headroom (INFO memory, never CONFIG).
    const memory = memoryWarnings(await readMemory(client));
    for (const w of memory) onWarning(`warning: ${w}`);
    return migrationReport(report, notes, memory, r, maxValueBytes);
  } catch (err) {
    throw redisFailure(err, client, 'verify');
  } finally {
    client.close();
    await closeSources(given);
    await closeSources(planSources);
  }
}

/**
 * The plan's files sources whose PHP user is unknown (phpUserUnknown: the `owner-unknown` check
 * applies) that verify did not open, as `files:DIR` labels: with --plan, no --source and
 * --no-presence, no files source of the plan is opened (planSourcesToCheck opens its Redis sources
 * only), so no session file is read, also where the directory is not mounted. With presence every
 * source is opened and walked (verifyTarget counts them): none then.
 */
function ownerCheckNotMade(plan: Plan | undefined, given: readonly Source[], wantPresence: boolean): string[] {
  if (plan === undefined || given.length > 0 || wantPresence) return [];
  return plan.sources.filter(phpUserUnknown).map((d) => sourceLabel(d));
}

/**
 * How verify opens its sources (given now or the plan's): the resolved size limit (bytes) of one
 * session, --source-tls when given, --master-wait-ms as a cluster SCAN's failover wait, and warnings
 * to `onWarning`.
 */
function sourceOptionsFor(
  r: ReturnType<typeof resolveVerifyDefaults>,
  options: VerifyMigrationOptions,
  onWarning: (line: string) => void,
): Parameters<typeof openPlanSources>[2] & Parameters<typeof openSources>[1] {
  return {
    maxSessionBytes: r.maxSessionBytes,
    ...(options.sourceTls !== undefined ? { tls: options.sourceTls } : {}),
    ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
    onWarning,
  };
}

/**
 * verifyTarget's options from the resolved defaults and the options given now: the scope
 * (--prefix-only: the prefix, else the whole database), the sources to compare or find, plaintext
 * prefixes that must be empty, --require-key-id, and the plan's live count (an empty prefix then fails).
 * @param maxValueBytes longest value read, bytes.
 */
function targetVerifyOptions(
  client: RedisConnection,
  codec: EnvelopeCodec,
  r: ReturnType<typeof resolveVerifyDefaults>,
  options: VerifyMigrationOptions,
  maxValueBytes: number,
  sources: SourceCheck[],
  plaintext: PlaintextCheck[],
): VerifyOptions {
  return {
    client,
    codec,
    prefix: r.prefix,
    scope: options.prefixOnly === true ? 'prefix' : 'database',
    maxValueBytes,
    sources,
    gcMaxlifetime: r.gcMaxlifetime,
    serializeHandler: r.serializeHandler,
    ...(plaintext.length > 0 ? { plaintext } : {}),
    ...(options.requireKeyId !== undefined ? { requireKeyId: options.requireKeyId } : {}),
    ...(options.masterWaitMs !== undefined ? { masterWaitMs: options.masterWaitMs } : {}),
    ...(r.plan !== undefined ? { expectedSessions: r.plan.summary.live } : {}),
  };
}

/**
 * The use case's answer: the report with every warning line kept (the memory warnings last, as
 * `warning: ...` notes), and what was checked against (prefix, gc_maxlifetime in s,
 * serialize_handler, size limit in bytes).
 */
function migrationReport(
  report: VerifyReport,
  notes: readonly string[],
  memory: string[],
  r: ReturnType<typeof resolveVerifyDefaults>,
  maxValueBytes: number,
): VerifyMigrationReport {
  return {
    report: { ...report, notes: [...notes] },
    prefix: r.prefix,
    gcMaxlifetime: r.gcMaxlifetime,
    serializeHandler: r.serializeHandler,
    maxValueBytes,
    memoryWarnings: memory,
  };
}

/** The plan's defaults and the options given now (resolvePlanDefaults), with verify's own check. */
function resolveVerifyDefaults(options: VerifyMigrationOptions): ReturnType<typeof resolvePlanDefaults> {
  return resolvePlanDefaults(options, {
    missing: 'verify needs --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)',
    between: () => {
      if (options.requireKeyId !== undefined && !/^[0-9a-f]{16}$/.test(options.requireKeyId)) {
        throw new UserFacingError('--require-key-id must be a key ID: 16 lowercase hex characters (see keys id)');
      }
    },
  });
}

/**
 * An onWarning that also keeps every line, for the report (`report.notes`: a --json reader sees what
 * stderr said).
 */
function keepingNotes(onWarning: OnWarning | undefined): { notes: string[]; onWarning: OnWarning } {
  const notes: string[] = [];
  return {
    notes,
    onWarning: (line) => {
      notes.push(line);
      onWarning?.(line);
    },
  };
}

/**
 * What each source is checked for: the sources given now (--source) compared byte for byte, each on
 * its own; else the plan's sources for presence (`presence`: empty when not wanted).
 */
function sourceChecks(given: readonly Source[], presence: readonly Source[], plan: Plan | undefined): SourceCheck[] {
  if (given.length > 0)
    return given.map((source, i) => ({ source, check: 'compare' as const, label: `#${i + 1} ${sourceLabel(source.describe())}` }));
  return presence.map((source, i) => ({ source, check: 'presence' as const, label: sourceRowLabel(plan!.sources[i]!, i) }));
}

/**
 * A note when verify --plan reaches a single node that is not the server the plan was made against
 * (its INFO `run_id` differs: restarted, or replaced by another holding a copy). verify goes on (it
 * checks what this server holds; apply refuses such a plan, since it would write there), but the
 * operator should know the check is not of the server the plan saw. Also when --target replaced the
 * plan's URL: the override note says the URL differs, this one whether the server does (another
 * address of the same server gets no note). A failover behind Sentinel or in a cluster is not
 * compared (a new master is expected there).
 */
function notePlanServer(planned: PlanTarget | undefined, client: RedisConnection, onWarning: ((line: string) => void) | undefined): void {
  if (planned === undefined || client.topology !== 'standalone' || planned.runId === undefined) return;
  if (client.description.runId !== undefined && client.description.runId !== planned.runId)
    onWarning?.(
      `note: ${client.url} is not the server the plan was made against (its run ID differs: restarted or replaced); verify checks what this server holds`,
    );
}

/** Every plaintext Redis source must be empty in the end: each key left under its prefix fails (each server and prefix once). */
function plaintextChecks(client: RedisConnection, plaintextPrefix: string | undefined, sources: readonly Source[]): PlaintextCheck[] {
  const plaintext: PlaintextCheck[] = [];
  const add = (p: PlaintextCheck): void => {
    if (!plaintext.some((q) => q.prefix === p.prefix && sameRedisData(q.client.description, p.client.description))) plaintext.push(p);
  };
  if (plaintextPrefix !== undefined) add({ client, prefix: plaintextPrefix, url: client.url });
  for (const s of sources) if (s instanceof RedisSource) add({ client: s.connection, prefix: s.describe().prefix, url: s.describe().url });
  return plaintext;
}

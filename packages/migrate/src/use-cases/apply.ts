/**
 * The apply use case: carry out a plan (the PHP artifacts, then every live session of every source
 * into Redis, each source on its own), refusing when the key, the target or a source directory is no
 * longer what the plan recorded. Prints nothing; returns the report.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { UserFacingError, changedSomething, describeFsError, checkWholeNumber } from '@session-migrate/common';
import { EnvelopeCodec, describeKeyProvider, loadKeyRing, wipeKeyRing, type KeyProvider } from '@session-migrate/envelope';
import type { Source } from '@session-migrate/sources';
import { classifiedLine, type RedisConnection, type TlsFiles } from '@session-migrate/redis';
import { readPlanFile, type Plan } from '../plan.ts';
import { DEFAULT_RETRY, applySessions, detectDrift, type ApplySessionsReport, type ConfirmOptions } from '../apply.ts';
import { GENERATE_CHOICES_FILE, readGenerateChoices, type ArtifactOverrides, type ArtifactResult } from '../artifacts.ts';
import { writePlanArtifacts } from './generate.ts';
import { replicasAgainstPlan } from './replicas-against-plan.ts';
import { resolveDuplicates, sumApplyReports, withoutSuperseded, type DuplicatesReport } from '../several-sources.ts';
import { readAgainAfterFailover, sourceScanAgain } from '../source-failover.ts';
import {
  filesSourcesWithoutOwners,
  checkSourcesAgainstTarget,
  closeSources,
  openPlanSources,
  openTarget,
  phpUserUnknown,
  checkMasterWaitMs,
  providerFromPlan,
  redisFailure,
  sourceRowLabel,
  withWarnings,
  type OnWarning,
} from './shared.ts';

/** Default WAIT timeout of apply, ms. */
export const DEFAULT_WAIT_TIMEOUT_MS = 2000;

export { notComparedWarning } from './replicas-against-plan.ts';

/** Below this many planned sessions, worker threads (about 2 s to start: each loads the TypeScript sources) cost more than they save. */
const WORKERS_FROM_SESSIONS = 100_000;

export interface ApplyPlanOptions {
  /** Path of the plan file (from createPlan). */
  plan: string;
  /** Count and show, write nothing (neither artifacts nor Redis). */
  dryRun: boolean;
  /** Worker threads for reading and sealing, 0 to 64; undefined = automatic (4 at most, from 100,000 planned sessions). */
  workers?: number;
  /** Where the key comes from; default: the provider recorded in the plan. */
  key?: KeyProvider;
  /** Retries of a failed Redis batch before apply stops, 0 to 100 (default 8). */
  retries?: number;
  /** First retry pause in ms, 1 to 60000, doubled each time up to 5 s (default 250). */
  retryDelayMs?: number;
  /** Replicas that must acknowledge each batch (WAIT), 0 to 100; default: the replicas each master has now (INFO replication). */
  minReplicas?: number;
  /** WAIT timeout in ms, 1 to 600000 (default 2000). */
  waitTimeoutMs?: number;
  /**
   * How long to wait for a failover to finish, in ms, 0 to 600000 (checkMasterWaitMs; default 30000,
   * DEFAULT_FAILOVER_WAIT_MS); 0 looks once. Behind Sentinel: the open of the target (a failover in
   * progress at the start: openTarget; none in time: one line naming the master name, nothing
   * written, exit 2) and the end check (and the read-back, when the end check did not wait) wait
   * this long for the master the sentinels report; so does the open of a Redis source behind
   * Sentinel (commandRedisWait). A Redis source in a Redis Cluster: its SCAN waits this long for a replica to take over a master lost mid-scan.
   */
  masterWaitMs?: number;
  /** TLS files given now, replacing the plan's (e.g. other paths on this host). */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  /** Sessions handled so far (all sources together) of `total` expected (live + expired + empty + corrupt of the plan). */
  onProgress?: (handled: number, total: number) => void;
  /** A failed Redis batch about to be retried: attempt (1-based) of `retries`; `error` is one printable line. */
  onRetry?: (retry: { attempt: number; retries: number; error: string; url: string }) => void;
  /**
   * Warning lines as they arise (OnWarning): a password in a source URL, the target's and the
   * sources' connection notes, the shard whose replicas could not be compared with the plan
   * (notComparedWarning, also `confirm.notCompared`). Default: warnToProcess (`process.emitWarning(line, { type: 'SessionMigrateWarning' })`); pass a function to take them instead.
   */
  onWarning?: OnWarning;
}

/** apply's result for one source of the plan. */
export interface ApplySourceResult {
  /** `#N files:...` or `#N redis:...` (no password). */
  source: string;
  /** False when Redis kept failing for an earlier source and this one was not started (re-run apply). */
  started: boolean;
  /** Copies not copied because another source's copy of the same session ID was written later. */
  superseded: number;
  sessions?: ApplySessionsReport;
}

/** What apply did (the CLI's `--json` output). */
export interface ApplyResult {
  dryRun: boolean;
  /**
   * The target's URL as the plan records it (never a password: PlanTarget), which the report's
   * STOPPED line names, as `Redis at URL failed during apply: ...` (redisFailure's form).
   */
  target: string;
  /**
   * The run's verdict (ApplyPlanReport.ok: exit 0 when true), so a script reads `.ok` from every
   * `--json` document, as from verify's and purge's.
   */
  ok: boolean;
  artifacts: ArtifactResult[];
  /**
   * The choices `generate php` recorded (its mode, locking, persistent connections), which apply
   * rendered the artifacts with instead of the plan's alone: e.g. strict mode after the switch, so a
   * re-run never takes PHP back to reading session files. Absent when generate php never ran.
   */
  generateChoices?: ArtifactOverrides;
  /** Every source together. */
  sessions: ApplySessionsReport;
  /** With several sources: each one's own result, and the session IDs found in more than one. */
  sources?: ApplySourceResult[];
  duplicates?: DuplicatesReport;
  nothingToDo: boolean;
  /**
   * Sessions went missing at the read-back and the single-node target's run ID is not the plan's any
   * more: Redis restarted during apply (and lost them). apply refuses such a plan (detectDrift), so
   * the next step is plan, then apply, not apply again. Absent otherwise.
   */
  targetRestarted?: true;
  /**
   * Files of a non-root owner were not taken (foreign-owner) while the plan knew no user PHP runs as
   * (no session file at plan time): they may be PHP's sessions, so apply is not ok; the next step is
   * plan (with --php-user), then apply. Absent otherwise.
   */
  ownerUnknown?: true;
  /** Wall time of the session copy, milliseconds (excludes process start, plan checks and artifacts). */
  copyMs: number;
  /** WAIT after each batch: replicas wanted per master (`host:port` or `*`), and the timeout (ms). */
  /**
   * WAIT's settings; `fewerThanPlanned`: masters (by `host:port`) with fewer replicas connected now
   * than when the plan was made (a replica down?), when --min-replicas was not given.
   */
  confirm: {
    minReplicas: Record<string, number>;
    waitTimeoutMs: number;
    fewerThanPlanned?: Array<{ node: string; planned: number; now: number }>;
    /**
     * Masters of the plan that had replicas (`host:port` at plan, replicas then) whose shard has no
     * master apply can match now (a failover, with CLUSTER NODES denied to plan's or apply's user),
     * so their replicas were not compared with the plan; when --min-replicas was not given.
     */
    notCompared?: Array<{ node: string; planned: number }>;
  };
}

/** applyPlan's report: the result, and whether everything was done. */
export interface ApplyPlanReport {
  result: ApplyResult;
  /** The plan as carried out (its artifacts' outDir, target URL). */
  plan: Plan;
  /** Session files this user could not read (not copied: their users would be logged out). */
  unreadable: number;
  /**
   * Sessions a Redis source could not read (a GET that failed: the connection lost, an error reply;
   * not copied, their users would be logged out): how many, the sources' URLs, and why, by reason
   * (ApplySessionsReport.unreadableReasons). Absent when none.
   */
  redisUnreadable?: { count: number; urls: string[]; reasons: Record<string, number> };
  /** Sessions larger than the plan's maxSessionBytes (not copied: their users would be logged out). */
  oversized: number;
  /**
   * True when nothing failed, conflicted, stayed unconfirmed, unverified, missing, unstable, unread
   * or not done, and apply was not stopped (the CLI's exit 0).
   */
  ok: boolean;
}

/**
 * Carries out a plan. Re-running is safe: a session already in Redis (same or newer) is never
 * overwritten.
 * @throws UserFacingError for a bad option, a plan that no longer matches (drift: nothing written),
 *   unwritable artifacts (nothing written to Redis), a Redis failure before anything was written.
 */
export async function applyPlan(given: ApplyPlanOptions): Promise<ApplyPlanReport> {
  const options = withWarnings(given);
  // The options first: a bad number is its own one line, whatever else is wrong (the plan file).
  const checked = checkApplyOptions(options);
  const plan = readPlanFile(options.plan);
  const noOwners = filesSourcesWithoutOwners(plan);
  if (noOwners.length > 0)
    throw new UserFacingError(
      `plan ${options.plan} does not record the user PHP runs as for ${noOwners.join(', ')} (made before session-migrate checked file owners); nothing was written: re-run plan (with --php-user if needed), then apply`,
    );
  const provider = options.key ?? providerFromPlan(plan.key, options.plan);
  const ring = await loadKeyRing(provider);
  let codec: EnvelopeCodec | undefined;
  try {
    codec = await EnvelopeCodec.fromRing(ring);
    return await applyWithCodec(options, checked, {
      plan,
      codec,
      masterKeys: [ring.current, ...ring.previous],
      lookupKey: ring.lookupKey,
      keyDescription: describeKeyProvider(provider),
    });
  } finally {
    wipeKeyRing(ring);
    codec?.wipe();
  }
}

/** apply's numeric options, checked (checkApplyOptions). */
interface CheckedApplyOptions {
  retries: number;
  retryDelayMs: number;
  waitTimeoutMs: number;
  masterWaitMs: number | undefined;
}

/**
 * The checked numeric options of apply, --workers too when given (workerThreads picks the default).
 * @throws UserFacingError naming the option
 */
function checkApplyOptions(options: ApplyPlanOptions): CheckedApplyOptions {
  if (options.workers !== undefined) checkWholeNumber('workers', options.workers, 0, 64);
  const retries = options.retries ?? DEFAULT_RETRY.attempts;
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY.baseDelayMs;
  checkWholeNumber('retries', retries, 0, 100);
  checkWholeNumber('retry-delay-ms', retryDelayMs, 1, 60_000, 'milliseconds');
  if (options.minReplicas !== undefined) checkWholeNumber('min-replicas', options.minReplicas, 0, 100);
  const waitTimeoutMs = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  checkWholeNumber('wait-timeout-ms', waitTimeoutMs, 1, 600_000, 'milliseconds');
  const masterWaitMs = checkMasterWaitMs(options.masterWaitMs);
  return { retries, retryDelayMs, waitTimeoutMs, masterWaitMs };
}

/**
 * The worker threads apply reads and seals with: `given` (--workers), else 4 at most (the cores
 * there are) from WORKERS_FROM_SESSIONS sessions found at plan, else 0 (the main thread).
 * `given` was checked by checkApplyOptions.
 */
function workerThreads(given: number | undefined, plan: Plan): number {
  return given ?? (plan.summary.found >= WORKERS_FROM_SESSIONS ? Math.min(4, availableParallelism()) : 0);
}

/**
 * Opens the plan's sources in its order, as apply reads them: the plan's maxSessionBytes, the TLS
 * files given now for a Redis source, --master-wait-ms (checked) as a cluster SCAN's failover wait,
 * connection notes to onWarning.
 * @throws UserFacingError when a source cannot be opened (openPlanSources)
 */
function openApplySources(options: ApplyPlanOptions & { onWarning: OnWarning }, plan: Plan): Promise<Source[]> {
  return openPlanSources(plan, options.plan, {
    maxSessionBytes: plan.limits.maxSessionBytes,
    ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
    ...(options.sourceTls !== undefined ? { tls: options.sourceTls } : {}),
    onWarning: options.onWarning,
  });
}

/** The plan and its key material, loaded once by applyPlan (which wipes the keys afterwards). */
interface Keys {
  plan: Plan;
  codec: EnvelopeCodec;
  masterKeys: Buffer[];
  lookupKey: Buffer;
  keyDescription: string;
}

/**
 * applyPlan once the key ring is open: opens the target and the sources, refuses drift (nothing
 * written), reads the replicas to wait for (replicasAgainstPlan), writes the artifacts, copies every
 * source (copySources), then sums the report (summarize). Closes the target and the sources, also on
 * error.
 * @throws UserFacingError as applyPlan says (bad option, drift, artifacts, Redis before any write)
 */
async function applyWithCodec(
  options: ApplyPlanOptions & { onWarning: OnWarning },
  checked: CheckedApplyOptions,
  keys: Keys,
): Promise<ApplyPlanReport> {
  const { plan, codec } = keys;
  const workers = workerThreads(options.workers, plan);
  // keepReconnecting: a Redis restart or failover mid-run is retried (bounded by --retries), not fatal.
  // Behind Sentinel, a failover in progress at the start is waited for (openTarget, --master-wait-ms).
  const target = { recorded: plan.target, tls: options.tls ?? {} };
  const client = await openTarget(target, {
    keepReconnecting: true,
    ...(checked.masterWaitMs !== undefined ? { failoverWaitMs: checked.masterWaitMs } : {}),
    write: true,
    command: 'apply',
    prefix: plan.target.prefix,
    onWarning: options.onWarning,
  });
  let sources: Source[] = [];
  try {
    sources = await openApplySources(options, plan);
    checkSourcesAgainstTarget(sources, { ...client.description, prefix: plan.target.prefix });
    await refuseDrift(options.plan, keys, client, sources);
    const { minReplicas, againstPlan } = await replicasAgainstPlan(options.minReplicas, plan.target, client, options.onWarning);
    // A plan from before key rings: the key matched by key ID, so its lookup ID is this ring's.
    if (plan.key.lookupId === undefined) plan.key.lookupId = codec.lookupId;
    const { artifacts, kept } = writeArtifactsKeepingChoices(plan, options.dryRun);
    const copyStart = performance.now();
    const copied = await copySources(
      options,
      keys,
      client,
      sources,
      {
        minReplicas,
        waitTimeoutMs: checked.waitTimeoutMs,
        ...(checked.masterWaitMs !== undefined ? { masterWaitMs: checked.masterWaitMs } : {}),
      },
      { retries: checked.retries, retryDelayMs: checked.retryDelayMs, workers },
    );
    const targetRestarted = await restartedDuringApply(plan, client, copied.perSource);
    return summarize(options, plan, {
      ...copied,
      targetRestarted,
      artifacts,
      generateChoices: kept,
      copyMs: Math.round(performance.now() - copyStart),
      confirm: {
        minReplicas: Object.fromEntries(minReplicas),
        waitTimeoutMs: checked.waitTimeoutMs,
        ...againstPlan,
      },
      several: sources.length > 1,
    });
  } finally {
    client.close();
    await closeSources(sources);
  }
}

/**
 * Writes the plan's PHP artifacts (or with dryRun reports which would change), keeping the choices
 * generate php recorded beside them (e.g. strict mode after the switch, docs/runbook.md): rendering
 * them as the plan alone says would undo those (take PHP back to reading session files).
 * @returns the artifacts' results and the recorded choices (undefined: none recorded)
 * @throws UserFacingError for a damaged record, choices the plan cannot take (naming the record), or
 *   an artifact that cannot be written (nothing is written to Redis then)
 */
function writeArtifactsKeepingChoices(plan: Plan, dryRun: boolean): { artifacts: ArtifactResult[]; kept: ArtifactOverrides | undefined } {
  const kept = readGenerateChoices(plan.artifacts.outDir);
  try {
    return { artifacts: writePlanArtifacts(plan, dryRun, kept ?? {}, kept !== undefined), kept };
  } catch (err) {
    if (err instanceof UserFacingError && kept !== undefined)
      throw new UserFacingError(
        `${err.message} (with the choices generate php recorded in ${join(plan.artifacts.outDir, GENERATE_CHOICES_FILE)})`,
      );
    if (err instanceof UserFacingError) throw err;
    throw new UserFacingError(
      `cannot write the PHP artifacts to ${plan.artifacts.outDir}: ${describeFsError(err)}; nothing was written to Redis`,
    );
  }
}

/**
 * Whether the read-back found sessions missing and the single-node target, asked on apply's own
 * connection, has another run ID than the plan recorded (INFO server's run_id is new at every start):
 * Redis restarted during apply. False when nothing is missing, for a cluster or Sentinel (node IDs
 * survive; a failover is not drift), a plan without a run ID, or a server that does not answer now.
 */
async function restartedDuringApply(plan: Plan, client: RedisConnection, perSource: readonly ApplySourceResult[]): Promise<boolean> {
  const missing = perSource.reduce((n, s) => n + (s.sessions?.counts.missingAfterWrite ?? 0), 0);
  if (missing === 0 || plan.target.topology !== 'standalone' || plan.target.runId === undefined) return false;
  const now = await client.runId().catch(() => undefined);
  return now !== undefined && now !== plan.target.runId;
}

/** Refuses (nothing written) when the key, the target or a files source's directory is not what the plan recorded. */
async function refuseDrift(planPath: string, keys: Keys, client: RedisConnection, sources: readonly Source[]): Promise<void> {
  const { plan, codec } = keys;
  let state;
  try {
    state = {
      topology: client.topology,
      ...(client.topology === 'standalone' ? { runId: (await client.runId()) ?? 'unknown' } : {}),
      // The masters' node IDs this connection read when it connected (CLUSTER MYID), as plan records
      // them: asking again moments later would say the same.
      ...(client.topology === 'cluster' ? { nodeIds: client.description.nodeIds ?? (await client.clusterNodeIds()) } : {}),
    };
  } catch (err) {
    throw redisFailure(err, client, 'apply');
  }
  // Key and target once; every files source's directory (replaced since the plan?).
  const drift = plan.sources.flatMap((planned, i) => {
    const now = sources[i]!.describe();
    return detectDrift(
      { ...plan, source: planned },
      {
        keyId: codec.keyId,
        lookupId: codec.lookupId,
        sourceIdentity: now.kind === 'files' ? { dev: now.dev, ino: now.ino } : undefined,
        target: state,
        keyDescription: keys.keyDescription,
      },
    ).filter((d) => i === 0 || d.what === 'source');
  });
  if (drift.length > 0) {
    throw new UserFacingError(
      `plan ${planPath} no longer matches: ${drift.map((d) => d.message).join('; ')}; nothing was written; re-run plan, then apply`,
    );
  }
}

/**
 * What apply's note after a failover of a Redis source's master adds (scanAgainAfterFailover's `then`):
 * the new pass counts what the one cut short wrote as already present (applySessions).
 */
const APPLY_RESTART_NOTE = 'the sessions it wrote before are counted as already present';

/** One run of applySessions per source, in the plan's order, each counted on its own; a session ID in several sources is copied once (several-sources.ts). */
async function copySources(
  options: ApplyPlanOptions,
  keys: Keys,
  client: RedisConnection,
  sources: readonly Source[],
  confirm: ConfirmOptions,
  run: { retries: number; retryDelayMs: number; workers: number },
): Promise<{ perSource: ApplySourceResult[]; duplicates: DuplicatesReport }> {
  const { plan, codec } = keys;
  const total = plan.summary.live + plan.summary.expired + plan.summary.empty + plan.summary.corrupt;
  let resolution;
  try {
    resolution = await readAgainAfterFailover(sources, 'apply', confirm.masterWaitMs, () => resolveDuplicates(sources, plan.php));
  } catch (err) {
    throw redisFailure(err, client, 'apply');
  }
  const perSource: ApplySourceResult[] = [];
  let handledBefore = 0;
  for (const [i, source] of sources.entries()) {
    const label = sourceRowLabel(plan.sources[i]!, i);
    if (perSource.some((r) => r.sessions?.aborted === true || r.sessions?.stopped !== undefined)) {
      // Redis kept failing for an earlier source: this one is not started (re-run apply).
      perSource.push({ source: label, started: false, superseded: 0 });
      continue;
    }
    const report = await applySessions({
      plan,
      source: withoutSuperseded(source, resolution.superseded[i]!),
      codec,
      target: client,
      confirm,
      dryRun: options.dryRun,
      workers: run.workers,
      masterKeys: keys.masterKeys,
      lookupKey: keys.lookupKey,
      onProgress: (n) => options.onProgress?.(handledBefore + n, total),
      retry: { ...DEFAULT_RETRY, attempts: run.retries, baseDelayMs: run.retryDelayMs },
      onRetry: (attempt, error) => options.onRetry?.({ attempt, retries: run.retries, error, url: plan.target.url }),
      // Behind Sentinel, the source's SCAN cut short by a failover: read again from the beginning.
      scanAgainAfterFailover: (err) => sourceScanAgain([source], err, 'apply', confirm.masterWaitMs, APPLY_RESTART_NOTE),
    });
    const c = report.counts;
    handledBefore +=
      c.migrated + c.alreadyPresent + c.newerInRedis + c.conflicts + c.failed + c.destroyed + c.expired + c.empty + c.corrupt;
    perSource.push({ source: label, started: true, superseded: resolution.superseded[i]!.size, sessions: report });
  }
  return { perSource, duplicates: resolution.report };
}

/**
 * Sums the sources, decides nothingToDo and ok: the one home of apply's verdict (the CLI exits 0 when
 * ok, else 1). @throws UserFacingError (exit 2) when apply stopped, or a source failed while read,
 * before anything was written to Redis.
 */
function summarize(
  options: ApplyPlanOptions,
  plan: Plan,
  r: {
    perSource: ApplySourceResult[];
    duplicates: DuplicatesReport;
    artifacts: ArtifactResult[];
    generateChoices: ArtifactOverrides | undefined;
    copyMs: number;
    confirm: ApplyResult['confirm'];
    several: boolean;
    targetRestarted: boolean;
  },
): ApplyPlanReport {
  const sessions = sumApplyReports(r.perSource.flatMap((s) => (s.sessions !== undefined ? [s.sessions] : [])));
  const notStarted = r.perSource.filter((s) => !s.started).length;
  const c = sessions.counts;
  if (sessions.stopped !== undefined && c.migrated === 0 && c.failed === 0) {
    // A permanent error before anything was written: exit 2 with what to fix. Not when a write
    // failed: one whose reply was lost may have run (the report says so, exit 1).
    throw new UserFacingError(`apply stopped, nothing was written to Redis at ${plan.target.url}: ${classifiedLine(sessions.stopped)}`);
  }
  const sourceFailures = sessions.sourceFailures ?? [];
  if (sourceFailures.length > 0 && !changedSomething({ done: options.dryRun ? 0 : c.migrated })) {
    // A source failed while read before this run wrote any session (or in a dry run, which writes
    // none): its one line, exit 2, as a source that fails at open (nothing written to Redis). The
    // rule of stoppedRun (packages/common/src/errors.ts), with the source's own line.
    throw new UserFacingError(sourceFailures[0]!.message);
  }
  // A source failed after sessions were written: not bad input but a copy cut short (exit 1, the
  // report's NOT DONE line, sourceFailureNotDone, says how many were written first); a re-run
  // writes what is missing.
  const incomplete =
    c.notDone > 0 || c.unconfirmed > 0 || c.missingAfterWrite > 0 || c.unverified > 0 || notStarted > 0 || sourceFailures.length > 0;
  // A session file this user cannot read, or one over the plan's size limit, is a session not
  // copied: its user would be logged out (NOT_COPIED_SKIPS; unstable ones are counted on their own).
  const redisUnreadable = unreadableFromRedis(plan, r.perSource);
  const unreadable = (c.skipped.unreadable ?? 0) - (redisUnreadable?.count ?? 0);
  const oversized = c.skipped.oversized ?? 0;
  // Files of a non-root owner while the plan saw no session file (phpUids []): most likely PHP's own
  // sessions written since, under a user the plan could not know; not copied, so not a success.
  // (shared.ts phpUserUnknown: the rule verify and purge apply, counting in their walks.)
  const ownerUnknown = (c.skipped['foreign-owner'] ?? 0) > 0 && plan.sources.some(phpUserUnknown);
  const ok = !(
    ownerUnknown ||
    c.failed > 0 ||
    c.conflicts > 0 ||
    incomplete ||
    c.unstable > 0 ||
    unreadable > 0 ||
    redisUnreadable !== undefined ||
    oversized > 0 ||
    sessions.stopped !== undefined
  );
  const nothingToDo = ok && !options.dryRun && c.migrated === 0 && r.artifacts.every((a) => a.status === 'unchanged');
  const result: ApplyResult = {
    dryRun: options.dryRun,
    target: plan.target.url,
    ok,
    artifacts: r.artifacts,
    ...(r.generateChoices !== undefined ? { generateChoices: r.generateChoices } : {}),
    sessions,
    nothingToDo,
    ...(r.targetRestarted ? { targetRestarted: true as const } : {}),
    ...(ownerUnknown ? { ownerUnknown: true as const } : {}),
    copyMs: r.copyMs,
    confirm: r.confirm,
    ...(r.several ? { sources: r.perSource, duplicates: r.duplicates } : {}),
  };
  return { result, plan, unreadable, ...(redisUnreadable !== undefined ? { redisUnreadable } : {}), oversized, ok };
}

/**
 * The sessions the plan's Redis sources could not read (`unreadable`: a GET that failed, e.g. the
 * connection lost between SCAN and GET), with the sources' URLs and why (unreadableReasons);
 * undefined when none.
 */
function unreadableFromRedis(plan: Plan, perSource: readonly ApplySourceResult[]): ApplyPlanReport['redisUnreadable'] {
  let count = 0;
  const urls: string[] = [];
  const reasons: Record<string, number> = {};
  perSource.forEach((s, i) => {
    const planned = plan.sources[i]!;
    const n = s.sessions?.counts.skipped.unreadable ?? 0;
    if (planned.kind !== 'redis' || n === 0) return;
    count += n;
    if (!urls.includes(planned.url)) urls.push(planned.url);
    for (const [why, k] of Object.entries(s.sessions?.unreadableReasons ?? {})) reasons[why] = (reasons[why] ?? 0) + k;
  });
  return count > 0 ? { count, urls, reasons } : undefined;
}

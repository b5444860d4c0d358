/**
 * The purge use case: delete the plaintext session files (or keys) whose sessions are proven in Redis
 * (same or newer, destroyed, expired anyway, superseded by a later copy in another source, or, with a
 * plan, a session PHP would reject and destroys at its first read: `corrupt`); nothing
 * is deleted in any source while any live session is not proven, unless allowPartial. Several
 * sources (a plan's, or given now) are judged together. The rule: ../purge.ts. Prints nothing.
 */
import { UserFacingError, addCounts, stoppedRun } from '@session-migrate/common';
import type { EnvelopeCodec, KeyProvider } from '@session-migrate/envelope';
import { sourceLabel, type Source } from '@session-migrate/sources';
import type { TlsFiles } from '@session-migrate/redis';
import { PurgeStopped, emptyPurgeReport, purgeSessions, type PurgeOptions, type PurgeReport } from '../purge.ts';
import { resolveDuplicates, type DuplicatesReport } from '../several-sources.ts';
import {
  checkSourcesAgainstTarget,
  checkMasterWaitMs,
  checkTargetGivenNow,
  closeSources,
  decideOwnersGivenNow,
  phpUserUnknown,
  openPlanSources,
  ownersNotRecordedWarning,
  openSources,
  phpUidsGivenNow,
  openTarget,
  targetFrom,
  resolvePlanDefaults,
  sourceList,
  sourceRowLabel,
  withWarnings,
  type OnWarning,
  type ResolvedPlanDefaults,
  withCodecForPlan,
} from './shared.ts';

export interface PurgeUseCaseOptions {
  /** A plan file whose sources, target, key provider, prefix and gc_maxlifetime are the defaults. */
  plan?: string;
  /** Sources to purge: files:DIR or redis:URL; default: every source of the plan. */
  source?: string | readonly string[];
  /**
   * The user(s) PHP runs as (--php-user, a name or a uid), for the files sources given now: files of
   * other owners (root aside) are never deleted (decideOwnersGivenNow). Absent: the plan's record for
   * that directory, else the owner of most session files, as plan decides it.
   */
  phpUsers?: readonly string[];
  target?: string;
  /** Where the key comes from; default: the plan's provider. */
  key?: KeyProvider;
  prefix?: string;
  /** Seconds. */
  gcMaxlifetime?: number;
  /** Judge and list, delete nothing. */
  dryRun: boolean;
  /** Delete the proven sessions even while others are not proven (the result is still not ok). */
  allowPartial: boolean;
  /** TLS files of the target (replace the plan's) and of a Redis source. */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  /**
   * How long to wait for a failover to finish, ms, 0 to 600000 (checkMasterWaitMs; default 30000,
   * DEFAULT_FAILOVER_WAIT_MS; 0 looks once): behind Sentinel, for the master the sentinels report
   * when the target or a Redis source is opened (commandRedisWait); in a Redis Cluster (the target or a Redis source), for a replica to take
   * over the slots of a master lost mid-scan. None in time: one line, nothing deleted, exit 2 (run again).
   */
  masterWaitMs?: number;
  /**
   * Warning lines as they arise (OnWarning): a password in a URL, the PHP user taken for a directory,
   * a plan that predates the record of PHP users, the connections' notes. Default: warnToProcess (`process.emitWarning(line, { type: 'SessionMigrateWarning' })`); pass a function to take them instead.
   */
  onWarning?: OnWarning;
}

/** purge's JSON with several sources: each source's report, their sum, and the session IDs in more than one. */
export interface PurgeResult extends PurgeReport {
  /**
   * The run's verdict (PurgeUseCaseReport.ok, exit 0), so a script reads `.ok` from every `--json`
   * document: a stopped run's (StoppedRunReport, packages/common/src/errors.ts) has `ok: false`.
   */
  ok: boolean;
  /** Files kept because the plan knows no user PHP runs as (PurgeUseCaseReport.ownerUnknown); absent: none. */
  ownerUnknown?: number;
  sources?: Array<PurgeReport & { source: string }>;
  duplicates?: DuplicatesReport;
}

export interface PurgeUseCaseReport {
  /** The sum of every source (the one source's report when there is one). */
  total: PurgeReport;
  /** Each source's report with its label (`#N files:...`). */
  sources: Array<{ label: string; report: PurgeReport }>;
  /** With several sources: the session IDs found in more than one. */
  duplicates?: DuplicatesReport;
  /** One source: its directory, or `URL prefix "P"`; several: `N sources`. */
  heading: string;
  /**
   * Session files of a non-root owner in a source whose plan knows no user PHP runs as (it saw no
   * session file: phpUserUnknown): maybe PHP's sessions, never copied, so kept, and purge is
   * not ok; the fix is plan --php-user NAME, then apply and purge. 0: none.
   */
  ownerUnknown: number;
  /**
   * Every session proven (and deleted unless dryRun), none changed meanwhile and no file of an
   * unknown PHP user (ownerUnknown) left (the CLI's exit 0).
   */
  ok: boolean;
  /** The CLI's `--json`: the one report, or the sum with `sources` and `duplicates`. */
  json: PurgeResult;
}

/**
 * Runs purge. Re-running is safe: nothing is deleted before every session was checked, and each
 * delete follows a check of that session in Redis again.
 * @throws UserFacingError for bad options (no source, target or key; a source that is not files: or
 *   redis:), an unreadable key file or source, or a Redis failure before any delete (exit 2, nothing
 *   deleted); a failure once deleting began (the target at a re-check, the source at a delete) is
 *   one line with how many were deleted, exitCode 1 (stoppedRun: `purge NOT DONE: N ...`).
 */
export async function purge(given: PurgeUseCaseOptions): Promise<PurgeUseCaseReport> {
  const options = withWarnings(given);
  const specs = sourceList(options.source);
  const phpUids = phpUidsGivenNow(options.phpUsers, specs, 'purge', options.plan !== undefined); // an unknown user: exit 2 before anything is read
  checkMasterWaitMs(options.masterWaitMs); // bad input: exit 2 before anything is read
  const r = resolvePlanDefaults(options, {
    missing:
      'purge needs --source (files:DIR or redis:URL), --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)',
    alsoMissing: (plan) => specs.length === 0 && plan === undefined,
    between: () => {
      for (const spec of specs)
        if (!spec.startsWith('files:') && !spec.startsWith('redis:'))
          throw new UserFacingError('purge deletes plaintext sessions: --source must be files:DIR or redis:URL');
    },
  });
  checkTargetGivenNow(r, options.tls); // bad URL or TLS options: exit 2 before anything is opened
  return withCodecForPlan(r, ({ codec }) => purgeWithCodec(specs, phpUids, r, options, codec));
}

/** purge once its options are checked, with the key's codec (wiped by the caller, withCodecForPlan). */
async function purgeWithCodec(
  specs: string[],
  phpUids: readonly number[] | undefined,
  r: ResolvedPlanDefaults,
  options: PurgeUseCaseOptions,
  codec: EnvelopeCodec,
): Promise<PurgeUseCaseReport> {
  const sources = await openPurgeSources(specs, phpUids, r, options);
  let ownerUnknown = 0;
  const labels = sources.map((s, i) =>
    specs.length === 0 ? sourceRowLabel(r.plan!.sources[i]!, i) : `#${i + 1} ${sourceLabel(s.describe())}`,
  );
  let reports: PurgeReport[];
  let duplicates: DuplicatesReport | undefined;
  let heading: string;
  try {
    const client = await openTarget(targetFrom(r, options.tls), {
      command: 'purge',
      prefix: r.prefix,
      ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
      ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
    });
    try {
      checkSourcesAgainstTarget(sources, { ...client.description, prefix: r.prefix });
      const resolution = await resolveDuplicates(sources, {
        gcMaxlifetime: r.gcMaxlifetime,
        serializeHandler: r.plan?.php.serializeHandler ?? 'php',
      });
      duplicates = sources.length > 1 ? resolution.report : undefined;
      // Files of an unknown PHP user are most likely PHP's own live sessions, never copied: like a
      // session not proven, they hold back every delete unless allowPartial (purgeAll counts them).
      ({ reports, ownerUnknown } = await purgeAll(sources, resolution.superseded, {
        client,
        codec,
        prefix: r.prefix,
        gcMaxlifetime: r.gcMaxlifetime,
        // Sessions PHP would reject are deletable only under the plan's serialize_handler (purgeSessions).
        ...(r.plan !== undefined ? { serializeHandler: r.plan.php.serializeHandler } : {}),
        dryRun: options.dryRun,
        allowPartial: options.allowPartial,
      }));
    } catch (err) {
      // Before any delete: the failure's own line (a source's, a refusal), or the target's, exit 2.
      // Once deleting began: how many were deleted, exit 1 (stoppedRun, the one home of that rule).
      const stopped = err instanceof PurgeStopped ? err : undefined;
      const failure = stopped?.failure ?? err;
      if (stopped === undefined && failure instanceof UserFacingError) throw failure;
      const unit = sources.length > 1 ? 'session' : sources[0]!.kind === 'redis' ? 'key' : 'file';
      throw stoppedRun({
        command: 'purge',
        reason:
          failure instanceof UserFacingError
            ? failure.message
            : `${((failure as Error).message ?? String(failure)).split('\n')[0]} (Redis at ${client.url})`,
        done: stopped?.deleted ?? 0,
        inFlight: stopped?.inFlight ?? false,
        ...(stopped !== undefined ? { counts: stoppedCounts(stopped.reports) } : {}),
        what: `${unit}(s) deleted`,
        rerun: `each was proven in Redis and checked again right before its delete; run purge again to finish (it judges every ${unit} left again)`,
        nothing:
          'nothing was deleted (a file is deleted only after every session was checked and its own was checked again right before), and re-running is safe',
      });
    } finally {
      client.close();
    }
    const d = sources[0]!.describe() as { dir?: string; url?: string; prefix?: string };
    heading = reports.length === 1 ? (d.dir ?? `${d.url ?? ''} prefix "${d.prefix ?? ''}"`) : `${reports.length} sources`;
  } finally {
    await closeSources(sources);
  }
  return purgeResult(reports, labels, duplicates, heading, ownerUnknown);
}

/**
 * Opens the sources to purge: the given ones (a files source with the uids PHP runs as: --php-user,
 * the plan's, else the owner of most session files: decideOwnersGivenNow), else every source of the
 * plan (warning when it predates the record of PHP users).
 * @throws UserFacingError when a source cannot be opened or listed, or its owners are ambiguous
 *   (decidePhpUids; the opened ones are closed)
 */
async function openPurgeSources(
  specs: string[],
  phpUids: readonly number[] | undefined,
  r: ResolvedPlanDefaults,
  options: PurgeUseCaseOptions,
): Promise<Source[]> {
  const sourceOptions = {
    maxSessionBytes: r.maxSessionBytes,
    ...(options.sourceTls !== undefined ? { tls: options.sourceTls } : {}),
    write: true,
    ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
    ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
  };
  // Given sources (repeatable), else every source of the plan, in its order.
  const sources: Source[] =
    specs.length > 0 ? await openSources(specs, sourceOptions) : await openPlanSources(r.plan!, r.planPath!, sourceOptions);
  try {
    // Files PHP's files handler refuses for their owner are kept (files.ts phpAcceptsOwner).
    if (specs.length > 0) decideOwnersGivenNow(sources, r.plan, phpUids, options.onWarning);
    else {
      const old = ownersNotRecordedWarning(r.plan!, r.planPath!);
      if (old !== undefined) options.onWarning?.(`warning: ${old}`);
    }
    return sources;
  } catch (err) {
    await closeSources(sources);
    throw err;
  }
}

/** The use case's report from each source's purge report (the sum and the CLI's --json). */
function purgeResult(
  reports: PurgeReport[],
  labels: string[],
  duplicates: DuplicatesReport | undefined,
  heading: string,
  ownerUnknown: number,
): PurgeUseCaseReport {
  const total = reports.length === 1 ? reports[0]! : sumPurgeReports(reports);
  const unknown = ownerUnknown > 0 ? { ownerUnknown } : {};
  const ok = total.complete && total.changed === 0 && ownerUnknown === 0;
  const json: PurgeResult =
    reports.length === 1
      ? { ok, ...total, ...unknown }
      : {
          ok,
          ...total,
          ...unknown,
          sources: reports.map((x, i) => ({ source: labels[i]!, ...x })),
          ...(duplicates !== undefined ? { duplicates } : {}),
        };
  return {
    total,
    sources: reports.map((report, i) => ({ label: labels[i]!, report })),
    ...(duplicates !== undefined ? { duplicates } : {}),
    heading,
    ownerUnknown,
    ok,
    json,
  };
}

/**
 * Purges every source at once: each is judged (in parallel), and only when all of them are judged
 * does any delete (purgeSessions' beforeDelete): nothing anywhere while a session of any source is
 * not proven, or while a source whose plan knows no PHP user (phpUserUnknown) has session files of a
 * non-root owner (phpUserUnknown's rule: maybe PHP's sessions, never copied; they are
 * foreign-owner to purgeSessions, so kept anyway), unless allowPartial. Those files are counted in
 * the walk that judges each source (PurgeOptions.nonRootFiles), which ends before the gate opens: one
 * walk of the directory, and the count is complete before anything is deleted.
 * @returns each source's report, and the files of an unknown PHP user (ownerUnknown)
 * @throws the first error of any source when it came while judging (then nothing was deleted
 *   anywhere); PurgeStopped when any source failed once deleting began, with the deletes of every
 *   source summed (the others finish theirs first)
 */
async function purgeAll(
  sources: readonly Source[],
  superseded: ReadonlyArray<ReadonlySet<string>>,
  common: Omit<PurgeOptions, 'source'>,
): Promise<{ reports: PurgeReport[]; ownerUnknown: number }> {
  const nonRoot = sources.map((s) => (phpUserUnknown(s.describe()) ? { count: 0 } : undefined));
  const ownerUnknown = (): number => nonRoot.reduce((n, c) => n + (c?.count ?? 0), 0);
  const judged: Array<PurgeReport | undefined> = new Array(sources.length).fill(undefined);
  const arrived: boolean[] = new Array(sources.length).fill(false);
  let waiting = sources.length;
  let release!: (go: boolean) => void;
  const gate = new Promise<boolean>((resolve) => {
    release = resolve;
  });
  const arrive = (i: number): void => {
    if (arrived[i]) return;
    arrived[i] = true;
    if (--waiting === 0)
      release(judged.every((r) => r !== undefined) && ((ownerUnknown() === 0 && judged.every((r) => r!.complete)) || common.allowPartial));
  };
  const runs = sources.map((source, i) =>
    purgeSessions({
      ...common,
      source,
      superseded: superseded[i]!,
      ...(nonRoot[i] !== undefined ? { nonRootFiles: nonRoot[i] } : {}),
      beforeDelete: (r) => {
        judged[i] = r;
        arrive(i);
        return gate;
      },
    }).finally(() => arrive(i)),
  );
  const settled = await Promise.allSettled(runs);
  const failed = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    const stopped = failed.map((r) => r.reason as unknown).filter((e): e is PurgeStopped => e instanceof PurgeStopped);
    if (stopped.length === 0) throw failed[0]!.reason;
    const deleted = settled.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.deleted : 0), 0);
    throw new PurgeStopped(
      stopped[0]!.failure,
      deleted + stopped.reduce((n, e) => n + e.deleted, 0),
      stopped.some((e) => e.inFlight),
      [...settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])), ...stopped.flatMap((e) => e.reports)],
    );
  }
  return { reports: settled.map((r) => (r as PromiseFulfilledResult<PurgeReport>).value), ownerUnknown: ownerUnknown() };
}

/**
 * The `--json` counts of a purge stopped once deleting began (StoppedRunError.report), summed over
 * its sources' reports as they stood: sessions judged, deleted (and bytes), kept because changed
 * meanwhile, and no longer proven at the re-check (PurgeReport's fields of those names).
 */
function stoppedCounts(reports: readonly PurgeReport[]): Record<string, number> {
  const sum = (f: (r: PurgeReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
  return {
    sessions: sum((r) => r.sessions),
    deleted: sum((r) => r.deleted),
    deletedBytes: sum((r) => r.deletedBytes),
    changed: sum((r) => r.changed),
    lost: sum((r) => r.lost),
  };
}

/** The sum of several sources' purge reports (lists joined, at most 1000 entries each). */
export function sumPurgeReports(reports: readonly PurgeReport[]): PurgeReport {
  const kinds = new Set(reports.map((r) => r.sourceKind));
  const total: PurgeReport = {
    ...emptyPurgeReport(kinds.size === 1 ? reports[0]!.sourceKind : 'files', reports[0]!.dryRun, reports[0]!.allowPartial),
    complete: reports.every((r) => r.complete),
    deleting: reports.some((r) => r.deleting),
  };
  for (const r of reports) {
    total.sessions += r.sessions;
    total.deletable = addCounts(total.deletable, r.deletable);
    total.deletableBytes += r.deletableBytes;
    total.blocked = addCounts(total.blocked, r.blocked);
    total.deleted += r.deleted;
    total.deletedBytes += r.deletedBytes;
    total.changed += r.changed;
    total.lost += r.lost;
    total.skipped = addCounts(total.skipped, r.skipped);
    const others = total.remaining.otherUsers ?? { files: 0, bytes: 0 };
    const othersNow = r.remaining.otherUsers ?? { files: 0, bytes: 0 };
    const otherUsers = { files: others.files + othersNow.files, bytes: others.bytes + othersNow.bytes };
    total.remaining = {
      files: total.remaining.files + r.remaining.files,
      bytes: total.remaining.bytes + r.remaining.bytes,
      ...(otherUsers.files > 0 ? { otherUsers } : {}),
    };
    for (const b of r.blockers) if (total.blockers.length < 1000) total.blockers.push(b);
    for (const w of r.wouldDelete) if (total.wouldDelete.length < 1000) total.wouldDelete.push(w);
  }
  return total;
}

/**
 * `session-migrate apply`: carry out a plan. The work is the applyPlan use case
 * (packages/migrate/src/use-cases/apply.ts); this module parses, calls, prints.
 */
import { printable, withoutRunAgain } from '@session-migrate/common';
import type { ApplyPlanOptions, ApplyResult, ApplySessionsReport, PlanSource } from '@session-migrate/migrate';
import { DEFAULT_PLAN_FILE } from '../defaults.ts';
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { firstFew, formatBytes, formatCounts, progressLine, sourcesTable } from '../output.ts';
import { allTlsOptions, tlsFilesFromArgs, warn } from '../redis-options.ts';
import { masterWaitOption, given, defineCommand, type CommandFactory, type Print } from './context.ts';

/** apply's arguments: the use case's options (no callbacks), and `--json`. */
export interface ApplyArgs extends Omit<ApplyPlanOptions, 'onProgress' | 'onRetry' | 'onWarning'> {
  json: boolean;
}

/** What apply says on SIGINT (Ctrl-C), SIGTERM or SIGHUP, before exit 130, 143 or 129 (main.ts whileSaying). */
const INTERRUPTED =
  'the sessions written so far are complete and valid, and nothing was overwritten; run apply again to finish (it writes only what is missing)';
export const applyModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'apply',
    describe: 'carry out a plan: generate the PHP artifacts and copy live sessions into Redis',
    builder: (y) =>
      allTlsOptions(keyProviderOptions(y))
        .option('plan', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file from plan' })
        .option('dry-run', {
          type: 'boolean',
          default: false,
          describe: 'write nothing: read the files and look up each session in Redis (read only) to show what apply would do',
        })
        .option('workers', {
          type: 'number',
          describe: 'worker threads that read and encrypt sessions; 0 = none (default: automatic, from 100,000 sessions)',
        })
        .option('retries', {
          type: 'number',
          describe:
            'retries of a failed Redis batch (restart, dropped connection) before apply stops, exit 1; re-run to finish (default 8)',
        })
        .option('retry-delay-ms', { type: 'number', describe: 'first retry pause in ms, doubled each retry up to 5 s (default 250)' })
        .option('min-replicas', {
          type: 'number',
          describe:
            'replicas that must acknowledge each batch (WAIT); fewer in time exits 1 (default: the replicas each master has now, from INFO replication)',
        })
        .option('wait-timeout-ms', { type: 'number', describe: 'WAIT timeout per batch in ms (default 2000)' })
        .option('master-wait-ms', masterWaitOption('apply'))
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' }),
    handler: (a) =>
      run(() => {
        const key = keyProviderFromArgs(a, false);
        return applyCommand(
          {
            plan: a.plan,
            dryRun: a['dry-run'],
            json: a.json,
            ...given('workers', a.workers as number | undefined),
            ...given('retries', a.retries as number | undefined),
            ...given('retryDelayMs', a['retry-delay-ms'] as number | undefined),
            ...given('minReplicas', a['min-replicas'] as number | undefined),
            ...given('waitTimeoutMs', a['wait-timeout-ms'] as number | undefined),
            ...given('masterWaitMs', a['master-wait-ms'] as number | undefined),
            tls: tlsFilesFromArgs(a, 'target'),
            sourceTls: tlsFilesFromArgs(a, 'source'),
            ...given('key', key),
          },
          print,
        );
      }, INTERRUPTED)(),
  });

/**
 * Runs applyPlan with a progress line (stderr, a terminal only) and one stderr line per Redis retry,
 * and prints the summary or the JSON result.
 * @returns 0 when everything was done, 1 otherwise (re-run apply). @throws UserFacingError from applyPlan.
 */
export async function applyCommand(args: ApplyArgs, print: Print): Promise<number> {
  const { applyPlan, describeArtifactResults, describeChoices, sourceFailureNotDone } = await import('@session-migrate/migrate');
  const { json, ...options } = args;
  let progress: ReturnType<typeof progressLine> | undefined;
  const applied = await applyPlan({
    ...options,
    onWarning: warn,
    onProgress: json ? undefined : (handled, total) => (progress ??= progressLine('apply', total)).update(handled),
    // One line per retry on stderr: a restart of Redis is visible, never silent.
    onRetry: (r) =>
      process.stderr.write(`session-migrate: Redis at ${r.url} failed (${printable(r.error)}); retry ${r.attempt} of ${r.retries}\n`),
  });
  progress?.done();
  if (json) print(JSON.stringify(applied.result, null, 2));
  else {
    const kept = applied.result.generateChoices;
    const artifacts = [
      ...describeArtifactResults(applied.result.artifacts, applied.plan.artifacts.outDir),
      ...(kept !== undefined ? [`as generate php made them: ${describeChoices(kept)} (generate php --plan PLAN changes them)`] : []),
    ];
    const notDone = (applied.result.sessions.sourceFailures ?? []).map(sourceFailureNotDone);
    const kinds = applied.plan.sources.map((src) => src.kind);
    printApplySummary(applied.result, artifacts, notDone, print, applied.ok, kinds);
  }
  // A session file this user cannot read is a session not copied: its user would be logged out.
  if (applied.oversized > 0 && !json)
    print(
      `  FAIL        ${applied.oversized} session(s) larger than the plan's limit (${applied.plan.limits.maxSessionBytes} bytes): not copied, their users would be logged out; run plan again with a larger --max-session-bytes, then apply`,
    );
  // Why a session was not read, and what to do, depend on the source: a file's permissions, or a
  // Redis source that failed between SCAN and GET (its reasons: the connection lost, an error code).
  if (applied.unreadable > 0 && !json)
    print(
      `  FAIL        ${applied.unreadable} session file(s) could not be read (permissions?): not copied; run apply as the PHP user or root`,
    );
  const fromRedis = applied.redisUnreadable;
  if (fromRedis !== undefined && !json) {
    const reasons = Object.entries(fromRedis.reasons);
    const why = reasons.length === 1 ? reasons[0]![0] : reasons.map(([r, n]) => `${r}: ${n}`).join(', ');
    print(
      `  FAIL        ${fromRedis.count} session(s) could not be read from the source Redis at ${fromRedis.urls.join(', ')} (${printable(why)}): not copied; run apply again once the source Redis answers`,
    );
  }
  return applied.ok ? 0 : 1;
}

/**
 * The summary: `artifacts` are describeArtifactResults' lines and the kept choices'; `notDone`,
 * sourceFailureNotDone's sentence of each source that failed after sessions were written (both
 * loaded with the use case).
 */
function printApplySummary(
  r: ApplyResult,
  artifacts: readonly string[],
  notDone: readonly string[],
  print: Print,
  ok: boolean,
  kinds: ReadonlyArray<PlanSource['kind']>,
): void {
  printApplyHead(r, artifacts, print);
  printApplyProblems(r, notDone, print, ok, kinds);
}

function printApplyHead(r: ApplyResult, artifacts: readonly string[], print: Print): void {
  const c = r.sessions.counts;
  const verb = r.dryRun ? 'would migrate' : 'migrated';
  // A dry run looks each session up in Redis (read only): its counts are what apply would do now.
  print(`session-migrate apply${r.dryRun ? ' (dry run: nothing written; each session looked up in Redis, read only)' : ''}`);
  for (const line of artifacts) print(`  artifact    ${line}`);
  if (r.sources !== undefined) {
    print(`  sources     ${r.sources.length}, each copied on its own:`);
    const row = (
      label: string,
      x: ApplySessionsReport['counts'] | undefined,
      superseded: number,
    ): { label: string; values: Array<number | string> } => ({
      label,
      values:
        x === undefined
          ? ['not started', '', '', '', '', '', '', '']
          : [
              x.migrated,
              x.alreadyPresent,
              x.newerInRedis,
              x.destroyed,
              x.conflicts,
              x.failed + x.notDone + x.unstable,
              x.expired + x.empty + x.corrupt,
              superseded,
            ],
    });
    for (const line of sourcesTable(
      [verb, 'present', 'newer', 'destroyed', 'conflicts', 'failed', 'not copied', 'superseded'],
      [
        ...r.sources.map((s) => row(s.source, s.sessions?.counts, s.superseded)),
        row(
          'total',
          c,
          r.sources.reduce((a, s) => a + s.superseded, 0),
        ),
      ],
    ))
      print(line);
    const notStarted = r.sources.filter((s) => !s.started);
    if (notStarted.length > 0)
      print(
        `  NOT DONE    ${notStarted.map((s) => printable(s.source)).join(', ')}: not started, ${r.sessions.stopped !== undefined ? 'apply stopped at the error below while copying an earlier source' : 'Redis kept failing for an earlier source'}; run apply again`,
      );
    const d = r.duplicates;
    if (d !== undefined && d.ids > 0)
      print(
        `  duplicates  ${d.ids} session ID(s) in more than one source: ${d.identical} the same, ${d.newerWins} copied from the source written last, ${d.ties} written within 1 s (copied from the source given first)`,
      );
  }
  print(
    `  sessions    ${verb} ${c.migrated} (${formatBytes(c.migratedBytes)}${migratedNotSeen(c)}), already present ${c.alreadyPresent}, newer in Redis ${c.newerInRedis}, destroyed ${c.destroyed}, conflicts ${c.conflicts}, failed ${c.failed}`,
  );
  if (c.retries > 0)
    print(
      `  retries     ${c.retries} Redis retr${c.retries === 1 ? 'y' : 'ies'} after transient failures (connection, failover, resharding)`,
    );
  for (const line of replicasLines(r)) print(line);
}

/**
 * What the read-back found of the sessions this run wrote, after their byte count in the `migrated`
 * figure: `migrated` counts the writes Redis acknowledged, and a session written then lost (a
 * failover, a restart, a FLUSHALL) or not read back is no session in Redis an operator may count on.
 * Empty when every written session was found (or no read-back ran).
 * @returns e.g. `; 1200 of them not in Redis at the read-back: MISSING; 30 not read back: UNVERIFIED`
 */
export function migratedNotSeen(c: Pick<ApplyResult['sessions']['counts'], 'migratedMissing' | 'migratedUnverified'>): string {
  const parts: string[] = [];
  const lost = c.migratedMissing;
  const unread = c.migratedUnverified;
  if (lost > 0) parts.push(`${lost} of them not in Redis at the read-back: MISSING`);
  if (unread > 0) parts.push(`${unread}${lost > 0 ? '' : ' of them'} not read back: UNVERIFIED`);
  return parts.map((p) => `; ${p}`).join('');
}

/**
 * apply's `replicas` lines (none for a dry run): the masters with fewer replicas connected than when
 * the plan was made, the WAIT after each batch, and the masters with no replica connected now that
 * the first line has not named already (one fact, one line; the JSON keeps both, as
 * `confirm.fewerThanPlanned` and `confirm.minReplicas`).
 */
export function replicasLines(r: Pick<ApplyResult, 'dryRun' | 'confirm'>): string[] {
  if (r.dryRun) return [];
  const lines: string[] = [];
  const wanted = Object.entries(r.confirm.minReplicas).filter(([, n]) => n > 0);
  const fewer = r.confirm.fewerThanPlanned ?? [];
  if (fewer.length > 0)
    lines.push(
      `  replicas    fewer than when the plan was made: ${firstFew(fewer.map((f) => `${f.node === '*' ? 'the master' : f.node} ${f.now} of ${f.planned}`))}; apply waits only for those connected now (a replica down?); --min-replicas ${Math.max(...fewer.map((f) => f.planned))} makes it wait for them`,
    );
  if (wanted.length > 0) {
    lines.push(
      `  replicas    WAIT after each batch for ${wanted.map(([node, n]) => `${n} replica(s) of ${node === '*' ? 'each master' : node}`).join(', ')} (timeout ${r.confirm.waitTimeoutMs} ms)`,
    );
    // Masters with no replica connected while others have some (apply waits for as many as each has
    // now): most likely a replica is down, and nothing confirms those sessions anywhere else. A
    // master the line above named already (it had replicas when the plan was made) is not repeated.
    const named = new Set(fewer.map((f) => f.node));
    const bare = Object.entries(r.confirm.minReplicas)
      .filter(([node, n]) => n === 0 && node !== '*' && !named.has(node))
      .map(([node]) => node);
    if (bare.length > 0)
      lines.push(
        `  replicas    none connected to ${firstFew(bare)} now: its sessions are on no replica (a replica down?); --min-replicas 1 makes apply wait for one on every master`,
      );
  }
  return lines;
}

/**
 * apply's `FAILED` lines: one per distinct reason (the report's failureGroups, which cover every
 * failed session: addFailure in packages/migrate/src/apply.ts), with how many sessions failed for it
 * and the names of the first few keys (never a value), then, when some failed sessions are in no
 * group, one line saying how many. (One line per listed session printed 100 identical lines, then
 * "and 1772 more", for a Redis that died.) The report's `failures` keep listing sessions one by one.
 */
export function failedLines(s: Pick<ApplyResult['sessions'], 'failureGroups' | 'counts'>): string[] {
  const groups = s.failureGroups ?? [];
  const lines = groups.map((g) => {
    const more = g.count - g.keys.length;
    const keys = `${g.keys.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
    return `  FAILED      ${g.count} session(s): ${printable(g.reason)} (${keys})`;
  });
  const more = s.counts.failed - groups.reduce((n, g) => n + g.count, 0);
  if (more > 0) lines.push(`  FAILED      ... and ${more} more session(s), not listed (counted in 'failed')`);
  return lines;
}

/**
 * The `skipped ...` part of apply's `not copied` line: what the sources skipped (`counts.skipped`, by
 * reason), named as each kind of source holds sessions: `skipped files: ...` for files: sources,
 * `skipped keys: ...` for redis: sources; with sources of both kinds, one part for each (the files
 * sources' counts together, then the Redis sources'), e.g.
 * `skipped files: superseded 5; skipped keys: wrong-type 1, bad-session-id 1`. A kind with nothing
 * skipped says `none`. (Before, a Redis source's keys were called "skipped files".)
 * @param r the result: `sources` (several sources, in the plan's order) or `sessions` (one source)
 * @param kinds the kind of each of the plan's sources, in the plan's order (Plan.sources)
 */
export function skippedByKind(r: Pick<ApplyResult, 'sessions' | 'sources'>, kinds: ReadonlyArray<PlanSource['kind']>): string {
  const perSource = r.sources !== undefined ? r.sources.map((s) => s.sessions?.counts.skipped ?? {}) : [r.sessions.counts.skipped];
  const byKind = new Map<PlanSource['kind'], Record<string, number>>();
  perSource.forEach((skipped, i) => {
    const kind = kinds[i] ?? 'files';
    const sum = byKind.get(kind) ?? {};
    for (const [reason, n] of Object.entries(skipped)) sum[reason] = (sum[reason] ?? 0) + n;
    byKind.set(kind, sum);
  });
  return [...byKind]
    .sort(([a], [b]) => (a === b ? 0 : a === 'files' ? -1 : 1))
    .map(([kind, counts]) => `skipped ${kind === 'redis' ? 'keys' : 'files'}: ${formatCounts(counts)}`)
    .join('; ');
}

/** What the plan's sources hold sessions in: `files`, `keys` (redis: sources), or `files and keys`. */
function sourceNoun(kinds: ReadonlyArray<PlanSource['kind']>): string {
  const redis = kinds.includes('redis');
  const files = kinds.some((k) => k !== 'redis');
  return redis && files ? 'files and keys' : redis ? 'keys' : 'files';
}

/**
 * Said after "run apply again" where Redis failed: a Redis that was restarted meanwhile (and lost what
 * it held) makes apply refuse the plan (its run ID changed), and asks for plan first.
 */
const AFTER_RESTART = ' (if Redis was restarted meanwhile: plan, then apply)';

/**
 * apply's problem lines (STOPPED, NOT DONE, UNCONFIRMED, MISSING, ..., FAILED), each printed only
 * when it has something to say. Exported for its unit test (packages/cli/test/apply-replicas-lines.test.ts).
 * @param notDone sourceFailureNotDone's sentences @param ok applyPlan's verdict (exit 0)
 * @param kinds the kind of each of the plan's sources, in its order (skippedByKind)
 */
export function printApplyProblems(
  r: ApplyResult,
  notDone: readonly string[],
  print: Print,
  ok: boolean,
  kinds: ReadonlyArray<PlanSource['kind']>,
): void {
  const c = r.sessions.counts;
  if (r.sessions.stopped !== undefined) {
    // One instruction, naming apply: a fix's own closing "then run the command again" (OOM,
    // READONLY) is dropped as stoppedRun drops it (withoutRunAgain), and said here as "run apply again".
    const fix = r.sessions.stopped.fix;
    const own = fix === undefined ? undefined : withoutRunAgain(fix);
    const advice =
      own === undefined
        ? '; fix it and run apply again'
        : own !== fix
          ? `: ${printable(own)}, then run apply again`
          : `: ${printable(own)}; fix it and run apply again`;
    // Named as plan and verify name a Redis that failed under their commands (redisFailure's form).
    print(`  STOPPED     Redis at ${printable(r.target)} failed during apply: ${printable(r.sessions.stopped.message)}${advice}`);
  }
  // A source that failed while read after sessions were written (before any: one line, exit 2).
  for (const line of notDone) print(`  NOT DONE    ${printable(line)}`);
  if (c.unconfirmed > 0) {
    print(
      `  UNCONFIRMED ${c.unconfirmed} session(s) not confirmed on enough replicas in time (${r.sessions.replicaShortfalls
        .slice(0, 3)
        .map((x) => `${x.node}: ${x.acked} of ${x.wanted}`)
        .join(', ')}): a failover could lose them; run apply again (it re-checks them), or adjust --min-replicas / --wait-timeout-ms`,
    );
  }
  if (c.missingAfterWrite > 0)
    print(
      r.targetRestarted === true
        ? `  MISSING     ${c.missingAfterWrite} session(s) written or found by apply are not in Redis any more: Redis restarted during apply (its run ID is not the plan's) and lost them; re-run plan, then apply`
        : `  MISSING     ${c.missingAfterWrite} session(s) written or found by apply are not in Redis any more (lost, e.g. in a failover): run apply again to write them`,
    );
  for (const k of r.sessions.missing.slice(0, 20)) print(`  MISSING     ${k}`);
  if (c.unverified > 0)
    print(`  UNVERIFIED  ${c.unverified} session(s) could not be read back (Redis errors): run apply again${AFTER_RESTART}`);
  if (c.noTtl > 0) print(`  NOTE        ${c.noTtl} source key(s) had no TTL: given gc_maxlifetime`);
  // A permanent error (OOM, NOPERM, ...) is not retried: the STOPPED line above says it and what to do.
  // Said only when sessions were left: a stop with none left (the writes of its last batch failed,
  // listed by FAILED) printed "NOT DONE 0 session(s) not written".
  if (c.notDone > 0)
    print(
      r.sessions.stopped !== undefined
        ? `  NOT DONE    ${c.notDone} session(s) not written: apply stopped at the error above`
        : `  NOT DONE    ${c.notDone} session(s) not written: Redis kept failing after the retries; run apply again to finish (it never overwrites)${AFTER_RESTART}`,
    );
  else if (r.sessions.aborted && r.sessions.stopped === undefined && c.failed > 0)
    // The retries ran out in the last batch: nothing was left, but its sessions are FAILED (listed
    // below) and only a re-run writes them; the run's one instruction must not go with the 0 line.
    print(
      `  NOT DONE    the FAILED session(s) below: Redis kept failing after the retries; run apply again to finish (it never overwrites)${AFTER_RESTART}`,
    );
  if (c.unstable > 0) print(`  UNSTABLE    ${c.unstable} file(s) kept changing while read and were not copied; run apply again`);
  for (const u of r.sessions.unstable) print(`  UNSTABLE    ${printable(u)}`);
  const foreign = c.skipped['foreign-owner'] ?? 0;
  if (foreign > 0)
    print(
      r.ownerUnknown === true
        ? `  NOT TAKEN   ${foreign} file(s) owned by another user than root: the plan saw no session file, so it does not know the user PHP runs as; not copied. Run plan again with --php-user NAME, then apply`
        : `  NOT TAKEN   ${foreign} file(s) owned by another user than root or PHP's (plan's owners line): PHP's files handler refuses them, so they are no sessions of this application; not copied`,
    );
  for (const u of (r.sessions.foreignOwned ?? []).slice(0, 20)) print(`  NOT TAKEN   ${printable(u)}`);
  print(`  not copied  ${c.expired} expired, ${c.empty} empty, ${c.corrupt} that PHP would reject; ${skippedByKind(r, kinds)}`);
  for (const p of r.sessions.conflicts) print(`  CONFLICT    ${p.key} (${printable(p.file)}): ${p.reason}`);
  for (const line of failedLines(r.sessions)) print(line);
  // "Already applied" only when something of the plan is in Redis already; files that are all gone,
  // skipped (symlinks, FIFOs) or expired since the plan leave nothing to copy, which is not the same.
  if (r.nothingToDo)
    print(
      c.alreadyPresent + c.newerInRedis + c.destroyed > 0
        ? '  nothing to do: the plan was already applied; nothing changed'
        : `  nothing to do: no session of the plan was left to copy (its ${sourceNoun(kinds)} are gone, skipped or expired since the plan: see the counts above); nothing changed`,
    );
  else if (!r.dryRun && ok) print('  next        deploy the artifacts to PHP, then run session-migrate verify');
}

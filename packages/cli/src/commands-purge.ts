/**
 * `session-migrate purge`: deletes the plaintext session files (or keys) whose sessions are proven in
 * Redis (same or newer, destroyed, expired anyway, or superseded by a later copy in another source);
 * refuses (exit 1, nothing deleted in any source) while any live session is not proven, unless
 * --allow-partial. Several sources (a plan's, or --source repeated) are judged together and each is
 * reported on its own. Rule and checks: packages/migrate/src/purge.ts.
 */
import { DEFAULT_GC_MAXLIFETIME, UserFacingError, printable } from '@session-migrate/common';
import { DEFAULT_PREFIX, type KeyProvider } from '@session-migrate/envelope';
import { purgeSessions, readPlanFile, resolveDuplicates, type DuplicatesReport, type PurgeOptions, type PurgeReport } from '@session-migrate/migrate';
import { DEFAULT_MAX_SESSION_BYTES, sourceLabel, type Source } from '@session-migrate/sources';
import { specFromUrl, type TlsFiles } from '@session-migrate/redis';
import { openTarget } from './redis-options.ts';
import { codecFromProvider, providerFromPlan } from './key-options.ts';
import { checkGcMaxlifetime, checkPrefix, type Print } from './commands.ts';
import { formatBytes, formatCounts } from './output.ts';
import { checkSourcesAgainstTarget, closeSources, openPlanSources, openSources, sourceRowLabel, sourcesTable } from './sources-options.ts';

export interface PurgeArgs {
  /** A plan whose sources, target, key file, prefix and gc_maxlifetime are the defaults. */
  plan?: string;
  /** Sources to purge (`--source`, repeatable): files:DIR or redis:URL; default: every source of the plan. */
  source?: string | string[];
  target?: string;
  /** Where the key comes from; default: the plan's provider. */
  key?: KeyProvider;
  prefix?: string;
  gcMaxlifetime?: number;
  dryRun: boolean;
  allowPartial: boolean;
  /** TLS files of the target (replace the plan's) and of a Redis source. */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  json: boolean;
}

/** purge's JSON with several sources: each source's report, their sum, and the session IDs in more than one. */
export interface PurgeResult extends PurgeReport {
  sources?: Array<PurgeReport & { source: string }>;
  duplicates?: DuplicatesReport;
}

/**
 * Runs purge. Exit 0 when every session of every source was proven (and, unless --dry-run, deleted);
 * 1 when some are not proven (nothing deleted in any source, or with --allow-partial only the proven
 * ones) or changed meanwhile.
 * @throws UserFacingError for bad options, an unreadable key file or source, or a Redis failure.
 */
export async function purgeCommand(args: PurgeArgs, print: Print): Promise<number> {
  const plan = args.plan !== undefined ? readPlanFile(args.plan) : undefined;
  const specs = args.source === undefined ? [] : Array.isArray(args.source) ? args.source : [args.source];
  const target = args.target ?? plan?.target.url;
  const provider = args.key ?? (plan !== undefined && args.plan !== undefined ? providerFromPlan(plan.key, args.plan) : undefined);
  if ((specs.length === 0 && plan === undefined) || target === undefined || provider === undefined) {
    throw new UserFacingError('purge needs --source (files:DIR or redis:URL), --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)');
  }
  for (const spec of specs) if (!spec.startsWith('files:') && !spec.startsWith('redis:')) throw new UserFacingError('purge deletes plaintext sessions: --source must be files:DIR or redis:URL');
  const prefix = checkPrefix(args.prefix ?? plan?.target.prefix ?? DEFAULT_PREFIX);
  const gcMaxlifetime = checkGcMaxlifetime(args.gcMaxlifetime ?? plan?.php.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME);
  const fromPlan = args.target === undefined && plan !== undefined;
  if (!fromPlan) specFromUrl(target, args.tls ?? {}, 'target'); // bad URL or TLS options: exit 2 before anything is opened
  const { codec } = await codecFromProvider(provider);
  const maxSessionBytes = plan?.limits.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  const sourceOptions = { maxSessionBytes, ...(args.sourceTls !== undefined ? { tls: args.sourceTls } : {}), write: true };
  // Given sources (repeatable), else every source of the plan, in its order.
  const sources: Source[] = specs.length > 0 ? await openSources(specs, sourceOptions) : await openPlanSources(plan!, args.plan!, sourceOptions);
  const labels = sources.map((s, i) => (specs.length === 0 ? sourceRowLabel(plan!.sources[i]!, i) : `#${i + 1} ${sourceLabel(s.describe())}`));
  let reports: PurgeReport[];
  let duplicates: DuplicatesReport | undefined;
  try {
    const client = await openTarget(fromPlan ? { recorded: plan!.target } : { url: target }, args.tls ?? {}, { command: 'purge', prefix });
    try {
      checkSourcesAgainstTarget(sources, { ...client.description, prefix });
      const resolution = await resolveDuplicates(sources, { gcMaxlifetime, serializeHandler: plan?.php.serializeHandler ?? 'php' });
      duplicates = sources.length > 1 ? resolution.report : undefined;
      reports = await purgeAll(sources, resolution.superseded, { client, codec, prefix, gcMaxlifetime, dryRun: args.dryRun, allowPartial: args.allowPartial });
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw new UserFacingError(`purge stopped: ${((err as Error).message ?? String(err)).split('\n')[0]} (Redis at ${client.url}); nothing is deleted before every session was checked, and re-running is safe`);
    } finally {
      client.close();
    }
  } finally {
    await closeSources(sources);
  }
  const total = reports.length === 1 ? reports[0]! : sumPurgeReports(reports);
  const ok = total.complete && total.changed === 0;
  if (args.json) {
    const result: PurgeResult = reports.length === 1 ? total : { ...total, sources: reports.map((r, i) => ({ source: labels[i]!, ...r })), ...(duplicates !== undefined ? { duplicates } : {}) };
    print(JSON.stringify(result, null, 2));
    return ok ? 0 : 1;
  }
  if (reports.length === 1) {
    const d = sources[0]!.describe() as { dir?: string; url?: string; prefix?: string };
    printReport(total, d.dir ?? `${d.url ?? ''} prefix "${d.prefix ?? ''}"`, print);
  } else {
    printReport(total, `${reports.length} sources`, print, reports.map((r, i) => ({ label: labels[i]!, report: r })), duplicates);
  }
  return ok ? 0 : 1;
}

/**
 * Purges every source at once: each is judged (in parallel), and only when all of them are judged
 * does any delete (purgeSessions' beforeDelete): nothing anywhere while a session of any source is
 * not proven, unless allowPartial.
 * @throws the first error of any source (then nothing was deleted anywhere, if it came while judging)
 */
async function purgeAll(sources: readonly Source[], superseded: ReadonlyArray<ReadonlySet<string>>, common: Omit<PurgeOptions, 'source'>): Promise<PurgeReport[]> {
  const judged: Array<PurgeReport | undefined> = new Array(sources.length).fill(undefined);
  const arrived: boolean[] = new Array(sources.length).fill(false);
  let waiting = sources.length;
  let release!: (go: boolean) => void;
  const gate = new Promise<boolean>((resolve) => { release = resolve; });
  const arrive = (i: number): void => {
    if (arrived[i]) return;
    arrived[i] = true;
    if (--waiting === 0) release(judged.every((r) => r !== undefined) && (judged.every((r) => r!.complete) || common.allowPartial));
  };
  const runs = sources.map((source, i) => purgeSessions({
    ...common, source, superseded: superseded[i]!,
    beforeDelete: (r) => { judged[i] = r; arrive(i); return gate; },
  }).finally(() => arrive(i)));
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<PurgeReport>).value);
}

/** The sum of several sources' purge reports (lists joined, at most 1000 entries each). */
function sumPurgeReports(reports: readonly PurgeReport[]): PurgeReport {
  const add = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const kinds = new Set(reports.map((r) => r.sourceKind));
  const total: PurgeReport = {
    sourceKind: kinds.size === 1 ? reports[0]!.sourceKind : 'files', dryRun: reports[0]!.dryRun, allowPartial: reports[0]!.allowPartial,
    complete: reports.every((r) => r.complete), deleting: reports.some((r) => r.deleting), sessions: 0, deletable: {}, deletableBytes: 0, blocked: {},
    deleted: 0, deletedBytes: 0, changed: 0, skipped: {}, remaining: { files: 0, bytes: 0 }, blockers: [], wouldDelete: [],
  };
  for (const r of reports) {
    total.sessions += r.sessions;
    total.deletable = add(total.deletable, r.deletable);
    total.deletableBytes += r.deletableBytes;
    total.blocked = add(total.blocked, r.blocked);
    total.deleted += r.deleted;
    total.deletedBytes += r.deletedBytes;
    total.changed += r.changed;
    total.skipped = add(total.skipped, r.skipped);
    total.remaining = { files: total.remaining.files + r.remaining.files, bytes: total.remaining.bytes + r.remaining.bytes };
    for (const b of r.blockers) if (total.blockers.length < 1000) total.blockers.push(b);
    for (const w of r.wouldDelete) if (total.wouldDelete.length < 1000) total.wouldDelete.push(w);
  }
  return total;
}

function printReport(r: PurgeReport, dir: string, print: Print, perSource?: Array<{ label: string; report: PurgeReport }>, duplicates?: DuplicatesReport): void {
  const blocked = Object.values(r.blocked).reduce((a, b) => a + b, 0);
  const deletable = Object.values(r.deletable).reduce((a, b) => a + b, 0);
  print(`session-migrate purge${r.dryRun ? ' (dry run: nothing deleted)' : ''}: ${printable(dir)}`);
  if (perSource !== undefined) {
    const sum = (x: Record<string, number>): number => Object.values(x).reduce((a, b) => a + b, 0);
    for (const line of sourcesTable(['sessions', 'proven', 'superseded', 'not proven', r.dryRun ? 'would delete' : 'deleted', 'remaining'], [
      ...perSource.map(({ label, report: x }) => ({ label, values: [x.sessions, sum(x.deletable), x.deletable.superseded ?? 0, sum(x.blocked), r.dryRun ? (x.deleting ? sum(x.deletable) : 0) : x.deleted, x.remaining.files] })),
      { label: 'total', values: [r.sessions, deletable, r.deletable.superseded ?? 0, blocked, r.dryRun ? (r.deleting ? deletable : 0) : r.deleted, r.remaining.files] },
    ])) print(line);
    if (duplicates !== undefined && duplicates.ids > 0) print(`  duplicates  ${duplicates.ids} session ID(s) in more than one source: the older copies are deleted once the session is in Redis (superseded)`);
  }
  print(`  sessions    ${r.sessions} ${perSource !== undefined ? 'session' : r.sourceKind === 'redis' ? 'key' : 'file'}(s): ${deletable} proven (${formatCounts(r.deletable)}), ${blocked} not proven${blocked > 0 ? ` (${formatCounts(r.blocked)})` : ''}`);
  if (Object.keys(r.skipped).length > 0) print(`  untouched   not sessions PHP reads: ${formatCounts(r.skipped)}`);
  for (const b of r.blockers) print(`  NOT PROVEN  ${printable(b.file)}${b.key !== '' ? ` (${b.key})` : ''}: ${describeBlocker(b.reason)}`);
  if (blocked > r.blockers.length) print(`  ...         and ${blocked - r.blockers.length} more not proven`);
  if (r.dryRun) {
    for (const w of r.wouldDelete) print(`  would delete ${printable(w.file)}: ${w.reason}`);
    if (deletable > r.wouldDelete.length) print(`  ...         and ${deletable - r.wouldDelete.length} more`);
  }
  if (!r.deleting) {
    print(`  REFUSED     nothing ${r.dryRun ? 'would be' : 'was'} deleted: ${blocked} session(s) are not in Redis same or newer; run apply (or let the read-through handler take them over) and purge again, or --allow-partial to delete only the proven ones`);
  } else if (r.dryRun) {
    print(`  would delete ${deletable} ${perSource !== undefined ? 'session' : r.sourceKind === 'redis' ? 'key' : 'file'}(s) (${formatBytes(r.deletableBytes)})`);
  } else {
    print(`  deleted     ${r.deleted} ${perSource !== undefined ? 'session' : r.sourceKind === 'redis' ? 'key' : 'file'}(s) (${formatBytes(r.deletedBytes)})${r.changed > 0 ? `; ${r.changed} changed since the check and were kept: run purge again` : ''}`);
  }
  print(`  remaining   ${r.remaining.files} plaintext session ${perSource !== undefined ? 'file(s) and key(s)' : r.sourceKind === 'redis' ? 'key(s)' : 'file(s)'}, ${formatBytes(r.remaining.bytes)}${r.dryRun ? ' would remain' : ''}`);
}

function describeBlocker(reason: string): string {
  switch (reason) {
    case 'missing': return 'not in Redis';
    case 'older': return 'Redis holds other bytes, not provably newer than the file';
    case 'no-ttl': return 'the Redis key has no TTL';
    case 'wrong-type': return 'the Redis key is not a string';
    case 'unreadable-file': return 'the file could not be read (unreadable, oversized or changing)';
    default: return `the Redis value does not open (${reason})`;
  }
}

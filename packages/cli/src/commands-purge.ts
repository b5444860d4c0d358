/**
 * `session-migrate purge`: deletes the plaintext session files whose sessions are proven in Redis
 * (same or newer, destroyed, or expired anyway); refuses (exit 1, nothing deleted) while any live
 * session is not proven, unless --allow-partial. Rule and checks: packages/migrate/src/purge.ts.
 */
import { UserFacingError, printable } from '@session-migrate/common';
import { DEFAULT_PREFIX, type KeyProvider } from '@session-migrate/envelope';
import { purgeSessions, readPlanFile, type PurgeReport } from '@session-migrate/migrate';
import { DEFAULT_MAX_SESSION_BYTES, checkSourceTargetPrefixes, openAnySource, openRecordedRedisSource, type RedisSourceDescription, type Source } from '@session-migrate/sources';
import { specFromUrl, type TlsFiles } from '@session-migrate/redis';
import { openTarget, warn } from './redis-options.ts';
import { codecFromProvider, providerFromPlan } from './key-options.ts';
import { checkGcMaxlifetime, checkPrefix, type Print } from './commands.ts';
import { formatBytes, formatCounts } from './output.ts';

export interface PurgeArgs {
  /** A plan whose source, target, key file, prefix and gc_maxlifetime are the defaults. */
  plan?: string;
  source?: string;
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

/**
 * Runs purge. Exit 0 when every session file was proven (and, unless --dry-run, deleted); 1 when some
 * are not proven (nothing deleted, or with --allow-partial only the proven ones) or changed meanwhile.
 * @throws UserFacingError for bad options, an unreadable key file or source, or a Redis failure.
 */
export async function purgeCommand(args: PurgeArgs, print: Print): Promise<number> {
  const plan = args.plan !== undefined ? readPlanFile(args.plan) : undefined;
  const planSource = args.source === undefined ? plan?.source : undefined;
  const sourceSpec = args.source ?? (planSource?.kind === 'files' ? `files:${planSource.savePath}` : planSource?.kind === 'redis' ? 'redis:(plan)' : undefined);
  const target = args.target ?? plan?.target.url;
  const provider = args.key ?? (plan !== undefined && args.plan !== undefined ? providerFromPlan(plan.key, args.plan) : undefined);
  if (sourceSpec === undefined || target === undefined || provider === undefined) {
    throw new UserFacingError('purge needs --source (files:DIR or redis:URL), --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)');
  }
  if (!sourceSpec.startsWith('files:') && !sourceSpec.startsWith('redis:')) throw new UserFacingError('purge deletes plaintext sessions: --source must be files:DIR or redis:URL');
  const prefix = checkPrefix(args.prefix ?? plan?.target.prefix ?? DEFAULT_PREFIX);
  const gcMaxlifetime = checkGcMaxlifetime(args.gcMaxlifetime ?? plan?.php.gcMaxlifetime ?? 1440);
  const fromPlan = args.target === undefined && plan !== undefined;
  if (!fromPlan) specFromUrl(target, args.tls ?? {}, 'target'); // bad URL or TLS options: exit 2 before anything is opened
  const { codec } = await codecFromProvider(provider);
  const maxSessionBytes = plan?.limits.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  const sourceOptions = { maxSessionBytes, ...(args.sourceTls !== undefined ? { tls: args.sourceTls } : {}), onWarning: warn, write: true };
  const source: Source = planSource?.kind === 'redis'
    ? await openRecordedRedisSource(planSource, { ...sourceOptions, aclCommand: 'source-purge' as const })
    : await openAnySource(sourceSpec, { ...sourceOptions, aclCommand: 'source-purge' as const });
  let report: PurgeReport;
  try {
    const client = await openTarget(fromPlan ? { recorded: plan!.target } : { url: target }, args.tls ?? {}, { command: 'purge', prefix });
    try {
      if (source.kind === 'redis') checkSourceTargetPrefixes(source.describe() as RedisSourceDescription, { ...client.description, prefix });
      report = await purgeSessions({ source, client, codec, prefix, gcMaxlifetime, dryRun: args.dryRun, allowPartial: args.allowPartial });
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw new UserFacingError(`purge stopped: ${((err as Error).message ?? String(err)).split('\n')[0]} (Redis at ${client.url}); nothing is deleted before every session was checked, and re-running is safe`);
    } finally {
      client.close();
    }
  } finally {
    await source.close();
  }
  const ok = report.complete && report.changed === 0;
  if (args.json) {
    print(JSON.stringify(report, null, 2));
    return ok ? 0 : 1;
  }
  const d = source.describe() as { dir?: string; url?: string; prefix?: string };
  printReport(report, d.dir ?? `${d.url ?? ''} prefix "${d.prefix ?? ''}"`, print);
  return ok ? 0 : 1;
}

function printReport(r: PurgeReport, dir: string, print: Print): void {
  const blocked = Object.values(r.blocked).reduce((a, b) => a + b, 0);
  const deletable = Object.values(r.deletable).reduce((a, b) => a + b, 0);
  print(`session-migrate purge${r.dryRun ? ' (dry run: nothing deleted)' : ''}: ${printable(dir)}`);
  print(`  sessions    ${r.sessions} ${r.sourceKind === 'redis' ? 'key' : 'file'}(s): ${deletable} proven (${formatCounts(r.deletable)}), ${blocked} not proven${blocked > 0 ? ` (${formatCounts(r.blocked)})` : ''}`);
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
    print(`  would delete ${deletable} ${r.sourceKind === 'redis' ? 'key' : 'file'}(s) (${formatBytes(r.deletableBytes)})`);
  } else {
    print(`  deleted     ${r.deleted} ${r.sourceKind === 'redis' ? 'key' : 'file'}(s) (${formatBytes(r.deletedBytes)})${r.changed > 0 ? `; ${r.changed} changed since the check and were kept: run purge again` : ''}`);
  }
  print(`  remaining   ${r.remaining.files} plaintext session ${r.sourceKind === 'redis' ? 'key' : 'file'}(s), ${formatBytes(r.remaining.bytes)}${r.dryRun ? ' would remain' : ''}`);
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

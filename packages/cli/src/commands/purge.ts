/**
 * `session-migrate purge`: delete the plaintext session files (or keys) proven in Redis. The work is
 * the purge use case (packages/migrate/src/use-cases/purge.ts, the rule in packages/migrate/src/purge.ts);
 * this module parses, calls, prints. Exit 0 when every session was proven (and, unless --dry-run,
 * deleted); 1 when some are not proven or changed meanwhile, or files of a non-root owner are kept
 * while the plan knows no user PHP runs as (then, as for sessions not proven, nothing is deleted
 * without --allow-partial), or when a failure stopped it after it deleted any (one line, `purge NOT
 * DONE: N ...`: the use case's stoppedRun); 2 for bad input, or a failure before any delete.
 */
import { printable } from '@session-migrate/common';
import type { DuplicatesReport, PurgeReport, PurgeUseCaseOptions } from '@session-migrate/migrate';
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { formatBytes, formatCounts, sourcesTable } from '../output.ts';
import { allTlsOptions, tlsFilesFromArgs, warn } from '../redis-options.ts';
import {
  JSON_REPORT_OPTION,
  jsonWhenStopped,
  masterWaitOption,
  PHP_USER_GIVEN_NOW_OPTION,
  planTargetOptions,
  given,
  defineCommand,
  type CommandFactory,
  type Print,
} from './context.ts';

/** purge's arguments: the use case's options (no callbacks), and `--json`. */
export interface PurgeArgs extends Omit<PurgeUseCaseOptions, 'onWarning'> {
  json: boolean;
}

/** What purge says on SIGINT (Ctrl-C), SIGTERM or SIGHUP, before exit 130, 143 or 129 (main.ts whileSaying). */
const INTERRUPTED = 'only sessions proven in Redis were deleted; run purge again to finish';
export const purgeModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'purge',
    describe: 'delete the plaintext session files proven in Redis (same or newer); refuses while any is not',
    builder: (y) =>
      planTargetOptions(
        allTlsOptions(keyProviderOptions(y))
          .option('plan', { type: 'string', describe: 'take source, target, key file, prefix and gc_maxlifetime from this plan' })
          .option('source', {
            type: 'string',
            array: true,
            describe:
              "files:DIR (DIR may be a save_path like '2;/var/lib/php/sessions') or redis:URL, repeatable (default: every source of the plan)",
          })
          .option('php-user', PHP_USER_GIVEN_NOW_OPTION),
      )
        .option('dry-run', { type: 'boolean', default: false, describe: 'list what would be deleted, delete nothing' })
        .option('allow-partial', {
          type: 'boolean',
          default: false,
          describe: 'delete the proven files even while others are not proven (still exits 1)',
        })
        .option('master-wait-ms', masterWaitOption('purge'))
        .option('json', JSON_REPORT_OPTION),
    handler: (a) =>
      run(
        () =>
          purgeCommand(
            {
              ...given('key', keyProviderFromArgs(a, false)),
              ...given('plan', a.plan as string | undefined),
              ...given('source', a.source as string[] | undefined),
              ...given('phpUsers', a['php-user'] as string[] | undefined),
              ...given('target', a.target as string | undefined),
              ...given('prefix', a.prefix as string | undefined),
              ...given('gcMaxlifetime', a['gc-maxlifetime'] as number | undefined),
              ...given('masterWaitMs', a['master-wait-ms'] as number | undefined),
              dryRun: a['dry-run'],
              allowPartial: a['allow-partial'],
              json: a.json,
              tls: tlsFilesFromArgs(a, 'target'),
              sourceTls: tlsFilesFromArgs(a, 'source'),
            },
            print,
          ),
        INTERRUPTED,
      )(),
  });

/**
 * Runs the purge use case and prints its report (or JSON).
 * @returns 0 when every session was proven (and deleted unless dry run), 1 otherwise.
 * @throws UserFacingError from purge.
 */
export async function purgeCommand(args: PurgeArgs, print: Print): Promise<number> {
  const { purge } = await import('@session-migrate/migrate');
  const { json, ...options } = args;
  const r = await jsonWhenStopped(json, print, () => purge({ ...options, onWarning: warn }));
  if (json) print(JSON.stringify(r.json, null, 2));
  else if (r.sources.length === 1) printReport(r.total, r.heading, r.ownerUnknown, print);
  else printReport(r.total, r.heading, r.ownerUnknown, print, r.sources, r.duplicates);
  return r.ok ? 0 : 1;
}

/** Sums a report's counts by reason. */
const total = (x: Record<string, number>): number => Object.values(x).reduce((a, b) => a + b, 0);

/**
 * purge's report in lines: heading, per-source table (several sources), what was found, what was
 * done. `ownerUnknown`: files kept because the plan knows no user PHP runs as (the use case's count).
 */
function printReport(
  r: PurgeReport,
  dir: string,
  ownerUnknown: number,
  print: Print,
  perSource?: ReadonlyArray<{ label: string; report: PurgeReport }>,
  duplicates?: DuplicatesReport,
): void {
  print(`session-migrate purge${r.dryRun ? ' (dry run: nothing deleted)' : ''}: ${printable(dir)}`);
  if (perSource !== undefined) printSourcesTable(r, perSource, duplicates, print);
  const unit = perSource !== undefined ? 'session' : r.sourceKind === 'redis' ? 'key' : 'file';
  printFindings(r, unit, perSource !== undefined, ownerUnknown, print);
  printOutcome(r, unit, perSource !== undefined, ownerUnknown, print);
}

/** One row per source and a total: sessions, proven, superseded, not proven, deleted, remaining; then the duplicates. */
function printSourcesTable(
  r: PurgeReport,
  perSource: ReadonlyArray<{ label: string; report: PurgeReport }>,
  duplicates: DuplicatesReport | undefined,
  print: Print,
): void {
  const row = (label: string, x: PurgeReport) => ({
    label,
    values: [
      x.sessions,
      total(x.deletable),
      x.deletable.superseded ?? 0,
      total(x.blocked),
      r.dryRun ? (x.deleting ? total(x.deletable) : 0) : x.deleted,
      x.remaining.files,
    ],
  });
  for (const line of sourcesTable(
    ['sessions', 'proven', 'superseded', 'not proven', r.dryRun ? 'would delete' : 'deleted', 'remaining'],
    [...perSource.map(({ label, report }) => row(label, report)), row('total', r)],
  ))
    print(line);
  if (duplicates !== undefined && duplicates.ids > 0)
    print(
      `  duplicates  ${duplicates.ids} session ID(s) in more than one source: the older copies are deleted once the session is in Redis (superseded)`,
    );
}

/** What purge found: sessions proven and not, entries left alone, the sessions not proven and (dry run) those it would delete. */
function printFindings(r: PurgeReport, unit: string, several: boolean, ownerUnknown: number, print: Print): void {
  const blocked = total(r.blocked);
  const deletable = total(r.deletable);
  print(
    `  sessions    ${r.sessions} ${unit}(s): ${deletable} proven (${formatCounts(r.deletable)}), ${blocked} not proven${blocked > 0 ? ` (${formatCounts(r.blocked)})` : ''}`,
  );
  const corrupt = r.deletable.corrupt ?? 0;
  if (corrupt > 0)
    print(
      `  corrupt     ${corrupt} ${unit}(s) PHP would reject under the plan's session.serialize_handler (plan and apply never copy them): PHP destroys such a session at its first read ("Failed to decode session object"), so no user has it; ${r.dryRun || !r.deleting ? 'deletable' : 'deleted'} without a copy in Redis`,
    );
  if (Object.keys(r.skipped).length > 0)
    print(
      `  untouched   not sessions PHP reads: ${formatCounts(r.skipped)}${r.sourceKind === 'redis' || several ? "; a Redis key among them that holds session data is plaintext left behind (verify fails it when the source is in the target's database, not on another server or database): delete such keys by hand" : ''}`,
    );
  if (ownerUnknown > 0)
    print(
      `  KEPT        ${ownerUnknown} file(s) owned by another user than root while the plan knows no user PHP runs as (it saw no session file): maybe PHP's sessions, never copied; run plan again with --php-user NAME, then apply and purge`,
    );
  const foreign = (r.skipped['foreign-owner'] ?? 0) - ownerUnknown;
  if (foreign > 0)
    print(
      `  kept        ${foreign} file(s) owned by another user than root or PHP's: PHP's files handler refuses them, so they are no sessions of this application; left alone (remove them by hand after checking who wrote them)`,
    );
  const copy = several ? 'the source copy' : r.sourceKind === 'redis' ? 'the source key' : 'the file';
  for (const b of r.blockers)
    print(`  NOT PROVEN  ${printable(b.file)}${b.key !== '' ? ` (${b.key})` : ''}: ${describeBlocker(b.reason, copy)}`);
  if (blocked > r.blockers.length) print(`  ...         and ${blocked - r.blockers.length} more not proven`);
  if (r.dryRun) {
    for (const w of r.wouldDelete) print(`  would delete ${printable(w.file)}: ${w.reason}`);
    if (deletable > r.wouldDelete.length) print(`  ...         and ${deletable - r.wouldDelete.length} more`);
  }
}

/**
 * What purge did (or would do): refused, would delete, or deleted; and what remains. `ownerUnknown`:
 * files of an unknown PHP user kept, which hold back every delete without --allow-partial.
 */
function printOutcome(r: PurgeReport, unit: string, several: boolean, ownerUnknown: number, print: Print): void {
  if (!r.deleting && total(r.blocked) === 0 && ownerUnknown > 0) {
    print(
      `  REFUSED     nothing ${r.dryRun ? 'would be' : 'was'} deleted: ${ownerUnknown} file(s) of an unknown PHP user are kept (KEPT above); run plan again with --php-user NAME, then apply and purge, or --allow-partial to delete only the proven ones`,
    );
  } else if (!r.deleting) {
    print(
      `  REFUSED     nothing ${r.dryRun ? 'would be' : 'was'} deleted: ${total(r.blocked)} session(s) are not in Redis same or newer${ownerUnknown > 0 ? ` and ${ownerUnknown} file(s) of an unknown PHP user are kept` : ''}; run apply (or let the read-through handler take them over) and purge again, or --allow-partial to delete only the proven ones`,
    );
  } else if (r.dryRun) {
    print(`  would delete ${total(r.deletable)} ${unit}(s) (${formatBytes(r.deletableBytes)})`);
  } else {
    print(
      `  deleted     ${r.deleted} ${unit}(s) (${formatBytes(r.deletedBytes)})${r.changed > 0 ? `; ${r.changed} changed since the check and were kept: run purge again` : ''}`,
    );
    if (r.lost > 0)
      print(
        `  KEPT        ${r.lost} session(s) proven at the check were no longer in Redis right before their delete (listed NOT PROVEN above; a Redis restart without persistence, a flush, an eviction or a failover): find out why, run apply again, then purge`,
      );
  }
  // Files of other users are no sessions of this application (the `kept` line): counted apart. With an
  // unknown PHP user (KEPT) they may be PHP's sessions: counted as sessions.
  const others = ownerUnknown === 0 ? (r.remaining.otherUsers ?? { files: 0, bytes: 0 }) : { files: 0, bytes: 0 };
  const sessions = { files: r.remaining.files - others.files, bytes: r.remaining.bytes - others.bytes };
  print(
    `  remaining   ${sessions.files} plaintext session ${several ? 'file(s) and key(s)' : r.sourceKind === 'redis' ? 'key(s)' : 'file(s)'}, ${formatBytes(sessions.bytes)}${r.dryRun ? ' would remain' : ''}${others.files > 0 ? `; ${others.files} file(s) of other users left alone (${formatBytes(others.bytes)})` : ''}`,
  );
}

/** Why a session is not proven in Redis; `copy` names the source's copy (`the file`, `the source key`). */
function describeBlocker(reason: string, copy: string): string {
  switch (reason) {
    case 'missing':
      return 'not in Redis';
    case 'older':
      return `Redis holds other bytes, not provably newer than ${copy}`;
    case 'no-ttl':
      return 'the Redis key has no TTL';
    case 'wrong-type':
      return 'the Redis key is not a string';
    case 'unreadable-file':
      return `${copy} could not be read (unreadable, oversized or changing)`;
    default:
      return `the Redis value does not open (${reason})`;
  }
}

/**
 * `session-migrate rollback`: the way back. The work is the rollback use case
 * (packages/migrate/src/use-cases/rollback.ts); this module parses, calls, prints. Exit 0 when done,
 * 1 when some session failed, none of the sessions in Redis had a listed ID while a stale file was
 * removed (else exit 2, one line: use-cases/rollback.ts checkSomeIdListed), or a failure stopped it
 * after it wrote or removed a file or deleted a key (one line, `rollback NOT DONE: N ...`: packages/migrate/src/rollback.ts rollbackStopped), 2 for
 * usage, input or connection errors before anything changed, and for --remove-keys when no value
 * under the prefix opens with the key given (one line naming the key IDs: checkSomeKeyOpened).
 */
import { printable } from '@session-migrate/common';
import type { RollbackOptions, RollbackReport, RollbackToFilesReport } from '@session-migrate/migrate';
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { sourcesTable } from '../output.ts';
import { tlsFilesFromArgs, tlsOptions, warn } from '../redis-options.ts';
import {
  JSON_REPORT_OPTION,
  masterWaitOption,
  planTargetOptions,
  given,
  defineCommand,
  jsonWhenStopped,
  type CommandFactory,
  type Print,
} from './context.ts';

/** rollback's arguments: the use case's options (no callbacks), and `--json`. */
export interface RollbackArgs extends Omit<RollbackOptions, 'onNotice' | 'onWarning'> {
  json: boolean;
}

/** What rollback says on SIGINT (Ctrl-C), SIGTERM or SIGHUP, before exit 130, 143 or 129 (main.ts whileSaying). */
const INTERRUPTED = 'each file written or key removed so far is complete; run rollback again to finish';
export const rollbackModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'rollback',
    describe:
      'the way back: write the Redis sessions back as plaintext files (--to, or --to-sources for every source of the plan), or remove the migrated keys (--remove-keys)',
    builder: (y) =>
      planTargetOptions(
        tlsOptions(keyProviderOptions(y), 'target').option('plan', {
          type: 'string',
          describe: 'take target, key file, prefix and gc_maxlifetime from this plan',
        }),
      )
        .option('to', {
          type: 'string',
          describe: "files:SAVE_PATH to write the sessions back to (e.g. 'files:2;0600;/var/lib/php/sessions')",
        })
        .option('ids-from', {
          type: 'string',
          describe: 'with --to: files:DIR whose sess_<id> names give the session IDs to restore (default: the --to directory)',
        })
        .option('to-sources', {
          type: 'boolean',
          default: false,
          describe:
            'with --plan: write the sessions back to every files: source of the plan, each to its own save_path with the IDs it lists',
        })
        .option('remove-keys', {
          type: 'boolean',
          default: false,
          describe: 'delete the migrated keys instead (users with sessions only in Redis are logged out)',
        })
        .option('dry-run', { type: 'boolean', default: false, describe: 'count and show, change nothing' })
        .option('master-wait-ms', masterWaitOption('rollback'))
        .option('json', JSON_REPORT_OPTION),
    handler: (a) =>
      run(
        () =>
          rollbackCommand(
            {
              ...given('key', keyProviderFromArgs(a, false)),
              ...given('plan', a.plan as string | undefined),
              ...given('target', a.target as string | undefined),
              ...given('prefix', a.prefix as string | undefined),
              ...given('gcMaxlifetime', a['gc-maxlifetime'] as number | undefined),
              ...given('to', a.to as string | undefined),
              ...given('idsFrom', a['ids-from'] as string | undefined),
              ...given('masterWaitMs', a['master-wait-ms'] as number | undefined),
              removeKeys: a['remove-keys'],
              toSources: a['to-sources'],
              dryRun: a['dry-run'],
              json: a.json,
              tls: tlsFilesFromArgs(a, 'target'),
            },
            print,
          ),
        INTERRUPTED,
      )(),
  });

/**
 * Runs the rollback use case; what it means is printed before it acts (on stdout, or on stderr with
 * --json), then the report.
 * @returns 0 when done, 1 when the report's `ok` is false (a session failed or was held by PHP, or no
 *   listed ID with a stale file removed). @throws UserFacingError from rollback (exit 2 after purge: no listed ID).
 */
export async function rollbackCommand(args: RollbackArgs, print: Print): Promise<number> {
  const { rollback } = await import('@session-migrate/migrate');
  const { json, ...options } = args;
  const r = await jsonWhenStopped(json, print, () =>
    rollback({
      ...options,
      onWarning: warn,
      onNotice: (w) => (json ? process.stderr.write(`session-migrate: ${w}\n`) : print(w)),
    }),
  );
  if (json)
    print(
      JSON.stringify(
        // `ok` (the exit 0 verdict) in every document, as a stopped run's has `ok: false` (StoppedRunReport).
        r.mode === 'to-sources'
          ? { ok: r.ok, ...r.report, targets: r.report.targets.map((t, k) => ({ source: r.labels[k]!, ...t })) }
          : { ok: r.ok, ...r.report },
        null,
        2,
      ),
    );
  else printRollback(r, args.dryRun, print);
  return r.ok ? 0 : 1;
}

function printRollback(r: RollbackReport, dryRun: boolean, print: Print): void {
  if (r.mode === 'remove-keys') {
    const k = r.report;
    print(`session-migrate rollback --remove-keys${dryRun ? ' (dry run: nothing deleted)' : ''}`);
    print(
      `  keys        ${dryRun ? 'would remove' : 'removed'} ${k.removed} envelope(s) under "${printable(r.prefix)}"; left ${k.leftNotOpening} that do not open with the key, ${k.leftChanged} rewritten meanwhile${k.goneMeanwhile > 0 ? `; ${k.goneMeanwhile} gone meanwhile (expired or deleted)` : ''}; ${k.tombstones} tombstone(s) left to expire`,
    );
    return;
  }
  if (r.mode === 'to') {
    const c = r.report.counts;
    print(`session-migrate rollback --to ${printable(r.to)}${dryRun ? ' (dry run: nothing written)' : ''}`);
    print(
      `  files       ${dryRun ? 'would write' : 'wrote'} ${c.written}, unchanged ${c.unchanged}, newer file kept ${c['newer-file-kept']}, held by PHP ${c['held-by-php']}, not in Redis ${c['not-in-redis']}, destroyed (stale file ${dryRun ? 'would be ' : ''}removed) ${c['destroyed-file-removed']}, failed ${c.failed}`,
    );
    print(
      `  mode        ${r.layout.mode.toString(8).padStart(4, '0')}, depth ${r.layout.depth}, mtime = now + remaining TTL - gc_maxlifetime (${r.gcMaxlifetime} s)`,
    );
    print(
      `  redis       ${r.report.keysInRedis} session key(s) under "${printable(r.prefix)}"; ${r.report.keysWithoutKnownId} with no listed session ID (not written back)`,
    );
    printNotWritten(r.report.keysWithoutKnownId, print);
    printHeld(c['held-by-php'], print);
    for (const f of r.report.failures) print(`  FAILED      ${printable(f.key)} (${printable(f.file)}): ${printable(f.reason)}`);
    return;
  }
  const m = r.report;
  print(
    `session-migrate rollback --to-sources${dryRun ? ' (dry run: nothing written)' : ''}: ${r.labels.length} files source(s) of the plan`,
  );
  const row = (label: string, c: RollbackToFilesReport['counts']): { label: string; values: number[] } => ({
    label,
    values: [c.written, c.unchanged, c['newer-file-kept'], c['held-by-php'], c['not-in-redis'], c['destroyed-file-removed'], c.failed],
  });
  const sum = (k: keyof RollbackToFilesReport['counts']): number => m.targets.reduce((a, t) => a + t.counts[k], 0);
  for (const line of sourcesTable(
    [dryRun ? 'would write' : 'wrote', 'unchanged', 'newer kept', 'held by PHP', 'not in Redis', 'destroyed', 'failed'],
    [
      ...m.targets.map((t, k) => row(r.labels[k]!, t.counts)),
      {
        label: 'total',
        values: [
          sum('written'),
          sum('unchanged'),
          sum('newer-file-kept'),
          sum('held-by-php'),
          sum('not-in-redis'),
          sum('destroyed-file-removed'),
          sum('failed'),
        ],
      },
    ],
  ))
    print(line);
  print(
    `  redis       ${m.keysInRedis} session key(s) under "${printable(r.prefix)}"; ${m.keysWithoutKnownId} with no session ID listed by any source (not written back)`,
  );
  printNotWritten(m.keysWithoutKnownId, print);
  printHeld(sum('held-by-php'), print);
  for (const t of m.targets)
    for (const f of t.failures) print(`  FAILED      ${printable(f.key)} (${printable(f.file)}): ${printable(f.reason)}`);
}

/**
 * The line for sessions in Redis whose ID no listing named (keysWithoutKnownId): not written back,
 * so PHP on files logs those users out; expected for sessions created since the cutover, while for
 * sessions whose files purge deleted the IDs must come from a listing kept from before (docs/rollback.md).
 */
function printNotWritten(n: number, print: Print): void {
  if (n > 0)
    print(
      `  NOT WRITTEN ${n} session(s) in Redis with no listed session ID: PHP on files logs those users out (expected for sessions created since the cutover; for sessions whose files purge deleted, give their IDs: --to files:SAVE_PATH --ids-from files:LISTING, a copy of the sess_<id> names from before purge)`,
    );
}

/** The line for files a PHP request held (rollback ran after PHP was switched back to files). */
function printHeld(held: number, print: Print): void {
  if (held > 0)
    print(
      `  HELD        ${held} file(s) locked by PHP requests: PHP already serves those sessions from the files, so their Redis copies were not written back (run rollback before switching PHP back)`,
    );
}

/**
 * `session-migrate verify`: check the target (and the sources). The work is the verifyMigration use
 * case (packages/verify/src/use-case.ts); this module parses, calls, prints.
 */
import type { Argv } from 'yargs';
import { printable } from '@session-migrate/common';
import type { VerifyFailure, VerifyMigrationOptions, VerifyMigrationReport, VerifyReport } from '@session-migrate/verify';
import type { SerializeHandler } from '@session-migrate/php-session';
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { formatBytes, formatCounts, namedExamples, sourcesTable, unknownKeyIdLine } from '../output.ts';
import { allTlsOptions, tlsFilesFromArgs, warn } from '../redis-options.ts';
import {
  GC_MAXLIFETIME_OVERRIDE_OPTION,
  HANDLERS,
  JSON_REPORT_OPTION,
  masterWaitOption,
  PHP_USER_GIVEN_NOW_OPTION,
  PREFIX_OVERRIDE_OPTION,
  TARGET_OPTION,
  given,
  defineCommand,
  type CommandFactory,
  type OptionArgs,
  type Print,
} from './context.ts';

/** verify's arguments: the use case's options (no callbacks), and `--json`. */
export interface VerifyArgs extends Omit<VerifyMigrationOptions, 'onWarning'> {
  json: boolean;
}

/**
 * verify's options, in --help's order: the key provider, both roles' TLS files, then verify's own;
 * those that default to the plan's have no default here (the use case resolves them).
 */
function verifyOptions(y: Argv) {
  return allTlsOptions(keyProviderOptions(y))
    .option('plan', { type: 'string', describe: 'take target, key file, prefix, gc_maxlifetime and serialize_handler from this plan' })
    .option('target', TARGET_OPTION)
    .option('require-key-id', { type: 'string', describe: 'fail when any value is sealed under another key ID (after rotate)' })
    .option('prefix', PREFIX_OVERRIDE_OPTION)
    .option('gc-maxlifetime', GC_MAXLIFETIME_OVERRIDE_OPTION)
    .option('serialize-handler', { type: 'string', choices: HANDLERS, describe: 'session.serialize_handler (default php)' })
    .option('source', {
      type: 'string',
      array: true,
      describe:
        'files:DIR or redis:URL (repeatable): also check every live session of each is in Redis, byte for byte (default with --plan: the presence of every source of the plan); a redis: source also fails while plaintext keys remain under its prefix',
    })
    .option('php-user', PHP_USER_GIVEN_NOW_OPTION)
    .option('plaintext-prefix', {
      type: 'string',
      describe: 'fail while keys remain under this prefix on the target server (plaintext phpredis sessions, e.g. PHPREDIS_SESSION:)',
    })
    .option('prefix-only', {
      type: 'boolean',
      default: false,
      describe:
        'classify only the keys under the prefix (a database shared with other applications); default: every key of the database, so a plaintext session anywhere fails',
    })
    .option('master-wait-ms', masterWaitOption('verify'))
    .option('presence', {
      type: 'boolean',
      default: true,
      describe:
        "with --plan and no --source: every live session of the plan's source must be in Redis, or destroyed through the handler (its tombstone); --no-presence reads no session file, so a files source whose plan knows no PHP user is reported as not checked for files of another owner",
    })
    .option('json', JSON_REPORT_OPTION);
}

/**
 * verify's arguments from its parsed options; an option not given stays absent (the plan's value, or
 * the use case's default).
 * @throws UserFacingError for a TLS file option given twice or a key option given wrong
 */
function verifyArgsFromOptions(a: OptionArgs<typeof verifyOptions>): VerifyArgs {
  return {
    presence: a.presence,
    prefixOnly: a['prefix-only'],
    tls: tlsFilesFromArgs(a, 'target'),
    sourceTls: tlsFilesFromArgs(a, 'source'),
    ...given('plan', a.plan as string | undefined),
    ...given('target', a.target as string | undefined),
    ...given('key', keyProviderFromArgs(a, false)),
    ...given('requireKeyId', a['require-key-id'] as string | undefined),
    ...given('prefix', a.prefix as string | undefined),
    ...given('gcMaxlifetime', a['gc-maxlifetime'] as number | undefined),
    ...given('serializeHandler', a['serialize-handler'] as SerializeHandler | undefined),
    ...given('source', a.source as string[] | undefined),
    ...given('phpUsers', a['php-user'] as string[] | undefined),
    ...given('plaintextPrefix', a['plaintext-prefix'] as string | undefined),
    ...given('masterWaitMs', a['master-wait-ms'] as number | undefined),
    json: a.json,
  };
}

export const verifyModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'verify',
    describe:
      'check no plaintext session is left anywhere in the database and every value under the prefix (on every master) is an authentic envelope with a TTL',
    builder: verifyOptions,
    handler: (a) => run(() => verifyCommand(verifyArgsFromOptions(a), print))(),
  });

/**
 * Runs verifyMigration; prints its warnings on stderr and the report (or JSON) on stdout.
 * @returns 0 when every check holds, 1 otherwise. @throws UserFacingError from verifyMigration.
 */
export async function verifyCommand(args: VerifyArgs, print: Print): Promise<number> {
  const { verifyMigration } = await import('@session-migrate/verify');
  const { json, ...options } = args;
  const v = await verifyMigration({ ...options, onWarning: warn });
  if (json) print(JSON.stringify(v.report, null, 2));
  else printVerifyReport(v, print);
  return v.report.ok ? 0 : 1;
}

function printVerifyReport(v: VerifyMigrationReport, print: Print): void {
  const report = v.report;
  print(`session-migrate verify: ${report.ok ? 'OK' : 'FAILED'}`);
  const nodes = report.nodes ?? [];
  print(
    `  target      ${report.topology === 'cluster' ? `Redis Cluster: every master scanned (${nodes.length}: ${nodes.join(', ')})` : report.topology === 'sentinel' ? `Sentinel master now at ${nodes.join(', ')}` : nodes.join(', ')}`,
  );
  print(
    `  scanned     ${report.keysTotal ?? report.keysScanned} key(s): ${report.scope === 'prefix' ? `only those under the prefix (--prefix-only)` : 'every key of the database'}`,
  );
  print(
    `  keys        ${report.keysScanned} under prefix "${printable(v.prefix)}", ${report.keysValid} valid; by key ID: ${formatCounts(report.keyIds)}`,
  );
  // OK over nothing: a wrong database number or prefix passes too (with --plan it fails: no-keys).
  if (report.keysScanned === 0 && report.presence === undefined && report.failures.length === 0)
    print(
      `  NOTE        no key under the prefix: nothing was verified; if sessions were migrated, check the target URL's database number and the prefix (verify --plan fails here)`,
    );
  if (report.classes !== undefined) print(`  classes     ${formatCounts(report.classes)}`);
  if ((report.classes?.other ?? 0) > 0) {
    print(
      `  other       ${report.classes!.other} key(s) of other applications, not sessions (${formatCounts(report.otherTypes ?? {})}${(report.largeValues ?? 0) > 0 ? `; ${report.largeValues} string(s) larger than ${formatBytes(v.maxValueBytes)} not read` : ''}): not a failure`,
    );
  }
  if ((report.classes?.['plaintext-session'] ?? 0) > 0) {
    print(
      `  PLAINTEXT   ${report.classes!['plaintext-session']} plaintext session(s) that PHP would load (${formatCounts(report.plaintextFormats ?? {})}): each fails until deleted (purge them, or DEL them once no application uses them)`,
    );
  }
  if ((report.classes?.['empty-session'] ?? 0) > 0)
    print(`  NOTE        ${report.classes!['empty-session']} empty phpredis session key(s) (no data; they expire with their TTL)`);
  if ((report.classes?.lock ?? 0) + (report.classes?.['stale-lock'] ?? 0) > 0)
    print(
      `  locks       ${report.classes!.lock} phpredis session lock(s) with a TTL, ${report.classes!['stale-lock']} without one (stale-lock: see the warning)`,
    );
  printVerifySources(v, print);
  if ((report.tombstones ?? 0) > 0) print(`  tombstones  ${report.tombstones} destroyed session(s) (tombstones, valid)`);
  if (report.source?.destroyed !== undefined && report.source.destroyed > 0)
    print(
      `  destroyed   ${report.source.destroyed} source session(s) were logged out through the handler since (tombstone): not expected in Redis`,
    );
  for (const p of report.plaintextSources ?? (report.plaintext !== undefined ? [report.plaintext] : [])) {
    print(
      `  plaintext   ${p.remaining} plaintext session key(s) left under "${printable(p.prefix)}" at ${p.url}${p.remaining > 0 ? ' (FAIL until purged)' : ''}${p.otherKeys > 0 ? `; ${p.otherKeys} other key(s) there are not sessions (ignored)` : ''}`,
    );
  }
  if ((report.ownerUnknown ?? 0) > 0)
    print(
      `  NOT TAKEN   ${report.ownerUnknown} session file(s) owned by another user than root while the plan knows no user PHP runs as (it saw no session file): maybe PHP's sessions, not copied; run plan again with --php-user NAME, then apply`,
    );
  for (const label of report.ownerUnknownNotChecked ?? [])
    print(
      `  NOT CHECKED ${label}: the plan knows no user PHP runs as there (it saw no session file), and --no-presence reads no session file: files of another owner than root (maybe PHP's sessions, not copied) were not looked for; run verify without --no-presence to check`,
    );
  if (!report.ok) print(`  failures    ${formatCounts(report.failureCounts)}`);
  for (const line of failLines(report)) print(line);
}

/** Reasons said on one summary line each (packages/verify SUMMARIZED_REASONS), never one line per key. */
const SUMMARIZED = new Set(['plaintext-remains', 'unknown-key-id']);

/**
 * verify's FAIL lines. Plaintext session keys left under a Redis source's prefix (`plaintext-remains`)
 * are the expected state after apply until purge deletes them (docs/runbook.md, phase 4): verify
 * fails (exit 1, as docs/operator-guide.md says), and says so on one line, with their count, the
 * first few keys (ID shortened) and the next step, instead of one line per key (1,000 of them, for a
 * Redis source checked right after apply). Values sealed under a key ID the key given does not hold
 * (`unknown-key-id`: every value, after `keys ring rotate` and `rotate` while the plan still names the
 * old key file) get one line too: their count, the key IDs found and the key IDs given (public
 * identifiers: docs/keys.md), a few keys, and the next step (pass the key ring: --key-ring). Every
 * other failure gets one line each, as the report lists them (at most VerifyOptions.maxListed, 1,000
 * by default; the report lists only a few of the summarized reasons apart from those:
 * VerifyReport.failures), then, when it counted more, how many are not listed (the `failures` counts
 * line has them all). Files of an unknown owner are never listed one by one (their NOT TAKEN line
 * counts them), so they are not "more".
 */
export function failLines(report: Pick<VerifyReport, 'failures' | 'failureCounts' | 'unknownKeyIds' | 'keyRingIds'>): string[] {
  const lines: string[] = [];
  const plaintext = report.failureCounts['plaintext-remains'] ?? 0;
  const unknownKeys = report.failureCounts['unknown-key-id'] ?? 0;
  const others = Object.entries(report.failureCounts).reduce(
    (a, [reason, n]) => a + (reason === 'owner-unknown' || SUMMARIZED.has(reason) ? 0 : n),
    0,
  );
  /** The keys listed of `reason`: the examples of its summary line. */
  const keysOf = (reason: string): string[] => report.failures.filter((f) => f.reason === reason).map((f) => f.key);
  const named = (reason: string, count: number): string => namedExamples(keysOf(reason), count);
  if (unknownKeys > 0)
    lines.push(
      unknownKeyIdLine({
        count: unknownKeys,
        unknownKeyIds: report.unknownKeyIds,
        keyRingIds: report.keyRingIds,
        keys: keysOf('unknown-key-id'),
        next: "if keys ring rotate (then rotate) made that key current, pass the key ring that holds it: --key-ring FILE (it overrides the plan's key)",
      }),
    );
  if (plaintext > 0) {
    const next =
      others + unknownKeys > 0 || (report.failureCounts['owner-unknown'] ?? 0) > 0
        ? 'fix the other failures first (purge deletes nothing while a session is not proven in Redis), then run session-migrate purge and verify again'
        : 'every other check passed: run session-migrate purge (it deletes each key proven in Redis), then verify again';
    lines.push(
      `  FAIL        plaintext-remains: ${plaintext} plaintext session key(s) left${named('plaintext-remains', plaintext)}: expected after apply, until purge deletes them; ${next}`,
    );
  }
  const listed = report.failures.filter((f) => !SUMMARIZED.has(f.reason));
  for (const f of listed) lines.push(`  FAIL        ${failureText(f)}`);
  const more = others - listed.length;
  if (more > 0) lines.push(`  FAIL        ... and ${more} more, not listed (counted in 'failures')`);
  return lines;
}

/**
 * One failure: the key (and file) and why. A session larger than the plan's --max-session-bytes is
 * said so, with the file and both sizes in bytes, as apply's FAIL line says it (commands/apply.ts).
 */
function failureText(f: VerifyFailure): string {
  const file = f.file !== undefined ? ` (${printable(f.file)})` : '';
  if (f.oversized !== undefined) {
    return `${printable(f.file ?? f.key)}: ${f.oversized.bytes} bytes, larger than the plan's limit (${f.oversized.maxBytes} bytes): not copied, its user would be logged out; run plan again with a larger --max-session-bytes, then apply`;
  }
  if (f.reason === 'no-keys')
    return `${printable(f.key)}: no-keys (the plan found live sessions, but the target holds no key at all: check the target URL, its database number and the prefix, or run apply)`;
  return `${printable(f.key)}${file}: ${f.reason}`;
}

/** Presence (with a plan), the per-source table (several sources), the byte-for-byte comparison (a source given). */
function printVerifySources(v: VerifyMigrationReport, print: Print): void {
  const report = v.report;
  const pr = report.presence;
  const several = report.sources !== undefined;
  if (pr !== undefined) {
    print(
      `  presence    ${pr.checked} live session(s) of the plan's ${several ? `${report.sources!.length} sources` : 'source'} checked: ${pr.present} present, ${pr.destroyed} logged out (tombstone), ${pr.missing} missing${pr.missing > 0 ? ' (run apply again)' : ''}${(pr.superseded ?? 0) > 0 ? `, ${pr.superseded} superseded (another source's copy is the one in Redis)` : ''}`,
    );
  }
  if (several) {
    const rows = report.sources!.map((e) => ({
      label: e.source,
      values:
        e.presence !== undefined
          ? [
              e.presence.checked,
              e.presence.present + e.presence.destroyed,
              e.presence.missing,
              e.presence.expired + e.presence.empty + e.presence.corrupt,
              e.presence.superseded ?? 0,
            ]
          : [
              e.compare!.checked,
              e.compare!.matching + (e.compare!.newer ?? 0) + (e.compare!.destroyed ?? 0),
              e.compare!.checked - e.compare!.matching - (e.compare!.newer ?? 0) - (e.compare!.destroyed ?? 0),
              e.compare!.expired + e.compare!.empty + e.compare!.corrupt,
              e.compare!.superseded ?? 0,
            ],
    }));
    for (const line of sourcesTable(
      ['checked', pr !== undefined ? 'present' : 'in Redis', pr !== undefined ? 'missing' : 'failing', 'not live', 'superseded'],
      rows,
    ))
      print(line);
    const d = report.duplicates;
    if (d !== undefined && d.ids > 0)
      print(
        `  duplicates  ${d.ids} session ID(s) in more than one source: checked in the source whose copy was written last (${d.ties} written within 1 s: the source given first)`,
      );
  }
  const src = report.source;
  if (src !== undefined) {
    print(
      `  source      ${src.checked} live session(s) checked, ${src.matching} identical in Redis${(src.newer ?? 0) > 0 ? `, ${src.newer} newer in Redis (updated through the handler)` : ''}`,
    );
    if (src.expired + src.corrupt > 0) {
      print(
        `  NOTE        not checked: ${src.expired} past gc_maxlifetime (${v.gcMaxlifetime} s), ${src.empty} empty, ${src.corrupt} not loadable as ${v.serializeHandler}; if these were migrated, --gc-maxlifetime or --serialize-handler differ from the plan (use --plan)`,
      );
    }
  }
}

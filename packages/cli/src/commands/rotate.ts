/**
 * `session-migrate rotate`: re-encrypt every session under the key ring's current key, online. The
 * work is the rotate use case (packages/migrate/src/use-cases/rotate.ts); this module parses, calls,
 * prints: progress on stderr, a summary (or `--json`) on stdout; exit 1 when any value could not be
 * rotated, or a failure stopped it after it re-encrypted any (one line, `rotate NOT DONE: N ...`, with
 * --json its document on stdout: jsonWhenStopped;
 * packages/migrate/src/rotate.ts rotateStopped); 2 for bad input, or a failure before any rewrite.
 */
import { printable } from '@session-migrate/common';
import type { RotateReport, RotateUseCaseOptions, RotateUseCaseReport } from '@session-migrate/migrate';
import { DEFAULT_PREFIX } from '../defaults.ts';
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { changedProgressLines, formatCounts, namedExamples, unknownKeyIdLine } from '../output.ts';
import { tlsFilesFromArgs, tlsOptions, warn } from '../redis-options.ts';
import {
  JSON_REPORT_OPTION,
  jsonWhenStopped,
  masterWaitOption,
  TARGET_OPTION,
  defineCommand,
  given,
  type CommandFactory,
  type Print,
} from './context.ts';

/** rotate's arguments: the use case's options (no callbacks), and `--json`. */
export interface RotateArgs extends Omit<RotateUseCaseOptions, 'onProgress' | 'onWarning'> {
  json: boolean;
}

/** What rotate says on SIGINT (Ctrl-C), SIGTERM or SIGHUP, before exit 130, 143 or 129 (main.ts whileSaying). */
const INTERRUPTED = 'every value is under the old key or the new one, each valid; run rotate again to finish';
export const rotateModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'rotate',
    describe: "online: re-encrypt every session under the key ring's current key (compare-and-set, TTLs kept)",
    builder: (y) =>
      tlsOptions(keyProviderOptions(y), 'target')
        .option('plan', { type: 'string', describe: 'take target (with its TLS files and user), key and prefix from this plan' })
        .option('target', TARGET_OPTION)
        .option('prefix', { type: 'string', describe: `Redis key prefix (default: the plan's, else ${DEFAULT_PREFIX})` })
        .option('scan-count', { type: 'number', default: 500, describe: 'SCAN COUNT hint and batch size' })
        .option('master-wait-ms', masterWaitOption('rotate'))
        .option('json', JSON_REPORT_OPTION),
    handler: (a) =>
      run(
        () =>
          rotateCommand(
            {
              ...given('plan', a.plan as string | undefined),
              ...given('target', a.target as string | undefined),
              ...given('key', keyProviderFromArgs(a, false)),
              ...given('prefix', a.prefix as string | undefined),
              ...given('masterWaitMs', a['master-wait-ms'] as number | undefined),
              json: a.json,
              scanCount: a['scan-count'],
              tls: tlsFilesFromArgs(a, 'target'),
            },
            print,
          ),
        INTERRUPTED,
      )(),
  });

/**
 * Runs the rotate use case with a progress line on stderr, then prints its report.
 * @returns 0 when every session is under the current key. @throws UserFacingError from rotate.
 */
export async function rotateCommand(args: RotateArgs, print: Print): Promise<number> {
  const { rotate } = await import('@session-migrate/migrate');
  const { json, ...options } = args;
  const tty = process.stderr.isTTY === true;
  const shouldWrite = changedProgressLines(2000);
  let r: RotateUseCaseReport;
  try {
    r = await jsonWhenStopped(json, print, () =>
      rotate({
        ...options,
        onWarning: warn,
        onProgress: (c) => {
          const line = `rotate: ${c.sessionKeys} session keys scanned, ${c.reEncrypted} re-encrypted, ${c.alreadyCurrent} already current, ${c.changedByPhp} changed by PHP`;
          if (tty) process.stderr.write(`\r${line}`);
          else if (shouldWrite(line)) process.stderr.write(`${line}\n`);
        },
      }),
    );
  } finally {
    if (tty) process.stderr.write('\r\x1b[K');
  }
  const { report, lookupId } = r;
  const c = report.counts;
  const notDone = c.notOpened + c.wrongType + c.remainingOld + c.failed;
  process.stderr.write(
    report.ok
      ? `rotate: done: ${c.sessionKeys} session keys, ${c.reEncrypted} re-encrypted\n`
      : `rotate: INCOMPLETE: ${c.sessionKeys} session keys, ${c.reEncrypted} re-encrypted, ${notDone} not re-encrypted${report.connectionLost ? ', connection lost' : ''} (see the report)\n`,
  );
  if (json) {
    print(JSON.stringify({ ...report, lookupId }, null, 2));
  } else {
    print(`session-migrate rotate: ${report.ok ? 'OK' : 'INCOMPLETE'}`);
    print(
      `  keys        ${c.scanned} under prefix "${printable(r.prefix)}": ${c.sessionKeys} sessions, ${c.otherKeys} other keys (left alone, not read: verify checks them)`,
    );
    print(`  current     key ID ${report.currentKeyId} (lookup ID ${lookupId})`);
    print(
      `  before      by key ID: ${formatCounts(c.keyIdsBefore)}${report.unknownKeyIds !== undefined ? `; not in the ring: ${formatCounts(report.unknownKeyIds)}` : ''}`,
    );
    print(
      `  result      re-encrypted ${c.reEncrypted}, already current ${c.alreadyCurrent}, rewritten by PHP meanwhile ${c.changedByPhp} (kept), expired or deleted meanwhile ${c.gone}`,
    );
    if (c.notOpened > 0)
      print(`  NOT OPENED  ${c.notOpened} value(s) open with no key of the ring (${formatCounts(c.notOpenedByReason)}); left untouched`);
    if (c.wrongType > 0) print(`  WRONG TYPE  ${c.wrongType} key(s) are not strings; left untouched`);
    if (c.remainingOld > 0)
      print(
        `  REMAINING   ${c.remainingOld} session(s) PHP kept rewriting under an old key: is every PHP host on the new ring? run rotate again`,
      );
    if (c.failed > 0) print(`  FAILED      ${c.failed} Redis error(s)`);
    if (report.connectionLost)
      print(
        '  INTERRUPTED the connection to Redis closed during the run (a restart, a failover or a reconnect): SCAN may have skipped keys; run rotate again',
      );
    for (const line of rotateFailLines(report)) print(line);
    if (report.ok)
      print(
        `  next        session-migrate verify --target ${r.targetUrl} ... --require-key-id ${report.currentKeyId}, then keys ring retire the old key`,
      );
  }
  return report.ok ? 0 : 1;
}

/**
 * Reasons said on one summary line each (packages/migrate ROTATE_SUMMARIZED_REASONS; a type-only import
 * keeps @session-migrate/migrate loaded lazily), never one line per key.
 */
const SUMMARIZED = new Set<string>(['unknown-key-id', 'not-envelope']);

/**
 * rotate's FAIL lines. Values the ring cannot open come by the thousand (every value, for a ring
 * without their key: after `keys ring retire` of a key values are still under, or an unrelated key),
 * so each reason of SUMMARIZED gets one line: `unknown-key-id` with the key IDs found
 * in the values' headers and the ring's (unknownKeyIdLine, verify's line), `not-envelope` with its
 * count; both with a few keys and the next step. Every other problem gets one line each, as the
 * report lists them (at most RotateOptions.maxListed, 1,000 by default), then how many more were
 * counted, not listed.
 */
export function rotateFailLines(report: Pick<RotateReport, 'problems' | 'counts' | 'unknownKeyIds' | 'keyRingIds'>): string[] {
  const lines: string[] = [];
  const c = report.counts;
  const keysOf = (reason: string): string[] => report.problems.filter((p) => p.reason === reason).map((p) => p.key);
  const unknown = c.notOpenedByReason['unknown-key-id'] ?? 0;
  if (unknown > 0)
    lines.push(
      unknownKeyIdLine({
        count: unknown,
        unknownKeyIds: report.unknownKeyIds,
        keyRingIds: report.keyRingIds,
        keys: keysOf('unknown-key-id'),
        next: 'left untouched; pass the key ring that holds it: --key-ring FILE (a ring from before keys ring retire dropped that key, or the ring PHP seals with), then run rotate again',
      }),
    );
  const notEnvelope = c.notOpenedByReason['not-envelope'] ?? 0;
  if (notEnvelope > 0)
    lines.push(
      `  FAIL        not-envelope: ${notEnvelope} value(s) are no envelope of session-migrate${namedExamples(keysOf('not-envelope'), notEnvelope)}: left untouched; is --prefix the encrypted sessions' prefix? verify --target ... names what they are`,
    );
  const listed = report.problems.filter((p) => !SUMMARIZED.has(p.reason));
  for (const p of listed) lines.push(`  FAIL        ${printable(p.key)}: ${p.reason}`);
  const others = c.notOpened - unknown - notEnvelope + c.wrongType + c.remainingOld + c.failed;
  if (others > listed.length) lines.push(`  FAIL        ... and ${others - listed.length} more, not listed (counted above)`);
  return lines;
}

/**
 * `rotate`: re-encrypt every session under the key ring's current key, online (packages/migrate
 * rotate.ts, docs/keys.md). Progress on stderr, a summary (or `--json`) on stdout; exit 1 when any
 * value could not be rotated.
 */
import { UserFacingError, printable } from '@session-migrate/common';
import type { KeyProvider } from '@session-migrate/envelope';
import { rotateTarget, type RotateReport } from '@session-migrate/migrate';
import { specFromUrl, type TlsFiles } from '@session-migrate/redis';
import { openTarget } from './redis-options.ts';
import { checkPrefix, redisFailureFor, type Print } from './commands.ts';
import { codecFromProvider } from './key-options.ts';
import { formatCounts } from './output.ts';

export interface RotateArgs {
  target: string;
  key: KeyProvider;
  prefix: string;
  json: boolean;
  scanCount?: number;
  /** TLS files of the target. */
  tls?: TlsFiles;
}

/** Runs a rotation and prints its report; returns 0 when every session is under the current key. */
export async function rotateCommand(args: RotateArgs, print: Print): Promise<number> {
  const prefix = checkPrefix(args.prefix);
  const scanCount = args.scanCount ?? 500;
  if (!Number.isInteger(scanCount) || scanCount < 1 || scanCount > 100_000) throw new UserFacingError('--scan-count must be a whole number from 1 to 100000');
  const spec = specFromUrl(args.target, args.tls ?? {}, 'target'); // bad URL or TLS options: exit 2 before anything is opened
  const { codec, ids } = await codecFromProvider(args.key);
  let report: RotateReport;
  try {
    const client = await openTarget({ url: args.target }, args.tls ?? {}, { command: 'rotate', prefix, write: true });
    const tty = process.stderr.isTTY === true;
    let lastLine = Date.now();
    try {
      report = await rotateTarget({
        client, codec, prefix, scanCount,
        onProgress: (c) => {
          const line = `rotate: ${c.sessionKeys} session keys scanned, ${c.reEncrypted} re-encrypted, ${c.alreadyCurrent} already current, ${c.changedByPhp} changed by PHP`;
          if (tty) process.stderr.write(`\r${line}`);
          else if (Date.now() - lastLine >= 2000) {
            process.stderr.write(`${line}\n`);
            lastLine = Date.now();
          }
        },
      });
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw redisFailureFor(err, client, 'rotate (values already rotated are complete and valid; run rotate again to continue)');
    } finally {
      if (tty) process.stderr.write('\r\x1b[K');
      client.close();
    }
  } finally {
    codec.wipe();
  }
  const c = report.counts;
  process.stderr.write(`rotate: done: ${c.sessionKeys} session keys, ${c.reEncrypted} re-encrypted\n`);
  if (args.json) {
    print(JSON.stringify({ ...report, lookupId: ids.lookupId }, null, 2));
  } else {
    print(`session-migrate rotate: ${report.ok ? 'OK' : 'INCOMPLETE'}`);
    print(`  keys        ${c.scanned} under prefix "${printable(prefix)}": ${c.sessionKeys} sessions, ${c.otherKeys} other keys (left alone)`);
    print(`  current     key ID ${report.currentKeyId} (lookup ID ${ids.lookupId})`);
    print(`  before      by key ID: ${formatCounts(c.keyIdsBefore)}`);
    print(`  result      re-encrypted ${c.reEncrypted}, already current ${c.alreadyCurrent}, rewritten by PHP meanwhile ${c.changedByPhp} (kept), expired or deleted meanwhile ${c.gone}`);
    if (c.notOpened > 0) print(`  NOT OPENED  ${c.notOpened} value(s) open with no key of the ring (${formatCounts(c.notOpenedByReason)}); left untouched`);
    if (c.wrongType > 0) print(`  WRONG TYPE  ${c.wrongType} key(s) are not strings; left untouched`);
    if (c.remainingOld > 0) print(`  REMAINING   ${c.remainingOld} session(s) PHP kept rewriting under an old key: is every PHP host on the new ring? run rotate again`);
    if (c.failed > 0) print(`  FAILED      ${c.failed} Redis error(s)`);
    for (const p of report.problems) print(`  FAIL        ${printable(p.key)}: ${p.reason}`);
    if (report.ok) print(`  next        session-migrate verify --target ${spec.address.url} ... --require-key-id ${report.currentKeyId}, then keys ring retire the old key`);
  }
  return report.ok ? 0 : 1;
}

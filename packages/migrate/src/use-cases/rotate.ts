/**
 * The rotate use case: re-encrypt every session under the key ring's current key, online
 * (compare-and-set, TTLs kept; ../rotate.ts, docs/keys.md). Prints nothing.
 */
import { UserFacingError, checkWholeNumber } from '@session-migrate/common';
import type { KeyProvider } from '@session-migrate/envelope';
import { urlWithUser, type TlsFiles } from '@session-migrate/redis';
import { rotateTarget, type RotateReport } from '../rotate.ts';
import {
  checkMasterWaitMs,
  checkTargetGivenNow,
  openTarget,
  targetFrom,
  redisFailure,
  resolvePlanDefaults,
  withCodecForPlan,
  withWarnings,
  type OnWarning,
} from './shared.ts';

/** Default SCAN COUNT hint and batch size of rotate. */
export const DEFAULT_ROTATE_SCAN_COUNT = 500;

export interface RotateUseCaseOptions {
  /** Path of a plan file: its recorded target (TLS files, user name included), key provider and prefix are the defaults. */
  plan?: string;
  /** Target URL (redis://, rediss://, redis+sentinel://...; a cluster is detected); replaces the plan's. */
  target?: string;
  /** The key ring: its current key seals, every key opens; replaces the plan's key provider. */
  key?: KeyProvider;
  /** Redis key prefix (default: the plan's, else DEFAULT_PREFIX). */
  prefix?: string;
  /** SCAN COUNT hint and batch size, 1 to 100000 (default 500). */
  scanCount?: number;
  tls?: TlsFiles;
  /**
   * How long to wait for a failover to finish, ms, 0 to 600000 (checkMasterWaitMs; default 30000,
   * DEFAULT_FAILOVER_WAIT_MS; 0 looks once): behind Sentinel, for the master the sentinels report
   * when the target is opened (openTarget); in a Redis Cluster (the target), for a replica to take
   * over the slots of a master lost mid-scan. None in time: one line, nothing rotated, exit 2 (run again).
   */
  masterWaitMs?: number;
  /** Counts so far, called after each batch. */
  onProgress?: (counts: RotateReport['counts']) => void;
  /** Warning lines as they arise (OnWarning): a password in the URL, the target connection's notes. Default: warnToProcess (`process.emitWarning(line, { type: 'SessionMigrateWarning' })`); pass a function to take them instead. */
  onWarning?: OnWarning;
}

export interface RotateUseCaseReport {
  report: RotateReport;
  /** The ring's lookup ID (safe to print). */
  lookupId: string;
  /** The key prefix rotated (given, else the plan's, else DEFAULT_PREFIX). */
  prefix: string;
  /** The target's URL with its ACL user name and without a password (for the next command to run). */
  targetUrl: string;
}

/**
 * Rotates every session under `prefix` to the current key. `report.ok` is false when any value could
 * not be rotated (the CLI's exit 1); re-running continues.
 * @throws UserFacingError for a bad option, URL, key, or a Redis failure (values already rotated are
 *   complete and valid; exitCode 1 with their count when there are any: rotateTarget).
 */
export async function rotate(given: RotateUseCaseOptions): Promise<RotateUseCaseReport> {
  const options = withWarnings(given);
  const r = resolvePlanDefaults(
    {
      ...(options.plan !== undefined ? { plan: options.plan } : {}),
      ...(options.target !== undefined ? { target: options.target } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    },
    { missing: 'rotate needs --target and a key ring (--key-ring, --key-file, --key-env or --key-command), or --plan (see --help)' },
  );
  const prefix = r.prefix;
  const scanCount = options.scanCount ?? DEFAULT_ROTATE_SCAN_COUNT;
  checkWholeNumber('scan-count', scanCount, 1, 100_000);
  checkMasterWaitMs(options.masterWaitMs); // bad input: exit 2 before anything is opened
  checkTargetGivenNow(r, options.tls); // bad URL or TLS options: exit 2 before anything is opened
  return withCodecForPlan(r, async ({ codec, ids }) => {
    const client = await openTarget(targetFrom(r, options.tls), {
      command: 'rotate',
      prefix,
      write: true,
      ...(options.masterWaitMs !== undefined ? { failoverWaitMs: options.masterWaitMs } : {}),
      ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
    });
    try {
      const report = await rotateTarget({
        client,
        codec,
        prefix,
        scanCount,
        ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
      });
      return {
        report,
        lookupId: ids.lookupId,
        prefix,
        targetUrl: r.fromPlan ? urlWithUser(r.plan!.target.url, r.plan!.target.username) : urlWithUser(r.target),
      };
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw redisFailure(err, client, 'rotate (values already rotated are complete and valid; run rotate again to continue)');
    } finally {
      client.close();
    }
  });
}

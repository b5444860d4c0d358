/**
 * The rotate use case: re-encrypt every session under the key ring's current key, online
 * (compare-and-set, TTLs kept; ../rotate.ts, docs/keys.md). Prints nothing.
 */
import { UserFacingError } from '@session-migrate/common';
import type { KeyProvider } from '@session-migrate/envelope';
import { specFromUrl, type TlsFiles } from '@session-migrate/redis';
import { rotateTarget, type RotateReport } from '../rotate.ts';
import { checkPrefix, codecFromProvider, openTarget, redisFailure, type OnWarning } from './shared.ts';

/** Default SCAN COUNT hint and batch size of rotate. */
export const DEFAULT_ROTATE_SCAN_COUNT = 500;

export interface RotateUseCaseOptions {
  /** Target URL (redis://, rediss://, redis+sentinel://...; a cluster is detected). */
  target: string;
  /** The key ring: its current key seals, every key opens. */
  key: KeyProvider;
  prefix: string;
  /** SCAN COUNT hint and batch size, 1 to 100000 (default 500). */
  scanCount?: number;
  tls?: TlsFiles;
  /** Counts so far, called after each batch. */
  onProgress?: (counts: RotateReport['counts']) => void;
  onWarning?: OnWarning;
}

export interface RotateUseCaseReport {
  report: RotateReport;
  /** The ring's lookup ID (safe to print). */
  lookupId: string;
  /** The target's URL without a password (for the next command to run). */
  targetUrl: string;
}

/**
 * Rotates every session under `prefix` to the current key. `report.ok` is false when any value could
 * not be rotated (the CLI's exit 1); re-running continues.
 * @throws UserFacingError for a bad option, URL, key, or a Redis failure (values already rotated are
 *   complete and valid).
 */
export async function rotate(options: RotateUseCaseOptions): Promise<RotateUseCaseReport> {
  const prefix = checkPrefix(options.prefix);
  const scanCount = options.scanCount ?? DEFAULT_ROTATE_SCAN_COUNT;
  if (!Number.isInteger(scanCount) || scanCount < 1 || scanCount > 100_000)
    throw new UserFacingError('--scan-count must be a whole number from 1 to 100000');
  const spec = specFromUrl(options.target, options.tls ?? {}, 'target'); // bad URL or TLS options: exit 2 before anything is opened
  const { codec, ids } = await codecFromProvider(options.key);
  try {
    const client = await openTarget({ url: options.target }, options.tls ?? {}, {
      command: 'rotate',
      prefix,
      write: true,
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
      return { report, lookupId: ids.lookupId, targetUrl: spec.address.url };
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw redisFailure(err, client, 'rotate (values already rotated are complete and valid; run rotate again to continue)');
    } finally {
      client.close();
    }
  } finally {
    codec.wipe();
  }
}

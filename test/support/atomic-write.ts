/**
 * Helpers of the tests of the one atomic write's call sites (packages/common/src/atomic-write.ts):
 * a fresh directory per test, the error code a call throws, and the temporary name writeFileAtomic
 * uses when `node:crypto`'s randomBytes is pinned to 0xab bytes (each test file pins it with its own
 * vi.mock, which vitest hoists per file).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

/** A new directory below the system temp dir for each test, removed after it; `cleanup` runs first. */
export function tempDirPerTest(prefix: string, cleanup?: () => void): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(() => {
    cleanup?.();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** What `fn` throws (undefined when it returns). */
export function errorOf(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** The `code` of what `fn` throws (ELOOP, EEXIST ...), undefined when it returns. */
export function errorCode(fn: () => void): string | undefined {
  return (errorOf(fn) as NodeJS.ErrnoException | undefined)?.code;
}

/** The temporary name writeFileAtomic picks for `name` while randomBytes gives 0xab bytes. */
export function pinnedTempName(name: string): string {
  return `.${name}.${'ab'.repeat(12)}.tmp`;
}

/** The temporary files (`*.tmp`) left in `dir`. */
export function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.tmp'));
}

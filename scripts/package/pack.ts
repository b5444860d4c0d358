/**
 * The command line of the package build (package.json scripts `pack` and `build`):
 *
 *   npm run pack                                  # build/package/, then dist/session-migrate-<version>.tgz
 *   npx tsx scripts/package/pack.ts --if-stale    # the same, unless the tarball already matches its inputs
 *   npx tsx scripts/package/pack.ts --no-pack     # only build/package/ (npm run build)
 *
 * Any failure exits 1 with one line on stderr, `session-migrate build: ...`, and leaves no tarball
 * (test/package.test.ts). build.ts is loaded here with `await import()` so that a source it loads
 * itself (common's assets.ts and version.ts) that does not compile gives that one line too: tsx's own
 * report of such a source is several lines; the first compiler error is kept, its path made relative
 * to the repository.
 */
import { readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';

const REPO = join(import.meta.dirname, '../..');
const OPTIONS = ['--if-stale', '--no-pack', '--quiet'];

/**
 * The first compiler error in the error of a module that did not load (esbuild's transform error, as
 * tsx throws it: `PATH:LINE:COLUMN: ERROR: TEXT`), its path relative to the repository.
 * @returns `PATH:LINE:COLUMN: ERROR: TEXT`, or undefined when the error is not a compiler error
 */
export function loadErrorLine(err: unknown): string | undefined {
  const m = /(\S+):(\d+):(\d+): ERROR: ([^\n]*)/.exec(err instanceof Error ? err.message : String(err));
  if (m === null) return undefined;
  const path = isAbsolute(m[1]!) ? relative(REPO, m[1]!) : m[1]!;
  return `${path}:${m[2]}:${m[3]}: ERROR: ${m[4]}`;
}

/** Removes dist/session-migrate-*.tgz (and its fingerprint): a tarball of an earlier build is not this source's. */
function removeTarballs(): void {
  let names: string[];
  try {
    names = readdirSync(join(REPO, 'dist'));
  } catch {
    return; // no dist/
  }
  for (const name of names) if (/^session-migrate-.+\.tgz(\.inputs-sha256)?$/.test(name)) rmSync(join(REPO, 'dist', name), { force: true });
}

/** Builds as the arguments say. @throws Error with the one line to print */
async function main(args: string[]): Promise<void> {
  const unknown = args.filter((a) => !OPTIONS.includes(a));
  if (unknown.length > 0) throw new Error(`unknown option ${unknown[0]} (options: ${OPTIONS.join(', ')})`);
  let build: typeof import('./build.ts');
  try {
    build = await import('./build.ts');
  } catch (err) {
    const line = loadErrorLine(err);
    removeTarballs();
    throw new Error(line ?? `unexpected error: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
  }
  try {
    await build.buildPackage({ ifStale: args.includes('--if-stale'), noPack: args.includes('--no-pack'), quiet: args.includes('--quiet') });
  } catch (err) {
    if (build.isBuildFailure(err)) throw err;
    throw new Error(`unexpected error: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
  }
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`session-migrate build: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

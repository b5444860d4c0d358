/**
 * The one rule of the codemods (codemod php, codemod cdk) for rewriting a set of source files: every
 * new text is computed first; then every file to change is checked before anything is written
 * (checkRewritable: a file or directory this user cannot write, a file that is gone or no longer a
 * regular file, a file with several hard links stops the run, so it writes nothing rather than a part
 * of the change); then each file is written with the one atomic write (writeFileAtomic), unless it no
 * longer holds the bytes the change was computed from (writeRewrites). A file that still fails then
 * (changed meanwhile, ENOSPC, EIO) is left as it was and named; the files written are named too.
 *
 * Hard links: rename(2) puts a new inode at the one name, so the other names keep the old text and
 * the link is silently split (the atomic write cannot keep it; rewriting in place is not atomic).
 * Both codemods refuse such a file, naming it.
 */
import { accessSync, constants, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from './atomic-write.ts';
import { UserFacingError, describeFsError } from './errors.ts';

/** One file to rewrite. */
export interface FileRewrite {
  /** Absolute path. */
  path: string;
  /** How reports name it (relative to the codemod's directory, `/`-separated). */
  label: string;
  /** The bytes the new text was computed from, and the new bytes. */
  before: Uint8Array;
  after: Uint8Array;
  /** Permission bits of the new file; default: those of the file replaced. */
  mode?: number;
}

/** What writeRewrites did: the labels written, and those not written with the reason (one line each). */
export interface RewriteResult {
  written: string[];
  notWritten: { label: string; code: string; reason: string }[];
}

/**
 * Why `path` cannot be rewritten in place by the atomic write, or null when it can: gone, not a
 * regular file (a symbolic link too), several hard links, the file without any write bit (mode &
 * 0o222 === 0: refused for root too, though access(2) lets root write it), the file or its directory
 * not writable by this user (access(2), which root passes unless the file system is read-only).
 */
export function rewriteProblem(path: string): string | null {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    return describeFsError(err);
  }
  if (!st.isFile()) return st.isSymbolicLink() ? 'is a symbolic link (refused)' : 'not a regular file';
  if (st.nlink > 1) return `has ${st.nlink} hard links (rewriting it would split them; make it a file of its own first)`;
  // access(2) lets root write a file without any write bit; a file nobody may write was made
  // read-only on purpose, so it is refused for root too (the rename would otherwise replace it).
  if ((st.mode & 0o222) === 0) return 'the file is read-only';
  for (const [p, what, mode] of [
    [path, 'the file is read-only', constants.W_OK],
    [dirname(path), 'its directory is not writable', constants.W_OK | constants.X_OK],
  ] as const) {
    try {
      accessSync(p, mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? what : describeFsError(err);
    }
  }
  return null;
}

/**
 * The refusal of checkRewritable without throwing it, for a dry run that must report what the real
 * run would refuse (codemod-outcome.ts finishCodemod).
 * @returns `cannot write <label>: <why> (and N more file(s)): nothing was changed`, naming the first
 *   file in the given order, or undefined when every file can be rewritten.
 */
export function rewriteRefusal(files: readonly Pick<FileRewrite, 'path' | 'label'>[]): string | undefined {
  const refused: string[] = [];
  for (const f of files) {
    const problem = rewriteProblem(f.path);
    if (problem !== null) refused.push(`${f.label}: ${problem}`);
  }
  if (refused.length === 0) return undefined;
  const more = refused.length > 1 ? ` (and ${refused.length - 1} more file(s))` : '';
  return `cannot write ${refused[0]}${more}: nothing was changed`;
}

/**
 * Checks every file before anything is written (rewriteProblem).
 * @throws UserFacingError (exit 2) `cannot write <label>: <why> (and N more file(s)): nothing was
 *   changed`, naming the first file in the given order (rewriteRefusal).
 */
export function checkRewritable(files: readonly Pick<FileRewrite, 'path' | 'label'>[]): void {
  const refusal = rewriteRefusal(files);
  if (refusal !== undefined) throw new UserFacingError(refusal);
}

/**
 * checkRewritable, then writes each file with writeFileAtomic (`expected`: its `before` bytes). A file
 * that fails is left as it was and listed in `notWritten` with the error code (ECHANGED when it
 * changed or vanished meanwhile, ELOOP / ENOTREG, or the file system's) and a one-line reason; the
 * others are still written, each one whole or not at all.
 * @throws UserFacingError from checkRewritable, before anything is written.
 */
export function writeRewrites(files: readonly FileRewrite[]): RewriteResult {
  checkRewritable(files);
  const result: RewriteResult = { written: [], notWritten: [] };
  for (const f of files) {
    try {
      writeFileAtomic(f.path, f.after, { expected: f.before, ...(f.mode !== undefined ? { mode: f.mode } : {}) });
      result.written.push(f.label);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      result.notWritten.push({ label: f.label, code, reason: describeFsError(err) });
    }
  }
  return result;
}

/**
 * The CDK codemod's file side: walks a directory of CDK TypeScript code, runs transformSource on
 * each file, and writes the results atomically (or, in a dry run, returns unified diffs).
 *
 * Safety rules: symbolic links are never followed (neither directories nor files: a link could lead
 * out of the directory) and are reported as skipped, as codemod php does (@session-migrate/common
 * walk-tree.ts); `node_modules`, `cdk.out` and `.git` are skipped; files are opened with
 * O_NOFOLLOW; a file that is not UTF-8 or is larger than MAX_FILE_BYTES is reported and left alone.
 * Every file's new text is computed before any file is written; then the files are written by the
 * codemods' one rewrite rule (@session-migrate/common rewrite-files.ts, shared with codemod php): a
 * file that is read-only, in a directory that is not writable, gone, or has several hard links
 * refuses the whole run before anything is written; a file that changed on disk meanwhile is left
 * alone and reported.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import {
  SYMLINK_NOT_FOLLOWED,
  UserFacingError,
  codemodIncomplete,
  describeFsError,
  rewriteRefusal,
  walkTree,
  writeRewrites,
  type FileRewrite,
} from '@session-migrate/common';
import { mayContainElastiCache, transformSource, type Change, type Finding, type TransformOptions } from './transform.ts';

/** Files larger than this (bytes) are reported and skipped: CDK stacks are far smaller. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Directory names never entered. */
export const SKIPPED_DIRS: ReadonlySet<string> = new Set(['node_modules', 'cdk.out', '.git']);

/** What happened to one file that had something to report. */
export interface FileReport {
  /** Path relative to the codemod's directory, with `/` separators. */
  path: string;
  /** Whether the file was rewritten (or, in a dry run, would be). */
  changed: boolean;
  /** Unified diff of the change (only when changed). */
  diff?: string;
  changes: Change[];
  findings: Finding[];
  /** Why the file was not processed at all, if it was not. */
  skipped?: string;
}

/** Result of runCdkCodemod. */
export interface CodemodReport {
  dryRun: boolean;
  /** TypeScript files looked at. */
  scanned: number;
  /** ElastiCache L1 constructs found. */
  constructs: number;
  /** Files with changes, findings or a skip reason, in path order. */
  files: FileReport[];
  /**
   * Whether something is left to a person: a high or medium finding (names.ts `isBlocking`), or a
   * file that was skipped: the codemods' one rule, codemodIncomplete in @session-migrate/common
   * codemod-outcome.ts. The CLI exits 1 when it is.
   */
  incomplete: boolean;
  /**
   * Dry run only: the refusal the real run would stop with (a file to change that is read-only, in a
   * directory that is not writable, gone, or has several hard links: rewriteRefusal), as the real
   * run words it; the CLI prints it and exits 2, as the real run does.
   */
  refused?: string;
}

/** Options of runCdkCodemod. */
export interface RunOptions extends TransformOptions {
  /** Compute and return diffs, write nothing. */
  dryRun?: boolean;
}

import { isValidSecretName } from './names.ts';

export { isBlocking } from './names.ts';

/**
 * Runs the codemod over every `.ts`, `.mts` and `.cts` file below `dir` (not `.d.ts`).
 *
 * @throws UserFacingError when `dir` is not a directory or the secret name is invalid, or (nothing
 *   written then) a file to change cannot be rewritten: read-only, its directory not writable, gone,
 *   several hard links. Per-file problems (unreadable, not UTF-8, changed meanwhile) are reported in
 *   the file's `skipped`.
 */
export function runCdkCodemod(dir: string, options: RunOptions = {}): CodemodReport {
  if (options.authSecretName !== undefined && !isValidSecretName(options.authSecretName)) {
    throw new UserFacingError('auth secret name: must be a Secrets Manager secret name (A-Za-z0-9/_+=.@-) or a secret ARN');
  }
  let root: string;
  try {
    root = realpathSync(dir);
    if (!lstatSync(root).isDirectory()) throw new UserFacingError(`${dir}: not a directory`);
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    throw new UserFacingError(`${dir}: ${describeFsError(err)}`);
  }
  const report: CodemodReport = { dryRun: options.dryRun === true, scanned: 0, constructs: 0, files: [], incomplete: false };
  const rewrites: FileRewrite[] = [];
  // The codemods' one walk rule (@session-migrate/common walk-tree.ts): a symbolic link is reported
  // as skipped, never followed; an unreadable directory holds nothing we may change.
  const walked = walkTree(root, { enterDir: (name) => !SKIPPED_DIRS.has(name), takeFile: isCdkSource, unreadableDirs: 'skip' });
  const relOf = (abs: string) => relative(root, abs).split(sep).join('/');
  for (const link of walked.links) {
    report.files.push({ path: relOf(link), changed: false, changes: [], findings: [], skipped: SYMLINK_NOT_FOLLOWED });
  }
  for (const file of walked.files) {
    const rel = relOf(file);
    report.scanned++;
    const fr = processFile(file, rel, options);
    if (fr.report !== undefined) report.files.push(fr.report);
    if (fr.rewrite !== undefined) rewrites.push(fr.rewrite);
    report.constructs += fr.constructs;
  }
  if (options.dryRun !== true) {
    // All new texts are known: check every file, then write (throws before any write).
    const result = writeRewrites(rewrites);
    for (const failed of result.notWritten) {
      const fr = report.files.find((f) => f.path === failed.label)!;
      fr.changed = false;
      fr.skipped =
        failed.code === 'ECHANGED'
          ? 'changed on disk while the codemod ran; not rewritten (run it again)'
          : `not rewritten: ${failed.reason}`;
    }
  } else {
    // The dry run checks what the real run checks first, so it refuses as the real run would.
    const refused = rewriteRefusal(rewrites);
    if (refused !== undefined) report.refused = refused;
  }
  report.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  report.incomplete = codemodIncomplete(
    report.files.flatMap((f) => f.findings),
    report.files.filter((f) => f.skipped !== undefined).length,
  );
  return report;
}

/** Whether the codemod reads this file: TypeScript source, not a declaration file. */
function isCdkSource(name: string): boolean {
  return /\.(ts|mts|cts)$/.test(name) && !/\.d\.(ts|mts|cts)$/.test(name);
}

function readNoFollow(path: string): { bytes: Buffer; mode: number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    if (st.size > MAX_FILE_BYTES) throw Object.assign(new Error('too large'), { code: 'EFBIG' });
    const bytes = Buffer.alloc(st.size);
    let off = 0;
    while (off < bytes.length) {
      const n = readSync(fd, bytes, off, bytes.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { bytes: bytes.subarray(0, off), mode: st.mode & 0o7777 };
  } finally {
    closeSync(fd);
  }
}

/** Reads and transforms one file: its report, and the rewrite to make when it changed. Writes nothing. */
function processFile(path: string, rel: string, options: RunOptions): { report?: FileReport; rewrite?: FileRewrite; constructs: number } {
  const skip = (why: string) => ({ report: { path: rel, changed: false, changes: [], findings: [], skipped: why }, constructs: 0 });
  let read;
  try {
    read = readNoFollow(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return skip(
      code === 'EFBIG' ? `larger than ${MAX_FILE_BYTES} bytes` : code === 'ENOTREG' ? 'not a regular file' : describeFsError(err),
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(read.bytes);
  } catch {
    return mayContainElastiCache(read.bytes.toString('latin1')) ? skip('not valid UTF-8') : { constructs: 0 };
  }
  let result;
  try {
    result = transformSource(text, path, options);
  } catch (err) {
    // An edit that would not parse (a bug of ours): this file is left alone, the others go on.
    return skip(`not changed: ${(err as Error).message}`);
  }
  if (!result.changed && result.findings.length === 0) return { constructs: result.constructs };
  const fr: FileReport = { path: rel, changed: result.changed, changes: result.changes, findings: result.findings };
  if (!result.changed) return { report: fr, constructs: result.constructs };
  fr.diff = redactSecrets(
    createTwoFilesPatch(`a/${rel}`, `b/${rel}`, text, result.output, undefined, undefined, {
      context: 3,
      headerOptions: FILE_HEADERS_ONLY,
    }),
    result.secrets,
  );
  return {
    report: fr,
    rewrite: { path, label: rel, before: read.bytes, after: Buffer.from(result.output, 'utf8'), mode: read.mode },
    constructs: result.constructs,
  };
}

/**
 * A diff for people to read, with every AUTH token the file holds as a string (an
 * `auth-token-in-code` finding: transformSource's `secrets`) replaced by `<redacted len=N>`, the
 * product's one form of a hidden password (php-ini redactRedisSecrets): a context line next to an
 * inserted property would print it. Longest first, so a token that contains another is hidden whole.
 */
function redactSecrets(diff: string, secrets: string[]): string {
  let out = diff;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(`<redacted len=${secret.length}>`);
  }
  return out;
}

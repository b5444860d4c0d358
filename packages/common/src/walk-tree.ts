/**
 * The codemods' one walk rule (codemod php, codemod cdk): which files below an application
 * directory they read, and which symbolic links they report instead of following.
 *
 * - Entries are visited in name order (byte order of the names), depth first, so reports are stable.
 * - A symbolic link is never followed, neither to a file nor to a directory: it could lead out of the
 *   directory (docs/codemods.md). It is listed in `links` when nobody can tell from its name that
 *   the codemod would have ignored it: its name is one `takeFile` takes, or has no dot (it may be a
 *   directory). A link not followed is a file nobody looked at, so both codemods report it as
 *   skipped, which leaves the run incomplete (codemod-outcome.ts codemodIncomplete).
 * - A directory whose name `enterDir` refuses (vendor/, node_modules/, cdk.out/...) is not entered.
 * - Anything else that is not a regular file (sockets, FIFOs, devices) is ignored.
 */
import { readdirSync } from 'node:fs';
import { posix } from 'node:path';

/** Options of walkTree. */
export interface WalkTreeOptions {
  /** Whether to enter the directory of this name (its base name). */
  enterDir: (name: string) => boolean;
  /** Whether the walk takes the regular file of this base name and absolute path. */
  takeFile: (name: string, abs: string) => boolean;
  /**
   * A directory that cannot be read (EACCES...): `throw` the fs error (the default), or `skip` it
   * (nothing there can be changed anyway).
   */
  unreadableDirs?: 'throw' | 'skip';
}

/** What walkTree found, as absolute `/`-joined paths, in walk order. */
export interface WalkedTree {
  /** Regular files taken by `takeFile`. */
  files: string[];
  /** Symbolic links not followed that the caller reports as skipped (see the module comment). */
  links: string[];
}

/**
 * Walks `root` (an existing directory, already resolved through symlinks) by the rule above.
 * @throws the fs error of a directory that cannot be read, unless `unreadableDirs` is `skip`.
 */
export function walkTree(root: string, options: WalkTreeOptions): WalkedTree {
  const out: WalkedTree = { files: [], links: [] };
  const visit = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (options.unreadableDirs === 'skip') return;
      throw err;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const abs = posix.join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        if (options.takeFile(entry.name, abs) || !entry.name.includes('.')) out.links.push(abs);
      } else if (entry.isDirectory()) {
        if (options.enterDir(entry.name)) visit(abs);
      } else if (entry.isFile() && options.takeFile(entry.name, abs)) {
        out.files.push(abs);
      }
    }
  };
  visit(root);
  return out;
}

/** The reason both codemods give for a symbolic link they did not follow. */
export const SYMLINK_NOT_FOLLOWED = 'symbolic link: not followed';

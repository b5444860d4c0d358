/**
 * Per-directory and per-server layers: Apache mod_php `php_value`/`php_flag`/`php_admin_*` lines
 * (php-src sapi/apache2handler/apache_config.c: values are NOT ini-parsed; `none` → ""; a flag is "1"
 * only for On (any case) or 1, anything else "0"; admin entries beat non-admin ones and cannot be set
 * from .htaccess) and `.user.ini` files below document roots (main/php_ini.c, sapi/cgi/cgi_main.c:
 * read from the docroot down to the script's directory, deeper wins, PHP_INI_SYSTEM directives and
 * locked ones ignored).
 */
import { posix } from 'node:path';
import type { AuditFs } from './vfs.ts';

/** One Apache php_* directive line. */
export interface ApacheDefine {
  kind: 'php_value' | 'php_flag' | 'php_admin_value' | 'php_admin_flag';
  key: string;
  value: string;
  file: string;
  line: number;
  /**
   * Where the line applies (httpd config only; .htaccess lines are always `server` for their file):
   * `server` = server level, every request; `directory` = inside `<Directory path>` (or a
   * `<VirtualHost>` whose `DocumentRoot` is `path`): requests for files at or below `path`;
   * `other` = a scope the audit cannot map to directories (`<Location>`, `<Files>`, `*Match`, regex
   * `<Directory ~>`, a `<VirtualHost>` without DocumentRoot): applied to no configuration.
   */
  scope?: { kind: 'server' } | { kind: 'directory'; path: string } | { kind: 'other'; container: string };
}

/** Limits of a directory walk (a hostile tree must not make the audit run forever). */
const MAX_DIRS = 20000;
const MAX_DEPTH = 32;

/**
 * Walks `dir` without following symbolic links and returns files whose name matches `accept`.
 * `skipDir` names directories not entered; symbolic links met and directories that could not be
 * listed are returned too (for callers that report them).
 * @returns paths in sorted (byte) order, and whether the walk hit a limit.
 */
export function walkFiles(
  fs: AuditFs,
  dir: string,
  accept: (name: string) => boolean,
  skipDir?: (name: string) => boolean,
): { files: string[]; truncated: boolean; symlinks: string[]; unreadable: string[] } {
  const files: string[] = [];
  const symlinks: string[] = [];
  const unreadable: string[] = [];
  let dirs = 0;
  let truncated = false;
  const visit = (d: string, depth: number) => {
    if (depth > MAX_DEPTH || ++dirs > MAX_DIRS) {
      truncated = true;
      return;
    }
    const names = fs.readdir(d);
    if (names === null) {
      unreadable.push(d);
      return;
    }
    for (const n of names.sort()) {
      const p = posix.join(d, n);
      const st = fs.lstat(p);
      if (st === null) continue;
      if (st.type === 'symlink') {
        symlinks.push(p);
        continue;
      }
      if (st.type === 'dir') {
        if (skipDir === undefined || !skipDir(n)) visit(p, depth + 1);
      } else if (st.type === 'file' && accept(n)) files.push(p);
    }
  };
  visit(dir, 0);
  return { files, truncated, symlinks, unreadable };
}

/** Splits an Apache directive line into words (ap_getword_conf: "..." or '...' quoting, \ escapes inside quotes). */
export function apacheWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /[ \t]/.test(line[i] as string)) i++;
    if (i >= line.length) break;
    const q = line[i];
    if (q === '"' || q === "'") {
      let w = '';
      i++;
      while (i < line.length && line[i] !== q) {
        if (line[i] === '\\' && i + 1 < line.length && (line[i + 1] === q || line[i + 1] === '\\')) i++;
        w += line[i];
        i++;
      }
      i++;
      words.push(w);
    } else {
      let w = '';
      while (i < line.length && !/[ \t]/.test(line[i] as string)) w += line[i++];
      words.push(w);
    }
  }
  return words;
}

/**
 * Reads php_* lines from one Apache config or .htaccess text.
 * @param htaccess true for .htaccess: php_admin_* are not allowed there and are skipped.
 */
export function parseApacheText(text: string, file: string, htaccess: boolean): ApacheDefine[] {
  const out: ApacheDefine[] = [];
  const lines = text.split(/\r?\n/);
  const containers = new ApacheContainers();
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] as string;
    const start = i;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i];
    const tag = /^<\s*(\/?)\s*([A-Za-z]+)\s*([^>]*)>/.exec(line.trim());
    if (tag !== null && !htaccess) {
      containers.tagLine(tag[1] === '/', tag[2]!, tag[3]!);
      continue;
    }
    const words = apacheWords(line.trim());
    const dir = words[0]?.toLowerCase();
    if (dir === undefined || dir.startsWith('#')) continue;
    if (dir === 'documentroot' && containers.documentRoot(words[1])) continue;
    const def = phpDefine(dir, words, htaccess, file, start + 1, containers.scope());
    if (def === null) continue;
    containers.track(def);
    out.push(def);
  }
  return out;
}

/** The containers that narrow where a line applies (httpd core.c section directives). */
const SCOPING_CONTAINERS = ['directory', 'directorymatch', 'location', 'locationmatch', 'files', 'filesmatch', 'virtualhost'];

/**
 * The open containers while reading one Apache config text, and the scope a line has at each
 * point. <IfModule>/<IfDefine>/<IfVersion> etc. do not narrow where a line applies and are not
 * tracked. Lines directly inside a `<VirtualHost>` get their scope when it closes (its
 * DocumentRoot may stand anywhere in the block).
 */
class ApacheContainers {
  private readonly stack: Array<{ tag: string; scope: ApacheDefine['scope']; pending: ApacheDefine[]; docRoot: string | null }> = [];

  /** Where a line read now applies: the innermost container's scope, else the server level. */
  scope(): ApacheDefine['scope'] {
    return this.stack.length === 0 ? { kind: 'server' } : this.stack[this.stack.length - 1]!.scope;
  }

  /**
   * A `<Name args>` or `</Name>` line (`name` as written, `args` the text before `>`); containers
   * not in SCOPING_CONTAINERS, and a close tag with no open container of that name, are ignored.
   */
  tagLine(closing: boolean, name: string, args: string): void {
    const tag = name.toLowerCase();
    if (!SCOPING_CONTAINERS.includes(tag)) return;
    if (closing) this.close(tag);
    else this.stack.push({ tag, scope: this.openedScope(tag, name, args), pending: [], docRoot: null });
  }

  /**
   * The scope inside a container opening now: an `other` outer scope (except <VirtualHost>) stays;
   * a literal absolute `<Directory /path>` (no wildcard) is that directory (trailing '/' removed);
   * anything else is `other`, named by its opening tag.
   */
  private openedScope(tag: string, name: string, rawArgs: string): ApacheDefine['scope'] {
    const args = apacheWords(rawArgs.trim());
    const outer = this.scope();
    if (outer?.kind === 'other' && outer.container !== '<VirtualHost>') return outer;
    if (tag === 'directory' && args.length === 1 && args[0]!.startsWith('/') && !/[*?[]/.test(args[0]!)) {
      return { kind: 'directory', path: args[0]!.length > 1 ? args[0]!.replace(/\/+$/, '') : '/' };
    }
    if (tag === 'virtualhost') return { kind: 'other', container: '<VirtualHost>' };
    return { kind: 'other', container: `<${name}${rawArgs ? ' ' + rawArgs.trim() : ''}>` };
  }

  /**
   * Closes the innermost open container named `tag` and every one inside it. A <VirtualHost>
   * line applies below its DocumentRoot, wherever in the block that stands; without one, nowhere.
   */
  private close(tag: string): void {
    const idx = this.stack.map((x) => x.tag).lastIndexOf(tag);
    if (idx < 0) return;
    for (const c of this.stack.splice(idx)) {
      if (c.tag !== 'virtualhost') continue;
      for (const d of c.pending) {
        d.scope =
          c.docRoot !== null ? { kind: 'directory', path: c.docRoot } : { kind: 'other', container: '<VirtualHost> without DocumentRoot' };
      }
    }
  }

  /**
   * A `DocumentRoot path` line: recorded (trailing '/' removed) when directly inside a
   * <VirtualHost> and the path is absolute. @returns whether it was recorded.
   */
  documentRoot(path: string | undefined): boolean {
    const top = this.stack[this.stack.length - 1];
    if (top === undefined || top.tag !== 'virtualhost' || path?.startsWith('/') !== true) return false;
    top.docRoot = path.length > 1 ? path.replace(/\/+$/, '') : '/';
    return true;
  }

  /** A php_* line read now: directly inside a <VirtualHost>, its scope is set when that closes. */
  track(def: ApacheDefine): void {
    const top = this.stack[this.stack.length - 1];
    if (top !== undefined && top.tag === 'virtualhost') top.pending.push(def);
  }
}

/**
 * One `php_value`/`php_flag`/`php_admin_value`/`php_admin_flag KEY VALUE` line (mod_php
 * sapi/apache2handler/apache_config.c), or null for any other directive, a line without key or
 * value, or php_admin_* in .htaccess. Flags become '1' (`on`, `1`) or '0'; a value `none` is ''.
 * @param dir the directive, lower-cased; `line` 1-based.
 */
function phpDefine(
  dir: string,
  words: readonly string[],
  htaccess: boolean,
  file: string,
  line: number,
  scope: ApacheDefine['scope'],
): ApacheDefine | null {
  if (!['php_value', 'php_flag', 'php_admin_value', 'php_admin_flag'].includes(dir)) return null;
  if (htaccess && dir.startsWith('php_admin')) return null;
  const key = words[1];
  const raw = words[2];
  if (key === undefined || raw === undefined) return null;
  const kind = dir as ApacheDefine['kind'];
  let value: string;
  if (kind.endsWith('flag')) value = raw.toLowerCase() === 'on' || raw === '1' ? '1' : '0';
  else value = raw.toLowerCase() === 'none' ? '' : raw;
  return { kind, key, value, file, line, scope };
}

/** Apache configuration files on the host: everything below /etc/apache2 and /etc/httpd that mentions php_. */
export function readApacheConfigs(fs: AuditFs): { defines: ApacheDefine[]; files: string[]; problems: string[] } {
  const defines: ApacheDefine[] = [];
  const files: string[] = [];
  const problems: string[] = [];
  for (const base of ['/etc/apache2', '/etc/httpd']) {
    if (fs.stat(base)?.type !== 'dir') continue;
    // Debian enables sites/modules through symlinks into *-available: read the enabled names' targets
    // too, but only inside the root (the filesystem never lets them escape).
    const walked = walkFiles(fs, base, (n) => n.endsWith('.conf') || n.endsWith('.load'));
    for (const sub of ['sites-enabled', 'conf-enabled', 'mods-enabled', 'conf.d']) {
      for (const n of (fs.readdir(`${base}/${sub}`) ?? []).sort()) {
        const p = `${base}/${sub}/${n}`;
        if (fs.lstat(p)?.type === 'symlink' && fs.stat(p)?.type === 'file') walked.files.push(p);
      }
    }
    if (walked.truncated) problems.push(`${base}: too many directories; Apache configuration read in part`);
    for (const f of walked.files) {
      const r = fs.readFile(f);
      if (!r.ok) {
        problems.push(`${f}: ${r.error}`);
        continue;
      }
      if (r.data.includes(0)) continue;
      const found = parseApacheText(r.data.toString('latin1'), f, false);
      if (found.length > 0) files.push(f);
      defines.push(...found);
    }
  }
  return { defines, files, problems };
}

/**
 * Merges Apache defines the way apache_config.c does for one request: later lines override earlier
 * ones, except that an admin entry is never overridden by a non-admin one.
 */
export function mergeApacheDefines(defines: ApacheDefine[]): Map<string, ApacheDefine & { locked: boolean }> {
  const out = new Map<string, ApacheDefine & { locked: boolean }>();
  for (const d of defines) {
    const admin = d.kind.startsWith('php_admin');
    const prev = out.get(d.key);
    if (prev !== undefined && prev.locked && !admin) continue;
    out.set(d.key, { ...d, locked: admin });
  }
  return out;
}

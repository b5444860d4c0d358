/**
 * Run-time session settings in an application's PHP code (`audit --app DIR`, and each `--docroot`):
 * the calls that change session configuration while a request runs, with the value PHP would use
 * when it is static. Parsing is the PHP codemod's (php-parser 3.7.0, codemods/php/src/source.ts) and
 * values come from its static evaluator (static-value.ts: constants, class constants, __DIR__,
 * dirname(), concatenation). Reads through the AuditFs, so `--root` works and nothing escapes it;
 * symbolic links inside DIR are never followed.
 *
 * Calls read (global functions, any case, a leading `\` allowed; PHP 8.2 ext/session/session.c and
 * ext/standard/basic_functions.c; an unqualified call that may call a function of its namespace that
 * another file declares is a problem instead, see mayCallNamespaceFunction):
 * - `ini_set()`/`ini_alter()` of a name containing `session`;
 * - `session_save_path(PATH)` (session.save_path), `session_module_name(M)` (session.save_handler),
 *   `session_name(N)` (session.name), `session_set_save_handler(...)` (a user handler);
 * - `session_set_cookie_params()` in both forms: `(int lifetime, ?path, ?domain, ?bool secure, ?bool
 *   httponly)` and `(array options)` with the keys lifetime, path, domain, secure, httponly, samesite
 *   (any case; other keys are ignored with a warning);
 * - `session_start(array options)`: each key is `session.<key>` (read_and_close excepted).
 * A first-class callable (`ini_set(...)`) creates a Closure and sets nothing; it is not read. The same
 * calls through a callable string, `call_user_func('ini_set', ...)` and `call_user_func_array('ini_set',
 * [...])`, are read as the direct call (codemod php's stringCallableCall, function-names.ts), `via`
 * the function called (`ini_set`), at the line of the call_user_func().
 */
import { printable } from '@session-migrate/common';
import { DEFAULT_EXCLUDED_DIRS, PHP_EXTENSIONS, PhpSyntaxError } from '@session-migrate/codemod-php/php-files';
import type { PhpNode } from '@session-migrate/codemod-php/source';
import {
  CALLABLE_CALLERS,
  addNamespacedFunctions,
  declaringFile,
  fallbackFunction,
  globalFunctionNameIn,
  stringCallableCall,
  type FallbackFunction,
} from '@session-migrate/codemod-php/function-names';
import { phpParser } from './php-parser.ts';
import {
  PhpSymbols,
  UNRESOLVED,
  callArgument,
  globalScope,
  phpToString,
  phpTruthy,
  resolveClassName,
  walkScoped,
  type PhpArray,
  type PhpScope,
  type PhpValue,
  type Unresolved,
} from '@session-migrate/codemod-php/static-value';
import type { AppReport, RuntimeSetting } from './model.ts';
import type { AuditFs } from './vfs.ts';
import { walkFiles } from './perdir.ts';

/** Largest PHP file parsed (bytes); a larger one is reported, not read. */
export const MAX_APP_FILE_BYTES = 4 * 1024 * 1024;
/** Most PHP files read per application directory. */
export const MAX_APP_FILES = 20_000;

const FUNCTIONS = new Set([
  'ini_set',
  'ini_alter',
  'session_save_path',
  'session_module_name',
  'session_name',
  'session_set_save_handler',
  'session_set_cookie_params',
  'session_start',
]);
const COOKIE_KEYS: Record<string, string> = {
  lifetime: 'session.cookie_lifetime',
  path: 'session.cookie_path',
  domain: 'session.cookie_domain',
  secure: 'session.cookie_secure',
  httponly: 'session.cookie_httponly',
  samesite: 'session.cookie_samesite',
};

/** A binary string (one char per byte) as text for reports and comparisons (UTF-8 decoded). */
const text = (binary: string): string => Buffer.from(binary, 'latin1').toString('utf8');
const binary = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

/**
 * Reads the PHP files below `dir` (none of vendor/, node_modules/, .git/; symbolic links not followed)
 * and returns the run-time session settings they make. Never throws for bad input: unreadable,
 * binary, too large or unparsable files and a looping directory are `problems`.
 * @param lint PHP's verdict on a file php-parser refuses (`php -l`), so valid PHP the parser cannot
 *   read is reported as such; absent: every refused file "does not parse"
 */
export function readApp(fs: AuditFs, dir: string, implied = false, lint?: PhpLint): AppReport {
  const report: AppReport = { dir, realDir: null, implied, files: 0, settings: [], problems: [], notFollowed: [] };
  const where = resolveAppDir(fs, dir);
  if ('problem' in where) {
    report.problems.push(where.problem);
    return report;
  }
  report.realDir = where.real;
  const scan = scanPhpFiles(fs, appPhpFiles(fs, where.real, report), report, lint);
  for (const { file, source, calls } of scan.pending) {
    const global = calls.filter((c) => !mayCallNamespaceFunction(c, file, scan.declared, report));
    report.settings.push(...settingsOf(global, file, source, scan.symbols));
  }
  return report;
}

/**
 * The real path of an application directory, or the one problem line that stops reading it: no
 * such directory, a symlink loop or link out of the audited filesystem, or not a directory.
 */
function resolveAppDir(fs: AuditFs, dir: string): { real: string } | { problem: string } {
  const st = fs.lstat(dir);
  const real = fs.realpath(dir);
  if (st === null) return { problem: `application directory ${dir}: no such directory on ${fs.label}` };
  if (real === null) {
    return { problem: `application directory ${dir}: symlink loop (too many levels of symbolic links), or a link out of ${fs.label}` };
  }
  if (fs.stat(real)?.type !== 'dir') return { problem: `application directory ${dir}: not a directory` };
  return { real };
}

/**
 * The PHP files below `real` (PHP_EXTENSIONS; DEFAULT_EXCLUDED_DIRS skipped; symbolic links not
 * followed but listed in `report.notFollowed`), at most MAX_APP_FILES; a truncated walk, unreadable
 * directories and files beyond the limit are added to `report.problems`.
 */
function appPhpFiles(fs: AuditFs, real: string, report: AppReport): string[] {
  const walked = walkFiles(
    fs,
    real,
    (n) => PHP_EXTENSIONS.some((e) => n.endsWith(e)),
    (n) => DEFAULT_EXCLUDED_DIRS.includes(n),
  );
  if (walked.truncated) report.problems.push(`${real}: too many directories, or nested too deep; PHP code read in part`);
  for (const d of walked.unreadable) report.problems.push(`${d}: directory not readable; its PHP code was not read`);
  report.notFollowed = walked.symlinks;
  const files = walked.files.slice(0, MAX_APP_FILES);
  if (walked.files.length > MAX_APP_FILES) report.problems.push(`${real}: more than ${MAX_APP_FILES} PHP files; the rest were not read`);
  return files;
}

/**
 * One PHP file's source as a binary string (one char per byte), or the problem line that skips it:
 * larger than MAX_APP_FILE_BYTES, unreadable, or binary (a NUL byte before any __halt_compiler()).
 */
function readPhpSource(fs: AuditFs, file: string): { source: string } | { problem: string } {
  const fst = fs.lstat(file);
  if (fst !== null && fst.size > MAX_APP_FILE_BYTES) return { problem: `${file}: too large (${fst.size} bytes); not read` };
  const r = fs.readFile(file);
  if (!r.ok) return { problem: `${file}: ${r.error}` };
  const source = r.data.toString('latin1');
  const nul = source.indexOf('\0');
  // NUL bytes are legal only after __halt_compiler() (phar stubs); anywhere else this is no PHP source.
  if (nul >= 0 && !/__halt_compiler\s*\(\s*\)/i.test(source.slice(0, nul)))
    return { problem: `${file}: binary data (NUL bytes); not read` };
  return { source };
}

/** What one pass over an application's files keeps (scanPhpFiles). */
interface AppScan {
  /** Every file's constants (PhpSymbols.addFile), for evaluating the calls' arguments. */
  symbols: PhpSymbols;
  /** Namespaced functions declared: lower-cased fully qualified name -> the first file declaring it (addNamespacedFunctions). */
  declared: Map<string, string>;
  /** Files with session calls, in order, with their sources (binary strings) and calls. */
  pending: Array<{ file: string; source: string; calls: SessionCall[] }>;
}

/**
 * Parses each file once and keeps only the calls of interest (and the files' constants in
 * `symbols`, their namespaced functions in `declared`), not whole syntax trees: the settings are
 * evaluated once every file's constants and functions are known. Files read count in
 * `report.files`; files skipped or refused by the parser add one line to `report.problems`.
 * @throws when php-parser is not loaded (loadPhpParser): the caller's error, not a file's.
 */
function scanPhpFiles(fs: AuditFs, files: readonly string[], report: AppReport, lint: PhpLint | undefined): AppScan {
  const scan: AppScan = { symbols: new PhpSymbols(), declared: new Map(), pending: [] };
  for (const file of files) {
    const read = readPhpSource(fs, file);
    if ('problem' in read) {
      report.problems.push(read.problem);
      continue;
    }
    const { source } = read;
    const parse = phpParser(); // outside the try: a parser not loaded is the caller's error, not a file's
    let ast: PhpNode;
    try {
      ast = parse(source, file);
    } catch (err) {
      report.problems.push(unparsed(file, source, err, lint));
      continue;
    }
    // __FILE__ / __DIR__ are the real path, as binary strings like the source.
    scan.symbols.addFile(ast, binary(file));
    addNamespacedFunctions(scan.declared, ast, file);
    const calls = callsOf(ast, file);
    if (calls.length > 0) scan.pending.push({ file, source, calls });
    report.files++;
  }
  return scan;
}

/**
 * PHP's own verdict on a text php-parser refused (`php -l`, codemod php's php-files.ts lintPhpText):
 * null when PHP accepts it, PHP's error line when not, undefined when no php could be asked.
 */
export type PhpLint = (source: string) => string | null | undefined;

/**
 * The problem of a file php-parser refused. php-parser 3.7.0 (the newest; no option changes it)
 * rejects some valid PHP, e.g. `declare(ticks=1) statement;`: when `php -l` accepts the file, the
 * report says so (its calls must be checked by hand), instead of calling valid PHP unparsable.
 */
function unparsed(file: string, source: string, err: unknown, lint: PhpLint | undefined): string {
  const e = err instanceof PhpSyntaxError ? err : new PhpSyntaxError(String((err as Error).message ?? err), undefined);
  const at = `${file}${e.line !== undefined ? `:${e.line}` : ''}`;
  if (err instanceof PhpSyntaxError && lint?.(source) === null)
    return `${at}: php-parser cannot read it, though php -l accepts it (${printable(e.message)}); its session settings were not read, check its session calls by hand`;
  return `${at}: does not parse (${printable(e.message)}); its session settings were not read`;
}

/** The source text of a node, on one line and shortened (for unresolved values). */
function sourceOf(source: string, node: PhpNode | undefined): string {
  const loc = node?.loc;
  if (loc === undefined || loc === null) return '(computed)';
  const t = printable(text(source.slice(loc.start.offset, loc.end.offset)).replace(/\s+/g, ' ').trim());
  return t.length > 100 ? `${t.slice(0, 97)}...` : t;
}

/** A call of one of FUNCTIONS (directly or through a callable string): its node, scope, the global function it calls (lower case) and its arguments. */
interface SessionCall {
  node: PhpNode;
  scope: PhpScope;
  name: string;
  /** The arguments the function gets; null when not known (call_user_func_array of a computed array). */
  args: PhpNode[] | null;
  /** How reports name the call: the function called (`name`). */
  via: string;
  /** The namespace function PHP calls instead when some file defines it (codemod php fallbackFunction), or null. */
  fallback: FallbackFunction | null;
}

/**
 * Whether an unqualified call in a namespace may call a function of that namespace which another
 * file of the application declares rather than PHP's (PHP's fallback rule, "Using namespaces:
 * fallback to global function", https://www.php.net/manual/en/language.namespaces.fallback.php; its
 * home is codemod php's function-names.ts, whose namespace-function-elsewhere reports the same
 * calls). Which one runs depends on whether that file was loaded first, so the call is not read as a
 * session setting and is named in the report's problems (the result is partial).
 */
function mayCallNamespaceFunction(call: SessionCall, file: string, declared: ReadonlyMap<string, string>, report: AppReport): boolean {
  const declaredIn = declaringFile(call.fallback, declared);
  if (call.fallback === null || declaredIn === undefined) return false;
  const { namespace, name, fqn } = call.fallback;
  const line = call.node.loc?.start.line ?? 0;
  report.problems.push(
    `${file}:${line}: ${name}() in namespace ${text(namespace)} may call ${text(fqn)}(), which ${declaredIn} declares (PHP calls it instead of the global ${name}() once that file is loaded): not read as a session setting`,
  );
  return true;
}

/** The calls of one parsed file that may set session configuration, with their scope. */
function callsOf(ast: PhpNode, file: string): SessionCall[] {
  const out: SessionCall[] = [];
  // Namespaces do not nest, and walkScoped visits one before its statements: the last one seen encloses the call.
  let namespaceNode: PhpNode = ast;
  walkScoped(ast, globalScope(binary(file)), (node, scope) => {
    if (node.kind === 'namespace') namespaceNode = node;
    if (node.kind !== 'call') return;
    const what = node.what as PhpNode;
    if (what?.kind !== 'name' || typeof what.name !== 'string') return;
    // App\ini_set() declared in the file's namespace, `use function Foo\ini_set`, namespace\ini_set(): not PHP's
    const called = globalFunctionNameIn(what, namespaceNode);
    if (called === null) return;
    const args = (node.arguments as PhpNode[] | undefined) ?? [];
    if (args.length === 1 && args[0]!.kind === 'variadicplaceholder') return; // a Closure, no call
    const fallback = fallbackFunction(what, namespaceNode);
    if (CALLABLE_CALLERS.has(called)) {
      const target = stringCallableCall(called, args);
      if (target !== null && FUNCTIONS.has(target.name))
        out.push({ node, scope, name: target.name, args: target.args, via: target.name, fallback });
      return;
    }
    if (FUNCTIONS.has(called)) out.push({ node, scope, name: called, args, via: called, fallback });
  });
  return out;
}

/** One call being read by settingsOf: where it is, and helpers that record settings and evaluate arguments. */
interface CallSite {
  /** Function name, lower case, without a leading `\`. */
  name: string;
  /** How reports name the call (SessionCall.via). */
  via: string;
  args: PhpNode[];
  file: string;
  line: number;
  source: string;
  scope: PhpScope;
  symbols: PhpSymbols;
  out: RuntimeSetting[];
  /** Records `directive` = `value`; an unresolved value records the source of `expr` instead. */
  add: (directive: string | null, value: PhpValue | Unresolved | string | null, expr?: PhpNode, extra?: Partial<RuntimeSetting>) => void;
  /** Records a setting that cannot be known statically (directive and value null), with the source of `expr`. */
  addComputed: (expr: PhpNode | undefined) => void;
  evaluate: (n: PhpNode | Unresolved | undefined) => PhpValue | Unresolved | undefined;
  /** The argument node at `i` or named one of `names`, undefined when absent or unpacked. */
  argNode: (i: number, ...names: string[]) => PhpNode | undefined;
}

/** ini_set()/ini_alter() of a session.* directive (a computed name is reported unless it cannot be one). */
function iniSetSettings(c: CallSite): void {
  const { args } = c;
  const optNode = c.argNode(0, 'option', 'varname');
  const valNode = c.argNode(1, 'value', 'newvalue');
  const opt = c.evaluate(callArgument(args, 0, 'option', 'varname'));
  if (opt === undefined) return;
  if (opt === UNRESOLVED || typeof opt !== 'string') {
    const prefix = staticPrefix(optNode, c.scope, c.symbols);
    // A computed name that cannot be a session directive is not reported.
    if (prefix !== null && prefix !== '' && !prefix.toLowerCase().includes('session') && !'session'.startsWith(prefix.toLowerCase()))
      return;
    c.addComputed(optNode);
    return;
  }
  if (!opt.toLowerCase().includes('session')) return;
  const v = c.evaluate(callArgument(args, 1, 'value', 'newvalue'));
  if (v === undefined) return;
  c.add(text(opt), v !== UNRESOLVED && typeof v === 'object' && v !== null ? UNRESOLVED : v, valNode);
}

/** session_save_path(), session_module_name(), session_name() with an argument (the setter form). */
function sessionSetterSettings(c: CallSite): void {
  const { name } = c;
  const param = name === 'session_save_path' ? 'path' : name === 'session_name' ? 'name' : 'module';
  const n = c.argNode(0, param);
  const raw = callArgument(c.args, 0, param);
  if (raw === undefined) return; // the getter form
  const v = c.evaluate(raw);
  if (v === null) return; // null: getter as well (PHP 8: ?string)
  c.add(
    name === 'session_save_path' ? 'session.save_path' : name === 'session_name' ? 'session.name' : 'session.save_handler',
    v !== UNRESOLVED && typeof v === 'object' ? UNRESOLVED : (v as PhpValue | Unresolved),
    n,
  );
}

/** session_set_save_handler(): save_handler becomes `user`, with the handler named. */
function saveHandlerSettings(c: CallSite): void {
  const { args, scope } = c;
  const first = c.argNode(0, 'open', 'sessionhandler');
  let handler = '(computed)';
  if (args.length >= 6) handler = 'functions (six callables)';
  else if (first?.kind === 'new' && (first.what as PhpNode)?.kind === 'name')
    handler = resolveClassName(String((first.what as PhpNode).name), (first.what as PhpNode).resolution as string | undefined, scope);
  else if (first !== undefined) handler = sourceOf(c.source, first);
  c.out.push({ directive: 'session.save_handler', value: 'user', via: c.via, file: c.file, line: c.line, handler: text(handler) });
}

/** session_set_cookie_params(): the options-array form, or the positional (lifetime, path, domain, secure, httponly) form. */
function cookieParamsSettings(c: CallSite): void {
  const { args } = c;
  const firstNode = c.argNode(0, 'lifetime_or_options');
  const first = c.evaluate(callArgument(args, 0, 'lifetime_or_options'));
  if (first === undefined) return;
  const isArray = first !== UNRESOLVED && typeof first === 'object' && first !== null;
  const positional = args.length > 1 || (!isArray && first !== UNRESOLVED);
  if (isArray) {
    for (const [k, v] of (first as PhpArray).entries) {
      const directive = typeof k === 'string' ? COOKIE_KEYS[k.toLowerCase()] : undefined;
      if (directive === undefined) continue; // PHP warns and ignores the key
      const isFlag = directive.endsWith('secure') || directive.endsWith('httponly');
      c.add(directive, isFlag ? (phpTruthy(v) ? '1' : '0') : typeof v === 'object' && v !== null ? UNRESOLVED : v, firstNode);
    }
    return;
  }
  if (!positional) {
    // One computed argument: an options array or a lifetime, PHP decides at run time.
    c.addComputed(firstNode);
    return;
  }
  c.add('session.cookie_lifetime', first, firstNode);
  const names = ['path', 'domain', 'secure', 'httponly'];
  names.forEach((n, i) => {
    const a = callArgument(args, i + 1, n);
    if (a === undefined) return;
    const v = c.evaluate(a);
    if (v === null) return; // null keeps the current value
    const directive = COOKIE_KEYS[n]!;
    if (n === 'secure' || n === 'httponly')
      c.add(directive, v === UNRESOLVED || v === undefined ? UNRESOLVED : phpTruthy(v) ? '1' : '0', a === UNRESOLVED ? undefined : a);
    else c.add(directive, v === undefined ? UNRESOLVED : v, a === UNRESOLVED ? undefined : a);
  });
}

/** session_start($options): each option as session.<key> (read_and_close is not a directive). */
function sessionStartSettings(c: CallSite): void {
  const optNode = c.argNode(0, 'options');
  const opts = c.evaluate(callArgument(c.args, 0, 'options'));
  if (opts === undefined) return;
  if (opts === UNRESOLVED || typeof opts !== 'object' || opts === null) {
    c.addComputed(optNode);
    return;
  }
  for (const [k, v] of opts.entries) {
    if (typeof k !== 'string' || k === 'read_and_close') continue;
    // session_start() takes string, int and bool values (a float or null is a TypeError).
    const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v));
    c.add(`session.${text(k)}`, ok ? v : UNRESOLVED, optNode);
  }
}

/** One reader per function that may set session configuration (FUNCTIONS). */
const CALL_SETTINGS: Readonly<Record<string, (c: CallSite) => void>> = {
  ini_set: iniSetSettings,
  ini_alter: iniSetSettings,
  session_save_path: sessionSetterSettings,
  session_module_name: sessionSetterSettings,
  session_name: sessionSetterSettings,
  session_set_save_handler: saveHandlerSettings,
  session_set_cookie_params: cookieParamsSettings,
  session_start: sessionStartSettings,
};

/** The run-time settings of one file's calls (callsOf), evaluated with every file's constants. */
function settingsOf(calls: SessionCall[], file: string, source: string, symbols: PhpSymbols): RuntimeSetting[] {
  const out: RuntimeSetting[] = [];
  for (const { node, scope, name, args: known, via } of calls) {
    const what = node.what as PhpNode;
    const reader = Object.hasOwn(CALL_SETTINGS, name) ? CALL_SETTINGS[name] : undefined;
    if (reader === undefined) continue;
    const line = node.loc?.start.line ?? what.loc?.start.line ?? 0;
    if (known === null) {
      // call_user_func_array() of a computed array: what it sets is not known statically.
      out.push({ directive: null, value: null, via, file, line, expression: sourceOf(source, (node.arguments as PhpNode[])[1]) });
      continue;
    }
    const args = known;
    reader({
      name,
      via,
      args,
      file,
      line,
      source,
      scope,
      symbols,
      out,
      add: (directive, value, expr, extra = {}) => {
        const s = value === UNRESOLVED || value === null ? null : typeof value === 'string' ? value : phpToString(value);
        out.push({
          directive,
          value: s === null ? null : text(s),
          via,
          file,
          line,
          ...(s === null ? { expression: sourceOf(source, expr) } : {}),
          ...extra,
        });
      },
      addComputed: (expr) => {
        out.push({ directive: null, value: null, via, file, line, expression: sourceOf(source, expr) });
      },
      evaluate: (n) => (n === undefined ? undefined : n === UNRESOLVED ? UNRESOLVED : symbols.evaluate(n, scope)),
      argNode: (i, ...names) => {
        const a = callArgument(args, i, ...names);
        return a === UNRESOLVED ? undefined : a;
      },
    });
  }
  return out;
}

/** The static start of a string expression (`'session.' . $key` gives "session."), or null. */
function staticPrefix(node: PhpNode | undefined, scope: PhpScope, symbols: PhpSymbols): string | null {
  if (node === undefined) return null;
  const v = symbols.evaluate(node, scope);
  if (typeof v === 'string') return v;
  if (node.kind === 'bin' && node.type === '.') return staticPrefix(node.left as PhpNode, scope, symbols);
  if (node.kind === 'encapsed') {
    const first = ((node.value as PhpNode[] | undefined) ?? [])[0];
    const e = first?.kind === 'encapsedpart' ? (first.expression as PhpNode) : first;
    return e?.kind === 'string' ? String(e.value) : null;
  }
  return null;
}

/** Whether `path` is `dir` or below it (per component). */
export function isInside(path: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  return path === dir || path.startsWith(d);
}

/**
 * Reads several application directories: `--app` ones first, then those implied by `--docroot`
 * (skipped when missing: the document root is reported already). A directory inside another one
 * read (after symbolic links) is not read twice. `lint` checks a file php-parser refused (readApp).
 */
export function readApps(fs: AuditFs, dirs: Array<{ dir: string; implied: boolean }>, lint?: PhpLint): AppReport[] {
  const out: AppReport[] = [];
  const candidates = dirs.map((d) => ({ ...d, real: fs.realpath(d.dir) }));
  for (const c of candidates) {
    if (c.implied && (c.real === null || fs.stat(c.real)?.type !== 'dir')) continue;
    if (
      c.real !== null &&
      candidates.some(
        (o) =>
          o !== c && o.real !== null && o.real !== c.real && isInside(c.real!, o.real) && (!o.implied || fs.stat(o.real)?.type === 'dir'),
      )
    )
      continue;
    if (c.real !== null && out.some((r) => r.realDir === c.real)) continue;
    out.push(readApp(fs, c.dir, c.implied, lint));
  }
  return out;
}

/**
 * Per-file analysis of the PHP codemod (pure: text in, findings, edits and include events out).
 *
 * Session code it looks for (names are case-insensitive, as PHP function names are; a leading `\`
 * is allowed): session_start(), ini_set()/ini_alter() of `session.*`, session_save_path(),
 * session_module_name(), session_set_save_handler(); static include/require expressions; and
 * framework configuration where it is unambiguous (Laravel config/session.php 'driver', CodeIgniter 3
 * `$config['sess_driver']`, CodeIgniter 4 `$sessionDriver` / `$driver` of Config\Session).
 *
 * Rules for changes (README "codemod php"):
 * - a call that would put PHP back on the files handler or set a files save_path, with literal
 *   arguments (`ini_set('session.save_handler', 'files')`, `ini_set('session.save_path', '/tmp')`,
 *   `session_save_path('/tmp')`, `session_module_name('files')`) is removed when it is a statement of
 *   its own (with an `@` or not); as the only body of a brace-less if/else/loop it becomes `{}`;
 *   when its value is used it is replaced by the matching getter, which returns a string like a
 *   successful call (`ini_get('session.save_handler')`, `session_save_path()`,
 *   `session_module_name()`) and a comment;
 * - dynamic values, other save handlers (`'redis'`, `'memcached'`: their sessions are not migrated)
 *   and their URL save_paths, custom handlers (session_set_save_handler, both forms) and framework
 *   settings are reported, never changed;
 * - except, when the caller opts in (`replaceCustomHandler`, CLI `--replace-custom-handler`), a
 *   custom handler registration (six callables, or an object with or without register_shutdown) is
 *   rewritten to `session_set_save_handler(\<Namespace>\EncryptedRedisSessionHandler::registeredHandler(), true)`,
 *   which registers again the handler the generated bootstrap registered; the custom handler's
 *   storage is abandoned (its sessions are not migrated), which the finding says.
 */
import { posix } from 'node:path';
import { callEnd, isTrivia, lineOf, parsePhp, statementEnd, tokenAt, type ParseOptions, type PhpNode, type Token } from './source.ts';
import { evaluateStatic, globalScope } from './static-value.ts';
import { applyEdits, type Finding as CommonFinding, type Severity, type TextEdit } from '@session-migrate/common';

/**
 * One thing the codemod found: @session-migrate/common's Finding, always with a file and a line.
 * Severities (the one scale of common/finding.ts): `high`: the migration is not complete until
 * someone acts (exit 1, PHP_CODEMOD_FAILS_AT); `medium`: review; `info`: nothing to do. `id` values:
 * session-start, files-handler-call-removed, files-handler-call-neutralized, session-ini-kept,
 * session-getter, dynamic-value, dynamic-ini-option, other-save-handler, other-save-path,
 * custom-handler-registered, custom-handler-replaced, generated-handler-registration, framework-config, session-start-unreached, codemod-target-locked,
 * session-callable (a first-class callable `session_start(...)`, `ini_set(...)`: a Closure, no call),
 * pool-save-path-locked,
 * include-unresolved, parse-error, lint-failed, symlink-skipped, overlapping-edit, handler-registered,
 * handler-already-registered, no-session-start, bootstrap-not-reached, handler-bootstrap-missing,
 * insert-impossible, file-changed-meanwhile.
 */
export interface Finding extends CommonFinding {
  /** File path relative to the app directory, `/`-separated. */
  file: string;
  /** 1-based line, 0 when the finding is about the whole file. */
  line: number;
}

export type { Severity };

/** From this severity on, a finding leaves the codemod's work incomplete (CodemodReport.incomplete, exit 1). */
export const PHP_CODEMOD_FAILS_AT: Severity = 'high';

/** Replace bytes [start, end) of the file with `text` (binary string): common's TextEdit. */
export type Edit = TextEdit;
export { applyEdits };

/** An include/require in source order; `candidates` are absolute paths tried in order, null when not static. */
export interface IncludeEvent {
  kind: 'include';
  offset: number;
  line: number;
  once: boolean;
  candidates: string[] | null;
  /** Source text of the path expression (binary string), for reports and the handler check. */
  raw: string;
}

/** session_start() or session_set_save_handler() (a custom handler), in source order. */
export interface SessionStartEvent {
  kind: 'session_start';
  offset: number;
  line: number;
}

/**
 * session_set_save_handler(). `needsBootstrap`: the call registers the generated handler through
 * EncryptedRedisSessionHandler::registeredHandler() (rewritten now or earlier), so the bootstrap must
 * be required before it runs, as before session_start(); otherwise it is a custom handler left alone.
 */
export interface CustomHandlerEvent {
  kind: 'custom_handler';
  offset: number;
  line: number;
  needsBootstrap?: boolean;
}

export type FileEvent = IncludeEvent | SessionStartEvent | CustomHandlerEvent;

/** Where a `require_once` of the handler bootstrap goes in this file, and how to write it. */
export interface InsertPoint {
  offset: number;
  /**
   * 'line' = own line after the open tag; 'after-statement' = EOL first (after declare/namespace);
   * 'inline' = after an open tag that ends in a blank, code follows on the line; 'inline-nospace' =
   * after `<?` with no blank in the tag (short open tag); 'php-block' = `<?php ... ?>` before HTML.
   */
  style: 'line' | 'after-statement' | 'inline' | 'inline-nospace' | 'php-block';
  /** Indentation of the inserted line ('after-statement' inside `namespace X {`: that of the block's first line). */
  indent?: string;
}

export interface FileAnalysis {
  /** Relative path, `/`-separated. */
  file: string;
  findings: Finding[];
  edits: Edit[];
  events: FileEvent[];
  /** Only declarations at the top level (classes, functions, use, const): not an entry point. */
  declarationsOnly: boolean;
  insertPoint: InsertPoint | null;
  /** Reason when insertPoint is null. */
  insertProblem?: string;
  eol: '\n' | '\r\n';
}

/** Inputs of analyzeFile. */
export interface AnalyzeInput {
  /** File text as a binary string (one char per byte). */
  text: string;
  /** Absolute path of the file (for __DIR__ / __FILE__). */
  absPath: string;
  /** Absolute app directory (relative includes also try it, as the entry script's directory). */
  rootDir: string;
  /** Relative path for reports. */
  rel: string;
  parse?: ParseOptions;
  /**
   * Opt-in rewrite of custom handler registrations: the PHP namespace of the generated
   * EncryptedRedisSessionHandler class (e.g. `SessionMigrate`). Absent: they are only reported.
   */
  replaceCustomHandler?: { namespace: string };
}

/** Recognises a registration of the generated handler (as --replace-custom-handler writes it). */
const GENERATED_REGISTRATION = /EncryptedRedisSessionHandler\s*::\s*registeredHandler\s*\(\s*\)/i;

const FILES_SWITCH_KEYS = new Set(['session.save_handler', 'session.save_path']);
const REPLACE_COMMENT = '/* session-migrate: no longer switches the session storage */ ';

/**
 * Analyses one PHP file.
 * @throws PhpSyntaxError (from parsePhp) when the file does not parse; the caller reports it as skipped.
 */
export function analyzeFile(input: AnalyzeInput): FileAnalysis {
  const { text, rel } = input;
  const { ast, tokens } = parsePhp(text, rel, input.parse);
  const findings: Finding[] = [];
  const edits: Edit[] = [];
  const events: FileEvent[] = [];
  const dir = posix.dirname(input.absPath);
  const at = (offset: number) => lineOf(text, offset);
  const find = (offset: number, id: string, severity: Severity, message: string, fix?: string) => {
    findings.push({ file: rel, line: offset < 0 ? 0 : at(offset), id, severity, message, ...(fix !== undefined ? { fix } : {}) });
  };

  walk(ast, null, (node, ctx) => {
    if (node.kind === 'include') {
      const target = node.target as PhpNode;
      const start = node.loc?.start.offset ?? 0;
      const value = evalPath(target, input.absPath);
      const tStart = target.loc?.start.offset ?? start;
      const tEnd = exprEndOf(target, tokens);
      const raw = text.slice(tStart, tEnd);
      let candidates: string[] | null = null;
      if (value !== null) {
        candidates = value.startsWith('/')
          ? [posix.normalize(value)]
          : [...new Set([posix.join(dir, value), posix.join(input.rootDir, value)])];
      }
      events.push({ kind: 'include', offset: start, line: at(start), once: node.once === true, candidates, raw });
      return;
    }
    if (node.kind === 'call') {
      const name = functionName(node.what as PhpNode);
      if (name === null) return;
      const what = node.what as PhpNode;
      const start = what.loc!.start.offset;
      const end = callEnd(tokens, what.loc!.end.offset);
      const args = node.arguments as PhpNode[];
      if (isFirstClassCallable(args) && SESSION_FUNCTIONS.has(name)) {
        // `session_start(...)` (PHP 8.1 first-class callable syntax) creates a Closure and calls
        // nothing (php-src Zend/tests/first_class_callable_*.phpt); only `session_start(...)()`
        // calls it at once. Anywhere else the Closure runs wherever it is called, which this
        // analysis does not follow.
        const invoked = ctx?.node.kind === 'call' && ctx.node.what === node;
        if (invoked && name === 'session_start') {
          events.push({ kind: 'session_start', offset: start, line: at(start) });
          find(start, 'session-start', 'info', 'session_start(...)() calls the Closure at once: a session start; the handler must be registered before this runs');
          return;
        }
        if (invoked) return;
        find(start, 'session-callable', 'medium',
          name === 'session_start'
            ? 'session_start(...) is a first-class callable: it creates a Closure and starts no session here; a session starts wherever the Closure is called'
            : `${name}(...) is a first-class callable: it creates a Closure and changes nothing here; the change happens wherever the Closure is called`,
          name === 'session_start'
            ? 'make sure the handler bootstrap is required before the Closure is called'
            : 'check what the Closure is called with, and where');
        return;
      }
      switch (name) {
        case 'session_start':
          events.push({ kind: 'session_start', offset: start, line: at(start) });
          find(start, 'session-start', 'info', 'session_start(): the handler must be registered before this runs');
          return;
        case 'ini_set':
        case 'ini_alter': {
          const option = argument(args, 0, 'option', 'varname');
          const optionValue = literal(option);
          if (optionValue === null) {
            if (option !== undefined) {
              find(start, 'dynamic-ini-option', 'medium', `${name}() with a computed option name: could not tell whether it changes session.save_handler or session.save_path`, 'check that it never sets session.save_handler or session.save_path');
            }
            return;
          }
          const key = optionValue.toLowerCase();
          if (!key.startsWith('session.')) return;
          if (!FILES_SWITCH_KEYS.has(key)) {
            find(start, 'session-ini-kept', 'info', `${name}('${key}', ...) kept: it still applies with the encrypted Redis handler`);
            return;
          }
          const value = literal(argument(args, 1, 'value', 'newvalue'));
          if (value === null) {
            const severity: Severity = key === 'session.save_handler' ? 'high' : 'medium';
            find(start, 'dynamic-value', severity, `${name}('${key}', <computed value>) left alone: its value is not known statically`,
              key === 'session.save_handler' ? 'make sure it never switches the save handler back (files, redis, ...) after the bootstrap has registered the encrypted handler' : 'session.save_path is ignored by the encrypted handler; remove the call if it only serves files sessions');
            return;
          }
          if (key === 'session.save_handler' ? otherHandler(start, `${name}('${key}', '${value}')`, value) : otherSavePath(start, `${name}('${key}', ...)`, value)) return;
          // A save_path can carry a Redis password (`tcp://host?auth=...`): never shown in reports.
          const shownValue = key === 'session.save_path' ? '...' : `'${value}'`;
          change(ctx, start, end, `ini_get(${phpString(key)})`, `${name}('${key}', ${shownValue})`);
          return;
        }
        case 'session_save_path':
        case 'session_module_name': {
          if (args.length === 0) {
            find(start, 'session-getter', 'info', `${name}() without arguments only reads the setting: kept`);
            return;
          }
          const value = literal(argument(args, 0, name === 'session_save_path' ? 'path' : 'module'));
          if (value === null) {
            find(start, 'dynamic-value', name === 'session_module_name' ? 'high' : 'medium', `${name}(<computed value>) left alone: its value is not known statically`,
              name === 'session_module_name' ? 'make sure it never switches the save handler back after the bootstrap has registered the encrypted handler' : 'the encrypted handler ignores session.save_path; remove the call if it only serves files sessions');
            return;
          }
          if (name === 'session_module_name' ? otherHandler(start, `${name}('${value}')`, value) : otherSavePath(start, `${name}(...)`, value)) return;
          change(ctx, start, end, `${name}()`, name === 'session_save_path' ? `${name}(...)` : `${name}('${value}')`);
          return;
        }
        case 'session_set_save_handler': {
          const callable = args.length >= 6;
          const argsText = text.slice(what.loc!.end.offset, end);
          if (args.length >= 1 && args.length <= 2 && GENERATED_REGISTRATION.test(argsText)) {
            events.push({ kind: 'custom_handler', offset: start, line: at(start), needsBootstrap: true });
            find(start, 'generated-handler-registration', 'info', 'session_set_save_handler() registers the handler of the generated bootstrap (EncryptedRedisSessionHandler::registeredHandler()): kept; the bootstrap must be required before it');
            return;
          }
          const plain = args.every((a) => a.kind !== 'namedargument' && a.kind !== 'variadic');
          if (input.replaceCustomHandler !== undefined && plain && ((args.length >= 6 && args.length <= 9) || args.length === 1 || args.length === 2)) {
            // Only the argument list changes: the name (its case, a leading `\`) and whatever uses the
            // call's bool result stay.
            let p = tokenAt(tokens, what.loc!.end.offset);
            while (p >= 0 && p < tokens.length && isTrivia(tokens[p]!)) p++;
            const open = tokens[p]!.start;
            const expression = `\\${input.replaceCustomHandler.namespace}\\EncryptedRedisSessionHandler::registeredHandler()`;
            edits.push({ start: open, end, text: `(${expression}, true)` });
            events.push({ kind: 'custom_handler', offset: start, line: at(start), needsBootstrap: true });
            find(start, 'custom-handler-replaced', 'medium',
              `session_set_save_handler() with ${callable ? 'six callables (deprecated as of PHP 8.4)' : 'a handler object'} replaced by the encrypted Redis handler of the generated bootstrap (--replace-custom-handler): sessions stored by the custom handler are NOT migrated, users with one start a new session`,
              `the custom handler's ${callable ? 'callback functions are' : 'class is'} no longer registered here; remove ${callable ? 'them' : 'it'} once no other code uses ${callable ? 'them' : 'it'}`);
            return;
          }
          events.push({ kind: 'custom_handler', offset: start, line: at(start) });
          find(start, 'custom-handler-registered', 'high',
            callable
              ? 'session_set_save_handler() with callables registers a custom handler (the callable form is deprecated as of PHP 8.4): left alone; if it runs after the bootstrap it replaces the encrypted Redis handler'
              : 'session_set_save_handler() registers a custom handler: left alone; if it runs after the bootstrap it replaces the encrypted Redis handler',
            callable
              ? 'remove this registration (the bootstrap registers the encrypted handler) or run again with --replace-custom-handler, or if this handler must stay, register it as an object: session_set_save_handler(new <Handler>(...), true)'
              : 'remove this registration, or run again with --replace-custom-handler, if the encrypted Redis handler is to store these sessions');
          return;
        }
        default:
          return;
      }
    }
    if (node.kind === 'assign') frameworkAssign(node);
    if (node.kind === 'entry') laravelEntry(node);
    if (node.kind === 'propertystatement') ci4Property(node);
  });

  /**
   * A save handler other than files (redis, memcached, ...): sessions stored there are not what
   * session-migrate migrates (it reads files), so switching them away would log users out. Reported
   * as an error and left alone. @returns true when reported.
   */
  function otherHandler(start: number, shown: string, value: string): boolean {
    if (value.toLowerCase() === 'files') return false;
    find(start, 'other-save-handler', 'high',
      `${shown} left alone: it selects a save handler other than files, whose sessions session-migrate does not migrate; if it runs after the bootstrap it replaces the encrypted Redis handler`,
      'decide whether this storage is to be replaced by the encrypted Redis handler (its sessions would be lost) and remove the call by hand if so');
    return true;
  }

  /** A save_path for another handler (a URL such as `tcp://...`): left alone with a warning. @returns true when reported. */
  function otherSavePath(start: number, shown: string, value: string): boolean {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !/^(tcp|unix|tls):/i.test(value)) return false;
    find(start, 'other-save-path', 'medium',
      `${shown} left alone: the value is a URL for another save handler, not a files directory`,
      'remove it together with the save handler it belongs to, if that handler is replaced');
    return true;
  }

  /**
   * Removes or neutralizes the call [start, end) whose parent context is `ctx`. `getter` is the
   * replacement when the call's value is used; `shown` names the call in the finding.
   */
  function change(ctx: WalkContext | null, start: number, end: number, getter: string, shown: string): void {
    // The call is the whole statement (possibly behind `@`): remove the statement.
    let stmtCtx = ctx;
    if (stmtCtx?.node.kind === 'silent') stmtCtx = stmtCtx.parent;
    const stmt = stmtCtx?.node;
    if (stmt?.kind === 'expressionstatement' && stmtCtx !== null) {
      const stmtStart = stmt.loc!.start.offset;
      const { end: stmtEndOffset } = statementEnd(tokens, end);
      if (stmtCtx.inList) {
        edits.push(removal(text, tokens, stmtStart, stmtEndOffset));
        find(start, 'files-handler-call-removed', 'info', `removed ${shown}: it would take sessions off the encrypted Redis handler`);
      } else {
        edits.push({ start: stmtStart, end: stmtEndOffset, text: '{}' });
        find(start, 'files-handler-call-removed', 'info', `replaced ${shown}, the only statement of its block, with {}: it would take sessions off the encrypted Redis handler`);
      }
      return;
    }
    edits.push({ start, end, text: REPLACE_COMMENT + getter });
    find(start, 'files-handler-call-neutralized', 'info', `replaced ${shown}, whose value is used, with ${getter}: it returns the current value as a string, as the call did on success`);
  }

  function frameworkAssign(node: PhpNode): void {
    // CodeIgniter 3: $config['sess_driver'] = 'files';
    const left = node.left as PhpNode;
    if (left.kind !== 'offsetlookup') return;
    const what = left.what as PhpNode;
    const offset = literal(left.offset as PhpNode | undefined);
    if (what.kind !== 'variable' || what.name !== 'config' || offset !== 'sess_driver') return;
    const value = literal(node.right as PhpNode);
    const start = node.loc!.start.offset;
    find(start, 'framework-config', value === 'files' ? 'medium' : 'info',
      `CodeIgniter 3 sess_driver is ${value === null ? 'computed' : `'${value}'`}: CodeIgniter registers its own session handler class, which replaces the encrypted Redis handler`,
      "CodeIgniter's session library calls session_set_save_handler() itself; keep the driver's storage or move it to a driver you have reviewed, the codemod does not change it");
  }

  function laravelEntry(node: PhpNode): void {
    if (!/(^|\/)config\/session\.php$/.test(rel)) return;
    if (literal(node.key as PhpNode | undefined) !== 'driver') return;
    const valueNode = node.value as PhpNode;
    let value = literal(valueNode);
    if (value === null && valueNode.kind === 'call' && functionName(valueNode.what as PhpNode) === 'env') {
      value = literal(argument(valueNode.arguments as PhpNode[], 1, 'default'));
    }
    const start = node.loc!.start.offset;
    find(start, 'framework-config', value === 'file' ? 'medium' : 'info',
      `Laravel session driver ${value === null ? '(computed)' : `'${value}'`}: Laravel stores sessions through its own driver and never calls PHP's save handler, so the encrypted Redis handler does not apply`,
      "Laravel sessions are not PHP native sessions: migrate them with Laravel's own session configuration (SESSION_DRIVER), the codemod does not change it");
  }

  function ci4Property(node: PhpNode): void {
    for (const prop of (node.properties as PhpNode[] | undefined) ?? []) {
      const propName = identifierName(prop.name);
      const isDriver = propName === 'sessionDriver' || (propName === 'driver' && /(^|\/)Config\/Session\.php$/.test(rel));
      if (!isDriver || prop.value === null || prop.value === undefined) continue;
      const start = prop.loc!.start.offset;
      const valueText = text.slice(start, (prop.loc!.end.offset));
      if (!/FileHandler/.test(valueText)) continue;
      find(start, 'framework-config', 'medium',
        'CodeIgniter 4 session driver FileHandler: CodeIgniter registers its own handler class, which replaces the encrypted Redis handler',
        "CodeIgniter's Session class calls session_set_save_handler() itself; the codemod does not change it");
    }
  }

  edits.sort((a, b) => a.start - b.start);
  for (let i = 1; i < edits.length; i++) {
    if (edits[i]!.start < edits[i - 1]!.end) {
      find(edits[i]!.start, 'overlapping-edit', 'medium', 'two changes overlap here: the second was not made');
      edits.splice(i, 1);
      i--;
    }
  }
  events.sort((a, b) => a.offset - b.offset);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const ip = insertPoint(ast, tokens);
  return {
    file: rel,
    findings,
    edits,
    events,
    declarationsOnly: declarationsOnly(ast),
    insertPoint: typeof ip === 'string' ? null : ip,
    ...(typeof ip === 'string' ? { insertProblem: ip } : {}),
    eol,
  };
}

/**
 * Findings for a Symfony YAML configuration file (config/packages/*.yaml): `handler_id` of
 * framework.session. Line-based: only `handler_id:` lines are read.
 */
export function analyzeSymfonyYaml(text: string, rel: string): Finding[] {
  const findings: Finding[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const m = /^\s*handler_id\s*:\s*(.*?)\s*(#.*)?$/.exec(line.replace(/\r$/, ''));
    if (m === null) return;
    const value = (m[1] ?? '').replace(/^['"]|['"]$/g, '');
    const usesNative = value === '~' || value === 'null' || value === '';
    findings.push({
      file: rel,
      line: i + 1,
      id: 'framework-config',
      severity: usesNative ? 'info' : 'medium',
      message: usesNative
        ? "Symfony framework.session.handler_id is null: Symfony uses PHP's registered save handler, so the encrypted Redis handler applies"
        : `Symfony framework.session.handler_id is '${value}': Symfony registers that handler itself, which replaces the encrypted Redis handler`,
      ...(usesNative ? {} : { fix: "set framework.session.handler_id: null to use the handler registered by session-migrate's bootstrap (review first)" }),
    });
  });
  return findings;
}


/** A PHP single-quoted string literal: only `\` and `'` need escaping there. */
export function phpString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The removal of a statement [start, end): with its line when nothing else is on it (a trailing
 * `//` or `#` comment on that line goes with it), else the statement and the blanks after it.
 */
function removal(text: string, tokens: readonly Token[], start: number, end: number): Edit {
  let stop = end;
  let i = tokenAt(tokens, end);
  let comment = false;
  while (i >= 0 && i < tokens.length) {
    const t = tokens[i]!;
    if (t.type === 'T_WHITESPACE' && !t.text.includes('\n')) { stop = t.end; i++; continue; }
    if (t.type === 'T_COMMENT' && /^(\/\/|#(?!\[))/.test(t.text)) { stop = t.end; comment = true; }
    break;
  }
  let lineStart = start;
  while (lineStart > 0 && (text[lineStart - 1] === ' ' || text[lineStart - 1] === '\t')) lineStart--;
  const atLineStart = lineStart === 0 || text[lineStart - 1] === '\n';
  // A single-line comment token ends with its newline; otherwise look for the newline after the blanks.
  let lineEnd = -1;
  if (comment && text[stop - 1] === '\n') lineEnd = stop;
  else if (text.startsWith('\r\n', stop)) lineEnd = stop + 2;
  else if (text[stop] === '\n') lineEnd = stop + 1;
  else if (stop === text.length) lineEnd = stop;
  if (atLineStart && lineEnd >= 0) {
    // Never take the newline an open tag owns, nor leave `?>` glued to the previous line's code.
    const prev = tokenAt(tokens, lineStart - 1);
    if (lineStart === 0 || prev < 0 || tokens[prev]!.type !== 'T_OPEN_TAG' || tokens[prev]!.end === lineStart) {
      return { start: lineStart, end: lineEnd, text: '' };
    }
  }
  // Code before it on the line: also take the blanks between that code and the statement when
  // nothing follows it on the line (unless the blanks belong to the open tag `<?php `).
  let from = start;
  if (lineEnd >= 0 && lineStart < start) {
    const blank = tokenAt(tokens, lineStart);
    if (blank >= 0 && tokens[blank]!.type === 'T_WHITESPACE') from = lineStart;
  }
  if (comment && text[stop - 1] === '\n') {
    // Keep the newline that the comment token carried.
    return { start: from, end: stop, text: text.endsWith('\r\n', stop) ? '\r\n' : '\n' };
  }
  return { start: from, end: stop, text: '' };
}

interface WalkContext {
  node: PhpNode;
  parent: WalkContext | null;
  /** The node was an element of an array (a statement list), not a single child. */
  inList: boolean;
}

function walk(node: PhpNode, parent: WalkContext | null, visit: (node: PhpNode, ctx: WalkContext | null) => void, inList = false): void {
  const ctx: WalkContext = { node, parent, inList };
  visit(node, parent);
  for (const key of Object.keys(node)) {
    if (key === 'loc' || key === 'leadingComments' || key === 'trailingComments') continue;
    const value = node[key];
    if (Array.isArray(value)) {
      for (const child of value) if (isNode(child)) walk(child, ctx, visit, true);
    } else if (isNode(value)) {
      walk(value, ctx, visit, false);
    }
  }
}

function isNode(value: unknown): value is PhpNode {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}

/** The functions whose calls the analysis reads (for the first-class callable check). */
const SESSION_FUNCTIONS = new Set(['session_start', 'ini_set', 'ini_alter', 'session_save_path', 'session_module_name', 'session_set_save_handler']);

/** `f(...)`: PHP 8.1 first-class callable syntax (php-parser: a single `variadicplaceholder` argument). */
export function isFirstClassCallable(args: readonly PhpNode[]): boolean {
  return args.length === 1 && args[0]!.kind === 'variadicplaceholder';
}

/** Lower-cased global function name of a callee, or null when it is not a plain (global) name. */
function functionName(what: PhpNode): string | null {
  if (what.kind !== 'name' || typeof what.name !== 'string') return null;
  let name = what.name;
  if (name.startsWith('\\')) name = name.slice(1);
  if (name.includes('\\')) return null;
  return name.toLowerCase();
}

function identifierName(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isNode(value) && typeof value.name === 'string') return value.name;
  return null;
}

/** Positional argument `index`, or the named argument with one of `names`; undefined when absent. */
function argument(args: readonly PhpNode[], index: number, ...names: string[]): PhpNode | undefined {
  const named = args.find((a) => a.kind === 'namedargument' && names.includes(String(a.name)));
  if (named !== undefined) return named.value as PhpNode;
  if (args.some((a, i) => i <= index && a.kind === 'variadic')) return { kind: 'variadic' };
  const positional = args[index];
  return positional !== undefined && positional.kind !== 'namedargument' ? positional : undefined;
}

/** The value of a literal string or number node; null when the node is computed or absent. */
function literal(node: PhpNode | undefined): string | null {
  if (node === undefined) return null;
  if ((node.kind === 'string' || node.kind === 'nowdoc') && typeof node.value === 'string') return node.value;
  if (node.kind === 'number' && (typeof node.value === 'string' || typeof node.value === 'number')) return String(node.value);
  return null;
}

/**
 * Evaluates a static include path (static-value.ts without symbols: string literals, `__DIR__`,
 * `__FILE__`, `dirname(X[, levels])`, `DIRECTORY_SEPARATOR`, `.` concatenation). Constants and
 * variables give null. The result, a binary string, is decoded as UTF-8 for the path.
 */
function evalPath(node: PhpNode, absPath: string): string | null {
  const v = evaluateStatic(node, globalScope(Buffer.from(absPath, 'utf8').toString('latin1')));
  return typeof v === 'string' ? Buffer.from(v, 'latin1').toString('utf8') : null;
}

/** End offset of an expression; calls end at their `)` (php-parser may include a `;` in loc.end). */
function exprEndOf(node: PhpNode, tokens: readonly Token[]): number {
  let end = node.loc?.end.offset ?? 0;
  while (end > 0) {
    const i = tokenAt(tokens, end - 1);
    const t = i >= 0 ? tokens[i]! : undefined;
    if (t !== undefined && (isTrivia(t) || t.type === ';')) end = t.start;
    else break;
  }
  return end;
}

const DECLARATION_KINDS = new Set(['class', 'interface', 'trait', 'enum', 'function', 'usegroup', 'useitem', 'constantstatement', 'noop', 'declare']);

function declarationsOnly(ast: PhpNode): boolean {
  const check = (nodes: PhpNode[]): boolean => nodes.every((n) => {
    if (n.kind === 'namespace') return check(n.children as PhpNode[]);
    if (n.kind === 'inline') return /^\s*$/.test(String(n.raw ?? n.value ?? ''));
    if (n.kind === 'declare') return ((n.children as PhpNode[] | undefined) ?? []).length === 0 || check(n.children as PhpNode[]);
    return DECLARATION_KINDS.has(n.kind);
  });
  return check(ast.children as PhpNode[]);
}

/** Where the handler require goes; a string explains why it cannot go anywhere. */
function insertPoint(ast: PhpNode, tokens: readonly Token[]): InsertPoint | string {
  const first = tokens[0];
  if (first === undefined) return 'the file is empty';
  let openIndex = 0;
  if (first.type === 'T_INLINE_HTML') {
    // The CLI skips a `#!` line at byte 0 (php_execute_script / CG(skip_shebang)): nothing may go
    // before it, or the script prints it and `./script.php` stops working.
    const shebang = /^#![^\n]*\n/.exec(first.text)?.[0];
    if (first.text === '\xef\xbb\xbf' && tokens[1]?.type === 'T_OPEN_TAG') openIndex = 1;
    else if (shebang !== undefined && shebang.length === first.text.length && tokens[1]?.type === 'T_OPEN_TAG') openIndex = 1;
    else if (shebang !== undefined) return { offset: shebang.length, style: 'php-block' };
    else return { offset: first.text.startsWith('\xef\xbb\xbf') ? 3 : 0, style: 'php-block' };
  }
  const open = tokens[openIndex]!;
  if (open.type === 'T_OPEN_TAG_WITH_ECHO') return { offset: open.start, style: 'php-block' };
  if (open.type !== 'T_OPEN_TAG') return 'the file does not start with PHP code';
  let point: InsertPoint = { offset: open.end, style: /\n$/.test(open.text) ? 'line' : /\s$/.test(open.text) ? 'inline' : 'inline-nospace' };
  for (const stmt of ast.children as PhpNode[]) {
    // The `#!` line before the open tag is an inline node of its own: not a statement to stop at.
    if (stmt.kind === 'inline' && (stmt.loc?.end.offset ?? Infinity) <= open.start) continue;
    if (stmt.kind === 'declare' && ((stmt.children as PhpNode[] | undefined) ?? []).length === 0) {
      const end = terminator(tokens, stmt.loc!.start.offset, [';']);
      if (end === null) return 'a declare() statement without `;`';
      point = { offset: end, style: 'after-statement' };
      continue;
    }
    if (stmt.kind === 'namespace') {
      const end = terminator(tokens, stmt.loc!.start.offset, [';', '{']);
      if (end === null) return 'a namespace statement without `;` or `{`';
      point = { offset: end, style: 'after-statement' };
      const next = tokens[tokenAt(tokens, end)];
      const indent = next?.type === 'T_WHITESPACE' ? /\n([ \t]*)$/.exec(next.text)?.[1] : undefined;
      if (indent !== undefined && indent !== '') point.indent = indent;
    }
    break;
  }
  return point;
}

/** Offset just past the first of `types` at or after `from`, skipping nested parentheses. */
function terminator(tokens: readonly Token[], from: number, types: string[]): number | null {
  let depth = 0;
  for (let i = Math.max(0, tokenAt(tokens, from)); i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === '(') depth++;
    else if (t.type === ')') depth--;
    else if (depth === 0 && types.includes(t.type)) return t.end;
  }
  return null;
}

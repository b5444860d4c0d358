/**
 * Rule `files-handler-call`: calls that would put PHP back on the files handler, or set a files
 * save_path, after the bootstrap registered the encrypted handler: `ini_set()`/`ini_alter()` of
 * `session.save_handler` or `session.save_path`, `session_save_path('...')`,
 * `session_module_name('...')`.
 *
 * With literal arguments such a call is removed when it is a statement of its own (with an `@` or
 * not; statement-removal.ts); as the only body of a brace-less if/else/loop it becomes `{}`; when its
 * value is used it is replaced by the matching getter, which returns a string like a successful call
 * (`ini_get('session.save_handler')`, `session_save_path()`, `session_module_name()`), behind a
 * comment; the getter is written fully qualified (`\\ini_get(...)`) inside a namespace, so that a function
 * of the same name in the app's namespace is never called instead (function-names.ts globalCallName).
 * Reported and left alone: computed values and option names, another save handler
 * (`'redis'`, `'memcached'`: its sessions are not migrated) and a URL save_path that belongs to one.
 * Other `ini_set('session.*')` calls and the getters are kept (info).
 */
import type { Severity } from '@session-migrate/common';
import { argument, globalCallName, literal, phpString, type WalkContext } from '../php-ast.ts';
import { statementEnd } from '../source.ts';
import { removal } from '../statement-removal.ts';
import type { FileContext, FunctionCall, Rule } from './rule.ts';

const FILES_SWITCH_KEYS = new Set(['session.save_handler', 'session.save_path']);
const REPLACE_COMMENT = '/* session-migrate: no longer switches the session storage */ ';

export const filesHandlerCall: Rule = {
  name: 'files-handler-call',
  description:
    'ini_set() of session.save_handler/save_path, session_save_path(), session_module_name() with literal files values: removed (or, when the value is used, replaced by the getter)',
  findings: [
    'files-handler-call-removed',
    'files-handler-call-neutralized',
    'session-ini-kept',
    'session-getter',
    'dynamic-value',
    'dynamic-ini-option',
    'other-save-handler',
    'other-save-path',
  ],
  functions: ['ini_set', 'ini_alter', 'session_save_path', 'session_module_name'],
  visitCall(call, file) {
    if (call.name === 'ini_set' || call.name === 'ini_alter') iniSet(call, file);
    else sessionSetter(call, file);
    return true;
  },
};

/** `ini_set()` / `ini_alter()`. */
function iniSet(call: FunctionCall, file: FileContext): void {
  const { name, args, start, end } = call;
  const option = argument(args, 0, 'option', 'varname');
  const optionValue = literal(option);
  if (optionValue === null) {
    if (option !== undefined) {
      file.find(
        start,
        'dynamic-ini-option',
        'medium',
        `${name}() with a computed option name: could not tell whether it changes session.save_handler or session.save_path`,
        'check that it never sets session.save_handler or session.save_path',
      );
    }
    return;
  }
  const key = optionValue.toLowerCase();
  if (!key.startsWith('session.')) return;
  if (!FILES_SWITCH_KEYS.has(key)) {
    file.find(start, 'session-ini-kept', 'info', `${name}('${key}', ...) kept: it still applies with the encrypted Redis handler`);
    return;
  }
  const value = literal(argument(args, 1, 'value', 'newvalue'));
  if (value === null) {
    const severity: Severity = key === 'session.save_handler' ? 'high' : 'medium';
    file.find(
      start,
      'dynamic-value',
      severity,
      `${name}('${key}', <computed value>) left alone: its value is not known statically`,
      key === 'session.save_handler'
        ? 'make sure it never switches the save handler back (files, redis, ...) after the bootstrap has registered the encrypted handler'
        : 'session.save_path is ignored by the encrypted handler; remove the call if it only serves files sessions',
    );
    return;
  }
  if (
    key === 'session.save_handler'
      ? otherHandler(file, start, `${name}('${key}', '${value}')`, value)
      : otherSavePath(file, start, `${name}('${key}', ...)`, value)
  )
    return;
  // A save_path can carry a Redis password (`tcp://host?auth=...`): never shown in reports.
  const shownValue = key === 'session.save_path' ? '...' : `'${value}'`;
  change(file, call.parent, start, end, `${globalCallName('ini_get', call.parent)}(${phpString(key)})`, `${name}('${key}', ${shownValue})`);
}

/** `session_save_path()` / `session_module_name()`. */
function sessionSetter(call: FunctionCall, file: FileContext): void {
  const { name, args, start, end } = call;
  if (args.length === 0) {
    file.find(start, 'session-getter', 'info', `${name}() without arguments only reads the setting: kept`);
    return;
  }
  const value = literal(argument(args, 0, name === 'session_save_path' ? 'path' : 'module'));
  if (value === null) {
    file.find(
      start,
      'dynamic-value',
      name === 'session_module_name' ? 'high' : 'medium',
      `${name}(<computed value>) left alone: its value is not known statically`,
      name === 'session_module_name'
        ? 'make sure it never switches the save handler back after the bootstrap has registered the encrypted handler'
        : 'the encrypted handler ignores session.save_path; remove the call if it only serves files sessions',
    );
    return;
  }
  if (
    name === 'session_module_name'
      ? otherHandler(file, start, `${name}('${value}')`, value)
      : otherSavePath(file, start, `${name}(...)`, value)
  )
    return;
  change(
    file,
    call.parent,
    start,
    end,
    `${globalCallName(name, call.parent)}()`,
    name === 'session_save_path' ? `${name}(...)` : `${name}('${value}')`,
  );
}

/**
 * A save handler other than files (redis, memcached, ...): sessions stored there are not what
 * session-migrate migrates (it reads files), so switching them away would log users out. Reported
 * as an error and left alone. @returns true when reported.
 */
function otherHandler(file: FileContext, start: number, shown: string, value: string): boolean {
  if (value.toLowerCase() === 'files') return false;
  file.find(
    start,
    'other-save-handler',
    'high',
    `${shown} left alone: it selects a save handler other than files, whose sessions session-migrate does not migrate; if it runs after the bootstrap it replaces the encrypted Redis handler`,
    'decide whether this storage is to be replaced by the encrypted Redis handler (its sessions would be lost) and remove the call by hand if so',
  );
  return true;
}

/** A save_path for another handler (a URL such as `tcp://...`): left alone with a warning. @returns true when reported. */
function otherSavePath(file: FileContext, start: number, shown: string, value: string): boolean {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !/^(tcp|unix|tls):/i.test(value)) return false;
  file.find(
    start,
    'other-save-path',
    'medium',
    `${shown} left alone: the value is a URL for another save handler, not a files directory`,
    'remove it together with the save handler it belongs to, if that handler is replaced',
  );
  return true;
}

/**
 * Removes or neutralizes the call [start, end) whose parent context is `parent`. `getter` is the
 * replacement when the call's value is used; `shown` names the call in the finding.
 */
function change(file: FileContext, parent: WalkContext | null, start: number, end: number, getter: string, shown: string): void {
  // The call is the whole statement (possibly behind `@`): remove the statement.
  let stmtCtx = parent;
  if (stmtCtx?.node.kind === 'silent') stmtCtx = stmtCtx.parent;
  const stmt = stmtCtx?.node;
  if (stmt?.kind === 'expressionstatement' && stmtCtx !== null) {
    const stmtStart = stmt.loc!.start.offset;
    const { end: stmtEndOffset } = statementEnd(file.tokens, end);
    if (stmtCtx.inList) {
      file.edit(removal(file.text, file.tokens, stmtStart, stmtEndOffset));
      file.find(start, 'files-handler-call-removed', 'info', `removed ${shown}: it would take sessions off the encrypted Redis handler`);
    } else {
      file.edit({ start: stmtStart, end: stmtEndOffset, text: '{}' });
      file.find(
        start,
        'files-handler-call-removed',
        'info',
        `replaced ${shown}, the only statement of its block, with {}: it would take sessions off the encrypted Redis handler`,
      );
    }
    return;
  }
  file.edit({ start, end, text: REPLACE_COMMENT + getter });
  file.find(
    start,
    'files-handler-call-neutralized',
    'info',
    `replaced ${shown}, whose value is used, with ${getter}: it returns the current value as a string, as the call did on success`,
  );
}

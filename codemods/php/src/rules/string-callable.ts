/**
 * Rule `string-callable`: `call_user_func('ini_set', 'session.save_handler', 'files')`,
 * `call_user_func_array('session_save_path', [...])` and `call_user_func('session_start')` call a
 * session function through its name in a string (a PHP callable string, "Callables":
 * https://www.php.net/manual/en/language.types.callable.php). The rules of those functions never see
 * such a call, so without this rule it would switch the storage back to files after the bootstrap, or
 * start a session before it, unreported. Never rewritten (a dynamic call is reported, not guessed);
 * a `session_start` through a string is a session start for the registration plan. Which function and
 * arguments such a call has is read by function-names.ts stringCallableCall (shared with audit --app).
 */
import type { Severity } from '@session-migrate/common';
import { argument, literal } from '../php-ast.ts';
import { stringCallableCall } from '../function-names.ts';
import type { PhpNode } from '../source.ts';
import type { Rule } from './rule.ts';

/** What calling each session function through a string means, when its arguments do not tell otherwise. */
const SEVERITY: Record<string, Severity> = {
  ini_set: 'high',
  ini_alter: 'high',
  session_module_name: 'high',
  session_set_save_handler: 'high',
  session_save_path: 'medium',
};

/** The option an `ini_set` called through a string sets: its first argument, if literal; undefined when not known. */
function iniOption(args: readonly PhpNode[] | null): string | undefined {
  if (args === null) return undefined;
  const first = argument(args, 0, 'option', 'varname');
  const value = first === undefined || first.kind === 'variadic' ? null : literal(first);
  return value === null ? undefined : value.toLowerCase();
}

export const stringCallable: Rule = {
  name: 'string-callable',
  description:
    "call_user_func()/call_user_func_array() of a session function named in a string ('ini_set', 'session_start', ...): reported, never rewritten; a session_start is a session start",
  findings: ['session-string-callable', 'session-start'],
  functions: ['call_user_func', 'call_user_func_array'],
  visitCall(call, file) {
    const target = stringCallableCall(call.name, call.args);
    if (target === null) return true;
    const fn = target.name;
    const { start, name } = call;
    if (fn === 'session_start') {
      file.event({ kind: 'session_start', offset: start, line: file.line(start) });
      file.find(
        start,
        'session-start',
        'info',
        `${name}('session_start'): a session start; the handler must be registered before this runs`,
      );
      return true;
    }
    const severity = SEVERITY[fn];
    if (severity === undefined) return true;
    if (fn === 'ini_set' || fn === 'ini_alter') {
      const option = iniOption(target.args);
      if (option !== undefined && option !== 'session.save_handler' && option !== 'session.save_path') return true;
    }
    file.find(
      start,
      'session-string-callable',
      severity,
      `${name}('${fn}', ...) calls ${fn}() through a string: not rewritten; it may switch sessions back to files (or another handler) after the bootstrap`,
      `call ${fn}() directly (the codemod then handles it), or remove the call if it only serves files sessions`,
    );
    return true;
  },
};

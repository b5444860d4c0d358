/**
 * Rule `first-class-callable`: `session_start(...)`, `ini_set(...)` and the other session functions in
 * PHP 8.1 first-class callable syntax create a Closure and call nothing (php-src
 * Zend/tests/first_class_callable_*.phpt); only `session_start(...)()` calls it at once, which counts
 * as a session start. Anywhere else the Closure runs wherever it is called, which this analysis does
 * not follow: reported (`session-callable`), never changed. It sees a call before the rule of its
 * function does (rules/index.ts lists it first).
 */
import { isFirstClassCallable } from '../php-ast.ts';
import type { Rule } from './rule.ts';

/** The rule for the calls of `functions` (the functions the other rules read). */
export function firstClassCallable(functions: Iterable<string>): Rule {
  return {
    name: 'first-class-callable',
    description: 'a session function as a first-class callable (`session_start(...)`): a Closure, no call; reported',
    findings: ['session-callable', 'session-start'],
    functions: [...functions],
    visitCall(call, file) {
      if (!isFirstClassCallable(call.args)) return false;
      const { name, start } = call;
      const invoked = call.parent?.node.kind === 'call' && call.parent.node.what === call.node;
      if (invoked && name === 'session_start') {
        file.event({ kind: 'session_start', offset: start, line: file.line(start) });
        file.find(
          start,
          'session-start',
          'info',
          'session_start(...)() calls the Closure at once: a session start; the handler must be registered before this runs',
        );
        return true;
      }
      if (invoked) return true;
      file.find(
        start,
        'session-callable',
        'medium',
        name === 'session_start'
          ? 'session_start(...) is a first-class callable: it creates a Closure and starts no session here; a session starts wherever the Closure is called'
          : `${name}(...) is a first-class callable: it creates a Closure and changes nothing here; the change happens wherever the Closure is called`,
        name === 'session_start'
          ? 'make sure the handler bootstrap is required before the Closure is called'
          : 'check what the Closure is called with, and where',
      );
      return true;
    },
  };
}

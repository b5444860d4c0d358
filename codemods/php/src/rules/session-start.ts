/**
 * Rule `session-start`: every `session_start()` call is where a session starts, so the handler
 * bootstrap must be required before it runs. Recorded as an event for the registration plan
 * (plan.ts) and reported as info; nothing changes here.
 */
import type { Rule } from './rule.ts';

export const sessionStart: Rule = {
  name: 'session-start',
  description: 'session_start(): a session starts here, so the handler bootstrap must be required before it runs',
  findings: ['session-start'],
  functions: ['session_start'],
  visitCall(call, file) {
    file.event({ kind: 'session_start', offset: call.start, line: file.line(call.start) });
    file.find(call.start, 'session-start', 'info', 'session_start(): the handler must be registered before this runs');
    return true;
  },
};

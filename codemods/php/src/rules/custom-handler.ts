/**
 * Rule `custom-handler`: `session_set_save_handler()` registers a custom save handler, which replaces
 * the encrypted Redis handler when it runs after the bootstrap. Both forms (six to nine callables,
 * deprecated as of PHP 8.4; an object) are reported and left alone, unless the caller opts in
 * (`replaceCustomHandler`, CLI `--replace-custom-handler`, BUG-20): then the argument list becomes
 * `(\<Namespace>\EncryptedRedisSessionHandler::registeredHandler(), true)`, which registers again the
 * handler the generated bootstrap registered; the custom handler's storage is abandoned (its sessions
 * are not migrated), which the finding says. A registration of the generated handler (as this rule
 * writes it) is recognised and kept. Either of the last two needs the bootstrap first, like
 * session_start() (an event for plan.ts).
 */
import { isTrivia, tokenAt } from '../source.ts';
import type { Rule } from './rule.ts';

/** Recognises a registration of the generated handler (as --replace-custom-handler writes it). */
const GENERATED_REGISTRATION = /EncryptedRedisSessionHandler\s*::\s*registeredHandler\s*\(\s*\)/i;

export const customHandler: Rule = {
  name: 'custom-handler',
  description:
    'session_set_save_handler() of a custom handler: reported, or with --replace-custom-handler rewritten to register the generated handler',
  findings: ['custom-handler-registered', 'custom-handler-replaced', 'generated-handler-registration'],
  functions: ['session_set_save_handler'],
  visitCall(call, file) {
    const { args, what, start, end } = call;
    const { tokens } = file;
    const callable = args.length >= 6;
    const argsText = file.text.slice(what.loc!.end.offset, end);
    if (args.length >= 1 && args.length <= 2 && GENERATED_REGISTRATION.test(argsText)) {
      file.event({ kind: 'custom_handler', offset: start, line: file.line(start), needsBootstrap: true });
      file.find(
        start,
        'generated-handler-registration',
        'info',
        'session_set_save_handler() registers the handler of the generated bootstrap (EncryptedRedisSessionHandler::registeredHandler()): kept; the bootstrap must be required before it',
      );
      return true;
    }
    const plain = args.every((a) => a.kind !== 'namedargument' && a.kind !== 'variadic');
    const replace = file.input.replaceCustomHandler;
    if (replace !== undefined && plain && ((args.length >= 6 && args.length <= 9) || args.length === 1 || args.length === 2)) {
      // Only the argument list changes: the name (its case, a leading `\`) and whatever uses the
      // call's bool result stay.
      let p = tokenAt(tokens, what.loc!.end.offset);
      while (p >= 0 && p < tokens.length && isTrivia(tokens[p]!)) p++;
      const open = tokens[p]!.start;
      const expression = `\\${replace.namespace}\\EncryptedRedisSessionHandler::registeredHandler()`;
      file.edit({ start: open, end, text: `(${expression}, true)` });
      file.event({ kind: 'custom_handler', offset: start, line: file.line(start), needsBootstrap: true });
      file.find(
        start,
        'custom-handler-replaced',
        'medium',
        `session_set_save_handler() with ${callable ? 'six callables (deprecated as of PHP 8.4)' : 'a handler object'} replaced by the encrypted Redis handler of the generated bootstrap (--replace-custom-handler): sessions stored by the custom handler are NOT migrated, users with one start a new session`,
        `the custom handler's ${callable ? 'callback functions are' : 'class is'} no longer registered here; remove ${callable ? 'them' : 'it'} once no other code uses ${callable ? 'them' : 'it'}`,
      );
      return true;
    }
    file.event({ kind: 'custom_handler', offset: start, line: file.line(start) });
    file.find(
      start,
      'custom-handler-registered',
      'high',
      callable
        ? 'session_set_save_handler() with callables registers a custom handler (the callable form is deprecated as of PHP 8.4): left alone; if it runs after the bootstrap it replaces the encrypted Redis handler'
        : 'session_set_save_handler() registers a custom handler: left alone; if it runs after the bootstrap it replaces the encrypted Redis handler',
      callable
        ? 'remove this registration (the bootstrap registers the encrypted handler) or run again with --replace-custom-handler, or if this handler must stay, register it as an object: session_set_save_handler(new <Handler>(...), true)'
        : 'remove this registration, or run again with --replace-custom-handler, if the encrypted Redis handler is to store these sessions',
    );
    return true;
  },
};

/**
 * The rules of the PHP codemod, in the order they see a call: first-class callables first (a
 * `session_start(...)` is no call), then the rule of each function. To add a rule: write
 * rules/<name>.ts (a Rule or a ConfigFileRule, see rule.ts), list it here, and add its fixture folder
 * test/fixtures/<name>/ with at least one case (CONTRIBUTING.md).
 */
import { codeigniter3Config } from './codeigniter3-config.ts';
import { codeigniter4Config } from './codeigniter4-config.ts';
import { customHandler } from './custom-handler.ts';
import { filesHandlerCall } from './files-handler-call.ts';
import { firstClassCallable } from './first-class-callable.ts';
import { laravelConfig } from './laravel-config.ts';
import type { ConfigFileRule, Rule } from './rule.ts';
import { sessionStart } from './session-start.ts';
import { stringCallable } from './string-callable.ts';
import { symfonyConfig } from './symfony-config.ts';

/** The rules that read calls of session functions, each for its own functions. */
const CALL_RULES: readonly Rule[] = [sessionStart, filesHandlerCall, customHandler];

/** The global functions whose calls the rules read (lower case). */
export const SESSION_FUNCTIONS: ReadonlySet<string> = new Set(CALL_RULES.flatMap((r) => r.functions ?? []));

/** Every rule on PHP code, in the order they see a call. */
export const RULES: readonly Rule[] = [
  firstClassCallable(SESSION_FUNCTIONS),
  ...CALL_RULES,
  stringCallable,
  laravelConfig,
  codeigniter3Config,
  codeigniter4Config,
];

/** Every rule on configuration files. */
export const CONFIG_FILE_RULES: readonly ConfigFileRule[] = [symfonyConfig];

export { analyzeSymfonyYaml } from './symfony-config.ts';
export type { ConfigFileRule, FileContext, FunctionCall, Rule } from './rule.ts';

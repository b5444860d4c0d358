/**
 * `session-migrate codemod php DIR`: wires the generated handler into a PHP application (issue 6).
 * Only wiring: the work is in @session-migrate/codemod-php (codemods/php).
 */
import type { Argv, CommandModule } from 'yargs';
import { finishCodemod, printable, terminalSafe } from '@session-migrate/common';
// Types only: the codemod (php-parser, ~0.3 s to load) is imported when `codemod php` runs, not on every start.
import type { CodemodReport } from '@session-migrate/codemod-php';

export interface CodemodPhpArgs {
  dir: string;
  bootstrap?: string;
  handlerBootstrap?: string;
  dryRun: boolean;
  json: boolean;
  shortOpenTag: boolean;
  fpmPool?: string[];
  /** Rewrite custom session_set_save_handler() registrations to the generated handler (opt-in). */
  replaceCustomHandler?: boolean;
  handlerNamespace?: string;
}

/**
 * Runs the codemod and prints the diff (with --dry-run) and a report, or the report as JSON.
 * @returns 0 when the migration of the code is complete, 1 when something is left to a person (a
 *   high or medium finding or a skipped file): the codemods' one rule, finishCodemod
 *   (@session-migrate/common codemod-outcome.ts).
 * @throws CodemodInputError, a UserFacingError (exit 2), on bad input: DIR not a directory, --bootstrap
 *   outside DIR, a file to change that cannot be rewritten (with --dry-run too, after the diff and report).
 */
export async function codemodPhpCommand(args: CodemodPhpArgs, print: (line: string) => void): Promise<number> {
  const { runCodemod } = await import('@session-migrate/codemod-php');
  // Bad input throws CodemodInputError, a UserFacingError (exit 2) that main.ts prints as one line.
  const report: CodemodReport = runCodemod({
    dir: args.dir,
    dryRun: args.dryRun,
    shortOpenTag: args.shortOpenTag,
    ...(args.bootstrap !== undefined ? { bootstrap: args.bootstrap } : {}),
    ...(args.handlerBootstrap !== undefined ? { handlerBootstrap: args.handlerBootstrap } : {}),
    ...(args.fpmPool !== undefined ? { fpmPools: args.fpmPool } : {}),
    ...(args.replaceCustomHandler === true ? { replaceCustomHandler: true } : {}),
    ...(args.handlerNamespace !== undefined ? { handlerNamespace: args.handlerNamespace } : {}),
  });
  if (args.json) {
    print(
      JSON.stringify(
        {
          ...report,
          changes: report.changes.map((c) => ({ file: c.file, written: c.written, diff: c.diff })),
        },
        null,
        2,
      ),
    );
    return finishCodemod(report, null);
  }
  if (args.dryRun) for (const c of report.changes) print(terminalSafe(c.diff).replace(/\n$/, ''));
  const verb = args.dryRun ? 'would change' : 'changed';
  print(
    `${verb} ${report.changes.length} file(s)${report.changes.length > 0 ? ': ' + report.changes.map((c) => printable(c.file)).join(', ') : ''}`,
  );
  print(`handler bootstrap ${printable(report.handlerBootstrap)}`);
  print(
    report.registeredIn.length > 0
      ? `handler registered in: ${report.registeredIn.map(printable).join(', ')}`
      : 'handler registration: no new require_once needed',
  );
  print(
    `entry points that start a session: ${report.sessionEntryPoints.length > 0 ? report.sessionEntryPoints.map(printable).join(', ') : 'none'}`,
  );
  for (const s of report.skipped) print(`skipped ${printable(s.file)}: ${printable(s.reason)}`);
  // Findings that can be many in a big app and need no action are counted, not listed (--json lists them).
  const counted: Record<string, string> = {
    'session-start': 'session_start() calls',
    'include-unresolved': 'includes with a computed path (not followed)',
    'session-getter': 'session getters (kept)',
  };
  for (const [id, label] of Object.entries(counted)) {
    const n = report.findings.filter((f) => f.id === id).length;
    if (n > 0 || id === 'session-start') print(`${label}: ${n}`);
  }
  for (const f of report.findings) {
    if (f.id in counted || f.id === 'parse-error' || f.id === 'lint-failed') continue;
    const where = f.line > 0 ? `${f.file}:${f.line}` : f.file;
    print(`${f.severity}: ${printable(where)}: ${f.id}: ${printable(f.message)}`);
    if (f.fix !== undefined) print(`  suggestion: ${printable(f.fix)}`);
  }
  return finishCodemod(report, print);
}

/** The parsed option values of `codemod php` (yargs names where they differ from CodemodPhpArgs). */
export type CodemodPhpOptionArgs = Omit<CodemodPhpArgs, 'fpmPool'> & {
  'dry-run': boolean;
  'handler-bootstrap'?: string;
  'short-open-tag': boolean;
  'fpm-pool'?: string[];
  'replace-custom-handler': boolean;
  'handler-namespace'?: string;
};

/** Adds the positional DIR and the options of `codemod php` to a yargs command. */
function codemodPhpOptions<T>(y: Argv<T>) {
  return y
    .positional('dir', { type: 'string', demandOption: true, describe: 'application directory' })
    .option('bootstrap', { type: 'string', describe: 'PHP file that gets the require_once (default: detected from the include graph)' })
    .option('handler-bootstrap', {
      type: 'string',
      describe: 'path of the generated session-migrate-bootstrap.php (default DIR/session-migrate/session-migrate-bootstrap.php)',
    })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print a unified diff, write nothing' })
    .option('short-open-tag', { type: 'boolean', default: false, describe: 'the app runs with short_open_tag=On (<? opens PHP)' })
    .option('fpm-pool', {
      type: 'string',
      array: true,
      describe: 'PHP-FPM pool file(s) to check for php_admin_value pins of session keys',
    })
    .option('replace-custom-handler', {
      type: 'boolean',
      default: false,
      describe: 'rewrite session_set_save_handler() of a custom handler to register the generated one (its sessions are NOT migrated)',
    })
    .option('handler-namespace', {
      type: 'string',
      describe: 'PHP namespace of the generated handler class (default: read from --handler-bootstrap, else SessionMigrate)',
    })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' });
}

/** The arguments of codemodPhpCommand from the parsed options; an option not given stays absent. */
function codemodPhpArgsFromOptions(a: CodemodPhpOptionArgs): CodemodPhpArgs {
  return {
    dir: a.dir,
    dryRun: a['dry-run'],
    json: a.json,
    shortOpenTag: a['short-open-tag'],
    ...(a.bootstrap !== undefined ? { bootstrap: a.bootstrap } : {}),
    ...(a['handler-bootstrap'] !== undefined ? { handlerBootstrap: a['handler-bootstrap'] } : {}),
    ...(a['fpm-pool'] !== undefined ? { fpmPool: a['fpm-pool'].map(String) } : {}),
    ...(a['replace-custom-handler'] ? { replaceCustomHandler: true } : {}),
    ...(a['handler-namespace'] !== undefined ? { handlerNamespace: a['handler-namespace'] } : {}),
  };
}

/**
 * The yargs module for `codemod php`, for main.ts (options: {@link codemodPhpOptions}).
 * @param run main.ts's wrapper that records the exit code of a handler.
 */
export function codemodPhpModule(
  run: (fn: () => number | Promise<number>) => () => Promise<void>,
  print: (line: string) => void,
): CommandModule<object, CodemodPhpOptionArgs> {
  return {
    command: 'php <dir>',
    describe: 'register the encrypted handler in a PHP app and remove code that switches back to files (diff with --dry-run)',
    builder: (y) => codemodPhpOptions(y) as never,
    handler: (a) => run(() => codemodPhpCommand(codemodPhpArgsFromOptions(a), print))(),
  };
}

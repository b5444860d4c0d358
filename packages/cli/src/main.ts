/**
 * Entry point of the `session-migrate` CLI: parses arguments with yargs and runs one command.
 * Exit codes: 0 success, 1 a check failed or a run cut short after it changed something, 2 usage,
 * input or connection error, nothing changed (one line on stderr).
 */
import yargs from 'yargs';
import { UserFacingError, VERSION, printable, redactSessionFileNames } from '@session-migrate/common';
import { checkSpellings, checkValues, describeUsageFailure, notDecimal, optionTableOf, positionalsOf, type OptionTable } from './argv.ts';
import type { CommandFactory, Print, Run } from './commands/context.ts';
import { PATH_OR_NAME_KEY_OPTIONS, containsKeyText, redactKeyText } from './key-options.ts';
import { keysModule } from './commands/keys.ts';
import { planModule } from './commands/plan.ts';
import { applyModule } from './commands/apply.ts';
import { verifyModule } from './commands/verify.ts';
import { rotateModule } from './commands/rotate.ts';
import { codemodModule } from './commands/codemod.ts';
import { generateModule } from './commands/generate.ts';
import { purgeModule } from './commands/purge.ts';
import { rollbackModule } from './commands/rollback.ts';
import { auditModule } from './commands/audit.ts';
import { demoModule } from './commands/demo.ts';
import { commandProceeds, dropHeldWarnings, holdWarnings } from './redis-options.ts';
import { signalExitCode, STOPPING_SIGNALS } from './signal-exit.ts';
import { skipHelpCaching } from './help-cache.ts';

/**
 * The commands, in the order `--help` lists them: one module per command (commands/*.ts), each
 * loading its use case only when it runs.
 */
const COMMANDS: readonly CommandFactory[] = [
  keysModule,
  planModule,
  applyModule,
  verifyModule,
  rotateModule,
  codemodModule,
  generateModule,
  purgeModule,
  rollbackModule,
  auditModule,
  demoModule,
];

/** A command's output line on stdout; the first one means the command proceeds (commandProceeds). */
const print: Print = (line: string) => {
  commandProceeds();
  process.stdout.write(line + '\n');
};

/**
 * Joins a multi-line message (yargs writes some on several lines) into one printable line, with any
 * word that may be key material replaced (redactKeyText: yargs repeats what was typed, e.g.
 * `Unknown argument: <a key pasted on the command line>`) and every session file name's ID shortened
 * (redactSessionFileNames: a system error quotes the whole path).
 */
function oneLine(message: string): string {
  return printable(
    redactSessionFileNames(
      redactKeyText(
        message
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '')
          .join(' '),
      ),
    ),
  );
}

/**
 * Test hook: `inspect` sees what yargs parsed and the option table of the command (after the spelling
 * checks and yargs' own validation: strict names, required options, choices; or, with
 * `beforeValidation`, before yargs' validation), and nothing runs.
 */
export interface MainHooks {
  inspect?: (args: Record<string, unknown>, table: OptionTable) => void;
  beforeValidation?: boolean;
}

/**
 * The index of the first word of `argv` that holds key text (containsKeyText; a whole key-shaped word
 * also counts as the value of --key-file, --key-ring or --key-env), or -1.
 */
function keyWordAt(argv: readonly string[]): number {
  return argv.findIndex((word, i) => containsKeyText(word, PATH_OR_NAME_KEY_OPTIONS.has(argv[i - 1] ?? '')));
}

/** Thrown by the inspect hook's middleware to stop before the command runs. */
class Inspected extends Error {}

let exitCode = 0;
let epipeHandled = false;

/**
 * Runs a command; while it runs, SIGINT (Ctrl-C), SIGTERM or SIGHUP (STOPPING_SIGNALS) prints
 * `interrupted` as one stderr line and exits 128 + the signal (130, 143, 129: signalExitCode). Node's own handling ends the process
 * silently; a command that writes says what it leaves.
 * @param interrupted undefined: Node's default handling (the demo handles its signals itself: demo.ts onSignalsCleanUp)
 */
async function whileSaying(interrupted: string | undefined, fn: () => Promise<number> | number): Promise<number> {
  const onSignal = (signal: NodeJS.Signals) => {
    commandProceeds();
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}session-migrate: interrupted: ${interrupted}\n`);
    process.exit(signalExitCode(signal));
  };
  if (interrupted !== undefined) for (const signal of STOPPING_SIGNALS) process.once(signal, onSignal);
  try {
    return await fn();
  } finally {
    if (interrupted !== undefined) for (const signal of STOPPING_SIGNALS) process.removeListener(signal, onSignal);
  }
}

/**
 * Once per process: output piped into `head` and closed early is not an error of ours, so EPIPE on
 * stdout ends the process quietly with the exit code so far; any other stdout error is re-thrown.
 */
function stopQuietlyOnEpipe(): void {
  if (epipeHandled) return;
  epipeHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(exitCode);
    throw err;
  });
}

/**
 * Keys never come from the command line: a word holding one (containsKeyText, the rule's one home)
 * is refused, never repeated, before yargs sees the words: yargs answers --help and --version
 * itself (printing help, then the refusal from a middleware, or exiting 0 with no refusal at all).
 * @returns true (and one line on stderr naming the word's position) when `argv` is refused.
 */
function refusedForKeyText(argv: readonly string[]): boolean {
  const keyWord = keyWordAt(argv);
  if (keyWord < 0) return false;
  process.stderr.write(
    `session-migrate: word ${keyWord + 1} of the command line looks like key material (not shown); keys never come from the command line: use --key-file, --key-env or --key-command\n`,
  );
  return true;
}

/**
 * The test hooks as two yargs middlewares (before and after yargs' validation): the one matching
 * `hooks.beforeValidation` hands the parsed words and option table to `hooks.inspect`, then throws
 * Inspected so no command runs. Both do nothing without `hooks.inspect`.
 */
function inspectMiddleware(hooks: MainHooks, beforeValidation: boolean) {
  return (a: Record<string, unknown>, y?: unknown) => {
    if (hooks.inspect === undefined || (hooks.beforeValidation === true) !== beforeValidation) return;
    hooks.inspect(a, optionTableOf(y));
    throw new Inspected();
  };
}

/**
 * The yargs parser for `argv`: every command module (COMMANDS), strict names, help and version,
 * no process exit; usage failures throw UserFacingError (exit 2). It does not render the running
 * command's help text unasked (help-cache.ts skipHelpCaching).
 * @param run how commands run (sets the module's exit code).
 */
function buildParser(argv: string[], hooks: MainHooks, run: Run) {
  const parser = yargs(argv);
  skipHelpCaching(parser);
  return (
    parser
      .scriptName('session-migrate')
      // yargs is the only parser: its result is what commands read. What it accepts but cannot show in
      // its result (--dry-run=yes, an option given twice, --no-<string>) is refused from the words as
      // typed, against yargs' own option table of the command (argv.ts).
      .middleware((a: Record<string, unknown>, y?: unknown) => {
        const table = optionTableOf(y);
        const written = checkSpellings(argv, table, positionalsOf(y));
        notDecimal(a, table, written);
        checkValues(a, table, written);
      }, true)
      .usage('$0 <command> [options]\n\nMove PHP sessions from plaintext files into encrypted Redis.')
      .command(COMMANDS.map((module) => module({ run, print })))
      .demandCommand(1, 'name a command: audit, keys, plan, apply, verify, purge, rollback, rotate, codemod, generate or demo')
      .epilog(
        [
          'Exit codes (docs/operator-guide.md, "Exit codes"):',
          '  0    success',
          '  1    a check failed (verify, audit); sessions conflicted or failed (apply, rotate, rollback);',
          '       files not proven in Redis (purge); a codemod left something to decide by hand;',
          '       a run cut short after it wrote or deleted something (NOT DONE with the count: run it again)',
          '  2    usage, input or connection error: nothing written to Redis, nothing deleted',
          '  129  stopped by SIGHUP (terminal closed, kill -HUP): a command that writes says in one line what it leaves',
          '  130  interrupted (Ctrl-C, SIGINT): the same line',
          '  143  stopped by SIGTERM (systemd, Kubernetes, timeout): the same line',
        ].join('\n'),
      )
      .strict()
      .help()
      .version(VERSION)
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      .exitProcess(false)
      .middleware(inspectMiddleware(hooks, true), true)
      .middleware(inspectMiddleware(hooks, false), false)
      .fail((msg, err, y) => {
        if (err) throw err;
        throw new UserFacingError(`${describeUsageFailure(msg, y, argv)} (see --help)`);
      })
  );
}

/**
 * What a thrown error ends the run with: 0 for the inspect hook; for a UserFacingError or an Error
 * carrying a numeric `exitCode`, one line on stderr and that code (2 when none); anything else is
 * reported as `unexpected error` with exit 2. Messages pass through oneLine (one line, key text redacted).
 */
function exitCodeForError(err: unknown): number {
  if (err instanceof Inspected) return 0;
  dropHeldWarnings();
  const exitCode = (err as { exitCode?: unknown }).exitCode;
  if (err instanceof UserFacingError || (err instanceof Error && typeof exitCode === 'number')) {
    process.stderr.write(`session-migrate: ${oneLine(err.message)}\n`);
    return typeof exitCode === 'number' ? exitCode : 2;
  }
  const e = err as Error;
  process.stderr.write(`session-migrate: unexpected error: ${oneLine(e.message ?? String(e))}\n`);
  return 2;
}

/**
 * Runs the CLI.
 *
 * The bins (packages/cli/bin/session-migrate.js, and the built one: scripts/package/build.ts
 * writeBin) set `process.exitCode` to what this returns and let the process end on its own, with no
 * process.exit() once the command settled as a net against something left running. Decided so:
 * - the process ends promptly because every command closes what it opened, and the one close of a
 *   Redis connection leaves nothing running in any client state (packages/redis/src/connection.ts
 *   disconnectClient); the library API does the same for its callers, who have no such net;
 * - the tests that measure the time from the last line to the exit run the bin
 *   (test/support/migrate-cli.ts cliTimed: test/reconnect-bound.test.ts "exits promptly",
 *   test/redis-url-user-without-password.test.ts): with a net they would pass over a leak that
 *   every library caller still has;
 * - stdout and stderr on a pipe are asynchronous on POSIX (https://nodejs.org/api/process.html,
 *   "A note on process I/O"): process.exit() can cut an operator's piped report short, so a net
 *   would have to wait for write callbacks, and would still cut short, silently, any work a
 *   command left un-awaited (a file being written). A late exit is visible and tested; lost output
 *   would not be.
 * The exits that stay are deliberate: Ctrl-C, SIGTERM and SIGHUP (130, 143, 129: whileSaying) and EPIPE (stopQuietlyOnEpipe).
 * @param argv arguments without `node` and the script path.
 * @param hooks tests only: `inspect` receives what yargs parsed, and no command runs (returns 0).
 * @returns the exit code.
 */
export async function main(argv: string[], hooks: MainHooks = {}): Promise<number> {
  exitCode = 0;
  stopQuietlyOnEpipe();
  if (refusedForKeyText(argv)) return 2;
  holdWarnings();
  const run: Run = (fn, interrupted) => async () => {
    exitCode = await whileSaying(interrupted, fn);
    commandProceeds();
  };
  try {
    await buildParser(argv, hooks, run).parseAsync();
    return exitCode;
  } catch (err) {
    return exitCodeForError(err);
  }
}

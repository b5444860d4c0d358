/**
 * An error whose message is safe to print as one line: it names files, key IDs and Redis keys,
 * never key material or session contents.
 */
export class UserFacingError extends Error {
  /** Process exit code the CLI uses for this error (2 = usage, input or connection error). */
  readonly exitCode: number;

  /** `options.cause`: the error it words (kept for callers that tell failures apart, e.g. mayHaveRun). */
  constructor(message: string, exitCode = 2, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UserFacingError';
    this.exitCode = exitCode;
  }
}

/** What a run that changes things one at a time had done when a failure stopped it (stoppedRun). */
export interface StoppedRun {
  /** The command, as the operator typed it: `purge`, `rotate`, `rollback`, `apply`. */
  command: string;
  /** The failure's one-line reason (a UserFacingError's message or a classified Redis error; never a value). */
  reason: string;
  /** Changes this run made (and saw confirmed) before it stopped. */
  done: number;
  /** What `done` counts, with its verb: `file(s) deleted`, `value(s) re-encrypted`. */
  what: string;
  /**
   * A change was sent whose outcome is unknown (a Redis command whose reply the failure lost: it may
   * have run). Then the run is not "nothing changed" even with `done` 0.
   */
  inFlight?: boolean;
  /** Why what was done is sound, and how to finish: `run purge again to delete the rest`. */
  rerun: string;
  /** What the exit-2 line says after `<command> stopped: <reason>`: why nothing changed and re-running is safe. */
  nothing: string;
  /**
   * What comes between the count and the reason in the NOT DONE sentence (default ` before it
   * stopped`); apply's: `, then the source failed`.
   */
  stoppedBy?: string;
  /**
   * The run's counts when it stopped, named as its report names them (rotate's `counts`, rollback's
   * `counts` or key counts, purge's deleted files): the `counts` of the `--json` document
   * (StoppedRunError.report). Numbers only, never a key, file name or value.
   */
  counts?: Record<string, number>;
}

/**
 * The `--json` document of a run stopped after it changed something (exit 1): what a script reads
 * on stdout instead of the report the run did not get to print (docs/operator-guide.md, Exit codes).
 */
export interface StoppedRunReport {
  ok: false;
  stopped: {
    command: string;
    /** The reason as the line says it (its own trailing `run again` dropped: the line says how to finish). */
    reason: string;
    done: number;
    what: string;
    inFlight: boolean;
    /** How to finish (StoppedRun.rerun). */
    rerun: string;
  };
  /** StoppedRun.counts, `{}` when the command has none beyond `done`. */
  counts: Record<string, number>;
}

/**
 * stoppedRun's error when the run changed something (exit 1): the one line, and `report`, the
 * `--json` document the CLI prints on stdout before it (the exit code and the line stay the same).
 */
export class StoppedRunError extends UserFacingError {
  readonly report: StoppedRunReport;

  constructor(message: string, report: StoppedRunReport) {
    super(message, 1);
    this.report = report;
  }
}

/**
 * How a fix that holds whatever the command ends (packages/redis/src/errors.ts: OOM's and READONLY's
 * fixes end in `, then run the command again`). A line that ends with nothing after the fix (an
 * exit-2 error of verify or of a connect) says it as it is; a line that ends with its own way to
 * finish, naming its command (stoppedRun's, apply's STOPPED), drops it with withoutRunAgain, so that
 * "run again" is said once, naming the command.
 */
export const RUN_THE_COMMAND_AGAIN = 'run the command again';

/** RUN_THE_COMMAND_AGAIN closing a text (before the `)` of a classified line's fix, or at its end). */
const CLOSING_RUN_THE_COMMAND_AGAIN = new RegExp(`,?\\s*then ${RUN_THE_COMMAND_AGAIN}(\\)?)\\s*$`);

/**
 * `text` without its own closing instruction to run again, for a line that ends with how to finish,
 * naming the command: the one treatment of those words (stoppedRun's reason, apply's STOPPED line,
 * packages/cli/src/commands/apply.ts printApplyProblems). Dropped: a closing `; run again`
 * (RedisConnection.scan's SCAN_INTERRUPTED, SCAN_RESHARDED, a source's failure) and a fix's closing
 * `, then run the command again` (RUN_THE_COMMAND_AGAIN), also inside the parentheses of a
 * classified Redis error's line (packages/redis classifiedLine). A "run again" followed by a
 * condition (`run again when the resharding has finished`) stays: the condition is the advice.
 */
export function withoutRunAgain(text: string): string {
  return text.replace(/[;:,]\s*run again\s*$/, '').replace(CLOSING_RUN_THE_COMMAND_AGAIN, '$1');
}

/**
 * Whether a run stopped part-way changed anything (`done` > 0, or a change in flight): the one test
 * of "nothing changed" (exit 2) against "stopped half-way" (exit 1, NOT DONE) of stoppedRun and
 * apply's source failures (packages/migrate/src/use-cases/apply.ts).
 */
export function changedSomething(s: Pick<StoppedRun, 'done' | 'inFlight'>): boolean {
  return s.done > 0 || s.inFlight === true;
}

/**
 * The NOT DONE sentence of a run stopped after it changed something: `<done> <what>[ (and maybe those
 * in flight when it failed)] before it stopped: <reason>; <rerun>` (`stoppedBy` replaces ` before it
 * stopped`), the reason's own trailing "run again" dropped. stoppedRun's exit-1 line is
 * `<command> NOT DONE: ` and this; apply's report prints it after its `NOT DONE` label.
 */
export function notDoneSentence(s: Omit<StoppedRun, 'command' | 'nothing' | 'counts'>): string {
  const maybe = s.inFlight === true ? ' (and maybe those in flight when it failed)' : '';
  return `${s.done} ${s.what}${maybe}${s.stoppedBy ?? ' before it stopped'}: ${withoutRunAgain(s.reason)}; ${s.rerun}`;
}

/**
 * The one line, and the exit code, of a run stopped by a failure part-way (purge's deletes, rotate's
 * rewrites, rollback's files and key deletes; apply's source failures use changedSomething and
 * notDoneSentence in its report): the one home of the rule that lets a script tell "nothing changed"
 * from "stopped half-way" (docs/operator-guide.md, Exit codes).
 * - Nothing changed (changedSomething false): `<command> stopped: <reason>; <nothing>`, exit 2 (as
 *   bad input: nothing changed), a plain UserFacingError.
 * - Else: `<command> NOT DONE: ` and notDoneSentence, exit 1 (an incomplete run, as apply's), a
 *   StoppedRunError carrying the `--json` document.
 * Either way the reason's own trailing "run again" is dropped: the line ends with how to finish.
 */
export function stoppedRun(s: StoppedRun): UserFacingError {
  if (!changedSomething(s)) return new UserFacingError(`${s.command} stopped: ${withoutRunAgain(s.reason)}; ${s.nothing}`, 2);
  return new StoppedRunError(`${s.command} NOT DONE: ${notDoneSentence(s)}`, {
    ok: false,
    stopped: {
      command: s.command,
      reason: withoutRunAgain(s.reason),
      done: s.done,
      what: s.what,
      inFlight: s.inFlight === true,
      rerun: s.rerun,
    },
    counts: s.counts ?? {},
  });
}

/** One-line description of a filesystem error, without the stack. */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
      return 'permission denied';
    case 'EPERM':
      // Not the file's mode (EACCES): an immutable or append-only file (chattr(1)), or another user's
      // file in a sticky directory (unlink(2) and open(2), ERRORS); root meets it too.
      return 'operation not permitted (EPERM: an immutable or append-only file, or a sticky directory?)';
    case 'ELOOP':
      return 'is a symbolic link (refused)';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a path component is not a directory';
    case 'ENOTREG':
      return 'not a regular file';
    case 'ECHANGED':
      return 'changed on disk meanwhile';
    default:
      return e.code ?? String(e.message);
  }
}

/**
 * Shortens whatever follows `sess_` in the last component of a path, so that reports name the file
 * without printing a replayable session ID: `/var/lib/php/sessions/sess_abc123…` keeps 6 characters.
 * Covers backup and editor copies too (`sess_<id>.bak`, `sess_<id>~`), which carry a live ID.
 */
export function redactSessionPath(path: string): string {
  return path.replace(/(^|\/)sess_([^/]{6})[^/]+$/, '$1sess_$2…');
}

/**
 * redactSessionPath for free text: every session file name in it (`sess_` and a run of session-ID
 * characters, `[A-Za-z0-9,-]`, PHP's rule in php-src ext/session/session.c) keeps 6 characters of
 * its ID. The CLI passes every error line through it: a system error's message quotes the whole
 * path (`EPERM: operation not permitted, unlink '/var/lib/php/sessions/sess_<ID>'`), and a message
 * built without redactSessionPath must still not print a replayable ID.
 */
export function redactSessionFileNames(text: string): string {
  return text.replace(/(^|[^A-Za-z0-9_])sess_([A-Za-z0-9,-]{6})[A-Za-z0-9,-]+/g, '$1sess_$2…');
}

/**
 * Makes text safe to print on a terminal: control characters (which a hostile file name can carry to
 * move the cursor, retitle the window or fake report lines) become `\xNN`, bidirectional overrides
 * (which reorder what is shown) become `\u{NNNN}`, and a backslash is doubled so escapes stay unambiguous.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\\') return '\\\\';
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

// eslint-disable-next-line no-control-regex -- the control characters are what is replaced
const TERMINAL_UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes a diff safe to print on a terminal while keeping its layout: like `printable`, but tab, LF and
 * CR stay (they are part of a diff), and a backslash stays as it is (code is shown, not a name).
 * Control characters a terminal would act on and bidirectional overrides become `\u{N}`.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_UNSAFE, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

/**
 * The warning for a password written in a URL or source spec on the command line: other users of the
 * host see it in `ps` and /proc/PID/cmdline, and it stays in the shell history. Names the variable
 * to give it in instead, never the password.
 * @param where what holds it, e.g. `target URL`, `source spec`
 * @param variable the environment variable that takes the password instead
 */
export function passwordVisibleWarning(where: string, variable: string): string {
  return `${PASSWORD_VISIBLE} ${where} is visible to other users of this host (ps, shell history); give it in ${variable} instead`;
}

const PASSWORD_VISIBLE = 'warning: the password in the';

/**
 * Whether a warning line is passwordVisibleWarning's: the CLI holds it until the command proceeds,
 * so a command refused for bad input prints only its one-line error.
 */
export function isPasswordVisibleWarning(line: string): boolean {
  return line.startsWith(PASSWORD_VISIBLE) && line.includes(' is visible to other users of this host ');
}

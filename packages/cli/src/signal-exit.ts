import { constants } from 'node:os';

/**
 * The signals on which a command that writes (apply, purge, rotate, rollback: main.ts whileSaying) and
 * the demo (demo.ts onSignalsCleanUp) say in one stderr line what they leave, then exit 128 + the
 * signal (signalExitCode): SIGINT (Ctrl-C, 130), SIGTERM (how systemd, Kubernetes and timeout(1) stop
 * a process, 143) and SIGHUP (the terminal closed, an ssh session lost, `kill -HUP`, 129). Node's
 * default for each ends the process silently (https://nodejs.org/api/process.html, "Signal events").
 * SIGKILL cannot be caught.
 */
export const STOPPING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * The exit code of a process that ends because of `signal`: 128 + the signal's number, the shells'
 * convention (Bash manual, "Exit Status": https://www.gnu.org/software/bash/manual/html_node/Exit-Status.html;
 * POSIX asks only for a status above 128).
 * SIGINT 130, SIGTERM 143, SIGHUP 129; the numbers are the platform's (Node's os.constants.signals).
 * @param signal a signal name Node knows on this platform.
 */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

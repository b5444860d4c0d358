import { constants } from 'node:os';

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

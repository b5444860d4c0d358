/**
 * Key providers: where the CLI reads a key or key ring from (docs/keys.md). Exactly one per command:
 *
 * - `file`:    a key file or key ring file (mode 0600: group/other access is refused with the chmod fix);
 * - `ring`:    a key ring file (the same checks; a single 44-character key is refused: rotate needs a ring);
 * - `env`:     an environment variable holding the base64 key or the key ring text;
 * - `command`: a command run through `/bin/sh -c` with no stdin, whose stdout is the key or ring text
 *              (e.g. a secrets-manager or vault CLI), killed after a timeout.
 *
 * Never from the command line itself. Errors never contain the key text, the command's output or its
 * stderr (either could hold key material).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { UserFacingError } from '@session-migrate/common';
import { readSecretFile } from './key-file.ts';
import { parseKeyText, type KeyRing } from './keyring.ts';
import { loadSodium } from './sodium.ts';

/** Largest key ring file or command output read, in bytes (a ring of about 1,000 keys). */
export const MAX_KEY_TEXT_BYTES = 64 * 1024;
/** Default timeout of a key command, in seconds. */
export const DEFAULT_KEY_COMMAND_TIMEOUT_SECONDS = 10;

/** Where a key comes from. Holds no secret (a command line is not a key). */
export type KeyProvider =
  | { kind: 'file'; path: string }
  | { kind: 'ring'; path: string }
  | { kind: 'env'; name: string }
  | { kind: 'command'; command: string; timeoutSeconds: number };

/** How a provider is named in messages and plans: `key file PATH`, `environment variable NAME`, `--key-command`. */
export function describeKeyProvider(p: KeyProvider): string {
  switch (p.kind) {
    case 'file':
      return `key file ${p.path}`;
    case 'ring':
      return `key ring ${p.path}`;
    case 'env':
      return `environment variable ${p.name}`;
    case 'command':
      return 'the output of --key-command';
  }
}

/**
 * Reads a provider's key text and parses it (keyring.ts, parseKeyText). The caller owns the returned
 * buffers and should wipe them (wipeKeyRing) once a codec is built.
 * @param env environment to read `env` providers from (default process.env).
 * @throws UserFacingError (exit 2) naming the provider and what is wrong, never the text; also for a
 *   `kind` that is none of the four.
 */
export async function loadKeyRing(p: KeyProvider, env: NodeJS.ProcessEnv = process.env): Promise<KeyRing> {
  const sodium = await loadSodium();
  const source = describeKeyProvider(p);
  switch (p.kind) {
    case 'file':
      return parseKeyText(sodium, readSecretFile(p.path, 'key file', MAX_KEY_TEXT_BYTES), source);
    case 'ring': {
      const ring = parseKeyText(sodium, readSecretFile(p.path, 'key ring', MAX_KEY_TEXT_BYTES), source);
      if (ring.form !== 'ring') {
        ring.current.fill(0);
        ring.lookupKey.fill(0);
        throw new UserFacingError(
          `${source}: is a single key, not a key ring; make a ring from it with 'session-migrate keys ring init --key-file ${p.path} --out RING'`,
        );
      }
      return ring;
    }
    case 'env': {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(p.name))
        throw new UserFacingError('--key-env: give the NAME of an environment variable (letters, digits, _), not a key');
      const text = env[p.name];
      if (text === undefined || text === '') throw new UserFacingError(`${source} is not set or empty`);
      return parseKeyText(sodium, text, source);
    }
    case 'command': {
      const out = await runKeyCommand(p.command, p.timeoutSeconds);
      try {
        return parseKeyText(sodium, out.toString('latin1'), source);
      } finally {
        out.fill(0);
      }
    }
    default:
      // A provider built from JavaScript or JSON without the types: an error, never `undefined`.
      throw new UserFacingError("unknown key provider: its 'kind' must be 'file', 'ring', 'env' or 'command'");
  }
}

/** How long, in ms, stdout may stay open after the key command exited with status 0 (see runKeyCommand). */
export const KEY_COMMAND_EXIT_GRACE_MS = 500;

/**
 * Runs a key command: `/bin/sh -c CMD`, stdin closed, stdout collected (at most MAX_KEY_TEXT_BYTES),
 * stderr discarded.
 *
 * `timeoutSeconds` is a hard limit: at the deadline the process group is killed (SIGKILL), stdout is
 * destroyed and the promise rejects, whether or not stdout reached EOF (a background process in its
 * own session, e.g. `setsid sleep 20 &`, can keep the pipe open and is out of the group's reach).
 * When `/bin/sh` exits with status 0 but something it started keeps stdout open, what was printed
 * up to KEY_COMMAND_EXIT_GRACE_MS after the exit is the output: the pipe is closed on our side and
 * the rest of the process group is killed (docs/keys.md, "--key-command").
 * @param timeoutSeconds seconds, more than 0 and at most 3600 (NaN: the CLI's reading of a value not in
 *   decimal digits, e.g. `1e1` or `0x10`, refused with the same line).
 * @returns stdout (the caller zeroes it).
 * @throws UserFacingError on a spawn failure, a non-zero exit, a signal, the timeout, too much or no
 *   output; the message never repeats what the command printed.
 */
export function runKeyCommand(command: string, timeoutSeconds: number): Promise<Buffer> {
  if (command.trim() === '') return Promise.reject(new UserFacingError('--key-command: empty command'));
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 3600) {
    return Promise.reject(
      new UserFacingError(
        '--key-command-timeout must be a number of seconds more than 0 and at most 3600, in decimal digits (e.g. 30 or 2.5)',
      ),
    );
  }
  return new Promise((resolve, reject) => new KeyCommandRun(command, timeoutSeconds, resolve, reject));
}

/**
 * One run of a key command (runKeyCommand): the child process, its collected stdout and the two timers
 * (the hard timeout, the grace after a successful exit). It settles its promise exactly once; every
 * way out stops the timers, closes our end of stdout and zeroes the collected chunks.
 */
class KeyCommandRun {
  private readonly child: ChildProcess;
  private readonly stdout: Readable;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  private grace: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    command: string,
    timeoutSeconds: number,
    private readonly resolve: (out: Buffer) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    this.stdout = this.child.stdout!;
    this.timer = setTimeout(() => {
      this.fail(`did not finish within ${timeoutSeconds} s (killed; raise --key-command-timeout if it is just slow)`);
    }, timeoutSeconds * 1000);
    this.stdout.on('data', (chunk: Buffer) => this.collect(chunk));
    this.child.once('error', (err: NodeJS.ErrnoException) => {
      if (!this.finish()) return;
      this.wipe();
      this.reject(new UserFacingError(`--key-command: cannot run /bin/sh: ${err.code ?? 'error'}`));
    });
    // 'exit': /bin/sh is done. A failure is final at once; on success stdout gets a short grace to
    // drain, then what it printed counts even if a lingering process still holds the pipe.
    this.child.once('exit', (code, signal) => {
      if (this.settled || !this.judge(code, signal)) return;
      this.grace = setTimeout(() => this.succeed(true), KEY_COMMAND_EXIT_GRACE_MS);
    });
    // 'close': stdout reached EOF and the process exited: the usual end.
    this.child.once('close', (code, signal) => {
      if (this.settled || !this.judge(code, signal)) return;
      this.succeed(false);
    });
  }

  private collect(chunk: Buffer): void {
    this.size += chunk.length;
    this.chunks.push(chunk);
    if (this.size > MAX_KEY_TEXT_BYTES) {
      this.fail(`printed more than ${MAX_KEY_TEXT_BYTES} bytes; it must print only the key or key ring`);
    }
  }

  private wipe(): void {
    for (const c of this.chunks) c.fill(0);
  }

  private killGroup(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Ends the run once: stops timers, closes our end of stdout (never waits for EOF again). */
  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.grace !== undefined) clearTimeout(this.grace);
    this.stdout.removeAllListeners('data');
    this.stdout.on('error', () => undefined);
    this.stdout.destroy();
    return true;
  }

  private fail(why: string): void {
    if (!this.finish()) return;
    this.killGroup();
    this.wipe();
    this.reject(new UserFacingError(`--key-command ${why} (its output is not shown: it may hold key material)`));
  }

  private succeed(lingering: boolean): void {
    if (!this.finish()) return;
    if (lingering) this.killGroup(); // what the command left running in its group holds our stdout
    const out = Buffer.concat(this.chunks);
    this.wipe();
    if (out.toString('latin1').trim() === '') {
      out.fill(0);
      this.reject(new UserFacingError('--key-command printed nothing; it must print the key or key ring on stdout'));
      return;
    }
    this.resolve(out);
  }

  /** true when /bin/sh exited with status 0; otherwise fails the run and returns false. */
  private judge(code: number | null, signal: NodeJS.Signals | null): boolean {
    if (signal !== null) this.fail(`was killed by ${signal}`);
    else if (code !== 0) this.fail(`exited with status ${code}`);
    else return true;
    return false;
  }
}

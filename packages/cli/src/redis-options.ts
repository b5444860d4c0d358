/**
 * The Redis connection options every command that connects shares, defined once: TLS files for the
 * target (`--tls-ca-file`, `--tls-cert-file`, `--tls-key-file`, `--tls-server-name`) and for a Redis
 * source (`--source-tls-*`). Opening a target is the use cases' (migrate's openTarget).
 */
import type { Argv } from 'yargs';
import { UserFacingError, isPasswordVisibleWarning } from '@session-migrate/common';
import type { RedisRole, TlsFiles } from '@session-migrate/redis';

/** Adds the TLS options of a role to a yargs command. */
export function tlsOptions<T>(y: Argv<T>, role: RedisRole) {
  const p = role === 'source' ? 'source-' : '';
  const what = role === 'source' ? 'the Redis source' : 'the target';
  return y
    .option(`${p}tls-ca-file`, {
      type: 'string',
      describe: `PEM file of the CA that signed ${what}'s certificate (a private CA; default: the system's trusted CAs)`,
    })
    .option(`${p}tls-cert-file`, {
      type: 'string',
      describe: `PEM client certificate for mutual TLS with ${what} (needs --${p}tls-key-file)`,
    })
    .option(`${p}tls-key-file`, { type: 'string', describe: `PEM key of --${p}tls-cert-file` })
    .option(`${p}tls-server-name`, {
      type: 'string',
      describe: `name to verify ${what}'s certificate against (and SNI), when connecting by IP address`,
    });
}

/** Both roles' TLS options (commands with a target and a Redis source). */
export function allTlsOptions<T>(y: Argv<T>) {
  return tlsOptions(tlsOptions(y, 'target'), 'source');
}

/**
 * The TLS files given for a role (undefined fields left out). Not checked here: "--tls-cert-file needs
 * --tls-key-file" (and the reverse) is normalizeTlsFiles' rule (packages/redis/src/tls.ts), which every
 * use case applies, for library callers too, after its "TLS options on a redis:// URL" check; so it is
 * not repeated with checkOptionNeeds.
 */
export function tlsFilesFromArgs(a: Record<string, unknown>, role: RedisRole): TlsFiles {
  const p = role === 'source' ? 'source-' : '';
  const get = (name: string): string | undefined => {
    const v = a[`${p}${name}`];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new UserFacingError(`--${p}${name} takes one value`);
    return v;
  };
  const caFile = get('tls-ca-file');
  const certFile = get('tls-cert-file');
  const keyFile = get('tls-key-file');
  const serverName = get('tls-server-name');
  return {
    ...(caFile !== undefined ? { caFile } : {}),
    ...(certFile !== undefined ? { certFile } : {}),
    ...(keyFile !== undefined ? { keyFile } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  };
}

const warned = new Set<string>();
/** Warnings held until the command proceeds (heldUntilProceeding); null once it has. */
let held: string[] | null = [];

/**
 * Writes a warning line on stderr, each text once per process: a command that opens two connections
 * to the same cluster gets, e.g., the CLUSTER NODES NOPERM warning of packages/redis once, not twice.
 * The password-in-a-URL warning (isPasswordVisibleWarning) is held until the command proceeds
 * (commandProceeds): a command refused for bad input prints only its one-line error (dropHeldWarnings).
 */
export function warn(line: string): void {
  if (warned.has(line)) return;
  warned.add(line);
  if (held !== null && isPasswordVisibleWarning(line)) held.push(line);
  else process.stderr.write(`session-migrate: ${line}\n`);
}

/**
 * The command proceeds (its first line of output, its end with exit 0 or 1, or an interruption):
 * writes the warnings warn held, and any later one at once.
 */
export function commandProceeds(): void {
  const lines = held ?? [];
  held = null;
  for (const line of lines) process.stderr.write(`session-migrate: ${line}\n`);
}

/** The command failed with its one-line error: the warnings warn held are dropped, never written. */
export function dropHeldWarnings(): void {
  if (held !== null) held = [];
}

/** A command starts (main): warnings are held again until it proceeds. */
export function holdWarnings(): void {
  held = [];
}

/**
 * From what the user gave (a URL and TLS options) or what a plan recorded to a connection spec:
 * the one place where URLs, TLS files and credentials are put together.
 */
import { UserFacingError, passwordVisibleWarning } from '@session-migrate/common';
import { PASSWORD_ENV, credentialsFor, parseRedisUrl, type RedisRole } from './url.ts';
import { normalizeTlsFiles, type TlsFiles } from './tls.ts';
import type { ConnectionDescription, RedisSpec } from './connection.ts';

/**
 * Builds a spec from a URL and TLS options given on the command line.
 * @param onWarning called once when the password is in the URL (it shows in `ps`)
 * @throws UserFacingError for a bad URL or TLS options (see parseRedisUrl, normalizeTlsFiles).
 */
export function specFromUrl(
  url: string,
  tls: TlsFiles,
  role: RedisRole,
  options: { env?: NodeJS.ProcessEnv; onWarning?: (line: string) => void } = {},
): RedisSpec {
  const address = parseRedisUrl(url, role);
  const files = normalizeTlsFiles(tls, address.tls, role);
  const credentials = credentialsFor(address, role, options.env ?? process.env);
  if (credentials.passwordInUrl) options.onWarning?.(passwordVisibleWarning(`${role} URL`, PASSWORD_ENV[role]));
  return { address, ...(files !== undefined ? { tls: files } : {}), credentials, role };
}

/** What a plan records about a Redis target or source (ConnectionDescription): enough to connect again, no password. */
export type RecordedRedis = Pick<ConnectionDescription, 'url' | 'username' | 'tlsFiles'>;

/**
 * Builds a spec from what a plan recorded; the password comes from the role's environment variable.
 * TLS options given now (`override`) replace the recorded ones (e.g. a CA file moved).
 * @throws UserFacingError when the recorded URL does not parse (an edited plan).
 */
export function specFromRecorded(
  r: RecordedRedis,
  role: RedisRole,
  options: { env?: NodeJS.ProcessEnv; override?: TlsFiles } = {},
): RedisSpec {
  const address = parseRedisUrl(r.url, role);
  if (address.urlPassword !== undefined)
    throw new UserFacingError(`the recorded ${role} URL holds a password (edited by hand?); re-run plan`);
  if (r.username !== undefined) address.username = r.username;
  const given = options.override !== undefined ? normalizeTlsFiles(options.override, address.tls, role) : undefined;
  const files = given ?? r.tlsFiles;
  const credentials = credentialsFor(address, role, options.env ?? process.env);
  return { address, ...(address.tls && files !== undefined ? { tls: files } : {}), credentials, role };
}

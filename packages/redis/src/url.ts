/**
 * Redis URLs of every command that connects (plan, apply, verify, purge, rollback, rotate, and a
 * `--source redis:`): where the server is and how it is reached, never a password.
 *
 *   redis://[USER@]host[:port][/db]            one node; Redis Cluster is detected from the node
 *   rediss://[USER@]host[:port][/db]           the same over TLS
 *   redis+sentinel://h[:p][,h[:p]...]/MASTER[/db]   Sentinel (default port 26379)
 *   rediss+sentinel://...                      Sentinel with TLS to the sentinels and the data nodes
 *
 * Passwords come from the environment (SESSION_MIGRATE_REDIS_PASSWORD, ..._SOURCE_REDIS_PASSWORD,
 * ..._SENTINEL_PASSWORD, and ..._SENTINEL_USERNAME for a sentinel ACL user); a password in the URL
 * still works, and the caller warns that it shows in `ps`.
 * The `redis+sentinel` scheme follows the convention of redis-py and Lettuce
 * (https://github.com/redis/lettuce/wiki/Redis-URI-and-connection-details).
 */
import { UserFacingError } from '@session-migrate/common';
import { redactRedisAddress } from '@session-migrate/php-ini';

/** How the data is served: one node, a Redis Cluster, or a master found through Sentinel. */
export type Topology = 'standalone' | 'cluster' | 'sentinel';

export interface HostPort {
  host: string;
  port: number;
}

/** Whose connection this is: the names of options and environment variables differ. */
export type RedisRole = 'target' | 'source';

/** A parsed Redis URL (safe to print and to store: no password). */
export interface RedisAddress {
  /** `node` (standalone or cluster, told apart by asking the node) or `sentinel`. */
  kind: 'node' | 'sentinel';
  tls: boolean;
  /** The node given, or the first sentinel. */
  host: string;
  port: number;
  /** Every sentinel, in the order given (`sentinel` only). */
  sentinels?: HostPort[];
  /** The master group name (`sentinel` only). */
  masterName?: string;
  db: number;
  /** ACL user from the URL's user part. */
  username?: string;
  /** A password found in the URL (works, but shows in `ps`: the caller warns). */
  urlPassword?: string;
  /** The URL without user or password: `redis://host:port/db`, `rediss+sentinel://h:p,h:p/name/db`. */
  url: string;
}

export const SCHEMES = ['redis:', 'rediss:', 'redis+sentinel:', 'rediss+sentinel:'];

/** `host:port`, with brackets around an IPv6 address. */
export function formatHostPort(h: HostPort): string {
  return `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;
}

function parsePort(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined || text === '') return fallback;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserFacingError(`${what}: port "${text}" must be 1 to 65535`);
  return port;
}

function parseDb(text: string | undefined, what: string): number {
  if (text === undefined || text === '') return 0;
  if (!/^\d{1,5}$/.test(text)) throw new UserFacingError(`${what} database "${text}" is not a number`);
  return Number(text);
}

/**
 * %-decodes one part of a URL.
 * @param part the part, as the error names it (`user name`, `password`, `master name`); the text
 *   itself is never printed (a password).
 */
function decode(text: string, what: string, part: 'user name' | 'password' | 'master name'): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new UserFacingError(`${what}: bad %-escape in the ${part} (write a literal % as %25)`);
  }
}

/**
 * Parses a Redis URL (see the module comment).
 * @param what how to name it in errors: `target` or `source`
 * @throws UserFacingError (one line, never with the password) for an unknown scheme, a missing host
 *   or master name, a bad port or database.
 */
export function parseRedisUrl(text: string, what: RedisRole = 'target'): RedisAddress {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1]?.toLowerCase();
  const expected =
    'expected redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...';
  if (scheme === undefined) throw new UserFacingError(`${what} "${redactUrl(text)}" is not a URL: ${expected}`);
  if (!SCHEMES.includes(`${scheme}:`)) throw new UserFacingError(`unsupported ${what} scheme "${scheme}:": ${expected}`);
  const tls = scheme.startsWith('rediss');
  if (scheme.endsWith('+sentinel')) return parseSentinelUrl(text, tls, what);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserFacingError(`${what} is not a valid URL (port 1 to 65535?): ${expected}`);
  }
  if (url.search !== '' || url.hash !== '' || /[?#]$/.test(text)) {
    // Nothing is read from a query (`?prefix=`, `?db=`, `?tls=`): ignoring it would silently use the
    // defaults instead of what the operator wrote. The query is not printed (it may hold a password).
    throw new UserFacingError(
      `${what} URL has a query string or fragment, which session-migrate does not read: give the database as /DB, the key prefix with --prefix, TLS with rediss:// and --tls-* options`,
    );
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new UserFacingError(`${what} URL has no host`);
  const port = parsePort(url.port, 6379, `${what} URL`);
  const dbText = url.pathname.replace(/^\//, '');
  const db = parseDb(dbText, `${what} URL`);
  const username = url.username !== '' ? decode(url.username, `${what} URL`, 'user name') : undefined;
  const urlPassword = url.password !== '' ? decode(url.password, `${what} URL`, 'password') : undefined;
  return {
    kind: 'node',
    tls,
    host,
    port,
    db,
    ...(username !== undefined ? { username } : {}),
    ...(urlPassword !== undefined ? { urlPassword } : {}),
    url: `${tls ? 'rediss' : 'redis'}://${formatHostPort({ host, port })}/${db}`,
  };
}

function parseSentinelUrl(text: string, tls: boolean, what: string): RedisAddress {
  // The user part runs to the LAST '@' (as the WHATWG URL parser and php_url_parse_ex read the
  // authority): a password with an unencoded '@' is never taken for a sentinel address and printed.
  const m = /^[^:]+:\/\/(?:(.*)@)?([^/?#@]*)(?:\/([^/?#]*))?(?:\/([^/?#]*))?\/?$/s.exec(text);
  if (m === null)
    throw new UserFacingError(
      `${what} "${redactUrl(text)}" is not understood: expected ${tls ? 'rediss' : 'redis'}+sentinel://host:port[,host:port]/MASTER[/db]`,
    );
  const sentinels: HostPort[] = [];
  for (const part of (m[2] ?? '').split(',')) {
    const hp = /^(\[[^\]]+\]|[^:[\]]+)(?::([^:]*))?$/.exec(part);
    if (hp === null) throw new UserFacingError(`${what} URL: sentinel address "${part}" is not host or host:port`);
    sentinels.push({ host: hp[1]!.replace(/^\[(.*)\]$/, '$1'), port: parsePort(hp[2], 26379, `${what} URL sentinel ${hp[1]}`) });
  }
  const masterName = m[3] !== undefined ? decode(m[3], `${what} URL`, 'master name') : '';
  if (masterName === '')
    throw new UserFacingError(
      `${what} URL names no Sentinel master: expected ${tls ? 'rediss' : 'redis'}+sentinel://host:port/MASTER[/db]`,
    );
  const db = parseDb(m[4], `${what} URL`);
  let username: string | undefined;
  let urlPassword: string | undefined;
  if (m[1] !== undefined) {
    const colon = m[1].indexOf(':');
    const u = decode(colon < 0 ? m[1] : m[1].slice(0, colon), `${what} URL`, 'user name');
    const p = colon < 0 ? '' : decode(m[1].slice(colon + 1), `${what} URL`, 'password');
    if (u !== '') username = u;
    if (p !== '') urlPassword = p;
  }
  const first = sentinels[0]!;
  return {
    kind: 'sentinel',
    tls,
    host: first.host,
    port: first.port,
    sentinels,
    masterName,
    db,
    ...(username !== undefined ? { username } : {}),
    ...(urlPassword !== undefined ? { urlPassword } : {}),
    url: `${tls ? 'rediss' : 'redis'}+sentinel://${sentinels.map(formatHostPort).join(',')}/${encodeURIComponent(masterName)}/${db}`,
  };
}

/**
 * A Redis URL as a command names it to the operator, and as two URLs of one server are compared: the
 * canonical form (RedisAddress.url: `redis://host:port/db`, the default port and database written
 * out) with the ACL user name, the password never (it comes from the environment). A plan records
 * its URL without the user name and the user beside it (ConnectionDescription): `recordedUser` puts
 * it back when the URL has none. rotate's report prints it as the URL the next command must be
 * given (else that command connects as the default user); verify's note of a --target that
 * overrides the plan compares the two in this form.
 * @param text a URL as typed, or a plan's recorded one
 * @throws UserFacingError as parseRedisUrl, for a URL that does not parse
 */
export function urlWithUser(text: string, recordedUser?: string, what: RedisRole = 'target'): string {
  const address = parseRedisUrl(text, what);
  const username = address.username ?? recordedUser;
  if (username === undefined) return address.url;
  return address.url.replace(/^([a-z+]+:\/\/)/, `$1${encodeURIComponent(username)}@`);
}

/**
 * A Redis URL, as typed, with any password replaced by `***`, for error messages: the one redaction
 * rule of Redis addresses (php-ini's redactRedisAddress / redactRedisSecrets: a URL's
 * `user:password@` up to the last '@', `auth=` parameters, and of a text without `scheme://`
 * everything before its last '@').
 */
export function redactUrl(text: string): string {
  return redactRedisAddress(text, () => '***');
}

/** Environment variables of passwords, per role. */
export const PASSWORD_ENV: Record<RedisRole, string> = {
  target: 'SESSION_MIGRATE_REDIS_PASSWORD',
  source: 'SESSION_MIGRATE_SOURCE_REDIS_PASSWORD',
};
export const SENTINEL_PASSWORD_ENV: Record<RedisRole, string> = {
  target: 'SESSION_MIGRATE_SENTINEL_PASSWORD',
  source: 'SESSION_MIGRATE_SOURCE_SENTINEL_PASSWORD',
};
/**
 * Environment variables of the sentinels' ACL user (Redis >= 6.2 sentinels: `user` lines in
 * sentinel.conf or ACL SETUSER; https://redis.io/docs/management/sentinel/), per
 * role. Not a secret (errors name it), and it goes with SENTINEL_PASSWORD_ENV: without a user the
 * sentinels' `default` user is used; a user without a password is sent an empty one (see
 * credentialsFor).
 */
export const SENTINEL_USERNAME_ENV: Record<RedisRole, string> = {
  target: 'SESSION_MIGRATE_SENTINEL_USERNAME',
  source: 'SESSION_MIGRATE_SOURCE_SENTINEL_USERNAME',
};

/** Credentials of one connection (never stored, never printed). */
export interface RedisCredentials {
  username?: string;
  password?: string;
  sentinelPassword?: string;
  /**
   * ACL user of the sentinels (AUTH user password, AUTH user "" without sentinelPassword); absent:
   * the sentinels' `default` user.
   */
  sentinelUsername?: string;
  /**
   * The sentinel password's variable is set to the empty string (counted as unset): reports say it
   * "is empty" rather than "is not set", as the PHP handler's do (php/src/ConnectionFactory.php
   * missingPasswordWhy).
   */
  sentinelPasswordEmpty?: true;
  /** The password came from the URL (the caller warns: it shows in `ps`). */
  passwordInUrl: boolean;
}

/**
 * The credentials for an address: the user from the URL; the password from the URL (if any, with
 * `passwordInUrl`) or else the role's environment variable; the sentinel user and password from
 * their variables (an empty variable counts as unset). A sentinel user without a sentinel password
 * is kept: the connection sends it `AUTH <user> ""`, which a `nopass` sentinel user accepts and any
 * other refuses (WRONGPASS, reported by packages/redis/src/connection.ts askSentinels), as the
 * generated PHP handler does (php/src/SentinelMasterLocator.php; https://redis.io/docs/latest/commands/auth/).
 */
export function credentialsFor(address: RedisAddress, role: RedisRole, env: NodeJS.ProcessEnv = process.env): RedisCredentials {
  const fromEnv = env[PASSWORD_ENV[role]];
  const password = address.urlPassword ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
  const sentinel = env[SENTINEL_PASSWORD_ENV[role]];
  const sentinelUser = env[SENTINEL_USERNAME_ENV[role]];
  const hasSentinelPassword = sentinel !== undefined && sentinel !== '';
  const hasSentinelUser = sentinelUser !== undefined && sentinelUser !== '';
  return {
    ...(address.username !== undefined ? { username: address.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(hasSentinelPassword ? { sentinelPassword: sentinel } : {}),
    ...(hasSentinelUser ? { sentinelUsername: sentinelUser } : {}),
    ...(sentinel === '' ? { sentinelPasswordEmpty: true as const } : {}),
    passwordInUrl: address.urlPassword !== undefined,
  };
}

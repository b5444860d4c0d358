/**
 * phpredis `session.save_path` for the `redis` save handler (phpredis redis_session.c
 * PS_OPEN_FUNC(redis), 5.3/6.x): the value is split into server entries on whitespace and ','
 * FIRST, each entry is parsed with php_url_parse_ex (`unix:` rewritten to `file:`), and its query is
 * decoded like application/x-www-form-urlencoded by PHP's parse_str (`&` separates, `+` is a space,
 * %XX a byte, `auth[]=user&auth[]=pass` an array). Known parameters: weight, persistent,
 * persistent_id, database, prefix (default PHPREDIS_SESSION:), timeout (default 86400),
 * read_timeout, retry_interval, auth, stream[...]. test/fixtures/cases BUG-17: a ',' or '+' or '&' in an
 * unencoded password breaks it; percent-encode (%2C %2B %26 %3D).
 *
 * This is the one parser of phpredis addresses: the audit reads save_paths with it, and a `--source
 * redis:tcp://...` (packages/sources/src/redis-source.ts) is parsed by parseRedisServer.
 *
 * Passwords are never part of a printed form, by one rule (redactRedisSecrets): the parameter (or the
 * URL's user) is named, its value replaced by `<redacted len=N>`. Use `redactRedisSavePath()` /
 * `describeRedisHost()` / `redactRedisSecrets()` (`redactRedisAddress()` for one address as typed,
 * and packages/redis redactUrl, its `***` form).
 */
import { PHPREDIS_DEFAULT_PREFIX, type Finding } from '@session-migrate/common';

/**
 * A finding about a phpredis save_path, on the one Finding shape and severity scale of
 * @session-migrate/common: `high` when phpredis fails or authenticates with another password than
 * meant (SAVE_PATH_FAILS_AT), `medium` for what works but is unsafe (no auth, no TLS).
 */
export interface RedisSavePathFinding extends Finding {
  id:
    | 'save-path-comma-splits-hosts'
    | 'save-path-plus-is-space'
    | 'save-path-ampersand-splits-query'
    | 'save-path-unparsable-host'
    | 'save-path-no-auth'
    | 'save-path-no-tls';
  severity: 'high' | 'medium';
  /** Index of the server entry concerned. */
  host: number;
}

export interface RedisHost {
  /** The entry with any password replaced by `<redacted len=N>` (redactRedisSecrets). */
  redacted: string;
  /**
   * The `user:password` before an `@` in a tcp:// or tls:// entry (php_url_parse_ex's user and pass;
   * phpredis authenticates with `auth=` only). Secret; null when there is none.
   */
  userinfo: string | null;
  /** The path after `host:port` in a tcp:// or tls:// entry (e.g. `/3`), null when there is none. */
  path: string | null;
  scheme: 'tcp' | 'tls' | 'unix' | null;
  host: string | null;
  /** TCP port (default 6379 for tcp/tls). */
  port: number | null;
  /** Unix socket path. */
  socket: string | null;
  /** Decoded query parameters (arrays for `key[]=`); includes `auth` — do not print. */
  params: Record<string, string | string[]>;
  /** AUTH credentials after decoding (`auth=pass` or `auth[]=user&auth[]=pass`). Secret. */
  auth: { user: string | null; password: string } | null;
  database: number | null;
  /** Key prefix (default 'PHPREDIS_SESSION:'). */
  prefix: string;
  /** Connect timeout in seconds (default 86400). */
  timeout: number;
  readTimeout: number | null;
  persistent: boolean;
  weight: number;
  /** Parameters phpredis does not know (e.g. the tail of a password cut by '&'). */
  unknownParams: string[];
  /** True when phpredis would fail to parse this entry ("Failed to parse session.save_path"). */
  invalid: boolean;
}

export interface RedisSavePath {
  hosts: RedisHost[];
  findings: RedisSavePathFinding[];
}

/** The save_path parameters phpredis's `redis` session handler reads (redis_session.c, PS_OPEN_FUNC). */
export const PHPREDIS_SESSION_PARAMS: ReadonlySet<string> = new Set([
  'weight',
  'persistent',
  'persistent_id',
  'database',
  'prefix',
  'timeout',
  'read_timeout',
  'retry_interval',
  'auth',
  'stream',
]);

/** PHP urldecode(): '+' -> space, %XX -> byte (bytes decoded as UTF-8). */
export function formDecode(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '+') bytes.push(0x20);
    else if (c === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * PHP parse_str() for flat keys and `key[]` / `key[x]` (one level), as phpredis decodes a save_path's
 * query: `&` separates, `+` is a space, %XX a byte; a repeated flat key keeps its last value.
 */
export function parseRedisQuery(q: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const part of q.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = formDecode(eq < 0 ? part : part.slice(0, eq));
    const val = eq < 0 ? '' : formDecode(part.slice(eq + 1));
    const m = /^([^[]+)\[([^\]]*)\]/.exec(rawKey);
    if (m) {
      const k = m[1]!;
      const cur = out[k];
      const arr = Array.isArray(cur) ? cur : [];
      arr.push(val);
      out[k] = arr;
    } else {
      out[rawKey] = val;
    }
  }
  return out;
}

/** `<redacted len=N>`: how a password appears in every report (test/fixtures/cases/BUG-17 report_redaction). */
export function redactedSecret(secret: string): string {
  return `<redacted len=${secret.length}>`;
}

/** Percent-decoding of a URL's userinfo (RFC 3986 §2.1; '+' is itself there), bytes read as UTF-8. */
function percentDecode(s: string): string {
  return formDecode(s.replace(/\+/g, '%2B'));
}

/**
 * The one redaction rule of Redis addresses and save_paths, for any text that may hold one (a
 * save_path, a `--source` spec, an ini value, prose around them): never print a password, name it.
 *
 * - The value of every `auth=` / `auth[...]=` / `auth%5B...%5D=` parameter (phpredis `redis` and
 *   `rediscluster` save_path password, test/fixtures/cases BUG-17) becomes `<redacted len=N>`, N the
 *   characters of the decoded value. The name matches in any case (`AUTH=` is no password to
 *   phpredis, whose parse is case-sensitive, but it is still a secret someone meant). The value ends
 *   at `&` or whitespace, or at a ',' or quote followed by a separator (`auth=x, tcp://`,
 *   `'...auth=x');`); a ',', '#', '/' or '?' inside it (`auth=ab,cd`, `auth=ab#cd`) is redacted with
 *   it. An empty value (`auth=` in prose) is left alone.
 * - The password of a URL's `user:password@` (any scheme: redis://, rediss://, redis+sentinel://,
 *   tcp://, tls://) becomes `<redacted len=N>` (N after percent-decoding); the user name stays. The
 *   password runs to the LAST '@' before whitespace or the next `scheme://` (as php_url_parse_ex and
 *   the WHATWG URL parser take the last '@' of the authority), so a password with an unencoded '@',
 *   ':', '#', '/', '?' or '%' is hidden whole; what follows a late '@' in the same word is hidden with
 *   it (more hidden, never less).
 *
 * This is also the rule of the Redis URLs of the commands that connect (packages/redis/src/url.ts
 * redactUrl, which passes `mark` to print `***`).
 * @param mark what replaces a secret (default `<redacted len=N>`, redactedSecret)
 */
export function redactRedisSecrets(text: string, mark: (secret: string) => string = redactedSecret): string {
  return text
    .replace(
      /((?:^|[?&\s"',])auth(?:\[[^\]=&]*\]|%5B[^=&]*?%5D)?=)((?:[^&\s"',]|[,"'](?=[^\s,"'&);\]]))+)/gi,
      (_m, k: string, v: string) => `${k}${mark(formDecode(v))}`,
    )
    .replace(
      /(\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^:@/?#\s]*:)((?:(?![a-zA-Z][a-zA-Z0-9+.-]*:\/\/)\S)*)@/g,
      (_m, k: string, v: string) => `${k}${mark(percentDecode(v))}@`,
    );
}

/**
 * redactRedisSecrets for a text meant to be ONE Redis address (a `--target` URL, a `--source redis:`
 * spec): one that does not start with `scheme://` (mistyped: `redis//u:p@h`, `redis:u:p@h`, `u:p@h`)
 * has everything before its last '@' hidden as well, since nothing tells where a user:password part
 * begins there.
 * @param mark what replaces a secret (default `<redacted len=N>`, redactedSecret)
 */
export function redactRedisAddress(text: string, mark: (secret: string) => string = redactedSecret): string {
  const at = text.lastIndexOf('@');
  if (at < 0 || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return redactRedisSecrets(text, mark);
  return `${mark(text.slice(0, at))}@${redactRedisSecrets(text.slice(at + 1), mark)}`;
}

/**
 * The whole save_path with every password replaced by `<redacted len=N>` (redactRedisSecrets), and
 * one more rule that holds in a save_path only (not in prose): phpredis splits the value at
 * whitespace, so `auth=ab cd` is the password `ab` and a server `cd`, but the operator meant one
 * password `ab cd`. The words after an `auth=` value that do not start a server entry (`scheme://`,
 * `/path`, `host:port`) are hidden with it (more hidden, never less; as `auth=ab,cd`, BUG-17).
 */
export function redactRedisSavePath(value: string): string {
  // the words are joined by U+0001 (no separator to redactRedisSecrets), which the mark counts as the blanks they were
  const joined = value.replace(AUTH_WITH_LOOSE_WORDS, (m: string) => m.replace(/\s/g, '\u0001'));
  if (joined === value) return redactRedisSecrets(value);
  const blanks = (t: string) => t.split('\u0001').join(' ');
  return blanks(redactRedisSecrets(joined, (secret) => redactedSecret(blanks(secret))));
}

/** An `auth=` value followed by whitespace-separated words that are no server entry of a save_path. */
const AUTH_WITH_LOOSE_WORDS =
  /(?:^|[?&\s"',])auth(?:\[[^\]=&]*\]|%5B[^=&]*?%5D)?=[^&\s]*(?:\s+(?![A-Za-z][A-Za-z0-9+.-]*:\/\/|\/|[A-Za-z0-9.-]+:\d+(?:[?,\s]|$))[^&\s,]+)+/gi;

/** The server entries of a phpredis `redis` save_path: phpredis splits the value on whitespace and ',' first. */
export function splitRedisSavePath(value: string): string[] {
  return value.split(/[\s,]+/).filter((e) => e !== '');
}

/** `auth=pass` or `auth[]=user&auth[]=pass` (phpredis redis_session.c), decoded; null without `auth`. */
function authOf(v: string | string[] | undefined): { user: string | null; password: string } | null {
  if (v === undefined) return null;
  if (!Array.isArray(v)) return { user: null, password: v };
  return v.length >= 2 ? { user: v[0] ?? null, password: v[1] ?? '' } : { user: null, password: v[0] ?? '' };
}

/**
 * Parses one server entry of a phpredis `redis` save_path (after splitRedisSavePath), as phpredis
 * does with php_url_parse_ex: `tcp://host[:port][?query]`, `tls://...` (or `ssl://`), `unix:///path`
 * (or `file:`), a bare `/path`, or `host:port`. A tcp:// or tls:// entry's `user:password@` and
 * path are kept (userinfo, path) for callers that accept them; phpredis itself ignores them.
 * `invalid` says phpredis would fail to parse it.
 */
export function parseRedisServer(entry: string): RedisHost {
  const h: RedisHost = {
    redacted: redactRedisSecrets(entry),
    userinfo: null,
    path: null,
    scheme: null,
    host: null,
    port: null,
    socket: null,
    params: {},
    auth: null,
    database: null,
    prefix: PHPREDIS_DEFAULT_PREFIX,
    timeout: 86400,
    readTimeout: null,
    persistent: false,
    weight: 1,
    unknownParams: [],
    invalid: false,
  };
  let rest = entry;
  const q = rest.indexOf('?');
  let query: string | null = null;
  if (q >= 0) {
    query = rest.slice(q + 1); // the fragment is appended back to the query by phpredis (#1631)
    rest = rest.slice(0, q);
  }
  readServerAddress(rest, h);
  if (query !== null) readServerParams(query, h);
  return h;
}

/**
 * Sets the scheme, host and port (or socket), userinfo and path of `h` from a server entry without
 * its query, as php_url_parse_ex reads it for phpredis; marks `h.invalid` when phpredis cannot.
 */
function readServerAddress(rest: string, h: RedisHost): void {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(rest);
  if (m === null) {
    if (rest.startsWith('/')) {
      h.scheme = 'unix';
      h.socket = rest;
      return;
    }
    const hp = /^([^:/]+):(\d+)$/.exec(rest);
    if (hp === null) {
      h.invalid = true;
      return;
    }
    h.scheme = 'tcp';
    h.host = hp[1]!;
    h.port = Number(hp[2]);
    return;
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'unix' || scheme === 'file') {
    h.scheme = 'unix';
    h.socket = m[2]!.startsWith('/') ? m[2]! : '/' + m[2]!;
    return;
  }
  h.scheme = scheme === 'tls' || scheme === 'ssl' ? 'tls' : 'tcp';
  let authority = m[2]!;
  const slash = authority.indexOf('/');
  if (slash >= 0) {
    h.path = authority.slice(slash);
    authority = authority.slice(0, slash);
  }
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    h.userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
  }
  const hp = /^(\[[^\]]+\]|[^:/]*)(?::(\d*))?/.exec(authority)!;
  h.host = hp[1] || null;
  h.port = hp[2] ? Number(hp[2]) : 6379;
  if (!h.host) h.invalid = true;
}

/**
 * Sets the session parameters of `h` from a server entry's query (parse_str form decoding:
 * parseRedisQuery), as phpredis's PS_OPEN_FUNC(redis) reads them (redis_session.c); names it does not
 * read go to `h.unknownParams`.
 */
function readServerParams(query: string, h: RedisHost): void {
  h.params = parseRedisQuery(query);
  for (const [k, v] of Object.entries(h.params)) {
    if (!PHPREDIS_SESSION_PARAMS.has(k)) h.unknownParams.push(k);
    const s = Array.isArray(v) ? (v[0] ?? '') : v;
    if (k === 'database') h.database = Number.parseInt(s, 10) || 0;
    else if (k === 'prefix') h.prefix = s;
    else if (k === 'timeout') h.timeout = Number.parseFloat(s) || 0;
    else if (k === 'read_timeout') h.readTimeout = Number.parseFloat(s) || 0;
    else if (k === 'weight') h.weight = Number.parseInt(s, 10) || 0;
    else if (k === 'persistent') h.persistent = ['1', 'yes', 'true'].includes(s.toLowerCase());
    else if (k === 'auth') h.auth = authOf(v);
  }
}

/**
 * Parses a phpredis session.save_path into its server entries.
 * @param value the string ini_get('session.save_path') returns.
 */
export function parseRedisSavePath(value: string): RedisSavePath {
  const findings: RedisSavePathFinding[] = [];
  const entries = splitRedisSavePath(value);
  const hosts = entries.map(parseRedisServer);
  hosts.forEach((h, i) => {
    const raw = entries[i]!;
    if (h.invalid) {
      const afterAuth = i > 0 && hosts[i - 1]!.auth !== null && /[?&]auth=[^&]*$/i.test(entries[i - 1]!);
      findings.push(
        afterAuth
          ? {
              id: 'save-path-comma-splits-hosts',
              severity: 'high',
              host: i,
              message: `entry ${i + 1} is not a server: a ',' in the previous entry's auth value splits the save_path (percent-encode it as %2C)`,
            }
          : {
              id: 'save-path-unparsable-host',
              severity: 'high',
              host: i,
              message: `entry ${i + 1} is not a server URL phpredis can parse`,
            },
      );
    }
    const rawAuth = /[?&]auth=([^&]*)/i.exec(raw)?.[1];
    if (rawAuth !== undefined && rawAuth.includes('+')) {
      findings.push({
        id: 'save-path-plus-is-space',
        severity: 'high',
        host: i,
        message: "'+' in the auth value is decoded as a space (percent-encode it as %2B)",
      });
    }
    if (h.auth && h.unknownParams.length > 0) {
      findings.push({
        id: 'save-path-ampersand-splits-query',
        severity: 'high',
        host: i,
        message: `unknown parameter(s) ${h.unknownParams.join(', ')} next to auth: an '&' in the password splits the query (percent-encode it as %26)`,
      });
    }
    if (!h.invalid && h.scheme !== 'unix' && !h.auth)
      findings.push({
        id: 'save-path-no-auth',
        severity: 'medium',
        host: i,
        message: 'no auth parameter: the Redis server must require a password',
      });
    if (!h.invalid && h.scheme === 'tcp')
      findings.push({ id: 'save-path-no-tls', severity: 'medium', host: i, message: 'tcp:// sends session data unencrypted; use tls://' });
  });
  // An entry that only exists because of a ',' inside a password.
  return { hosts, findings };
}

/** A printable description of one server entry (never contains the password). */
export function describeRedisHost(h: RedisHost): string {
  const where = h.scheme === 'unix' ? `unix://${h.socket}` : `${h.scheme ?? '?'}://${h.host ?? '?'}:${h.port ?? '?'}`;
  const auth = h.auth ? ` auth=${redactedSecret(h.auth.password)}${h.auth.user !== null ? ` user=${h.auth.user}` : ''}` : '';
  return `${where} db=${h.database ?? 0} prefix=${JSON.stringify(h.prefix)}${auth}`;
}

const CLUSTER_KNOWN = new Set(['seed', 'timeout', 'read_timeout', 'persistent', 'prefix', 'auth', 'failover', 'stream']);

/**
 * Parses a phpredis `session.save_path` for the `rediscluster` save handler (phpredis
 * redis_session.c PS_OPEN_FUNC(rediscluster), cluster.md "Session Handler"): the WHOLE value is one
 * query string decoded by PHP's treat_data/parse_str (`&` separates, `+` is a space, no ',' or
 * whitespace splitting), e.g. `seed[]=h1:7000&seed[]=h2:7000&auth=pw&stream[verify_peer]=0`.
 * Every `seed[]` is one server (`host:port`, optionally `tls://host:port` / `ssl://host:port`: the
 * seed string is handed to PHP's stream layer, so only such a scheme selects TLS; `stream[...]` only
 * sets SSL context options and does not by itself encrypt a plain `host:port` seed). `auth` (or
 * `auth[]=user&auth[]=pass`) applies to every node. Without a valid seed phpredis refuses to open
 * the session ("No valid seeds detected").
 * @param value the string ini_get('session.save_path') returns.
 * @returns hosts (one per seed; `redacted` never holds the password) and findings with the same IDs
 *   as parseRedisSavePath (`host` = seed index, or 0 for whole-value findings).
 */
export function parseRedisClusterSavePath(value: string): RedisSavePath {
  const params = parseRedisQuery(value.trim());
  const auth = authOf(params.auth);
  const one = (k: string): string | undefined => {
    const v = params[k];
    return Array.isArray(v) ? v[0] : v;
  };
  const common = {
    params,
    auth,
    prefix: one('prefix') ?? 'PHPREDIS_CLUSTER_SESSION:',
    timeout: Number.parseFloat(one('timeout') ?? '0') || 0,
    readTimeout: one('read_timeout') !== undefined ? Number.parseFloat(one('read_timeout')!) || 0 : null,
    persistent: ['1', 'yes', 'true'].includes((one('persistent') ?? '').toLowerCase()),
    unknownParams: Object.keys(params).filter((k) => !CLUSTER_KNOWN.has(k)),
  };
  const rawSeeds = params.seed === undefined ? [] : Array.isArray(params.seed) ? params.seed : [];
  const hosts = rawSeeds.map((seed) => clusterSeedHost(seed, common));
  return { hosts, findings: clusterSavePathFindings(value, hosts, auth, common.unknownParams) };
}

/**
 * One `seed[]` of a rediscluster save_path as a RedisHost: `host:port`, or `tls://` / `ssl://`
 * `host:port` (TLS), with the parameters every seed shares (`common`).
 */
function clusterSeedHost(
  seed: string,
  common: Pick<RedisHost, 'params' | 'auth' | 'prefix' | 'timeout' | 'readTimeout' | 'persistent' | 'unknownParams'>,
): RedisHost {
  const m = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):\/\/)?(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(seed.trim());
  const scheme = m?.[1]?.toLowerCase();
  const tls = scheme === 'tls' || scheme === 'ssl';
  return {
    redacted: m ? `${tls ? 'tls' : 'tcp'}://${m[2]}:${m[3]}` : '(invalid seed)',
    userinfo: null,
    path: null,
    scheme: m ? (tls ? 'tls' : 'tcp') : null,
    host: m?.[2] ?? null,
    port: m ? Number(m[3]) : null,
    socket: null,
    params: common.params,
    auth: common.auth,
    database: null,
    prefix: common.prefix,
    timeout: common.timeout,
    readTimeout: common.readTimeout,
    persistent: common.persistent,
    weight: 1,
    unknownParams: common.unknownParams,
    invalid: m === null || (scheme !== undefined && !['tcp', 'tls', 'ssl'].includes(scheme)),
  };
}

/** The findings of a rediscluster save_path (same IDs as parseRedisSavePath's; `host` 0 for the whole value). */
function clusterSavePathFindings(
  value: string,
  hosts: readonly RedisHost[],
  auth: RedisHost['auth'],
  unknown: readonly string[],
): RedisSavePathFinding[] {
  const findings: RedisSavePathFinding[] = [];
  if (hosts.length === 0 || hosts.every((h) => h.invalid)) {
    findings.push({
      id: 'save-path-unparsable-host',
      severity: 'high',
      host: 0,
      message: 'no valid seed[]=host:port parameter: phpredis refuses to open the rediscluster session ("No valid seeds detected")',
    });
  }
  hosts.forEach((h, i) => {
    if (h.invalid && hosts.some((x) => !x.invalid))
      findings.push({
        id: 'save-path-unparsable-host',
        severity: 'high',
        host: i,
        message: `seed ${i + 1} is not host:port (phpredis skips it)`,
      });
  });
  const rawAuth = /(?:^|&)auth(?:\[[^\]=&]*\]|%5B[^=&]*?%5D)?=([^&]*)/i.exec(value)?.[1];
  if (rawAuth !== undefined && rawAuth.includes('+'))
    findings.push({
      id: 'save-path-plus-is-space',
      severity: 'high',
      host: 0,
      message: "'+' in the auth value is decoded as a space (percent-encode it as %2B)",
    });
  if (auth !== null && unknown.length > 0)
    findings.push({
      id: 'save-path-ampersand-splits-query',
      severity: 'high',
      host: 0,
      message: `unknown parameter(s) ${unknown.join(', ')} next to auth: an '&' in the password splits the query (percent-encode it as %26)`,
    });
  hosts.forEach((h, i) => {
    if (h.invalid) return;
    if (auth === null)
      findings.push({
        id: 'save-path-no-auth',
        severity: 'medium',
        host: i,
        message: 'no auth parameter: the Redis cluster must require a password',
      });
    if (h.scheme === 'tcp')
      findings.push({
        id: 'save-path-no-tls',
        severity: 'medium',
        host: i,
        message: 'a host:port seed sends session data unencrypted; use tls://host:port seeds',
      });
  });
  return findings;
}

/**
 * Plaintext sessions already in Redis, as phpredis's `redis` save handler stores them: a string key
 * `<prefix><session ID>` (default prefix `PHPREDIS_SESSION:`) holding the serialized session, with
 * `SETEX gc_maxlifetime` (phpredis redis_session.c). Read with SCAN + GET (as Buffer) + PTTL.
 */
import type { Redis } from 'ioredis';
import { UserFacingError } from '@session-migrate/common';
import { connectTarget, scanKeys, type ParsedTarget } from '@session-migrate/target';
import { DEFAULT_MAX_SESSION_BYTES, SESSION_ID_PATTERN, type SourceItem, type SourceSession, type StableReadOptions } from './files.ts';
import type { RedisSourceDescription, RemoveOutcome, Source } from './source.ts';

/** phpredis's default session key prefix (redis_session.c, PS_OPEN_FUNC(redis)). */
export const PHPREDIS_DEFAULT_PREFIX = 'PHPREDIS_SESSION:';

/** The environment variable a Redis source's password may come from (keeps it out of `ps`). */
export const SOURCE_PASSWORD_ENV = 'SESSION_MIGRATE_SOURCE_REDIS_PASSWORD';

export interface ParsedRedisSource {
  description: RedisSourceDescription;
  username?: string;
  password?: string;
}

/** `<redacted len=N>`: how a password appears in every report (shared/cases/BUG-17). */
export function redactedSecret(secret: string): string {
  return `<redacted len=${secret.length}>`;
}

/** application/x-www-form-urlencoded decoding of one query component: `+` is a space, `%XX` a byte. */
function formDecode(text: string): string {
  const bytes = Buffer.from(text.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return bytes.toString('utf8');
}

/**
 * Parses a Redis source: a URL `redis://[user:password@]host[:port][/db][?prefix=P&database=N&auth=X]`
 * (or `rediss://`), or phpredis's save_path form `tcp://host:port?auth=..&prefix=..&database=..`
 * (or `tls://`). Rules of phpredis (shared/cases/BUG-17): the value is split on `,` FIRST (each part
 * is one server; a source must name exactly one), then the query after the first `?` is split on `&`
 * and form-decoded (`+` is a space, `%2C` a comma); `#`, `/` and `?` inside the query are data.
 * `auth` may be `auth=PASS` or `auth[]=USER&auth[]=PASS`. Without a password in the spec, the
 * environment variable SESSION_MIGRATE_SOURCE_REDIS_PASSWORD is used.
 * @throws UserFacingError for anything else; the message never contains the password.
 */
export function parseRedisSourceSpec(spec: string, env: NodeJS.ProcessEnv = process.env): ParsedRedisSource {
  const servers = spec.split(',');
  const m = /^(redis|rediss|tcp|tls):\/\/(?:([^@/?]*)@)?(\[[^\]]+\]|[^:/?[\]]+)(?::(\d+))?(?:\/(\d*))?(?:\?(.*))?$/s.exec(servers[0] ?? '');
  const query = m?.[6] ?? '';
  const params = new Map<string, string[]>();
  for (const part of query === '' ? [] : query.split('&')) {
    const eq = part.indexOf('=');
    const name = formDecode(eq < 0 ? part : part.slice(0, eq));
    const value = formDecode(eq < 0 ? '' : part.slice(eq + 1));
    params.set(name, [...(params.get(name) ?? []), value]);
  }
  const auth = params.get('auth') ?? params.get('auth[]') ?? [];
  // Passwords are replaced where they stand (userinfo, every auth= value), whatever their encoding.
  const redact = (text: string) => text
    .replace(/^([a-z]+:\/\/[^:@/?]*:)[^@/?]*@/, (_, k: string) => `${k}<redacted>@`)
    .replace(/([?&]auth(?:%5B%5D|\[\])?=)([^&]*)/g, (_, k: string, v: string) => `${k}${redactedSecret(formDecode(v ?? ''))}`);
  if (servers.length > 1) {
    throw new UserFacingError(`source redis:${redact(spec)} names ${servers.length} servers (a "," separates servers in a save_path; write a "," inside auth as %2C): give one server`);
  }
  if (m === null) {
    throw new UserFacingError(`source redis:${redact(spec)} is not understood: expected redis://host:port/db?prefix=P or phpredis's tcp://host:port?auth=..&prefix=..&database=..`);
  }
  const tls = m[1] === 'rediss' || m[1] === 'tls';
  const host = (m[3] ?? '').replace(/^\[(.*)\]$/, '$1');
  const port = m[4] !== undefined ? Number(m[4]) : 6379;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserFacingError(`source redis:${redact(spec)}: port must be 1 to 65535`);
  const dbText = params.get('database')?.at(-1) ?? (m[5] !== undefined && m[5] !== '' ? m[5] : '0');
  if (!/^\d{1,5}$/.test(dbText)) throw new UserFacingError(`source redis:${redact(spec)}: database "${dbText}" is not a number`);
  const db = Number(dbText);
  const prefix = params.get('prefix')?.at(-1) ?? PHPREDIS_DEFAULT_PREFIX;
  if (prefix === '') throw new UserFacingError(`source redis:${redact(spec)}: an empty prefix would take every key of the database as a session; give prefix=`);
  let username: string | undefined;
  let password: string | undefined;
  if (m[2] !== undefined) {
    const colon = m[2].indexOf(':');
    const user = decodeURIComponent(colon < 0 ? m[2] : m[2].slice(0, colon));
    const pass = colon < 0 ? '' : decodeURIComponent(m[2].slice(colon + 1));
    if (user !== '') username = user;
    if (pass !== '') password = pass;
  }
  if (auth.length === 1) password = auth[0];
  else if (auth.length >= 2) {
    username = auth[0];
    password = auth[1];
  }
  if (password === undefined || password === '') password = env[SOURCE_PASSWORD_ENV] || undefined;
  const printableHost = host.includes(':') ? `[${host}]` : host;
  return {
    description: {
      kind: 'redis',
      url: `${tls ? 'rediss' : 'redis'}://${printableHost}:${port}/${db}`,
      host, port, db, tls,
      auth: password !== undefined,
      prefix,
      spec: redact(spec),
    },
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

/** The session ID shortened for reports: a full ID is a replayable credential. */
function shortKey(prefix: string, id: string): string {
  return `${prefix}${id.slice(0, 6)}…`;
}

/** Compare-and-delete: KEYS[1] session key, ARGV[1] the value verified. 1 removed, 0 changed, -1 gone. */
const REMOVE_IF_UNCHANGED_LUA = `
local v = redis.call('GET', KEYS[1])
if v == false then return -1 end
if v == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;

/**
 * Sessions under one prefix of one Redis database. Use `openRedisSource`. The connection is opened
 * once and closed by close().
 */
export class RedisSource implements Source {
  readonly kind = 'redis' as const;
  readonly maxSessionBytes: number;

  constructor(private readonly parsed: ParsedRedisSource, private readonly client: Redis, options: { maxSessionBytes?: number } = {}) {
    this.maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  }

  describe(): RedisSourceDescription {
    return this.parsed.description;
  }

  /** The connection (for a caller that compares servers); do not close it directly. */
  get redis(): Redis {
    return this.client;
  }

  /**
   * SCANs the prefix, then GET (as Buffer) and PTTL each key in one pipeline per SCAN batch. Keys
   * whose remainder is not a valid session ID, or that are not strings, are skipped and named (with
   * the ID shortened); a key that expired between SCAN and GET is skipped as changed-while-reading.
   * @throws UserFacingError when Redis fails mid-scan.
   */
  async *sessions(options: { batchSize?: number; read?: StableReadOptions } = {}): AsyncGenerator<SourceItem[]> {
    const { prefix } = this.parsed.description;
    const prefixBytes = Buffer.from(prefix, 'utf8');
    try {
      for await (const keys of scanKeys(this.client, prefix, options.batchSize ?? 1000)) {
        const pipe = this.client.pipeline();
        for (const k of keys) {
          pipe.getBuffer(k);
          pipe.pttl(k);
        }
        const replies = (await pipe.exec()) ?? [];
        const now = Date.now();
        const items: SourceItem[] = keys.map((key, i): SourceItem => {
          const idBytes = key.subarray(prefixBytes.length);
          const id = idBytes.toString('latin1');
          const valid = key.subarray(0, prefixBytes.length).equals(prefixBytes) && SESSION_ID_PATTERN.test(id);
          const location = shortKey(prefix, valid ? id : '');
          if (!valid) return { kind: 'skipped', location: `${prefix}…`, reason: 'bad-session-id' };
          const [getErr, value] = replies[2 * i] ?? [new Error('no reply'), null];
          const [, pttl] = replies[2 * i + 1] ?? [null, -2];
          if (getErr) {
            return /WRONGTYPE/.test(getErr.message)
              ? { kind: 'skipped', location, reason: 'wrong-type', detail: 'not a string key' }
              : { kind: 'skipped', location, reason: 'unreadable', detail: (getErr.message.split('\n')[0] ?? '').slice(0, 120) };
          }
          if (value === null || pttl === -2) return { kind: 'skipped', location, reason: 'changed-while-reading', detail: 'expired or deleted' };
          const data = value as Buffer;
          if (data.length > this.maxSessionBytes) return { kind: 'skipped', location, reason: 'oversized', detail: `${data.length} bytes > cap ${this.maxSessionBytes}` };
          const session: SourceSession = { kind: 'session', id, location, mtimeMs: now, data };
          if (typeof pttl === 'number' && pttl > 0) session.ttlMs = pttl;
          else session.noTtl = true;
          return session;
        });
        yield items;
      }
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw new UserFacingError(`source Redis at ${this.parsed.description.url} failed while reading: ${((err as Error).message.split('\n')[0] ?? '').slice(0, 200)}`);
    }
  }

  /** Deletes `<prefix><id>` only if it still holds exactly `session.data` (atomic, in Lua). */
  async removeIfUnchanged(session: SourceSession): Promise<RemoveOutcome> {
    try {
      const r = await this.client.eval(REMOVE_IF_UNCHANGED_LUA, 1, this.parsed.description.prefix + session.id, session.data);
      return r === 1 ? 'removed' : r === -1 ? 'gone' : 'changed';
    } catch (err) {
      if (/WRONGTYPE/.test((err as Error).message)) return 'changed';
      throw new UserFacingError(`source Redis at ${this.parsed.description.url} failed while removing ${shortKey(this.parsed.description.prefix, session.id)}: ${((err as Error).message.split('\n')[0] ?? '').slice(0, 200)}`);
    }
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/**
 * Connects to a Redis source.
 * @param spec what follows `redis:` in `--source redis:...` (see parseRedisSourceSpec)
 * @throws UserFacingError when the spec is bad or the server cannot be reached (password redacted).
 */
export async function openRedisSource(spec: string, options: { maxSessionBytes?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RedisSource> {
  const parsed = parseRedisSourceSpec(spec, options.env ?? process.env);
  const d = parsed.description;
  const target: ParsedTarget = {
    description: { url: d.url, host: d.host, port: d.port, db: d.db, tls: d.tls, auth: d.auth },
    ...(parsed.username !== undefined ? { username: parsed.username } : {}),
    ...(parsed.password !== undefined ? { password: parsed.password } : {}),
  };
  let client: Redis;
  try {
    client = await connectTarget(target);
  } catch (err) {
    const msg = (err as Error).message.replace('SESSION_MIGRATE_REDIS_PASSWORD', SOURCE_PASSWORD_ENV).replace(/^cannot connect to Redis/, 'cannot connect to the source Redis');
    throw new UserFacingError(msg);
  }
  return new RedisSource(parsed, client, options);
}

/**
 * Refuses a Redis source and target that are the same database with overlapping prefixes (one a
 * prefix of the other): the source SCAN would take encrypted keys for sessions, or verify would
 * take plaintext keys for broken envelopes. Different prefixes on one database are fine.
 * @throws UserFacingError naming both prefixes.
 */
export function checkSourceTargetPrefixes(source: RedisSourceDescription, target: { url: string; prefix: string }): void {
  if (source.url !== target.url) return;
  if (source.prefix.startsWith(target.prefix) || target.prefix.startsWith(source.prefix)) {
    throw new UserFacingError(`source prefix "${source.prefix}" and target prefix "${target.prefix}" overlap on the same Redis database ${source.url}; choose another --prefix for the target`);
  }
}

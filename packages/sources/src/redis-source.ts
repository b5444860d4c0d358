/**
 * Plaintext sessions already in Redis, as phpredis's `redis` save handler stores them: a string key
 * `<prefix><session ID>` (default prefix `PHPREDIS_SESSION:`) holding the serialized session, with
 * `SETEX gc_maxlifetime` (phpredis redis_session.c). Read with SCAN on every master + GET (as
 * Buffer) + PTTL in pipelines grouped by slot, through the one connection layer
 * (@session-migrate/redis): a single node, a Redis Cluster or a master behind Sentinel, with TLS
 * (`--source-tls-*`) and an ACL user.
 */
import type { ChainableCommander } from 'ioredis';
import { PHPREDIS_DEFAULT_PREFIX, UserFacingError, passwordVisibleWarning, printable } from '@session-migrate/common';
import {
  PHPREDIS_SESSION_PARAMS,
  parseRedisQuery,
  parseRedisServer,
  redactRedisAddress,
  splitRedisSavePath,
} from '@session-migrate/php-ini';
import {
  classifiedLine,
  PASSWORD_ENV,
  RedisConnection,
  aclRuleFor,
  credentialsFor,
  parseRedisUrl,
  redactUrl,
  normalizeTlsFiles,
  specFromRecorded,
  isConnectionLost,
  type ClassifiedError,
  type ConnectionDescription,
  type RedisSpec,
  type Reply,
  type TlsFiles,
} from '@session-migrate/redis';
import { DEFAULT_MAX_SESSION_BYTES, SESSION_ID_PATTERN, type SourceItem, type SourceSession, type StableReadOptions } from './files.ts';
import type { RedisSourceDescription, RemoveOutcome, Source } from './source.ts';

/** phpredis's default session key prefix (redis_session.c, PS_OPEN_FUNC(redis)); its home is @session-migrate/common. */
export { PHPREDIS_DEFAULT_PREFIX };

/** The environment variable a Redis source's password may come from (keeps it out of `ps`). */
export const SOURCE_PASSWORD_ENV = 'SESSION_MIGRATE_SOURCE_REDIS_PASSWORD';

/** A parsed source spec: how to connect (no password printed anywhere) and what to read. */
export interface ParsedRedisSource {
  /** Connection spec (credentials inside: never printed). */
  spec: RedisSpec;
  prefix: string;
  /** The spec as given, with any password replaced by `<redacted len=N>`. */
  redactedSpec: string;
  /** A password was written in the spec itself (userinfo or auth=). */
  passwordInSpec: boolean;
  /** What is known before connecting (printable). */
  description: { url: string; host: string; port: number; db: number; tls: boolean; auth: boolean; prefix: string; spec: string };
  username?: string;
  password?: string;
}

/**
 * Parses a Redis source: a URL `redis://[user:password@]host[:port][/db][?prefix=P&database=N&auth=X]`
 * (or `rediss://`), `redis+sentinel://host:port[,host:port]/MASTER[/db][?prefix=P]` (or
 * `rediss+sentinel://`), or phpredis's save_path form `tcp://host:port?auth=..&prefix=..&database=..`
 * (or `tls://`). The phpredis form is read by the one phpredis address parser of
 * @session-migrate/php-ini (parseRedisServer; test/fixtures/cases/BUG-17): the value is split into
 * servers on ',' and whitespace FIRST (a source must name exactly one), then the query after the
 * first `?` is split on `&` and form-decoded (`+` is a space, `%2C` a comma); `#`, `/` and `?` inside
 * the query are data. Every query is decoded by the same parse_str (parseRedisQuery), and every
 * printed form redacted by the same rule (redactRedisAddress). `auth` may be `auth=PASS` or
 * `auth[]=USER&auth[]=PASS`. Without a password in the spec, the environment variable
 * SESSION_MIGRATE_SOURCE_REDIS_PASSWORD is used.
 * @param tls `--source-tls-*` options (only with rediss://, tls:// or rediss+sentinel://)
 * @throws UserFacingError for anything else; the message never contains the password.
 */
export function parseRedisSourceSpec(spec: string, env: NodeJS.ProcessEnv = process.env, tls: TlsFiles = {}): ParsedRedisSource {
  // Reports and the plan name the source with `<redacted len=N>` (BUG-17 report_redaction); an error
  // about the spec names it as every Redis address error does (redactUrl: `***`, neither the
  // password nor its length).
  const redacted = redactRedisAddress(spec);
  const named = redactUrl(spec);
  const { server, params, phpredis } = splitSourceSpec(spec, named);
  refuseUnknownParams(params, phpredis, named);
  const last = (name: string): string | undefined => {
    const v = params[name];
    return Array.isArray(v) ? undefined : v;
  };
  const authParam = params.auth;
  const auth = authParam === undefined ? [] : Array.isArray(authParam) ? authParam : [authParam];
  const prefix = last('prefix') ?? PHPREDIS_DEFAULT_PREFIX;
  if (prefix === '')
    throw new UserFacingError(`source redis:${named}: an empty prefix would take every key of the database as a session; give prefix=`);
  const url = server === null ? spec.replace(/\?.*$/s, '') : serverUrl(server, last('database'), named);
  let address;
  try {
    address = parseRedisUrl(url, 'source');
  } catch (err) {
    throw new UserFacingError(`source redis:${named}: ${(err as Error).message}`);
  }
  if (auth.length === 1) address.urlPassword = auth[0];
  else if (auth.length >= 2) {
    address.username = auth[0];
    address.urlPassword = auth[1];
  }
  if (address.urlPassword === '') delete address.urlPassword;
  const files = normalizeTlsFiles(tls, address.tls, 'source');
  const credentials = credentialsFor(address, 'source', env);
  return {
    spec: { address, ...(files !== undefined ? { tls: files } : {}), credentials, role: 'source' },
    prefix,
    redactedSpec: redacted,
    passwordInSpec: credentials.passwordInUrl,
    description: {
      url: address.url,
      host: address.host,
      port: address.port,
      db: address.db,
      tls: address.tls,
      auth: credentials.password !== undefined,
      prefix,
      spec: redacted,
    },
    ...(credentials.username !== undefined ? { username: credentials.username } : {}),
    ...(credentials.password !== undefined ? { password: credentials.password } : {}),
  };
}

/** The one server of a source spec, as phpredis reads it (tcp://, tls://) or as a Redis URL (redis://, rediss://). */
interface SourceServer {
  tls: boolean;
  userinfo: string | null;
  host: string;
  port: number | null;
  path: string | null;
}

/**
 * Splits a source spec into its one server (null for a Sentinel URL, whose hosts ioredis reads) and its
 * query parameters (parse_str form-decoded: parseRedisQuery / parseRedisServer).
 * @param named the spec as errors name it (redactUrl)
 * @throws UserFacingError when the spec names several servers or has none of the accepted forms
 */
function splitSourceSpec(
  spec: string,
  named: string,
): { server: SourceServer | null; params: Record<string, string | string[]>; phpredis: boolean } {
  const sentinel = /^rediss?\+sentinel:\/\//i.test(spec);
  const phpredis = /^(tcp|tls):\/\//.test(spec);
  const servers = sentinel ? [spec] : phpredis ? splitRedisSavePath(spec) : spec.split(',');
  if (servers.length > 1) {
    throw new UserFacingError(
      `source redis:${named} names ${servers.length} servers (a "," separates servers in a save_path; write a "," inside auth as %2C): give one server`,
    );
  }
  const notUnderstood = () =>
    new UserFacingError(
      `source redis:${named} is not understood: expected redis://host:port/db?prefix=P, redis+sentinel://host:port/MASTER/db?prefix=P or phpredis's tcp://host:port?auth=..&prefix=..&database=..`,
    );
  if (sentinel) return { server: null, params: parseRedisQuery(spec.includes('?') ? spec.slice(spec.indexOf('?') + 1) : ''), phpredis };
  if (phpredis) {
    const h = parseRedisServer(servers[0] ?? '');
    if (h.invalid || h.host === null || (h.scheme !== 'tcp' && h.scheme !== 'tls') || !/^(\/\d*)?$/.test(h.path ?? ''))
      throw notUnderstood();
    return {
      server: { tls: h.scheme === 'tls', userinfo: h.userinfo, host: h.host, port: h.port, path: h.path },
      params: h.params,
      phpredis,
    };
  }
  const m = /^(redis|rediss):\/\/(?:([^@/?]*)@)?(\[[^\]]+\]|[^:/?[\]]+)(?::(\d+))?(\/\d*)?(?:\?(.*))?$/s.exec(servers[0] ?? '');
  if (m === null) throw notUnderstood();
  return {
    server: {
      tls: m[1] === 'rediss',
      userinfo: m[2] ?? null,
      host: m[3]!,
      port: m[4] !== undefined ? Number(m[4]) : null,
      path: m[5] ?? null,
    },
    params: parseRedisQuery(m[6] ?? ''),
    phpredis,
  };
}

/**
 * A redis:// or redis+sentinel:// URL is session-migrate's own form: a parameter phpredis's session
 * handler does not read (redis_session.c, PS_OPEN_FUNC; PHPREDIS_SESSION_PARAMS) is most likely a
 * typo (`prefx=`) that would silently read the default prefix instead, so it is refused, by name
 * only. A tcp:// or tls:// save_path is read exactly as phpredis reads it, which ignores unknown
 * parameters: there, the default prefix is where PHP really keeps the sessions.
 * @throws UserFacingError naming the unknown parameters (never their values)
 */
function refuseUnknownParams(params: Record<string, string | string[]>, phpredis: boolean, named: string): void {
  const unknown = phpredis ? [] : Object.keys(params).filter((name) => !PHPREDIS_SESSION_PARAMS.has(name));
  if (unknown.length > 0) {
    throw new UserFacingError(
      `source redis:${named}: unknown parameter ${unknown.map((n) => `"${printable(n)}"`).join(', ')} (known: ${[...PHPREDIS_SESSION_PARAMS].join(', ')})`,
    );
  }
}

/**
 * The redis:// or rediss:// URL of a source's one server: port 6379 by default, the database from
 * `database=` over the path's `/N` (as phpredis's save_path), else 0.
 * @throws UserFacingError for a port outside 1-65535 or a database that is not a number
 */
function serverUrl(server: SourceServer, database: string | undefined, named: string): string {
  const port = server.port ?? 6379;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserFacingError(`source redis:${named}: port must be 1 to 65535`);
  const pathDb = server.path?.slice(1) ?? '';
  const dbText = database ?? (pathDb !== '' ? pathDb : '0');
  if (!/^\d{1,5}$/.test(dbText)) throw new UserFacingError(`source redis:${named}: database "${dbText}" is not a number`);
  return `${server.tls ? 'rediss' : 'redis'}://${server.userinfo !== null ? `${server.userinfo}@` : ''}${server.host}:${port}/${Number(dbText)}`;
}

/** The session ID shortened for reports: a full ID is a replayable credential. */
function shortKey(prefix: string, id: string): string {
  return `${prefix}${id.slice(0, 6)}…`;
}

/**
 * Why a GET of a Redis source failed, as a skipped entry's `detail` apply groups and prints
 * (ApplySessionsReport.unreadableReasons): the connection lost (isConnectionLost: the master died or
 * restarted between SCAN and GET), else the error's code (its first word: LOADING, BUSY, ERR...).
 * Never Redis's own message, which may quote the command's arguments (a key: a session ID).
 */
export function unreadableDetail(c: ClassifiedError): string {
  return isConnectionLost(c) ? 'the connection to Redis was lost' : `Redis answered ${c.code}`;
}

/** Compare-and-delete: KEYS[1] session key, ARGV[1] the value verified. 1 removed, 0 changed, -1 gone. */
const REMOVE_IF_UNCHANGED_LUA = `
local v = redis.call('GET', KEYS[1])
if v == false then return -1 end
if v == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;

/**
 * Sessions under one prefix of one Redis database, on any topology. Use `openRedisSource` or
 * `openRecordedRedisSource`. The connection is opened once and closed by close().
 */
export class RedisSource implements Source {
  /** A Redis error met while reading this source, as its one line (never a value). */
  private readFailed(err: unknown): UserFacingError {
    // `cause`: a scan cut short by a failover stays recognisable (RedisConnection.scanAgainAfterFailover).
    return new UserFacingError(`source Redis at ${this.desc.url} failed while reading: ${classifiedLine(this.conn.classify(err))}`, 2, {
      cause: err,
    });
  }

  readonly kind = 'redis' as const;
  readonly maxSessionBytes: number;

  constructor(
    private readonly desc: RedisSourceDescription,
    private readonly conn: RedisConnection,
    options: { maxSessionBytes?: number } = {},
  ) {
    this.maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  }

  /**
   * The source as opened, with the server its reads come from now: behind Sentinel, after a failover
   * that cut a scan short, the new master (`host`, `port`, `runId`, `replicationId`: the
   * connection's description, which RedisConnection.scanAgainAfterFailover renews), so that a plan
   * records the server it read, not the one that died.
   */
  describe(): RedisSourceDescription {
    const now = this.conn.description;
    if (now.host === this.desc.host && now.port === this.desc.port && now.runId === this.desc.runId) return this.desc;
    const { runId: _runId, replicationId: _replicationId, replicaOf: _replicaOf, ...kept } = this.desc;
    return {
      ...kept,
      host: now.host,
      port: now.port,
      ...(now.runId !== undefined ? { runId: now.runId } : {}),
      ...(now.replicationId !== undefined ? { replicationId: now.replicationId } : {}),
      ...(now.replicaOf !== undefined ? { replicaOf: now.replicaOf } : {}),
    };
  }

  /** The connection (for a caller that compares servers or counts keys); do not close it directly. */
  get connection(): RedisConnection {
    return this.conn;
  }

  /**
   * SCANs the prefix on every master, then GET (as Buffer) and PTTL each key in pipelines grouped
   * by slot, one round per SCAN batch. Keys whose remainder is not a valid session ID, or that are not
   * strings, are skipped and named (with the ID shortened); a key that expired between SCAN and GET
   * is skipped as changed-while-reading.
   * @throws UserFacingError when Redis fails mid-scan.
   */
  async *sessions(options: { batchSize?: number; read?: StableReadOptions } = {}): AsyncGenerator<SourceItem[]> {
    const { prefix } = this.desc;
    const prefixBytes = Buffer.from(prefix, 'utf8');
    try {
      for await (const keys of this.conn.scan(prefix, options.batchSize ?? 1000)) {
        const replies = await this.conn.runGrouped(
          keys.map((k) => ({
            key: k,
            build: (pipe: ChainableCommander) => {
              pipe.getBuffer(k);
              pipe.pttl(k);
            },
          })),
        );
        const now = Date.now();
        const items: SourceItem[] = keys.map((key, i): SourceItem => {
          const idBytes = key.subarray(prefixBytes.length);
          const id = idBytes.toString('latin1');
          const valid = key.subarray(0, prefixBytes.length).equals(prefixBytes) && SESSION_ID_PATTERN.test(id);
          if (!valid) return { kind: 'skipped', location: `${prefix}…`, reason: 'bad-session-id' };
          return (
            this.itemOf(id, replies[i], now) ?? {
              kind: 'skipped',
              location: shortKey(prefix, id),
              reason: 'changed-while-reading',
              detail: 'expired or deleted',
            }
          );
        });
        yield items;
      }
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw this.readFailed(err);
    }
  }

  /** The session IDs under the prefix (SCAN on every master; names that are no session ID left out). */
  async *ids(): AsyncGenerator<string[]> {
    const { prefix } = this.desc;
    const prefixBytes = Buffer.from(prefix, 'utf8');
    try {
      for await (const keys of this.conn.scan(prefix)) {
        const ids: string[] = [];
        for (const key of keys) {
          if (key.length <= prefixBytes.length || key.compare(prefixBytes, 0, prefixBytes.length, 0, prefixBytes.length) !== 0) continue;
          const id = key.toString('latin1', prefixBytes.length);
          if (SESSION_ID_PATTERN.test(id)) ids.push(id);
        }
        if (ids.length > 0) yield ids;
      }
    } catch (err) {
      throw this.readFailed(err);
    }
  }

  /** Reads `<prefix><id>` of these IDs (GET + PTTL, grouped by slot), as sessions() does; undefined when absent. */
  async readIds(ids: readonly string[]): Promise<Array<SourceItem | undefined>> {
    const { prefix } = this.desc;
    const prefixBytes = Buffer.from(prefix, 'utf8');
    const keys = ids.map((id) => Buffer.concat([prefixBytes, Buffer.from(id, 'latin1')]));
    let replies;
    try {
      replies = await this.conn.runGrouped(
        keys.map((k) => ({
          key: k,
          build: (pipe: ChainableCommander) => {
            pipe.getBuffer(k);
            pipe.pttl(k);
          },
        })),
      );
    } catch (err) {
      throw this.readFailed(err);
    }
    const now = Date.now();
    return ids.map((id, i) => this.itemOf(id, replies[i], now));
  }

  /**
   * One session from its GET and PTTL replies: the session, a skipped entry (another type, an error,
   * oversized), or undefined when the key is gone.
   * @throws UserFacingError when the ACL rule lacks GET (the same for every key: what to fix)
   */
  private itemOf(id: string, replies: Reply[] | undefined, now: number): SourceItem | undefined {
    const location = shortKey(this.desc.prefix, id);
    const [getErr, value] = replies?.[0] ?? [new Error('no reply'), null];
    const [, pttl] = replies?.[1] ?? [null, -2];
    if (getErr) {
      const c = this.conn.classify(getErr);
      if (c.code === 'WRONGTYPE') return { kind: 'skipped', location, reason: 'wrong-type', detail: 'not a string key' };
      if (c.code === 'NOPERM') throw new UserFacingError(`source Redis at ${this.desc.url} refused GET: ${c.message} (${c.fix ?? ''})`);
      // Redis closes the connection at these GETs each time (CLOSED_UNDER_COMMANDS): the whole
      // pipeline's replies were lost, not this key's alone, and reading again fails the same way.
      if (c.kind === 'permanent' && isConnectionLost(c)) throw this.readFailed(getErr);
      return { kind: 'skipped', location, reason: 'unreadable', detail: unreadableDetail(c) };
    }
    if (value === null || pttl === -2) return undefined;
    const data = value as Buffer;
    if (data.length > this.maxSessionBytes)
      return {
        kind: 'skipped',
        location,
        reason: 'oversized',
        detail: `${data.length} bytes > cap ${this.maxSessionBytes}`,
        size: { bytes: data.length, maxBytes: this.maxSessionBytes },
      };
    const session: SourceSession = { kind: 'session', id, location, mtimeMs: now, data };
    if (typeof pttl === 'number' && pttl > 0) session.ttlMs = pttl;
    else session.noTtl = true;
    return session;
  }

  /**
   * Deletes `<prefix><id>` only if it still holds exactly `session.data` (atomic, in Lua): `removed`,
   * `changed` (another value, or another type: kept), `gone` (no such key).
   *
   * A call whose connection closed before its reply came was sent again by ioredis after the
   * reconnect (`autoResendUnfulfilledCommands`, on by default; packages/redis/src/connection.ts
   * failRepeatedResends bounds it): its first run may have deleted the key. So when the connection
   * closed during the call (RedisConnection.generation changed), a `gone` counts as this very call's
   * own delete, `removed` (a key that expired or that PHP destroyed in that moment is gone for PHP
   * too: counting it deleted never makes a stopped purge claim "nothing was deleted" falsely); and an
   * error reply to the second send does not say the first did not run: the error thrown then has as
   * `cause` an error saying so, which mayHaveRun takes as "may have run". A generation that cannot be
   * read counts as changed. test/stopped-part-way.test.ts "a compare-and-delete whose reply was lost"
   * and "a lost reply, then ...".
   * @throws UserFacingError (exit 2) naming the key shortened, with the Redis error as `cause`
   */
  async removeIfUnchanged(session: SourceSession): Promise<RemoveOutcome> {
    const generation = await this.conn.generationBefore();
    try {
      const r = await this.conn.client.eval(REMOVE_IF_UNCHANGED_LUA, 1, this.desc.prefix + session.id, session.data);
      if (r === -1) return (await this.conn.closedSince(generation)) ? 'removed' : 'gone';
      return r === 1 ? 'removed' : 'changed';
    } catch (err) {
      const c = this.conn.classify(err);
      if (c.code === 'WRONGTYPE') return 'changed';
      const again = await this.conn.closedSince(generation);
      throw new UserFacingError(
        `source Redis at ${this.desc.url} failed while removing ${shortKey(this.desc.prefix, session.id)}: ${classifiedLine(c)}`,
        2,
        // Not a ReplyError (mayHaveRun): the reply answered the second send; the first may have run.
        {
          cause: again
            ? new Error('the command was sent again after its connection closed; its first send may have run', { cause: err })
            : err,
        },
      );
    }
  }

  async close(): Promise<void> {
    this.conn.close();
  }
}

/** Options of a Redis source connection. */
export interface OpenRedisSourceOptions {
  maxSessionBytes?: number;
  env?: NodeJS.ProcessEnv;
  /** `--source-tls-*` options. */
  tls?: TlsFiles;
  /** Called with a one-line warning (a password written in the spec; the connection's, see OpenOptions.onWarning). */
  onWarning?: (line: string) => void;
  /** What the command does with the source, for the ACL rule named in NOPERM advice (default source-read). */
  aclCommand?: 'source-read' | 'source-purge';
  /** The command deletes source keys (purge): a replica is refused. */
  write?: boolean;
  /**
   * How long a failover is waited for, ms (OpenOptions.failoverWaitMs): a Redis Cluster's SCAN for a
   * replica to take over a master lost mid-scan; behind Sentinel with `waitForSentinelMaster`, the
   * open for the master the sentinels report to answer.
   */
  failoverWaitMs?: number;
  /**
   * Behind Sentinel, wait at open for a master during a failover in progress, up to `failoverWaitMs`
   * (OpenOptions.waitForSentinelMaster). Every command opens its Redis sources with it (migrate's
   * openSources and openPlanSources); without it (a library caller's default) the open fails at once.
   */
  waitForSentinelMaster?: boolean;
}

async function openParsed(parsed: ParsedRedisSource, options: OpenRedisSourceOptions): Promise<RedisSource> {
  const conn = await RedisConnection.open(parsed.spec, {
    aclRule: aclRuleFor(
      options.aclCommand ?? 'source-read',
      parsed.prefix,
      parsed.spec.address.kind === 'sentinel' ? 'sentinel' : 'standalone',
      parsed.spec.address.db,
    ),
    ...(options.write === true ? { write: true } : {}),
    ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
    ...(options.failoverWaitMs !== undefined ? { failoverWaitMs: options.failoverWaitMs } : {}),
    ...(options.waitForSentinelMaster === true ? { waitForSentinelMaster: true } : {}),
  });
  const d: RedisSourceDescription = { ...conn.description, kind: 'redis', prefix: parsed.prefix, spec: parsed.redactedSpec };
  return new RedisSource(d, conn, options);
}

/**
 * Connects to a Redis source.
 * @param spec what follows `redis:` in `--source redis:...` (see parseRedisSourceSpec)
 * @throws UserFacingError when the spec is bad or the server cannot be reached (password redacted).
 */
export async function openRedisSource(spec: string, options: OpenRedisSourceOptions = {}): Promise<RedisSource> {
  const parsed = parseRedisSourceSpec(spec, options.env ?? process.env, options.tls ?? {});
  if (parsed.passwordInSpec) options.onWarning?.(passwordVisibleWarning('source spec', PASSWORD_ENV.source));
  return openParsed(parsed, options);
}

/**
 * Connects to the Redis source a plan recorded (topology, user, TLS files); the password comes from
 * SESSION_MIGRATE_SOURCE_REDIS_PASSWORD. `options.tls` given now replaces the recorded TLS files.
 */
export async function openRecordedRedisSource(d: RedisSourceDescription, options: OpenRedisSourceOptions = {}): Promise<RedisSource> {
  const spec = specFromRecorded(d, 'source', {
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.tls !== undefined ? { override: options.tls } : {}),
  });
  return openParsed(
    {
      spec,
      prefix: d.prefix,
      redactedSpec: d.spec,
      passwordInSpec: false,
      description: { url: d.url, host: d.host, port: d.port, db: d.db, tls: d.tls, auth: d.auth, prefix: d.prefix, spec: d.spec },
    },
    options,
  );
}

/**
 * Whether two Redis descriptions name the same data: the same URL, the same server (run_id) and
 * database, a master and its replica (the same replication ID) and the same database, a cluster
 * sharing a node ID, or the same Sentinel master name with a sentinel in common.
 */
export function sameRedisData(a: ConnectionDescription, b: ConnectionDescription): boolean {
  if (a.url === b.url) return true;
  if (a.db !== b.db) return false;
  // One server reached by two names (localhost, 127.0.0.1, a DNS alias): the same run_id.
  if (a.runId !== undefined && a.runId === b.runId) return true;
  // A replica of the other (or both of one master, a Sentinel master included): the same replication
  // ID, so the same data set (redis.io replication docs, "Replication ID explained"); reads of one see
  // the writes of the other's master, a replica's a moment later.
  if (a.replicationId !== undefined && a.replicationId === b.replicationId) return true;
  if (a.topology === 'cluster' && b.topology === 'cluster') return (a.nodeIds ?? []).some((id) => (b.nodeIds ?? []).includes(id));
  if (a.topology === 'sentinel' && b.topology === 'sentinel' && a.masterName === b.masterName) {
    return (a.sentinels ?? []).some((s) => (b.sentinels ?? []).some((t) => t.host === s.host && t.port === s.port));
  }
  return a.topology === b.topology && a.host === b.host && a.port === b.port;
}

/**
 * Refuses a Redis source and target that are the same database with overlapping prefixes (one a
 * prefix of the other): the source SCAN would take encrypted keys for sessions, or verify would
 * take plaintext keys for broken envelopes. Different prefixes on one database are fine.
 * @throws UserFacingError naming both prefixes.
 */
export function checkSourceTargetPrefixes(source: RedisSourceDescription, target: ConnectionDescription & { prefix: string }): void {
  if (!sameRedisData(source, target)) return;
  if (source.prefix.startsWith(target.prefix) || target.prefix.startsWith(source.prefix)) {
    throw new UserFacingError(
      `source prefix "${source.prefix}" and target prefix "${target.prefix}" overlap on the same Redis database ${source.url}; choose another --prefix for the target`,
    );
  }
}

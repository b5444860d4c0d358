/**
 * The Redis target: connection from a URL, and a pipelined no-clobber writer of envelopes.
 * Values are always Buffers, read back with the *Buffer commands (shared/cases/BUG-24), and every
 * reply of a pipeline is inspected (shared/cases/BUG-25: exec() resolves even when commands failed).
 */
import { Redis } from 'ioredis';
import { UserFacingError } from '@session-migrate/common';
import { tombstoneKeyFor } from '@session-migrate/envelope';

/** Where the target is, without its password: safe to print and to store in a plan. */
export interface TargetDescription {
  /** `redis://host:port/db` or `rediss://...`, never with credentials. */
  url: string;
  host: string;
  port: number;
  db: number;
  tls: boolean;
  /** Whether a password was given (through the URL or SESSION_MIGRATE_REDIS_PASSWORD). */
  auth: boolean;
}

export interface ParsedTarget {
  description: TargetDescription;
  username?: string;
  password?: string;
}

/**
 * Parses `redis://[user:password@]host[:port][/db]` or `rediss://...` (TLS). A password may instead come
 * from the environment variable SESSION_MIGRATE_REDIS_PASSWORD, which keeps it out of `ps`.
 * @throws UserFacingError for anything else (the message never repeats a password).
 */
export function parseTargetUrl(text: string, env: NodeJS.ProcessEnv = process.env): ParsedTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserFacingError(`target is not a valid URL (port 1 to 65535?): expected redis://host:port/db`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UserFacingError(`unsupported target scheme "${url.protocol}": expected redis://host:port/db or rediss://`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new UserFacingError('target URL has no host');
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || !/^\d*$/.test(dbText)) {
    throw new UserFacingError(`target URL database "${dbText}" is not a number`);
  }
  const password = url.password !== '' ? decodeURIComponent(url.password) : env.SESSION_MIGRATE_REDIS_PASSWORD;
  const username = url.username !== '' ? decodeURIComponent(url.username) : undefined;
  const tls = url.protocol === 'rediss:';
  const printableHost = host.includes(':') ? `[${host}]` : host;
  return {
    description: { url: `${tls ? 'rediss' : 'redis'}://${printableHost}:${port}/${db}`, host, port, db, tls, auth: password !== undefined && password !== '' },
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined && password !== '' ? { password } : {}),
  };
}

/**
 * Connects, checks the server answers PING, and SELECTs the database. Every command times out after
 * `commandTimeoutMs` (default 30 000 ms).
 * @throws UserFacingError ("cannot connect to Redis at redis://host:port/db: ECONNREFUSED") on failure.
 */
export async function connectTarget(target: ParsedTarget, options: { commandTimeoutMs?: number; keepReconnecting?: boolean } = {}): Promise<Redis> {
  const d = target.description;
  const client = new Redis({
    host: d.host,
    port: d.port,
    db: d.db,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(d.tls ? { tls: {} } : {}),
    lazyConnect: true,
    connectTimeout: 5000,
    // A server that accepts the connection but never answers must not hang the tool.
    commandTimeout: options.commandTimeoutMs ?? 30_000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    // With keepReconnecting (apply), ioredis reconnects in the background for as long as the client
    // lives, and apply's own bounded retry loop decides when to give up; otherwise 3 attempts.
    retryStrategy: options.keepReconnecting === true
      ? (times) => Math.min(times * 100, 2000)
      : (times) => (times > 3 ? null : Math.min(times * 200, 1000)),
  });
  // Errors are reported through the failing command; without a listener ioredis prints them itself.
  let lastError: NodeJS.ErrnoException | undefined;
  client.on('error', (err: NodeJS.ErrnoException) => { lastError = err; });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    const e = (lastError ?? err) as NodeJS.ErrnoException;
    const why = e.code ?? redactedMessage(e.message, target.password);
    const hint = /NOAUTH|WRONGPASS|invalid password/i.test(why)
      ? ' (give the password through the environment variable SESSION_MIGRATE_REDIS_PASSWORD)'
      : '';
    throw new UserFacingError(`cannot connect to Redis at ${d.url}: ${why}${hint}`);
  }
  // SELECT again and check it: ioredis's `db` option (kept so reconnects re-select) ignores a refused
  // SELECT and silently stays on db 0.
  if (d.db !== 0) {
    try {
      await client.select(d.db);
    } catch (err) {
      client.disconnect();
      throw new UserFacingError(`Redis at ${d.url} refused SELECT ${d.db}: ${redactedMessage((err as Error).message, target.password)}`);
    }
  }
  return client;
}

/**
 * First line of a Redis error, with the password masked wherever it stands as a token of its own
 * (not inside a longer word: a one-letter password must not turn "disabled" into "disa***led").
 */
export function redactedMessage(message: string, password: string | undefined): string {
  const line = message.split('\n')[0] ?? '';
  if (password === undefined || password === '') return line;
  const escaped = password.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return line.replace(new RegExp(`(?<![A-Za-z0-9])${escaped}(?![A-Za-z0-9])`, 'g'), '***');
}

/** Escapes glob characters of a prefix for SCAN MATCH (`*`, `?`, `[`, `]`, `\`). */
export function scanPatternForPrefix(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, (c) => '\\' + c) + '*';
}

/**
 * SCANs the keys under a prefix (SCAN MATCH with the prefix's glob characters escaped), one batch of
 * key names (raw bytes) per SCAN reply. A key may come twice, as SCAN guarantees no more (redis.io/commands/scan).
 * @param count SCAN COUNT hint
 */
export async function* scanKeys(client: Redis, prefix: string, count = 1000): AsyncGenerator<Buffer[]> {
  let cursor = '0';
  do {
    // Key names as raw bytes: a name that is not UTF-8 must still be read back and checked.
    const [next, keys] = await client.scanBuffer(cursor, 'MATCH', scanPatternForPrefix(prefix), 'COUNT', count);
    cursor = next.toString('latin1');
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}

/** A key name for reports: as text when it is UTF-8, with any other byte as `\xNN`. */
export function keyNameForDisplay(key: Buffer): string {
  const text = key.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(key)) return text;
  return [...key].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

/**
 * Outcome of one no-clobber write. `exists` carries the value already there and its PTTL in ms
 * (-1: no TTL), so the caller can tell a newer write by the handler (it sets TTL = gc_maxlifetime at
 * every write) from a stale copy.
 */
export type WriteOutcome =
  | { status: 'written' }
  | { status: 'exists'; existing: Buffer; pttlMs: number }
  | { status: 'wrong-type' }
  | { status: 'failed'; error: string };


function oneLine(err: Error): string {
  return (err.message.split('\n')[0] ?? '').slice(0, 200);
}

/** Key names of layout 2 (their one home is @session-migrate/envelope's key-layout.ts). */
export { TOMBSTONE_INFIX, tombstoneKeyFor } from '@session-migrate/envelope';

/** Outcome of one guarded write: the no-clobber outcomes, plus `destroyed` (a tombstone blocked it). */
export type GuardedWriteOutcome = WriteOutcome | { status: 'destroyed' };

/** One value to store with a TTL in milliseconds (> 0): PX keeps a Redis source's PTTL exactly. */
export interface GuardedWriteRequest {
  key: string;
  value: Buffer;
  ttlMs: number;
}

/**
 * The write of one session, atomic in Redis (a Lua script runs alone): a tombstone wins, then
 * `SET key value PX ttl NX`; when the key exists its type and value come back for the caller to compare.
 * KEYS[1] session key, KEYS[2] tombstone key; ARGV[1] value, ARGV[2] TTL in milliseconds.
 * Replies: 'destroyed' | 'written' | 'wrong-type' | ['exists', value, pttl ms].
 */
export const GUARDED_WRITE_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 'destroyed' end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 'written' end
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return 'vanished' end
if t ~= 'string' then return 'wrong-type' end
return {'exists', redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
`;

type ClientWithGuardedWrite = Redis & {
  smGuardedWriteBuffer?: (k1: string, k2: string, value: Buffer, ttlMs: string) => Promise<unknown>;
};

/**
 * Registers the guarded-write script on a client (ioredis defineCommand: EVALSHA, falling back to
 * EVAL on NOSCRIPT, which also covers a Redis restarted mid-run). Idempotent.
 */
function ensureGuardedWrite(client: Redis): void {
  const c = client as ClientWithGuardedWrite;
  if (typeof c.smGuardedWriteBuffer === 'function') return;
  client.defineCommand('smGuardedWrite', { numberOfKeys: 2, lua: GUARDED_WRITE_LUA });
}

/**
 * Writes a batch of sessions in one pipeline, each with the guarded-write script
 * (GUARDED_WRITE_LUA): a session whose tombstone exists is `destroyed` (not written), an existing key
 * is never overwritten (`exists` with its value, or `wrong-type`). Every reply is inspected
 * (shared/cases/BUG-25); values are Buffers (shared/cases/BUG-24).
 * @param prefix the key prefix, to name each session's tombstone
 * @returns one outcome per request, in order; never throws for a failed command (a dropped
 *   connection makes every remaining command `failed`).
 * @throws RangeError for a TTL that is not a positive integer of milliseconds.
 */
export async function writeBatchGuarded(client: Redis, prefix: string, batch: GuardedWriteRequest[]): Promise<GuardedWriteOutcome[]> {
  if (batch.length === 0) return [];
  ensureGuardedWrite(client);
  const pipe = client.pipeline() as unknown as { smGuardedWriteBuffer(k1: string, k2: string, v: Buffer, ttl: string): void; exec(): Promise<Array<[Error | null, unknown]> | null> };
  for (const r of batch) {
    if (!Number.isInteger(r.ttlMs) || r.ttlMs <= 0) throw new RangeError(`TTL must be a positive integer for ${r.key}`);
    pipe.smGuardedWriteBuffer(r.key, tombstoneKeyFor(prefix, r.key), r.value, String(r.ttlMs));
  }
  let replies: Array<[Error | null, unknown]>;
  try {
    replies = (await pipe.exec()) ?? [];
  } catch (err) {
    const error = oneLine(err as Error);
    return batch.map(() => ({ status: 'failed', error }));
  }
  return batch.map((_, i): GuardedWriteOutcome => {
    const [err, result] = replies[i] ?? [new Error('no reply'), null];
    if (err) return { status: 'failed', error: oneLine(err) };
    const text = Buffer.isBuffer(result) ? result.toString('latin1') : typeof result === 'string' ? result : undefined;
    if (text === 'written') return { status: 'written' };
    if (text === 'destroyed') return { status: 'destroyed' };
    if (text === 'wrong-type') return { status: 'wrong-type' };
    if (text === 'vanished') return { status: 'failed', error: 'key expired during the write; retrying' };
    if (Array.isArray(result) && result.length === 3 && Buffer.isBuffer(result[1]) && typeof result[2] === 'number') {
      return { status: 'exists', existing: result[1], pttlMs: result[2] };
    }
    return { status: 'failed', error: 'unexpected reply from the write script' };
  });
}

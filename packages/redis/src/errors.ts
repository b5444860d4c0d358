/**
 * The one classifier of Redis errors. A `transient` error is worth retrying (the connection dropped,
 * the server is loading, a cluster slot is moving, a failover is under way); a `permanent` error
 * comes back the same however often it is retried (an ACL rule, a replica, a full server, a key of
 * another type) and stops the command with what to fix.
 *
 * Error prefixes: https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors and the
 * server sources (src/server.c `shared.*err`, src/acl.c, src/cluster.c, src/script.c of redis 7.0).
 */
import { RUN_THE_COMMAND_AGAIN } from '@session-migrate/common';
import type { RedisRole, Topology } from './url.ts';
import { PASSWORD_ENV } from './url.ts';

export interface ClassifiedError {
  kind: 'transient' | 'permanent';
  /** The Redis error code (first word: NOPERM, READONLY, LOADING, ...) or a Node code (ECONNRESET). */
  code: string;
  /** First line of the error, password masked, at most MESSAGE_MAX characters (cut ones end in `…`). */
  message: string;
  /** What the operator should do (permanent errors). */
  fix?: string;
}

/** A classified error as one line: its message, then its fix in parentheses when it has one. */
export function classifiedLine(c: Pick<ClassifiedError, 'message' | 'fix'>): string {
  return c.fix !== undefined ? `${c.message} (${c.fix})` : c.message;
}

/** Context that changes a verdict or the advice. */
export interface ClassifyContext {
  topology?: Topology;
  username?: string;
  password?: string;
  role?: RedisRole;
  /** The documented minimal ACL rule of the running command, for NOPERM advice. */
  aclRule?: string;
}

/** Codes that are retried: the state they describe passes (redis.io, src/server.c, src/cluster.c). */
const TRANSIENT_CODES = new Set(['LOADING', 'TRYAGAIN', 'CLUSTERDOWN', 'MASTERDOWN', 'MOVED', 'ASK', 'BUSY', 'NOREPLICAS', 'UNBLOCKED']);

/**
 * Start of the error RedisConnection.scan() throws when a master's connection closed during its scan
 * (the cursor belongs to the server as it was: keys may have been skipped).
 */
export const SCAN_INTERRUPTED = 'the connection closed during SCAN of';

/**
 * The error RedisConnection.scan() throws when a Redis Cluster's slots moved between masters while it
 * ran (a resharding): keys of a slot moved from a master not scanned yet to one already scanned were
 * seen by neither SCAN.
 */
export const SCAN_RESHARDED =
  'the slot map of the Redis Cluster changed during SCAN (a resharding?): keys may have been skipped; run again';

/**
 * Start of the error RedisConnection.scan() throws when a master of a Redis Cluster reports a slot
 * being migrated or imported (CLUSTER NODES) before or after the scan: keys already moved to a master
 * scanned earlier may have been seen by neither SCAN.
 */
export const SCAN_RESHARDING = 'the Redis Cluster is resharding';

/**
 * The warning of a cluster SCAN whose ACL user may not run CLUSTER NODES (RedisConnection.scan): what
 * its checks then leave out (a slot being migrated, config epochs, keys stranded by an aborted move)
 * and what to add to the user.
 */
export const CLUSTER_NODES_DENIED =
  'warning: this ACL user may not run CLUSTER NODES (NOPERM): SCAN of the Redis Cluster compares CLUSTER SLOTS and the slot commands and MIGRATEs run (INFO commandstats) only, so it sees no slot being migrated (on redis 6 keys MIGRATEd while it runs may be missed), no config epoch (on redis 6 a slot moved away and back goes unseen), and no keys a master holds in a slot it does not serve (left by an aborted move: listed, though no client reads them); add +cluster|nodes to the user';

/**
 * Start of the error of commands whose connection Redis closed, after each reconnect, while they
 * waited for their replies, more often than maxRetriesPerRequest (connection.ts failRepeatedResends):
 * the server closes it on these very commands, so sending them again cannot help.
 */
export const CLOSED_UNDER_COMMANDS = 'Redis closed the connection';

/**
 * Why a server closes a connection at the same commands each time, as the fix of CLOSED_UNDER_COMMANDS's
 * error: the client sees only the close, the server's log says why. A reply larger than
 * client-output-buffer-limit's `normal` class (Redis logs "scheduled to be closed ASAP for overcoming
 * of output buffer limits", src/networking.c of https://github.com/redis/redis;
 * https://redis.io/docs/latest/develop/reference/clients/#output-buffer-limits) is the usual cause;
 * maxmemory-clients evicts the client using the most memory (Redis 7,
 * https://redis.io/docs/latest/develop/reference/clients/#client-eviction).
 */
const CLOSED_UNDER_COMMANDS_FIX =
  'the server\'s log says why: "overcoming of output buffer limits" means a reply exceeded client-output-buffer-limit for normal clients, whose default 0 0 0 sets none: raise it above the largest session; else check maxmemory-clients and any proxy in between';

/** Node / ioredis errors of a connection that is gone or not answering. */
const CONNECTION_PATTERNS =
  /the connection closed during SCAN|the slot map of the Redis Cluster changed during SCAN|the Redis Cluster is resharding|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTCONN|EAI_AGAIN|Connection is closed|Stream isn't writeable|Command timed out|max retries per request|All sentinels are unreachable|Failed to refresh slots cache|None of startup nodes is available|Cluster is ended|Cluster isn't ready|socket hang up|write after end/i;

/**
 * Whether a classified error says the connection is gone or not answering (a socket error, a
 * timeout, ioredis out of reconnects), as opposed to an answer from Redis such as LOADING or MOVED.
 */
export function isConnectionLost(error: ClassifiedError): boolean {
  return error.code === 'CONNECTION' || /^E[A-Z]+$/.test(error.code);
}

/**
 * Whether a write command that failed with `err` may still have run: anything but an error reply
 * from Redis (ioredis's ReplyError, https://github.com/redis/ioredis lib/index.ts: the server
 * answered, refusing or failing the command) may have been a command sent whose reply was lost. The
 * tools' scripts run their one write last, so an error reply means it did not happen.
 * `err`: as thrown, or a UserFacingError whose `cause` is.
 */
export function mayHaveRun(err: unknown): boolean {
  const e = err instanceof Error && err.name === 'UserFacingError' && err.cause !== undefined ? err.cause : err;
  return !(e instanceof Error && e.name === 'ReplyError');
}

/**
 * The one wording of a lost connection, whatever the topology: the start of the message of every
 * error classifyRedisError finds in IOREDIS_LOST. ioredis words the same condition by client: a
 * single node's (or Sentinel's master's) `Redis` gives up after its reconnects, a Redis Cluster's
 * `Cluster` fails a node's commands at that node's close, or all of them once no node answers. An
 * operator reading apply's FAILED line or a retry line needs one sentence for one condition.
 */
export const CONNECTION_DOWN = 'the connection to Redis is down';

/** classifyRedisError's message for ioredis's "Connection is closed." (connectFailure's TLS hint looks for it). */
export const CONNECTION_CLOSED = `${CONNECTION_DOWN}: it closed`;

/**
 * ioredis's own texts of a lost connection (https://github.com/redis/ioredis), each with what it
 * says after CONNECTION_DOWN: a command's connection failed and its reconnects did too
 * (lib/redis/index.ts, `maxRetriesPerRequest`: the option's name tells an operator nothing); a
 * connection closed under its commands or before them (lib/redis/event_handler.ts closeHandler,
 * Redis.flushQueue; a Redis Cluster's node clients have no reconnects: every close says so); a
 * Redis Cluster client with no node left, which ended after its reconnects (lib/cluster/index.ts
 * handleCloseEvent, sendCommand; packages/redis/src/connection.ts newCluster's clusterRetryStrategy).
 */
const IOREDIS_LOST: ReadonlyArray<readonly [RegExp, (m: RegExpExecArray) => string]> = [
  [/^Reached the max retries per request limit \(which is (\d+)\)/, (m) => `no answer after ${m[1]} reconnects`],
  [/^Connection is closed\.?$/, () => 'it closed'],
  [/^(?:None of startup nodes is available|Cluster is ended\.?)$/, () => 'no node of the Redis Cluster answers'],
];

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

/**
 * Longest error message kept, in characters: Redis's own are shorter (its longest, NOAUTH for HELLO
 * in Redis 7, is 205), and a longer one is cut visibly rather than mid-sentence without a sign.
 */
const MESSAGE_MAX = 300;

/**
 * Classifies an error from ioredis (a reply error, a connection error, a timeout).
 * READONLY is permanent on a single node ("this node is a replica") and transient behind Sentinel or
 * in a cluster, where the client follows the new master after a failover.
 */
export function classifyRedisError(err: unknown, ctx: ClassifyContext = {}): ClassifiedError {
  const e = err as (Error & { code?: string; command?: { name?: string } }) | undefined;
  const raw = e?.message ?? String(err);
  if (e?.name !== 'ReplyError') {
    for (const [pattern, what] of IOREDIS_LOST) {
      const m = pattern.exec(raw);
      if (m !== null) return { kind: 'transient', code: 'CONNECTION', message: `${CONNECTION_DOWN}: ${what(m)}` };
    }
  }
  if (e?.name !== 'ReplyError' && raw.startsWith(`${CLOSED_UNDER_COMMANDS} `))
    return { kind: 'permanent', code: 'CONNECTION', message: raw, fix: CLOSED_UNDER_COMMANDS_FIX };
  const line = redactedMessage(raw, ctx.password);
  const message = line.length > MESSAGE_MAX ? `${line.slice(0, MESSAGE_MAX - 1)}…` : line;
  const first = /^([A-Z][A-Z0-9_-]*)\b/.exec(raw)?.[1];
  if (first === undefined) {
    // Not a reply of the server: a socket error (ECONNRESET...), a timeout, ioredis's own errors.
    if (e !== undefined && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return { kind: 'transient', code: e.code, message };
    if (/can't run this command or subcommand/.test(raw)) return accessError(raw, message, ctx);
    if (/invalid password|invalid username-password/i.test(raw)) return authError('WRONGPASS', message, ctx);
    if (CONNECTION_PATTERNS.test(raw)) return { kind: 'transient', code: 'CONNECTION', message };
    return { kind: 'transient', code: e?.name ?? 'ERROR', message };
  }
  return replyError(first, raw, message, ctx);
}

/** The fix of an error reply that is the same whatever the context (its code -> what to do). */
const PERMANENT_FIXES: Readonly<Record<string, string>> = {
  OOM: `Redis reached maxmemory and refuses writes: raise maxmemory (a larger node) or free memory, then ${RUN_THE_COMMAND_AGAIN}`,
  CROSSSLOT: 'keys of one command are in different hash slots: the prefix must not contain "{" or "}"',
  WRONGTYPE: 'a key under the prefix holds another Redis type: choose a prefix no other application uses',
  MISCONF: 'Redis refuses writes because it cannot save its RDB snapshot: fix its disk or persistence settings',
};

/**
 * An error reply of the server (`CODE message`): permanent with its fix, or transient (TRANSIENT_CODES,
 * NOSCRIPT, READONLY behind Sentinel or in a cluster).
 */
function replyError(first: string, raw: string, message: string, ctx: ClassifyContext): ClassifiedError {
  if (first === 'NOPERM' || /can't run this command or subcommand/.test(raw)) return accessError(raw, message, ctx);
  if (first === 'WRONGPASS' || first === 'NOAUTH' || /invalid password|invalid username-password/i.test(raw))
    return authError(first, message, ctx);
  if (first === 'READONLY') {
    if (ctx.topology === 'sentinel' || ctx.topology === 'cluster') return { kind: 'transient', code: first, message };
    return {
      kind: 'permanent',
      code: first,
      message,
      fix: `this node is a replica: give the master (the primary endpoint; after a failover, once it points at the new master), then ${RUN_THE_COMMAND_AGAIN}`,
    };
  }
  const fix = PERMANENT_FIXES[first];
  if (fix !== undefined) return { kind: 'permanent', code: first, message, fix };
  if (first === 'NOSCRIPT') return { kind: 'transient', code: first, message };
  if (first === 'ERR' && /unknown command/i.test(raw)) {
    return {
      kind: 'permanent',
      code: 'ERR',
      message,
      fix: 'this server does not offer a command session-migrate needs (renamed or disabled)',
    };
  }
  if (first === 'ERR' && /DB index is out of range|SELECT is not allowed in cluster mode/i.test(raw)) {
    return {
      kind: 'permanent',
      code: 'ERR',
      message,
      fix:
        ctx.topology === 'cluster'
          ? 'a Redis Cluster has only database 0: use /0 in the URL'
          : 'the database number in the URL does not exist on this server',
    };
  }
  if (TRANSIENT_CODES.has(first)) return { kind: 'transient', code: first, message };
  // Any other error reply of the server: it will answer the same again.
  return { kind: 'permanent', code: first, message, fix: 'Redis refused the command' };
}

/**
 * NOPERM (a command, or keys outside the user's patterns) and the error a script's `redis.call` of a
 * forbidden command raises: what the user's ACL rule lacks, with the minimal rule when known.
 */
function accessError(raw: string, message: string, ctx: ClassifyContext): ClassifiedError {
  const user = ctx.username !== undefined ? `user "${ctx.username}"` : 'the default user';
  const rule =
    ctx.aclRule !== undefined
      ? `; the minimal rule is ${ctx.aclRule} (docs/redis.md)`
      : ' (docs/redis.md lists the minimal rule of each command)';
  if (!/^NOPERM\b/.test(raw)) {
    return {
      kind: 'permanent',
      code: 'NOPERM',
      // Without Redis's "script: <sha>, on @user_script:<line>." (Lua's position in our own script
      // tells an operator nothing; the fix names what the rule lacks).
      message: message.replace(/\s*script: [0-9a-f]+, on @user_script:\d+\.?$/, ''),
      fix: `the ACL rule of ${user} lacks a command that session-migrate's Lua script runs (SET, GET, EXISTS, TYPE, PTTL, DEL)${rule}`,
    };
  }
  const cmd = /run the '([^']+)' command/.exec(raw)?.[1];
  const fix =
    cmd !== undefined
      ? `the ACL rule of ${user} lacks ${cmd.toUpperCase()} (+${cmd.toLowerCase()})${rule}`
      : /keys/.test(raw)
        ? `the ACL rule of ${user} does not allow keys under the prefix (add ~PREFIX*)${rule}`
        : `the ACL rule of ${user} does not allow this${rule}`;
  return { kind: 'permanent', code: 'NOPERM', message, fix };
}

/** WRONGPASS / NOAUTH: which user name and which password variable to check. */
function authError(code: string, message: string, ctx: ClassifyContext): ClassifiedError {
  const env = PASSWORD_ENV[ctx.role ?? 'target'];
  return { kind: 'permanent', code, message, fix: `check the user name in the URL and the password in ${env}` };
}

/**
 * The library API's name of classifiedLine (exported by the package since its first release): the
 * same function, one home.
 */
export const describeClassified: (c: ClassifiedError) => string = classifiedLine;

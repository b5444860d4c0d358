/**
 * What one Redis key is, for `verify`'s scan of the database (pure: no Redis, no I/O). Classes:
 *
 * - `envelope`: under the prefix, opens under the key ring, and has a TTL;
 * - `tombstone`, `handler-lock`: the handler's own keys of key layout 2 (`<prefix>destroyed:{hex}` =
 *   `1`, `<prefix>lock:{hex}`; packages/envelope/src/key-layout.ts), well-formed and with a TTL;
 * - `invalid`: anything else under the prefix (a failure, with its reason);
 * - `plaintext-session`: a string PHP would load as a session under any of the four serialize
 *   handlers (@session-migrate/php-session loadableSessionFormat), wherever it is (a failure);
 * - `empty-session`: a phpredis-named key (`<phpredis prefix><session ID>`) holding no session data:
 *   an empty string (phpredis creates one with `SET key "" NX EX` for a new session ID:
 *   redis_session.c), or an empty session (`a:0:{}` under php_serialize);
 * - `lock`: phpredis's session lock `<session key>_LOCK` (redis_session.c lock_acquire: `SET lock_key
 *   secret NX PX expire`, or without PX when redis.session.lock_expire and max_execution_time are 0);
 *   `stale-lock` when it has no TTL: it never expires if its holder died (a warning, not a failure);
 * - `other`: anything else, of any type: counted, never a failure, its value never printed.
 */
import type { EnvelopeCodec, OpenFailure } from '@session-migrate/envelope';
import { LOCK_INFIX, TOMBSTONE_INFIX, classifyKeyName } from '@session-migrate/envelope';
import { loadableSessionFormat, loadsAsEmptySession, type SerializeHandler } from '@session-migrate/php-session';
import { SESSION_ID_PATTERN } from '@session-migrate/sources';

export type KeyClass =
  'envelope' | 'tombstone' | 'handler-lock' | 'invalid' | 'plaintext-session' | 'empty-session' | 'lock' | 'stale-lock' | 'other';

/** Every class, in report order. */
export const KEY_CLASSES: readonly KeyClass[] = [
  'envelope',
  'tombstone',
  'handler-lock',
  'invalid',
  'plaintext-session',
  'empty-session',
  'lock',
  'stale-lock',
  'other',
];

/** Why a key fails (under the prefix, or a plaintext session anywhere). */
export type KeyFailureReason =
  OpenFailure | 'wrong-type' | 'no-ttl' | 'empty-value' | 'bad-tombstone' | 'lock-without-ttl' | 'other-key-id' | 'plaintext-session';

/**
 * What a key holds, as read: a string (whole, or not read because it is larger than verify reads
 * outside the prefix: then only its length), or another Redis type (as TYPE names it).
 */
export type KeyValue =
  | { kind: 'string'; value: Buffer }
  /** A string larger than verify reads outside the prefix (its length in bytes): not read. */
  | { kind: 'large-string'; length: number }
  /** Another Redis type, as TYPE names it (hash, list, set, zset, stream, ...). */
  | { kind: 'other-type'; type: string };

export interface KeyContext {
  /** The target prefix, as bytes. */
  prefix: Buffer;
  codec: EnvelopeCodec;
  /**
   * Prefixes of phpredis session key names (`PHPREDIS_SESSION:`, `PHPREDIS_CLUSTER_SESSION:`, and
   * any plaintext prefix declared): they name `empty-session` and `lock` keys.
   */
  phpredisPrefixes: readonly Buffer[];
  /** Key ID (16 hex) every envelope must be sealed under (verify --require-key-id). */
  requireKeyId?: string;
}

export interface KeyVerdict {
  class: KeyClass;
  /** Set when the key fails verification. */
  failure?: KeyFailureReason;
  /**
   * Of an envelope: the key ID it was sealed under; of a value that fails `unknown-key-id`: the key
   * ID its header names, which the key ring given does not hold (a public identifier: docs/keys.md).
   */
  keyId?: string;
  /** Of a plaintext session: the serialize_handler PHP would load it with. */
  format?: SerializeHandler;
}

/** phpredis's session key prefixes (redis_session.c: REDIS_SESSION_PREFIX, CLUSTER_SESSION_PREFIX). */
export const PHPREDIS_PREFIXES = ['PHPREDIS_SESSION:', 'PHPREDIS_CLUSTER_SESSION:'] as const;

const TOMBSTONE_VALUE = Buffer.from('1');
const LOCK_SUFFIX = Buffer.from('_LOCK');

const TOMBSTONE_INFIX_BYTES = Buffer.from(TOMBSTONE_INFIX, 'latin1');
const LOCK_INFIX_BYTES = Buffer.from(LOCK_INFIX, 'latin1');

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** Whether `key` holds `part` at offset `at` (no allocation). */
function hasAt(key: Buffer, at: number, part: Buffer): boolean {
  return key.length >= at + part.length && key.compare(part, 0, part.length, at, at + part.length) === 0;
}

/**
 * How a phpredis prefix names the key: `session` (`<prefix><ID>`), `lock` (`<prefix><ID>_LOCK`), or
 * undefined. IDs follow PHP's rule (SESSION_ID_PATTERN); `_` is no ID character, so the two never mix.
 */
export function phpredisName(key: Buffer, prefixes: readonly Buffer[]): 'session' | 'lock' | undefined {
  for (const p of prefixes) {
    if (!startsWith(key, p)) continue;
    const isLock =
      key.length > p.length + LOCK_SUFFIX.length && key.compare(LOCK_SUFFIX, 0, LOCK_SUFFIX.length, key.length - LOCK_SUFFIX.length) === 0;
    const id = key.toString('latin1', p.length, isLock ? key.length - LOCK_SUFFIX.length : key.length);
    if (SESSION_ID_PATTERN.test(id)) return isLock ? 'lock' : 'session';
  }
  return undefined;
}

/**
 * Classifies one key (see the module comment).
 * @param pttlMs PTTL in ms (-1: no TTL); the caller drops keys that are gone (-2). Read for keys under
 *   the prefix and phpredis lock names; any value (NaN) for other keys, whose class does not depend on it
 */
export function classifyKey(key: Buffer, value: KeyValue, pttlMs: number, ctx: KeyContext): KeyVerdict {
  const { prefix } = ctx;
  if (startsWith(key, prefix)) return classifyUnderPrefix(key, value, pttlMs, ctx);
  if (value.kind === 'other-type') return { class: 'other' };
  const named = phpredisName(key, ctx.phpredisPrefixes);
  if (named === 'lock') return { class: pttlMs >= 0 ? 'lock' : 'stale-lock' };
  if (value.kind === 'large-string') return { class: 'other' };
  const format = loadableSessionFormat(value.value);
  if (format !== undefined) return { class: 'plaintext-session', failure: 'plaintext-session', format };
  // No session data: an empty value, or a payload PHP loads as an empty $_SESSION (php_serialize's
  // `a:0:{}` of an empty session; `N;` followed by anything).
  if (named === 'session' && loadsAsEmptySession(value.value)) return { class: 'empty-session' };
  return { class: 'other' };
}

function classifyUnderPrefix(key: Buffer, value: KeyValue, pttlMs: number, ctx: KeyContext): KeyVerdict {
  const { prefix } = ctx;
  // The scan reads every string under the prefix whole; a large-string here is a caller's bug.
  if (value.kind !== 'string') return { class: 'invalid', failure: value.kind === 'other-type' ? 'wrong-type' : 'not-envelope' };
  const data = value.value;
  if (hasAt(key, prefix.length, TOMBSTONE_INFIX_BYTES)) {
    // A tombstone left by the handler's destroy(): exactly `1`, with a TTL, under a well-formed name.
    const ok = classifyKeyName(prefix, key).kind === 'tombstone' && data.equals(TOMBSTONE_VALUE) && pttlMs > 0;
    return ok ? { class: 'tombstone' } : { class: 'invalid', failure: 'bad-tombstone' };
  }
  if (hasAt(key, prefix.length, LOCK_INFIX_BYTES) && classifyKeyName(prefix, key).kind === 'lock') {
    // The handler's session lock: an owner token with a TTL (PX), never without one.
    return pttlMs > 0 ? { class: 'handler-lock' } : { class: 'invalid', failure: 'lock-without-ttl' };
  }
  const opened = ctx.codec.open(key, data);
  if (!opened.ok) {
    if (data.length === 0) return { class: 'invalid', failure: 'empty-value' };
    const format = loadableSessionFormat(data);
    if (format !== undefined) return { class: 'plaintext-session', failure: 'plaintext-session', format };
    return { class: 'invalid', failure: opened.reason, ...(opened.reason === 'unknown-key-id' ? { keyId: opened.keyId! } : {}) };
  }
  if (pttlMs === -1) return { class: 'invalid', failure: 'no-ttl', keyId: opened.keyId };
  if (ctx.requireKeyId !== undefined && opened.keyId !== ctx.requireKeyId)
    return { class: 'envelope', failure: 'other-key-id', keyId: opened.keyId };
  return { class: 'envelope', keyId: opened.keyId };
}

/**
 * A key name for reports with session IDs shortened: every run of 16 or more session-ID characters
 * (`[A-Za-z0-9,-]`, PHP's rule; PHP 8 IDs are 22 to 256 of them) keeps its first 6 and `…`. A
 * plaintext session's key name usually carries its ID, which is a replayable credential.
 */
export function redactKeyName(display: string): string {
  return display.replace(/[A-Za-z0-9,-]{16,}/g, (run) => `${run.slice(0, 6)}…`);
}

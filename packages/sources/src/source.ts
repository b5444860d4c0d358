/**
 * The one interface plan, apply, verify and purge use for any session source: a `files` save_path
 * (FilesSource) or plaintext sessions already in Redis under phpredis's key prefix (RedisSource).
 */
import type { ConnectionDescription } from '@session-migrate/redis';
import type { FilesSourceDescription, SourceItem, SourceSession, StableReadOptions } from './files.ts';

/**
 * A plaintext phpredis source, without credentials: safe to print and to store in a plan. Where it is
 * (as the connection layer describes any Redis: URL without credentials, topology, user, TLS file
 * paths, cluster nodes or sentinels), plus its key prefix and spec.
 */
export interface RedisSourceDescription extends ConnectionDescription {
  kind: 'redis';
  /** Key prefix: a session is the string key `<prefix><session ID>` (phpredis default `PHPREDIS_SESSION:`). */
  prefix: string;
  /** The spec as given, with any password replaced by `<redacted len=N>`. */
  spec: string;
}

export type SourceDescription = FilesSourceDescription | RedisSourceDescription;

/** Result of removing one plaintext session from its source (purge). */
export type RemoveOutcome = 'removed' | 'changed' | 'gone';

/**
 * A source of PHP sessions.
 *
 * - `sessions()` streams every session once, already read (bytes exactly as PHP stored them), in
 *   batches, with skipped entries (named, never with content). A `SourceSession` from Redis carries
 *   `ttlMs` (its remaining PTTL, or undefined when the key has no TTL: then gc_maxlifetime applies and
 *   `noTtl` is true); one from files carries only `mtimeMs` (age rule of mod_files.c).
 * - `removeIfUnchanged(session)` deletes the plaintext copy only if it still holds exactly the bytes
 *   given (Redis: a Lua compare-and-delete; files: re-read without following symlinks, compare, unlink).
 * - `ids()` streams the session IDs only (names: a directory walk, a SCAN), in batches; `readIds(ids)`
 *   reads those sessions as `sessions()` would (undefined for one that is not there). Together they
 *   find a session ID present in several sources without reading every session twice.
 * - `close()` releases connections.
 */
export interface Source {
  readonly kind: 'files' | 'redis';
  /** Cap on a session's size in bytes; larger ones are skipped as `oversized`. */
  readonly maxSessionBytes: number;
  /** A files source's uids PHP runs as: other owners' files (root aside) are skipped as `foreign-owner` (files.ts phpAcceptsOwner). */
  readonly phpUids?: readonly number[] | undefined;
  describe(): SourceDescription;
  /**
   * onOwner (files sources; others never call it): called once per session file with the owner
   * (uid) its read saw, before the file's item is yielded, so a caller can count owners in this walk
   * (FilesSource.sessions).
   */
  sessions(options?: { batchSize?: number; read?: StableReadOptions; onOwner?: (uid: number) => void }): AsyncIterable<SourceItem[]>;
  ids(): AsyncIterable<string[]>;
  readIds(ids: readonly string[], options?: { read?: StableReadOptions }): Promise<Array<SourceItem | undefined>>;
  removeIfUnchanged(session: SourceSession): Promise<RemoveOutcome>;
  close(): Promise<void>;
}

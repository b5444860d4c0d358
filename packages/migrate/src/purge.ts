/**
 * `purge`: the last step of a migration. Deletes the plaintext session files of a `files` save_path,
 * but only those whose session is proven to be in Redis "same or newer" (or is gone for PHP anyway),
 * and by default nothing at all while any live session is not proven: then it lists those sessions
 * (file names shortened by redactSessionPath) and the caller exits 1.
 *
 * The rule for one session file (judgeSession, pure):
 *   - `expired`: mtime + gc_maxlifetime is past (remainingTtlSeconds <= 0): PHP's files GC would delete
 *     it and no handler reads it (php-src ext/session/mod_files.c, ps_files_cleanup_dir). Deleted.
 *   - `empty`: a 0-byte file holds no session data; deleting it loses nothing. Deleted.
 *   - `corrupt` (only with the plan's session.serialize_handler, PurgeOptions.serializeHandler): a
 *     session not proven otherwise whose bytes PHP would reject (decideSession, the one rule plan and
 *     apply use, which never copy it). PHP destroys such a session at its first read: session_start
 *     fails to decode it, warns "Failed to decode session object. Session has been destroyed" and
 *     calls the save handler's destroy, which unlinks the file (php-src ext/session/session.c,
 *     php_session_initialize -> php_session_cancel_decode -> php_session_destroy). No user can have
 *     it, so deleting it loses nothing. Deleted. Judged again on the bytes read at the delete, like
 *     every verdict: a file rewritten since with a valid session must be proven in Redis.
 *   - `destroyed`: the session's tombstone `<prefix>destroyed:{<hash>}` exists: it was logged out
 *     through the read-through handler. Deleted.
 *   - `same`: the Redis value opens under the key and its plaintext equals the file's bytes. Deleted.
 *   - `newer`: the Redis value opens, and its last write, inferred as now + PTTL - gc_maxlifetime
 *     (the handler sets TTL = gc_maxlifetime at every write and refresh), is at least
 *     PURGE_NEWER_MARGIN_MS after the file's mtime. Deleted. The margin makes a value copied by
 *     `apply` from an older version of the file (TTL = whole seconds of mtime + gc_maxlifetime - now,
 *     so its inferred write time is below mtime + 1 s) never count as newer than a later rewrite.
 *   - `superseded` (a plan with several sources): the file is an older copy of a session ID that
 *     another source holds a later copy of (packages/migrate/src/several-sources.ts), and the Redis
 *     value opens (it is that copy, or one the handler wrote since). Deleted.
 *   - otherwise the session is not proven: `missing` (no key), `older` (key holds other bytes and is
 *     not newer), `not-envelope`/`auth-failed`/... (the value does not open), `no-ttl`, `wrong-type`.
 *
 * Deleting, one batch of 500 at a time: right before a batch is deleted, its sessions are read from
 * Redis again and judged again by the same rule (a Redis restart without persistence, a FLUSHDB, an
 * eviction or a failover to a replica that lacked the writes can come between the check of a large
 * directory and its deletes); a session no longer deletable then is kept, counted in `lost` and
 * listed as not proven (the run is not ok). Then (removeFileIfUnchanged) right before each unlink the
 * file is lstat'ed again and must be the same regular file (device, inode, size, mtime and ctime in ns) as when it was judged; a file
 * PHP rewrote meanwhile is kept (`changed`). unlink never follows a symbolic link, and the session
 * directory walk never descends through one (FilesSource). Running purge again is safe: deleted
 * files are simply no longer there.
 *
 * A plaintext Redis source (`redis:`, phpredis keys `<prefix><id>`) is purged by the same rule: a
 * key's "mtime" is its inferred last write (now + PTTL - gc_maxlifetime, phpredis writes with SETEX
 * gc_maxlifetime), and each key is deleted by the source's atomic compare-and-delete (Lua), so a key
 * PHP rewrote meanwhile is kept as `changed`.
 */
import { lstatSync, unlinkSync, type BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { classifiedLine, mayHaveRun, type RedisConnection } from '@session-migrate/redis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import {
  NEWER_MARGIN_MS,
  UserFacingError,
  describeFsError,
  isExpired,
  isRedisNewerThanFile,
  isTtlAboveGcMaxlifetime,
  lastWriteMs,
  printable,
  redactSessionPath,
  ttlAboveGcMaxlifetimeMessage,
} from '@session-migrate/common';
import type { SerializeHandler } from '@session-migrate/php-session';
import { decideSession, looksCompleteFor } from './plan.ts';
import {
  NOT_COPIED_SKIPS,
  readSessionFile,
  type FilesSource,
  type SkippedEntry,
  type Source,
  type SourceSession,
} from '@session-migrate/sources';
import { tombstoneKeyFor } from '@session-migrate/target';

/** How much later than the file's mtime the inferred last write in Redis must be to count as newer (ms): the lifecycle policy's NEWER_MARGIN_MS. */
export const PURGE_NEWER_MARGIN_MS = NEWER_MARGIN_MS;

/**
 * Why a session file may be deleted. `superseded`: another source of the plan holds a later copy of
 * the same session ID (several-sources.ts), and Redis holds a value that opens (that copy, or a newer
 * one), so this older copy is not needed. `corrupt`: PHP would reject its bytes and destroys it at
 * its first read (see the module comment).
 */
export type PurgeDeletable = 'same' | 'newer' | 'destroyed' | 'expired' | 'empty' | 'superseded' | 'corrupt';
/** Why a session file is not proven in Redis (blocks purge unless allowPartial). */
export type PurgeBlocker =
  | 'missing'
  | 'older'
  | 'no-ttl'
  | 'wrong-type'
  | 'not-envelope'
  | 'unsupported-version'
  | 'unknown-key-id'
  | 'auth-failed'
  | 'unreadable-file';

export type PurgeVerdict = { deletable: true; reason: PurgeDeletable } | { deletable: false; reason: PurgeBlocker };

/** What Redis holds for one session. */
export interface RedisState {
  /** The session key's value; null when the key does not exist; 'wrong-type' for a non-string key. */
  value: Buffer | null | 'wrong-type';
  /** PTTL of the session key in ms (-1 no TTL, -2 no key). */
  pttlMs: number;
  /** Whether the session's tombstone exists. */
  tombstone: boolean;
}

/**
 * Judges one session file against Redis (pure; see the module comment for the rule).
 * @param file the file's bytes and mtime (ms since the epoch)
 * @param opened the Redis value opened under its key name (only when `redis.value` is a Buffer)
 * @param gcMaxlifetime session.gc_maxlifetime, seconds
 * @param nowMs current time, ms since the epoch
 */
export function judgeSession(
  file: { data: Buffer; mtimeMs: number },
  redis: RedisState,
  opened:
    | { ok: true; plaintext: Buffer }
    | { ok: false; reason: Exclude<PurgeBlocker, 'missing' | 'older' | 'no-ttl' | 'wrong-type' | 'unreadable-file'> }
    | undefined,
  gcMaxlifetime: number,
  nowMs: number,
): PurgeVerdict {
  // The session-lifecycle policy (packages/common/src/lifecycle.ts): expired, destroyed, newer.
  if (isExpired(file.mtimeMs, gcMaxlifetime, nowMs)) return { deletable: true, reason: 'expired' };
  if (redis.tombstone) return { deletable: true, reason: 'destroyed' };
  if (redis.value === 'wrong-type') return { deletable: false, reason: 'wrong-type' };
  if (redis.value === null) return file.data.length === 0 ? { deletable: true, reason: 'empty' } : { deletable: false, reason: 'missing' };
  if (opened === undefined) throw new Error('judgeSession: a value without its opened result');
  if (!opened.ok) return { deletable: false, reason: opened.reason };
  if (opened.plaintext.equals(file.data)) return { deletable: true, reason: 'same' };
  if (redis.pttlMs < 0) return { deletable: false, reason: 'no-ttl' };
  if (isRedisNewerThanFile(redis.pttlMs, file.mtimeMs, gcMaxlifetime, nowMs)) return { deletable: true, reason: 'newer' };
  if (file.data.length === 0) return { deletable: true, reason: 'empty' };
  return { deletable: false, reason: 'older' };
}

/** One file purge looked at (names shortened; never contents). */
export interface PurgeEntry {
  /** File path with the session ID shortened (redactSessionPath). */
  file: string;
  /** Redis key name of the session (safe to print). */
  key: string;
  reason: PurgeDeletable | PurgeBlocker;
  bytes: number;
}

export interface PurgeReport {
  /** `files` (session files deleted) or `redis` (plaintext phpredis keys deleted). */
  sourceKind: 'files' | 'redis';
  dryRun: boolean;
  allowPartial: boolean;
  /** True when every session file was deletable (nothing blocks). */
  complete: boolean;
  /** Whether files were (or, in a dry run, would be) deleted: complete, or allowPartial. */
  deleting: boolean;
  /** Session files looked at. */
  sessions: number;
  /** Deletable files by reason. */
  deletable: Record<string, number>;
  deletableBytes: number;
  /** Files not proven in Redis, by reason. */
  blocked: Record<string, number>;
  /** Files deleted now (0 in a dry run or when purge refused). */
  deleted: number;
  deletedBytes: number;
  /** Files kept because they changed between the check and the unlink (re-run purge). */
  changed: number;
  /**
   * Sessions proven at the check but no longer when their batch was checked again right before its
   * deletes (their Redis copy vanished meanwhile: restart, flush, eviction, failover): kept, and
   * listed among the blockers with the reason found then.
   */
  lost: number;
  /** Directory entries that are not sessions PHP reads (symlinks, bad names...) or could not be read, by reason: never touched. */
  skipped: Record<string, number>;
  /**
   * Plaintext left in the directory afterwards (in a dry run: what would be left). `otherUsers`: of
   * these, the files skipped as `foreign-owner` (owned by another user than root or PHP's: PHP's files
   * handler refuses them, packages/sources/src/files.ts phpAcceptsOwner), counted in `files` and
   * `bytes` too; absent when there is none.
   */
  remaining: { files: number; bytes: number; otherUsers?: { files: number; bytes: number } };
  /** Blocking sessions, listed (at most maxListed). */
  blockers: PurgeEntry[];
  /** In a dry run: the files that would be deleted (at most maxListed). */
  wouldDelete: PurgeEntry[];
}

export interface PurgeOptions {
  /**
   * A files source, or a plaintext Redis source (`redis:`; its sessions have no mtime: their last
   * write is inferred from the PTTL the same way, as phpredis also writes with SETEX gc_maxlifetime,
   * and each key is deleted by the source's atomic compare-and-delete).
   */
  source: FilesSource | Source;
  /** The target, on any topology (pipelines grouped by slot). */
  client: RedisConnection;
  codec: EnvelopeCodec;
  prefix: string;
  /** session.gc_maxlifetime, seconds. */
  gcMaxlifetime: number;
  dryRun: boolean;
  /** Delete the proven files even while others are not proven. */
  allowPartial: boolean;
  /** ms since the epoch; default now (tests pin it). */
  nowMs?: number;
  /** Entries listed per list (counts are always complete). Default 1000. */
  maxListed?: number;
  /**
   * Session IDs whose copy in this source lost to a later copy in another source of the plan
   * (several-sources.ts): such a copy is deletable as `superseded` when Redis holds a value that
   * opens, even if it is not the same or newer than this copy.
   */
  superseded?: ReadonlySet<string>;
  /**
   * PHP's session.serialize_handler as the plan recorded it: a session not proven in Redis whose bytes
   * PHP would reject under it (decideSession's `corrupt`) is deletable as `corrupt`, and session files
   * are read with looksCompleteFor(it), so a write in progress is never taken for one. Absent (no plan):
   * such a session is not proven, as before (a guessed handler could take valid sessions for corrupt).
   */
  serializeHandler?: SerializeHandler;
  /**
   * Called once every session was judged, before anything is deleted; resolves whether to delete
   * (default: complete, or allowPartial). Purge of several sources waits there until every source is
   * judged, so that nothing is deleted anywhere while a session of any source is not proven.
   */
  beforeDelete?: (report: PurgeReport) => Promise<boolean>;
  /**
   * A files source: counts its session files of a non-root owner in the walk that judges them (the
   * lstat taken before each read, as FilesSource.countOwners counts), before beforeDelete is called.
   * Given by the purge use case when the plan knows no PHP user for the source (phpUserUnknown).
   */
  nonRootFiles?: { count: number };
}

/** A report with nothing judged yet (complete until a session is found not proven). */
export function emptyPurgeReport(sourceKind: PurgeReport['sourceKind'], dryRun: boolean, allowPartial: boolean): PurgeReport {
  return {
    sourceKind,
    dryRun,
    allowPartial,
    complete: true,
    deleting: false,
    sessions: 0,
    deletable: {},
    deletableBytes: 0,
    blocked: {},
    deleted: 0,
    deletedBytes: 0,
    changed: 0,
    lost: 0,
    skipped: {},
    remaining: { files: 0, bytes: 0 },
    blockers: [],
    wouldDelete: [],
  };
}

interface Pending {
  id: string;
  location: string;
  /** The file's mtime (a Redis source: its inferred last write), ms: judged again before deleting. */
  mtimeMs: number;
  reason: PurgeDeletable;
  /** Files: identity and content hash to re-check before unlink. */
  stat?: BigIntStats;
  sha256?: string;
  /** Redis source: the session, for the source's compare-and-delete. */
  session?: SourceSession;
  bytes: number;
}

interface Judged {
  id: string;
  location: string;
  data: Buffer;
  mtimeMs: number;
  stat?: BigIntStats;
  session?: SourceSession;
}

/** The state of one purge run: the report being built, what remains on disk, the deletable sessions. */
class PurgeRun {
  readonly report: PurgeReport;
  readonly pending: Pending[] = [];
  /** Plaintext session files present (regular files named sess_*), to report what remains. */
  readonly present = { files: 0, bytes: 0 };
  /** Of `present`, the files skipped as `foreign-owner`. */
  readonly otherUsers = { files: 0, bytes: 0 };
  readonly maxListed: number;
  readonly redisSource: Source | undefined;
  /** A Redis source's compare-and-delete failed without a reply and may have run (PurgeStopped.inFlight). */
  deleteInFlight = false;
  /**
   * Set when a TTL read is longer than gc_maxlifetime (isTtlAboveGcMaxlifetime): the gc_maxlifetime
   * given is too small to infer write times, and purge deletes nothing (purgeSessions throws).
   */
  ttlAboveGc: string | undefined;

  constructor(readonly options: PurgeOptions) {
    this.maxListed = options.maxListed ?? 1000;
    this.redisSource = options.source.kind === 'redis' ? (options.source as Source) : undefined;
    this.report = emptyPurgeReport(this.redisSource !== undefined ? 'redis' : 'files', options.dryRun, options.allowPartial);
  }

  /** A session not proven in Redis: the purge is incomplete. */
  block(entry: PurgeEntry): void {
    const { report } = this;
    report.complete = false;
    report.blocked[entry.reason] = (report.blocked[entry.reason] ?? 0) + 1;
    if (report.blockers.length < this.maxListed) report.blockers.push(entry);
  }

  /** An entry the source skipped; oversized, unreadable or unstable ones block (NOT_COPIED_SKIPS). */
  skip(s: SkippedEntry): void {
    const { report, present } = this;
    const size = this.redisSource !== undefined ? undefined : regularFileSize(s.location);
    if (size !== undefined && isSessionName(s.location)) {
      present.files++;
      present.bytes += size;
      if (s.reason === 'foreign-owner') {
        this.otherUsers.files++;
        this.otherUsers.bytes += size;
      }
    }
    if (NOT_COPIED_SKIPS.has(s.reason))
      this.block({ file: redactSessionPath(s.location), key: '', reason: 'unreadable-file', bytes: size ?? 0 });
    else report.skipped[s.reason] = (report.skipped[s.reason] ?? 0) + 1;
  }

  /** A session read from the source, to be judged. */
  count(data: Buffer): void {
    this.report.sessions++;
    this.present.files++;
    this.present.bytes += data.length;
  }

  /**
   * Reads each session's Redis key, TTL and tombstone in one grouped pipeline and judges it.
   * @throws when Redis fails for any key (nothing is deleted before every session was judged).
   */
  async judgeBatch(batch: Judged[]): Promise<void> {
    if (batch.length === 0) return;
    const nowMs = this.options.nowMs ?? Date.now();
    const { keys, states } = await this.readStates(batch);
    batch.forEach((s, i) => {
      this.checkTtl(keys[i]!, states[i]!.pttlMs);
      this.judgeOne(s, keys[i]!, states[i]!, nowMs);
    });
  }

  /**
   * What Redis holds for each session (value, PTTL, tombstone), in one grouped pipeline.
   * @throws when Redis fails for any key, naming the key.
   */
  async readStates(batch: ReadonlyArray<{ id: string }>): Promise<{ keys: string[]; states: RedisState[] }> {
    const { client, codec, prefix } = this.options;
    const keys = batch.map((s) => codec.keyName(prefix, s.id));
    const replies = await client.runGrouped(
      keys.map((key) => ({
        key,
        build: (pipe: ChainableCommander) => {
          pipe.getBuffer(key);
          pipe.pttl(key);
          pipe.exists(tombstoneKeyFor(prefix, key));
        },
      })),
    );
    const states = keys.map((key, i): RedisState => {
      const [getErr, value] = replies[i]?.[0] ?? [new Error('no reply'), null];
      const [pttlErr, pttl] = replies[i]?.[1] ?? [new Error('no reply'), null];
      const [tombErr, tomb] = replies[i]?.[2] ?? [new Error('no reply'), null];
      const wrongType = getErr !== null && /WRONGTYPE/.test(String(getErr.message));
      const failure = (wrongType ? null : getErr) ?? pttlErr ?? tombErr;
      if (failure) {
        const c = client.classify(failure);
        throw new Error(`Redis failed while checking ${key}: ${classifiedLine(c)}`);
      }
      return { value: wrongType ? 'wrong-type' : (value as Buffer | null), pttlMs: Number(pttl), tombstone: Number(tomb) > 0 };
    });
    return { keys, states };
  }

  /** Records the first TTL longer than gc_maxlifetime (see ttlAboveGc). */
  checkTtl(key: string, pttlMs: number): void {
    if (this.ttlAboveGc === undefined && isTtlAboveGcMaxlifetime(pttlMs, this.options.gcMaxlifetime))
      this.ttlAboveGc = ttlAboveGcMaxlifetimeMessage(key, pttlMs, this.options.gcMaxlifetime);
  }

  /** Judges one session against its Redis state: blocks it, or records it as deletable (pending). */
  private judgeOne(s: Judged, key: string, state: RedisState, nowMs: number): void {
    const { options, report } = this;
    const verdict = this.verdict(s, key, state, nowMs);
    const entry: PurgeEntry = { file: redactSessionPath(s.location), key, reason: verdict.reason, bytes: s.data.length };
    if (!verdict.deletable) {
      this.block(entry);
      return;
    }
    report.deletable[verdict.reason] = (report.deletable[verdict.reason] ?? 0) + 1;
    report.deletableBytes += s.data.length;
    if (options.dryRun && report.wouldDelete.length < this.maxListed) report.wouldDelete.push(entry);
    const common = { id: s.id, location: s.location, mtimeMs: s.mtimeMs, reason: verdict.reason, bytes: s.data.length };
    this.pending.push(s.session !== undefined ? { ...common, session: s.session } : { ...common, stat: s.stat!, sha256: sha256(s.data) });
  }

  /** judgeSession with the value opened under its key, and `superseded` (options.superseded). */
  verdict(s: { id: string; data: Buffer; mtimeMs: number }, key: string, state: RedisState, nowMs: number): PurgeVerdict {
    const { options } = this;
    let opened: Parameters<typeof judgeSession>[2];
    if (Buffer.isBuffer(state.value)) {
      const o = options.codec.open(key, state.value);
      opened = o.ok ? { ok: true, plaintext: o.plaintext } : { ok: false, reason: o.reason };
    }
    const verdict = judgeSession(s, state, opened, options.gcMaxlifetime, nowMs);
    // An older copy of a session another source holds a later copy of: proven by that copy (or a
    // newer one) in Redis, which opens.
    if (!verdict.deletable && verdict.reason === 'older' && options.superseded?.has(s.id) === true)
      return { deletable: true, reason: 'superseded' };
    // A session PHP would reject (the rule plan and apply skip it by): PHP destroys it at its first read.
    if (
      !verdict.deletable &&
      options.serializeHandler !== undefined &&
      decideSession(s.data, s.mtimeMs, options.gcMaxlifetime, options.serializeHandler, nowMs / 1000).action === 'corrupt'
    )
      return { deletable: true, reason: 'corrupt' };
    return verdict;
  }

  /**
   * A pending session that is no longer deletable when checked again right before its delete: kept,
   * moved from the deletable counts to the blockers (the run is not complete).
   */
  lose(p: Pending, key: string, reason: PurgeBlocker): void {
    const { report } = this;
    report.lost++;
    report.deletable[p.reason] = (report.deletable[p.reason] ?? 0) - 1;
    if (report.deletable[p.reason] === 0) delete report.deletable[p.reason];
    report.deletableBytes -= p.bytes;
    this.block({ file: redactSessionPath(p.location), key, reason, bytes: p.bytes });
  }
}

/** Judges every session of a Redis source, one SCAN batch at a time. */
async function judgeRedisSource(run: PurgeRun, redisSource: Source): Promise<void> {
  const { gcMaxlifetime } = run.options;
  for await (const items of redisSource.sessions({ batchSize: 500 })) {
    const nowMs = run.options.nowMs ?? Date.now();
    const batch: Judged[] = [];
    for (const item of items) {
      if (item.kind === 'skipped') {
        if (item.reason !== 'changed-while-reading') run.skip(item);
        continue;
      }
      run.count(item.data);
      if (item.ttlMs !== undefined) run.checkTtl(item.location, item.ttlMs);
      // phpredis writes with SETEX gc_maxlifetime: the key's last write is inferred like the target's.
      const mtimeMs = item.ttlMs !== undefined ? lastWriteMs(item.ttlMs, gcMaxlifetime, nowMs) : item.mtimeMs;
      batch.push({ id: item.id, location: item.location, data: item.data, mtimeMs, session: item });
    }
    await run.judgeBatch(batch);
  }
}

/**
 * Judges every session file of a files source, in batches of 500, recording each file's identity;
 * counts the files of a non-root owner into `nonRoot` when given (PurgeOptions.nonRootFiles).
 */
async function judgeFilesSource(run: PurgeRun, files: FilesSource, nonRoot: { count: number } | undefined): Promise<void> {
  // With the handler, bytes PHP would reject are a verdict: they must be a stable read that looks
  // complete for it, or one proven not to be a write in progress (readSessionFile), as plan's reads.
  const handler = run.options.serializeHandler;
  const readOptions = handler !== undefined ? { looksComplete: looksCompleteFor(handler) } : undefined;
  let batch: Judged[] = [];
  for (const c of files.candidates()) {
    if (c.kind === 'skipped') {
      run.skip(c);
      continue;
    }
    // lstat first, then read (O_NOFOLLOW): the identity recorded is never newer than the bytes judged.
    let stat: BigIntStats;
    try {
      stat = lstatSync(c.location, { bigint: true });
    } catch {
      continue; // gone meanwhile
    }
    if (nonRoot !== undefined && stat.uid !== 0n) nonRoot.count++;
    const item = files.read(c, readOptions);
    if (item.kind === 'skipped') {
      if (item.reason === 'changed-while-reading') continue; // deleted meanwhile
      run.skip(item);
      continue;
    }
    run.count(item.data);
    batch.push({ id: item.id, location: item.location, data: item.data, mtimeMs: item.mtimeMs, stat });
    if (batch.length >= 500) {
      await run.judgeBatch(batch);
      batch = [];
    }
  }
  await run.judgeBatch(batch);
}

/** Sessions checked again in Redis, then deleted, per round trip (as judged: 500). */
const DELETE_BATCH = 500;

/**
 * Deletes the pending sessions one batch at a time: the batch is read from Redis again and judged
 * again (PurgeRun.verdict) right before its deletes, and a session no longer deletable is kept
 * (PurgeRun.lose); then each is deleted only if unchanged since it was judged (compare-and-delete
 * for Redis, lstat + hash for files). Counts what remains.
 * @throws when Redis fails during a re-check (the batches before it are deleted, nothing after).
 */
async function deletePending(run: PurgeRun): Promise<void> {
  for (let i = 0; i < run.pending.length; i += DELETE_BATCH) await deleteBatch(run, run.pending.slice(i, i + DELETE_BATCH));
}

async function deleteBatch(run: PurgeRun, batch: Pending[]): Promise<void> {
  const { report, redisSource } = run;
  // The bytes judged again: a Redis source's session as read; a file read now if still the same.
  const current: Array<{ id: string; data: Buffer; mtimeMs: number } | 'changed' | 'gone'> = batch.map((p) => {
    if (p.session !== undefined) return { id: p.id, data: p.session.data, mtimeMs: p.mtimeMs };
    const data = readFileIfUnchanged(p.location, p.stat!, p.sha256!);
    return Buffer.isBuffer(data) ? { id: p.id, data, mtimeMs: p.mtimeMs } : data;
  });
  const toCheck = batch.filter((_, i) => typeof current[i] === 'object');
  const { keys, states } = await run.readStates(toCheck);
  const nowMs = run.options.nowMs ?? Date.now();
  let j = 0;
  for (const [i, p] of batch.entries()) {
    const c = current[i]!;
    let outcome: 'removed' | 'changed' | 'gone';
    if (typeof c !== 'object') {
      outcome = c;
    } else {
      const key = keys[j]!;
      const verdict = run.verdict(c, key, states[j++]!, nowMs);
      if (!verdict.deletable) {
        run.lose(p, key, verdict.reason);
        continue;
      }
      if (p.session !== undefined) {
        try {
          outcome = await redisSource!.removeIfUnchanged(p.session);
        } catch (err) {
          run.deleteInFlight = mayHaveRun(err); // an error reply to its one send: it did not run (RedisSource.removeIfUnchanged)
          throw err;
        }
      } else outcome = removeFileIfUnchanged(p.location, p.stat!, p.sha256!);
    }
    if (outcome === 'changed') {
      report.changed++;
      continue;
    }
    report.remaining.files--;
    report.remaining.bytes -= p.bytes;
    if (outcome === 'removed') {
      report.deleted++;
      report.deletedBytes += p.bytes;
    }
  }
}

/**
 * purgeSessions (or purge of several sources) stopped by a failure once deleting had begun: a
 * re-check in Redis right before a batch, the source's compare-and-delete, an unlink. `deleted`:
 * files or keys deleted until then (each proven, and checked again right before); `inFlight`: a
 * Redis source's compare-and-delete was sent and its reply lost (it may have run); `reports`: the
 * reports as they stood (the stopped source's, and those of sources that finished). The use case
 * turns it into one line, exit 1 when anything may have been deleted (stoppedRun).
 */
export class PurgeStopped extends Error {
  constructor(
    /** The failure as thrown (a UserFacingError of the source, a Redis error of the target...). */
    readonly failure: unknown,
    readonly deleted: number,
    readonly inFlight: boolean,
    readonly reports: readonly PurgeReport[],
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
    this.name = 'PurgeStopped';
  }
}

/**
 * Runs purge over a files source (see the module comment).
 * @throws UserFacingError when a TTL read is longer than gc_maxlifetime (isTtlAboveGcMaxlifetime:
 *   the gc_maxlifetime given is too small to tell newer from older); nothing is deleted then.
 * @throws when Redis fails while judging (nothing has been deleted yet: deleting starts only after
 *   every session was judged); PurgeStopped when anything fails once deleting began (with the count
 *   deleted until then).
 */
export async function purgeSessions(options: PurgeOptions): Promise<PurgeReport> {
  const run = new PurgeRun(options);
  const { report, redisSource } = run;
  if (redisSource !== undefined) await judgeRedisSource(run, redisSource);
  else await judgeFilesSource(run, options.source as FilesSource, options.nonRootFiles);
  // Write times inferred with a too small gc_maxlifetime are wrong: refuse before deleting anything.
  if (run.ttlAboveGc !== undefined) throw new UserFacingError(`purge refused: ${run.ttlAboveGc}; nothing was deleted`);

  report.deleting = options.beforeDelete !== undefined ? await options.beforeDelete(report) : report.complete || options.allowPartial;
  report.remaining = { ...run.present, ...(run.otherUsers.files > 0 ? { otherUsers: { ...run.otherUsers } } : {}) };
  if (report.deleting && options.dryRun) {
    report.remaining.files -= run.pending.length;
    report.remaining.bytes -= report.deletableBytes;
  } else if (report.deleting) {
    try {
      await deletePending(run);
    } catch (err) {
      throw new PurgeStopped(err, report.deleted, run.deleteInFlight, [report]);
    }
  }
  return report;
}

/**
 * Unlinks a session file only if it is still the file that was judged: lstat (never follows a
 * symlink) gives a regular file with the same device, inode, size, mtime and ctime (ns) as `seen`,
 * and the bytes read now (O_NOFOLLOW) hash to `sha256Hex`. unlink(2) removes a name, never a link target.
 * @returns removed, changed (kept), or gone (already deleted).
 */
export function removeFileIfUnchanged(location: string, seen: BigIntStats, sha256Hex: string): 'removed' | 'changed' | 'gone' {
  const data = readFileIfUnchanged(location, seen, sha256Hex);
  if (!Buffer.isBuffer(data)) return data;
  try {
    unlinkSync(location);
    return 'removed';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    // Node's message quotes the whole path, whose name carries the session ID (a credential).
    throw new UserFacingError(`could not delete the session file ${printable(redactSessionPath(location))}: ${describeFsError(err)}`);
  }
}

/**
 * The bytes of a session file if it is still the file that was judged (see removeFileIfUnchanged),
 * else changed or gone.
 */
function readFileIfUnchanged(location: string, seen: BigIntStats, sha256Hex: string): Buffer | 'changed' | 'gone' {
  let now: BigIntStats;
  try {
    now = lstatSync(location, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return 'changed';
  }
  if (
    !now.isFile() ||
    now.dev !== seen.dev ||
    now.ino !== seen.ino ||
    now.size !== seen.size ||
    now.mtimeNs !== seen.mtimeNs ||
    now.ctimeNs !== seen.ctimeNs
  ) {
    return 'changed';
  }
  const again = readSessionFile({ kind: 'candidate', id: '', location }, Number(seen.size));
  if (again.kind !== 'session' || sha256(again.data) !== sha256Hex)
    return again.kind === 'skipped' && again.reason === 'changed-while-reading' ? 'gone' : 'changed';
  return again.data;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Size of a regular file (lstat: a symlink is not one), undefined otherwise. */
function regularFileSize(location: string): number | undefined {
  try {
    const st = lstatSync(location);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

function isSessionName(location: string): boolean {
  return /(^|\/)sess_[^/]+$/.test(location);
}

/**
 * Turns session-file candidates into envelopes ready to write: read, decide (expired, empty, corrupt,
 * migrate), name the key, seal. Pure CPU and file reads, no Redis: it runs inline or in worker
 * threads (prepare-pool.ts) with the same code.
 *
 * The sessions of a batch are packed into one buffer (PackedSessions): the guarded-write script's
 * calls, encoded as the RESP commands the main thread sends as they are (target's encode.ts: key
 * names, tombstone names, envelopes sealed in place, TTLs), followed by each call's plaintexts; plus
 * a few typed arrays. A worker hands a batch to the main thread by transferring four ArrayBuffers
 * instead of cloning thousands of small objects, and the main thread reads them through
 * PreparedSessions without copying.
 */
import { MIN_ENVELOPE_BYTES, TOMBSTONE_INFIX, writeSessionKeyNames, type EnvelopeCodec } from '@session-migrate/envelope';
import { encodeGuardedWrite, encodedGuardedWriteSize, startsNewGroup, type EncodableSession } from '@session-migrate/target';
import type { SerializeHandler, SessionClassification } from '@session-migrate/php-session';
import { NOT_COPIED_SKIPS, readSessionFile, type SessionCandidate, type SourceItem } from '@session-migrate/sources';
import { redactSessionPath } from '@session-migrate/common';
import { decideSourceSession, looksCompleteFor } from './plan.ts';

/** What preparing needs to know; plain data so it can be sent to a worker. */
export interface PrepareContext {
  prefix: string;
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  /** Seconds since the epoch that TTLs are measured against. */
  nowSeconds: number;
  maxSessionBytes: number;
  /** A files source's uids PHP runs as: other owners' files are skipped as `foreign-owner` (packages/sources phpAcceptsOwner). */
  phpUids?: readonly number[];
  /** When true, nothing is sealed (the envelope is left empty). */
  dryRun: boolean;
}

/** Int32 fields per session in PackedSessions.layout. */
const FIELDS = 9;
/** Int32 fields per call in PackedSessions.calls. */
const CALL_FIELDS = 3;
/** A pack is closed at this many bytes (a new one starts), so offsets stay small whatever the sessions' sizes. */
const PACK_BYTES = 64 * 1024 * 1024;

/**
 * Sessions ready for the guarded write (`SET key value PX ttlMs NX` unless a tombstone exists),
 * packed. Plain data whose ArrayBuffers are each owned by this pack alone: transferable.
 */
export interface PackedSessions {
  count: number;
  /** The encoded script calls, each followed by the plaintexts (the files' bytes) of its sessions. */
  bytes: Uint8Array;
  /**
   * FIELDS Int32 per session, in `bytes`: key name start and length, tombstone name start and
   * length, envelope start and length (0 in a dry run), plaintext start and length; then the index
   * of its item in the batch's input (for its file name).
   */
  layout: Int32Array;
  /** CALL_FIELDS Int32 per script call: start and length of its encoded command in `bytes`, and its number of sessions (consecutive, in order). */
  calls: Int32Array;
  /** Remaining lifetime in milliseconds (files: whole seconds x 1000; Redis source: its PTTL). */
  ttlMs: Float64Array;
}

export interface PreparedBatch {
  /** The sessions to write, in one or more packs (more only when they are large). */
  packs: PackedSessions[];
  expired: number;
  empty: number;
  corrupt: number;
  /** Candidates that could not be read, by reason. */
  skipped: Record<string, number>;
  /** Files that kept changing while read (redacted paths): not copied, reported, apply exits 1. */
  unstable: string[];
  /** Files whose owner PHP's files handler refuses (`foreign-owner`, redacted paths): not copied, named, not a failure. */
  foreign: string[];
}

/** One encoded script call of a batch: its bytes and the sessions (indexes in PreparedSessions) it carries. */
export interface EncodedCall {
  command: Buffer;
  first: number;
  count: number;
}

/**
 * Read access to the sessions of a PreparedBatch, by index (0 .. length-1), over all its packs.
 * Buffers returned are views into the packs (no copy).
 */
export class PreparedSessions {
  readonly length: number;
  private readonly packOf: Int32Array;
  private readonly rowOf: Int32Array;
  private readonly views: Buffer[];

  /**
   * @param packs the batch's packs
   * @param locationOf the file name (or Redis key) of an item of the batch's input, by index
   */
  constructor(
    private readonly packs: readonly PackedSessions[],
    private readonly locationOf: (index: number) => string,
  ) {
    this.length = packs.reduce((n, p) => n + p.count, 0);
    this.packOf = new Int32Array(this.length);
    this.rowOf = new Int32Array(this.length);
    let i = 0;
    packs.forEach((p, k) => {
      for (let r = 0; r < p.count; r++, i++) {
        this.packOf[i] = k;
        this.rowOf[i] = r;
      }
    });
    this.views = packs.map((p) => Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength));
  }

  private field(i: number, f: number): number {
    return this.packs[this.packOf[i]!]!.layout[this.rowOf[i]! * FIELDS + f]!;
  }

  private part(i: number, f: number): Buffer {
    const start = this.field(i, f);
    return this.views[this.packOf[i]!]!.subarray(start, start + this.field(i, f + 1));
  }

  /** The encoded script calls, in order; their sessions are consecutive and together all of them. */
  calls(): EncodedCall[] {
    const out: EncodedCall[] = [];
    let first = 0;
    this.packs.forEach((p, k) => {
      for (let c = 0; c < p.calls.length; c += CALL_FIELDS) {
        const start = p.calls[c]!;
        out.push({ command: this.views[k]!.subarray(start, start + p.calls[c + 1]!), first, count: p.calls[c + 2]! });
        first += p.calls[c + 2]!;
      }
    });
    return out;
  }

  /** The session's key name, as bytes. */
  key(i: number): Buffer {
    return this.part(i, 0);
  }

  /** The session's key name, as text (for reports). */
  keyName(i: number): string {
    return this.key(i).toString('utf8');
  }

  /** The buffer and offset of the session's key name (for PresenceLedger.addFrom, without a view). */
  keyAt(i: number): [Buffer, number] {
    return [this.views[this.packOf[i]!]!, this.field(i, 0)];
  }

  /** Its tombstone's key name, as bytes. */
  tombstone(i: number): Buffer {
    return this.part(i, 2);
  }

  /** The envelope to write (empty in a dry run). */
  value(i: number): Buffer {
    return this.part(i, 4);
  }

  /** The session's bytes as read from the source, to compare with a value already in Redis. */
  plaintext(i: number): Buffer {
    return this.part(i, 6);
  }

  plaintextLength(i: number): number {
    return this.field(i, 7);
  }

  ttlMs(i: number): number {
    return this.packs[this.packOf[i]!]!.ttlMs[this.rowOf[i]!]!;
  }

  /** The source file (or key) the session came from. */
  file(i: number): string {
    return this.locationOf(this.field(i, 8));
  }
}

/**
 * A session accepted for migration, waiting for its script call to be encoded: its names and bytes
 * are copied into the thread's call buffer (callScratch), so that the buffers a read returned die
 * young (held across collections they would be promoted, and the memory behind them freed only by a
 * full collection: a worker's memory would climb by tens of MB before one).
 */
interface Pending {
  /** Offsets in callScratch: key name (then the tombstone name right after it), then the bytes. */
  names: number;
  keyLength: number;
  tombstoneLength: number;
  data: number;
  dataLength: number;
  valueLength: number;
  ttlMs: number;
  index: number;
}

/** This thread's buffer for the sessions of the call being filled (grown when a call needs more; kept). */
let callScratch = Buffer.allocUnsafeSlow(1024 * 1024);

/**
 * Where a pack's bytes come from: a buffer of at least `size` bytes that this pack alone will use
 * (a worker reuses the buffers the main thread hands back; see prepare-pool.ts).
 */
export type PackAllocator = (size: number) => Uint8Array;

/** A new buffer with its own ArrayBuffer (never the shared pool of small Buffers: it may be transferred). */
export const allocatePack: PackAllocator = (size) => Buffer.allocUnsafeSlow(size);

/** Reads, classifies and seals a batch of candidates. Never throws for a bad file. */
export function prepareBatch(
  candidates: readonly SessionCandidate[],
  codec: EnvelopeCodec,
  ctx: PrepareContext,
  allocate: PackAllocator = allocatePack,
): PreparedBatch {
  // The classification looksComplete computes for a read is the one decideSession needs: parsed once.
  const last: { data?: Buffer; classification?: SessionClassification } = {};
  const looksComplete = looksCompleteFor(ctx.serializeHandler, (data, classification) => {
    last.data = data;
    last.classification = classification;
  });
  return prepareItems(
    candidates.length,
    (i) => {
      last.data = undefined;
      const item = readSessionFile(candidates[i]!, ctx.maxSessionBytes, { looksComplete, phpUids: ctx.phpUids });
      // Only for the very bytes it returned (a read retried under a lock returns other bytes).
      return { item, known: item.kind === 'session' && last.data === item.data ? last.classification : undefined };
    },
    codec,
    ctx,
    allocate,
  );
}

/** Classifies and seals sessions already read (any Source). Never throws for a bad session. */
export function prepareSessions(
  items: readonly SourceItem[],
  codec: EnvelopeCodec,
  ctx: PrepareContext,
  allocate: PackAllocator = allocatePack,
): PreparedBatch {
  return prepareItems(items.length, (i) => ({ item: items[i]!, known: undefined }), codec, ctx, allocate);
}

function prepareItems(
  count: number,
  itemAt: (i: number) => { item: SourceItem; known: SessionClassification | undefined },
  codec: EnvelopeCodec,
  ctx: PrepareContext,
  allocate: PackAllocator,
): PreparedBatch {
  const batch: PreparedBatch = { packs: [], expired: 0, empty: 0, corrupt: 0, skipped: {}, unstable: [], foreign: [] };
  const packer = new Packer(codec, ctx, allocate, count);
  for (let i = 0; i < count; i++) {
    const { item, known } = itemAt(i);
    if (item.kind === 'skipped') {
      batch.skipped[item.reason] = (batch.skipped[item.reason] ?? 0) + 1;
      if (item.reason === 'unstable') batch.unstable.push(redactSessionPath(item.location));
      if (item.reason === 'foreign-owner') batch.foreign.push(redactSessionPath(item.location));
      continue;
    }
    const decision = decideSourceSession(item, ctx, known);
    if (decision.action === 'expired') batch.expired++;
    else if (decision.action === 'empty') batch.empty++;
    else if (decision.action === 'corrupt') batch.corrupt++;
    else packer.add(item.id, item.data, decision.ttlMs, i);
  }
  batch.packs = packer.finish();
  return batch;
}

/** Bytes a pack buffer gets at least: a whole batch of 1 KB sessions fits in one. */
const PACK_MIN_BYTES = 4 * 1024 * 1024;

/**
 * Names sessions and encodes them into packs, one script call at a time (target's startsNewGroup:
 * WRITE_GROUP_SESSIONS sessions and WRITE_GROUP_BYTES value bytes at most), each call followed by
 * the plaintexts of its sessions; a call that does not fit the current pack starts the next one (at
 * least PACK_MIN_BYTES, PACK_BYTES at most unless one call is larger). Only the sessions of the call
 * being filled are held, so a worker's heap stays small.
 */
class Packer {
  private readonly prefixBytes: Buffer;
  private readonly namesLength: number;
  private pending: Pending[] = [];
  private pendingValueBytes = 0;
  private readonly packs: PackedSessions[] = [];
  private current: { bytes: Buffer; at: number; layout: Int32Array; calls: number[]; ttlMs: Float64Array; count: number } | undefined;

  constructor(
    private readonly codec: EnvelopeCodec,
    private readonly ctx: PrepareContext,
    private readonly allocate: PackAllocator,
    private readonly maxSessions: number,
  ) {
    this.prefixBytes = Buffer.from(ctx.prefix, 'utf8');
    this.namesLength = 2 * this.prefixBytes.length + TOMBSTONE_INFIX.length + 2 * 66;
  }

  private used = 0;

  add(id: string, data: Buffer, ttlMs: number, index: number): void {
    const valueLength = this.ctx.dryRun ? 0 : MIN_ENVELOPE_BYTES + data.length;
    if (startsNewGroup(this.pending.length, this.pendingValueBytes, valueLength)) this.flush();
    const need = this.used + this.namesLength + data.length;
    if (need > callScratch.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, 2 * callScratch.length));
      callScratch.copy(grown, 0, 0, this.used);
      callScratch = grown;
    }
    const at = this.used;
    const [keyLength, tombstoneLength] = writeSessionKeyNames(callScratch, at, this.prefixBytes, this.codec.sessionDigestBytes(id));
    const dataAt = at + keyLength + tombstoneLength;
    callScratch.set(data, dataAt);
    this.used = dataAt + data.length;
    this.pending.push({ names: at, keyLength, tombstoneLength, data: dataAt, dataLength: data.length, valueLength, ttlMs, index });
    this.pendingValueBytes += valueLength;
  }

  /** Encodes the pending sessions as one call into the current pack (or a new one). */
  private flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    this.pendingValueBytes = 0;
    this.used = 0;
    const scratch = callScratch;
    const codec = this.codec;
    const dryRun = this.ctx.dryRun;
    const group: EncodableSession[] = pending.map((p) => ({
      key: scratch.subarray(p.names, p.names + p.keyLength),
      tombstone: scratch.subarray(p.names + p.keyLength, p.names + p.keyLength + p.tombstoneLength),
      valueLength: p.valueLength,
      // The envelope's associated data binds the key name: sealed with the name's bytes as written.
      writeValue: dryRun
        ? () => undefined
        : (out: Buffer, offset: number, keyAt: number) => {
            codec.sealTo(out, offset, out.subarray(keyAt, keyAt + p.keyLength), scratch.subarray(p.data, p.data + p.dataLength));
          },
      ttlMs: p.ttlMs,
    }));
    const size = encodedGuardedWriteSize(group) + pending.reduce((n, p) => n + p.dataLength, 0);
    if (this.current !== undefined && this.current.at + size > this.current.bytes.length) this.close();
    if (this.current === undefined) {
      const buffer = this.allocate(Math.max(size, Math.min(PACK_BYTES, PACK_MIN_BYTES)));
      this.current = {
        bytes: Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength),
        at: 0,
        layout: new Int32Array(this.maxSessions * FIELDS),
        calls: [],
        ttlMs: new Float64Array(this.maxSessions),
        count: 0,
      };
    }
    const pack = this.current;
    const { end, positions } = encodeGuardedWrite(pack.bytes, pack.at, group);
    pack.calls.push(pack.at, end - pack.at, group.length);
    let at = end;
    pending.forEach((s, g) => {
      const row = pack.count * FIELDS;
      const p = positions[g]!;
      pack.layout[row] = p.key;
      pack.layout[row + 1] = s.keyLength;
      pack.layout[row + 2] = p.tombstone;
      pack.layout[row + 3] = s.tombstoneLength;
      pack.layout[row + 4] = p.value;
      pack.layout[row + 5] = s.valueLength;
      pack.layout[row + 6] = at;
      pack.layout[row + 7] = s.dataLength;
      pack.layout[row + 8] = s.index;
      pack.ttlMs[pack.count] = s.ttlMs;
      scratch.copy(pack.bytes, at, s.data, s.data + s.dataLength);
      at += s.dataLength;
      pack.count++;
    });
    pack.at = at;
  }

  private close(): void {
    const pack = this.current;
    if (pack === undefined) return;
    this.current = undefined;
    if (pack.count === 0) return;
    this.packs.push({
      count: pack.count,
      // A view of the bytes used; its ArrayBuffer (the whole buffer) is what is transferred and recycled.
      bytes: pack.bytes.subarray(0, pack.at),
      layout: pack.layout.subarray(0, pack.count * FIELDS),
      calls: Int32Array.from(pack.calls),
      ttlMs: pack.ttlMs.subarray(0, pack.count),
    });
  }

  finish(): PackedSessions[] {
    this.flush();
    this.close();
    return this.packs;
  }
}

/**
 * What verify's presence check needs of a batch of session files (presenceBatch): the key and
 * tombstone names of its live sessions, and counts of the rest. Plain data; `names` and `index` are
 * each owned by this batch alone (transferable).
 */
export interface PresenceBatch {
  /** Live sessions (decideSession says `migrate`): their names are in `names`. */
  count: number;
  /** Per live session: its key name (`keyBytes`), then its tombstone's name (`tombstoneBytes`). */
  names: Uint8Array;
  keyBytes: number;
  tombstoneBytes: number;
  /** Per live session: the index of its candidate in the request (for its file name). */
  index: Int32Array;
  expired: number;
  empty: number;
  corrupt: number;
  /** Candidates flagged superseded (another source's copy is the one in Redis), read fine. */
  superseded: number;
  /**
   * Indexes of the candidates that could not be read (skipped `unreadable` or `unstable`) or were
   * larger than ctx.maxSessionBytes (`oversized`), in order.
   */
  unreadable: number[];
  /** Of those, the ones larger than ctx.maxSessionBytes: candidate index and size in bytes, in order. */
  oversized: Array<{ index: number; bytes: number }>;
}

/** An empty PresenceBatch with room for the names of `n` sessions under `prefix` (key layout 2). */
function newPresenceBatch(n: number, prefix: string): { out: PresenceBatch; names: Buffer; prefixBytes: Buffer } {
  const prefixBytes = Buffer.from(prefix, 'utf8');
  const keyBytes = prefixBytes.length + 66;
  const tombstoneBytes = prefixBytes.length + TOMBSTONE_INFIX.length + 66;
  const names = Buffer.allocUnsafeSlow(Math.max(1, n * (keyBytes + tombstoneBytes)));
  const out: PresenceBatch = {
    count: 0,
    names,
    keyBytes,
    tombstoneBytes,
    index: new Int32Array(n),
    expired: 0,
    empty: 0,
    corrupt: 0,
    superseded: 0,
    unreadable: [],
    oversized: [],
  };
  return { out, names, prefixBytes };
}

/** A PresenceBatch of no session under `prefix` (verify's second step when no session of a batch is missing from Redis). */
export function emptyPresenceBatch(prefix: string): PresenceBatch {
  return newPresenceBatch(0, prefix).out;
}

/**
 * Names a batch of session files for the first step of verify's presence check, without reading
 * them: the key and tombstone names (key layout 2) of every candidate that is not superseded, from
 * its session ID (the file name). verify asks Redis for these first; only the files whose key is not
 * there are read and classified (presenceBatch), since a session in Redis is present whatever its
 * file holds now. `expired`, `empty`, `corrupt` and `unreadable` stay 0/empty here.
 * @param superseded one byte per candidate (1: another source's copy is the one in Redis), or undefined
 */
export function namesBatch(
  candidates: readonly SessionCandidate[],
  superseded: Uint8Array | undefined,
  codec: EnvelopeCodec,
  ctx: Pick<PrepareContext, 'prefix'>,
): PresenceBatch {
  const { out, names, prefixBytes } = newPresenceBatch(candidates.length, ctx.prefix);
  const { index, keyBytes, tombstoneBytes } = out;
  for (let i = 0; i < candidates.length; i++) {
    if (superseded !== undefined && superseded[i] === 1) {
      out.superseded++;
      continue;
    }
    writeSessionKeyNames(names, out.count * (keyBytes + tombstoneBytes), prefixBytes, codec.sessionDigestBytes(candidates[i]!.id));
    index[out.count++] = i;
  }
  return out;
}

/**
 * Reads and classifies a batch of session files for verify's presence check, with the stable-read
 * rule of apply (readSessionFile, the classification computed once and handed to decideSession as
 * `known`), and names the live ones (key and tombstone, key layout 2). Nothing is sealed. The same
 * decisions, in the same order, as verify's per-session loop over FilesSource.sessions(): a skipped
 * file is `unreadable` when its reason is unreadable or unstable (else ignored), a superseded one
 * (`superseded[i]` = 1) is counted before its decision.
 * Never throws for a bad file.
 * @param superseded one byte per candidate (1: superseded), or undefined when none is
 */
export function presenceBatch(
  candidates: readonly SessionCandidate[],
  superseded: Uint8Array | undefined,
  codec: EnvelopeCodec,
  ctx: PrepareContext,
): PresenceBatch {
  const last: { data?: Buffer; classification?: SessionClassification } = {};
  const looksComplete = looksCompleteFor(ctx.serializeHandler, (data, classification) => {
    last.data = data;
    last.classification = classification;
  });
  const { out, names, prefixBytes } = newPresenceBatch(candidates.length, ctx.prefix);
  const { index, keyBytes, tombstoneBytes } = out;
  for (let i = 0; i < candidates.length; i++) {
    last.data = undefined;
    const item = readSessionFile(candidates[i]!, ctx.maxSessionBytes, { looksComplete, phpUids: ctx.phpUids });
    if (item.kind === 'skipped') {
      if (NOT_COPIED_SKIPS.has(item.reason)) out.unreadable.push(i);
      if (item.reason === 'oversized' && item.size !== undefined) out.oversized.push({ index: i, bytes: item.size.bytes });
      continue;
    }
    if (superseded !== undefined && superseded[i] === 1) {
      out.superseded++;
      continue;
    }
    const known = last.data === item.data ? last.classification : undefined;
    const decision = decideSourceSession(item, ctx, known);
    if (decision.action === 'expired') out.expired++;
    else if (decision.action === 'empty') out.empty++;
    else if (decision.action === 'corrupt') out.corrupt++;
    else {
      writeSessionKeyNames(names, out.count * (keyBytes + tombstoneBytes), prefixBytes, codec.sessionDigestBytes(item.id));
      index[out.count++] = i;
    }
  }
  return out;
}

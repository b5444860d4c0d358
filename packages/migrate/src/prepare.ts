/**
 * Turns session-file candidates into envelopes ready to write: read, decide (expired, empty, corrupt,
 * migrate), name the key, seal. Pure CPU and file reads, no Redis: it runs inline or in worker
 * threads (prepare-pool.ts) with the same code.
 *
 * The sessions of a batch are packed into one buffer (PackedSessions: key names, envelopes and
 * plaintexts back to back, plus a few typed arrays), so a worker hands a batch to the main thread by
 * transferring three ArrayBuffers instead of cloning thousands of small objects, and the main thread
 * reads them through PreparedSessions without copying.
 */
import { MIN_ENVELOPE_BYTES, TOMBSTONE_INFIX, writeSessionKeyNames, type EnvelopeCodec } from '@session-migrate/envelope';
import type { SerializeHandler, SessionClassification } from '@session-migrate/php-session';
import { readSessionFile, type SessionCandidate, type SourceItem } from '@session-migrate/sources';
import { redactSessionPath } from '@session-migrate/common';
import { decideSession, exactTtlMsOf, looksCompleteFor } from './plan.ts';

/** What preparing needs to know; plain data so it can be sent to a worker. */
export interface PrepareContext {
  prefix: string;
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  /** Seconds since the epoch that TTLs are measured against. */
  nowSeconds: number;
  maxSessionBytes: number;
  /** When true, nothing is sealed (the envelope is left empty). */
  dryRun: boolean;
}

/** Int32 fields per session in PackedSessions.layout. */
const FIELDS = 6;
/** A pack is closed at this many bytes (a new one starts), so offsets stay small whatever the sessions' sizes. */
const PACK_BYTES = 64 * 1024 * 1024;

/**
 * Sessions ready for the guarded write (`SET key value PX ttlMs NX` unless a tombstone exists),
 * packed. Plain data with three ArrayBuffers, each owned by this pack alone: transferable.
 */
export interface PackedSessions {
  count: number;
  /** For each session, back to back: its key name, its tombstone's name, the envelope, the plaintext (the file's bytes). */
  bytes: Uint8Array;
  /**
   * FIELDS Int32 per session: start in `bytes`, key name length, tombstone name length, envelope
   * length (0 in a dry run), plaintext length, index of its item in the batch's input (for its file name).
   */
  layout: Int32Array;
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
  constructor(private readonly packs: readonly PackedSessions[], private readonly locationOf: (index: number) => string) {
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

  private slice(i: number, from: number, length: number): Buffer {
    const start = this.field(i, 0) + from;
    return this.views[this.packOf[i]!]!.subarray(start, start + length);
  }

  /** The session's key name, as bytes. */
  key(i: number): Buffer {
    return this.slice(i, 0, this.field(i, 1));
  }

  /** The session's key name, as text (for reports). */
  keyName(i: number): string {
    return this.key(i).toString('utf8');
  }

  /** Its tombstone's key name, as bytes. */
  tombstone(i: number): Buffer {
    return this.slice(i, this.field(i, 1), this.field(i, 2));
  }

  /** The envelope to write (empty in a dry run). */
  value(i: number): Buffer {
    return this.slice(i, this.field(i, 1) + this.field(i, 2), this.field(i, 3));
  }

  /** The session's bytes as read from the source, to compare with a value already in Redis. */
  plaintext(i: number): Buffer {
    return this.slice(i, this.field(i, 1) + this.field(i, 2) + this.field(i, 3), this.field(i, 4));
  }

  plaintextLength(i: number): number {
    return this.field(i, 4);
  }

  ttlMs(i: number): number {
    return this.packs[this.packOf[i]!]!.ttlMs[this.rowOf[i]!]!;
  }

  /** The source file (or key) the session came from. */
  file(i: number): string {
    return this.locationOf(this.field(i, 5));
  }
}

/** A session accepted for migration, before packing. */
interface Accepted {
  id: string;
  data: Buffer;
  ttlMs: number;
  /** Index of its item in the batch's input. */
  index: number;
}

/**
 * Where a pack's bytes come from: a buffer of at least `size` bytes that this pack alone will use
 * (a worker reuses the buffers the main thread hands back; see prepare-pool.ts).
 */
export type PackAllocator = (size: number) => Uint8Array;

/** A new buffer with its own ArrayBuffer (never the shared pool of small Buffers: it may be transferred). */
export const allocatePack: PackAllocator = (size) => Buffer.allocUnsafeSlow(size);

/** Reads, classifies and seals a batch of candidates. Never throws for a bad file. */
export function prepareBatch(candidates: readonly SessionCandidate[], codec: EnvelopeCodec, ctx: PrepareContext, allocate: PackAllocator = allocatePack): PreparedBatch {
  // The classification looksComplete computes for a read is the one decideSession needs: parsed once.
  const last: { data?: Buffer; classification?: SessionClassification } = {};
  const looksComplete = looksCompleteFor(ctx.serializeHandler, (data, classification) => { last.data = data; last.classification = classification; });
  return prepareItems(candidates.length, (i) => {
    last.data = undefined;
    const item = readSessionFile(candidates[i]!, ctx.maxSessionBytes, { looksComplete });
    // Only for the very bytes it returned (a read retried under a lock returns other bytes).
    return { item, known: item.kind === 'session' && last.data === item.data ? last.classification : undefined };
  }, codec, ctx, allocate);
}

/** Classifies and seals sessions already read (any Source). Never throws for a bad session. */
export function prepareSessions(items: readonly SourceItem[], codec: EnvelopeCodec, ctx: PrepareContext): PreparedBatch {
  return prepareItems(items.length, (i) => ({ item: items[i]!, known: undefined }), codec, ctx, allocatePack);
}

function prepareItems(count: number, itemAt: (i: number) => { item: SourceItem; known: SessionClassification | undefined }, codec: EnvelopeCodec, ctx: PrepareContext, allocate: PackAllocator): PreparedBatch {
  const batch: PreparedBatch = { packs: [], expired: 0, empty: 0, corrupt: 0, skipped: {}, unstable: [] };
  const accepted: Accepted[] = [];
  for (let i = 0; i < count; i++) {
    const { item, known } = itemAt(i);
    if (item.kind === 'skipped') {
      batch.skipped[item.reason] = (batch.skipped[item.reason] ?? 0) + 1;
      if (item.reason === 'unstable') batch.unstable.push(redactSessionPath(item.location));
      continue;
    }
    const decision = decideSession(item.data, item.mtimeMs, ctx.gcMaxlifetime, ctx.serializeHandler, ctx.nowSeconds, exactTtlMsOf(item, ctx.gcMaxlifetime), known);
    if (decision.action === 'expired') batch.expired++;
    else if (decision.action === 'empty') batch.empty++;
    else if (decision.action === 'corrupt') batch.corrupt++;
    else accepted.push({ id: item.id, data: item.data, ttlMs: decision.ttlMs, index: i });
  }
  batch.packs = pack(accepted, codec, ctx, allocate);
  return batch;
}

/** Names and seals accepted sessions into packs of at most PACK_BYTES (one larger session gets a pack of its own). */
function pack(accepted: readonly Accepted[], codec: EnvelopeCodec, ctx: PrepareContext, allocate: PackAllocator): PackedSessions[] {
  const prefixBytes = Buffer.from(ctx.prefix, 'utf8');
  const names = 2 * prefixBytes.length + TOMBSTONE_INFIX.length + 2 * 66;
  const sizeOf = (a: Accepted): number => names + (ctx.dryRun ? 0 : MIN_ENVELOPE_BYTES + a.data.length) + a.data.length;
  const packs: PackedSessions[] = [];
  for (let from = 0; from < accepted.length;) {
    let to = from;
    let size = 0;
    while (to < accepted.length && (to === from || size + sizeOf(accepted[to]!) <= PACK_BYTES)) size += sizeOf(accepted[to++]!);
    const buffer = allocate(size);
    const bytes = Buffer.from(buffer.buffer, buffer.byteOffset, size);
    const layout = new Int32Array((to - from) * FIELDS);
    const ttlMs = new Float64Array(to - from);
    let at = 0;
    for (let i = from; i < to; i++) {
      const a = accepted[i]!;
      const row = (i - from) * FIELDS;
      const start = at;
      const [keyLength, tombstoneLength] = writeSessionKeyNames(bytes, at, prefixBytes, codec.sessionDigest(a.id));
      at += keyLength + tombstoneLength;
      // The envelope's associated data binds the key name: sealed with the name's bytes just written.
      const valueLength = ctx.dryRun ? 0 : codec.sealTo(bytes, at, bytes.subarray(start, start + keyLength), a.data);
      at += valueLength;
      bytes.set(a.data, at);
      at += a.data.length;
      layout[row] = start;
      layout[row + 1] = keyLength;
      layout[row + 2] = tombstoneLength;
      layout[row + 3] = valueLength;
      layout[row + 4] = a.data.length;
      layout[row + 5] = a.index;
      ttlMs[i - from] = a.ttlMs;
    }
    packs.push({ count: to - from, bytes, layout, ttlMs });
    from = to;
  }
  return packs;
}

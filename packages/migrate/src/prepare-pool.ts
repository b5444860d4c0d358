/**
 * A pool of worker threads running prepareBatch, so that reading, classifying and sealing sessions
 * use every core while the main thread talks to Redis.
 *
 * Hand-over is cheap both ways: a batch goes out as one string (the candidates' paths)
 * and comes back as PackedSessions whose ArrayBuffers are transferred, not copied. Once the main
 * thread has written a batch it hands the packs' byte buffers back (recycle), and the worker fills
 * them again: memory stays flat, and does not wait for the garbage collector to free megabytes of
 * buffers that outlived a young-generation collection.
 */
import { Worker } from 'node:worker_threads';
import { workerEntryUrl } from '@session-migrate/common';
import type { SessionCandidate } from '@session-migrate/sources';
import type { PackedSessions, PrepareContext, PreparedBatch, PresenceBatch } from './prepare.ts';

interface Waiter {
  resolve: (b: PreparedBatch | PresenceBatch) => void;
  reject: (e: Error) => void;
}

/**
 * A message to a worker: a request (the candidates' paths, separated by NUL, the one byte no path
 * holds; with `presence`, verify's presence check: presenceBatch, or namesBatch with `namesOnly`,
 * `superseded` one byte per candidate), or buffers handed back for reuse.
 */
export type PrepareRequest =
  | { id: number; paths: string; presence?: false }
  | { id: number; paths: string; presence: true; namesOnly?: boolean; superseded?: Uint8Array }
  | { recycle: ArrayBuffer[] };

/** A worker's answer: the batch (prepareBatch's, or presenceBatch's), or one line of error. */
export interface PrepareReply {
  id?: number;
  batch?: PreparedBatch;
  presence?: PresenceBatch;
  error?: string;
  ready?: boolean;
}

/** The ArrayBuffers of a batch, to transfer with postMessage. */
export function transferList(batch: PreparedBatch): ArrayBuffer[] {
  return batch.packs.flatMap((p: PackedSessions) => [
    p.bytes.buffer as ArrayBuffer,
    p.layout.buffer as ArrayBuffer,
    p.calls.buffer as ArrayBuffer,
    p.ttlMs.buffer as ArrayBuffer,
  ]);
}

/** The candidates of a request (the inverse of PreparePool.prepare's encoding). */
export function candidatesOf(paths: string): SessionCandidate[] {
  if (paths === '') return [];
  return paths
    .split('\0')
    .map((location) => ({ kind: 'candidate', id: location.slice(location.lastIndexOf('/') + 1 + 'sess_'.length), location }));
}

/** Young generation of a worker's V8 heap, MiB: its garbage is short-lived (per file), a smaller one than the default (which grows to 48) keeps memory down; 16 measured lower in memory and CPU than 8 (fewer promotions). */
const WORKER_YOUNG_GENERATION_MB = 16;

/**
 * Old generation of a worker's V8 heap, MiB: a worker holds its code, one batch's paths and one call's
 * sessions (their bytes live outside the heap), about 15 MiB; an explicit limit, far above that, also
 * makes V8 collect it before it has grown by tens of MiB (measured: apply's peak at 1M sessions 224 ->
 * 199 MiB).
 */
const WORKER_OLD_GENERATION_MB = 256;

/**
 * The byte buffers a worker keeps for reuse (at most `max`), and the allocator prepareBatch uses:
 * a kept buffer large enough, else a new one rounded up to a whole MiB (so the next batches fit).
 */
export class PackBuffers {
  private readonly free: ArrayBuffer[] = [];
  constructor(private readonly max = 4) {}

  /** Takes buffers back (each once; a detached or empty one is ignored). */
  give(buffers: ArrayBuffer[]): void {
    for (const b of buffers) if (this.free.length < this.max && b.byteLength > 0 && !this.free.includes(b)) this.free.push(b);
  }

  readonly allocate = (size: number): Uint8Array => {
    const i = this.free.findIndex((b) => b.byteLength >= size);
    if (i >= 0) return new Uint8Array(this.free.splice(i, 1)[0]!);
    return new Uint8Array(new ArrayBuffer(Math.ceil(Math.max(size, 1) / 1048576) * 1048576));
  };
}

export class PreparePool {
  private readonly workers: Worker[] = [];
  /** The worker each batch came from, to hand its buffers back to. */
  private readonly origin = new WeakMap<PreparedBatch, Worker>();
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 0;
  private nextWorker = 0;
  private readonly ready: Promise<unknown>;

  /**
   * @param size number of worker threads (>= 1)
   * @param masterKeys the key ring's master keys, current first; each worker gets a copy, zeroed once
   *   derived. None for a pool that only names sessions (presence(): verify), given `lookupKey`.
   * @param lookupKey the ring's lookup key (default: derived from the first master key)
   */
  constructor(size: number, masterKeys: Uint8Array[], ctx: PrepareContext, lookupKey?: Uint8Array) {
    const started: Promise<unknown>[] = [];
    for (let i = 0; i < size; i++) {
      // The bundled worker in the built package; in a clone, a JavaScript entry that loads the TypeScript through tsx.
      const worker = new Worker(workerEntryUrl('prepare-worker'), {
        workerData: {
          masterKeys: masterKeys.map((k) => Uint8Array.from(k)),
          lookupKey: lookupKey !== undefined ? Uint8Array.from(lookupKey) : undefined,
          ctx,
        },
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB, maxOldGenerationSizeMb: WORKER_OLD_GENERATION_MB },
      });
      started.push(
        new Promise((resolve, reject) => {
          worker.once('error', reject);
          worker.once('message', resolve);
        }),
      );
      worker.on('message', (msg: PrepareReply) => {
        if (msg.id === undefined) return;
        const waiter = this.waiters.get(msg.id);
        this.waiters.delete(msg.id);
        if (msg.presence !== undefined) waiter?.resolve(msg.presence);
        else if (msg.error !== undefined || msg.batch === undefined) waiter?.reject(new Error(msg.error ?? 'worker failed'));
        else {
          this.origin.set(msg.batch, worker);
          waiter?.resolve(msg.batch);
        }
      });
      worker.on('error', (err) => {
        for (const w of this.waiters.values()) w.reject(err);
        this.waiters.clear();
      });
      this.workers.push(worker);
    }
    this.ready = Promise.all(started);
  }

  /** Prepares one batch on the next worker (round robin). Its sessions' `file` indexes refer to `candidates`. */
  async prepare(candidates: readonly SessionCandidate[]): Promise<PreparedBatch> {
    return this.request({ id: this.nextId++, paths: candidates.map((c) => c.location).join('\0') }) as Promise<PreparedBatch>;
  }

  /**
   * Reads, classifies and names one batch for verify's presence check (presenceBatch) on the next
   * worker; with `namesOnly`, names it without reading (namesBatch). Its `index` and `unreadable`
   * refer to `candidates`.
   * @param superseded one byte per candidate (1: another source's copy wins), or undefined
   */
  async presence(candidates: readonly SessionCandidate[], superseded?: Uint8Array, namesOnly = false): Promise<PresenceBatch> {
    return this.request({
      id: this.nextId++,
      paths: candidates.map((c) => c.location).join('\0'),
      presence: true,
      ...(namesOnly ? { namesOnly } : {}),
      ...(superseded !== undefined ? { superseded } : {}),
    }) as Promise<PresenceBatch>;
  }

  /** Sends a request to the next worker (round robin); resolves with its answer (a request's own kind of batch). */
  private async request(request: PrepareRequest & { id: number }): Promise<PreparedBatch | PresenceBatch> {
    await this.ready;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.waiters.set(request.id, { resolve, reject });
      worker.postMessage(request);
    });
  }

  /**
   * Hands a batch's byte buffers back to the worker that filled them. The batch's sessions must not
   * be read afterwards (their buffers are detached here), and nothing else may still hold them: call
   * it only once every command that carried them has been answered.
   */
  recycle(batch: PreparedBatch): void {
    const worker = this.origin.get(batch);
    if (worker === undefined) return;
    this.origin.delete(batch);
    const buffers = [...new Set(batch.packs.map((p) => p.bytes.buffer as ArrayBuffer))];
    const request: PrepareRequest = { recycle: buffers };
    worker.postMessage(request, buffers);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

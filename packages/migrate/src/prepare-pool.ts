/**
 * A pool of worker threads running prepareBatch, so that reading, classifying and sealing sessions
 * use every core while the main thread talks to Redis.
 */
import { Worker } from 'node:worker_threads';
import { workerEntryUrl } from '@session-migrate/common';
import type { SessionCandidate } from '@session-migrate/sources';
import type { PrepareContext, PreparedBatch } from './prepare.ts';

interface Waiter { resolve: (b: PreparedBatch) => void; reject: (e: Error) => void }

export class PreparePool {
  private readonly workers: Worker[] = [];
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 0;
  private nextWorker = 0;
  private readonly ready: Promise<unknown>;

  /**
   * @param size number of worker threads (>= 1)
   * @param masterKeys the key ring's master keys, current first; each worker gets a copy, zeroed once derived
   * @param lookupKey the ring's lookup key (default: derived from the first master key)
   */
  constructor(size: number, masterKeys: Uint8Array[], ctx: PrepareContext, lookupKey?: Uint8Array) {
    const started: Promise<unknown>[] = [];
    for (let i = 0; i < size; i++) {
      // The bundled worker in the built package; in a clone, a JavaScript entry that loads the TypeScript through tsx.
      const worker = new Worker(workerEntryUrl('prepare-worker'), {
        workerData: { masterKeys: masterKeys.map((k) => Uint8Array.from(k)), lookupKey: lookupKey !== undefined ? Uint8Array.from(lookupKey) : undefined, ctx },
      });
      started.push(new Promise((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', resolve);
      }));
      worker.on('message', (msg: { id?: number; batch?: PreparedBatch; error?: string }) => {
        if (msg.id === undefined) return;
        const waiter = this.waiters.get(msg.id);
        this.waiters.delete(msg.id);
        if (msg.error !== undefined || msg.batch === undefined) waiter?.reject(new Error(msg.error ?? 'worker failed'));
        else waiter?.resolve(revive(msg.batch));
      });
      worker.on('error', (err) => {
        for (const w of this.waiters.values()) w.reject(err);
        this.waiters.clear();
      });
      this.workers.push(worker);
    }
    this.ready = Promise.all(started);
  }

  /** Prepares one batch on the next worker (round robin). */
  async prepare(candidates: SessionCandidate[]): Promise<PreparedBatch> {
    await this.ready;
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      worker.postMessage({ id, candidates });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Structured clone turns Buffers into plain Uint8Arrays; give them Buffer methods back (no copy). */
function revive(batch: PreparedBatch): PreparedBatch {
  const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  for (const s of batch.sessions) {
    s.value = buf(s.value);
    s.plaintext = buf(s.plaintext);
  }
  return batch;
}

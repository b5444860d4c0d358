/**
 * Worker thread for PreparePool: holds its own EnvelopeCodec and prepares batches on request.
 * workerData: { masterKeys: Uint8Array[]; lookupKey?: Uint8Array; ctx: PrepareContext } (keys zeroed once derived).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EnvelopeCodec } from '@session-migrate/envelope';
import { randomBytes } from 'node:crypto';
import { namesBatch, prepareBatch, presenceBatch, type PrepareContext } from './prepare.ts';
import { PackBuffers, candidatesOf, transferList, type PrepareReply, type PrepareRequest } from './prepare-pool.ts';

const { masterKeys, lookupKey, ctx } = workerData as { masterKeys: Uint8Array[]; lookupKey?: Uint8Array; ctx: PrepareContext };
// A pool that only names sessions (verify's presence check) gets the lookup key and no master key:
// its codec is given a throwaway random one, never used (nothing is sealed or opened there).
const codec = await EnvelopeCodec.create(masterKeys.length > 0 ? masterKeys : [randomBytes(32)], lookupKey);
for (const k of masterKeys) k.fill(0);
lookupKey?.fill(0);

/** Byte buffers the main thread handed back, filled again by the next batches. */
const buffers = new PackBuffers();

parentPort!.on('message', (msg: PrepareRequest) => {
  if ('recycle' in msg) {
    buffers.give(msg.recycle);
    return;
  }
  let reply: PrepareReply;
  try {
    if (msg.presence === true) {
      const presence = (msg.namesOnly === true ? namesBatch : presenceBatch)(candidatesOf(msg.paths), msg.superseded, codec, ctx);
      parentPort!.postMessage({ id: msg.id, presence } satisfies PrepareReply, [
        presence.names.buffer as ArrayBuffer,
        presence.index.buffer as ArrayBuffer,
      ]);
      return;
    }
    reply = { id: msg.id, batch: prepareBatch(candidatesOf(msg.paths), codec, ctx, buffers.allocate) };
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).message.split('\n')[0] } satisfies PrepareReply);
    return;
  }
  parentPort!.postMessage(reply, transferList(reply.batch!));
});
parentPort!.postMessage({ ready: true } satisfies PrepareReply);

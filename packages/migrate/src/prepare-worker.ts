/**
 * Worker thread for PreparePool: holds its own EnvelopeCodec and prepares batches on request.
 * workerData: { masterKeys: Uint8Array[]; lookupKey?: Uint8Array; ctx: PrepareContext } (keys zeroed once derived).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EnvelopeCodec } from '@session-migrate/envelope';
import { prepareBatch, type PrepareContext } from './prepare.ts';
import { PackBuffers, candidatesOf, transferList, type PrepareReply, type PrepareRequest } from './prepare-pool.ts';

const { masterKeys, lookupKey, ctx } = workerData as { masterKeys: Uint8Array[]; lookupKey?: Uint8Array; ctx: PrepareContext };
const codec = await EnvelopeCodec.create(masterKeys, lookupKey);
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
    reply = { id: msg.id, batch: prepareBatch(candidatesOf(msg.paths), codec, ctx, buffers.allocate) };
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).message.split('\n')[0] } satisfies PrepareReply);
    return;
  }
  parentPort!.postMessage(reply, transferList(reply.batch!));
});
parentPort!.postMessage({ ready: true } satisfies PrepareReply);

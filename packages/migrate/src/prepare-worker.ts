/**
 * Worker thread for PreparePool: holds its own EnvelopeCodec and prepares batches on request.
 * workerData: { masterKeys: Uint8Array[]; lookupKey?: Uint8Array; ctx: PrepareContext } (keys zeroed once derived).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EnvelopeCodec } from '@session-migrate/envelope';
import type { SessionCandidate } from '@session-migrate/sources';
import { prepareBatch, type PrepareContext } from './prepare.ts';

const { masterKeys, lookupKey, ctx } = workerData as { masterKeys: Uint8Array[]; lookupKey?: Uint8Array; ctx: PrepareContext };
const codec = await EnvelopeCodec.create(masterKeys, lookupKey);
for (const k of masterKeys) k.fill(0);
lookupKey?.fill(0);

parentPort!.on('message', (msg: { id: number; candidates: SessionCandidate[] }) => {
  try {
    parentPort!.postMessage({ id: msg.id, batch: prepareBatch(msg.candidates, codec, ctx) });
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).message.split('\n')[0] });
  }
});
parentPort!.postMessage({ ready: true });

/**
 * namesBatch: the first step of verify's presence check names every candidate that is not
 * superseded from its session ID alone, the names verify's EXISTS asks for; it never opens a file.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EnvelopeCodec, tombstoneKeyFor } from '@session-migrate/envelope';
import type { SessionCandidate } from '@session-migrate/sources';
import { emptyPresenceBatch, namesBatch } from '../src/prepare.ts';

const PREFIX = 'smsess:';

describe('namesBatch', () => {
  it('names each candidate not superseded, in order, as codec.keyName does, without reading the files', async () => {
    const codec = await EnvelopeCodec.create([randomBytes(32)]);
    // Paths that do not exist: a read would fail; naming does not read.
    const candidates: SessionCandidate[] = Array.from({ length: 5 }, (_, i) => ({
      kind: 'candidate',
      id: `sid${i}abcdefghijklmnopqrstu`,
      location: `/nonexistent-dir-for-names-batch/sess_sid${i}abcdefghijklmnopqrstu`,
    }));
    const superseded = Uint8Array.from([0, 1, 0, 0, 1]);
    const batch = namesBatch(candidates, superseded, codec, { prefix: PREFIX });
    expect(batch.count).toBe(3);
    expect(batch.superseded).toBe(2);
    expect([batch.expired, batch.empty, batch.corrupt, batch.unreadable.length]).toEqual([0, 0, 0, 0]);
    expect(Array.from(batch.index.subarray(0, batch.count))).toEqual([0, 2, 3]);
    const names = Buffer.from(batch.names.buffer, batch.names.byteOffset, batch.names.byteLength);
    const stride = batch.keyBytes + batch.tombstoneBytes;
    for (let k = 0; k < batch.count; k++) {
      const key = codec.keyName(PREFIX, candidates[batch.index[k]!]!.id);
      expect(names.toString('utf8', k * stride, k * stride + batch.keyBytes)).toBe(key);
      expect(names.toString('utf8', k * stride + batch.keyBytes, (k + 1) * stride)).toBe(tombstoneKeyFor(PREFIX, key));
    }
    // No superseded flags: every candidate is named.
    expect(namesBatch(candidates, undefined, codec, { prefix: PREFIX }).count).toBe(5);
  });

  it("emptyPresenceBatch is the batch namesBatch makes of no candidate (verify's second step when nothing is missing)", async () => {
    const codec = await EnvelopeCodec.create([randomBytes(32)]);
    const empty = emptyPresenceBatch(PREFIX);
    const { names, ...rest } = namesBatch([], undefined, codec, { prefix: PREFIX });
    expect({ ...empty, names: undefined }).toEqual({ ...rest, names: undefined });
    expect(empty.count).toBe(0);
    expect(empty.names.byteLength).toBe(names.byteLength);
  });
});

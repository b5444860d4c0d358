/**
 * `rotate`: re-encrypt every session under the key ring's current key, online (docs/keys.md).
 *
 * SCAN the prefix; for each session key (prefix + 64 hex characters) GET the value, open it with the
 * ring, and if it was sealed under an older key, seal the same plaintext under the current key and
 * write it with a compare-and-set Lua script: the new value replaces the old one only if the key
 * still holds exactly the bytes that were read, and it keeps the key's remaining TTL to the
 * millisecond (PTTL, then SET PX, atomically inside the script; redis.io/docs/interact/programmability/eval-intro:
 * a script runs atomically, no other command runs in between). A value PHP rewrote meanwhile is never
 * overwritten: it is re-read, and counted as changed-by-php when it is already under the current key
 * (PHP writes with the new ring), or retried when it is still under an old one.
 *
 * Re-running is safe and cheap (idempotent): values already under the current key are only read.
 * A run during which the connection to a master closed (restart, failover, reconnect) is not ok
 * (connectionLost): SCAN may have skipped keys; a re-run finishes.
 * Key names do not change (the lookup key is stable), so the AEAD associated data stays the same.
 * Values that open with no key of the ring are counted and listed by key name, never touched.
 */
import type { ChainableCommander } from 'ioredis';
import type { EnvelopeCodec, OpenFailure } from '@session-migrate/envelope';
import { classifyKeyName } from '@session-migrate/envelope';
import { UserFacingError, stoppedRun } from '@session-migrate/common';
import { classifiedLine, keyNameForDisplay, mayHaveRun, type RedisConnection } from '@session-migrate/redis';

/**
 * KEYS[1] = key name, ARGV[1] = the value read, ARGV[2] = the new value.
 * Returns 1 replaced (TTL kept), or already holding the new value: this very call run before, its
 * reply lost and the call sent again (ioredis re-sends unanswered commands after a reconnect); the
 * new value's nonce is this call's own, so no other writer has those bytes. 0 the key is gone, -1
 * the key holds another value now. test/stopped-part-way.test.ts "a compare-and-set whose reply was lost".
 */
export const ROTATE_CAS_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if v == ARGV[2] then return 1 end
if v ~= ARGV[1] then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
elseif ttl == -1 then
  redis.call('SET', KEYS[1], ARGV[2])
else
  return 0
end
return 1
`;

/**
 * A run of rotate stopped by a failure, as one line (stoppedRun, the one home of the rule): exit 1
 * with how many values this run re-encrypted when it re-encrypted any (or a compare-and-set was in
 * flight), else exit 2, nothing rewritten. Every value is under the old key or the new one, each
 * valid, so a re-run finishes. `counts`: the run's so far (the `--json` document's, numbers only).
 */
function rotateStopped(reason: string, counts: RotateCounts, inFlight: boolean): UserFacingError {
  return stoppedRun({
    command: 'rotate',
    reason,
    done: counts.reEncrypted,
    inFlight,
    counts: numbersOf(counts),
    what: 'value(s) re-encrypted',
    rerun: 'every value is under the old key or the new one, each valid; run rotate again to finish',
    nothing: 'nothing was rewritten; run rotate again once Redis answers',
  });
}

/**
 * Problem reasons that can come by the thousand (every value, for a ring without their key, or a
 * prefix holding another tool's values): rotate's CLI says each on one summary line, never one line
 * per key, and RotateReport.problems lists at most ROTATE_SUMMARIZED_LISTED of each.
 */
export const ROTATE_SUMMARIZED_REASONS: ReadonlySet<RotateProblem['reason']> = new Set<RotateProblem['reason']>([
  'unknown-key-id',
  'not-envelope',
]);

/** Problems listed per reason of ROTATE_SUMMARIZED_REASONS (the CLI names 3 of them as examples). */
export const ROTATE_SUMMARIZED_LISTED = 10;

/** The number-valued counts of a run (RotateCounts without its per-reason and per-key-ID maps). */
function numbersOf(counts: RotateCounts): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter((e): e is [string, number] => typeof e[1] === 'number'));
}

/** A Redis error in one line: its message and fix (classifiedLine). */
function redisReason(client: RedisConnection, err: unknown): string {
  return classifiedLine(client.classify(err));
}

/**
 * A permanent Redis error (an ACL rule without EVAL, a replica, OOM) is the same for every key: stop
 * the run with what to fix instead of counting it key by key.
 * @param inFlight compare-and-sets may have run whose outcome is unknown (rotateStopped's)
 * @throws UserFacingError for a permanent error other than WRONGTYPE (counted per key): rotateStopped
 */
function stopOnPermanent(client: RedisConnection, err: Error, counts: RotateCounts, inFlight = false): void {
  const c = client.classify(err);
  if (c.kind === 'permanent' && c.code !== 'WRONGTYPE') throw rotateStopped(redisReason(client, err), counts, inFlight);
}

/** Counts of one rotation run (complete, whatever the number of keys). */
export interface RotateCounts {
  /** Keys SCAN returned under the prefix (a key may be returned twice by SCAN). */
  scanned: number;
  /** Session keys among them (prefix + 64 lowercase hex characters). */
  sessionKeys: number;
  /** Keys under the prefix that are not session key names (left alone, e.g. markers of other tools). */
  otherKeys: number;
  /** Re-encrypted under the current key by this run. */
  reEncrypted: number;
  /** Already under the current key (nothing to do). */
  alreadyCurrent: number;
  /** PHP wrote the session between our read and our write; its value (under the current key) was kept. */
  changedByPhp: number;
  /** Expired or deleted before we could write it. */
  gone: number;
  /** Values that open with no key of the ring (by reason in notOpenedByReason): left untouched. */
  notOpened: number;
  notOpenedByReason: Partial<Record<OpenFailure, number>>;
  /** Keys holding another Redis type: left untouched. */
  wrongType: number;
  /** Still under an older key after every retry (PHP keeps writing with an old ring?). */
  remainingOld: number;
  /** Redis errors on single keys. */
  failed: number;
  /** Session values per key ID as first read (before rotation). */
  keyIdsBefore: Record<string, number>;
}

export interface RotateProblem {
  /** Redis key name (safe to print). */
  key: string;
  reason: OpenFailure | 'wrong-type' | 'still-under-old-key' | 'redis-error';
}

export interface RotateReport {
  ok: boolean;
  prefix: string;
  /** Key ID every session should now be under. */
  currentKeyId: string;
  counts: RotateCounts;
  /**
   * Problems listed by key name; counts are complete. Listing rule: at most ROTATE_SUMMARIZED_LISTED
   * of each reason of ROTATE_SUMMARIZED_REASONS (the CLI says those on one line each), at most
   * `maxListed` of all others together, so values a ring cannot open never crowd out the rest.
   */
  problems: RotateProblem[];
  /**
   * Values that failed `unknown-key-id`, by the key ID in their header (readable without the key:
   * packages/envelope/src/envelope.ts open); absent when none did. Key IDs are public (docs/keys.md).
   */
  unknownKeyIds?: Record<string, number>;
  /** With `unknownKeyIds`: the key IDs the ring given holds (current first), to name beside them. */
  keyRingIds?: string[];
  /**
   * A master connection closed during the run (a Redis restart, a failover, a reconnect:
   * RedisConnection.generation changed). SCAN returns every key only within one run of one server
   * (https://redis.io/commands/scan: the cursor is a position in that server's hash table), so keys
   * may not have been looked at: the run is not ok, and a re-run finishes.
   */
  connectionLost: boolean;
}

export interface RotateOptions {
  /** The target, on any topology (SCAN on every master, pipelines grouped by slot). */
  client: RedisConnection;
  /** The key ring: its current key seals, every key opens, its lookup key named the keys. */
  codec: EnvelopeCodec;
  prefix: string;
  /** SCAN COUNT hint and batch size. Default 500. */
  scanCount?: number;
  /** Rounds a key PHP keeps rewriting under an old key is retried. Default 3. */
  maxRetries?: number;
  maxListed?: number;
  /** Called after every SCAN batch with the counts so far (throwing stops the run: tests use it to crash). */
  onProgress?: (counts: RotateCounts) => void;
  /**
   * Called between reading a batch and its compare-and-set, with the keys about to be written.
   * Tests use it to let PHP write in exactly that window; production leaves it unset.
   */
  beforeWrite?: (keys: string[]) => Promise<void> | void;
}

/**
 * Rotates every session under the prefix to the ring's current key (see the module comment).
 * @throws UserFacingError when Redis fails as a whole (connection lost) or with a permanent error:
 *   one line (rotateStopped), exitCode 1 with how many values were re-encrypted before, 2 when none
 *   was; everything written so far is complete and valid, and a re-run continues.
 */
export async function rotateTarget(options: RotateOptions): Promise<RotateReport> {
  return new RotateRun(options).run();
}

/** The counts of a run that has not looked at any key yet. */
function emptyRotateCounts(): RotateCounts {
  return {
    scanned: 0,
    sessionKeys: 0,
    otherKeys: 0,
    reEncrypted: 0,
    alreadyCurrent: 0,
    changedByPhp: 0,
    gone: 0,
    notOpened: 0,
    notOpenedByReason: {},
    wrongType: 0,
    remainingOld: 0,
    failed: 0,
    keyIdsBefore: {},
  };
}

/** One compare-and-set to send: the value read (`old`) and its re-sealed form. */
interface RotateWrite {
  key: string;
  old: Buffer;
  sealed: Buffer;
}

/** One run of rotateTarget: the counts and problems its steps share. */
class RotateRun {
  private readonly counts = emptyRotateCounts();
  private readonly problems: RotateProblem[] = [];
  private readonly maxListed: number;
  private readonly maxRetries: number;
  private readonly prefixBytes: Buffer;

  constructor(private readonly options: RotateOptions) {
    this.maxListed = options.maxListed ?? 1000;
    this.maxRetries = options.maxRetries ?? 3;
    this.prefixBytes = Buffer.from(options.prefix, 'utf8');
  }

  /** A compare-and-set pipeline failed without its replies and may have run (rotateStopped's inFlight). */
  private casInFlight = false;

  /** walk, its failure (a lost connection...) in one line with the count re-encrypted (rotateStopped). */
  async run(): Promise<RotateReport> {
    try {
      return await this.walk();
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      const { client } = this.options;
      throw rotateStopped(`Redis at ${client.url} failed: ${redisReason(client, err)}`, this.counts, this.casInFlight);
    }
  }

  /** SCANs the prefix (every master) and rotates each batch's session keys, retrying those PHP rewrote. */
  private async walk(): Promise<RotateReport> {
    const { client, codec, prefix } = this.options;
    const counts = this.counts;
    const generation = await client.generation();
    for await (const rawKeys of client.scan(prefix, this.options.scanCount ?? 500)) {
      const keys: string[] = [];
      for (const raw of rawKeys) {
        counts.scanned++;
        if (classifyKeyName(this.prefixBytes, raw).kind !== 'session') {
          counts.otherKeys++;
          continue;
        }
        counts.sessionKeys++;
        keys.push(keyNameForDisplay(raw));
      }
      let pending = keys;
      for (let attempt = 0; pending.length > 0; attempt++) pending = await this.rotateKeys(pending, attempt);
      this.options.onProgress?.(counts);
    }
    // A restart between two SCAN calls (ioredis reconnects, the cursor goes on over a rebuilt hash
    // table) skipped keys silently: rotate reported ok with sessions still under the old key.
    const connectionLost = (await client.generation()) !== generation;
    const ok = !connectionLost && counts.notOpened === 0 && counts.wrongType === 0 && counts.remainingOld === 0 && counts.failed === 0;
    const unknown = this.unknownKeyIds !== undefined ? { unknownKeyIds: this.unknownKeyIds, keyRingIds: codec.keyIds } : {};
    return { ok, prefix, currentKeyId: codec.keyId, counts, problems: this.problems, ...unknown, connectionLost };
  }

  /** RotateReport.unknownKeyIds so far (undefined until a value fails `unknown-key-id`). */
  private unknownKeyIds: Record<string, number> | undefined;
  /** Problems listed so far: of each reason of ROTATE_SUMMARIZED_REASONS, and of all others together. */
  private readonly listedSummarized = new Map<RotateProblem['reason'], number>();
  private listedOthers = 0;

  /** Lists a problem within RotateReport.problems' listing rule (the counts are the caller's). */
  private problem(key: string, reason: RotateProblem['reason']): void {
    if (ROTATE_SUMMARIZED_REASONS.has(reason)) {
      const n = this.listedSummarized.get(reason) ?? 0;
      if (n >= Math.min(ROTATE_SUMMARIZED_LISTED, this.maxListed)) return;
      this.listedSummarized.set(reason, n + 1);
    } else {
      if (this.listedOthers >= this.maxListed) return;
      this.listedOthers++;
    }
    this.problems.push({ key, reason });
  }

  /** Reads `keys`, re-seals those under an old key, CASes them; returns keys to retry. */
  private async rotateKeys(keys: string[], attempt: number): Promise<string[]> {
    const replies = await this.options.client.runGrouped(
      keys.map((k) => ({
        key: k,
        build: (p: ChainableCommander) => {
          p.getBuffer(k);
        },
      })),
    );
    const writes: RotateWrite[] = [];
    keys.forEach((key, i) => {
      const [err, value] = replies[i]?.[0] ?? [new Error('no reply'), null];
      const write = this.decide(key, err, value as Buffer | null, attempt);
      if (write !== undefined) writes.push(write);
    });
    if (writes.length === 0) return [];
    await this.options.beforeWrite?.(writes.map((w) => w.key));
    return this.compareAndSet(writes);
  }

  /** Counts one key's read; returns its re-sealed write when it is still under an old key. */
  private decide(key: string, err: Error | null, value: Buffer | null, attempt: number): RotateWrite | undefined {
    const { client, codec } = this.options;
    const counts = this.counts;
    if (err) {
      stopOnPermanent(client, err, counts);
      if (/WRONGTYPE/.test(err.message)) {
        counts.wrongType++;
        this.problem(key, 'wrong-type');
      } else {
        counts.failed++;
        this.problem(key, 'redis-error');
      }
      return undefined;
    }
    if (value === null) {
      counts.gone++;
      return undefined;
    }
    const opened = codec.open(key, value);
    if (!opened.ok) {
      counts.notOpened++;
      counts.notOpenedByReason[opened.reason] = (counts.notOpenedByReason[opened.reason] ?? 0) + 1;
      if (opened.reason === 'unknown-key-id') {
        const ids = (this.unknownKeyIds ??= {});
        ids[opened.keyId!] = (ids[opened.keyId!] ?? 0) + 1;
      }
      this.problem(key, opened.reason);
      return undefined;
    }
    try {
      if (attempt === 0) counts.keyIdsBefore[opened.keyId] = (counts.keyIdsBefore[opened.keyId] ?? 0) + 1;
      if (opened.keyId === codec.keyId) {
        if (attempt === 0) counts.alreadyCurrent++;
        else counts.changedByPhp++;
        return undefined;
      }
      if (attempt > this.maxRetries) {
        counts.remainingOld++;
        this.problem(key, 'still-under-old-key');
        return undefined;
      }
      return { key, old: value, sealed: codec.seal(key, opened.plaintext) };
    } finally {
      opened.plaintext.fill(0);
    }
  }

  /**
   * Sends the compare-and-set of each write (ROTATE_CAS_SCRIPT); returns the keys PHP rewrote meanwhile.
   * A pipeline sent again by ioredis after its connection closed (RedisConnection.generation changed
   * during the call: autoResendUnfulfilledCommands, packages/redis/src/connection.ts
   * failRepeatedResends) ran once before: an error reply to its second send says nothing of the
   * first, so a stop then counts the compare-and-sets in flight (casInFlight).
   * test/stopped-part-way.test.ts "a compare-and-set whose reply was lost, then an error reply".
   */
  private async compareAndSet(writes: RotateWrite[]): Promise<string[]> {
    const { client } = this.options;
    const counts = this.counts;
    const generation = await client.generationBefore();
    let results: Awaited<ReturnType<RedisConnection['runGrouped']>>;
    try {
      results = await client.runGrouped(
        writes.map((w) => ({
          key: w.key,
          build: (p: ChainableCommander) => {
            p.eval(ROTATE_CAS_SCRIPT, 1, w.key, w.old, w.sealed);
          },
        })),
      );
    } catch (err) {
      // An error reply to its one send: none ran.
      this.casInFlight ||= mayHaveRun(err) || (await client.closedSince(generation));
      throw err;
    }
    const resent = await client.closedSince(generation);
    const retry: string[] = [];
    writes.forEach((w, i) => {
      const [err, result] = results[i]?.[0] ?? [new Error('no reply'), null];
      if (err) {
        if (resent) this.casInFlight = true;
        stopOnPermanent(client, err, counts, this.casInFlight);
        counts.failed++;
        this.problem(w.key, 'redis-error');
      } else if (result === 1) counts.reEncrypted++;
      else if (result === 0) counts.gone++;
      else retry.push(w.key); // PHP wrote meanwhile: look again
    });
    return retry;
  }
}

/**
 * Several sources in one plan (`plan --source A --source B ...`): several session directories, or
 * files plus a plaintext Redis source. Each source is copied, verified and purged on its own (apply
 * runs applySessions once per source), and counted on its own. What needs all of them at once is a
 * session ID present in more than one source: only one copy may reach Redis.
 *
 * The rule (the lifecycle rule apply uses for "newer in Redis", packages/migrate/src/apply.ts
 * isNewerInRedis): of the copies PHP would load (live, not empty, valid for the serialize_handler),
 * the one with the longest remaining lifetime wins, i.e. the one written last (a file: mtime +
 * gc_maxlifetime - now, mod_files.c's age rule; a plaintext phpredis key: its PTTL, phpredis writes
 * with SETEX gc_maxlifetime). Copies with the same bytes are no conflict. Copies that differ and whose
 * lifetimes are within NEWER_MARGIN_MS (1 s, the resolution of that inference) cannot be ordered: the
 * copy of the source given first wins, and they are counted as `ties`. The losing copies are
 * `superseded`: apply does not copy them, verify does not compare them, purge deletes them once the
 * session is in Redis (any value that opens: the winner, or a newer one the handler wrote).
 *
 * The decision is made from the sources as they are when the command starts (plan reports it, apply,
 * verify and purge make it again): a copy that changes afterwards is judged by the usual rules.
 *
 * Finding the IDs in several sources reads names only (a directory walk, a SCAN) into a compact
 * table of 64-bit hashes (9 bytes per session); only the IDs found more than once are read.
 */
import { NEWER_MARGIN_MS, addCounts, redactSessionPath } from '@session-migrate/common';
import type { SerializeHandler } from '@session-migrate/php-session';
import type { SessionCandidate, SessionSource, SkippedEntry, Source, SourceItem, StableReadOptions } from '@session-migrate/sources';
import { sourceLabel } from '@session-migrate/sources';
import { addFailure, addShortfall, emptySessionCounts, type ApplySessionsReport, type SessionCounts } from './apply.ts';
import { addSummaryNumbers, decideSourceSession, emptySourceSummary, looksCompleteFor, type SourceSummary } from './plan.ts';

/** What happened to the session IDs found in more than one source. */
export interface DuplicatesReport {
  /** Session IDs found in more than one source. */
  ids: number;
  /** ... whose live copies hold the same bytes (or only one copy is live): no conflict. */
  identical: number;
  /** ... whose live copies differ: the copy written last wins. */
  newerWins: number;
  /** ... whose live copies differ and were written within 1 s of each other: the source given first wins. */
  ties: number;
  /** Copies not copied (superseded), per source, in the plan's order, and their payload bytes. */
  superseded: number[];
  supersededBytes: number[];
  /**
   * A few of them (at most 20), with the session ID shortened: which source's copy won and why, and
   * each copy's file (shortened) or key (shortened) and remaining lifetime.
   */
  sample: Array<{
    id: string;
    winner: number;
    reason: 'identical' | 'newer' | 'tie' | 'only-live-copy';
    copies: Array<{ source: number; location: string; ttlSeconds?: number }>;
  }>;
}

export interface DuplicateResolution {
  report: DuplicatesReport;
  /** Per source (plan order), the session IDs whose copy there is superseded. */
  superseded: Array<Set<string>>;
}

export interface ResolveOptions {
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  /** Seconds since the epoch (default now). */
  nowSeconds?: number;
}

const SAMPLE = 20;

/** The session ID shortened for reports: a full ID is a replayable credential. */
function shortId(id: string): string {
  return `${id.slice(0, 6)}…`;
}

/**
 * A set of session IDs as 64-bit hashes (two 32-bit FNV-1a variants) in an open-addressing table,
 * each with the index of the first source it was seen in. A hash collision only makes two IDs look
 * alike here; every candidate is read back by its real ID, so it costs a read, never a wrong verdict.
 */
class IdIndex {
  private hashes = new Uint32Array(2 * 1024);
  private owners = new Uint8Array(1024);
  private size = 0;

  private static hash(id: string): [number, number] {
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ id.length;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
    }
    // 0/0 marks an empty slot.
    return [a >>> 0, (b | 1) >>> 0];
  }

  /** Adds `id` for `source` (0-based); returns the first source it was seen in, or -1 when new. */
  add(id: string, source: number): number {
    if (this.size * 2 >= this.owners.length) this.grow();
    const [a, b] = IdIndex.hash(id);
    const mask = this.owners.length - 1;
    for (let slot = a & mask; ; slot = (slot + 1) & mask) {
      const h1 = this.hashes[slot * 2]!;
      const h2 = this.hashes[slot * 2 + 1]!;
      if (h1 === 0 && h2 === 0) {
        this.hashes[slot * 2] = a;
        this.hashes[slot * 2 + 1] = b;
        this.owners[slot] = source;
        this.size++;
        return -1;
      }
      if (h1 === a && h2 === b) return this.owners[slot]!;
    }
  }

  private grow(): void {
    const oldHashes = this.hashes;
    const oldOwners = this.owners;
    this.hashes = new Uint32Array(oldHashes.length * 2);
    this.owners = new Uint8Array(oldOwners.length * 2);
    const mask = this.owners.length - 1;
    for (let i = 0; i < oldOwners.length; i++) {
      const a = oldHashes[i * 2]!;
      const b = oldHashes[i * 2 + 1]!;
      if (a === 0 && b === 0) continue;
      let slot = a & mask;
      while (this.hashes[slot * 2] !== 0 || this.hashes[slot * 2 + 1] !== 0) slot = (slot + 1) & mask;
      this.hashes[slot * 2] = a;
      this.hashes[slot * 2 + 1] = b;
      this.owners[slot] = oldOwners[i]!;
    }
  }
}

/**
 * Finds the session IDs present in more than one source and decides which copy wins (see the module
 * comment). With one source: nothing to do.
 * @throws what the sources throw (an unreadable Redis source)
 */
export async function resolveDuplicates(sources: readonly Source[], options: ResolveOptions): Promise<DuplicateResolution> {
  const superseded = sources.map(() => new Set<string>());
  const report: DuplicatesReport = {
    ids: 0,
    identical: 0,
    newerWins: 0,
    ties: 0,
    superseded: sources.map(() => 0),
    supersededBytes: sources.map(() => 0),
    sample: [],
  };
  if (sources.length < 2) return { report, superseded };
  if (sources.length > 255) throw new RangeError('at most 255 sources');
  const list = await idsInSeveralSources(sources);
  const now = options.nowSeconds ?? Date.now() / 1000;
  const read: StableReadOptions = { looksComplete: looksCompleteFor(options.serializeHandler) };
  for (let start = 0; start < list.length; start += 500) {
    const ids = list.slice(start, start + 500);
    const copies = await Promise.all(sources.map((source) => source.readIds(ids, { read })));
    ids.forEach((id, k) => {
      const found: Copy[] = [];
      for (let s = 0; s < sources.length; s++) {
        const item = copies[s]![k];
        if (item === undefined) continue;
        if (item.kind !== 'session') {
          found.push({ source: s, item });
          continue;
        }
        const d = decideSourceSession(item, { ...options, nowSeconds: now });
        found.push(d.action === 'migrate' ? { source: s, item, ttlMs: d.ttlMs, data: item.data } : { source: s, item });
      }
      if (found.length < 2) return; // a hash collision, or gone meanwhile
      recordDuplicate(id, found, report, superseded);
    });
  }
  return { report, superseded };
}

/** One source's copy of a session ID: `ttlMs` and `data` only for a copy apply would copy (live). */
interface Copy {
  source: number;
  item: SourceItem;
  ttlMs?: number;
  data?: Buffer;
}

/**
 * The candidate IDs seen in more than one source (by a 64-bit hash of each ID, IdIndex; confirmed
 * afterwards by reading them). SCAN may return a key of the same source twice: not a duplicate.
 */
async function idsInSeveralSources(sources: readonly Source[]): Promise<string[]> {
  const index = new IdIndex();
  const candidates = new Set<string>();
  for (const [s, source] of sources.entries()) {
    for await (const ids of source.ids()) {
      for (const id of ids) {
        const first = index.add(id, s);
        if (first !== -1 && first !== s) candidates.add(id);
      }
    }
  }
  return [...candidates];
}

/**
 * Decides which copy of a session ID found in several sources wins (see the module comment: the only
 * live copy, identical copies, the newer by its TTL, or a tie within NEWER_MARGIN_MS where the source
 * given first wins) and records it: the losers' IDs in `superseded`, counts and a sample in `report`.
 */
function recordDuplicate(id: string, found: readonly Copy[], report: DuplicatesReport, superseded: Array<Set<string>>): void {
  report.ids++;
  const live = found.filter((f) => f.ttlMs !== undefined);
  const { winner, reason } = chooseWinner(live, found, report);
  for (const f of live) {
    if (f.source === winner) continue;
    superseded[f.source]!.add(id);
    report.superseded[f.source]!++;
    report.supersededBytes[f.source]! += f.data!.length;
  }
  if (report.sample.length < SAMPLE) {
    report.sample.push({
      id: shortId(id),
      winner,
      reason,
      copies: found.map((f) => ({
        source: f.source,
        location: redactSessionPath(f.item.location),
        ...(f.ttlMs !== undefined ? { ttlSeconds: Math.round(f.ttlMs / 1000) } : {}),
      })),
    });
  }
}

/** The winning copy among `live` (copies apply would copy) and why; counts the kind of decision in `report`. */
function chooseWinner(
  live: readonly Copy[],
  found: readonly Copy[],
  report: DuplicatesReport,
): { winner: number; reason: DuplicatesReport['sample'][number]['reason'] } {
  if (live.length < 2) {
    // At most one copy would be copied at all: nothing to choose.
    report.identical++;
    return { winner: live[0]?.source ?? found[0]!.source, reason: live.length === 1 ? 'only-live-copy' : 'identical' };
  }
  if (live.every((f) => f.data!.equals(live[0]!.data!))) {
    report.identical++;
    return { winner: live.reduce((a, b) => (b.ttlMs! > a.ttlMs! ? b : a)).source, reason: 'identical' };
  }
  const sorted = [...live].sort((a, b) => b.ttlMs! - a.ttlMs! || a.source - b.source);
  const best = sorted[0]!;
  // Written within the margin of the best: cannot be ordered; the source given first wins.
  const tied = sorted.filter((f) => best.ttlMs! - f.ttlMs! < NEWER_MARGIN_MS && !f.data!.equals(best.data!));
  if (tied.length > 0) {
    report.ties++;
    return { winner: Math.min(best.source, ...tied.map((f) => f.source)), reason: 'tie' };
  }
  report.newerWins++;
  return { winner: best.source, reason: 'newer' };
}

/**
 * A source without its superseded copies, for apply: they come out as skipped (`superseded`), so
 * apply counts them and copies the winning copy from its own source. A FilesSource keeps its
 * candidate listing (apply reads files on worker threads from it).
 */
export function withoutSuperseded<T extends Source>(source: T, ids: ReadonlySet<string>): T | (Source & SessionSource) | Source {
  if (ids.size === 0) return source;
  const superseded = (location: string): SkippedEntry => ({ kind: 'skipped', location, reason: 'superseded' });
  const base: Source = {
    kind: source.kind,
    maxSessionBytes: source.maxSessionBytes,
    describe: () => source.describe(),
    async *sessions(options) {
      for await (const items of source.sessions(options)) {
        yield items.map((item) => (item.kind === 'session' && ids.has(item.id) ? superseded(item.location) : item));
      }
    },
    ids: () => source.ids(),
    readIds: (list, options) => source.readIds(list, options),
    removeIfUnchanged: (session) => source.removeIfUnchanged(session),
    close: () => source.close(),
  };
  if (!('candidates' in source)) return base;
  const files = source as unknown as Source & SessionSource;
  const wrapped = {
    ...base,
    describe: () => files.describe(),
    *scan() {
      for (const item of files.scan()) yield item.kind === 'session' && ids.has(item.id) ? superseded(item.location) : item;
    },
    *candidates(): Generator<SessionCandidate | SkippedEntry> {
      for (const c of files.candidates()) yield c.kind === 'candidate' && ids.has(c.id) ? superseded(c.location) : c;
    },
    read: (candidate: SessionCandidate) => files.read(candidate),
  };
  return wrapped as unknown as Source & SessionSource;
}

/** Adds up per-source summaries (the plan's total). Samples keep the first entries. */
export function sumSummaries(parts: readonly SourceSummary[]): SourceSummary {
  const total = emptySourceSummary();
  for (const p of parts) {
    addSummaryNumbers(total, p);
    total.formats = addCounts(total.formats, p.formats);
    total.warnings = addCounts(total.warnings, p.warnings);
    total.skipped = addCounts(total.skipped, p.skipped);
    for (const s of p.skippedSample) if (total.skippedSample.length < 50) total.skippedSample.push(s);
  }
  return total;
}

/** `N files:/dir` / `N redis:...`: how reports name a source of a plan (1-based, in the plan's order). */
export function numberedSourceLabel(source: Parameters<typeof sourceLabel>[0], index: number): string {
  return `#${index + 1} ${sourceLabel(source)}`;
}

/**
 * apply's reports of several sources as one: counts added up, lists joined (at most 100 entries
 * each, as apply lists them), `aborted` when any run stopped early, the first permanent error.
 */
export function sumApplyReports(reports: readonly ApplySessionsReport[]): ApplySessionsReport {
  const counts = emptySessionCounts();
  const total: ApplySessionsReport = {
    dryRun: reports[0]?.dryRun ?? false,
    counts,
    conflicts: [],
    failures: [],
    failureGroups: [],
    unstable: [],
    foreignOwned: [],
    aborted: false,
    missing: [],
    replicaShortfalls: [],
  };
  const join = <T>(into: T[], from: readonly T[]): void => {
    for (const x of from) if (into.length < 100) into.push(x);
  };
  for (const r of reports) {
    for (const [k, v] of Object.entries(r.counts) as Array<[keyof SessionCounts, SessionCounts[keyof SessionCounts]]>) {
      if (k === 'skipped')
        for (const [reason, n] of Object.entries(v as Record<string, number>)) counts.skipped[reason] = (counts.skipped[reason] ?? 0) + n;
      else (counts[k] as number) += v as number;
    }
    join(total.conflicts, r.conflicts);
    join(total.failures, r.failures);
    for (const g of r.failureGroups ?? []) addFailure(total.failureGroups!, g.reason, g.keys, g.count);
    join(total.unstable, r.unstable);
    join(total.foreignOwned!, r.foreignOwned ?? []);
    join(total.missing, r.missing);
    for (const x of r.replicaShortfalls) addShortfall(total.replicaShortfalls, x);
    total.aborted ||= r.aborted;
    if (total.stopped === undefined && r.stopped !== undefined) total.stopped = r.stopped;
    if (r.sourceFailures !== undefined) (total.sourceFailures ??= []).push(...r.sourceFailures);
    for (const [why, n] of Object.entries(r.unreadableReasons ?? {}))
      (total.unreadableReasons ??= {})[why] = (total.unreadableReasons?.[why] ?? 0) + n;
  }
  return total;
}

/**
 * The CLI's commands. Each wires the packages together (sources -> envelope -> target -> verify) and
 * returns the process exit code: 0 success, 1 a check failed (verify) or sessions failed/conflicted
 * (apply), 2 usage, input or connection errors (thrown as UserFacingError).
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_LOCKING, type LockingOptions } from '@session-migrate/generate';
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_GC_MAXLIFETIME, UserFacingError, describeFsError, printable } from '@session-migrate/common';
import { EnvelopeCodec, DEFAULT_PREFIX, prefixProblem, describeKeyProvider, generateKeyFile, loadKeyRing, wipeKeyRing, type KeyProvider } from '@session-migrate/envelope';
import {
  DEFAULT_ARTIFACTS_DIR, DEFAULT_PLAN_FILE, DEFAULT_RETRY, PLAN_FORMAT, PLAN_VERSION, applyArtifacts, applySessions, artifactsForPlan, describeArtifactResults, detectDrift,
  expectedMemoryBytes, readPlanFile, resolveDuplicates, sumApplyReports, sumSummaries, summarizeSource, withoutSuperseded, writePlanFile,
  type ApplySessionsReport, type ArtifactResult, type ConfirmOptions, type DuplicatesReport, type Plan, type PlanMemory, type SourceSummary,
} from '@session-migrate/migrate';
import type { SerializeHandler } from '@session-migrate/php-session';
import { DEFAULT_MAX_SESSION_BYTES, RedisSource, sameRedisData, sourceLabel, type Source } from '@session-migrate/sources';
import { checkSourcesAgainstTarget, closeSources, openPlanSources, openSources, readThroughSource, sourceRowLabel, sourcesTable } from './sources-options.ts';
import { RedisConnection, aclRuleFor, formatHostPort, memoryWarnings, readMemory, specFromUrl, type TlsFiles } from '@session-migrate/redis';
import { verifyTarget, type PlaintextCheck, type SourceCheck, type VerifyReport } from '@session-migrate/verify';
import { openTarget, warn } from './redis-options.ts';
import { formatBytes, formatCounts, progressLine } from './output.ts';
import { codecFromProvider, planKeyFor, providerFromPlan } from './key-options.ts';

export type Print = (line: string) => void;

/** Wraps an error from Redis in the middle of a command into a one-line UserFacingError (for other command files). */
export function redisFailureFor(err: unknown, conn: RedisConnection | string, during: string): UserFacingError {
  return redisFailure(err, conn, during);
}

/**
 * Checks a key prefix: printable, no spaces, not empty; a target prefix (`layout`, the default) also
 * without `{` or `}`, which would move key layout 2's hash tag (docs/envelope.md).
 */
export function checkPrefix(prefix: string, layout = true): string {
  if (prefix === '' || !/^[\x21-\x7e]{1,128}$/.test(prefix)) {
    throw new UserFacingError(`prefix "${printable(prefix)}" must be 1 to 128 printable ASCII characters without spaces`);
  }
  const problem = layout ? prefixProblem(prefix) : undefined;
  if (problem !== undefined) throw new UserFacingError(`prefix "${printable(prefix)}" ${problem}`);
  return prefix;
}

/** session.gc_maxlifetime as a TTL: a whole number of seconds from 1 to 2^31-1. */
export function checkGcMaxlifetime(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 2 ** 31 - 1) {
    throw new UserFacingError('--gc-maxlifetime must be a whole number of seconds from 1 to 2147483647');
  }
  return seconds;
}

/** Checks that `dir` is a directory or can be created (its nearest existing ancestor is a directory). */
function checkCanCreateDir(dir: string, option: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) throw new UserFacingError(`${option} ${dir}: ${d} is not a directory`);
      return;
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      if (dirname(d) === d) throw new UserFacingError(`${option} ${dir}: ${describeFsError(err)}`);
    }
  }
}

async function countKeysUnderPrefix(conn: RedisConnection, prefix: string): Promise<number> {
  let n = 0;
  for await (const keys of conn.scan(prefix)) n += keys.length;
  return n;
}

/** What plan records about the target beside its description: keys under the prefix now, and memory. */
async function targetState(conn: RedisConnection, prefix: string, expectedBytes: number): Promise<{ existingKeysUnderPrefix: number; memory: PlanMemory }> {
  try {
    const nodes = await readMemory(conn);
    return { existingKeysUnderPrefix: await countKeysUnderPrefix(conn, prefix), memory: { expectedBytes, nodes, warnings: memoryWarnings(nodes, expectedBytes) } };
  } catch (err) {
    throw redisFailure(err, conn, 'plan');
  }
}

/** Wraps an error from Redis in the middle of a command into a one-line UserFacingError with its fix. */
function redisFailure(err: unknown, conn: RedisConnection | string, during: string): UserFacingError {
  if (err instanceof UserFacingError) return err;
  const url = typeof conn === 'string' ? conn : conn.url;
  const c = typeof conn === 'string' ? { message: ((err as Error).message ?? String(err)).split('\n')[0] ?? '', fix: undefined } : conn.classify(err);
  return new UserFacingError(`Redis at ${url} failed during ${during}: ${c.message}${c.fix !== undefined ? ` (${c.fix})` : ''}`);
}

// ---------------------------------------------------------------- keys generate

/** Writes a new master key file (mode 0600, never overwriting) and prints its key ID. */
export async function keysGenerate(args: { out: string }, print: Print): Promise<number> {
  const key = generateKeyFile(args.out);
  try {
    const codec = await EnvelopeCodec.create([key]);
    print(`wrote a new master key to ${args.out} (mode 0600), key ID ${codec.keyId}`);
  } finally {
    key.fill(0);
  }
  print('keep it out of version control and php.ini; PHP reads it through SESSION_MIGRATE_KEY_FILE or SESSION_MIGRATE_KEY');
  return 0;
}

// ---------------------------------------------------------------- plan

export interface PlanArgs {
  /** One source or several (`--source` repeated): `files:DIR` or `redis:URL`. */
  source: string | string[];
  target: string;
  /** Where the key comes from (key-options.ts). */
  key: KeyProvider;
  prefix: string;
  out: string;
  gcMaxlifetime: number;
  serializeHandler: SerializeHandler;
  maxSessionBytes: number;
  artifactsDir: string;
  installDir?: string;
  /** Generate the handler in read-through (migrating) mode over the source directory (docs/runbook.md). */
  readThrough?: boolean;
  /** Locking and connection choices of the generated handler (handler-options.ts); absent: its defaults. */
  handler?: { locking?: LockingOptions; persistent?: boolean };
  /** TLS files of the target (--tls-*) and of a Redis source (--source-tls-*). */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  json: boolean;
}

/** Builds a plan (scans every source, connects to the target) and writes it. */
export async function planCommand(args: PlanArgs, print: Print): Promise<number> {
  const prefix = checkPrefix(args.prefix);
  checkGcMaxlifetime(args.gcMaxlifetime);
  if (!Number.isInteger(args.maxSessionBytes) || args.maxSessionBytes < 1 || args.maxSessionBytes > 2 ** 31 - 1) {
    throw new UserFacingError('--max-session-bytes must be a whole number of bytes from 1 to 2147483647');
  }
  if (args.artifactsDir === '' || args.installDir === '') throw new UserFacingError('--artifacts-dir and --install-dir cannot be empty');
  const specs = Array.isArray(args.source) ? args.source : [args.source];
  if (specs.length === 0) throw new UserFacingError('plan needs --source (files:DIR or redis:URL; repeat it for several sources)');
  const outDir = resolve(args.artifactsDir);
  checkCanCreateDir(outDir, '--artifacts-dir');
  const { codec, ids } = await codecFromProvider(args.key);
  codec.wipe(); // plan only needs the IDs
  // The target URL and TLS options are checked before anything is opened.
  const targetSpec = specFromUrl(args.target, args.tls ?? {}, 'target', { onWarning: warn });
  const sources = await openSources(specs, { maxSessionBytes: args.maxSessionBytes, ...(args.sourceTls !== undefined ? { tls: args.sourceTls } : {}) });
  let conn: RedisConnection;
  try {
    const descriptions = sources.map((s) => s.describe());
    // The handler reads through one legacy save_path: say so before anything is connected.
    const primary = args.readThrough === true ? readThroughSource(descriptions) : descriptions[0]!;
    // write: the plan is for writing; a replica is refused now rather than by apply.
    conn = await RedisConnection.open(targetSpec, { write: true, aclRule: aclRuleFor('plan', prefix, targetSpec.address.kind === 'sentinel' ? 'sentinel' : 'standalone', targetSpec.address.db) });
    try {
      checkSourcesAgainstTarget(sources, { ...conn.description, prefix });
      const php = { gcMaxlifetime: args.gcMaxlifetime, serializeHandler: args.serializeHandler };
      const parts: SourceSummary[] = [];
      for (const source of sources) parts.push(await summarizeSource(source, php));
      const { report: duplicates } = await resolveDuplicates(sources, php);
      const summary = sumSummaries(parts);
      // A superseded copy is not copied: the total counts each session once.
      summary.live -= duplicates.superseded.reduce((a, b) => a + b, 0);
      summary.liveBytes -= duplicates.supersededBytes.reduce((a, b) => a + b, 0);
      const installDir = args.installDir !== undefined ? resolve(args.installDir) : outDir;
      const kinds = new Set(descriptions.map((d) => d.kind));
      const plan: Plan = {
        format: PLAN_FORMAT,
        version: PLAN_VERSION,
        createdAt: new Date().toISOString(),
        source: primary,
        sources: descriptions.map((d, i) => ({ ...d, summary: parts[i]! })),
        ...(sources.length > 1 ? { duplicates } : {}),
        target: { ...conn.description, prefix, ...(await targetState(conn, prefix, expectedMemoryBytes(summary, prefix))) },
        key: planKeyFor(args.key, { keyId: ids.currentKeyId, lookupId: ids.lookupId }),
        php,
        limits: { maxSessionBytes: args.maxSessionBytes },
        summary,
        ttlPolicy: [
          ...(kinds.has('files') ? [`files: remaining lifetime, gc_maxlifetime (${args.gcMaxlifetime} s) minus the file's age; sessions already past it are not copied`] : []),
          ...(kinds.has('redis') ? [`Redis: the source key's remaining PTTL, kept to the millisecond; keys without a TTL get gc_maxlifetime (${args.gcMaxlifetime} s)`] : []),
          ...(sources.length > 1 ? ['a session ID in several sources: the copy written last (longest remaining lifetime) wins; within 1 s, the source given first'] : []),
        ].join('; '),
        artifacts: {
          outDir, installDir, files: [], ...(args.readThrough === true ? { readThrough: true } : {}),
          ...(args.handler?.locking !== undefined ? { locking: args.handler.locking } : {}),
          ...(args.handler?.persistent !== undefined ? { persistent: args.handler.persistent } : {}),
        },
      };
      plan.artifacts.files = artifactsForPlan(plan).map((a) => a.path);
      writePlanFile(args.out, plan);
      if (args.json) {
        print(JSON.stringify(plan, null, 2));
        return 0;
      }
      printPlanSummary(plan, args.out, print);
      return 0;
    } finally {
      conn.close();
    }
  } finally {
    await closeSources(sources);
  }
}

/** How a plan's target (or Redis source) is named in reports: URL, topology, user, TLS, nodes. */
export function describeRedisForPrint(t: Plan['target'] | Extract<Plan['source'], { kind: 'redis' }>): string {
  const parts: string[] = [t.url];
  if (t.topology === 'cluster') parts.push(`Redis Cluster, ${t.nodes?.length ?? 0} master(s): ${(t.nodes ?? []).map(formatHostPort).join(', ')}`);
  else if (t.topology === 'sentinel') parts.push(`Sentinel master "${t.masterName ?? ''}", now at ${formatHostPort(t)}`);
  if (t.username !== undefined) parts.push(`user "${printable(t.username)}"`);
  if (t.auth) parts.push('with AUTH');
  if (t.tls) parts.push(`TLS${t.tlsFiles?.caFile !== undefined ? `, CA ${printable(t.tlsFiles.caFile)}` : ', system CAs'}${t.tlsFiles?.certFile !== undefined ? `, client certificate ${printable(t.tlsFiles.certFile)}` : ''}${t.tlsFiles?.serverName !== undefined ? `, name ${printable(t.tlsFiles.serverName)}` : ''}`);
  return parts.join('; ');
}

/** How a plan's source is named in reports (never with a password). */
export function describeSourceForPrint(source: Plan['source']): string {
  return source.kind === 'redis'
    ? `redis:${printable(source.spec)} (${describeRedisForPrint(source)}, key prefix "${printable(source.prefix)}")`
    : `files:${printable(source.savePath)} (${printable(source.dir)}, depth ${source.depth})`;
}

function printPlanSummary(plan: Plan, planPath: string, print: Print): void {
  const s = plan.summary;
  print('session-migrate plan');
  if (plan.sources.length === 1) print(`  source      ${describeSourceForPrint(plan.source)}`);
  else {
    print(`  sources     ${plan.sources.length}, counted each on its own:`);
    plan.sources.forEach((d, i) => print(`    #${i + 1} ${describeSourceForPrint(d)}`));
    const sup = plan.duplicates?.superseded ?? [];
    for (const line of sourcesTable(['found', 'to migrate', 'expired', 'empty', 'rejected', 'skipped', 'superseded'], [
      ...plan.sources.map((d, i) => ({ label: `#${i + 1}`, values: [d.summary.found, d.summary.live - (sup[i] ?? 0), d.summary.expired, d.summary.empty, d.summary.corrupt, Object.values(d.summary.skipped).reduce((a, b) => a + b, 0), sup[i] ?? 0] })),
      { label: 'total', values: [s.found, s.live, s.expired, s.empty, s.corrupt, Object.values(s.skipped).reduce((a, b) => a + b, 0), sup.reduce((a, b) => a + b, 0)] },
    ])) print(line);
    const dup = plan.duplicates;
    if (dup !== undefined && dup.ids > 0) {
      print(`  duplicates  ${dup.ids} session ID(s) are in more than one source: ${dup.identical} the same (or only one copy live), ${dup.newerWins} different (the copy written last wins), ${dup.ties} different and written within 1 s (the source given first wins); the losing copies are not copied (superseded)`);
      for (const d of dup.sample.slice(0, 10)) print(`                ${d.id}: #${d.winner + 1} wins (${d.reason}); ${d.copies.map((c) => `#${c.source + 1} ${printable(c.location)}${c.ttlSeconds !== undefined ? ` ${c.ttlSeconds} s left` : ''}`).join(', ')}`);
    }
  }
  if ((s.noTtl ?? 0) > 0) print(`  NOTE        ${s.noTtl} source key(s) have no TTL: they get gc_maxlifetime (${plan.php.gcMaxlifetime} s)`);
  print(`  sessions    ${s.found} found: ${s.live} to migrate (${formatBytes(s.liveBytes)}), ${s.expired} already expired, ${s.empty} empty, ${s.corrupt} that PHP would reject`);
  print(`  formats     ${formatCounts(s.formats)} (configured serialize_handler: ${plan.php.serializeHandler})`);
  if (s.serializerMismatch > 0) {
    print(`  WARNING     ${s.serializerMismatch} session(s) are not in the configured serialize_handler format (${plan.php.serializeHandler}): PHP fails to load them and deletes them; they are not migrated`);
  }
  if (Object.keys(s.warnings).length > 0) print(`  notes       ${formatCounts(s.warnings)}`);
  print(`  skipped     ${formatCounts(s.skipped)}`);
  for (const k of s.skippedSample.slice(0, 10)) print(`                ${printable(k.location)}: ${k.reason}${k.detail !== undefined ? ` (${printable(k.detail)})` : ''}`);
  const unread = s.skipped.unreadable ?? 0;
  if (unread > 0) print(`  WARNING     ${unread} session file(s) cannot be read by this user: apply would not copy them (their users would be logged out); run as the PHP user or root`);
  for (const d of plan.sources) {
    if (d.summary.found > 0) continue;
    print(`  WARNING     no session${d.kind === 'redis' ? 's' : ' files'} found in ${d.kind === 'redis' ? describeSourceForPrint(d) : printable(d.dir)}${(d.summary.skipped.subdirectory ?? 0) > 0 ? "; it has one-character subdirectories: if session.save_path is 'N;/path', give --source 'files:N;/path'" : ''}`);
  }
  print(`  target      ${describeRedisForPrint(plan.target)}`);
  print(`  prefix      "${plan.target.prefix}", ${plan.target.existingKeysUnderPrefix} key(s) under it now`);
  const m = plan.target.memory;
  if (m !== undefined) {
    print(`  memory      expected ~${formatBytes(m.expectedBytes)} in Redis for ${s.live} session(s); ${m.nodes.map((n) => `${n.node}: used ${formatBytes(n.usedBytes)}, maxmemory ${n.maxmemory > 0 ? formatBytes(n.maxmemory) : 'none'}, policy ${n.policy}`).join('; ')}`);
    for (const w of m.warnings) print(`  WARNING     ${w}`);
  }
  const from = plan.key.file !== undefined ? printable(plan.key.file) : plan.key.env !== undefined ? `environment variable ${plan.key.env}` : '--key-command';
  print(`  key         lookup ID ${plan.key.lookupId ?? 'unknown'} (checked by the PHP bootstrap), current key ID ${plan.key.keyId} (from ${from})`);
  print(`  TTL         ${plan.ttlPolicy}`);
  const generated = plan.artifacts.files.filter((f) => f !== 'autoload.php' && !f.startsWith('src/'));
  print(`  artifacts   ${generated.map((f) => resolve(plan.artifacts.outDir, f)).join(', ')}, and the handler's classes in ${resolve(plan.artifacts.outDir, 'src')}/ (${plan.artifacts.files.length - generated.length} files with autoload.php)`);
  print(`  install dir ${plan.artifacts.installDir} (where PHP loads the bootstrap from; --install-dir)`);
  const lock = { ...DEFAULT_LOCKING, ...(plan.artifacts.locking ?? {}) };
  print(`  locking     ${lock.enabled ? `on: up to ${lock.retries} retries ${lock.waitMicros} µs apart, lock TTL max_execution_time or ${lock.ttlSeconds} s, on failure ${lock.onFailure}` : 'off: the last write wins (--locking to turn it on)'}; ${plan.artifacts.persistent === false ? 'one Redis connection per request' : 'persistent Redis connections'}`);
  const others = plan.sources.length - 1;
  print(`  handler     ${plan.artifacts.readThrough === true ? `read-through (migrating) mode: a Redis miss falls back to the files in ${plan.source.kind === 'files' ? printable(plan.source.dir) : '?'} (docs/runbook.md)${others > 0 ? `; the other ${others} source(s) are not read through: apply copies them` : ''}` : 'strict mode: sessions only in Redis'}`);
  print(`  plan        written to ${printable(planPath)}; run 'session-migrate apply --plan ${printable(planPath)}'`);
}

// ---------------------------------------------------------------- apply

export interface ApplyArgs {
  plan: string;
  dryRun: boolean;
  json: boolean;
  /** Worker threads for reading and sealing; undefined = automatic (by the plan's session count). */
  workers?: number;
  /** Where the key comes from; default: the provider recorded in the plan. */
  key?: KeyProvider;
  /** Retries of a failed Redis batch before apply stops (default 8). */
  retries?: number;
  /** First retry pause in ms, doubled each time up to 5 s (default 250). */
  retryDelayMs?: number;
  /** Replicas that must acknowledge each batch (WAIT); default: the replicas each master has now (INFO replication). */
  minReplicas?: number;
  /** WAIT timeout in ms (default 2000). */
  waitTimeoutMs?: number;
  /** TLS files given now, replacing the plan's (e.g. other paths on this host). */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
}

/** Default WAIT timeout of apply, ms. */
export const DEFAULT_WAIT_TIMEOUT_MS = 2000;

/** Below this many planned sessions, worker threads (about 2 s to start: each loads the TypeScript sources) cost more than they save. */
const WORKERS_FROM_SESSIONS = 100_000;

/** apply's result for one source of the plan. */
export interface ApplySourceResult {
  /** `#N files:...` or `#N redis:...` (no password). */
  source: string;
  /** False when Redis kept failing for an earlier source and this one was not started (re-run apply). */
  started: boolean;
  /** Copies not copied because another source's copy of the same session ID was written later. */
  superseded: number;
  sessions?: Awaited<ReturnType<typeof applySessions>>;
}

export interface ApplyResult {
  dryRun: boolean;
  artifacts: ArtifactResult[];
  /** Every source together. */
  sessions: Awaited<ReturnType<typeof applySessions>>;
  /** With several sources: each one's own result, and the session IDs found in more than one. */
  sources?: ApplySourceResult[];
  duplicates?: DuplicatesReport;
  nothingToDo: boolean;
  /** Wall time of the session copy, milliseconds (excludes process start, plan checks and artifacts). */
  copyMs: number;
  /** WAIT after each batch: replicas wanted per master (`host:port` or `*`), and the timeout. */
  confirm: { minReplicas: Record<string, number>; waitTimeoutMs: number };
}

/** Carries out a plan; refuses on drift. */
export async function applyCommand(args: ApplyArgs, print: Print): Promise<number> {
  const plan = readPlanFile(args.plan);
  const provider = args.key ?? providerFromPlan(plan.key, args.plan);
  const ring = await loadKeyRing(provider);
  let codec: EnvelopeCodec | undefined;
  try {
    codec = await EnvelopeCodec.fromRing(ring);
    return await applyWithCodec({ ...args, keyDescription: describeKeyProvider(provider) }, plan, codec, [ring.current, ...ring.previous], ring.lookupKey, print);
  } finally {
    wipeKeyRing(ring);
    codec?.wipe();
  }
}

async function applyWithCodec(args: ApplyArgs & { keyDescription?: string }, plan: Plan, codec: EnvelopeCodec, masterKeys: Buffer[], lookupKey: Buffer, print: Print): Promise<number> {
  const retries = args.retries ?? DEFAULT_RETRY.attempts;
  const retryDelayMs = args.retryDelayMs ?? DEFAULT_RETRY.baseDelayMs;
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) throw new UserFacingError('--retries must be a whole number from 0 to 100');
  if (!Number.isInteger(retryDelayMs) || retryDelayMs < 1 || retryDelayMs > 60_000) throw new UserFacingError('--retry-delay-ms must be a whole number from 1 to 60000');
  const minReplicasArg = args.minReplicas;
  if (minReplicasArg !== undefined && (!Number.isInteger(minReplicasArg) || minReplicasArg < 0 || minReplicasArg > 100)) throw new UserFacingError('--min-replicas must be a whole number from 0 to 100');
  const waitTimeoutMs = args.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  if (!Number.isInteger(waitTimeoutMs) || waitTimeoutMs < 1 || waitTimeoutMs > 600_000) throw new UserFacingError('--wait-timeout-ms must be a whole number from 1 to 600000');
  // keepReconnecting: a Redis restart or failover mid-run is retried (bounded by --retries), not fatal.
  const client = await openTarget({ recorded: plan.target }, args.tls ?? {}, { keepReconnecting: true, write: !args.dryRun, command: 'apply', prefix: plan.target.prefix });
  let sources: Source[] = [];
  try {
    sources = await openPlanSources(plan, args.plan, { maxSessionBytes: plan.limits.maxSessionBytes, ...(args.sourceTls !== undefined ? { tls: args.sourceTls } : {}) });
    checkSourcesAgainstTarget(sources, { ...client.description, prefix: plan.target.prefix });
    let state;
    try {
      state = { topology: client.topology, ...(client.topology === 'standalone' ? { runId: (await client.runId()) ?? 'unknown' } : {}), ...(client.topology === 'cluster' ? { nodeIds: await client.clusterNodeIds() } : {}) };
    } catch (err) {
      throw redisFailure(err, client, 'apply');
    }
    // Key and target once; every files source's directory (replaced since the plan?).
    const drift = plan.sources.flatMap((planned, i) => {
      const now = sources[i]!.describe();
      return detectDrift({ ...plan, source: planned }, {
        keyId: codec.keyId, lookupId: codec.lookupId, sourceIdentity: now.kind === 'files' ? { dev: now.dev, ino: now.ino } : undefined, target: state,
        ...(args.keyDescription !== undefined ? { keyDescription: args.keyDescription } : {}),
      }).filter((d) => i === 0 || d.what === 'source');
    });
    if (drift.length > 0) {
      throw new UserFacingError(`plan ${args.plan} no longer matches: ${drift.map((d) => d.message).join('; ')}; nothing was written; re-run plan`);
    }
    // WAIT after each batch: for as many replicas as each master has now, unless --min-replicas says.
    let minReplicas: Map<string, number>;
    try {
      minReplicas = minReplicasArg !== undefined ? new Map([['*', minReplicasArg]]) : await client.replicasPerMaster();
    } catch (err) {
      throw redisFailure(err, client, 'apply');
    }
    const confirm: ConfirmOptions = { minReplicas, waitTimeoutMs };
    // A plan from before key rings: the key matched by key ID, so its lookup ID is this ring's.
    if (plan.key.lookupId === undefined) plan.key.lookupId = codec.lookupId;
    let artifacts: ArtifactResult[];
    try {
      artifacts = applyArtifacts(plan, args.dryRun);
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      throw new UserFacingError(`cannot write the PHP artifacts to ${plan.artifacts.outDir}: ${describeFsError(err)}; nothing was written to Redis`);
    }
    const progress = args.json ? undefined : progressLine('apply', plan.summary.live + plan.summary.expired + plan.summary.empty + plan.summary.corrupt);
    const copyStart = performance.now();
    const workers = args.workers ?? (plan.summary.found >= WORKERS_FROM_SESSIONS ? Math.min(4, availableParallelism()) : 0);
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) throw new UserFacingError(`--workers must be a whole number from 0 to 64`);
    // A session ID in several sources: only the copy written last is copied (several-sources.ts).
    let resolution;
    try {
      resolution = await resolveDuplicates(sources, plan.php);
    } catch (err) {
      throw redisFailure(err, client, 'apply');
    }
    // One run of apply per source, in the plan's order; each is counted on its own.
    const perSource: ApplySourceResult[] = [];
    let handledBefore = 0;
    for (const [i, source] of sources.entries()) {
      const label = sourceRowLabel(plan.sources[i]!, i);
      if (perSource.some((r) => r.sessions?.aborted === true || r.sessions?.stopped !== undefined)) {
        // Redis kept failing for an earlier source: this one is not started (re-run apply).
        perSource.push({ source: label, started: false, superseded: 0 });
        continue;
      }
      const report = await applySessions({
        plan, source: withoutSuperseded(source, resolution.superseded[i]!), codec, target: args.dryRun ? undefined : client, confirm, dryRun: args.dryRun, workers, masterKeys, lookupKey,
        onProgress: (n) => progress?.update(handledBefore + n),
        retry: { ...DEFAULT_RETRY, attempts: retries, baseDelayMs: retryDelayMs },
        // One line per retry on stderr: a restart of Redis is visible, never silent.
        onRetry: (attempt, error) => process.stderr.write(`session-migrate: Redis at ${plan.target.url} failed (${printable(error)}); retry ${attempt} of ${retries}\n`),
      });
      const c = report.counts;
      handledBefore += c.migrated + c.alreadyPresent + c.newerInRedis + c.conflicts + c.failed + c.destroyed + c.expired + c.empty + c.corrupt;
      perSource.push({ source: label, started: true, superseded: resolution.superseded[i]!.size, sessions: report });
    }
    progress?.done();
    const sessions = sumApplyReports(perSource.flatMap((r) => (r.sessions !== undefined ? [r.sessions] : [])));
    const notStarted = perSource.filter((r) => !r.started).length;
    const c = sessions.counts;
    if (sessions.stopped !== undefined && c.migrated === 0) {
      // A permanent error before anything was written: exit 2 with what to fix.
      throw new UserFacingError(`apply stopped, nothing was written to Redis at ${plan.target.url}: ${sessions.stopped.message}${sessions.stopped.fix !== undefined ? ` (${sessions.stopped.fix})` : ''}`);
    }
    const incomplete = c.notDone > 0 || c.unconfirmed > 0 || c.missingAfterWrite > 0 || c.unverified > 0 || notStarted > 0;
    const nothingToDo = !args.dryRun && c.migrated === 0 && c.failed === 0 && c.conflicts === 0 && !incomplete && c.unstable === 0 && artifacts.every((a) => a.status === 'unchanged');
    const result: ApplyResult = {
      dryRun: args.dryRun, artifacts, sessions, nothingToDo, copyMs: Math.round(performance.now() - copyStart),
      confirm: { minReplicas: Object.fromEntries(minReplicas), waitTimeoutMs },
      ...(sources.length > 1 ? { sources: perSource, duplicates: resolution.report } : {}),
    };
    if (args.json) print(JSON.stringify(result, null, 2));
    else printApplySummary(result, plan.artifacts.outDir, print);
    // A session file this user cannot read is a session not copied: its user would be logged out.
    const unreadable = c.skipped.unreadable ?? 0;
    if (unreadable > 0 && !args.json) print(`  FAIL        ${unreadable} session file(s) could not be read (permissions?): not copied; run apply as the PHP user or root`);
    return c.failed > 0 || c.conflicts > 0 || incomplete || c.unstable > 0 || unreadable > 0 || sessions.stopped !== undefined ? 1 : 0;
  } finally {
    client.close();
    await closeSources(sources);
  }
}

function printApplySummary(r: ApplyResult, outDir: string, print: Print): void {
  const c = r.sessions.counts;
  const verb = r.dryRun ? 'would migrate' : 'migrated';
  print(`session-migrate apply${r.dryRun ? ' (dry run: nothing written)' : ''}`);
  for (const line of describeArtifactResults(r.artifacts, outDir)) print(`  artifact    ${line}`);
  if (r.sources !== undefined) {
    print(`  sources     ${r.sources.length}, each copied on its own:`);
    const row = (label: string, x: ApplySessionsReport['counts'] | undefined, superseded: number): { label: string; values: Array<number | string> } => ({
      label,
      values: x === undefined ? ['not started', '', '', '', '', '', '', ''] : [x.migrated, x.alreadyPresent, x.newerInRedis, x.destroyed, x.conflicts, x.failed + x.notDone + x.unstable, x.expired + x.empty + x.corrupt, superseded],
    });
    for (const line of sourcesTable([verb, 'present', 'newer', 'destroyed', 'conflicts', 'failed', 'not copied', 'superseded'], [
      ...r.sources.map((s) => row(s.source, s.sessions?.counts, s.superseded)),
      row('total', c, r.sources.reduce((a, s) => a + s.superseded, 0)),
    ])) print(line);
    const notStarted = r.sources.filter((s) => !s.started);
    if (notStarted.length > 0) print(`  NOT DONE    ${notStarted.map((s) => printable(s.source)).join(', ')}: not started, Redis kept failing for an earlier source; run apply again`);
    const d = r.duplicates;
    if (d !== undefined && d.ids > 0) print(`  duplicates  ${d.ids} session ID(s) in more than one source: ${d.identical} the same, ${d.newerWins} copied from the source written last, ${d.ties} written within 1 s (copied from the source given first)`);
  }
  print(`  sessions    ${verb} ${c.migrated} (${formatBytes(c.migratedBytes)}), already present ${c.alreadyPresent}, newer in Redis ${c.newerInRedis}, destroyed ${c.destroyed}, conflicts ${c.conflicts}, failed ${c.failed}`);
  if (c.retries > 0) print(`  retries     ${c.retries} Redis retr${c.retries === 1 ? 'y' : 'ies'} after transient failures (connection, failover, resharding)`);
  const wanted = Object.entries(r.confirm.minReplicas).filter(([, n]) => n > 0);
  if (!r.dryRun && wanted.length > 0) print(`  replicas    WAIT after each batch for ${wanted.map(([node, n]) => `${n} replica(s) of ${node === '*' ? 'each master' : node}`).join(', ')} (timeout ${r.confirm.waitTimeoutMs} ms)`);
  if (r.sessions.stopped !== undefined) print(`  STOPPED     ${printable(r.sessions.stopped.message)}${r.sessions.stopped.fix !== undefined ? `: ${printable(r.sessions.stopped.fix)}` : ''}; fix it and run apply again`);
  if (c.unconfirmed > 0) {
    print(`  UNCONFIRMED ${c.unconfirmed} session(s) were written in batches fewer replicas than asked acknowledged in time (${r.sessions.replicaShortfalls.slice(0, 3).map((x) => `${x.node}: ${x.acked} of ${x.wanted}`).join(', ')}): a failover could lose them; run apply again (it re-checks them), or adjust --min-replicas / --wait-timeout-ms`);
  }
  if (c.missingAfterWrite > 0) print(`  MISSING     ${c.missingAfterWrite} session(s) written or found by apply are not in Redis any more (lost, e.g. in a failover): run apply again to write them`);
  for (const k of r.sessions.missing.slice(0, 20)) print(`  MISSING     ${k}`);
  if (c.unverified > 0) print(`  UNVERIFIED  ${c.unverified} session(s) could not be read back (Redis errors): run apply again`);
  if (c.noTtl > 0) print(`  NOTE        ${c.noTtl} source key(s) had no TTL: given gc_maxlifetime`);
  if (c.notDone > 0 || r.sessions.aborted) print(`  NOT DONE    ${c.notDone} session(s) not written: Redis kept failing after the retries; run apply again to finish (it never overwrites)`);
  if (c.unstable > 0) print(`  UNSTABLE    ${c.unstable} file(s) kept changing while read and were not copied; run apply again`);
  for (const u of r.sessions.unstable) print(`  UNSTABLE    ${printable(u)}`);
  print(`  not copied  ${c.expired} expired, ${c.empty} empty, ${c.corrupt} that PHP would reject; skipped files: ${formatCounts(c.skipped)}`);
  for (const p of r.sessions.conflicts) print(`  CONFLICT    ${p.key} (${printable(p.file)}): ${p.reason}`);
  for (const p of r.sessions.failures) print(`  FAILED      ${p.key} (${printable(p.file)}): ${printable(p.reason)}`);
  if (r.nothingToDo) print('  nothing to do: the plan was already applied; nothing changed');
  else if (!r.dryRun && c.failed === 0 && c.conflicts === 0 && c.notDone === 0 && c.unstable === 0 && c.unconfirmed === 0 && c.missingAfterWrite === 0 && c.unverified === 0 && r.sessions.stopped === undefined) {
    print('  next        deploy the artifacts to PHP, then run session-migrate verify');
  }
}

// ---------------------------------------------------------------- verify

export interface VerifyArgs {
  /** A plan whose target, key file, prefix, gc_maxlifetime and serialize_handler are the defaults. */
  plan?: string;
  target?: string;
  /** Where the key comes from; default: the plan's provider. */
  key?: KeyProvider;
  prefix?: string;
  /** Sources to compare byte for byte (`--source`, repeatable): files:DIR or redis:URL. */
  source?: string | string[];
  /** Fail (exit 1) when any value is sealed under another key ID (after a rotation). */
  requireKeyId?: string;
  gcMaxlifetime?: number;
  serializeHandler?: SerializeHandler;
  /** Fail while plaintext keys remain under this prefix on the target server (e.g. PHPREDIS_SESSION:). */
  plaintextPrefix?: string;
  /**
   * With --plan and no --source: check that every live session of every source of the plan is present
   * (default true; false after the switch to strict mode, when logouts delete keys without a tombstone).
   */
  presence?: boolean;
  /** Classify only the keys under the prefix (a database shared with other applications); default: every key of the database. */
  prefixOnly?: boolean;
  /** TLS files of the target (replace the plan's) and of a Redis --source. */
  tls?: TlsFiles;
  sourceTls?: TlsFiles;
  json: boolean;
}

/**
 * Verifies the target; exit 0 when every check holds, 1 otherwise. Options given explicitly win over
 * the plan's; without a plan, target and key file are required.
 */
export async function verifyCommand(args: VerifyArgs, print: Print): Promise<number> {
  const plan = args.plan !== undefined ? readPlanFile(args.plan) : undefined;
  const target = args.target ?? plan?.target.url;
  const provider = args.key ?? (plan !== undefined && args.plan !== undefined ? providerFromPlan(plan.key, args.plan) : undefined);
  if (target === undefined || provider === undefined) {
    throw new UserFacingError('verify needs --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)');
  }
  if (args.requireKeyId !== undefined && !/^[0-9a-f]{16}$/.test(args.requireKeyId)) {
    throw new UserFacingError('--require-key-id must be a key ID: 16 lowercase hex characters (see keys id)');
  }
  const prefix = checkPrefix(args.prefix ?? plan?.target.prefix ?? DEFAULT_PREFIX);
  const gcMaxlifetime = checkGcMaxlifetime(args.gcMaxlifetime ?? plan?.php.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME);
  const serializeHandler = args.serializeHandler ?? plan?.php.serializeHandler ?? 'php';
  if (plan !== undefined) {
    // Options that contradict the plan are allowed (e.g. another target), but never silently.
    const differs = [
      args.gcMaxlifetime !== undefined && args.gcMaxlifetime !== plan.php.gcMaxlifetime ? `--gc-maxlifetime ${args.gcMaxlifetime} (plan: ${plan.php.gcMaxlifetime})` : '',
      args.serializeHandler !== undefined && args.serializeHandler !== plan.php.serializeHandler ? `--serialize-handler ${args.serializeHandler} (plan: ${plan.php.serializeHandler})` : '',
      args.prefix !== undefined && args.prefix !== plan.target.prefix ? `--prefix (plan: ${printable(plan.target.prefix)})` : '',
      args.target !== undefined && args.target !== plan.target.url ? `--target (plan: ${plan.target.url})` : '',
    ].filter((d) => d !== '');
    if (differs.length > 0) process.stderr.write(`session-migrate: note: verify overrides the plan: ${differs.join(', ')}\n`);
  }
  const { codec } = await codecFromProvider(provider);
  if (args.plaintextPrefix !== undefined) checkPrefix(args.plaintextPrefix, false);
  const maxSessionBytes = plan?.limits.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  const scope = args.prefixOnly === true ? 'prefix' as const : 'database' as const;
  const openOptions = { command: scope === 'prefix' ? 'verify-prefix-only' as const : 'verify' as const, prefix };
  // The target given now (its URL and TLS options), or the plan's (TLS options given now replace the plan's files).
  const fromPlan = args.target === undefined && plan !== undefined;
  if (!fromPlan) specFromUrl(target, args.tls ?? {}, 'target'); // bad URL or TLS options: exit 2 before anything is opened
  const specs = args.source === undefined ? [] : Array.isArray(args.source) ? args.source : [args.source];
  const sourceOptions = { maxSessionBytes, ...(args.sourceTls !== undefined ? { tls: args.sourceTls } : {}) };
  // --source (repeatable): compared byte for byte, each on its own.
  const given = specs.length > 0 ? await openSources(specs, sourceOptions) : [];
  let client: RedisConnection;
  try {
    client = await openTarget(fromPlan ? { recorded: plan!.target } : { url: target }, args.tls ?? {}, openOptions);
  } catch (err) {
    await closeSources(given);
    throw err;
  }
  // With --plan alone, every live session of every source of the plan must be present; and a plan's
  // plaintext Redis sources are checked too (their prefixes must be empty in the end).
  const wantPresence = given.length === 0 && plan !== undefined && args.presence !== false;
  const planHasRedis = plan?.sources.some((d) => d.kind === 'redis') === true;
  let planSources: Source[] = [];
  let report: VerifyReport;
  let memoryNotes: string[] = [];
  try {
    checkSourcesAgainstTarget(given, { ...client.description, prefix });
    if (plan !== undefined && given.length === 0 && (wantPresence || planHasRedis)) planSources = await openPlanSources(plan, args.plan!, sourceOptions);
    const inUse = given.length > 0 ? given : planSources;
    // Every plaintext Redis source must be empty in the end: each key left under its prefix fails.
    const plaintext: PlaintextCheck[] = [];
    const addPlaintext = (p: PlaintextCheck): void => {
      if (!plaintext.some((q) => q.prefix === p.prefix && sameRedisData(q.client.description, p.client.description))) plaintext.push(p);
    };
    if (args.plaintextPrefix !== undefined) addPlaintext({ client, prefix: args.plaintextPrefix, url: client.url });
    for (const s of inUse) if (s instanceof RedisSource) addPlaintext({ client: s.connection, prefix: s.describe().prefix, url: s.describe().url });
    const checks: SourceCheck[] = given.length > 0
      ? given.map((source, i) => ({ source, check: 'compare' as const, label: `#${i + 1} ${sourceLabel(source.describe())}` }))
      : wantPresence ? planSources.map((source, i) => ({ source, check: 'presence' as const, label: sourceRowLabel(plan!.sources[i]!, i) })) : [];
    report = await verifyTarget({ client, codec, prefix, scope, maxValueBytes: Math.max(maxSessionBytes, DEFAULT_MAX_SESSION_BYTES),
      sources: checks, gcMaxlifetime, serializeHandler, ...(plaintext.length > 0 ? { plaintext } : {}),
      ...(args.requireKeyId !== undefined ? { requireKeyId: args.requireKeyId } : {}),
      ...(plan !== undefined ? { expectedSessions: plan.summary.live } : {}),
    });
    // Memory: an eviction policy that can drop sessions, or too little headroom (INFO memory, never CONFIG).
    memoryNotes = memoryWarnings(await readMemory(client));
  } catch (err) {
    throw redisFailure(err, client, 'verify');
  } finally {
    client.close();
    codec.wipe();
    await closeSources(given);
    await closeSources(planSources);
  }
  for (const w of memoryNotes) warn(`warning: ${w}`);
  const stale = report.staleLocks;
  if (stale !== undefined && stale.count > 0) {
    warn(`warning: ${stale.count} phpredis session lock(s) without a TTL (stale-lock: ${stale.keys.slice(0, 5).map(printable).join(', ')}${stale.count > 5 ? ', ...' : ''}): one never expires if the request holding it died, and blocks its session until deleted; set redis.session.lock_expire (or a max_execution_time above 0) on the PHP hosts, then DEL the locks no request holds`);
  }
  if (args.json) {
    print(JSON.stringify(report, null, 2));
  } else {
    print(`session-migrate verify: ${report.ok ? 'OK' : 'FAILED'}`);
    const nodes = report.nodes ?? [];
    print(`  target      ${report.topology === 'cluster' ? `Redis Cluster: every master scanned (${nodes.length}: ${nodes.join(', ')})` : report.topology === 'sentinel' ? `Sentinel master now at ${nodes.join(', ')}` : nodes.join(', ')}`);
    print(`  scanned     ${report.keysTotal ?? report.keysScanned} key(s): ${report.scope === 'prefix' ? `only those under the prefix (--prefix-only)` : 'every key of the database'}`);
    print(`  keys        ${report.keysScanned} under prefix "${printable(prefix)}", ${report.keysValid} valid; by key ID: ${formatCounts(report.keyIds)}`);
    if (report.classes !== undefined) print(`  classes     ${formatCounts(report.classes)}`);
    if ((report.classes?.other ?? 0) > 0) {
      print(`  other       ${report.classes!.other} key(s) of other applications, not sessions (${formatCounts(report.otherTypes ?? {})}${(report.largeValues ?? 0) > 0 ? `; ${report.largeValues} string(s) larger than ${formatBytes(Math.max(maxSessionBytes, DEFAULT_MAX_SESSION_BYTES))} not read` : ''}): not a failure`);
    }
    if ((report.classes?.['plaintext-session'] ?? 0) > 0) {
      print(`  PLAINTEXT   ${report.classes!['plaintext-session']} plaintext session(s) that PHP would load (${formatCounts(report.plaintextFormats ?? {})}): each fails until deleted (purge them, or DEL them once no application uses them)`);
    }
    if ((report.classes?.['empty-session'] ?? 0) > 0) print(`  NOTE        ${report.classes!['empty-session']} empty phpredis session key(s) (no data; they expire with their TTL)`);
    if ((report.classes?.lock ?? 0) + (report.classes?.['stale-lock'] ?? 0) > 0) print(`  locks       ${report.classes!.lock} phpredis session lock(s) with a TTL, ${report.classes!['stale-lock']} without one (stale-lock: see the warning)`);
    const pr = report.presence;
    const several = report.sources !== undefined;
    if (pr !== undefined) {
      print(`  presence    ${pr.checked} live session(s) of the plan's ${several ? `${report.sources!.length} sources` : 'source'} checked: ${pr.present} present, ${pr.destroyed} logged out (tombstone), ${pr.missing} missing${pr.missing > 0 ? ' (run apply again)' : ''}${(pr.superseded ?? 0) > 0 ? `, ${pr.superseded} superseded (another source's copy is the one in Redis)` : ''}`);
    }
    if (several) {
      const rows = report.sources!.map((e) => ({
        label: e.source,
        values: e.presence !== undefined
          ? [e.presence.checked, e.presence.present + e.presence.destroyed, e.presence.missing, e.presence.expired + e.presence.empty + e.presence.corrupt, e.presence.superseded ?? 0]
          : [e.compare!.checked, e.compare!.matching + (e.compare!.newer ?? 0) + (e.compare!.destroyed ?? 0), e.compare!.checked - e.compare!.matching - (e.compare!.newer ?? 0) - (e.compare!.destroyed ?? 0), e.compare!.expired + e.compare!.empty + e.compare!.corrupt, e.compare!.superseded ?? 0],
      }));
      for (const line of sourcesTable(['checked', pr !== undefined ? 'present' : 'in Redis', pr !== undefined ? 'missing' : 'failing', 'not live', 'superseded'], rows)) print(line);
      const d = report.duplicates;
      if (d !== undefined && d.ids > 0) print(`  duplicates  ${d.ids} session ID(s) in more than one source: checked in the source whose copy was written last (${d.ties} written within 1 s: the source given first)`);
    }
    const src = report.source;
    if (src !== undefined) {
      print(`  source      ${src.checked} live session(s) checked, ${src.matching} identical in Redis${(src.newer ?? 0) > 0 ? `, ${src.newer} newer in Redis (updated through the handler)` : ''}`);
      if (src.expired + src.corrupt > 0) {
        print(`  NOTE        not checked: ${src.expired} past gc_maxlifetime (${gcMaxlifetime} s), ${src.empty} empty, ${src.corrupt} not loadable as ${serializeHandler}; if these were migrated, --gc-maxlifetime or --serialize-handler differ from the plan (use --plan)`);
      }
    }
    if ((report.tombstones ?? 0) > 0) print(`  tombstones  ${report.tombstones} destroyed session(s) (tombstones, valid)`);
    if (report.source?.destroyed !== undefined && report.source.destroyed > 0) print(`  destroyed   ${report.source.destroyed} source session(s) were logged out through the handler since (tombstone): not expected in Redis`);
    for (const p of report.plaintextSources ?? (report.plaintext !== undefined ? [report.plaintext] : [])) {
      print(`  plaintext   ${p.remaining} plaintext session key(s) left under "${printable(p.prefix)}" at ${p.url}${p.remaining > 0 ? ' (FAIL until purged)' : ''}${p.otherKeys > 0 ? `; ${p.otherKeys} other key(s) there are not sessions (ignored)` : ''}`);
    }
    if (!report.ok) print(`  failures    ${formatCounts(report.failureCounts)}`);
    for (const f of report.failures) print(`  FAIL        ${printable(f.key)}${f.file !== undefined ? ` (${printable(f.file)})` : ''}: ${f.reason}`);
  }
  return report.ok ? 0 : 1;
}

export { DEFAULT_ARTIFACTS_DIR, DEFAULT_PLAN_FILE, DEFAULT_PREFIX, DEFAULT_MAX_SESSION_BYTES };

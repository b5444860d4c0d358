/**
 * The PHP artifacts a plan asks for: rendered by @session-migrate/generate from the plan's target,
 * written by apply into the plan's artifacts directory.
 */
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { UserFacingError, checkAclUserName, describeFsError, printable } from '@session-migrate/common';
import { handlerAclRule } from '@session-migrate/redis/acl';
import { join } from 'node:path';
import {
  ARTIFACT_MODE,
  AUTOLOAD_FILE,
  GenerateOptionsError,
  SOURCE_DIR,
  refuseLinkedArtifactDirectories,
  renderArtifacts,
  writeArtifacts,
  type Artifact,
  type LockingOptions,
  type RedisTargetOptions,
} from '@session-migrate/generate';
import { sameRedisData, sourceLabel, type SourceDescription } from '@session-migrate/sources';
import type { ConnectionDescription } from '@session-migrate/redis';
import type { Plan } from './plan.ts';

/** What apply did (or, in a dry run, would do) with one artifact. */
export interface ArtifactResult {
  /** Absolute path. */
  path: string;
  status: 'written' | 'unchanged' | 'would-write';
}

/** Choices `generate php` may make over the plan's (undefined: as the plan says). */
export interface ArtifactOverrides {
  /** Read-through or strict mode. */
  mode?: 'read-through' | 'strict';
  /** Session locking options, merged over the plan's. */
  locking?: LockingOptions;
  /** Persistent connections. */
  persistent?: boolean;
  /** The Redis ACL user the handler connects as (generate php --handler-user), over the plan's. */
  handlerUser?: string;
}

/**
 * The key prefixes of a read-through plan's Redis sources (plaintext phpredis keys), which the
 * generated handler reads over its own connection when a session has no live legacy file: possible
 * only for a source in the same Redis data as the target (sameRedisData: the same server and
 * database, or the same cluster; the in-place case). A Redis source elsewhere cannot be read through
 * and cannot wait either (its sessions would be lost between the handler switch and apply).
 * @throws UserFacingError naming the first Redis source on another server, and the two plans to make.
 */
export function readThroughRedisPrefixes(sources: readonly SourceDescription[], target: ConnectionDescription): string[] {
  const prefixes: string[] = [];
  for (const d of sources) {
    if (d.kind !== 'redis') continue;
    if (!sameRedisData(d, target))
      throw new UserFacingError(
        `--read-through: the handler reads old phpredis keys only in the target's own Redis database, and ${sourceLabel(d)} is elsewhere${replicaNote(d, target)}; make one plan for that Redis source without --read-through and apply it before the handler switch, and one plan for the files source with --read-through`,
      );
    if (!prefixes.includes(d.prefix)) prefixes.push(d.prefix);
  }
  return prefixes;
}

/**
 * Why a Redis source that is a replica, in the target's database, is not the target's data, for
 * readThroughRedisPrefixes' refusal: a replica of the target's own master is the same data
 * (sameRedisData: the same replication ID), so this one is not in sync with it, or follows another
 * master. '' for a source that is no replica or is in another database (the refusal says enough).
 */
function replicaNote(d: SourceDescription & { kind: 'redis' }, target: ConnectionDescription): string {
  if (d.replicaOf === undefined || d.db !== target.db) return '';
  return ` (a replica of ${d.replicaOf} whose replication ID is not the target's: not in sync with the target's master (INFO replication master_link_status), or the replica of another master; if it replicates the target, re-run plan once it is in sync, or give the target's own address with the source's prefix as the source)`;
}

/**
 * Renders the bootstrap, the ini fragment and the handler's sources for a plan (pure: no file is
 * touched). With `plan.artifacts.readThrough` (plan --read-through), or `mode` given explicitly, the
 * handler runs in read-through (migrating) mode over the plan's source directory (docs/runbook.md).
 * Locking, persistence and the handler's ACL user come from `plan.artifacts.locking` /
 * `plan.artifacts.persistent` / `plan.artifacts.handlerUser` (handlerUserFor), with `overrides`
 * (generate php options) over them.
 */
export function artifactsForPlan(
  plan: Pick<Plan, 'target' | 'artifacts' | 'key'> & { source?: Plan['source']; sources?: readonly SourceDescription[] },
  overrides: ArtifactOverrides | 'read-through' | 'strict' = {},
): Artifact[] {
  const o: ArtifactOverrides = typeof overrides === 'string' ? { mode: overrides } : overrides;
  const readThrough = o.mode !== undefined ? o.mode === 'read-through' : plan.artifacts.readThrough === true;
  if (readThrough && plan.source?.kind !== 'files')
    throw new UserFacingError("read-through mode needs the plan's source directory (a files: source)");
  const locking = { ...(plan.artifacts.locking ?? {}), ...(o.locking ?? {}) };
  const persistent = o.persistent ?? plan.artifacts.persistent;
  const { user } = handlerUserFor(plan, o);
  // The target's user is the migration's; the handler's is handlerUserFor's (the same when none is chosen).
  const redis = redisForArtifacts(plan.target);
  delete redis.username;
  if (user !== undefined) redis.username = user;
  try {
    return renderArtifacts({
      ...(readThrough && plan.source?.kind === 'files'
        ? {
            readThrough: {
              savePath: `${plan.source.depth};${plan.source.dir}`,
              redisPrefixes: readThroughRedisPrefixes(plan.sources ?? [], plan.target),
            },
          }
        : {}),
      installDir: plan.artifacts.installDir,
      redis: { ...redis, ...(persistent !== undefined ? { persistent } : {}) },
      ...(Object.keys(locking).length > 0 ? { locking } : {}),
      // The lookup ID survives key rotation; a plan from before key rings has none (apply fills it in).
      expectedLookupIds: plan.key.lookupId !== undefined ? [plan.key.lookupId] : [],
    });
  } catch (err) {
    if (err instanceof GenerateOptionsError) throw new UserFacingError(`cannot generate the PHP artifacts: ${err.message}`);
    throw err;
  }
}

/** The Redis ACL user the generated handler connects as, and the rule that user needs. */
export interface HandlerUser {
  /** The user name; undefined: Redis's `default` user (the target has no ACL user). */
  user: string | undefined;
  /** True when it is a user of its own (--handler-user), not the one plan and apply connect as. */
  own: boolean;
  /** The minimal ACL rule of the handler on the plan's prefix, topology and database (handlerAclRule). */
  rule: string;
}

/**
 * The ACL user the generated PHP handler connects as: generate php's --handler-user, else plan's
 * (`plan.artifacts.handlerUser`), else the target's user, the migration's (whose rule reaches far
 * beyond the handler's: SCAN, INFO, apply's scripts; docs/redis.md "Minimal ACL rules").
 */
export function handlerUserFor(
  plan: Pick<Plan, 'target' | 'artifacts'> & { sources?: readonly SourceDescription[] },
  overrides: ArtifactOverrides = {},
): HandlerUser {
  const chosen = overrides.handlerUser ?? plan.artifacts.handlerUser;
  const readThrough = overrides.mode !== undefined ? overrides.mode === 'read-through' : plan.artifacts.readThrough === true;
  // A read-through handler also reads the old phpredis keys of the target's Redis (never writes them).
  const legacy = readThrough
    ? (plan.sources ?? []).flatMap((d) => (d.kind === 'redis' && sameRedisData(d, plan.target) ? [d.prefix] : []))
    : [];
  return {
    user: chosen ?? plan.target.username,
    own: chosen !== undefined,
    rule: handlerAclRule(plan.target.prefix, plan.target.topology, plan.target.db, [...new Set(legacy)]),
  };
}

/**
 * One line (without a label) on the user the handler connects as, for plan's and generate php's
 * output: with its own user, that user, its rule and where its password goes; without, a note that
 * it connects as the migration's user and how to give it its own. Names no password.
 */
export function describeHandlerUser(h: HandlerUser): string {
  if (h.own)
    return `the PHP handler connects as ACL user "${printable(h.user ?? '')}" (rule: ${h.rule}); its password in SESSION_MIGRATE_REDIS_PASSWORD on the PHP hosts`;
  const who = h.user !== undefined ? `the migration's ACL user "${printable(h.user)}"` : "Redis's default user, as the migration does";
  return `note: the PHP handler connects as ${who}; give it a user of its own with --handler-user NAME (rule: ${h.rule}; docs/redis.md), its password in SESSION_MIGRATE_REDIS_PASSWORD on the PHP hosts`;
}

/**
 * What the PHP bootstrap needs of the plan's target (the contract with @session-migrate/generate's
 * RedisTargetOptions): topology, the node (or the master at plan time), database, ACL user, prefix,
 * TLS files (present means TLS on; absolute paths, never contents), cluster seeds (the node given
 * first, then the masters plan saw), sentinels and master name. Passwords come from the environment
 * on the PHP host (SESSION_MIGRATE_REDIS_PASSWORD, SESSION_MIGRATE_SENTINEL_PASSWORD, and the sentinels'
 * ACL user from SESSION_MIGRATE_SENTINEL_USERNAME).
 */
export function redisForArtifacts(t: Plan['target']): RedisTargetOptions {
  const seeds =
    t.topology === 'cluster'
      ? [{ host: t.host, port: t.port }, ...(t.nodes ?? [])].filter(
          (n, i, all) => all.findIndex((m) => m.host === n.host && m.port === n.port) === i,
        )
      : undefined;
  return {
    topology: t.topology,
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username !== undefined ? { username: t.username } : {}),
    prefix: t.prefix,
    ...(t.tls
      ? {
          tls: {
            ...(t.tlsFiles?.caFile !== undefined ? { caFile: t.tlsFiles.caFile } : {}),
            ...(t.tlsFiles?.certFile !== undefined ? { certFile: t.tlsFiles.certFile } : {}),
            ...(t.tlsFiles?.keyFile !== undefined ? { keyFile: t.tlsFiles.keyFile } : {}),
            ...(t.tlsFiles?.serverName !== undefined ? { serverName: t.tlsFiles.serverName } : {}),
          },
        }
      : {}),
    ...(seeds !== undefined ? { seeds } : {}),
    ...(t.topology === 'sentinel' ? { sentinels: t.sentinels ?? [], masterName: t.masterName ?? '' } : {}),
  };
}

/**
 * Every generated file says so (the copies of php/ too, in their first comment); a file without that
 * mark is someone else's and is never replaced.
 */
const GENERATED_MARK = 'Generated by session-migrate';

/**
 * Refuses a file of an artifact's name that is not a regular file or not generated by
 * session-migrate (the linked or non-directory directories on the way are refused by
 * writeArtifacts's own check, refuseLinkedArtifactDirectories, called before this one).
 * @throws UserFacingError (one line) naming the path.
 */
function refuseToReplaceForeignFile(path: string): void {
  let text: string;
  try {
    if (!lstatSync(path).isFile()) throw new UserFacingError(`${path} exists and is not a regular file; refusing to replace it`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    return; // not there yet
  }
  if (!text.includes(GENERATED_MARK)) {
    throw new UserFacingError(
      `${path} exists and was not generated by session-migrate; refusing to replace it (move it away or choose another --artifacts-dir)`,
    );
  }
}

function sameOnDisk(path: string, a: Artifact): boolean {
  try {
    return (statSync(path).mode & 0o777) === a.mode && readFileSync(path, 'utf8') === a.contents;
  } catch {
    return false;
  }
}

/**
 * The file in a plan's artifacts directory where `generate php` records the choices it made over the
 * plan's (its mode, and --lock-* / --persistent / --handler-user when given). apply run again later (to finish a
 * source, or after the switch to strict mode) renders the artifacts with the same choices, so it
 * never undoes generate php: e.g. takes PHP back from strict to read-through, or turns persistent
 * connections on again.
 */
export const GENERATE_CHOICES_FILE = '.session-migrate-generate.json';

/** generate php's recorded choices in words: `strict mode, persistent connections off, locking retries=5`. */
export function describeChoices(c: ArtifactOverrides): string {
  const parts = [c.mode !== undefined ? `${c.mode} mode` : "the plan's mode"];
  if (c.persistent !== undefined) parts.push(`persistent connections ${c.persistent ? 'on' : 'off'}`);
  if (c.handlerUser !== undefined) parts.push(`handler user "${printable(c.handlerUser)}"`);
  if (c.locking !== undefined)
    parts.push(
      `locking ${Object.entries(c.locking)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ')}`,
    );
  return parts.join(', ');
}

/** generate php's choices as the artifact that records them (JSON; it carries the generated mark). */
function choicesArtifact(choices: ArtifactOverrides): Artifact {
  const record = { generated: `${GENERATED_MARK} generate php: its choices over the plan's; apply keeps them`, ...choices };
  return { path: GENERATE_CHOICES_FILE, contents: `${JSON.stringify(record, null, 2)}\n`, mode: ARTIFACT_MODE };
}

/**
 * The choices `generate php` recorded in a plan's artifacts directory (GENERATE_CHOICES_FILE), or
 * undefined when it never ran there.
 * @throws UserFacingError when the file is not a regular file or not what generate php writes
 *   (nothing is written then; generate php writes it again)
 */
export function readGenerateChoices(dir: string): ArtifactOverrides | undefined {
  const path = join(dir, GENERATE_CHOICES_FILE);
  let text: string;
  try {
    if (!lstatSync(path).isFile()) throw new UserFacingError(`${path} is not a regular file; remove it, then run generate php --plan PLAN`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserFacingError(`cannot read ${path}: ${describeFsError(err)}`);
  }
  const bad = (): UserFacingError =>
    new UserFacingError(`${path} is not what generate php writes; remove it, then run generate php --plan PLAN with the options you want`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad();
  }
  if (typeof parsed !== 'object' || parsed === null) throw bad();
  const { mode, locking, persistent, handlerUser } = parsed as Record<string, unknown>;
  if (mode !== undefined && mode !== 'read-through' && mode !== 'strict') throw bad();
  if (locking !== undefined && (typeof locking !== 'object' || locking === null || Array.isArray(locking))) throw bad();
  if (persistent !== undefined && typeof persistent !== 'boolean') throw bad();
  if (handlerUser !== undefined) {
    try {
      checkAclUserName(typeof handlerUser === 'string' ? handlerUser : '', 'handlerUser');
    } catch {
      throw bad();
    }
  }
  return {
    ...(mode !== undefined ? { mode } : {}),
    ...(locking !== undefined ? { locking: locking as LockingOptions } : {}),
    ...(persistent !== undefined ? { persistent } : {}),
    ...(typeof handlerUser === 'string' ? { handlerUser } : {}),
  };
}

/**
 * Writes a plan's artifacts (atomically, only those that differ), or with dryRun reports which would
 * be written. With `record` (generate php), the overrides are also recorded in
 * GENERATE_CHOICES_FILE, for apply to keep them (readGenerateChoices).
 */
export function applyArtifacts(
  plan: Pick<Plan, 'target' | 'artifacts' | 'key'> & { source?: Plan['source'] },
  dryRun: boolean,
  overrides: ArtifactOverrides | 'read-through' | 'strict' = {},
  record = false,
): ArtifactResult[] {
  const dir = plan.artifacts.outDir;
  const artifacts = artifactsForPlan(plan, overrides);
  if (record) artifacts.push(choicesArtifact(typeof overrides === 'string' ? { mode: overrides } : overrides));
  // Everything in the way is refused before anything is written, in a dry run too.
  refuseLinkedArtifactDirectories(dir, artifacts);
  for (const a of artifacts) refuseToReplaceForeignFile(join(dir, a.path));
  if (dryRun) {
    return artifacts.map((a) => {
      const path = join(dir, a.path);
      return { path, status: sameOnDisk(path, a) ? 'unchanged' : 'would-write' };
    });
  }
  const result = writeArtifacts(dir, artifacts);
  return artifacts.map((a) => ({ path: join(dir, a.path), status: result.changed.includes(a.path) ? 'written' : 'unchanged' }));
}

/**
 * One line per generated file (bootstrap, ini fragment) and one for the copied sources
 * (autoload.php and src/), for printing: "PATH: STATUS" or "DIR/{autoload.php,src/} (N files): STATUS, ...".
 */
export function describeArtifactResults(results: readonly ArtifactResult[], outDir: string): string[] {
  const isSource = (path: string): boolean => {
    const relative = path.startsWith(`${outDir}/`) ? path.slice(outDir.length + 1) : path;
    return relative === AUTOLOAD_FILE || relative.startsWith(`${SOURCE_DIR}/`);
  };
  const lines = results.filter((r) => !isSource(r.path)).map((r) => `${r.path}: ${r.status}`);
  const sources = results.filter((r) => isSource(r.path));
  if (sources.length > 0) {
    const counts = new Map<string, number>();
    for (const r of sources) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    lines.push(
      `${join(outDir, AUTOLOAD_FILE)} and ${join(outDir, SOURCE_DIR)}/ (${sources.length} files): ${[...counts].map(([status, n]) => `${n} ${status}`).join(', ')}`,
    );
  }
  return lines;
}

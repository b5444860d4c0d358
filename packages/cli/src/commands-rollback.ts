/**
 * `session-migrate rollback`: wires packages/migrate/src/rollback.ts to the CLI. Exit 0 when done,
 * 1 when some session failed, 2 for usage, input or connection errors.
 */
import { resolve } from 'node:path';
import { DEFAULT_GC_MAXLIFETIME, UserFacingError, printable } from '@session-migrate/common';
import { DEFAULT_PREFIX, type KeyProvider } from '@session-migrate/envelope';
import { readPlanFile, rollbackRemoveKeys, rollbackToFiles, rollbackToFilesMany, type Plan, type PlanSource, type RollbackToFilesReport } from '@session-migrate/migrate';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { parseFilesSavePath } from '@session-migrate/php-ini';
import { openSource, sourceLabel } from '@session-migrate/sources';
import { specFromUrl, type RedisConnection, type TlsFiles } from '@session-migrate/redis';
import { sourceRowLabel, sourcesTable } from './sources-options.ts';
import { openTarget } from './redis-options.ts';
import { checkPrefix, type Print } from './commands.ts';
import { codecFromProvider, providerFromPlan } from './key-options.ts';

export interface RollbackArgs {
  plan?: string;
  target?: string;
  /** Where the key comes from; default: the plan's provider. */
  key?: KeyProvider;
  prefix?: string;
  gcMaxlifetime?: number;
  /** `files:SAVE_PATH` to write the sessions back to (layout and mode from the save_path). */
  to?: string;
  /** `files:DIR` whose `sess_<id>` names give the session IDs (default: the --to directory). */
  idsFrom?: string;
  /**
   * Write back to every files source of the plan, each to its own save_path with the IDs it lists
   * (a plan with several sources); Redis sources are not written back.
   */
  toSources?: boolean;
  removeKeys: boolean;
  dryRun: boolean;
  /** TLS files of the target (replace the plan's). */
  tls?: TlsFiles;
  json: boolean;
}

export const WARNING_TO_FILES =
  'WARNING: rollback to files writes session contents to disk in PLAINTEXT again (as before the migration). ' +
  'Only sessions whose IDs are listed (the sess_<id> files of --ids-from, default --to) can be written back: ' +
  'the Redis key names are a keyed hash and do not reveal the ID; sessions created only in Redis are lost for PHP on files (those users log in again).';
export const WARNING_REMOVE_KEYS =
  'WARNING: --remove-keys deletes the migrated sessions from Redis. Users whose session exists only in Redis ' +
  '(logged in or updated since the cutover) are logged out; PHP must be back on the files handler first.';

/** Runs a rollback; prints what it means before acting. */
export async function rollbackCommand(args: RollbackArgs, print: Print): Promise<number> {
  if ([args.to !== undefined, args.removeKeys, args.toSources === true].filter(Boolean).length !== 1) {
    throw new UserFacingError('rollback needs exactly one of --to files:SAVE_PATH, --to-sources (with --plan) or --remove-keys (see --help)');
  }
  if (args.toSources === true && args.plan === undefined) throw new UserFacingError('--to-sources writes the sessions back to the sources of a plan: give --plan');
  if (args.toSources === true && args.idsFrom !== undefined) throw new UserFacingError('--ids-from goes with --to; --to-sources takes the IDs of each source directory');
  const plan = args.plan !== undefined ? readPlanFile(args.plan) : undefined;
  const target = args.target ?? plan?.target.url;
  const provider = args.key ?? (plan !== undefined && args.plan !== undefined ? providerFromPlan(plan.key, args.plan) : undefined);
  if (target === undefined || provider === undefined) throw new UserFacingError('rollback needs --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)');
  const prefix = checkPrefix(args.prefix ?? plan?.target.prefix ?? DEFAULT_PREFIX);
  const gc = args.gcMaxlifetime ?? plan?.php.gcMaxlifetime ?? DEFAULT_GC_MAXLIFETIME;
  if (!Number.isInteger(gc) || gc < 1 || gc > 2 ** 31 - 1) throw new UserFacingError('--gc-maxlifetime must be a whole number of seconds from 1 to 2147483647');
  const fromPlan = args.target === undefined && plan !== undefined;
  if (!fromPlan) specFromUrl(target, args.tls ?? {}, 'target'); // bad URL or TLS options: exit 2 before anything is opened
  const connect = (command: 'rollback-to-files' | 'rollback-remove-keys') =>
    openTarget(fromPlan ? { recorded: plan!.target } : { url: target }, args.tls ?? {}, { command, prefix, write: !args.dryRun && command === 'rollback-remove-keys' });
  const { codec } = await codecFromProvider(provider);
  const warn = (w: string) => {
    if (args.json) process.stderr.write(`session-migrate: ${w}\n`);
    else print(w);
  };

  if (args.removeKeys) {
    warn(WARNING_REMOVE_KEYS);
    const client = await connect('rollback-remove-keys');
    try {
      const r = await rollbackRemoveKeys({ client, codec, prefix, dryRun: args.dryRun });
      if (args.json) print(JSON.stringify(r, null, 2));
      else {
        print(`session-migrate rollback --remove-keys${args.dryRun ? ' (dry run: nothing deleted)' : ''}`);
        print(`  keys        ${args.dryRun ? 'would remove' : 'removed'} ${r.removed} envelope(s) under "${printable(prefix)}"; left ${r.leftNotOpening} that do not open with the key, ${r.leftChanged} rewritten meanwhile; ${r.tombstones} tombstone(s) left to expire`);
      }
      return 0;
    } finally {
      client.close();
    }
  }

  if (args.toSources === true) return rollbackToSources(args, plan!, connect, codec, gc, warn, print);

  const to = args.to!;
  if (!to.startsWith('files:') || to.length === 'files:'.length) throw new UserFacingError(`--to must be files:SAVE_PATH (for example files:/var/lib/php/sessions or 'files:2;0600;/var/lib/php/sessions')`);
  const parsed = parseFilesSavePath(to.slice('files:'.length));
  const fatal = parsed.findings.find((f) => f.severity === 'high');
  if (fatal !== undefined) throw new UserFacingError(`--to ${to}: ${fatal.message}`);
  const layout = { dir: resolve(parsed.path), depth: parsed.depth, mode: parsed.mode };
  // The IDs come from a directory listing (names only; contents are not read).
  const idSource = openSource(args.idsFrom ?? to);
  // A symlink named sess_<id> still names a session: listed, so that rollback reports it refused.
  const ids = (function* () {
    for (const c of idSource.candidates()) {
      if (c.kind === 'candidate') yield c.id;
      else if (c.reason === 'symlink') {
        const m = /(?:^|\/)sess_([^/]+)$/.exec(c.location);
        if (m !== null) yield m[1]!;
      }
    }
  })();
  warn(WARNING_TO_FILES);
  const client = await connect('rollback-to-files');
  try {
    const r = await rollbackToFiles({ client, codec, prefix, layout, ids, gcMaxlifetime: gc, dryRun: args.dryRun });
    if (args.json) print(JSON.stringify(r, null, 2));
    else {
      const c = r.counts;
      print(`session-migrate rollback --to ${printable(to)}${args.dryRun ? ' (dry run: nothing written)' : ''}`);
      print(`  files       ${args.dryRun ? 'would write' : 'wrote'} ${c.written}, unchanged ${c.unchanged}, newer file kept ${c['newer-file-kept']}, not in Redis ${c['not-in-redis']}, destroyed (stale file ${args.dryRun ? 'would be ' : ''}removed) ${c['destroyed-file-removed']}, failed ${c.failed}`);
      print(`  mode        ${layout.mode.toString(8).padStart(4, '0')}, depth ${layout.depth}, mtime = now + remaining TTL - gc_maxlifetime (${gc} s)`);
      print(`  redis       ${r.keysInRedis} session key(s) under "${printable(prefix)}"; ${r.keysWithoutKnownId} with no listed session ID (not written back)`);
      for (const f of r.failures) print(`  FAILED      ${printable(f.key)} (${printable(f.file)}): ${printable(f.reason)}`);
    }
    return r.counts.failed > 0 ? 1 : 0;
  } finally {
    client.close();
  }
}

/** The session IDs a directory lists (names only; a symlink named sess_<id> too, so rollback reports it refused). */
function* idsOf(savePath: string): Generator<string> {
  const idSource = openSource(`files:${savePath}`);
  for (const c of idSource.candidates()) {
    if (c.kind === 'candidate') yield c.id;
    else if (c.reason === 'symlink') {
      const m = /(?:^|\/)sess_([^/]+)$/.exec(c.location);
      if (m !== null) yield m[1]!;
    }
  }
}

/**
 * rollback --to-sources: every files source of the plan gets its sessions back, each in its own
 * save_path (layout and mode from it) for the IDs it lists; a key is without a known ID only when no
 * source listed it. Redis sources of the plan are not written back (there is no way back to
 * plaintext phpredis keys; docs/rollback.md).
 */
async function rollbackToSources(
  args: RollbackArgs, plan: Plan, connect: (command: 'rollback-to-files') => Promise<RedisConnection>, codec: EnvelopeCodec, gc: number,
  warn: (w: string) => void, print: Print,
): Promise<number> {
  const files = plan.sources.map((d, i) => ({ d, i })).filter((x): x is { d: Extract<PlanSource, { kind: 'files' }>; i: number } => x.d.kind === 'files');
  if (files.length === 0) throw new UserFacingError(`plan ${args.plan}: no files: source to write back to (rollback to plaintext Redis keys is not supported; see docs/rollback.md)`);
  const targets = files.map(({ d }) => {
    const parsed = parseFilesSavePath(d.savePath);
    const fatal = parsed.findings.find((f) => f.severity === 'high');
    if (fatal !== undefined) throw new UserFacingError(`plan ${args.plan}: source files:${printable(d.savePath)}: ${fatal.message}`);
    return { layout: { dir: resolve(parsed.path), depth: parsed.depth, mode: parsed.mode }, ids: idsOf(d.savePath) };
  });
  warn(WARNING_TO_FILES);
  const skipped = plan.sources.filter((d) => d.kind === 'redis');
  if (skipped.length > 0) warn(`note: ${skipped.length} Redis source(s) of the plan are not written back (${skipped.map(sourceLabel).join(', ')}): their sessions stay only in Redis`);
  const client = await connect('rollback-to-files');
  try {
    const r = await rollbackToFilesMany({ client, codec, prefix: plan.target.prefix, targets, gcMaxlifetime: gc, dryRun: args.dryRun });
    const labels = files.map(({ d, i }) => sourceRowLabel(d, i));
    const failed = r.targets.reduce((a, t) => a + t.counts.failed, 0);
    if (args.json) {
      print(JSON.stringify({ ...r, targets: r.targets.map((t, k) => ({ source: labels[k]!, ...t })) }, null, 2));
      return failed > 0 ? 1 : 0;
    }
    print(`session-migrate rollback --to-sources${args.dryRun ? ' (dry run: nothing written)' : ''}: ${files.length} files source(s) of the plan`);
    const row = (label: string, c: RollbackToFilesReport['counts']): { label: string; values: number[] } => ({
      label, values: [c.written, c.unchanged, c['newer-file-kept'], c['not-in-redis'], c['destroyed-file-removed'], c.failed],
    });
    const sum = (k: keyof RollbackToFilesReport['counts']): number => r.targets.reduce((a, t) => a + t.counts[k], 0);
    for (const line of sourcesTable([args.dryRun ? 'would write' : 'wrote', 'unchanged', 'newer kept', 'not in Redis', 'destroyed', 'failed'], [
      ...r.targets.map((t, k) => row(labels[k]!, t.counts)),
      { label: 'total', values: [sum('written'), sum('unchanged'), sum('newer-file-kept'), sum('not-in-redis'), sum('destroyed-file-removed'), sum('failed')] },
    ])) print(line);
    print(`  redis       ${r.keysInRedis} session key(s) under "${printable(plan.target.prefix)}"; ${r.keysWithoutKnownId} with no session ID listed by any source (not written back)`);
    for (const t of r.targets) for (const f of t.failures) print(`  FAILED      ${printable(f.key)} (${printable(f.file)}): ${printable(f.reason)}`);
    return failed > 0 ? 1 : 0;
  } finally {
    client.close();
  }
}

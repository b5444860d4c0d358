/**
 * `session-migrate rollback`: wires packages/migrate/src/rollback.ts to the CLI. Exit 0 when done,
 * 1 when some session failed, 2 for usage, input or connection errors.
 */
import { resolve } from 'node:path';
import { UserFacingError, printable } from '@session-migrate/common';
import { DEFAULT_PREFIX, type KeyProvider } from '@session-migrate/envelope';
import { readPlanFile, rollbackRemoveKeys, rollbackToFiles } from '@session-migrate/migrate';
import { parseFilesSavePath } from '@session-migrate/php-ini';
import { openSource } from '@session-migrate/sources';
import { specFromUrl, type TlsFiles } from '@session-migrate/redis';
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
  if ((args.to === undefined) === !args.removeKeys) {
    throw new UserFacingError('rollback needs exactly one of --to files:SAVE_PATH or --remove-keys (see --help)');
  }
  const plan = args.plan !== undefined ? readPlanFile(args.plan) : undefined;
  const target = args.target ?? plan?.target.url;
  const provider = args.key ?? (plan !== undefined && args.plan !== undefined ? providerFromPlan(plan.key, args.plan) : undefined);
  if (target === undefined || provider === undefined) throw new UserFacingError('rollback needs --target and a key (--key-file, --key-ring, --key-env or --key-command), or --plan (see --help)');
  const prefix = checkPrefix(args.prefix ?? plan?.target.prefix ?? DEFAULT_PREFIX);
  const gc = args.gcMaxlifetime ?? plan?.php.gcMaxlifetime ?? 1440;
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

  const to = args.to!;
  if (!to.startsWith('files:') || to.length === 'files:'.length) throw new UserFacingError(`--to must be files:SAVE_PATH (for example files:/var/lib/php/sessions or 'files:2;0600;/var/lib/php/sessions')`);
  const parsed = parseFilesSavePath(to.slice('files:'.length));
  const fatal = parsed.findings.find((f) => f.severity === 'error');
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

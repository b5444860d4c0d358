/**
 * `session-migrate generate php --plan P [--read-through | --strict]`: writes only the PHP artifacts of a
 * plan (bootstrap, ini fragment, the handler's classes) into the plan's artifacts directory, without copying
 * any session. The migration's first phase deploys them in read-through mode before `apply` runs;
 * the switch to strict mode regenerates them without read-through (docs/runbook.md).
 */
import { printable } from '@session-migrate/common';
import { describeArtifactResults, describeHandlerUser, generatePhp } from '@session-migrate/migrate';
import type { LockingOptions } from '@session-migrate/generate';
import type { Print } from './commands/context.ts';

export interface GenerateArgs {
  plan: string;
  /** Overrides the plan's mode (plan --read-through); undefined = as the plan says. */
  mode?: 'read-through' | 'strict';
  /** Overrides of the plan's locking options (--lock-*); each undefined = as the plan says. */
  locking?: LockingOptions;
  /** Overrides the plan's persistent connections (--persistent / --no-persistent). */
  persistent?: boolean;
  /** The Redis ACL user the handler connects as (--handler-user); undefined = as the plan says. */
  handlerUser?: string;
  dryRun: boolean;
  json: boolean;
}

/**
 * Calls the generatePhp use case (@session-migrate/migrate) and prints its report.
 * @throws UserFacingError for a bad plan or when the artifacts cannot be written.
 */
export async function generateCommand(args: GenerateArgs, print: Print): Promise<number> {
  const { json, ...options } = args;
  const report = generatePhp(options);
  if (json) {
    print(
      JSON.stringify(
        {
          mode: report.mode,
          dryRun: report.dryRun,
          artifacts: report.artifacts,
          handlerUser: { user: report.handlerUser.user ?? null, own: report.handlerUser.own, aclRule: report.handlerUser.rule },
        },
        null,
        2,
      ),
    );
    return 0;
  }
  print(`session-migrate generate: ${report.mode} mode${report.dryRun ? ' (dry run: nothing written)' : ''}`);
  for (const line of describeArtifactResults(report.artifacts, report.outDir)) print(`  artifact    ${printable(line)}`);
  print(`  redis user  ${describeHandlerUser(report.handlerUser)}`);
  print(
    report.mode === 'read-through'
      ? '  next        deploy these to EVERY PHP host and reload PHP, then run apply on each host (docs/runbook.md)'
      : '  next        deploy these to every PHP host and reload PHP; then session-migrate verify, and purge (docs/runbook.md)',
  );
  return 0;
}

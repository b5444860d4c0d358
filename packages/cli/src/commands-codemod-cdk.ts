/**
 * `session-migrate codemod cdk DIR`: turns on ElastiCache encryption in transit, at rest and AUTH in
 * AWS CDK TypeScript code (issue 6). Only wiring: the work is in @session-migrate/codemod-cdk.
 */
import type { CommandModule } from 'yargs';
import { UserFacingError, finishCodemod, printable, terminalSafe } from '@session-migrate/common';
// The codemod itself (ts-morph, hence the TypeScript compiler: seconds to load) is imported only
// when the command runs, not on every start of the CLI.
import { DEFAULT_AUTH_SECRET_NAME, isValidSecretName } from '@session-migrate/codemod-cdk/names';

export interface CodemodCdkArgs {
  dir: string;
  dryRun: boolean;
  json: boolean;
  authSecretName: string;
}

/**
 * Runs the codemod and prints the diffs (with --dry-run) and a report, or the report as JSON.
 * @returns 0 when every ElastiCache construct found is (or, in a dry run, would be) compliant;
 *   1 when something is left to a person (a high or medium finding or a skipped file): the codemods'
 *   one rule, finishCodemod (@session-migrate/common codemod-outcome.ts).
 * @throws UserFacingError (exit 2) when DIR is not a directory, the secret name is invalid, or a file
 *   to change cannot be rewritten (with --dry-run too, after the diff and report).
 */
export async function codemodCdkCommand(args: CodemodCdkArgs, print: (line: string) => void): Promise<number> {
  // Checked here too, before the codemod (seconds to load) is imported, so a typo fails at once
  // naming the option; runCdkCodemod checks it again for library callers.
  if (!isValidSecretName(args.authSecretName)) {
    throw new UserFacingError('--auth-secret-name: must be a Secrets Manager secret name (A-Za-z0-9/_+=.@-) or a secret ARN');
  }
  const { runCdkCodemod } = await import('@session-migrate/codemod-cdk');
  const report = runCdkCodemod(args.dir, { dryRun: args.dryRun, authSecretName: args.authSecretName });
  if (args.json) {
    print(JSON.stringify(report, null, 2));
    return finishCodemod(report, null);
  }
  const changed = report.files.filter((f) => f.changed);
  if (args.dryRun) for (const f of changed) print(terminalSafe(f.diff ?? '').replace(/\n$/, ''));
  for (const f of changed) {
    const what = f.changes
      .map(
        (c) =>
          `${c.property} ${c.action === 'added' ? 'added' : c.action === 'replaced' ? 'set (it was empty)' : 'set to true'} (line ${c.line})`,
      )
      .join(', ');
    print(`${args.dryRun ? 'would change' : 'changed'} ${printable(f.path)}: ${what}`);
  }
  for (const f of report.files) {
    if (f.skipped !== undefined) print(`skipped ${printable(f.path)}: ${printable(f.skipped)}`);
    for (const x of f.findings) print(`${x.severity}: ${printable(f.path)}:${x.line}:${x.column}: ${x.id}: ${printable(x.message)}`);
  }
  print(
    `${report.constructs} ElastiCache construct(s) in ${report.scanned} TypeScript file(s); ${args.dryRun ? 'would change' : 'changed'} ${changed.length} file(s)`,
  );
  return finishCodemod(report, print);
}

/**
 * The yargs module for `codemod cdk`, for main.ts.
 * @param run main.ts's wrapper that records the exit code of a handler.
 */
export function codemodCdkModule(
  run: (fn: () => number | Promise<number>) => () => Promise<void>,
  print: (line: string) => void,
): CommandModule<object, { dir: string; 'dry-run': boolean; json: boolean; 'auth-secret-name': string }> {
  return {
    command: 'cdk <dir>',
    describe:
      'turn on ElastiCache transit/at-rest encryption and a Secrets Manager AUTH token in AWS CDK TypeScript code (diff with --dry-run)',
    builder: (y) =>
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'CDK app directory (node_modules and cdk.out are skipped)' })
        .option('auth-secret-name', {
          type: 'string',
          default: DEFAULT_AUTH_SECRET_NAME,
          describe: 'Secrets Manager secret (name or ARN) holding the AUTH token',
        })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print a unified diff, write nothing' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }) as never,
    handler: (a) =>
      run(() =>
        codemodCdkCommand(
          {
            dir: a.dir,
            dryRun: a['dry-run'],
            json: a.json,
            authSecretName: a['auth-secret-name'],
          },
          print,
        ),
      )(),
  };
}

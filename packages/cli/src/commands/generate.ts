/**
 * `session-migrate generate php | iac`: write a plan's PHP artifacts, or infrastructure templates for
 * the Redis side. The handlers load their implementation (../commands-generate.ts,
 * ../commands-generate-iac.ts) only when they run.
 */
import type { Argv, CommandModule } from 'yargs';
import type { GenerateIacArgs } from '../commands-generate-iac.ts';
import { DEFAULT_IAC_NAME, DEFAULT_PREFIX, IAC_FORMATS } from '@session-migrate/common';
import { DEFAULT_PLAN_FILE } from '../defaults.ts';
import { handlerChoicesFromArgs, handlerOptions } from '../handler-options.ts';
import { defineCommand, type CommandFactory, type Print } from './context.ts';

/** Default output directory of generate iac, relative to the working directory. */
export const DEFAULT_IAC_OUT = 'session-migrate-iac';

/** The parsed option values of `generate iac` (yargs names). */
export interface IacOptionArgs {
  format: string;
  out: string;
  name: string;
  auth: string;
  prefix: string | undefined;
  'cluster-shards': number | undefined;
  'replicas-per-shard': number | undefined;
  'dry-run': boolean;
  json: boolean;
}

/**
 * Adds the options of `generate iac` to a yargs command. Their choices and defaults come from
 * @session-migrate/common, so --help loads no generator.
 */
function iacOptions<T>(y: Argv<T>) {
  return y
    .option('format', { type: 'string', choices: IAC_FORMATS, demandOption: true, describe: 'template language' })
    .option('out', { type: 'string', default: DEFAULT_IAC_OUT, describe: 'directory to write into (created if missing)' })
    .option('name', {
      type: 'string',
      default: DEFAULT_IAC_NAME,
      describe: 'resource name prefix and replication group ID (lowercase, digits, hyphens; at most 40)',
    })
    .option('auth', {
      type: 'string',
      choices: ['token', 'rbac'],
      default: 'token',
      describe: 'token: one AUTH token; rbac: ElastiCache users with the minimal ACL rules (PHP handler, migration, verify)',
    })
    .option('prefix', {
      type: 'string',
      describe: `session key prefix of the ACL users' key patterns (--auth rbac; default ${DEFAULT_PREFIX})`,
    })
    .option('cluster-shards', {
      type: 'number',
      describe: 'cluster mode enabled with this many shards (1-500); without it one shard, cluster mode disabled',
    })
    .option('replicas-per-shard', { type: 'number', describe: 'replicas in each shard (1-5; with --cluster-shards; default 1)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'say what would be written, write nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' });
}

/**
 * The arguments of generateIacCommand (../commands-generate-iac.ts) from the parsed options; an option
 * not given stays absent, so the generator's default applies. Values, and which options need others
 * (--replicas-per-shard needs --cluster-shards, --prefix only with --auth rbac), are checked by the
 * generator (renderIac, for its library callers too), not here with checkOptionNeeds.
 */
function iacArgsFromOptions(a: IacOptionArgs): GenerateIacArgs {
  return {
    format: a.format as (typeof IAC_FORMATS)[number],
    out: a.out,
    name: a.name,
    auth: a.auth as 'token' | 'rbac',
    ...(a.prefix !== undefined ? { prefix: a.prefix } : {}),
    ...(a['cluster-shards'] !== undefined ? { clusterShards: a['cluster-shards'] } : {}),
    ...(a['replicas-per-shard'] !== undefined ? { replicasPerShard: a['replicas-per-shard'] } : {}),
    dryRun: a['dry-run'],
    json: a.json,
  };
}

/**
 * The yargs module for `generate iac` (options: {@link iacOptions}); the handler loads
 * ../commands-generate-iac.ts when it runs.
 * @param run main.ts's wrapper that records the exit code of a handler.
 */
export function generateIacModule(
  run: (fn: () => number | Promise<number>) => () => Promise<void>,
  print: Print,
): CommandModule<object, IacOptionArgs> {
  return {
    command: 'iac',
    describe:
      'write a Terraform or CloudFormation template: ElastiCache Redis with TLS, encryption at rest, AUTH token or ACL users (passwords in Secrets Manager), optional cluster mode, web-tier-only access',
    builder: (y) => iacOptions(y) as never,
    handler: (a) =>
      run(async () => {
        const { generateIacCommand } = await import('../commands-generate-iac.ts');
        return generateIacCommand(iacArgsFromOptions(a), print);
      })(),
  };
}

export const generateModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'generate',
    describe: "write a plan's PHP artifacts (php) or infrastructure templates for the Redis side (iac)",
    builder: (y) =>
      y
        .command(
          'php',
          "write only the plan's PHP artifacts (read-through or strict mode), copy nothing",
          (g) =>
            handlerOptions(g)
              .option('plan', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file from plan' })
              .option('read-through', { type: 'boolean', describe: 'read-through (migrating) mode, whatever the plan says' })
              .option('strict', { type: 'boolean', describe: 'strict mode (sessions only in Redis), whatever the plan says' })
              .option('dry-run', { type: 'boolean', default: false, describe: 'show which files would change, write nothing' })
              .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' })
              .conflicts('read-through', 'strict'),
          (a) =>
            run(async () => {
              const choices = handlerChoicesFromArgs(a);
              const { generateCommand } = await import('../commands-generate.ts');
              return generateCommand(
                {
                  plan: a.plan,
                  dryRun: a['dry-run'],
                  json: a.json,
                  ...choices,
                  ...(a['read-through'] === true
                    ? { mode: 'read-through' as const }
                    : a.strict === true
                      ? { mode: 'strict' as const }
                      : {}),
                },
                print,
              );
            })(),
        )
        .command(generateIacModule(run, print))
        .demandCommand(1, 'name what to generate: php or iac'),
    handler: () => {},
  });

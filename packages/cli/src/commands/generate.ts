/**
 * `session-migrate generate php | iac`: write a plan's PHP artifacts, or infrastructure templates for
 * the Redis side. The handlers load their implementation (../commands-generate.ts,
 * ../commands-generate-iac.ts) only when they run.
 */
import { DEFAULT_PLAN_FILE } from '../defaults.ts';
import { generateIacModule } from '../commands-generate-iac.ts';
import { handlerChoicesFromArgs, handlerOptions } from '../handler-options.ts';
import { defineCommand, type CommandFactory } from './context.ts';

export const generateModule: CommandFactory = ({ run, print }) => defineCommand({
  command: 'generate',
  describe: "write a plan's PHP artifacts (php) or infrastructure templates for the Redis side (iac)",
  builder: (y) =>
    y
      .command('php', "write only the plan's PHP artifacts (read-through or strict mode), copy nothing", (g) =>
        handlerOptions(g)
          .option('plan', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file from plan' })
          .option('read-through', { type: 'boolean', describe: 'read-through (migrating) mode, whatever the plan says' })
          .option('strict', { type: 'boolean', describe: 'strict mode (sessions only in Redis), whatever the plan says' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'show which files would change, write nothing' })
          .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' })
          .conflicts('read-through', 'strict'),
      (a) => run(async () => {
        const choices = handlerChoicesFromArgs(a);
        const { generateCommand } = await import('../commands-generate.ts');
        return generateCommand({
          plan: a.plan, dryRun: a['dry-run'], json: a.json, ...choices,
          ...(a['read-through'] === true ? { mode: 'read-through' as const } : a.strict === true ? { mode: 'strict' as const } : {}),
        }, print);
      })())
      .command(generateIacModule(run, print))
      .demandCommand(1, 'name what to generate: php or iac'),
  handler: () => {},
});

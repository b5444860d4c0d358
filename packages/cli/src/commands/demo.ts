/**
 * `session-migrate demo`: the whole flow on a throwaway sandbox (../demo.ts, loaded when it runs).
 */
import { defineCommand, type CommandFactory } from './context.ts';

export const demoModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'demo',
    describe: 'run the whole flow on a throwaway sandbox: real PHP sessions, a local redis-server',
    builder: (y) =>
      y.option('users', { type: 'number', default: 5, describe: 'simulated users who log in before the migration' }).option('keep', {
        type: 'boolean',
        default: false,
        describe: 'keep the sandbox directory afterwards, to read (its redis-server is stopped)',
      }),
    handler: (a) =>
      run(async () => {
        const { demoCommand } = await import('../demo.ts');
        return demoCommand({ users: a.users, keep: a.keep }, print);
      })(),
  });

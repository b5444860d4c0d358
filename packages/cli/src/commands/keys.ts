/**
 * `session-migrate keys generate | id | ring init | add | rotate | retire` (docs/keys.md). The
 * handlers load their implementation (../commands-keys.ts, libsodium) only when they run.
 */
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { defineCommand, type CommandFactory } from './context.ts';

export const keysModule: CommandFactory = ({ run, print }) => {
  const impl = () => import('../commands-keys.ts');
  return defineCommand({
    command: 'keys',
    describe: 'manage master keys',
    builder: (y) =>
      y
        .command(
          'generate',
          'write a new random 32-byte master key (base64, mode 0600); never overwrites',
          (g) => g.option('out', { type: 'string', demandOption: true, describe: 'file to create' }),
          (a) => run(async () => (await impl()).keysGenerate({ out: a.out }, print))(),
        )
        .command(
          'id',
          'print the key ID of a key, or the lookup ID and key IDs of a key ring (safe to print)',
          (g) => keyProviderOptions(g).option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
          (a) =>
            run(async () => {
              const key = keyProviderFromArgs(a, true)!;
              return (await impl()).keysId({ key, json: a.json }, print);
            })(),
        )
        .command('ring', 'manage a key ring file (docs/keys.md)', (r) =>
          r
            .command(
              'init',
              'create a key ring (mode 0600) from a key or ring (keeps its lookup key), or from a new key',
              (g) => keyProviderOptions(g).option('out', { type: 'string', demandOption: true, describe: 'key ring file to create' }),
              (a) =>
                run(async () => {
                  const key = keyProviderFromArgs(a, false);
                  return (await impl()).keysRingInit({ out: a.out, ...(key !== undefined ? { key } : {}) }, print);
                })(),
            )
            .command(
              'add',
              'add a new random master key as a previous key (opens, does not seal yet)',
              (g) => g.option('key-ring', { type: 'string', demandOption: true, describe: 'key ring file to update' }),
              (a) => run(async () => (await impl()).keysRingAdd({ ring: a['key-ring'] }, print))(),
            )
            .command(
              'rotate',
              'make a new random key (or --to a previous key) current; the old current key becomes previous',
              (g) =>
                g
                  .option('key-ring', { type: 'string', demandOption: true, describe: 'key ring file to update' })
                  .option('to', { type: 'string', describe: 'key ID of a previous key to make current (from keys ring add)' }),
              (a) =>
                run(async () =>
                  (await impl()).keysRingRotate({ ring: a['key-ring'], ...(a.to !== undefined ? { to: a.to } : {}) }, print),
                )(),
            )
            .command(
              'retire',
              'remove a previous key from the ring (after verify --require-key-id)',
              (g) =>
                g
                  .option('key-ring', { type: 'string', demandOption: true, describe: 'key ring file to update' })
                  .option('key-id', { type: 'string', demandOption: true, describe: 'key ID to remove' }),
              (a) => run(async () => (await impl()).keysRingRetire({ ring: a['key-ring'], keyId: a['key-id'] }, print))(),
            )
            .demandCommand(1, 'name a keys ring command: init, add, rotate or retire'),
        )
        .demandCommand(1, 'name a keys command: generate, id or ring'),
    handler: () => {},
  });
};

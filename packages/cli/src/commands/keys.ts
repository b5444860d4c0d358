/**
 * `session-migrate keys generate | id | ring init | add | rotate | retire` (docs/keys.md). The
 * handlers load their implementation (../commands-keys.ts, libsodium) only when they run.
 */
import type { Argv } from 'yargs';
import { keyProviderFromArgs, keyProviderOptions } from '../key-options.ts';
import { defineCommand, type CommandFactory, type CommandContext } from './context.ts';

/** `--key-ring` of the `keys ring` commands that change a ring file (add, rotate, retire). */
const KEY_RING_TO_UPDATE_OPTION = { type: 'string', demandOption: true, describe: 'key ring file to update' } as const;

/** `keys generate`'s options. */
function generateOptions(y: Argv) {
  return y.option('out', { type: 'string', demandOption: true, describe: 'file to create' });
}

/** `keys id`'s options: the key provider, `--json`. */
function idOptions(y: Argv) {
  return keyProviderOptions(y).option('json', { type: 'boolean', default: false, describe: 'print JSON' });
}

/** `keys ring init`'s options: the key provider (optional: a new key without), `--out`. */
function ringInitOptions(y: Argv) {
  return keyProviderOptions(y).option('out', { type: 'string', demandOption: true, describe: 'key ring file to create' });
}

/** `keys ring add`'s options. */
function ringAddOptions(y: Argv) {
  return y.option('key-ring', KEY_RING_TO_UPDATE_OPTION);
}

/** `keys ring rotate`'s options. */
function ringRotateOptions(y: Argv) {
  return y
    .option('key-ring', KEY_RING_TO_UPDATE_OPTION)
    .option('to', { type: 'string', describe: 'key ID of a previous key to make current (from keys ring add)' });
}

/** `keys ring retire`'s options. */
function ringRetireOptions(y: Argv) {
  return y
    .option('key-ring', KEY_RING_TO_UPDATE_OPTION)
    .option('key-id', { type: 'string', demandOption: true, describe: 'key ID to remove' });
}

/** The implementation of the keys commands, loaded when one runs. */
const impl = () => import('../commands-keys.ts');

/** `keys ring init | add | rotate | retire` on `y`, their handlers bound to main()'s run and print. */
function ringCommands(y: Argv, { run, print }: CommandContext) {
  return y
    .command('init', 'create a key ring (mode 0600) from a key or ring (keeps its lookup key), or from a new key', ringInitOptions, (a) =>
      run(async () => {
        const key = keyProviderFromArgs(a, false);
        return (await impl()).keysRingInit({ out: a.out, ...(key !== undefined ? { key } : {}) }, print);
      })(),
    )
    .command('add', 'add a new random master key as a previous key (opens, does not seal yet)', ringAddOptions, (a) =>
      run(async () => (await impl()).keysRingAdd({ ring: a['key-ring'] }, print))(),
    )
    .command(
      'rotate',
      'make a new random key (or --to a previous key) current; the old current key becomes previous',
      ringRotateOptions,
      (a) => run(async () => (await impl()).keysRingRotate({ ring: a['key-ring'], ...(a.to !== undefined ? { to: a.to } : {}) }, print))(),
    )
    .command('retire', 'remove a previous key from the ring (after verify --require-key-id)', ringRetireOptions, (a) =>
      run(async () => (await impl()).keysRingRetire({ ring: a['key-ring'], keyId: a['key-id'] }, print))(),
    )
    .demandCommand(1, 'name a keys ring command: init, add, rotate or retire');
}

export const keysModule: CommandFactory = (ctx) => {
  const { run, print } = ctx;
  return defineCommand({
    command: 'keys',
    describe: 'manage master keys',
    builder: (y) =>
      y
        .command('generate', 'write a new random 32-byte master key (base64, mode 0600); never overwrites', generateOptions, (a) =>
          run(async () => (await impl()).keysGenerate({ out: a.out }, print))(),
        )
        .command('id', 'print the key ID of a key, or the lookup ID and key IDs of a key ring (safe to print)', idOptions, (a) =>
          run(async () => {
            const key = keyProviderFromArgs(a, true)!;
            return (await impl()).keysId({ key, json: a.json }, print);
          })(),
        )
        .command('ring', 'manage a key ring file (docs/keys.md)', (r) => ringCommands(r, ctx))
        .demandCommand(1, 'name a keys command: generate, id or ring'),
    handler: () => {},
  });
};

/**
 * skipHelpCaching (help-cache.ts) replaces a yargs internal: the help text yargs 18 renders and caches
 * after starting a command's handler (yargs build/lib/command.js, build/lib/usage.js
 * cacheHelpMessage). These tests fail when yargs stops calling that hook or renames it (then the CLI
 * renders the help again on every run, silently: look at the new yargs' command.js), and show that
 * the help asked for with --help is the same with the hook replaced.
 */
import yargs from 'yargs';
import { describe, expect, it } from 'vitest';
import { skipHelpCaching } from '../src/help-cache.ts';

interface Usage {
  cacheHelpMessage: () => void;
  hasCachedHelpMessage: () => boolean;
}

/** A parser with one command whose async handler records that it ran, as main.ts builds its own. */
function parser(argv: string[], ran: string[]) {
  const y = yargs(argv)
    .scriptName('session-migrate')
    .command(
      'copy <dir>',
      'Copy the files of a directory.',
      (b) =>
        b
          .option('dry-run', { type: 'boolean', describe: 'only say what would be copied' })
          .option('out', { type: 'string', describe: 'where to' }),
      async () => {
        ran.push('copy');
      },
    )
    .strict()
    .help()
    .exitProcess(false);
  return y;
}

function usageOf(y: unknown): Usage {
  return (y as { getInternalMethods: () => { getUsageInstance: () => Usage } }).getInternalMethods().getUsageInstance();
}

describe('skipHelpCaching', () => {
  it('yargs still renders the help text once after starting a command handler (the hook replaced)', async () => {
    const ran: string[] = [];
    const y = parser(['copy', 'd', '--out', 'x'], ran);
    const usage = usageOf(y);
    const original = usage.cacheHelpMessage;
    let calls = 0;
    usage.cacheHelpMessage = function (this: Usage) {
      calls++;
      original.call(this);
    };
    await y.parseAsync();
    expect(ran).toEqual(['copy']);
    expect(calls).toBe(1);
    expect(usage.hasCachedHelpMessage()).toBe(true);
  });

  it('replaces the hook: the command runs, and no help text is rendered', async () => {
    const ran: string[] = [];
    const y = parser(['copy', 'd', '--dry-run'], ran);
    expect(skipHelpCaching(y)).toBe(true);
    await y.parseAsync();
    expect(ran).toEqual(['copy']);
    expect(usageOf(y).hasCachedHelpMessage()).toBe(false);
  });

  it('--help prints the same text with the hook replaced (the program and a command)', async () => {
    const helpOf = async (argv: string[], skip: boolean): Promise<string> => {
      const ran: string[] = [];
      const y = parser(argv, ran);
      if (skip) skipHelpCaching(y);
      let out = '';
      await y.parseAsync(argv, {}, (_err, _argv, output) => {
        out = output;
      });
      expect(ran).toEqual([]);
      return out;
    };
    for (const argv of [['--help'], ['copy', '--help']]) {
      const before = await helpOf(argv, false);
      expect(before).toContain('--help');
      expect(await helpOf(argv, true)).toBe(before);
    }
  });

  it('changes nothing, and says so, for what is not a yargs instance', () => {
    expect(skipHelpCaching({})).toBe(false);
  });
});

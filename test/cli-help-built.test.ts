/**
 * The built CLI (scripts/package/build.ts, the same bundle as the npm package) prints the help texts
 * that docs/cli.md holds: the ones the sources print in-process (scripts/docs-cli.ts collectHelp,
 * compared to docs/cli.md by test/docs.test.ts). The bundle loads yargs' help renderers (cliui,
 * string-width) only when a help text is rendered (build.ts lazyHelpRendering) and the CLI renders no
 * help text unasked (packages/cli/src/help-cache.ts); this shows the text is the same, byte for byte,
 * for the program, a command with many options and a nested subcommand, and that a usage error is
 * still its one line.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { collectHelp, type CommandHelp } from '../scripts/docs-cli.ts';
import { BIN, SOURCE_BIN, cli } from './support/migrate-cli.ts';

let sections: CommandHelp[];
beforeAll(async () => {
  sections = await collectHelp();
}, 60_000);

describe('the built CLI', () => {
  it('is the built bundle, not the sources', () => {
    expect(BIN).not.toBe(SOURCE_BIN);
  });

  for (const path of [[], ['plan'], ['keys', 'ring', 'init']]) {
    it(`prints the help of 'session-migrate ${path.join(' ')}' as the sources do`, () => {
      const expected = sections.find((s) => s.path.join(' ') === path.join(' '));
      expect(expected, `collectHelp() has no section ${path.join(' ')}`).toBeDefined();
      const r = cli([...path, '--help']);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      // collectHelp trims each line's end and the text's end (scripts/docs-cli.ts helpOf).
      const printed =
        r.stdout
          .split('\n')
          .map((l) => l.trimEnd())
          .join('\n')
          .trim() + '\n';
      expect(printed).toBe(expected!.help);
    });
  }

  it('a usage error is one line on stderr, exit 2, no help text', () => {
    const r = cli(['demo', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('session-migrate: Unknown argument: --bogus (see --help)\n');
  });
});

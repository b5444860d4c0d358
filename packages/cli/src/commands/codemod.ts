/**
 * `session-migrate codemod php | cdk`: rewrite application code as a reviewed diff. The codemods'
 * parsers load only when a handler runs (../commands-codemod-php.ts, ../commands-codemod-cdk.ts).
 */
import { codemodCdkModule } from '../commands-codemod-cdk.ts';
import { codemodPhpModule } from '../commands-codemod-php.ts';
import { defineCommand, type CommandFactory } from './context.ts';

export const codemodModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'codemod',
    describe: 'rewrite application code as a reviewed diff',
    builder: (y) =>
      y.command(codemodPhpModule(run, print)).command(codemodCdkModule(run, print)).demandCommand(1, 'name a codemod: php or cdk'),
    handler: () => {},
  });

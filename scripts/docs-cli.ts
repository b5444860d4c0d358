/**
 * Writes docs/cli.md, the command-line reference, from the CLI's own `--help` (yargs): the program and
 * every command and subcommand, found by reading the "Commands:" section of each help text, so a new
 * command appears without a list to keep here.
 *
 *   npm run docs:cli             # rewrite docs/cli.md
 *   npm run docs:cli -- --check  # exit 1 when docs/cli.md differs from the help (test/docs.test.ts does the same)
 *
 * The help is rendered in-process through `main()` of packages/cli (no server, no PHP, nothing
 * connects) at a fixed terminal width of 110 columns, the width `main()` uses when stdout is not a
 * terminal, so the output is the same on every machine and in every terminal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const REPO = join(import.meta.dirname, '..');
export const CLI_DOC = join(REPO, 'docs/cli.md');
export const REGENERATE = 'npm run docs:cli';

/** The terminal width the help is rendered at (yargs wraps to it). */
const COLUMNS = 110;

type Main = (argv: string[]) => Promise<number>;

/**
 * The text `session-migrate <path> --help` prints, with trailing spaces removed from each line.
 * stdout (and console.log, which yargs uses) is captured while main runs; its width is fixed.
 */
async function helpOf(main: Main, path: string[]): Promise<string> {
  let out = '';
  const stdout = process.stdout as NodeJS.WriteStream & { columns?: number };
  const hadColumns = Object.prototype.hasOwnProperty.call(stdout, 'columns');
  const columns = stdout.columns;
  const write = stdout.write;
  const log = console.log;
  stdout.columns = COLUMNS;
  stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof stdout.write;
  console.log = (...args: unknown[]) => {
    out += args.map(String).join(' ') + '\n';
  };
  let code: number;
  try {
    code = await main([...path, '--help']);
  } finally {
    stdout.write = write;
    console.log = log;
    if (hadColumns) stdout.columns = columns;
    else delete (stdout as { columns?: number }).columns;
  }
  if (code !== 0) throw new Error(`session-migrate ${[...path, '--help'].join(' ')} exited ${code}`);
  return (
    out
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n')
      .trim() + '\n'
  );
}

/**
 * The command paths one level below `path` that a help text lists under "Commands:", e.g. for
 * `keys`: ['keys', 'generate'], ['keys', 'id'], ['keys', 'ring']. Positional placeholders
 * (`[action]`, `<file>`) are not words of the path.
 */
export function subcommandsOf(help: string, path: string[]): string[][] {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => l === 'Commands:');
  if (start < 0) return [];
  const found: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || !line.startsWith(' ')) break;
    const m = /^ {2}session-migrate (.+?)(?: {2,}|$)/.exec(line);
    if (m === null) continue; // a wrapped description line
    const words = m[1]!.split(' ').filter((w) => !/^[[<]/.test(w));
    if (words.length === path.length + 1 && words.slice(0, path.length).join(' ') === path.join(' ')) found.push(words);
  }
  return found;
}

/** A GitHub-style heading anchor ("`session-migrate keys id`" -> "session-migrate-keys-id"). */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** One command of the CLI: its path (`[]` for the program, `['keys', 'ring', 'init']`) and its help text. */
export interface CommandHelp {
  path: string[];
  title: string;
  help: string;
}

/**
 * The help of the program and of every command and subcommand, depth first in the order the help
 * lists them.
 */
export async function collectHelp(): Promise<CommandHelp[]> {
  const { main } = (await import('../packages/cli/src/main.ts')) as { main: Main };
  const sections: CommandHelp[] = [];
  const visit = async (path: string[]): Promise<void> => {
    const help = await helpOf(main, path);
    sections.push({ path, title: ['session-migrate', ...path].join(' '), help });
    for (const sub of subcommandsOf(help, path)) await visit(sub);
  };
  await visit([]);
  return sections;
}

/** Renders docs/cli.md from the CLI's help texts (collectHelp() when not given). */
export async function renderCliReference(sections?: CommandHelp[]): Promise<string> {
  sections ??= await collectHelp();
  const out: string[] = [
    '# Command-line reference',
    '',
    `<!-- Generated from the CLI's --help by scripts/docs-cli.ts: do not edit by hand; run \`${REGENERATE}\`. -->`,
    '',
    'Every command and subcommand of `session-migrate`, exactly as its `--help` prints it. The guides say',
    'when and why to use them: [operator guide](operator-guide.md), [audit](audit.md),',
    '[codemods](codemods.md), [keys](keys.md), [production Redis](redis.md). Options accept every',
    'spelling yargs does (`--dry-run`, `--dryRun`, `--key-file=F`, `--no-dry-run`); what yargs would',
    'resolve silently is refused ([operator guide, "Options"](operator-guide.md#options)).',
    '',
    ...sections.map((s) => `- [\`${s.title}\`](#${anchorOf('`' + s.title + '`')})`),
    '',
  ];
  for (const s of sections) out.push(`## \`${s.title}\``, '', '```text', s.help.trimEnd(), '```', '');
  return out.join('\n');
}

/** True when docs/cli.md is what the generator writes now. */
export async function cliReferenceIsCurrent(sections?: CommandHelp[]): Promise<boolean> {
  let current = '';
  try {
    current = readFileSync(CLI_DOC, 'utf8');
  } catch {
    return false;
  }
  return current === (await renderCliReference(sections));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const check = process.argv.includes('--check');
  const text = await renderCliReference();
  let current: string | undefined;
  try {
    current = readFileSync(CLI_DOC, 'utf8');
  } catch {
    current = undefined;
  }
  if (check) {
    if (current !== text) {
      process.stderr.write(`docs/cli.md is stale: it differs from the CLI's --help; run \`${REGENERATE}\` and commit it\n`);
      process.exitCode = 1;
    } else {
      process.stdout.write('docs/cli.md is current\n');
    }
  } else if (current === text) {
    process.stdout.write('docs/cli.md is current\n');
  } else {
    writeFileSync(CLI_DOC, text);
    process.stdout.write('wrote docs/cli.md\n');
  }
}

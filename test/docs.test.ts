/**
 * The documentation stays true (issue 14, "Docs in layers"): docs/cli.md is what the CLI's --help
 * prints (scripts/docs-cli.ts), every relative link and #anchor of the Markdown files resolves, every
 * `session-migrate ...` line of a shell example names a real command with real options, every
 * `npm run X` names a script, and the README keeps its shape: short, the two commands, the one
 * test command CI runs (.ci/run).
 *
 * Unit tier: the help is rendered in-process; nothing is started.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI_DOC, REGENERATE, anchorOf, collectHelp, renderCliReference, subcommandsOf, type CommandHelp } from '../scripts/docs-cli.ts';
import { DEFAULT_RETRY } from '../packages/migrate/src/apply.ts';
import { PLAN_VERSION } from '../packages/migrate/src/plan.ts';
import { DEFAULT_WAIT_TIMEOUT_MS } from '../packages/migrate/src/use-cases/apply.ts';

const REPO = join(import.meta.dirname, '..');

/** The Markdown files people read: the root, docs/, and the READMEs of codemods/ and test/fixtures/. */
function markdownFiles(): string[] {
  const list = (dir: string) =>
    readdirSync(join(REPO, dir))
      .filter((n) => n.endsWith('.md'))
      .map((n) => join(REPO, dir, n));
  return [...list('.'), ...list('docs'), join(REPO, 'codemods/README.md'), join(REPO, 'test/fixtures/README.md')];
}

/** Markdown text without fenced code blocks (links inside them are examples, not links). */
function withoutCode(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
}

/** The heading anchors of a Markdown file, GitHub style (a repeated heading gets -1, -2, ...). */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of withoutCode(readFileSync(file, 'utf8')).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The shell example lines of a Markdown file (```sh/bash/shell blocks), continuation lines joined. */
function shellLines(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm)) {
    out.push(...m[1]!.replace(/\\\n\s*/g, ' ').split('\n'));
  }
  return out;
}

let commands: CommandHelp[];
beforeAll(async () => {
  commands = await collectHelp();
}, 60_000);

describe('docs/cli.md', () => {
  it(`is what the CLI's --help prints (when this fails: run \`${REGENERATE}\` and commit docs/cli.md)`, async () => {
    const expected = await renderCliReference(commands);
    const current = existsSync(CLI_DOC) ? readFileSync(CLI_DOC, 'utf8') : '';
    if (current !== expected) {
      throw new Error(`docs/cli.md is stale: it differs from the CLI's --help. Run \`${REGENERATE}\` and commit docs/cli.md.`);
    }
  });

  it('covers the program and every command and subcommand the help lists', () => {
    const titles = commands.map((c) => c.path.join(' '));
    for (const c of [
      '',
      'audit',
      'keys',
      'keys generate',
      'keys id',
      'keys ring',
      'keys ring init',
      'keys ring add',
      'keys ring rotate',
      'keys ring retire',
      'plan',
      'apply',
      'verify',
      'rotate',
      'purge',
      'rollback',
      'codemod',
      'codemod php',
      'codemod cdk',
      'generate',
      'generate php',
      'generate iac',
      'demo',
    ]) {
      expect(titles).toContain(c);
    }
    const doc = readFileSync(CLI_DOC, 'utf8');
    for (const c of commands) expect(doc).toContain(`## \`${c.title}\``);
  });

  it('finds subcommands from a help text, wrapped descriptions and positionals included', () => {
    const help = [
      'session-migrate keys',
      '',
      'Commands:',
      '  session-migrate keys generate  write a new key',
      '  session-migrate keys id        print the key ID of a key, or the lookup ID and key IDs of a key ring (safe',
      '                                 to print)',
      '  session-migrate keys ring <file> [more]  manage a ring',
      '',
      'Options:',
      '  --help  Show help',
    ].join('\n');
    expect(subcommandsOf(help, ['keys'])).toEqual([
      ['keys', 'generate'],
      ['keys', 'id'],
      ['keys', 'ring'],
    ]);
    expect(subcommandsOf('session-migrate demo\n\nOptions:\n  --help  Show help\n', ['demo'])).toEqual([]);
    expect(anchorOf('`session-migrate keys ring init`')).toBe('session-migrate-keys-ring-init');
    expect(anchorOf('Phase 1: deploy read-through mode to all hosts')).toBe('phase-1-deploy-read-through-mode-to-all-hosts');
  });
});

describe('links in the Markdown files', () => {
  it('every relative link points at a file of the repository, and every #anchor at a heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of markdownFiles()) {
      const text = withoutCode(readFileSync(file, 'utf8'));
      for (const m of text.matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
        const href = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue; // https:, mailto:
        checked++;
        const [path, anchor] = href.split('#') as [string, string | undefined];
        const target = path === '' ? file : join(dirname(file), decodeURIComponent(path));
        const where = `${relative(REPO, file)}: (${href})`;
        if (!existsSync(target)) {
          broken.push(`${where}: no such file`);
          continue;
        }
        if (
          anchor !== undefined &&
          anchor !== '' &&
          target.endsWith('.md') &&
          statSync(target).isFile() &&
          !anchorsOf(target).has(anchor)
        ) {
          broken.push(`${where}: no heading with the anchor #${anchor}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(broken).toEqual([]);
  });
});

describe('commands in the shell examples', () => {
  it('every `session-migrate ...` line names a command the CLI has and options that command takes', () => {
    const byPath = new Map(commands.map((c) => [c.path.join(' '), c]));
    const optionsOf = (c: CommandHelp) => new Set([...c.help.matchAll(/^ {2}--([a-z][a-z0-9-]*)/gm)].map((m) => m[1]!));
    const wrong: string[] = [];
    let checked = 0;
    for (const file of markdownFiles()) {
      for (const raw of shellLines(readFileSync(file, 'utf8'))) {
        const line = raw.replace(/(^|\s)#.*$/, ''); // a comment
        const at = line.search(/(?:^|[\s/])session-migrate\s/);
        if (at < 0) continue;
        const words = line.slice(at).trim().split(/\s+/).slice(1);
        let path: string[] = [];
        for (let n = 1; n <= words.length; n++) if (byPath.has(words.slice(0, n).join(' '))) path = words.slice(0, n);
        const command = byPath.get(path.join(' '))!;
        const where = `${relative(REPO, file)}: ${raw.trim()}`;
        if (path.length === 0 && words.length > 0 && !words[0]!.startsWith('-')) {
          wrong.push(`${where}: no command "${words[0]}"`);
          continue;
        }
        checked++;
        const known = optionsOf(command);
        for (const w of words.slice(path.length)) {
          const opt = /^--(?:no-)?([a-z][a-z0-9-]*)/.exec(w);
          if (opt === null) continue;
          const name = w.startsWith('--no-') && !known.has(w.slice(2).split('=')[0]!) ? opt[1]! : w.slice(2).split('=')[0]!;
          if (!known.has(name)) wrong.push(`${where}: ${command.title} has no option --${name}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(wrong).toEqual([]);
  });

  it('every `npm run X` names a script of package.json', () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts,
    );
    const wrong: string[] = [];
    for (const file of markdownFiles()) {
      for (const m of readFileSync(file, 'utf8').matchAll(/npm run ([a-z][\w:-]*)/g)) {
        if (!scripts.includes(m[1]!)) wrong.push(`${relative(REPO, file)}: npm run ${m[1]}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('README.md', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');

  it('is short (about 150 lines): the reference lives in docs/', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(170);
  });

  it('gives the two commands, and its test command is the one CI runs', () => {
    const shell = shellLines(readme).map((l) => l.trim());
    expect(shell).toContain('./scripts/setup.sh --then npx session-migrate demo');
    expect(shell).toContain('./scripts/setup.sh --then npm test');
    expect(readFileSync(join(REPO, '.ci/run'), 'utf8')).toMatch(/^exec bash scripts\/setup\.sh --then npm test$/m);
  });

  it('links every topic document', () => {
    for (const doc of [
      'docs/operator-guide.md',
      'docs/audit.md',
      'docs/codemods.md',
      'docs/cli.md',
      'ARCHITECTURE.md',
      'CONTRIBUTING.md',
      'docs/runbook.md',
      'docs/redis.md',
      'docs/keys.md',
      'docs/handler.md',
      'docs/envelope.md',
      'docs/rollback.md',
      'docs/performance.md',
    ]) {
      expect(readme).toContain(`](${doc})`);
    }
  });
});

describe("apply's retry and WAIT defaults and the plan version in the operator docs", () => {
  it('are the ones the code uses (DEFAULT_RETRY, DEFAULT_WAIT_TIMEOUT_MS, PLAN_VERSION)', () => {
    const claims: [string, string][] = [
      ['docs/operator-guide.md', `(\`--retries\`, default ${DEFAULT_RETRY.attempts};`],
      [
        'docs/operator-guide.md',
        `\`--retry-delay-ms\`, default ${DEFAULT_RETRY.baseDelayMs}, doubling up to ${DEFAULT_RETRY.maxDelayMs / 1000} s)`,
      ],
      ['docs/redis.md', `\`--wait-timeout-ms\` (default ${DEFAULT_WAIT_TIMEOUT_MS})`],
      ['docs/runbook.md', `\`--wait-timeout-ms\`, default ${DEFAULT_WAIT_TIMEOUT_MS})`],
      ['docs/redis.md', `## What the plan records (plan version ${PLAN_VERSION})`],
      ['docs/runbook.md', `The plan (version ${PLAN_VERSION}) records every source`],
    ];
    // Line breaks and indentation folded into single spaces.
    const prose = (doc: string) => readFileSync(join(REPO, doc), 'utf8').replace(/\s+/g, ' ');
    expect(claims.filter(([doc, claim]) => !prose(doc).includes(claim)).map(([doc, claim]) => `${doc}: ${claim}`)).toEqual([]);
  });
});

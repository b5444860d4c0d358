/**
 * Option spellings (issue 13): every option of every command, in every spelling yargs accepts
 * (kebab-case, camelCase, `--opt=value`, `--opt value`, `--no-flag`, `--flag=true|false`), is the same
 * option with the same value; what yargs would resolve silently (a boolean with another value, an
 * option given twice, `--no-` of a non-boolean, a number that is not one, an array option without a
 * value, an unknown spelling) is refused with exit 2 and one line on stderr. The commands and their
 * options are discovered from the CLI itself (`--help` and yargs' option table), not listed here.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Parser } from 'yargs/helpers';
import { main } from '../src/main.ts';
import type { OptionTable } from '../src/argv.ts';

let stdout = '';
let stderr = '';
beforeEach(() => {
  stdout = '';
  stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    stdout += a.join(' ') + '\n';
  });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
    stderr += a.join(' ') + '\n';
  });
});
afterEach(() => vi.restoreAllMocks());

interface Parsed {
  code: number;
  args?: Record<string, unknown>;
  table?: OptionTable;
  stderr: string;
}

/** Parses argv through the real CLI (after yargs' validation, or before it); nothing runs. */
async function parse(argv: string[], beforeValidation = false): Promise<Parsed> {
  let args: Record<string, unknown> | undefined;
  let table: OptionTable | undefined;
  stderr = '';
  const code = await main(argv, {
    inspect: (a, t) => {
      args = a;
      table = t;
    },
    beforeValidation,
  });
  return { code, ...(args !== undefined ? { args } : {}), ...(table !== undefined ? { table } : {}), stderr };
}

/** The --help text of a command path. */
async function help(path: string[]): Promise<string> {
  stdout = '';
  await main([...path, '--help']);
  return stdout;
}

/** Command paths (e.g. ['keys', 'ring', 'init']) with the positional words they need, from --help. */
async function commands(path: string[] = []): Promise<Array<{ path: string[]; positionals: string[] }>> {
  const text = await help(path);
  const usage = text.split('\n')[0] ?? '';
  const subs = [...text.matchAll(/^ {2}session-migrate ((?:[a-z-]+ )*[a-z-]+)(?: +\[?<?[a-z-]+>?\]?)* {2}/gm)]
    .map((m) => m[1]!.split(' '))
    .filter((p) => p.length === path.length + 1 && p.slice(0, path.length).join(' ') === path.join(' '));
  if (subs.length === 0) {
    const positionals = [...usage.matchAll(/<([a-z-]+)>/g)].map(() => 'x');
    return [{ path, positionals }];
  }
  const out: Array<{ path: string[]; positionals: string[] }> = [];
  for (const s of subs) out.push(...(await commands(s)));
  return out;
}

/** One spelling of an option: the words, and the value yargs must give the canonical key. */
interface Spelling {
  words: string[];
  value: unknown;
}

function spellings(key: string, table: OptionTable): { good: Spelling[]; bad: string[][]; noValue: string[][] } {
  const camel = Parser.camelCase(key);
  const names = camel === key ? [key] : [key, camel];
  const choices = (table as unknown as { choices?: Record<string, unknown[]> }).choices?.[key];
  const good: Spelling[] = [];
  const bad: string[][] = [];
  /** A string or number option without a value: refused as "--KEY needs a value" (never its default). */
  const noValue: string[][] = [];
  if (table.boolean.includes(key)) {
    for (const n of names) {
      good.push({ words: [`--${n}`], value: true }, { words: [`--${n}=true`], value: true }, { words: [`--${n}`, 'true'], value: true });
      good.push(
        { words: [`--${n}=false`], value: false },
        { words: [`--no-${n}`], value: false },
        { words: [`--${n}`, 'false'], value: false },
      );
      bad.push([`--${n}=yes`], [`--${n}=1`], [`--${n}=`], [`--no-${n}=true`], [`--${n}`, `--no-${n}`]);
    }
    bad.push([`--${names[0]}`, `--${names[names.length - 1]}=false`]);
  } else if (table.array.includes(key)) {
    const v = String(choices?.[0] ?? 'a');
    for (const n of names) {
      good.push({ words: [`--${n}`, v], value: [v] }, { words: [`--${n}=${v}`], value: [v] });
      good.push({ words: [`--${n}`, v, 'b'], value: [v, 'b'] }, { words: [`--${n}=${v}`, `--${names[0]}`, 'b'], value: [v, 'b'] });
      bad.push([`--no-${n}`], [`--${n}`]);
    }
  } else {
    const isNumber = table.number.includes(key);
    const v = isNumber ? '7' : String(choices?.[0] ?? 'some value');
    const value = isNumber ? 7 : v;
    for (const n of names) {
      good.push({ words: [`--${n}`, v], value }, { words: [`--${n}=${v}`], value });
      bad.push([`--no-${n}`], [`--${n}`, v, `--${names[names.length - 1]}=${v}`]);
      if (isNumber) bad.push([`--${n}=abc`], [`--${n}`, 'abc'], [`--${n}=`], [`--${n}`, '']);
      // last, before `--`, before another option (a boolean: `apply --plan --dry-run`), before `-`
      noValue.push([`--${n}`], [`--${n}`, '--'], [`--${n}`, '-']);
      const flag = table.boolean.find((b) => b !== key && b !== 'help' && b !== 'version');
      if (flag !== undefined) noValue.push([`--${n}`, `--${flag}`]);
      const other = Object.keys(table.key).find((k) => k !== key && !table.boolean.includes(k) && !table.array.includes(k));
      if (other !== undefined)
        noValue.push([
          `--${n}`,
          `--${other}=${table.number.includes(other) ? '7' : String((table as unknown as { choices?: Record<string, unknown[]> }).choices?.[other]?.[0] ?? 'v')}`,
        ]);
    }
  }
  // Spellings yargs does not know are refused by its strict mode (never read as something else).
  if (key.includes('-')) bad.push([`--${key.replace(/-/g, '_')}`, ...(table.boolean.includes(key) ? [] : ['v'])]);
  bad.push([`--${key.toUpperCase()}`, ...(table.boolean.includes(key) ? [] : ['v'])]);
  return { good, bad, noValue };
}

describe('option spellings', () => {
  it('every command, every option: each spelling gives the same value, and what yargs would swallow is refused', async () => {
    const found = await commands();
    const paths = found.map((c) => c.path.join(' '));
    for (const c of [
      'audit',
      'keys generate',
      'keys id',
      'keys ring init',
      'plan',
      'apply',
      'verify',
      'rotate',
      'purge',
      'rollback',
      'codemod php',
      'codemod cdk',
      'generate php',
      'generate iac',
      'demo',
    ]) {
      expect(paths).toContain(c);
    }
    let checked = 0;
    for (const { path, positionals } of found) {
      const first = await parse([...path, ...positionals], true);
      expect(first.code, `${path.join(' ')}: ${first.stderr}`).toBe(0);
      const table = first.table!;
      // Required options get a value of their type, so that yargs' validation passes.
      const choicesOf = (k: string) => (table as unknown as { choices?: Record<string, unknown[]> }).choices?.[k];
      const words = [...(await help(path)).split('\n')[0]!.matchAll(/[<[]([a-z-]+)[>\]]/g)].map((m) => m[1]!);
      const required = Object.keys((table as unknown as { demandedOptions?: Record<string, unknown> }).demandedOptions ?? {}).filter(
        (k) => !words.includes(k),
      );
      const baseAll = [
        ...path,
        ...positionals,
        ...required.flatMap((k) => [`--${k}`, String(choicesOf(k)?.[0] ?? (table.number.includes(k) ? 7 : 'x'))]),
      ];
      const ok = await parse(baseAll);
      expect(ok.code, `${baseAll.join(' ')}: ${ok.stderr}`).toBe(0);
      for (const w of words) {
        const r = await parse([...baseAll, `--${w}`, 'x']);
        expect(r.code, `${path.join(' ')} --${w}: a positional is not an option`).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`<${w}> is a word of the command`));
      }
      const keys = Object.keys(table.key).filter((k) => k !== 'help' && k !== 'version' && !words.includes(k));
      expect(keys.length, path.join(' ')).toBeGreaterThan(0);
      for (const key of keys) {
        const { good, bad, noValue } = spellings(key, table);
        // A required option under test is given only in the spelling under test.
        const at = required.includes(key) ? baseAll.indexOf(`--${key}`) : -1;
        const base = at < 0 ? baseAll : [...baseAll.slice(0, at), ...baseAll.slice(at + 2)];
        for (const s of good) {
          const r = await parse([...base, ...s.words]);
          const where = `${path.join(' ')} ${s.words.join(' ')}`;
          expect(r.code, `${where}: ${r.stderr}`).toBe(0);
          expect(r.args?.[key], where).toEqual(s.value);
          // camelCase and kebab-case keys of the result agree, whichever was typed.
          expect(r.args?.[Parser.camelCase(key)], where).toEqual(s.value);
          checked++;
        }
        for (const words of bad) {
          const r = await parse([...base, ...words]);
          const where = `${path.join(' ')} ${words.join(' ')}`;
          expect(r.code, `${where} must be refused`).toBe(2);
          expect(r.args, `${where} must not reach the command`).toBeUndefined();
          expect(r.stderr.trim().split('\n'), where).toHaveLength(1);
          expect(r.stderr, where).toMatch(/^session-migrate: /);
          checked++;
        }
        for (const words of noValue) {
          const r = await parse([...base, ...words]);
          const where = `${path.join(' ')} ${words.join(' ')}`;
          expect(r.code, `${where} must be refused`).toBe(2);
          expect(r.args, `${where} must not reach the command`).toBeUndefined();
          // (a lone "-" also says that standard input or output is not supported)
          expect(r.stderr, where).toMatch(new RegExp(`^session-migrate: --${key} needs a value(: "-" .*)?\n$`));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('says what is wrong, naming the option as documented', async () => {
    expect((await parse(['apply', '--dryRun=yes'])).stderr).toMatch(/--dry-run takes no value, or =true \/ =false \(got "yes"\)/);
    expect((await parse(['purge', '--dry-run', '--no-dryRun'])).stderr).toMatch(/--dry-run given more than once/);
    expect((await parse(['keys', 'id', '--key-file', 'a', '--keyFile=b'])).stderr).toMatch(/--key-file given more than once/);
    expect((await parse(['keys', 'id', '--no-key-file'])).stderr).toMatch(/--key-file takes a value; --no-key-file is not an option/);
    expect((await parse(['apply', '--workers=many'])).stderr).toMatch(/--workers must be a number/);
    // Without a value, a string or number option is refused, never its default or ignored.
    expect((await parse(['apply', '--plan', '--dry-run'])).stderr).toBe('session-migrate: --plan needs a value\n');
    expect((await parse(['plan', '--source', 'files:/x', '--target', 'redis://127.0.0.1:1/0', '--out'])).stderr).toBe(
      'session-migrate: --out needs a value\n',
    );
    // "-" is not taken as standard output: said so, not just "needs a value".
    expect(await parse(['keys', 'generate', '--out', '-'])).toMatchObject({
      code: 2,
      stderr: 'session-migrate: --out needs a value: "-" (standard input or output) is not supported, give a file path or value\n',
    });
    for (const argv of [
      ['audit', '--fail-on'],
      ['audit', '--fail-on', '--sarif'],
      ['audit', '--failOn'],
    ]) {
      expect(await parse(argv)).toMatchObject({ code: 2, stderr: 'session-migrate: --fail-on needs a value\n' });
    }
    expect(await parse(['audit', '--host'])).toMatchObject({ code: 2, stderr: 'session-migrate: --host needs a value\n' });
    expect((await parse(['apply', '--workers='])).stderr).toMatch(/--workers must be a number/);
    // An empty value given on purpose is a value: the command judges it (PHP_INI_SCAN_DIR="" = none).
    expect((await parse(['audit', '--ini', 'x', '--scan-dir='])).code).toBe(0);
    expect((await parse(['audit', '--ini', 'x', '--scan-dir', ''])).code).toBe(0);
    // A negative number is a value (yargs takes it as one); the command judges its range.
    expect((await parse(['apply', '--workers', '-1'])).code).toBe(0);
    expect((await parse(['audit', '--docroot'])).stderr).toMatch(/--docroot needs a value/);
    expect((await parse(['audit', '--from_collected', 'x'])).stderr).toMatch(/--from_collected is not an option: write --from-collected/);
    expect((await parse(['audit', '--from-collectd', 'x'])).stderr).toMatch(/Unknown argument: --from-collectd \(see --help\)/);
    // yargs names an unknown option without its dashes ("Unknown argument: plan" for --plan given to
    // plan reads as the command refused): written as typed; a stray word stays a word.
    expect((await parse(['plan', '--source', 'files:x', '--target', 'redis://127.0.0.1:1/0', '--plan', 'p.json'])).stderr).toMatch(
      /^session-migrate: Unknown argument: --plan \(see --help\)$/m,
    );
    expect((await parse(['apply', '--bogus=1', 'stray'])).stderr).toMatch(/Unknown arguments: --bogus, stray \(see --help\)/);
    expect((await parse(['apply', '--DRY-RUN'])).stderr).toMatch(/--DRY-RUN is not an option: write --dry-run/);
    expect((await parse(['codemod', 'php', 'x', '--dir', 'y'])).stderr).toMatch(/<dir> is a word of the command, not an option/);
    // Words after `--` would be passed on unread.
    expect((await parse(['apply', '--', 'extra'])).stderr).toMatch(/no command takes arguments after "--" \(got "extra"\)/);
    expect((await parse(['audit', 'collect-script', '--', '--dry-run=yes'])).code).toBe(2);
    expect((await parse(['apply', '--dry-run', '--'])).code).toBe(0);
  });
});

describe('no command given', () => {
  it('exits 2 naming every top-level command the program has (it left out purge and rollback)', async () => {
    const { code, stderr: err } = await parse([]);
    expect(code).toBe(2);
    const names = [...new Set((await commands()).map((c) => c.path[0]!))];
    expect(names).toEqual(expect.arrayContaining(['purge', 'rollback', 'plan', 'apply', 'verify']));
    for (const name of names) expect(err, name).toMatch(new RegExp(`\\b${name}\\b`));
  });
});

describe('a required positional argument left out', () => {
  it('codemod php without DIR: one line naming <dir>, exit 2 (it printed yargs\' "Not enough non-option arguments: got 0, need at least 1")', async () => {
    const { code, stderr: err } = await parse(['codemod', 'php']);
    expect(code).toBe(2);
    expect(err).toBe('session-migrate: Missing required argument: <dir> (session-migrate codemod php <dir>) (see --help)\n');
  });

  it('every command with a <positional>: without it, one line naming it, as a missing option is named', async () => {
    const needing = (await commands()).filter((c) => c.positionals.length > 0);
    expect(needing.map((c) => c.path.join(' '))).toEqual(expect.arrayContaining(['codemod php', 'codemod cdk']));
    for (const { path } of needing) {
      const names = [...(await help(path)).split('\n')[0]!.matchAll(/<([a-z-]+)>/g)].map((m) => `<${m[1]!}>`);
      const r = await parse(path);
      expect(r.code, path.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), path.join(' ')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/non-option/);
      expect(r.stderr).toContain(`Missing required argument${names.length > 1 ? 's' : ''}: ${names.join(', ')}`);
    }
    // Options keep yargs' own wording.
    expect((await parse(['keys', 'ring', 'init'])).stderr).toBe('session-migrate: Missing required argument: out (see --help)\n');
  });
});

describe('a number option written other than in plain decimal', () => {
  it('--retries 0x10 is not 16: NaN reaches the command, whose range check refuses it (yargs read hex, exponents, binary)', async () => {
    for (const text of ['0x10', '1e1', '0b10', '0o10', ' 16', '+16', 'Infinity']) {
      for (const argv of [
        ['apply', '--retries', text],
        ['apply', `--retries=${text}`],
        ['apply', `--retryDelayMs=${text}`],
      ]) {
        const r = await parse(argv);
        expect(r.code, argv.join(' ')).toBe(0);
        const key = argv[1]!.startsWith('--retryDelayMs') ? 'retry-delay-ms' : 'retries';
        expect(Number.isNaN(r.args![key]), argv.join(' ')).toBe(true);
        expect(Number.isNaN(r.args![Parser.camelCase(key)]), argv.join(' ')).toBe(true);
      }
    }
    // Plain decimal (also negative, with a fraction) is what it says; the command judges the range.
    for (const [text, value] of [
      ['16', 16],
      ['-1', -1],
      ['2.5', 2.5],
      ['0016', 16],
    ] as const) {
      expect((await parse(['apply', '--retries', text])).args!['retries']).toBe(value);
    }
    // Not a number at all keeps its own message.
    expect((await parse(['apply', '--retries', 'abc'])).stderr).toBe('session-migrate: --retries must be a number\n');
  });

  it("the command refuses it with the option's one-line error, exit 2 (demo --users, plan --gc-maxlifetime, --key-command-timeout)", async () => {
    stderr = '';
    expect(await main(['demo', '--users', '0x5'])).toBe(2);
    expect(stderr).toBe('session-migrate: --users must be a whole number from 1 to 200, digits only\n');
    stderr = '';
    expect(
      await main([
        'plan',
        '--source',
        'files:/nonexistent',
        '--target',
        'redis://127.0.0.1:1/0',
        '--key-file',
        '/nonexistent',
        '--gc-maxlifetime',
        '1e3',
      ]),
    ).toBe(2);
    expect(stderr).toBe('session-migrate: --gc-maxlifetime must be a whole number of seconds from 1 to 2147483647, digits only\n');
    stderr = '';
    expect(await main(['keys', 'id', '--key-command', 'true', '--keyCommandTimeout=0x10'])).toBe(2);
    // Before: "must be more than 0 and at most 3600 seconds", of a value (16, 10) that is.
    expect(stderr).toBe(
      'session-migrate: --key-command-timeout must be a number of seconds more than 0 and at most 3600, in decimal digits (e.g. 30 or 2.5)\n',
    );
    stderr = '';
    expect(await main(['keys', 'id', '--key-command', 'true', '--key-command-timeout', '1e1'])).toBe(2);
    expect(stderr).toBe(
      'session-migrate: --key-command-timeout must be a number of seconds more than 0 and at most 3600, in decimal digits (e.g. 30 or 2.5)\n',
    );
  });
});

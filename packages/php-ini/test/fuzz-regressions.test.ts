/**
 * Texts on which the fuzz test (fuzz-vs-php.test.ts, FUZZ_SEED=4242 FUZZ_N=1500: cases #790 and #1312)
 * found this engine differing from PHP. Expected values recorded from `php -n -c FILE` (PHP 8.2.36):
 * `get_cfg_var()` of the key and the syntax error PHP prints.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfiguration } from '../src/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'php-ini-regress-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function load(text: string) {
  const file = join(tmp, 'php.ini');
  writeFileSync(file, text);
  const cfg = loadConfiguration({ iniPath: file, noIni: true, env: {} });
  const err = cfg.errors.find((e) => e.kind === 'syntax');
  return { value: cfg.settings.get('k')?.value, error: err ? err.message : null };
}

describe('a comment on the last line, with no newline after it', () => {
  // [text, get_cfg_var('k')]
  const cases: Array<[string, string]> = [
    ['k = abc ;c', 'abc'],
    ['k = abc ;', 'abc'],
    ['k = abc  ;cc', 'abc'],
    ['k = abc\t;c', 'abc'],
    ['k = a b ;c', 'a b'],
    ['k = PHP_INT_MAX ;c', '9223372036854775807'],
    ['k = ${X} ;c', ''],
    ['k = abc ', 'abc '], // no comment: the blanks stay
    ['k = abc #c', 'abc #c'],
    ['k = abc ;c\n', 'abc'],
  ];
  for (const [text, value] of cases) {
    it(JSON.stringify(text), () => expect(load(text)).toEqual({ value, error: null }));
  }
});

describe('a number after a boolean keyword is TC_NUMBER in the syntax error', () => {
  // [text, get_cfg_var('k'), the error PHP prints]
  const cases: Array<[string, string, string]> = [
    ['k =on 12\n', '1', 'syntax error, unexpected TC_NUMBER'],
    ['k = yes 1.5\n', '1', 'syntax error, unexpected TC_NUMBER'],
    ['k = none 3\n', '', 'syntax error, unexpected TC_NUMBER'],
    ['k = true 1a\n', '1', 'syntax error, unexpected TC_STRING'],
    ['k = on x\n', '1', 'syntax error, unexpected TC_CONSTANT'],
  ];
  for (const [text, value, error] of cases) {
    it(JSON.stringify(text), () => expect(load(text)).toEqual({ value, error }));
  }
  it('numbers elsewhere in a value are part of it', () => {
    expect(load('k = -5 x\n')).toEqual({ value: '-5 x', error: null });
    expect(load('k = 1 2\n')).toEqual({ value: '1 2', error: null });
  });
});

/**
 * Differential fuzzing against the real php binary: random php.ini texts built from the tokens
 * that matter to PHP's scanner (quotes, escapes, ; # = operators, booleans, constants, ${},
 * sections, offsets, CR/LF/CRLF, a missing final newline) go through `php -n -c FILE` and through
 * parseIni + loadConfiguration; get_cfg_var() of every key the generator can produce, and the
 * syntax error (message and line), must be identical. Fixed seed: a failure is reproducible.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfiguration, type Configuration } from '../src/index.ts';

const KEYS = ['k1', 'k2', 'k3', 'sec.x', '#k', 'ON_k', 'ext', 'extension'];
/** Keys to compare: the generated ones plus the [PATH=/x] / [HOST=H] / [Hosting] table names. */
const DUMP_KEYS = [...KEYS, '/x', 'h', 'ing'];
const VALUE_PIECES = [
  'abc',
  '/var/lib/php',
  '2;/x',
  'on',
  'Off',
  'none',
  'YES',
  'null',
  'true',
  'E_ALL',
  'PHP_OS',
  'E_NOTICE',
  'e_all',
  '12',
  '-3',
  '1.5',
  '.5',
  '|',
  '&',
  '^',
  '~',
  '!',
  '(',
  ')',
  '"a;b"',
  '"x\\"y"',
  '"c:\\\\d\\"',
  '"$x"',
  '"${ENVX}"',
  "'raw;$'",
  "''",
  '${k1}',
  '${ENVX}',
  '${}',
  '$',
  '$ x',
  '=',
  ' ;c',
  ';c',
  ' ',
  '  ',
  '\t',
  '#',
  'a#b',
  '"multi\nline"',
  "'q\nq'",
  '${k1',
  'on x',
  'x on',
  'PHP_INT_MAX',
  '"',
  ':-',
  '${ENVX:-d}',
  '\\',
  'a]b',
  '[',
  ']',
];
const EOLS = ['\n', '\n', '\n', '\r\n', '\r'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function genFile(r: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  const lines: string[] = [];
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    const kind = r();
    let line: string;
    if (kind < 0.55) {
      const nv = 1 + Math.floor(r() * 3);
      let v = '';
      for (let j = 0; j < nv; j++) v += (r() < 0.3 ? ' ' : '') + pick(VALUE_PIECES);
      line = `${r() < 0.2 ? '  ' : ''}${pick(KEYS)}${r() < 0.3 ? '' : ' '}=${r() < 0.3 ? '' : ' '}${v}`;
    } else if (kind < 0.65) line = `${pick(KEYS)}[${r() < 0.5 ? '' : pick(['o', '1', ' x ', 'E_ALL'])}] = ${pick(VALUE_PIECES)}`;
    else if (kind < 0.75)
      line = `[${pick(['Session', 'PATH=/x', 'HOST=H', 'path=/x/', 'Hosting', '${ENVX}', 'a b', 'x]y'])}]${pick(['', ' ', ' k1 = v'])}`;
    else if (kind < 0.85) line = pick(['; comment', '# hash line', '# with (paren)', 'bare key', '', 'on', 'k1', '=x']);
    else line = `${pick(KEYS)} = ${pick(VALUE_PIECES)}${pick(VALUE_PIECES)}`;
    lines.push(line);
  }
  let text = '';
  for (const l of lines) text += l + pick(EOLS);
  if (r() < 0.25) text = text.replace(/(\r\n|\r|\n)$/, '');
  return text;
}

const dumpCode = `$o = []; foreach (${JSON.stringify(DUMP_KEYS).replace(/\$/g, '\\$')} as $k) { $v = get_cfg_var($k); $o[$k] = is_array($v) ? ['array' => array_map(fn($a, $b) => [(string) $a, is_array($b) ? ['array' => array_map(fn($c, $d) => [(string) $c, $d], array_keys($b), $b)] : $b], array_keys($v), $v)] : $v; } echo json_encode($o);`;

type CfgValue = string | false | { array: Array<[string, string]> };

function arrayPairs(list: Array<{ offset: string; value: string }>): Array<[string, string]> {
  let next = 0;
  const keyed = new Map<string, string>();
  for (const e of list) {
    let key = e.offset;
    if (key === '') key = String(next);
    if (/^(0|-?[1-9]\d*)$/.test(key) && Number(key) >= next) next = Number(key) + 1;
    keyed.set(key, e.value);
  }
  return [...keyed];
}

function ours(cfg: Configuration): Record<string, CfgValue> {
  const out: Record<string, CfgValue> = {};
  for (const k of DUMP_KEYS) {
    const arr = cfg.arrays.get(k);
    const s = cfg.settings.get(k);
    const section = cfg.pathSections.get(k) ?? cfg.hostSections.get(k);
    if (arr) {
      const pairs: Array<[string, string]> = [];
      let next = 0;
      const keyed = new Map<string, string>();
      for (const e of arr) {
        let key = e.offset ?? '';
        if (key === '') key = String(next);
        if (/^(0|-?[1-9]\d*)$/.test(key) && Number(key) >= next) next = Number(key) + 1;
        keyed.set(key, e.value);
      }
      for (const [a, b] of keyed) pairs.push([a, b]);
      out[k] = { array: pairs };
    } else if (section) {
      out[k] = { array: [...section].map(([a, b]) => [a, b.array ? { array: arrayPairs(b.array) } : b.value] as [string, string]) };
    } else out[k] = s ? s.value : false;
  }
  return out;
}

// php is required (scripts/setup.sh installs it): a missing php fails here instead of skipping the oracle.
const tmp = mkdtempSync(join(tmpdir(), 'php-ini-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('fuzz: parseIni/loadConfiguration vs real php -n -c', () => {
  // FUZZ_SEED / FUZZ_N explore further; the committed run uses the fixed seed
  const r = rng(Number(process.env.FUZZ_SEED ?? 20260101));
  const N = Number(process.env.FUZZ_N ?? 250);
  for (let i = 0; i < N; i++) {
    const text = genFile(r);
    it(`#${i} ${JSON.stringify(text).slice(0, 70)}`, () => {
      const file = join(tmp, `f${i}.ini`);
      writeFileSync(file, text);
      const env = { ENVX: 'envx' };
      const p = spawnSync('env', ['-i', 'ENVX=envx', 'php', '-n', '-c', file, '-r', dumpCode], { encoding: 'utf8' });
      if (/Out of memory/.test(p.stdout + p.stderr)) {
        // PHP aborts at startup (e.g. ${key} naming an array): we must say so
        const cfg = loadConfiguration({ iniPath: file, noIni: true, env });
        expect(cfg.errors.map((e) => e.message).join('\n'), JSON.stringify(text)).toMatch(/aborts at startup/);
        return;
      }
      const live = JSON.parse(p.stdout.slice(p.stdout.indexOf('{'))) as Record<string, CfgValue>;
      const liveErr = /syntax error, (unexpected [^\n]*?)(?:, expecting [^\n]*)? in .* on line (\d+)/.exec(p.stderr);
      const cfg = loadConfiguration({ iniPath: file, noIni: true, env });
      expect(ours(cfg), JSON.stringify(text)).toEqual(live);
      const err = cfg.errors.find((e) => e.kind === 'syntax');
      expect(
        err ? [err.message.replace('syntax error, ', '').replace(/, expecting .*$/, ''), err.line] : null,
        JSON.stringify(text),
      ).toEqual(liveErr ? [liveErr[1], Number(liveErr[2])] : null);
    });
  }
});

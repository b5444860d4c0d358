/**
 * classifySession (a validating pass that builds no values, src/validate.ts) must classify every input
 * exactly like classifySessionReference (the same classification computed from full decodes, whose
 * verdicts the differential tests check against PHP). Corpus: the whole differential corpus (shared
 * inputs, PHP-encoded payloads, the same read with the other handlers, hand-written grammar corners, the
 * seeded mutations), a larger mutation run, grammar fuzz aimed at what the validator tracks without values
 * (back-reference slots over repeated and numeric keys, igbinary reference and string tables, class
 * names, depth), and garbage. Every payload is classified for all four configured handlers.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type SerializeHandler, SERIALIZE_HANDLERS, classifySession, decodeSession, sniffFormat } from '../src/index.ts';
import { classifySessionReference, decodeVerdict } from '../src/session.ts';
import { validateSession } from '../src/validate.ts';
import { type Case, crossCases, edgeCases, generatedCases, mutatedCases, mutations, prng, sharedCases } from './corpus.ts';
import { show } from './helpers.ts';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const IG = (h: string): Buffer => Buffer.from('00000002' + h.replace(/\s+/g, ''), 'hex');

// ---- grammar fuzz: php / php_binary / php_serialize -------------------------------------------------

/** Keys that collide in PHP in non-obvious ways (numeric strings, non-canonical ints, clamping, S:). */
const PHP_KEYS = [
  'i:0;',
  'i:1;',
  'i:-1;',
  'i:+1;',
  'i:01;',
  'i:-0;',
  'i:00;',
  's:1:"0";',
  's:1:"1";',
  's:2:"-1";',
  's:2:"01";',
  's:2:"-0";',
  's:1:"a";',
  's:1:"b";',
  'S:1:"\\61";',
  'S:1:"\\30";',
  'S:2:"\\2d1";',
  'i:9223372036854775807;',
  'i:9223372036854775808;',
  'i:-9223372036854775809;',
  's:19:"9223372036854775807";',
  's:19:"9223372036854775808";',
  's:20:"-9223372036854775808";',
  'i:9007199254740993;',
  's:16:"9007199254740993";',
  'i:000000000000000000000007;',
  's:1:"7";',
  's:0:"";',
  's:2:"\xc3\xa9";',
  's:1:"\xe9";',
];
const CLASS_NAMES = ['stdClass', 'STDCLASS', 'Foo', 'App\\User', 'Caf\u00e9', 'CartItem'];
/** Class names, some refusing unserialization (the Kelvin-sign one does not: PHP lower-cases ASCII only). Rare, or nothing would pass. */
const BAD_CLASS_NAMES = ['Closure', 'closure', 'WeakMap', 'Wea\u212Amap', 'ReflectionClass'];
const className = (rand: () => number): string => {
  const list = rand() < 0.04 ? BAD_CLASS_NAMES : CLASS_NAMES;
  return list[Math.floor(rand() * list.length)]!;
};

/**
 * A random php / php_binary / php_serialize payload. Slots are counted like PHP numbers them (every value
 * but `R:`, in order), so most back-references point at an existing slot; `r:` mostly at an object.
 */
function phpFuzz(rand: () => number, handler: 'php' | 'php_binary' | 'php_serialize'): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (n: number): number => Math.floor(rand() * n);
  /** a declared count that is sometimes wrong */
  const declared = (n: number): number => (rand() < 0.04 ? Math.max(0, n + pick([-1, 1, 2])) : n);
  let slots = handler === 'php_serialize' ? 1 : 0;
  const objects: number[] = [];
  const value = (depth: number): string => {
    const r = rand();
    if (r < 0.07 && slots > 0) return `R:${rand() < 0.95 ? 1 + int(slots) : pick([0, slots + 1, slots + 5])};`;
    if (r < 0.13 && slots > 0) {
      const id = objects.length > 0 && rand() < 0.85 ? pick(objects) : 1 + int(slots + 1);
      objects.push(++slots);
      return `r:${id};`;
    }
    const slot = ++slots;
    if (r < 0.4)
      return pick([
        'N;',
        'b:1;',
        'b:0;',
        'i:5;',
        'i:-7;',
        'i:99999999999999999999;',
        'd:1.5;',
        'd:-INF;',
        'd:.5e3;',
        's:1:"x";',
        's:0:"";',
        'S:1:"\\41";',
      ]);
    if (r < 0.44) {
      objects.push(slot);
      return pick(['C:3:"Foo":1:{x}', 'E:10:"Role:Admin";', 'C:8:"stdClass":0:{}', 'E:4:"Role";']);
    }
    if (depth > 4) return 'i:1;';
    const big = depth <= 1 && rand() < 0.08;
    const n = big ? 17 + int(30) : int(6);
    // half of the containers draw their keys from 2-3 keys only: many repeated (and equivalent) keys
    const pool = rand() < 0.5 ? PHP_KEYS : Array.from({ length: 2 + int(2) }, () => pick(PHP_KEYS));
    const body = (): string => Array.from({ length: n }, () => pick(pool) + value(depth + 1)).join('');
    if (r < 0.72) return `a:${declared(n)}:{${body()}}`;
    objects.push(slot);
    const cls = Buffer.from(className(rand), 'utf8').toString('latin1');
    return `O:${cls.length}:"${cls}":${declared(n)}:{${body()}}`;
  };
  const names = ['a', 'b', 'a', '0', '-1', '07', 'k'.repeat(130), 'caf\xe9', 'x'];
  const n = 1 + int(5);
  if (handler === 'php_serialize') {
    const body = Array.from({ length: n }, () => pick(PHP_KEYS) + value(1)).join('');
    return B(rand() < 0.9 ? `a:${declared(n)}:{${body}}${rand() < 0.1 ? 'junk' : ''}` : value(0));
  }
  return B(
    Array.from({ length: n }, () => {
      const name = handler === 'php' ? pick(names) : pick(names.filter((x) => x.length < 128));
      return handler === 'php' ? `${name}|${value(0)}` : `${String.fromCharCode(name.length)}${name}${value(0)}`;
    }).join(''),
  );
}

// ---- grammar fuzz: igbinary ----------------------------------------------------------------------------

/**
 * A random igbinary payload. The value-reference table (arrays, objects, referenced scalars) and the
 * string table are counted as igbinary fills them, so most ids point at an existing entry.
 */
function igbinaryFuzz(rand: () => number): { bytes: Buffer; usedRefs: boolean } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (n: number): number => Math.floor(rand() * n);
  const byte = (n: number): string => (n & 0xff).toString(16).padStart(2, '0');
  let refs = 0;
  let strings = 0;
  let usedRefs = false;
  const str8 = (s: string): string => {
    strings++;
    return `11${byte(Buffer.byteLength(s))}${hex(s)}`;
  };
  const strId = (): string => `0e${byte(rand() < 0.9 ? int(strings + 1) : strings + 3)}`;
  const declared = (n: number): number => (rand() < 0.04 ? Math.max(0, n + pick([-1, 1])) : n);
  const key = (): string => {
    const r = rand();
    if (r < 0.35)
      return pick([
        '0600',
        '0601',
        '0701',
        '0800ff',
        '0a00000007',
        '20ffffffffffffffff',
        '208000000000000000',
        '210080000000000000',
        '200020000000000001',
      ]);
    if (r < 0.75) return str8(pick(['a', '7', '-0', 'b', 'k'.repeat(130), '9007199254740993']));
    if (r < 0.9) return strings > 0 ? strId() : '0d';
    return pick(['0d', '00', '0d', '00', '28']);
  };
  const value = (depth: number, wrapped = false): string => {
    const r = rand();
    if (r < 0.3) {
      const v = pick([
        '00',
        '04',
        '05',
        '0605',
        '0705',
        '08ffff',
        '20ffffffffffffffff',
        '218000000000000000',
        '0c3ff8000000000000',
        '0d',
        'id',
        'str',
        'str',
        '2600000000000000017a',
        '1303000000',
      ]);
      if (wrapped) refs++; // a referenced scalar takes a value-reference slot
      if (v === 'id') return strings > 0 ? strId() : '0d';
      if (v === 'str') return str8(pick(['x', '', 'yy']));
      if (v.startsWith('26')) strings++;
      return v;
    }
    if (r < 0.38) {
      usedRefs = true;
      return `${pick(['01', '22'])}${byte(rand() < 0.9 ? int(Math.max(refs, 1)) : refs + 2)}`;
    }
    if (r < 0.46 && !wrapped) return `25${rand() < 0.3 ? '25' : ''}${value(depth + 1, true)}`;
    const c = className(rand);
    const classHead = (): string => {
      if (rand() < 0.2 && strings > 0) return `1a${byte(int(strings + 1))}`;
      strings++;
      return `17${byte(Buffer.byteLength(c))}${hex(c)}`;
    };
    if (r < 0.52) {
      // Serializable object, enum case (string, empty string, string id), empty object
      const head = classHead();
      refs++;
      const kind = int(5);
      if (kind === 0) return `${head}1d0378797a`;
      if (kind === 1) return `${head}27${str8('Admin')}`;
      if (kind === 2) {
        strings++;
        return `${head}271100`;
      }
      if (kind === 3) return `${head}27${strings > 0 ? strId() : '0d'}`;
      return `${head}1400`;
    }
    if (depth > 4) return '0601';
    const n = depth <= 1 && rand() < 0.08 ? 17 + int(30) : int(5);
    const head = r < 0.8 ? '' : classHead();
    refs++;
    const body = Array.from({ length: n }, () => {
      const k = key();
      return k + value(depth + 1);
    }).join('');
    return `${head}14${byte(declared(n))}${body}`;
  };
  let root: string;
  if (rand() < 0.9) {
    const n = int(6);
    refs++;
    root =
      `14${byte(declared(n))}` +
      Array.from({ length: n }, () => {
        const k = key();
        return k + value(1);
      }).join('');
  } else {
    root = value(0);
  }
  return { bytes: IG(root + (rand() < 0.05 ? 'ff' : '')), usedRefs };
}

// ---- corpus --------------------------------------------------------------------------------------------

const generated = generatedCases();
const differentialCorpus: Case[] = [...sharedCases(), ...generated, ...crossCases(generated), ...edgeCases, ...mutatedCases(generated)];

function fuzzCorpus(): Case[] {
  const rand = prng(424242);
  const out: Case[] = [];
  for (let i = 0; i < 2500; i++) {
    const handler = (['php', 'php_binary', 'php_serialize'] as const)[i % 3]!;
    out.push({ label: `fuzz ${handler} #${i}`, handler, bytes: phpFuzz(rand, handler) });
  }
  for (let i = 0; i < 2500; i++) {
    const { bytes, usedRefs } = igbinaryFuzz(rand);
    out.push({ label: `fuzz igbinary #${i}${usedRefs ? ' with refs' : ''}`, handler: 'igbinary', bytes });
  }
  return out;
}
const fuzz = fuzzCorpus();

/** Corners of the validator's own shortcuts (class names, name dedup, numeric keys, depth, S: keys). */
const nested = (n: number, inner = 'i:1;'): string => 'a:1:{i:0;'.repeat(n) + inner + '}'.repeat(n);
const kelvin = Buffer.from('Wea\u212Amap', 'utf8').toString('latin1');
const corners: Case[] = [
  // U+212A KELVIN SIGN: PHP lower-cases class names in ASCII only, so this is not "weakmap" and is accepted.
  ['php', `a|O:${kelvin.length}:"${kelvin}":0:{}`],
  ['php', 'a|O:7:"WEAKMAP":0:{}'],
  ['php', 'a|O:8:"StdClasS":0:{}'],
  ['php', 'a|C:8:"stdclass":0:{}'],
  ['php', `a|O:${kelvin.length + 2}:"${kelvin}ok":0:{}`],
  ['php', Array.from({ length: 40 }, (_, i) => `k${i % 23}|i:${i};`).join('')],
  ['php', Array.from({ length: 100_000 }, (_, i) => `k${i}|i:${i};`).join('')],
  ['php', `${'k'.repeat(127)}|i:1;${'k'.repeat(128)}|i:2;-5|i:3;05|i:4;-0|i:5;99999999999999999999|i:6;`],
  ['php', `a|${nested(4096)}`],
  ['php', `a|${nested(4097)}`],
  ['php', `a|${nested(4095, 'O:8:"stdClass":0:{}')}`],
  ['php', `a|${nested(4096, 'O:8:"stdClass":0:{}')}`],
  ['php', `a|${nested(4096)}b|${nested(4096)}r|R:2;`],
  ['php', `a|a:40:{${Array.from({ length: 40 }, (_, i) => `i:${i % 19};O:8:"stdClass":0:{}`).join('')}}b|r:22;c|r:3;d|R:40;`],
  ['php', `a|a:30:{${Array.from({ length: 30 }, (_, i) => `s:2:"${String(i % 20).padStart(2, '0')}";i:${i};`).join('')}}b|R:3;c|R:25;`],
  ['php', 'a|a:3:{S:1:"\\61";O:8:"stdClass":0:{}s:1:"a";i:1;i:0;r:2;}'],
  ['php', 'a|O:3:"Foo":3:{i:5;O:3:"Foo":0:{}s:1:"5";i:1;i:1;r:2;}'],
  ['php', 'a|O:3:"Foo":2:{i:5;O:3:"Foo":0:{}s:1:"5";R:2;}'],
  ['php', 'a|a:2:{i:5;i:1;s:1:"5";R:3;}'],
  // a repeated key whose new value is R: to an object: the old slot now reaches the object
  ['php', 'a|a:3:{i:0;O:8:"stdClass":0:{}i:1;i:5;i:1;R:2;}b|r:3;'],
  ['php', 'a|a:3:{i:0;i:7;i:1;O:8:"stdClass":0:{}i:1;R:2;}b|r:3;'],
  // equivalent keys written differently: the second value replaces the first (r:3 then sees an int)
  ...['i:+1;', 'i:01;', 's:1:"1";', 'S:1:"\\31";', 'i:00000000000000000000001;'].map((k) => [
    'php',
    `a|a:2:{i:1;O:8:"stdClass":0:{}${k}i:5;}b|r:2;`,
  ]),
  ...['i:-0;', 'i:+0;', 'i:00;', 's:1:"0";', 's:2:"-0";'].map((k) => ['php', `a|O:3:"Foo":2:{s:1:"0";O:3:"Bar":0:{}${k}i:5;}b|r:2;`]),
  // containers past SCAN_LIMIT keys (keys looked up in a Map): a repeated key replaces an object / is R: to itself
  ['php', `a|a:40:{${Array.from({ length: 40 }, (_, i) => (i < 19 ? `i:${i};O:8:"stdClass":0:{}` : `i:${i - 19};i:5;`)).join('')}}b|r:3;`],
  ['php', `a|a:40:{${Array.from({ length: 40 }, (_, i) => (i < 19 ? `i:${i};O:8:"stdClass":0:{}` : `i:${i - 19};i:5;`)).join('')}}b|r:21;`],
  [
    'php',
    `a|O:3:"Foo":25:{${Array.from({ length: 25 }, (_, i) => (i < 20 ? `s:2:"p${i % 10}";O:3:"Bar":0:{}` : `i:${i};i:5;`)).join('')}}b|r:3;c|r:13;`,
  ],
  ['php', `a|a:21:{${Array.from({ length: 20 }, (_, i) => `s:1:"${String.fromCharCode(97 + i)}";i:${i};`).join('')}s:1:"d";R:5;}`],
  ['php', `a|a:21:{${Array.from({ length: 20 }, (_, i) => `s:1:"${String.fromCharCode(97 + i)}";i:${i};`).join('')}s:1:"d";R:4;}`],
  ['php_serialize', `a:21:{${Array.from({ length: 20 }, (_, i) => `i:${i};O:1:"X":0:{}`).join('')}i:17;r:19;}`],
  ['php', 'a|a:2:{i:9223372036854775807;O:8:"stdClass":0:{}i:99999999999999999999;i:5;}b|r:2;'],
  ['php', 'a|a:2:{i:-9223372036854775808;O:8:"stdClass":0:{}i:-99999999999999999999;i:5;}b|r:2;'],
  ['php', 'a|a:2:{i:9223372036854775808;O:3:"Foo":0:{}s:19:"9223372036854775807";i:1;}b|r:2;'],
  ['php_serialize', 'a:3:{s:16:"9007199254740993";i:1;i:-9007199254740993;i:2;s:2:"-0";i:3;}'],
  ['php_serialize', `a:2:{s:128:"${'k'.repeat(128)}";i:1;S:3:"\\37\\38";i:2;}junk`],
  ['php_serialize', `a:1:{s:1:"a";${nested(4095)}}`],
  ['php_serialize', `a:1:{s:1:"a";${nested(4096)}}`],
  ['php_serialize', 'O:8:"stdClass":0:{}'],
  ['php_serialize', 'a:1:{i:0;R:1;}'],
  ['php_serialize', 'N;trailing'],
].map(([handler, p], i) => ({ label: `corner #${i}`, handler: handler as SerializeHandler, bytes: B(p!) }));
// scratch growth: slot table, positions, key arena (long S: keys), frame stacks (igbinary has no depth limit)
corners.push(
  { label: 'many slots then R:', handler: 'php', bytes: B(`${Array.from({ length: 1000 }, (_, i) => `k${i}|i:${i};`).join('')}z|R:999;`) },
  {
    label: 'long S: keys in tracking mode',
    handler: 'php',
    bytes: B(`a|a:2:{S:2000:"${'\\41'.repeat(2000)}";O:1:"X":0:{}S:2000:"${'A'.repeat(2000)}";i:1;}b|r:2;`),
  },
  {
    label: 'long S: keys in tracking mode, distinct',
    handler: 'php',
    bytes: B(`a|a:2:{S:2000:"${'\\41'.repeat(2000)}";O:1:"X":0:{}S:2000:"${'A'.repeat(1999)}B";i:1;}b|r:2;`),
  },
  { label: 'igbinary 5000 levels', handler: 'igbinary', bytes: IG(`1401 110161 ${'1401 0600 '.repeat(5000)} 0601`) },
  { label: 'igbinary 5000 levels, one short', handler: 'igbinary', bytes: IG(`1401 110161 ${'1401 0600 '.repeat(5000)}`) },
);
corners.push(
  {
    label: 'igbinary kelvin',
    handler: 'igbinary',
    bytes: IG(`1401 1101 61 17${(9).toString(16).padStart(2, '0')}${hex('Wea\u212Amap')} 1400`),
  },
  { label: 'igbinary root object', handler: 'igbinary', bytes: IG(`1703 ${hex('Foo')} 1402 0601 0601 1101 37 0602`) },
  { label: 'igbinary root stdClass', handler: 'igbinary', bytes: IG(`1708 ${hex('stdClass')} 1401 20ffffffffffffffff 0601`) },
  { label: 'igbinary big int key', handler: 'igbinary', bytes: IG('1402 200020000000000001 0601 210020000000000000 0601') },
  { label: 'igbinary string64 key', handler: 'igbinary', bytes: IG(`1401 260000000000000002 ${hex('42')} 0601`) },
);

/** Garbage: random bytes and grammar soup, as in malformed.test.ts. */
function garbage(): Case[] {
  const rand = prng(99);
  const alphabet = B('aOCsSirRNbdE:;{}"|0123456789-+.\\\x00\x01\x06\x11\x14\x17\x22\x25\x80\xff');
  const out: Case[] = [];
  for (let n = 0; n < 3000; n++) {
    const len = Math.floor(rand() * 80);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = n % 2 === 0 ? alphabet[Math.floor(rand() * alphabet.length)]! : Math.floor(rand() * 256);
    if (n % 3 === 0 && len >= 4) b.writeUInt32BE(2, 0);
    out.push({ label: `garbage #${n}`, handler: SERIALIZE_HANDLERS[n % 4]!, bytes: b });
  }
  return out;
}

/** More mutations than the differential run can afford (no PHP here), of PHP's payloads, corners and fuzz. */
function extraMutations(): Case[] {
  const rand = prng(7);
  const bases = [...generated, ...edgeCases, ...corners.filter((c) => c.bytes.length < 4000), ...fuzz.slice(0, 600)];
  return bases.filter((c) => c.bytes.length <= 4000).flatMap((c) => mutations(c, rand, 8));
}

// ---- the comparison ------------------------------------------------------------------------------------

/** Differences between fast and reference for one payload, under every configured handler. */
function differences(c: Case): string[] {
  const out: string[] = [];
  for (const h of SERIALIZE_HANDLERS) {
    const fast = classifySession(c.bytes, h);
    const ref = classifySessionReference(c.bytes, h);
    if (!isDeepStrictEqual(fast, ref)) out.push(`${c.label} configured ${h}: fast ${show(fast)} reference ${show(ref)}`);
    // the validator itself, not only through classification (which would fall back to the decoder if it threw)
    let verdict: unknown;
    try {
      verdict = validateSession(c.bytes, h);
    } catch (e) {
      verdict = `threw ${String(e)}`;
    }
    const expected = decodeVerdict(c.bytes, h);
    if (!isDeepStrictEqual(verdict, expected)) out.push(`${c.label} validate ${h}: ${show(verdict)} decoder ${show(expected)}`);
  }
  if (sniffFormat(c.bytes) !== classifySessionReference(c.bytes, 'php').format) out.push(`${c.label}: sniffFormat differs`);
  return out;
}

function check(cases: Case[]): { problems: string[]; stats: Map<string, number> } {
  const problems: string[] = [];
  const stats = new Map<string, number>();
  const count = (k: string): void => {
    stats.set(k, (stats.get(k) ?? 0) + 1);
  };
  for (const c of cases) {
    problems.push(...differences(c));
    const ref = classifySessionReference(c.bytes, c.handler);
    count(ref.status);
    for (const w of ref.warnings) count(w);
    if (ref.status === 'ok' && (c.handler === 'igbinary' ? c.label.endsWith(' with refs') : /[rR]:\d/.test(c.bytes.toString('latin1')))) {
      count('ok-with-backrefs');
    }
  }
  return { problems: problems.slice(0, 20), stats };
}

describe('classifySession (validating pass) equals classifySessionReference (full decode)', () => {
  it('on the differential corpus: shared, PHP-encoded, cross-handler, grammar corners, seeded mutations', () => {
    expect(differentialCorpus.length).toBeGreaterThan(1500);
    const { problems, stats } = check(differentialCorpus);
    expect(problems).toEqual([]);
    expect(stats.get('ok')).toBeGreaterThan(300);
    expect(stats.get('corrupt')).toBeGreaterThan(300);
    expect(stats.get('ok-with-backrefs')).toBeGreaterThan(30);
  });

  it('on grammar fuzz aimed at back-references over repeated keys, igbinary tables and class names', () => {
    const { problems, stats } = check(fuzz);
    expect(problems).toEqual([]);
    // the fuzz is only useful if it produces both verdicts, and valid back-references
    expect(stats.get('ok')).toBeGreaterThan(500);
    expect(stats.get('corrupt')).toBeGreaterThan(500);
    expect(stats.get('ok-with-backrefs')).toBeGreaterThan(400);
    for (const w of [
      'int-out-of-range-clamped',
      'serializable-object',
      'enum-requires-class',
      'session-numeric-key',
      'session-key-too-long',
      'session-key-duplicate',
      'int-key-precision-lost',
      'trailing-bytes-ignored-by-php',
    ]) {
      expect(stats.get(w) ?? 0, w).toBeGreaterThan(5);
    }
  });

  it("on the validator's own corners, garbage, and a larger mutation run", () => {
    const cases = [...corners, ...garbage(), ...extraMutations()];
    expect(cases.length).toBeGreaterThan(10_000);
    const { problems } = check(cases);
    expect(problems).toEqual([]);
  });

  it('honours maxDepth like the decoder (0 = no limit)', () => {
    const p = B(`a|${nested(6)}b|${nested(5, 'O:8:"stdClass":0:{}')}`);
    const s = B(nested(6));
    for (const maxDepth of [0, 1, 5, 6, 7]) {
      for (const [bytes, h] of [
        [p, 'php'],
        [s, 'php_serialize'],
      ] as const) {
        const d = decodeSession(bytes, h, { maxDepth });
        expect(validateSession(bytes, h, maxDepth).ok, `${h} maxDepth ${maxDepth}`).toBe(d.ok);
      }
    }
  });
});

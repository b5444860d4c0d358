/**
 * Building blocks: float printing (against PHP's var_export), lossless key names, sniffing rules,
 * classification, the value model's identity / reference / cycle rules.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  type PhpValue,
  type SerializeHandler,
  SERIALIZE_HANDLERS,
  bytesToName,
  classifySession,
  decodeSession,
  phpFloatToString,
  phpKeyBytes,
  sniffFormat,
  toValueModel,
} from '../src/index.ts';
import { PHP_ARGS, generatePayloads, phpDecodeOk } from './helpers.ts';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

/** mulberry32 */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('phpFloatToString matches PHP var_export() (serialize_precision=-1)', () => {
  it('on special values, boundaries and 3000 random doubles', () => {
    const rand = prng(99);
    const values: number[] = [
      0,
      -0,
      1,
      -1,
      0.1,
      0.5,
      1.5,
      2.5,
      100,
      1e15,
      1e16,
      1e17,
      1e18,
      1e21,
      1e22,
      1e-4,
      1e-5,
      0.00012345,
      1.5e-7,
      5e-324,
      2.2250738585072014e-308,
      1.7976931348623157e308,
      123456789012345680,
      // eslint-disable-next-line no-loss-of-precision -- 9007199254740993 rounds, as PHP's literal does: the rounding is what is tested
      9007199254740993,
      1 / 3,
      2 / 3,
      Infinity,
      -Infinity,
      NaN,
      299792458,
      6.02214076e23,
      4.35,
      0.3,
    ];
    const buf = Buffer.alloc(8);
    for (let i = 0; i < 3000; i++) {
      for (let j = 0; j < 8; j++) buf[j] = Math.floor(rand() * 256);
      if (i % 3 === 0) buf[0] = (buf[0]! & 0x80) | (0x3f + (i % 6)); // exponents near 0 more often
      values.push(buf.readDoubleBE(0));
    }
    const hex = values.map((v) => {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      return b.toString('hex');
    });
    const php = execFileSync(
      'php',
      [
        ...PHP_ARGS,
        '-r',
        'while (($l = fgets(STDIN)) !== false) { $d = unpack("E", hex2bin(trim($l)))[1]; ' +
          'echo is_nan($d) ? "NAN" : (is_infinite($d) ? ($d > 0 ? "INF" : "-INF") : var_export($d, true)), "\\n"; }',
      ],
      { input: hex.join('\n') + '\n', encoding: 'utf8' },
    )
      .trim()
      .split('\n');
    expect(values.map(phpFloatToString)).toEqual(php);
  });
});

describe('key names are lossless', () => {
  it('bytesToName / phpKeyBytes round-trip any bytes, and valid UTF-8 reads as text', () => {
    const rand = prng(5);
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(rand() * 12);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = rand() < 0.5 ? Math.floor(rand() * 256) : 0x80 + Math.floor(rand() * 0x40);
      expect(phpKeyBytes(bytesToName(b)).equals(b)).toBe(true);
    }
    for (const s of ['uid', 'Zoë', 'ok 👍', '𐂀', '\u0000*\u0000rev', '']) expect(bytesToName(Buffer.from(s))).toBe(s);
    expect(bytesToName(B('caf\xe9'))).not.toBe(bytesToName(Buffer.from('café')));
  });

  it('a non-UTF-8 session key prints as $bytes_hex, a UTF-8 one as text', () => {
    const r = decodeSession(B('caf\xe9|i:1;caf\xc3\xa9|i:2;'), 'php');
    expect(r.ok && toValueModel(r.entries)).toEqual([
      [{ $bytes_hex: '636166e9' }, 1],
      ['café', 2],
    ]);
  });
});

describe('sniffFormat (BUG-08 rules)', () => {
  const table: Array<[string, Buffer, ReturnType<typeof sniffFormat>]> = [
    ['0 bytes', Buffer.alloc(0), 'empty'],
    ['igbinary v2 header', Buffer.from('000000021400', 'hex'), 'igbinary'],
    ['igbinary v1 header', Buffer.from('000000011400', 'hex'), 'igbinary'],
    ['igbinary header, corrupt body', Buffer.from('0000000214', 'hex'), 'igbinary'],
    ['php_serialize', B('a:1:{s:1:"a";i:1;}'), 'php_serialize'],
    ['php_serialize, trailing bytes', B('a:1:{s:1:"a";i:1;}xyz'), 'php_serialize'],
    ['php_serialize, truncated', B('a:1:{s:1:"a";i:'), 'php_serialize'],
    ['php', B('uid|i:42;'), 'php'],
    ['php, key that looks like a:N:{', B('a:1:{x|i:1;'), 'php'],
    ['php, corrupt after the first entry', B('a|i:1;trailing'), 'php'],
    ['php_binary', B('\x03uidi:42;'), 'php_binary'],
    ['php_binary with "|" in a value', B('\x01as:3:"x|y";'), 'php_binary'],
    ['php_binary, 0x80 flag', B('\x83uidi:42;'), 'php_binary'],
    ['php_binary, corrupt after the first entry', B('\x01ai:1;\x7f'), 'php_binary'],
    ['text', B('hello'), 'unknown'],
    ['wrong igbinary version', Buffer.from('000000031400', 'hex'), 'unknown'],
  ];
  it.each(table)('%s', (_name, bytes, format) => expect(sniffFormat(bytes)).toBe(format));
});

describe('classifySession', () => {
  it('empty file: an empty session for every handler', () => {
    for (const h of SERIALIZE_HANDLERS) {
      expect(classifySession(Buffer.alloc(0), h)).toEqual({
        format: 'empty',
        status: 'empty',
        phpAccepts: true,
        serializerMismatch: false,
        warnings: [],
      });
    }
  });

  it('every format under every configured handler: phpAccepts is what PHP says, mismatch is flagged', () => {
    const byHandler = new Map<SerializeHandler, Buffer>();
    for (const p of generatePayloads()) if (p.name === 'nested') byHandler.set(p.handler, p.bytes);
    expect(byHandler.size).toBe(4);
    for (const [written, bytes] of byHandler) {
      for (const configured of SERIALIZE_HANDLERS) {
        const c = classifySession(bytes, configured);
        expect(c.format).toBe(written);
        expect(c.phpAccepts, `${written} read as ${configured}`).toBe(phpDecodeOk(bytes, configured));
        expect(c.serializerMismatch).toBe(written !== configured && !c.phpAccepts);
        expect(c.status).toBe(c.phpAccepts ? 'ok' : 'corrupt');
      }
    }
  });

  it('php_serialize payload that is not an array: PHP accepts it, but it is no session', () => {
    const c = classifySession(B('i:5;'), 'php_serialize');
    expect(c).toMatchObject({ status: 'corrupt', phpAccepts: true });
    expect(phpDecodeOk(B('i:5;'), 'php_serialize')).toBe(true);
    expect(decodeSession(B('N;'), 'php_serialize')).toEqual({ ok: true, entries: [], warnings: [] });
  });
});

describe('value model rules', () => {
  const modelOf = (bytes: string, h: SerializeHandler = 'php'): unknown => {
    const r = decodeSession(B(bytes), h);
    if (!r.ok) throw new Error(r.error);
    return toValueModel(r.entries);
  };

  it('a reference whose other holder is gone is a plain value (as PHP shows it)', () => {
    expect(modelOf('a|i:1;b|R:1;a|i:2;')).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect(modelOf('a|i:1;b|R:1;')).toEqual([
      ['a', { $phpReference: 'r1', value: 1 }],
      ['b', { $phpReference: 'r1', value: 1 }],
    ]);
  });

  it('objects are numbered depth-first; C: objects take a number too', () => {
    expect(modelOf('a|C:3:"Foo":1:{x}b|O:3:"Bar":0:{}c|r:1;d|r:2;')).toEqual([
      ['a', { $serializable: 'Foo', payload: 'x' }],
      ['b', { $object: 'Bar', objectNo: 2, props: [] }],
      ['c', { $sameObjectAs: 1 }],
      ['d', { $sameObjectAs: 2 }],
    ]);
  });

  it('object graphs with cycles print once; array/reference cycles are cut, never looped', () => {
    expect(modelOf('a|O:8:"stdClass":1:{s:4:"self";r:1;}')).toEqual([
      ['a', { $object: 'stdClass', objectNo: 1, props: [['self', { $sameObjectAs: 1 }]] }],
    ]);
    const cyc = JSON.stringify(modelOf('a:1:{s:1:"x";a:1:{i:0;R:2;}}', 'php_serialize'));
    expect(cyc).toContain('"$recursion":true');
  });

  it('ints keep 64-bit precision; floats and bytes use the tagged forms', () => {
    expect(modelOf('a|i:9223372036854775807;b|i:-9007199254740993;c|d:0.1;d|d:-0;e|s:2:"\xff\x00";')).toEqual([
      ['a', 9223372036854775807n],
      ['b', -9007199254740993n],
      ['c', { $float: '0.1' }],
      ['d', { $float: '-0.0' }],
      ['e', { $bytes_hex: 'ff00' }],
    ]);
  });

  it('the decoded model keeps object identity and reference boxes', () => {
    const r = decodeSession(B('a|O:8:"stdClass":0:{}b|r:1;c|s:1:"x";d|R:3;'), 'php');
    if (!r.ok) throw new Error(r.error);
    const v = Object.fromEntries(r.entries) as Record<string, PhpValue>;
    expect(v.a).toBe(v.b);
    expect(v.c!.type === 'reference' && v.d!.type === 'reference' && v.c!.target === v.d!.target).toBe(true);
  });

  it('maxDepth option', () => {
    const p = B(`a|${'a:1:{i:0;'.repeat(11)}i:1;${'}'.repeat(11)}`);
    expect(decodeSession(p, 'php', { maxDepth: 11 }).ok).toBe(true);
    expect(decodeSession(p, 'php', { maxDepth: 10 }).ok).toBe(false);
    expect(decodeSession(p, 'php', { maxDepth: 0 }).ok).toBe(true);
  });
});

describe('class names are lower-cased in ASCII only, as PHP does', () => {
  it('a class named with U+212A KELVIN SIGN is not WeakMap: PHP 8.2 accepts it', () => {
    const name = Buffer.from('Wea\u212Amap', 'utf8');
    const payload = Buffer.concat([Buffer.from(`a|O:${name.length}:"`), name, Buffer.from('":0:{}')]);
    expect(classifySession(payload, 'php')).toMatchObject({ status: 'ok', phpAccepts: true });
    expect(classifySession(Buffer.from('a|O:7:"WEAKMAP":0:{}'), 'php')).toMatchObject({ phpAccepts: false });
  });
});

/**
 * Malformed input: truncated, wrong lengths, garbage, deep nesting, huge declared lengths. The decoder
 * must never throw, never hang, never overflow the stack, and never put session content in an error.
 * Limits are checked against PHP itself where PHP has one (unserialize_max_depth).
 */
import { describe, expect, it } from 'vitest';
import { type SerializeHandler, SERIALIZE_HANDLERS, classifySession, decodeSession, sniffFormat, toValueModel } from '../src/index.ts';
import { phpDecodeOk } from './helpers.ts';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const IG = (hex: string): Buffer => Buffer.from('00000002' + hex.replace(/\s+/g, ''), 'hex');

/** Everything the package offers on these bytes; must not throw. */
function exercise(bytes: Buffer, handler: SerializeHandler): void {
  const r = decodeSession(bytes, handler);
  if (r.ok) toValueModel(r.entries);
  else {
    expect(typeof r.error).toBe('string');
    expect(r.offset).toBeGreaterThanOrEqual(0);
    expect(r.offset).toBeLessThanOrEqual(bytes.length);
  }
  sniffFormat(bytes);
  classifySession(bytes, handler);
}

/**
 * A hang guard, not a speed goal (speed lives in bench/): the inputs here would take minutes or exhaust
 * memory under exponential or quadratic decoding, and finish in milliseconds when linear. The limit is
 * wide so a loaded CI machine never trips it.
 */
const HANG_MS = 10_000;

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

/** Valid payloads of every handler, with a secret in keys, values, class names and payloads. */
const SECRET = 'S3cr3tV4lu3';
const samples: Array<[SerializeHandler, Buffer]> = [
  ['php', B(`uid|i:42;${SECRET}|s:11:"${SECRET}";o|O:11:"${SECRET}":1:{s:1:"p";a:1:{i:0;d:1.5;}}c|C:3:"Foo":11:{${SECRET}}r|R:2;`)],
  ['php_binary', B(`\x03uidi:42;\x0b${SECRET}s:11:"${SECRET}";\x01oO:8:"stdClass":1:{s:11:"${SECRET}";b:1;}`)],
  ['php_serialize', B(`a:4:{s:3:"uid";i:42;s:11:"${SECRET}";s:11:"${SECRET}";s:1:"o";O:8:"stdClass":0:{}s:1:"l";a:2:{i:0;N;i:1;r:4;}}`)],
  [
    'igbinary',
    IG(`1403 1103 ${Buffer.from('uid').toString('hex')} 062a 110b ${Buffer.from(SECRET).toString('hex')} 0e01
    1101 6f 170b ${Buffer.from(SECRET).toString('hex')} 1401 0e00 0c3ff8000000000000`),
  ],
];

describe('truncation at every position', () => {
  it.each(samples)('%s: a cut payload is rejected unless the cut is at an entry boundary', (handler, full) => {
    const whole = decodeSession(full, handler);
    expect(whole.ok).toBe(true);
    for (let at = 0; at < full.length; at++) {
      const cut = full.subarray(0, at);
      exercise(cut, handler);
      const r = decodeSession(cut, handler);
      if (at === 0) {
        expect(r.ok).toBe(true);
        continue;
      } // empty = valid empty session
      if (!r.ok) {
        expect(r.error).not.toContain(SECRET);
        expect(r.error).not.toContain('uid');
        continue;
      }
      // only the session-level formats can be valid when cut, and only between two entries
      expect(['php', 'php_binary']).toContain(handler);
      expect(r.entries.length).toBeLessThan((whole.ok && whole.entries.length) || 0);
    }
  });
});

describe('wrong and huge declared lengths', () => {
  const wrong: Array<[SerializeHandler, string | Buffer]> = [
    ['php', 'a|s:2:"abc";'],
    ['php', 'a|s:4:"abc";'],
    ['php', 'a|s:99999999999:"x";'],
    ['php', 'a|s:18446744073709551615:"x";'],
    ['php', 'a|a:2:{i:0;i:1;}'],
    ['php', 'a|a:1:{i:0;i:1;i:1;i:2;}'],
    ['php', 'a|a:4294967295:{'],
    ['php', 'a|a:99999999999999999999999:{}'],
    ['php', 'a|O:8:"stdClass":999999999:{}'],
    ['php', 'a|O:99999:"x":0:{}'],
    ['php', 'a|C:3:"Foo":9999999999:{x}'],
    ['php', 'a|E:999:"A:B";'],
    ['php', 'a|R:99999999999999999999999999;'],
    ['php_binary', '\x7fabc'],
    ['php_serialize', 'a:2147483648:{}'],
    ['igbinary', IG('1401 1101 61 13ffffffff')],
    ['igbinary', IG('16ffffffff')],
    ['igbinary', IG('1401 1101 61 26ffffffffffffffff')],
    ['igbinary', IG('1401 1101 61 1dff')],
    ['igbinary', IG('1401 1101 61 17ff')],
    ['igbinary', IG('1401 1101 61 0effffff')],
    ['igbinary', IG('1401 1101 61 03ffffffff')],
    ['igbinary', IG('1401 1101 61 14ff')],
  ];
  it.each(wrong)('%s %j is rejected quickly', (handler, payload) => {
    const bytes = typeof payload === 'string' ? B(payload) : payload;
    const { value: r, ms } = timed(() => decodeSession(bytes, handler));
    expect(r.ok).toBe(false);
    expect(ms).toBeLessThan(HANG_MS);
    exercise(bytes, handler);
  });

  it('a 64 MiB length prefix on a tiny payload allocates nothing and fails fast', () => {
    const bytes = IG('1401 1101 61 1304000000 41');
    const { value: r, ms } = timed(() => decodeSession(bytes, 'igbinary'));
    expect(r.ok).toBe(false);
    expect(ms).toBeLessThan(HANG_MS);
  });
});

describe('garbage', () => {
  /** mulberry32 */
  const rand = ((seed: number) => () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  })(7);
  const alphabet = B('aOCsSirRNbdE:;{}"|0123456789-+.\\\x00\x01\x06\x11\x14\x17\x22\x25\x80\xff');

  it('random bytes and random grammar soup never throw, for every handler', () => {
    for (let n = 0; n < 3000; n++) {
      const len = Math.floor(rand() * 80);
      const soup = n % 2 === 0;
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = soup ? alphabet[Math.floor(rand() * alphabet.length)]! : Math.floor(rand() * 256);
      if (n % 3 === 0 && len >= 4) b.writeUInt32BE(2, 0); // igbinary header
      for (const h of SERIALIZE_HANDLERS) exercise(b, h);
    }
  });

  it('sniffs 0 bytes as empty and junk as unknown', () => {
    expect(sniffFormat(Buffer.alloc(0))).toBe('empty');
    expect(sniffFormat(B('hello world'))).toBe('unknown');
    expect(sniffFormat(B('\x00\x00\x00\x03xyz'))).toBe('unknown');
    expect(classifySession(B('hello world'), 'php')).toEqual({
      format: 'unknown',
      status: 'corrupt',
      phpAccepts: false,
      serializerMismatch: false,
      warnings: [],
    });
  });
});

describe('deep nesting', () => {
  const nestedArrays = (n: number, inner = 'i:1;'): string => 'a:1:{i:0;'.repeat(n) + inner + '}'.repeat(n);

  it("PHP's unserialize_max_depth (4096) applies exactly as in PHP (checked against PHP)", () => {
    const cases: Array<[SerializeHandler, string]> = [
      ['php', `a|${nestedArrays(4096)}`],
      ['php', `a|${nestedArrays(4097)}`],
      ['php', `a|${nestedArrays(4096, 'a:0:{}')}`], // empty arrays do not count
      ['php', `a|${nestedArrays(4095, 'O:8:"stdClass":0:{}')}`], // empty objects do
      ['php', `a|${nestedArrays(4096, 'O:8:"stdClass":0:{}')}`],
      ['php', `a|${nestedArrays(4096)}b|${nestedArrays(4096)}`], // the count is per value, not per session
      ['php_binary', `\x01a${nestedArrays(4097)}`],
      ['php_serialize', nestedArrays(4096)],
      ['php_serialize', nestedArrays(4097)],
    ];
    const verdicts = cases.map(([h, p]) => [decodeSession(B(p), h).ok, phpDecodeOk(B(p), h)]);
    expect(verdicts.map(([ours]) => ours)).toEqual(verdicts.map(([, php]) => php));
    expect(verdicts.map(([, php]) => php)).toEqual([true, false, true, true, false, true, false, true, false]);
  });

  it('absurd nesting (200k levels) fails cleanly for php formats, no stack overflow', () => {
    for (const [h, p] of [
      ['php', `a|${nestedArrays(200_000)}`],
      ['php_serialize', nestedArrays(200_000)],
      ['php', `a|${'O:8:"stdClass":1:{s:1:"a";'.repeat(200_000)}`],
    ] as const) {
      const { value: r, ms } = timed(() => decodeSession(B(p), h));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toContain('nesting');
      expect(ms).toBeLessThan(HANG_MS);
    }
  });

  it('igbinary has no depth limit in PHP: 200k levels decode, and print, without recursion', () => {
    const depth = 200_000;
    // root: array8(1) 'a' => array8(1) 0 => array8(1) 0 => ... => int 1
    const buf = Buffer.alloc(4 + 5 + depth * 4 + 2);
    let p = buf.writeUInt32BE(2, 0);
    buf.set([0x14, 0x01, 0x11, 0x01, 0x61], p);
    p += 5;
    for (let i = 0; i < depth; i++) {
      buf.set([0x14, 0x01, 0x06, 0x00], p);
      p += 4;
    }
    buf.set([0x06, 0x01], p);
    const { value: r, ms } = timed(() => decodeSession(buf, 'igbinary'));
    expect(r.ok).toBe(true);
    expect(ms).toBeLessThan(HANG_MS);
    if (!r.ok) return;
    let v: unknown = (toValueModel(r.entries) as unknown[][])[0]![1];
    let levels = 0;
    while (v && typeof v === 'object' && '$array' in v) {
      v = (v as { $array: unknown[][] }).$array[0]![1];
      levels++;
    }
    expect(levels).toBe(depth);
    expect(v).toBe(1);
  });
});

/**
 * The bytes `decode` reads from its input, counted deterministically (no clock, so a loaded machine
 * cannot change the count): every element read (`buf[i]`), and every byte a Buffer method scans,
 * copies or slices (`indexOf` up to its match, `toString` and `subarray` over their range; a slice is
 * counted whole because whatever takes it reads it). A method the counter does not know fails the
 * count, so a decoder that starts using one cannot go uncounted.
 */
function bytesRead(bytes: Buffer, decode: (counted: Buffer) => void): number {
  let reads = 0;
  const span = (start: unknown, end: unknown): number => {
    const s = typeof start === 'number' ? start : 0;
    const e = typeof end === 'number' ? Math.min(end, bytes.length) : bytes.length;
    return Math.max(0, e - s);
  };
  const methods: Record<string, (...args: never[]) => unknown> = {
    indexOf: (value: number, from?: number): number => {
      const at = bytes.indexOf(value, from);
      reads += (at < 0 ? bytes.length : at + 1) - (from ?? 0);
      return at;
    },
    toString: (encoding?: BufferEncoding, start?: number, end?: number): string => {
      reads += span(start, end);
      return bytes.toString(encoding, start, end);
    },
    subarray: (start?: number, end?: number): Buffer => {
      reads += span(start, end);
      return bytes.subarray(start, end);
    },
  };
  const counted = new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && /^\d+$/.test(key)) {
        reads++;
        return target[Number(key)];
      }
      if (key === 'length') return target.length;
      if (typeof key === 'string' && key in methods) return methods[key];
      throw new Error(`bytesRead: the decoder used Buffer.${String(key)}, which the count does not know: add it`);
    },
  });
  decode(counted);
  return reads;
}

describe('size and time are linear', () => {
  const session = (n: number): Buffer => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`k${i}|i:${i};`);
    return B(parts.join(''));
  };

  it('a 1.1 MB session with 100k keys decodes', () => {
    const { value: r, ms } = timed(() => decodeSession(session(100_000), 'php'));
    expect(r.ok && r.entries.length).toBe(100_000);
    expect(ms).toBeLessThan(HANG_MS);
  });

  it('8x the keys reads about 8x the bytes, not 64x (counted, not timed)', () => {
    // Bytes read per byte of input, for 2,000 and 16,000 keys. Linear decoding reads each byte a
    // bounded number of times, whatever the size: the two rates are about equal. A decoder that
    // rescans what it has decoded, or the rest of the input, for each key (quadratic) reads 8 times
    // more per byte on the big session (tried: scanning for each key's "|" from the start, or copying
    // the rest of the input for each key, gave 8.0; this decoder gives 1.00). Work that reads no input
    // (the collections the decoder builds) is not counted: the 100k-key decode above, under the hang
    // guard, catches that when it is quadratic. The speed itself is measured in bench/, never here.
    const perByte = (bytes: Buffer): number => {
      let entries = 0;
      const reads = bytesRead(bytes, (counted) => {
        const r = decodeSession(counted, 'php');
        entries = r.ok ? r.entries.length : -1;
      });
      expect(entries).toBeGreaterThan(0);
      return reads / bytes.length;
    };
    const small = perByte(session(2_000));
    const big = perByte(session(16_000));
    expect(small).toBeGreaterThanOrEqual(1); // every byte is read at least once: the count counts
    expect(big / small).toBeLessThan(1.5);
  });

  it('inputs that are pathological for a regex parser stay linear (counted, not timed)', () => {
    // Each input at two sizes, the second 8x the first; the bytes decodeSession, sniffFormat and
    // classifySession read from it, counted as above (bytesRead). Linear work reads 8x the bytes on
    // the big one; work that rescans the input for each token (a backtracking regex, a number parsed
    // again for each digit) reads 64x. Counting, not a clock, so a loaded machine cannot fail it.
    const inputs: Array<[SerializeHandler, (n: number) => Buffer]> = [
      ['php', (n) => B('|'.repeat(n))],
      ['php', (n) => B('a'.repeat(n))],
      ['php', (n) => B(`k|s:${3 * n + 2}:"${'a;|'.repeat(n)}aa";`)],
      ['php', (n) => B(`a|i:${'0'.repeat(n)}1;`)],
      ['php', (n) => B(`a|d:${'9'.repeat(n)};`)],
      ['php', (n) => B(`a|s:${'0'.repeat(n)}1:"x";`)],
      ['php_binary', (n) => B('\x00'.repeat(n))],
      // Nested arrays cut short, 500 and 4,000 deep (under unserialize_max_depth's 4096).
      ['php_serialize', (n) => B(`a:1:{s:1:"x";${'a:1:{i:0;'.repeat(n / 40)}`)],
      ['igbinary', (n) => IG('25'.repeat(n) + '1400')],
    ];
    const read = (h: SerializeHandler, b: Buffer): number =>
      bytesRead(b, (counted) => {
        decodeSession(counted, h);
        sniffFormat(counted);
        classifySession(counted, h);
      });
    for (const [h, make] of inputs) {
      const small = read(h, make(20_000));
      const big = read(h, make(160_000));
      const what = `${h} ${make(4).toString('latin1')}`;
      expect(small, what).toBeGreaterThan(0); // the count counts
      expect(big / small, what).toBeLessThan(12);
    }
  });
});

describe('errors never contain session content', () => {
  it('for every single-byte corruption of the samples', () => {
    for (const [handler, full] of samples) {
      for (let at = 0; at < full.length; at++) {
        for (const byte of [0x00, 0x22, 0x3a, 0x3b, 0x7b, 0x7d, 0x7c, 0x39, 0xff]) {
          const b = Buffer.from(full);
          b[at] = byte;
          const r = decodeSession(b, handler);
          if (!r.ok) {
            expect(r.error).not.toMatch(/S3cr3t|uid|stdClass|Foo/);
            expect(r.error).toMatch(/^[\w "|{},.()'/:<>=-]+$/);
          }
        }
      }
    }
  });
});

/**
 * Micro-benchmark: `classifySession` (fast validating pass) against `classifySessionReference` (the
 * full decoder) on realistic sessions of about 0.5-1.5 KiB, for every handler.
 *
 *   npx tsx bench/classify.ts [iterations]     (default 20000 calls per round, best of 5 rounds)
 *
 * Prints µs per call for both and their ratio. Both must agree on every payload (checked first).
 * Payloads are built here (no PHP needed): a cart of objects, a profile of nested arrays and floats,
 * a flash/CSRF session, and an object graph that reuses one object through `r:` back-references.
 */
import { isDeepStrictEqual } from 'node:util';
import { type SerializeHandler, SERIALIZE_HANDLERS, classifySession } from '../packages/php-session/src/index.ts';
import { classifySessionReference } from '../packages/php-session/src/session.ts';

const N = Number(process.argv[2] ?? 20_000);

// --- a tiny value model and encoders for the four handlers ------------------------------------------

type V =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: number }
  | { t: 'float'; v: number }
  | { t: 'str'; v: string }
  | { t: 'arr'; e: Array<[string | number, V]> }
  | { t: 'obj'; cls: string; e: Array<[string, V]> }
  | { t: 'objref'; slot: number };

const I = (v: number): V => ({ t: 'int', v });
const F = (v: number): V => ({ t: 'float', v });
const S = (v: string): V => ({ t: 'str', v });
const B = (v: boolean): V => ({ t: 'bool', v });
const NUL: V = { t: 'null' };
const A = (e: Array<[string | number, V]>): V => ({ t: 'arr', e });
const L = (items: V[]): V => A(items.map((v, i) => [i, v]));
const O = (cls: string, e: Array<[string, V]>): V => ({ t: 'obj', cls, e });
/** `r:slot;` in the php formats (slot numbers are computed by hand for the payload that uses it). */
const R = (slot: number): V => ({ t: 'objref', slot });

const len = (s: string): number => Buffer.byteLength(s, 'utf8');
const phpKey = (k: string | number): string => (typeof k === 'number' ? `i:${k};` : `s:${len(k)}:"${k}";`);

function ser(v: V): string {
  switch (v.t) {
    case 'null':
      return 'N;';
    case 'bool':
      return `b:${v.v ? 1 : 0};`;
    case 'int':
      return `i:${v.v};`;
    case 'float':
      return `d:${v.v};`;
    case 'str':
      return `s:${len(v.v)}:"${v.v}";`;
    case 'arr':
      return `a:${v.e.length}:{${v.e.map(([k, x]) => phpKey(k) + ser(x)).join('')}}`;
    case 'obj':
      return `O:${len(v.cls)}:"${v.cls}":${v.e.length}:{${v.e.map(([k, x]) => phpKey(k) + ser(x)).join('')}}`;
    case 'objref':
      return `r:${v.slot + slotOffset};`;
  }
}
/** php_serialize numbers the session array itself as slot 1, which shifts every other slot by one. */
let slotOffset = 0;

type Session = Array<[string, V]>;

const encode = {
  php: (s: Session): Buffer => Buffer.from(s.map(([k, v]) => `${k}|${ser(v)}`).join('')),
  php_binary: (s: Session): Buffer => Buffer.concat(s.map(([k, v]) => Buffer.concat([Buffer.of(len(k)), Buffer.from(k + ser(v))]))),
  php_serialize: (s: Session): Buffer => {
    slotOffset = 1;
    try {
      return Buffer.from(ser(A(s)));
    } finally {
      slotOffset = 0;
    }
  },
  igbinary: (s: Session): Buffer => igbinary(A(s)),
};

/** igbinary format 2 with string compaction (repeated strings become string ids, as igbinary does). */
function igbinary(root: V): Buffer {
  const out: number[] = [0, 0, 0, 2];
  const strings = new Map<string, number>();
  const refs: number[] = []; // php r: slot -> igbinary value-ref index (objects only, for this bench)
  let slot = 0;
  let refCount = 0;
  const uint = (n: number, w: number): void => {
    for (let i = w - 1; i >= 0; i--) out.push(Math.floor(n / 256 ** i) % 256);
  };
  const sized = (n: number, t8: number): void => {
    if (n < 0x100) {
      out.push(t8);
      uint(n, 1);
    } else if (n < 0x10000) {
      out.push(t8 + 1);
      uint(n, 2);
    } else {
      out.push(t8 + 2);
      uint(n, 4);
    }
  };
  const str = (s: string, t8: number, id8: number): void => {
    const known = strings.get(s);
    if (known !== undefined) {
      sized(known, id8);
      return;
    }
    strings.set(s, strings.size);
    const b = Buffer.from(s);
    sized(b.length, t8);
    out.push(...b);
  };
  const int = (n: number): void => {
    const neg = n < 0;
    const m = Math.abs(n);
    if (m < 0x100) {
      out.push(neg ? 0x07 : 0x06);
      uint(m, 1);
    } else if (m < 0x10000) {
      out.push(neg ? 0x09 : 0x08);
      uint(m, 2);
    } else if (m < 2 ** 32) {
      out.push(neg ? 0x0b : 0x0a);
      uint(m, 4);
    } else {
      out.push(neg ? 0x21 : 0x20);
      uint(m, 8);
    }
  };
  const key = (k: string | number): void => {
    if (typeof k === 'number') int(k);
    else if (k === '') out.push(0x0d);
    else str(k, 0x11, 0x0e);
  };
  const value = (v: V): void => {
    slot++;
    switch (v.t) {
      case 'null':
        out.push(0x00);
        break;
      case 'bool':
        out.push(v.v ? 0x05 : 0x04);
        break;
      case 'int':
        int(v.v);
        break;
      case 'float': {
        out.push(0x0c);
        const b = Buffer.alloc(8);
        b.writeDoubleBE(v.v);
        out.push(...b);
        break;
      }
      case 'str':
        if (v.v === '') out.push(0x0d);
        else str(v.v, 0x11, 0x0e);
        break;
      case 'arr':
        refCount++;
        sized(v.e.length, 0x14);
        for (const [k, x] of v.e) {
          key(k);
          value(x);
        }
        break;
      case 'obj':
        refs[slot] = refCount++;
        str(v.cls, 0x17, 0x1a);
        sized(v.e.length, 0x14);
        for (const [k, x] of v.e) {
          key(k);
          value(x);
        }
        break;
      case 'objref':
        sized(refs[v.slot]!, 0x22);
        break;
    }
  };
  slot = -1; // the session array is value 0 here, so top-level values count from 1 as in the php format
  value(root);
  return Buffer.from(out);
}

// --- payloads ----------------------------------------------------------------------------------------

const cart: Session = [
  [
    'user',
    A([
      ['id', I(5)],
      ['email', S('user5@example.com')],
      ['roles', L([S('customer'), S('newsletter')])],
    ]),
  ],
  [
    'cart',
    L(
      Array.from({ length: 6 }, (_, j) =>
        O('CartItem', [
          ['sku', S(`SKU-0001${j}`)],
          ['qty', I(3)],
          ['price', F(1.5 + j)],
        ]),
      ),
    ),
  ],
  ['csrf', S('a'.repeat(64))],
  ['flash', L([S('Your cart was saved successfully')])],
  ['last_seen', I(1_700_000_123)],
  ['locale', S('en_GB')],
];

const profile: Session = [
  [
    '_sf2_attributes',
    A([
      ['_security_main', S('C'.repeat(180))],
      ['_csrf/https-authenticate', S('x7Yq'.repeat(11))],
      [
        'prefs',
        A([
          ['theme', S('dark')],
          ['tz', S('Europe/Berlin')],
          ['page_size', I(50)],
          ['beta', B(false)],
          ['ratio', F(0.618033988749)],
        ]),
      ],
      [
        'history',
        L(
          Array.from({ length: 8 }, (_, i) =>
            A([
              ['path', S(`/orders/${1000 + i}/view`)],
              ['at', I(1_700_000_000 + i * 37)],
              ['ms', F(12.25 + i)],
            ]),
          ),
        ),
      ],
      [
        'geo',
        A([
          ['lat', F(52.520008)],
          ['lng', F(13.404954)],
          ['acc', F(25)],
        ]),
      ],
      ['last_error', NUL],
    ]),
  ],
  [
    '_sf2_meta',
    A([
      ['u', I(1_700_000_999)],
      ['c', I(1_700_000_000)],
      ['l', I(0)],
    ]),
  ],
];

/** One Address object shared by three holders: `r:` back-references to its slot. */
function withBackrefs(): Session {
  // php slots: user=1, id=2, name=3, address=4 (object), street=5, city=6, zip=7; billing/shipping r:4
  const address = O('App\\Entity\\Address', [
    ['street', S('Unter den Linden 1')],
    ['city', S('Berlin')],
    ['zip', S('10117')],
  ]);
  return [
    [
      'user',
      O('App\\Entity\\User', [
        ['id', I(42)],
        ['name', S('Ada Lovelace')],
        ['address', address],
        ['billing', R(4)],
        ['shipping', R(4)],
        ['tags', L([S('vip'), S('beta'), S('early')])],
      ]),
    ],
    [
      'orders',
      L(
        Array.from({ length: 5 }, (_, i) =>
          O('App\\Entity\\Order', [
            ['no', I(5000 + i)],
            ['total', F(19.99 * (i + 1))],
            ['state', S('paid')],
          ]),
        ),
      ),
    ],
    ['token', S('f'.repeat(48))],
  ];
}

const sessions: Array<[string, Session]> = [
  ['cart', cart],
  ['profile', profile],
  ['backrefs', withBackrefs()],
];

/** µs per call: the best of 5 rounds of N calls (after a warm-up), to see through a busy machine. */
function time(fn: () => void): number {
  for (let i = 0; i < Math.min(N, 3000); i++) fn();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) fn();
    best = Math.min(best, ((performance.now() - t0) * 1000) / N);
  }
  return best;
}

const rows: string[][] = [['payload', 'handler', 'bytes', 'reference µs', 'fast µs', 'speed-up']];
for (const [name, session] of sessions) {
  for (const handler of SERIALIZE_HANDLERS) {
    const bytes = encode[handler](session);
    const ref = classifySessionReference(bytes, handler);
    const fast = classifySession(bytes, handler);
    if (!isDeepStrictEqual(ref, fast)) throw new Error(`${name}/${handler}: fast and reference classifications differ`);
    if (ref.status !== 'ok') throw new Error(`${name}/${handler}: bench payload is not a valid session (${ref.status})`);
    const tRef = time(() => classifySessionReference(bytes, handler as SerializeHandler));
    const tFast = time(() => classifySession(bytes, handler as SerializeHandler));
    rows.push([name, handler, String(bytes.length), tRef.toFixed(2), tFast.toFixed(2), `${(tRef / tFast).toFixed(1)}x`]);
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));

/**
 * The test corpus shared by the differential tests (against PHP) and the classification equivalence
 * test (fast validating pass against the decoder): every shared input file under every handler,
 * payloads PHP itself encodes (fixtures/gen-sessions.php), those payloads read with the other handlers,
 * seeded mutations of them, and hand-written grammar corners.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { type SerializeHandler, SERIALIZE_HANDLERS } from '../src/index.ts';
import { casesDir, generatePayloads } from './helpers.ts';

export interface Case {
  label: string;
  handler: SerializeHandler;
  bytes: Buffer;
}

/** Every sess_* file under test/fixtures/cases/BUG-XX (recursively). */
export function sharedFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.startsWith('sess_')) out.push(p);
    }
  };
  for (const d of readdirSync(casesDir)) if (/^BUG-\d+$/.test(d)) walk(path.join(casesDir, d));
  if (out.length === 0) throw new Error(`no sess_* input under ${casesDir}/BUG-XX`);
  return out.sort();
}

/** mulberry32: small seeded PRNG so the mutation corpus is the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = Buffer.from(';:{}"|0123456789-+.aOsSiRrNbdCEe\x00\x01\x02\x06\x11\x14\x17\x22\x25\x80\xff');

/** n single changes of c, plus a second change on a third of them. */
export function mutations(c: Case, rand: () => number, n: number): Case[] {
  const once = mutateOnce(c, rand, n);
  const twice = once.slice(0, Math.ceil(n / 3)).flatMap((x) => mutateOnce(x, rand, 1));
  return [...once, ...twice];
}

export function mutateOnce(c: Case, rand: () => number, n: number): Case[] {
  const out: Case[] = [];
  const len = c.bytes.length;
  if (len === 0) return out;
  const pick = (k: number): number => Math.floor(rand() * k);
  for (let i = 0; i < n; i++) {
    const b = Buffer.from(c.bytes);
    const kind = pick(5);
    let m: Buffer;
    let what: string;
    if (kind === 0) {
      const at = pick(len);
      m = b.subarray(0, at);
      what = `truncate@${at}`;
    } else if (kind === 1) {
      const at = pick(len);
      b[at] = INTERESTING[pick(INTERESTING.length)]!;
      m = b;
      what = `set@${at}`;
    } else if (kind === 2) {
      // change a digit: lengths, counts and back-reference ids
      const digits = [...b.keys()].filter((j) => b[j]! >= 0x30 && b[j]! <= 0x39);
      if (digits.length === 0) continue;
      const at = digits[pick(digits.length)]!;
      b[at] = 0x30 + ((b[at]! - 0x30 + 1 + pick(9)) % 10);
      m = b;
      what = `digit@${at}`;
    } else if (kind === 3) {
      const at = pick(len);
      m = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
      what = `delete@${at}`;
    } else {
      const at = pick(len);
      const byte = pick(256);
      b[at] = byte;
      m = b;
      what = `byte@${at}`;
    }
    out.push({ label: `${c.label} ${what}`, handler: c.handler, bytes: m });
  }
  return out;
}

/** Every shared input file, read with every handler. */
export function sharedCases(): Case[] {
  return sharedFiles().flatMap((file) =>
    SERIALIZE_HANDLERS.map((handler) => ({
      label: `${path.relative(casesDir, file)} as ${handler}`,
      handler,
      bytes: readFileSync(file),
    })),
  );
}

/** Payloads PHP itself encodes, per handler (runs PHP). */
export function generatedCases(): Case[] {
  return generatePayloads().map((p) => ({ label: `${p.name} (${p.handler})`, handler: p.handler, bytes: p.bytes }));
}

/** Every PHP-encoded payload read with the OTHER handlers (a store whose serializer changed). */
export function crossCases(generated: Case[]): Case[] {
  return generated.flatMap((c) =>
    SERIALIZE_HANDLERS.filter((h) => h !== c.handler).map((handler) => ({
      label: `${c.label} read as ${handler}`,
      handler,
      bytes: c.bytes,
    })),
  );
}

/**
 * The seeded mutation corpus: `perPayload` changes of every generated payload up to 4000 bytes (plus a
 * second change on a third of them). Defaults: MUTATION_SEED / MUTATIONS from the environment.
 */
export function mutatedCases(
  generated: Case[],
  seed = Number(process.env.MUTATION_SEED ?? 20240611),
  perPayload = Number(process.env.MUTATIONS ?? 12),
): Case[] {
  const rand = prng(seed);
  return generated.filter((c) => c.bytes.length <= 4000).flatMap((c) => mutations(c, rand, perPayload));
}

/** Hand-written payloads for PHP's grammar corners (each is checked against PHP, not against a guess). */
const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const IG = (hex: string): Buffer => Buffer.from('00000002' + hex.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const edgeRaw: Array<[SerializeHandler, Buffer]> = [
  ...[
    'a|S:3:"\\41bc";',
    'a|S:3:"\\4";',
    'a|S:2:"\\41\\4a";',
    'a|S:1:"\\zz";',
    'a|i:+5;',
    'a|i:-0;',
    'a|i:0005;',
    'a|i:99999999999999999999;',
    'a|i:-9223372036854775808;',
    'a|i:9223372036854775808;',
    'a|i:-9223372036854775809;',
    'a|i:000000000000000000000000001;',
    'a|i:;',
    'a|i:1',
    'a|d:.5;',
    'a|d:5.;',
    'a|d:1e5;',
    'a|d:1E+5;',
    'a|d:-.5e-3;',
    'a|d:.;',
    'a|d:1e;',
    'a|d:NAN;',
    'a|d:-INF;',
    'a|d:+INF;',
    'a|d:-NAN;',
    'a|d:1e400;',
    'a|d:4.9e-325;',
    'a|d:0.1000000000000000055511151231257827;',
    'a|d:+.5E-0;',
    'a|d:123456789012345678901234567890;',
    'a|d:1.5e300;',
    'a|d:-0.0;',
    'a|b:2;',
    'a|b:1;',
    'a|b:;',
    'a|N;',
    'a|N',
    'a|n;',
    'a|s:18446744073709551617:"x";',
    'a|s:1:"xx";',
    'a|s:3:"x";',
    'a|s:-1:"";',
    'a|s:0:"";',
    'a|s:1:"x"',
    'a|s:01:"x";',
    'a|O:8:"stdClass"::{}',
    'a|O:8:"stdClass":-:{}',
    'a|O:8:"stdClass":+1:{s:1:"x";i:1;}',
    'a|O:3:"F-o":0:{}',
    'a|O:3:"F\\o":0:{}',
    'a|O:4:"\\Foo":0:{}',
    'a|O:0:"":0:{}',
    'a|O:8:"stdClass":1:{i:5;s:1:"x";}',
    'a|O:8:"stdClass":2:{s:1:"a";i:1;s:1:"a";i:2;}',
    'a|O:3:"Foo":2:{i:7;i:1;s:1:"7";i:2;}',
    'a|O:3:"Foo":1:{}',
    'a|O:3:"Foo":0:{',
    'a|O:3:"Foo":1:{s:1:"x";O:3:"Bar":0:{}}',
    'a|O:8:"STDCLASS":0:{}',
    'a|O:3:"Foo":0:{}b|O:3:"foo":0:{}',
    'a|O:3:"Foo":0',
    'a|O:3:"Foo"',
    'a|O:9:"Caf\xe9Bar":0:{}',
    'a|O:8:"stdClass":9:{s:1:"x";i:1;}',
    'a|C:3:"Foo":+3:{abc}',
    'a|C:3:"Foo":3:{abc',
    'a|C:3:"Foo":-1:{}',
    'a|C:8:"stdClass":0:{}',
    'a|C:3:"Foo":0:{}',
    'a|C:3:"Foo":4:{abc}',
    'a|C:3:"Foo":2:{abc}',
    'a|E:10:"Role:Admin";',
    'a|E:9:"Role:User";',
    'a|E:8:"Role:Foo";',
    'a|E:4:"Role";',
    'a|E:6:":Admin";',
    'a|E:5:"Role:";',
    'a|E:10:"Role:Admin"',
    'a|E:10:"role:Admin";',
    'a|a:1:{E:10:"Role:Admin";i:1;}',
    'a|a:2:{i:0;i:5;i:0;R:2;}',
    'a|a:2:{i:0;i:1;i:0;i:2;}',
    'a|a:1:{s:1:"7";i:5;}',
    'a|a:1:{s:2:"-0";i:5;}',
    'a|a:1:{s:20:"-9223372036854775808";i:1;}',
    'a|a:1:{s:19:"9223372036854775808";i:1;}',
    'a|a:1:{d:1.5;i:1;}',
    'a|a:1:{N;i:1;}',
    'a|a:1:{b:1;i:1;}',
    'a|a:1:{a:0:{}i:1;}',
    'a|a:0:{}',
    'a|a:0:{',
    'a|a:1:{}',
    'a|a:2:{i:0;i:1;}',
    'a|a:1:{i:0;i:1;i:1;i:2;}',
    'a|a:1:{S:1:"\\41";i:1;}',
    'a|a:1:{i:0;R:2;}',
    'a|a:3:{i:0;i:1;i:1;R:2;i:2;R:3;}',
    'a|a:99999999999999999999:{}',
    'a|a:-1:{}',
    'a|a:+1:{i:0;i:1;}',
    'a|a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}',
    'a|a:3:{i:0;O:8:"stdClass":0:{}i:0;i:5;i:1;r:2;}',
    'a|i:1;b|R:1;a|i:2;',
    'a|i:1;b|R:1;',
    'a|i:1;b|r:1;',
    'a|O:8:"stdClass":0:{}b|r:1;c|R:1;',
    'a|R:1;',
    'a|r:1;',
    'a|O:8:"stdClass":1:{s:4:"self";r:1;}',
    'a|O:8:"stdClass":1:{s:4:"self";R:1;}',
    'a|i:1;b|R:18446744073709551617;',
    'a|i:1;b|R:0;',
    'a|i:1;b|R:2;',
    'a|a:1:{i:0;i:1;}b|R:2;c|R:2;',
    'a|s:1:"x";b|R:1;c|R:2;',
    '|i:1;',
    'a|i:1;|i:2;',
    'a',
    '|',
    'a|',
    'a|}',
    'a|x',
    '0|i:1;',
    '-1|i:1;',
    '01|i:1;',
    'a|i:1;a|i:2;b|i:3;',
  ].map((p): [SerializeHandler, Buffer] => ['php', B(p)]),
  ...[
    '\x81ai:1;',
    '\x00i:1;',
    '\x00',
    '\x01a',
    '\x05hello',
    '\x7fa',
    '\x01ai:1;\x01ai:2;',
    '\x01ai:1;\x01bR:1;',
    '\x01ai:1;\x01',
    '\x01ai:1;\x02',
    '\x01aO:8:"stdClass":0:{}\x01br:1;',
  ].map((p): [SerializeHandler, Buffer] => [
    'php_binary',
    B(p.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))),
  ]),
  ...[
    'N;',
    'a:0:{}',
    'a:1:{s:1:"a";i:1;}junk',
    's:0:"";',
    'R:1;',
    'r:1;',
    'a:1:{s:1:"a";r:1;}',
    'a:1:{s:1:"a";R:1;}x',
    'a:2:{s:1:"a";i:1;s:1:"b";R:2;}',
    'a:1:{i:0;a:1:{i:0;r:1;}}',
    'a:0:{}}',
    ' a:0:{}',
    'a:1:{i:0;i:1;}a:0:{}',
  ].map((p): [SerializeHandler, Buffer] => ['php_serialize', B(p)]),
  ['igbinary', B('\x00\x00\x00\x02')],
  ['igbinary', Buffer.from('000000011400', 'hex')],
  ['igbinary', Buffer.from('000000031400', 'hex')],
  ['igbinary', IG('0601')],
  ['igbinary', IG('1400')],
  ['igbinary', IG('1500 00')],
  ['igbinary', IG('1400 ffff')],
  ['igbinary', IG('251400')],
  ['igbinary', IG(`1702 ${ascii('Ab')} 1401 1101 ${ascii('x')} 0601`)],
  ['igbinary', IG(`1708 ${ascii('stdClass')} 1401 1101 ${ascii('x')} 0601`)],
  ['igbinary', IG(`1402 1101 ${ascii('a')} 0e05 1101 ${ascii('b')} 0601`)],
  ['igbinary', IG(`1401 1101 ${ascii('a')} 16ffffffff`)],
  ['igbinary', IG(`1402 1101 ${ascii('a')} 208000000000000000 1101 ${ascii('b')} 218000000000000000`)],
  ['igbinary', IG(`1402 1101 ${ascii('a')} 20ffffffffffffffff 1101 ${ascii('b')} 20000000000000ffff`)],
  ['igbinary', IG(`1401 1101 ${ascii('r')} 1704 ${ascii('Role')} 27 1105 ${ascii('Admin')}`)],
  ['igbinary', IG(`1401 1101 ${ascii('r')} 1704 ${ascii('Role')} 27 1103 ${ascii('Foo')}`)],
  ['igbinary', IG(`1401 1101 ${ascii('o')} 1703 ${ascii('Foo')} 1d03 ${ascii('abc')}`)],
  ['igbinary', IG(`1403 00 1101 ${ascii('a')} 0601 1101 ${ascii('a')} 0602`)],
  ['igbinary', IG(`1403 1101 ${ascii('a')} 25 1101 ${ascii('x')} 1101 ${ascii('b')} 250101 1101 ${ascii('c')} 0101`)],
  ['igbinary', IG(`1402 1101 ${ascii('a')} 1401 1101 ${ascii('p')} 25 1101 ${ascii('x')} 0e00 1401 1101 ${ascii('q')} 250102`)],
  ['igbinary', IG(`1402 1101 ${ascii('a')} 25 1101 ${ascii('x')} 0e00 250101`)],
  ['igbinary', IG(`1402 1101 ${ascii('o')} 1708 ${ascii('stdClass')} 1400 1101 ${ascii('p')} 2201`)],
  ['igbinary', IG(`1402 1101 ${ascii('o')} 1708 ${ascii('stdClass')} 1400 1101 ${ascii('p')} 2202`)],
  ['igbinary', IG(`1401 1101 ${ascii('o')} 1707 ${ascii('Closure')} 1400`)],
  ['igbinary', IG(`1401 1101 ${ascii('s')} 1303 00000000`)],
  ['igbinary', IG(`1401 1101 ${ascii('s')} 26 0000000000000003 ${ascii('abc')}`)],
  ['igbinary', IG(`1401 1101 ${ascii('d')} 0c 7ff8000000000000`)],
  ['igbinary', IG(`1401 1101 ${ascii('d')} 0c 8000000000000000`)],
  ['igbinary', IG(`1401 1101 ${ascii('d')} 0c 7ff0`)],
  ['igbinary', IG(`1401 1101 ${ascii('7')} 0601`)],
  ['igbinary', IG(`1401 0d 0601`)],
  ['igbinary', IG(`1401 1101 ${ascii('a')} 0101`)],
  ['igbinary', IG(`1401 1101 ${ascii('a')} 0100`)],
  ['igbinary', IG(`1401 1101 ${ascii('a')} 28`)],
];
export const edgeCases: Case[] = edgeRaw.map(([handler, bytes]) => ({
  label: `${handler} ${JSON.stringify(bytes.toString('latin1')).slice(0, 80)}`,
  handler,
  bytes,
}));

/**
 * The QA cases (test/fixtures/cases/BUG-XX: inputs + expected.json) as assertions. Inputs and expected
 * values are read from the fixtures, so a changed case changes the test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type DecodeResult,
  type SerializeHandler,
  type SessionEntries,
  classifySession,
  decodeSession,
  sniffFormat,
  toValueModel,
} from '../src/index.ts';
import { PHP_ARGS, casesDir } from './helpers.ts';

const input = (bug: string, file: string): Buffer => readFileSync(path.join(casesDir, bug, file));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const expected = (bug: string): any => JSON.parse(readFileSync(path.join(casesDir, bug, 'expected.json'), 'utf8'));

function ok(r: DecodeResult): { entries: SessionEntries; warnings: string[] } {
  if (!r.ok) throw new Error(`expected ok, got ${r.error} @${r.offset}`);
  return r;
}
const model = (bytes: Buffer, handler: SerializeHandler): unknown => toValueModel(ok(decodeSession(bytes, handler)).entries);

/** An error message must not leak session content (this is printed by a security tool). */
function expectNoContent(r: DecodeResult, secrets: string[]): void {
  expect(r.ok).toBe(false);
  if (r.ok) return;
  for (const s of secrets) expect(r.error).not.toContain(s);
  expect(r.error.length).toBeLessThan(120);
}

describe('BUG-01: a key containing "|" (php serializer)', () => {
  const exp = expected('BUG-01');

  it('PHP writes a 0-byte file for fill.php; the reader takes it as a valid empty session', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bug01-'));
    const out = execFileSync(
      'php',
      [
        ...PHP_ARGS,
        path.join(casesDir, 'tools/php-session-write.php'),
        dir,
        'php',
        'pipekey0000000000000000000000001',
        path.join(casesDir, 'BUG-01/fill.php'),
      ],
      { encoding: 'utf8' },
    );
    const written = JSON.parse(out.trim().split('\n').at(-1)!) as { bytes_hex: string; length: number };
    expect(written.length).toBe(exp.php_8_2_observed['file_written_for_fill.php'].length);
    const bytes = Buffer.from(written.bytes_hex, 'hex');
    const want = exp.expected_toolkit.reader.zero_byte_sess_file;
    expect(sniffFormat(bytes)).toBe(want.format);
    expect(model(bytes, 'php')).toEqual(want.session);
    const c = classifySession(bytes, 'php');
    // expected.json says status "ok" (= not an error); the classification names it 'empty'
    expect(c).toEqual({ format: 'empty', status: 'empty', phpAccepts: true, serializerMismatch: false, warnings: [] });
  });

  it('the crafted payload is corrupt, as PHP (decode_ok=false) says, and not migrated', () => {
    const bytes = input('BUG-01', 'sess_crafted_pipe_key');
    const want = exp.expected_toolkit.reader.sess_crafted_pipe_key;
    expect(exp.php_8_2_observed.decode_sess_crafted_pipe_key.decode_ok).toBe(false);
    const r = decodeSession(bytes, 'php');
    expectNoContent(r, ['user', 'alice', 'foo', 'bar', 'value']);
    const c = classifySession(bytes, 'php');
    expect(c.status).toBe(want.status);
    expect(c.phpAccepts).toBe(want.migrate);
    expect(c.format).toBe('php');
  });
});

describe('BUG-02: values containing "|", newlines, serialized strings; ReDoS input', () => {
  const exp = expected('BUG-02').expected_toolkit;
  for (const name of ['sess_pipe_in_value', 'sess_newline_in_value', 'sess_nested_serialized_value', 'sess_redos']) {
    it(name, () => {
      const bytes = input('BUG-02', name);
      expect(sniffFormat(bytes)).toBe(exp[name].format);
      expect(model(bytes, 'php')).toEqual(exp[name].session);
    });
  }

  it(`sess_redos decodes in under ${exp.sess_redos.max_decode_ms} ms, and so does a 100x longer variant`, () => {
    const bytes = input('BUG-02', 'sess_redos');
    const value = `${'a;'.repeat(3000)}|x`;
    const longBytes = Buffer.from(`k|s:${value.length}:"${value}";`);
    expect(decodeSession(longBytes, 'php').ok).toBe(true);
    for (const b of [bytes, longBytes]) {
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) decodeSession(b, 'php');
      expect((performance.now() - t0) / 10).toBeLessThan(exp.sess_redos.max_decode_ms);
    }
  });
});

describe('BUG-03: s:N counts bytes; non-UTF-8 stays bytes', () => {
  const exp = expected('BUG-03').expected_toolkit;
  for (const name of ['sess_utf8', 'sess_latin1', 'sess_shift_jis']) {
    it(name, () => {
      const bytes = input('BUG-03', name);
      expect(sniffFormat(bytes)).toBe(exp[name].format);
      expect(model(bytes, 'php')).toEqual(exp[name].session);
    });
  }

  it('decoded strings are the exact file bytes (no lossy conversion)', () => {
    const bytes = input('BUG-03', 'sess_latin1');
    const [[, v]] = ok(decodeSession(bytes, 'php')).entries as [[string, { type: string; bytes: Buffer }]];
    expect(v.type).toBe('string');
    expect(v.bytes.equals(Buffer.from('4a6f73e9', 'hex'))).toBe(true);
    expect(bytes.includes(v.bytes)).toBe(true);
  });
});

describe('BUG-04: r:/R: back-references share one slot table across keys', () => {
  const exp = expected('BUG-04').expected_toolkit;
  for (const handler of ['php', 'php_binary', 'php_serialize'] as const) {
    it(`sess_refs_${handler}`, () => {
      const bytes = input('BUG-04', `sess_refs_${handler}`);
      expect(sniffFormat(bytes)).toBe(handler);
      expect(model(bytes, handler)).toEqual(exp.session_for_all_three_formats);
    });
  }

  it('c and d are one PHP reference; a and b one object (identity, not just equal values)', () => {
    const { entries } = ok(decodeSession(input('BUG-04', 'sess_refs_php'), 'php'));
    const [a, b, c, d] = entries.map(([, v]) => v);
    expect(a).toBe(b);
    expect(c!.type).toBe('reference');
    expect(d!.type === 'reference' && c!.type === 'reference' && d!.target === c!.target).toBe(true);
  });

  it('a bare r:1; / R:4; (what a split-per-key reader does) fails, as in PHP', () => {
    expect(decodeSession(Buffer.from('b|r:1;'), 'php').ok).toBe(false);
    expect(decodeSession(Buffer.from('d|R:4;'), 'php').ok).toBe(false);
  });
});

describe('BUG-05: objects without a class registry', () => {
  const exp = expected('BUG-05').expected_toolkit;
  it('keeps mangled names and the C: payload', () => {
    const bytes = input('BUG-05', 'sess_objects_php');
    expect(model(bytes, 'php')).toEqual(exp.session);
    expect(ok(decodeSession(bytes, 'php')).warnings).toContain('serializable-object');
  });
});

describe('BUG-07: malformed and truncated payloads', () => {
  const exp = expected('BUG-07').expected_toolkit;
  for (const name of ['sess_trailing_garbage', 'sess_missing_semicolon', 'sess_truncated', 'sess_trailing_newline']) {
    it(`${name} is corrupt as a whole (php)`, () => {
      const bytes = input('BUG-07', name);
      const c = classifySession(bytes, 'php');
      expect(c.status).toBe(exp[name].status);
      expect(c.phpAccepts).toBe(exp[name].migrate);
      expect(c.format).toBe('php');
      expectNoContent(decodeSession(bytes, 'php'), ['Alic', 'trailing', 'uid', 'name']);
    });
  }

  it('php_serialize with trailing bytes: decoded, flagged, accepted by PHP', () => {
    const want = exp.sess_php_serialize_trailing;
    const bytes = input('BUG-07', 'sess_php_serialize_trailing');
    const r = ok(decodeSession(bytes, 'php_serialize'));
    expect(toValueModel(r.entries)).toEqual(want.session);
    expect(r.warnings).toContain(want.warning);
    const c = classifySession(bytes, 'php_serialize');
    expect(c).toMatchObject({ format: 'php_serialize', status: 'ok', phpAccepts: want.migrate, serializerMismatch: false });
    expect(c.warnings).toContain(want.warning);
  });
});

describe('BUG-08: serializer mismatch (configured igbinary)', () => {
  const exp = expected('BUG-08').expected_toolkit;
  const dir = path.join(casesDir, 'BUG-08/sessions');
  const ini = readFileSync(path.join(casesDir, 'BUG-08/php.ini'), 'utf8');
  const configured = /^\s*session\.serialize_handler\s*=\s*(\w+)/m.exec(ini)![1] as SerializeHandler;

  it('php.ini configures igbinary', () => expect(configured).toBe('igbinary'));

  for (const [file, format] of Object.entries(exp.format_sniffing as Record<string, string>)) {
    it(`sniffs ${file} as ${format}`, () => {
      expect(sniffFormat(readFileSync(path.join(dir, file)))).toBe(format);
    });
  }

  it('reports the mismatch with counts per found format', () => {
    const found: Record<string, number> = {};
    let mismatched = 0;
    for (const file of readdirSync(dir)) {
      const c = classifySession(readFileSync(path.join(dir, file)), configured);
      found[c.format] = (found[c.format] ?? 0) + 1;
      if (c.serializerMismatch) mismatched++;
      if (c.format === 'igbinary') expect(c).toMatchObject({ status: 'ok', phpAccepts: true, serializerMismatch: false });
      else expect(c).toMatchObject({ status: 'corrupt', phpAccepts: false, serializerMismatch: true });
    }
    expect(found).toEqual(exp.audit_finding.found);
    expect(mismatched).toBe(1);
  });

  it('each file decodes with its DETECTED format', () => {
    for (const file of readdirSync(dir)) {
      const bytes = readFileSync(path.join(dir, file));
      expect(decodeSession(bytes, sniffFormat(bytes) as SerializeHandler).ok).toBe(true);
    }
  });
});

describe('BUG-10: int keys and long keys per serializer', () => {
  const exp = expected('BUG-10').expected_toolkit;
  const expand = (v: unknown): unknown => JSON.parse(JSON.stringify(v).replaceAll('<128 x k>', 'k'.repeat(128)));

  for (const handler of ['php', 'php_binary', 'php_serialize'] as const) {
    it(`sess_numeric_${handler}`, () => {
      const bytes = input('BUG-10', `sess_numeric_${handler}`);
      expect(sniffFormat(bytes)).toBe(handler);
      expect(model(bytes, handler)).toEqual(expand(exp[`sess_numeric_${handler}`].session));
    });
  }

  it('sess_numeric_igbinary: the payload holds all four, PHP sees two', () => {
    const bytes = input('BUG-10', 'sess_numeric_igbinary');
    const want = exp.sess_numeric_igbinary;
    expect(sniffFormat(bytes)).toBe('igbinary');
    const r = ok(decodeSession(bytes, 'igbinary')) as { entries: SessionEntries; warnings: string[]; payloadEntries?: SessionEntries };
    expect(toValueModel(r.entries)).toEqual(expand(want.session_as_php_sees_it));
    expect(toValueModel(r.payloadEntries!)).toEqual(expand(want.payload));
    expect(r.warnings).toEqual(expect.arrayContaining(['session-numeric-key', 'session-key-too-long']));
  });

  it('php_serialize keeps int keys as ints and flags them for the audit', () => {
    const r = ok(decodeSession(input('BUG-10', 'sess_numeric_php_serialize'), 'php_serialize'));
    expect(r.entries.map(([k]) => typeof k)).toEqual(['string', 'number', 'number', 'string']);
    expect(r.warnings).toEqual(expect.arrayContaining(['session-numeric-key', 'session-key-too-long']));
  });
});

/**
 * Test helpers: where the QA cases are (test/fixtures/cases), how to ask real PHP (the oracle), and how to compare.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SerializeHandler, SessionEntries } from '../src/index.ts';
import { handleNumericKey } from '../src/unserialize.ts';
import { renderValueModel } from '../src/value-model.ts';
import { CASES_DIR } from '../../../test/support/fixtures.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The monorepo root (packages/php-session/test -> ../../..). */
export const repoRoot = path.resolve(here, '../../..');
/** The known-fault cases and the oracle scripts (tools/), in the repository (test/fixtures/README.md). */
export const casesDir = CASES_DIR;
export const normScript = path.join(casesDir, 'tools/php-session-norm.php');
export const generatorScript = path.join(here, 'fixtures/gen-sessions.php');
export const batchScript = path.join(here, 'fixtures/norm-batch.php');
export const decodeOkScript = path.join(here, 'fixtures/decode-ok.php');

/** `php -n` plus igbinary, as the shared confirm scripts run it. */
export const PHP_ARGS = ['-n', '-d', 'extension=igbinary', '-d', 'display_errors=stderr'];

export interface OracleResult {
  /** false when PHP crashed or printed no JSON (e.g. its printer recursed on a cyclic value) */
  parsed: boolean;
  decodeOk: boolean;
  warnings: string[];
  session: unknown;
  raw: string;
}

/** Runs the generator: payloads PHP itself encoded, per handler. */
export function generatePayloads(): Array<{ name: string; handler: SerializeHandler; bytes: Buffer }> {
  const out = execFileSync('php', [...PHP_ARGS, generatorScript], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const list = JSON.parse(out) as Array<{ name: string; handler: SerializeHandler; hex: string }>;
  return list.map((x) => ({ name: x.name, handler: x.handler, bytes: Buffer.from(x.hex, 'hex') }));
}

let tmp: string | undefined;
let counter = 0;

function writePayload(bytes: Buffer): string {
  if (tmp === undefined) {
    const dir = mkdtempSync(path.join(tmpdir(), 'php-session-oracle-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    tmp = dir;
  }
  const file = path.join(tmp, `payload-${process.pid}-${counter++}`);
  writeFileSync(file, bytes);
  return file;
}

function parseOracleLine(line: string): OracleResult {
  try {
    const j = parseJsonBig(line) as { decode_ok: boolean; warnings: string[]; session: unknown };
    return { parsed: true, decodeOk: j.decode_ok, warnings: j.warnings, session: j.session, raw: line };
  } catch {
    return { parsed: false, decodeOk: false, warnings: [], session: null, raw: line.slice(0, 500) };
  }
}

/**
 * Same as {@link runOracle} for many payloads in few PHP processes (fixtures/norm-batch.php runs the
 * norm script's own printing functions). A payload that kills PHP is reported as not parsed.
 */
export function runOracleBatch(items: Array<{ bytes: Buffer; handler: SerializeHandler }>): OracleResult[] {
  const files = items.map((it) => `${it.handler}\t${writePayload(it.bytes)}`);
  const out: OracleResult[] = [];
  while (out.length < items.length) {
    const rest = files.slice(out.length);
    const r = spawnSync('php', [...PHP_ARGS, batchScript, normScript, '--define-classes'], {
      input: rest.join('\n') + '\n',
      encoding: 'utf8',
      maxBuffer: 1 << 30,
      timeout: 120_000,
    });
    const lines = (r.stdout ?? '').split('\n');
    let got = 0;
    for (const line of lines) {
      const tab = line.indexOf('\t');
      if (tab < 0 || Number(line.slice(0, tab)) !== got) continue;
      out.push(parseOracleLine(line.slice(tab + 1)));
      got++;
    }
    if (out.length < items.length && got < rest.length) {
      out.push({ parsed: false, decodeOk: false, warnings: [], session: null, raw: `php died: ${(r.stderr ?? '').slice(0, 300)}` });
    }
  }
  return out;
}

/** PHP's session_decode() verdict only (for payloads whose value the norm script cannot print). */
export function phpDecodeOk(bytes: Buffer, handler: SerializeHandler): boolean {
  const out = execFileSync('php', [...PHP_ARGS, decodeOkScript, writePayload(bytes), handler], { encoding: 'utf8' });
  return out.trim() === 'true';
}

/** Decodes `bytes` with PHP's own session_decode() via the shared norm script. */
export function runOracle(bytes: Buffer, handler: SerializeHandler, defineClasses = true): Promise<OracleResult> {
  const args = [...PHP_ARGS, normScript, writePayload(bytes), handler];
  if (defineClasses) args.push('--define-classes');
  return new Promise((resolve) => {
    execFile('php', args, { encoding: 'utf8', timeout: 20_000, maxBuffer: 256 << 20 }, (_err, stdout) => {
      resolve(parseOracleLine(stdout.trim().split('\n').at(-1) ?? ''));
    });
  });
}

/** Runs async jobs with bounded concurrency, keeping order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * JSON.parse that keeps integers outside +-2^53 exact as bigint (PHP prints PHP_INT_MAX as a bare
 * number). Small recursive-descent parser; only for oracle output.
 */
export function parseJsonBig(text: string): unknown {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        const k = value() as string;
        ws();
        if (text[i++] !== ':') throw new Error('bad json');
        o[k] = value();
        ws();
        const d = text[i++];
        if (d === '}') return o;
        if (d !== ',') throw new Error('bad json');
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        const d = text[i++];
        if (d === ']') return a;
        if (d !== ',') throw new Error('bad json');
      }
    }
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') {
        if (text[j] === '\\') j++;
        j++;
        if (j > text.length) throw new Error('bad json');
      }
      const s = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      return s;
    }
    const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?|^true|^false|^null/.exec(text.slice(i, i + 400));
    if (!m) throw new Error('bad json');
    i += m[0].length;
    if (/^-?\d+$/.test(m[0])) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return JSON.parse(m[0]);
  };
  const v = value();
  ws();
  if (i !== text.length) throw new Error('bad json');
  return v;
}

/** JSON.stringify that prints bigints, for assertion messages. */
export function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
}

/**
 * Our decoded entries as php-session-norm.php prints them. Two things are the norm script's, not the
 * decoder's:
 * - `C:` objects: PHP drops the payload of a class it does not have and shows an empty object;
 * - a string array key that looks like an int ("7") exists in PHP's hash (php/php_binary session names,
 *   igbinary arrays) but the script reads it as `$a["7"]`, which looks up the INT key 7: it prints that
 *   entry's value, or null.
 * Enum class names are compared case-insensitively (PHP prints the declared spelling).
 */
export function oracleView(entries: SessionEntries): unknown {
  const model = renderValueModel(entries, {
    serializableAsObject: true,
    slotValue: (list, index, isProperty) => {
      const [k, v] = list[index]!;
      const n = typeof k === 'string' && !isProperty ? handleNumericKey(k) : null;
      if (n === null) return v;
      const sibling = list.find(([k2]) => (typeof k2 === 'number' || typeof k2 === 'bigint') && BigInt(k2) === n);
      return sibling ? sibling[1] : { type: 'null' };
    },
  });
  return lowerEnums(model);
}

/** Lower-cases the class part of every `$enum` (PHP class names are case-insensitive). */
export function lowerEnums(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(lowerEnums);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '$enum' && typeof x === 'string') {
      const i = x.indexOf(':');
      out[k] = x.slice(0, i).toLowerCase() + x.slice(i);
    } else out[k] = lowerEnums(x);
  }
  return out;
}

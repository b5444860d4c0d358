/**
 * PHP session payload decoding, sniffing and classification.
 *
 * Handlers follow php-src ext/session/session.c (PHP 8.2): `PS_SERIALIZER_DECODE_FUNC(php)`,
 * `PS_SERIALIZER_DECODE_FUNC(php_binary)`, `PS_SERIALIZER_DECODE_FUNC(php_serialize)`, and igbinary's
 * `PS_SERIALIZER_DECODE_FUNC(igbinary)` (igbinary src/php7/igbinary.c). Values follow
 * ext/standard/var_unserializer.re (see unserialize.ts) and igbinary's format (see igbinary.ts).
 */
import { bytesToName, nameByteLength, phpKeyBytes } from './bytes.ts';
import { SERIALIZE_HANDLERS as HANDLER_NAMES } from '@session-migrate/common';
import { IgbinaryDecoder, hasIgbinaryHeader } from './igbinary.ts';
import { type PhpEntry, type PhpValue, NULL_VALUE } from './model.ts';
import { DEFAULT_MAX_DEPTH, UnserializeError, VarUnserializer, handleNumericKey } from './unserialize.ts';
import { type Verdict, validateSession } from './validate.ts';

/** A session.serialize_handler this package decodes; the list's one home is @session-migrate/common. */
export type SerializeHandler = (typeof HANDLER_NAMES)[number];

export const SERIALIZE_HANDLERS: readonly SerializeHandler[] = HANDLER_NAMES;

/**
 * Session variables in order. String keys are names decoded losslessly (see `phpKeyBytes` for the exact
 * bytes); number keys are PHP int keys (only php_serialize keeps them at the top level).
 */
export type SessionEntries = Array<[string | number, PhpValue]>;

/**
 * Result of {@link decodeSession}. Warnings are stable ids:
 * - `trailing-bytes-ignored-by-php`: bytes after the payload that PHP ignores (php_serialize, igbinary);
 * - `session-numeric-key`: a top-level key that is an int or a numeric string. PHP's php, php_binary
 *   and igbinary handlers drop int keys (and a numeric-string name from a php/php_binary payload is
 *   stored as a string key that `$_SESSION[0]` cannot reach); php_serialize keeps them, but they are lost
 *   as soon as the handler changes;
 * - `session-key-too-long`: a top-level key longer than 127 bytes, which the php_binary serializer drops
 *   without a warning;
 * - `session-key-duplicate`: a php/php_binary key given twice (the later value wins, in the first
 *   position);
 * - `int-out-of-range-clamped`: an int PHP clamps (var_unserializer) or zeroes (igbinary), with a PHP
 *   warning;
 * - `int-key-precision-lost`: a php_serialize top-level int key beyond +-2^53 (given as a rounded number);
 * - `serializable-object`: a Serializable (`C:`/igbinary object_ser) object; its payload is kept, but PHP
 *   needs the class: without it the `php*` handlers drop the payload and igbinary fails;
 * - `enum-requires-class`: an enum case; PHP fails to decode the session unless the enum is loaded.
 *
 * `payloadEntries` is present when the payload holds top-level entries that PHP's session decoder drops
 * (igbinary int keys): it lists everything in payload order.
 *
 * Errors are short, fixed descriptions and an offset; they never contain session content.
 */
export type DecodeResult =
  { ok: true; entries: SessionEntries; warnings: string[]; payloadEntries?: SessionEntries } | { ok: false; error: string; offset: number };

export interface DecodeOptions {
  /** unserialize_max_depth (php, php_binary, php_serialize). Default 4096, PHP's default. 0 = no limit. */
  maxDepth?: number;
}

interface Internal {
  result: DecodeResult;
  /** Would PHP's session_decode() return true (and keep the session)? */
  phpAccepts: boolean;
  /** Top-level entries decoded before a failure (used to sniff corrupt payloads). */
  decodedEntries: number;
}

class Warnings {
  private readonly ids = new Set<string>();
  readonly add = (id: string): void => {
    this.ids.add(id);
  };
  list(): string[] {
    return [...this.ids];
  }
}

function failure(err: UnserializeError | null, fallback: string, offset: number, decodedEntries: number, phpAccepts = false): Internal {
  return {
    result: { ok: false, error: err?.message ?? fallback, offset: err?.offset ?? offset },
    phpAccepts,
    decodedEntries,
  };
}

function checkTopLevelKey(key: string | number | bigint, warnings: Warnings): void {
  if (typeof key !== 'string') {
    warnings.add('session-numeric-key');
    return;
  }
  if (handleNumericKey(key) !== null) warnings.add('session-numeric-key');
  // a UTF-16 unit encodes to at most 3 bytes: only longer names need the exact byte count
  if (key.length > 42 && nameByteLength(key) > 127) warnings.add('session-key-too-long');
}

/**
 * Top-level variables set one by one with php_set_session_var(): zend_hash_update() on a string key,
 * i.e. no numeric normalisation, and a repeated name overwrites the value in its first position.
 * Each value sits in its own cell (PHP: a var_tmp_var(), resolved by php_session_normalize_vars()), so
 * back-references into it still work after the name is overwritten.
 */
class SessionVars {
  private readonly cells = new Map<string, PhpEntry[]>();
  constructor(private readonly warnings: Warnings) {}
  set(name: string, cell: PhpEntry[]): void {
    if (this.cells.has(name)) this.warnings.add('session-key-duplicate');
    else checkTopLevelKey(name, this.warnings);
    this.cells.set(name, cell);
  }
  entries(): SessionEntries {
    return [...this.cells].map(([name, cell]) => [name, cell[0]![1]]);
  }
}

/** PS_SERIALIZER_DECODE_FUNC(php): `name|value` repeated; the name is every byte up to the first '|'. */
function decodePhp(bytes: Buffer, maxDepth: number): Internal {
  const warnings = new Warnings();
  const vars = new SessionVars(warnings);
  const u = new VarUnserializer(bytes, 0, bytes.length, warnings.add, maxDepth);
  let decoded = 0;
  let p = 0;
  while (p < bytes.length) {
    const q = bytes.indexOf(0x7c, p);
    if (q < 0) return failure(null, 'session key not followed by "|"', p, decoded);
    const cell: PhpEntry[] = [[0, NULL_VALUE]];
    u.pos = q + 1;
    if (!u.unserializeInto(cell, 0)) return failure(u.error, 'invalid value', q + 1, decoded);
    vars.set(bytesToName(bytes, p, q), cell);
    decoded++;
    p = u.pos;
  }
  return { result: { ok: true, entries: vars.entries(), warnings: warnings.list() }, phpAccepts: true, decodedEntries: decoded };
}

/**
 * PS_SERIALIZER_DECODE_FUNC(php_binary): one length byte (the 0x80 bit is masked off and ignored by
 * PHP 8.x), that many name bytes, then a value. Fails when the name would reach the end of the data.
 */
function decodePhpBinary(bytes: Buffer, maxDepth: number): Internal {
  const warnings = new Warnings();
  const vars = new SessionVars(warnings);
  const u = new VarUnserializer(bytes, 0, bytes.length, warnings.add, maxDepth);
  let decoded = 0;
  let p = 0;
  while (p < bytes.length) {
    const namelen = bytes[p]! & 0x7f;
    if (p + namelen >= bytes.length) return failure(null, 'session key length exceeds the data', p, decoded);
    const name = bytesToName(bytes, p + 1, p + 1 + namelen);
    const cell: PhpEntry[] = [[0, NULL_VALUE]];
    u.pos = p + 1 + namelen;
    if (!u.unserializeInto(cell, 0)) return failure(u.error, 'invalid value', u.pos, decoded);
    vars.set(name, cell);
    decoded++;
    p = u.pos;
  }
  return { result: { ok: true, entries: vars.entries(), warnings: warnings.list() }, phpAccepts: true, decodedEntries: decoded };
}

/** Top-level array entries -> SessionEntries (bigint int keys cannot be a JS number exactly). */
function arrayToSession(
  list: PhpEntry[],
  warnings: Warnings,
  dropIntKeys: boolean,
): {
  entries: SessionEntries;
  all: SessionEntries;
  dropped: boolean;
} {
  const entries: SessionEntries = [];
  const all: SessionEntries = [];
  let dropped = false;
  for (const [k, v] of list) {
    let key: string | number;
    if (typeof k === 'bigint') {
      warnings.add('int-key-precision-lost');
      key = Number(k);
    } else key = k;
    checkTopLevelKey(k, warnings);
    all.push([key, v]);
    if (dropIntKeys && typeof key === 'number') {
      dropped = true;
      continue;
    }
    entries.push([key, v]);
  }
  return { entries, all, dropped };
}

/**
 * PS_SERIALIZER_DECODE_FUNC(php_serialize): one serialize()d value; the outer array is back-reference
 * slot 1. Bytes after it are ignored (no check in session.c). `N;` gives an empty session; any other
 * non-array value is accepted by PHP but leaves $_SESSION a non-array, which we report as an error.
 */
function decodePhpSerialize(bytes: Buffer, maxDepth: number): Internal {
  const warnings = new Warnings();
  const holder: PhpEntry[] = [[0, NULL_VALUE]];
  const u = new VarUnserializer(bytes, 0, bytes.length, warnings.add, maxDepth);
  if (!u.unserializeInto(holder, 0)) return failure(u.error, 'invalid value', 0, 0);
  if (u.pos < bytes.length) warnings.add('trailing-bytes-ignored-by-php');
  let root = holder[0]![1];
  if (root.type === 'reference') root = root.target.value;
  if (root.type === 'null') return { result: { ok: true, entries: [], warnings: warnings.list() }, phpAccepts: true, decodedEntries: 0 };
  if (root.type !== 'array') return failure(null, 'php_serialize payload is not an array', 0, 0, true);
  const { entries } = arrayToSession(root.entries, warnings, false);
  return { result: { ok: true, entries, warnings: warnings.list() }, phpAccepts: true, decodedEntries: entries.length };
}

/**
 * PS_SERIALIZER_DECODE_FUNC(igbinary): header + one value that must be an array (or an object, whose
 * properties are used). Int keys are skipped ("array key is a number, how? Skip it."); trailing bytes
 * are not checked.
 */
function decodeIgbinary(bytes: Buffer): Internal {
  const warnings = new Warnings();
  const dec = new IgbinaryDecoder(bytes, warnings.add);
  const root = dec.decodeRoot();
  if (root === null) return failure(dec.error, 'invalid igbinary payload', dec.pos, 0);
  if (dec.pos < bytes.length) warnings.add('trailing-bytes-ignored-by-php');
  let list: PhpEntry[];
  if (root.type === 'array') {
    list = root.entries;
  } else if (root.type === 'object') {
    // HASH_OF(object) is its property table; for an incomplete class that starts with the class name.
    list =
      root.className === 'stdClass'
        ? root.props
        : [['__PHP_Incomplete_Class_Name', { type: 'string', bytes: phpKeyBytes(root.className) }], ...root.props];
  } else {
    return failure(null, 'igbinary payload is not an array', 4, 0);
  }
  const { entries, all, dropped } = arrayToSession(list, warnings, true);
  const result: DecodeResult = { ok: true, entries, warnings: warnings.list() };
  if (dropped) result.payloadEntries = all;
  return { result, phpAccepts: true, decodedEntries: entries.length };
}

function decodeInternal(bytes: Buffer, handler: SerializeHandler, options: DecodeOptions = {}): Internal {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (bytes.length === 0) {
    // every handler accepts an empty payload as an empty session (e.g. `return result || !vallen ...`)
    return { result: { ok: true, entries: [], warnings: [] }, phpAccepts: true, decodedEntries: 0 };
  }
  switch (handler) {
    case 'php':
      return decodePhp(bytes, maxDepth);
    case 'php_binary':
      return decodePhpBinary(bytes, maxDepth);
    case 'php_serialize':
      return decodePhpSerialize(bytes, maxDepth);
    case 'igbinary':
      return decodeIgbinary(bytes);
    default:
      return failure(null, 'unknown serialize handler', 0, 0);
  }
}

/**
 * Decodes a session payload exactly as PHP's session module does for `handler`
 * (php-src ext/session/session.c PS_SERIALIZER_DECODE_FUNC(php|php_binary|php_serialize), igbinary's
 * PS_SERIALIZER_DECODE_FUNC(igbinary)); values per ext/standard/var_unserializer.re. A payload PHP
 * rejects is `ok: false` as a whole (PHP destroys such a session; nothing is partially decoded). Linear
 * time, no recursion; never throws for any input.
 */
export function decodeSession(bytes: Buffer, handler: SerializeHandler, options?: DecodeOptions): DecodeResult {
  try {
    return decodeInternal(bytes, handler, options).result;
  } catch {
    // Defensive: the decoders are written not to throw; never let a bug surface session bytes.
    return { ok: false, error: 'internal decoder error', offset: 0 };
  }
}

function startsLikePhpSerialize(bytes: Buffer): boolean {
  if (bytes.length < 5 || bytes[0] !== 0x61 || bytes[1] !== 0x3a) return false;
  let i = 2;
  while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39) i++;
  return i > 2 && bytes[i] === 0x3a && bytes[i + 1] === 0x7b;
}

/** One decode attempt as classification sees it (see validate.ts). */
type Decide = (bytes: Buffer, handler: SerializeHandler) => Verdict;

/**
 * @internal The decoder's verdict: the reference that {@link validateSession} must reproduce.
 * `decodedEntries` is only meaningful (and only used) for php and php_binary.
 */
export function decodeVerdict(bytes: Buffer, handler: SerializeHandler): Verdict {
  const { result, phpAccepts, decodedEntries } = decodeInternal(bytes, handler);
  return {
    ok: result.ok,
    phpAccepts,
    decodedEntries: handler === 'php' || handler === 'php_binary' ? decodedEntries : 0,
    warnings: result.ok ? result.warnings : [],
  };
}

/** The validating pass; should it ever throw, the decoder decides instead (same verdict by definition). */
function fastVerdict(bytes: Buffer, handler: SerializeHandler): Verdict {
  try {
    return validateSession(bytes, handler);
  } catch {
    return decodeVerdict(bytes, handler);
  }
}

interface Sniffed {
  format: SerializeHandler | 'empty' | 'unknown';
  /** every attempt made while sniffing (decoding is deterministic: classification reuses them) */
  tried: Partial<Record<SerializeHandler, Verdict>>;
}

function sniffDetailed(bytes: Buffer, decide: Decide): Sniffed {
  const tried: Partial<Record<SerializeHandler, Verdict>> = {};
  if (bytes.length === 0) return { format: 'empty', tried };
  if (hasIgbinaryHeader(bytes)) return { format: 'igbinary', tried };
  const serializeShape = startsLikePhpSerialize(bytes);
  if (serializeShape) {
    const ser = (tried.php_serialize = decide(bytes, 'php_serialize'));
    if (ser.ok) return { format: 'php_serialize', tried };
  }
  const php = (tried.php = decide(bytes, 'php'));
  if (php.ok) return { format: 'php', tried };
  const bin = (tried.php_binary = decide(bytes, 'php_binary'));
  if (bin.ok) return { format: 'php_binary', tried };
  // Nothing decodes: name the format the bytes are shaped like (a corrupt payload of that format).
  if (serializeShape) return { format: 'php_serialize', tried };
  if (php.decodedEntries > 0) return { format: 'php', tried };
  if (bin.decodedEntries > 0) return { format: 'php_binary', tried };
  return { format: 'unknown', tried };
}

/**
 * Guesses the serializer from the bytes: igbinary = `00 00 00 01/02` header, php_serialize =
 * `a:N:{` and a valid serialized value, php = `name|value...`, php_binary = length byte, name, value.
 * When the payload is valid for none of them, the format whose first entry decodes is named (a corrupt
 * payload of that format); 'unknown' otherwise; 'empty' for 0 bytes.
 */
export function sniffFormat(bytes: Buffer): SerializeHandler | 'empty' | 'unknown' {
  try {
    return sniffDetailed(bytes, fastVerdict).format;
  } catch {
    return 'unknown';
  }
}

/**
 * A `php` handler record start: a variable name (printable ASCII without `|`, as PHP's own session
 * variables are named) then `|` and a length-prefixed string, array or object (`s:N:`, `a:N:`, `O:N:`):
 * what a session whose first value is too long to see whole begins with (sniffFormat names a format
 * only when its first entry decodes).
 */
const PHP_RECORD_START = /^[\x20-\x7b\x7d\x7e]{1,128}\|[saO]:\d{1,10}:/;

/**
 * Whether the first bytes of a value too long to read whole (`head`) begin like a PHP session
 * payload: a format sniffFormat recognises (its first entry decodes), or a `php` handler record
 * whose first value runs past the head (PHP_RECORD_START). A heuristic, for deciding which long
 * values verify reads whole to classify exactly; never throws.
 */
export function headLooksLikeSession(head: Buffer): boolean {
  const format = sniffFormat(head);
  if (format !== 'unknown' && format !== 'empty') return true;
  return PHP_RECORD_START.test(head.subarray(0, 160).toString('latin1'));
}

/** What plan needs per session file. */
export interface SessionClassification {
  /** sniffed */
  format: SerializeHandler | 'empty' | 'unknown';
  /** 'corrupt' = PHP's session_decode would fail for the configured handler (or yield a non-array) */
  status: 'ok' | 'empty' | 'corrupt';
  /** would PHP, configured with `configured`, load this payload without error */
  phpAccepts: boolean;
  /** sniffed format differs from configured and PHP cannot decode it with the configured handler (BUG-08) */
  serializerMismatch: boolean;
  warnings: string[];
}

/**
 * Classifies one session file for the configured `session.serialize_handler`: sniffed format, whether
 * PHP's decoder (ext/session/session.c; igbinary.c for igbinary) accepts it, and whether it is stored
 * in another serializer's format. A payload PHP cannot decode with the configured handler is destroyed
 * by PHP at the next session_start() (php_session_decode -> php_session_cancel_decode), which is why
 * mismatches matter. Classes and enums the payload names are assumed to be loadable by the application.
 */
export function classifySession(bytes: Buffer, configured: SerializeHandler): SessionClassification {
  return classifyWith(bytes, configured, fastVerdict);
}

/**
 * {@link classifySession} computed from full decodes (decodeSession's internals) instead of the
 * validating pass: the reference the fast path is tested against. Same result for every input; several
 * times slower.
 */
export function classifySessionReference(bytes: Buffer, configured: SerializeHandler): SessionClassification {
  return classifyWith(bytes, configured, decodeVerdict);
}

function classifyWith(bytes: Buffer, configured: SerializeHandler, decide: Decide): SessionClassification {
  if (bytes.length === 0) {
    return { format: 'empty', status: 'empty', phpAccepts: true, serializerMismatch: false, warnings: [] };
  }
  try {
    const sniffed = sniffDetailed(bytes, decide);
    const { ok, phpAccepts, warnings } = sniffed.tried[configured] ?? decide(bytes, configured);
    const otherFormat = sniffed.format !== 'unknown' && sniffed.format !== 'empty' && sniffed.format !== configured;
    return {
      format: sniffed.format,
      status: ok ? 'ok' : 'corrupt',
      phpAccepts,
      serializerMismatch: !phpAccepts && otherFormat,
      warnings: ok ? warnings : [],
    };
  } catch {
    return { format: 'unknown', status: 'corrupt', phpAccepts: false, serializerMismatch: false, warnings: [] };
  }
}

/** The order {@link loadableSessionFormat} tries the handlers in: cheapest rejection first for other data. */
const LOAD_ORDER: readonly SerializeHandler[] = ['igbinary', 'php_serialize', 'php', 'php_binary'];

/**
 * Whether a payload that `handler` accepts leaves `$_SESSION` without any variable. php and
 * php_binary read entries until the end of the data, so accepted non-empty bytes hold at least one.
 * php_serialize's session is `N;` or an array `a:N:{...}` (its count is the number of entries);
 * igbinary's an array (array8/16/32 with its count) or an object (its class name, at least).
 */
function loadsEmpty(bytes: Buffer, handler: SerializeHandler): boolean {
  if (handler === 'php_serialize') {
    if (bytes[0] === 0x4e) return true; // N;
    let i = 2;
    let n = 0;
    while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39) n = n * 10 + bytes[i++]! - 0x30;
    return n === 0;
  }
  if (handler === 'igbinary') {
    const type = bytes[4];
    if (type === 0x14) return bytes[5] === 0;
    if (type === 0x15) return bytes.length >= 7 && bytes.readUInt16BE(5) === 0;
    if (type === 0x16) return bytes.length >= 9 && bytes.readUInt32BE(5) === 0;
  }
  return false;
}

/**
 * The serialize_handler under which PHP would load `bytes` as a session holding at least one
 * variable -- `session_decode()` succeeds and `$_SESSION` is a non-empty array (php-src
 * ext/session/session.c PS_SERIALIZER_DECODE_FUNC(php), (php_binary), (php_serialize); igbinary
 * src/php7/igbinary.c PS_SERIALIZER_DECODE_FUNC(igbinary)) -- trying all four, or undefined when none
 * does. Not a session here: empty bytes, a php_serialize scalar such as `i:5;` (PHP accepts it but
 * `$_SESSION` is then no array), and a payload PHP loads as an empty session (see
 * {@link loadsAsEmptySession}): php_serialize ignores whatever follows `N;`, so about one random
 * binary value in 65,536 would otherwise count as a session.
 *
 * Uses the validating pass ({@link validateSession}): no value is decoded, nothing per byte is
 * allocated, and data that is no session is usually rejected within its first bytes, so it can run
 * over every value of a Redis database. Never throws.
 */
export function loadableSessionFormat(bytes: Buffer): SerializeHandler | undefined {
  const loaded = loadedAs(bytes);
  return loaded !== undefined && !loaded.empty ? loaded.handler : undefined;
}

/**
 * Whether PHP would load `bytes` as a session without any variable: empty bytes (every handler), or a
 * payload one of the four handlers accepts as an empty `$_SESSION` (`N;`, `a:0:{}`, an empty igbinary
 * array, each possibly followed by bytes PHP ignores). Never throws.
 */
export function loadsAsEmptySession(bytes: Buffer): boolean {
  if (bytes.length === 0) return true;
  return loadedAs(bytes)?.empty === true;
}

function loadedAs(bytes: Buffer): { handler: SerializeHandler; empty: boolean } | undefined {
  if (bytes.length === 0) return undefined;
  let empty: SerializeHandler | undefined;
  for (const handler of LOAD_ORDER) {
    if (handler === 'igbinary' && !hasIgbinaryHeader(bytes)) continue;
    if (!fastVerdict(bytes, handler).ok) continue;
    if (!loadsEmpty(bytes, handler)) return { handler, empty: false };
    empty ??= handler;
  }
  return empty !== undefined ? { handler: empty, empty: true } : undefined;
}

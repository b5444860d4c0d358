/**
 * Byte helpers. PHP strings are byte strings; session key names and class names are exposed as JS
 * strings through a lossless, unambiguous mapping (PEP 383 "surrogateescape"): valid UTF-8 is decoded
 * normally and every byte that is not part of a valid UTF-8 sequence becomes the lone surrogate
 * U+DC80..U+DCFF. Valid UTF-8 never produces lone surrogates, so {@link phpKeyBytes} restores the exact
 * bytes. String VALUES are never converted: they stay Buffers.
 */
import { isUtf8 } from 'node:buffer';

/** True when every byte is < 0x80. */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}

/** Length of the valid UTF-8 sequence starting at `i` (1..4), or 0 when the byte there starts none. */
function utf8SeqLen(buf: Buffer, i: number, end: number): number {
  const b0 = buf[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    if (i + k >= end) return false;
    const b = buf[i + k]!;
    return b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((b0 >= 0xe1 && b0 <= 0xec) || b0 === 0xee || b0 === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no UTF-16 surrogates
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** Decode `buf[start, end)` to a JS string, escaping invalid bytes as U+DC80..U+DCFF (lossless). */
export function bytesToName(buf: Buffer, start = 0, end = buf.length): string {
  if (isAscii(buf, start, end)) return buf.toString('latin1', start, end);
  const slice = buf.subarray(start, end);
  if (isUtf8(slice)) return slice.toString('utf8');
  let out = '';
  let runStart = start;
  let i = start;
  while (i < end) {
    const n = utf8SeqLen(buf, i, end);
    if (n > 0) {
      i += n;
      continue;
    }
    if (runStart < i) out += buf.toString('utf8', runStart, i);
    out += String.fromCharCode(0xdc00 + buf[i]!);
    i += 1;
    runStart = i;
  }
  if (runStart < end) out += buf.toString('utf8', runStart, end);
  return out;
}

/** True when the name holds escaped (non-UTF-8) bytes. */
export function nameHasRawBytes(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) {
      const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
      if (!(prev >= 0xd800 && prev <= 0xdbff)) return true;
    }
  }
  return false;
}

/**
 * The exact bytes of a key or class name produced by this package (inverse of the decoding above).
 */
export function phpKeyBytes(name: string): Buffer {
  if (!nameHasRawBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    if (c >= 0xdc80 && c <= 0xdcff && !(prev >= 0xd800 && prev <= 0xdbff)) {
      if (run) {
        parts.push(Buffer.from(run, 'utf8'));
        run = '';
      }
      parts.push(Buffer.of(c - 0xdc00));
    } else {
      run += name[i];
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** Byte length of a name produced by {@link bytesToName}. */
export function nameByteLength(name: string): number {
  return nameHasRawBytes(name) ? phpKeyBytes(name).length : Buffer.byteLength(name, 'utf8');
}

/** UTF-8 validity as PHP's preg_match('//u') sees it (no surrogates, no overlongs, <= U+10FFFF). */
export function isValidUtf8(buf: Buffer): boolean {
  return isUtf8(buf);
}

/**
 * Lower-cases ASCII letters only, as PHP's zend_str_tolower does for class names (php-src
 * Zend/zend_operators.c); JS toLowerCase() would also map e.g. U+212A KELVIN SIGN to "k".
 */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

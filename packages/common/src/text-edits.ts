/**
 * Text splicing for the codemods (codemods/php, codemods/cdk), in the manner of jscodeshift's and
 * rector's format-preserving printers: an analysis computes edits at source positions, and only
 * those ranges of the original text change.
 */

/** Replace [start, end) of a text with `text` (offsets in the units of the text: bytes of a binary string, UTF-16 code units). */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/**
 * Applies non-overlapping edits, given in any order; insertions at the same position keep the order
 * they were given in.
 * @throws Error when two edits overlap (a bug of the analysis that made them).
 */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const sorted = edits.map((e, i) => ({ ...e, i })).sort((a, b) => a.start - b.start || a.i - b.i);
  let out = '';
  let at = 0;
  for (const e of sorted) {
    if (e.start < at) throw new Error('internal error: overlapping edits');
    out += text.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + text.slice(at);
}

/** Small output helpers: sizes, one-line tables, the per-source table and a progress line on a TTY. */
import { printable } from '@session-migrate/common';
export { firstFew } from '@session-migrate/common';

/** Formats a byte count for humans (KiB, MiB; 1024-based). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** "a 1, b 2" from a record of counts, largest first; `none` when empty. */
export function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

/**
 * A progress line on stderr, redrawn at most every 100 ms, only when stderr is a terminal.
 * @param total expected number of items (0 when unknown).
 */
export function progressLine(label: string, total: number): { update(done: number): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  const draw = (done: number) => {
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    process.stderr.write(`\r${label} [${bar}] ${done}${total > 0 ? `/${total}` : ''}`);
  };
  return {
    update(done: number) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(done);
    },
    done() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

/**
 * When stderr is not a terminal (a log file, a CI job), a progress line is a new line each time: this
 * decides which ones to write. A line is written when `intervalMs` have passed since the last one
 * written AND its text (its counts) differs from that one: while Redis stalls, the log does not fill
 * with the same counts every interval.
 * @param startMs when the run started, ms since the epoch (default now): the first line waits `intervalMs` from it
 * @returns `shouldWrite(line, nowMs)`, which records the line as written when it answers true.
 */
export function changedProgressLines(intervalMs: number, startMs = Date.now()): (line: string, nowMs?: number) => boolean {
  let lastAt = startMs;
  let last: string | undefined;
  return (line, nowMs = Date.now()) => {
    if (nowMs - lastAt < intervalMs || line === last) return false;
    lastAt = nowMs;
    last = line;
    return true;
  };
}

/**
 * A table with one row per source and a total row: column headers, right-aligned numbers. Lines
 * start with `indent`.
 */
export function sourcesTable(
  headers: readonly string[],
  rows: ReadonlyArray<{ label: string; values: readonly (number | string)[] }>,
  indent = '    ',
): string[] {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r.values[c] ?? '').length)));
  const labelWidth = Math.max(6, ...rows.map((r) => r.label.length));
  const line = (label: string, cells: readonly string[]): string =>
    `${indent}${label.padEnd(labelWidth)}  ${cells.map((v, c) => v.padStart(widths[c]!)).join('  ')}`.trimEnd();
  return [line('source', headers), ...rows.map((r) => line(printable(r.label), r.values.map(String)))];
}

/** Keys named as examples on a summary FAIL line (verify's, rotate's). */
export const SUMMARY_EXAMPLES = 3;

/**
 * ` (key, key, key and N more)`: the first SUMMARY_EXAMPLES of `keys` (key names, made printable),
 * of `count` counted; '' when `keys` is empty.
 */
export function namedExamples(keys: readonly string[], count: number): string {
  const examples = keys.slice(0, SUMMARY_EXAMPLES).map((k) => printable(k));
  return examples.length > 0 ? ` (${examples.join(', ')}${count > examples.length ? ` and ${count - examples.length} more` : ''})` : '';
}

/**
 * The one FAIL line of verify and rotate for values sealed under a key ID the key given does not hold
 * (`unknown-key-id`), however many: their count, the key IDs found in their headers with their counts
 * and the key IDs given (public identifiers: docs/keys.md), a few keys (`keys`: those listed, at
 * least the first SUMMARY_EXAMPLES), then `next`, the command's next step.
 */
export function unknownKeyIdLine(o: {
  count: number;
  unknownKeyIds: Record<string, number> | undefined;
  keyRingIds: readonly string[] | undefined;
  keys: readonly string[];
  next: string;
}): string {
  const found = Object.entries(o.unknownKeyIds ?? {})
    .map(([id, n]) => `${id} (${n})`)
    .join(', ');
  const given = (o.keyRingIds ?? []).join(', ');
  return `  FAIL        unknown-key-id: ${o.count} value(s) sealed under key ID ${found || '?'}, which the key given (key ID ${given || '?'}) does not hold${namedExamples(o.keys, o.count)}: ${o.next}`;
}

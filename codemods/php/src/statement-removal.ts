/**
 * Removing a statement from PHP source without leaving a trace in the layout: the edit that takes
 * out a statement, with its line when it stands alone on it. Used by the rules that remove calls
 * (rules/files-handler-call.ts).
 */
import { tokenAt, type Token } from './source.ts';
import type { Edit } from './model.ts';

/**
 * The removal of a statement [start, end): with its line when nothing else is on it (a trailing
 * `//` or `#` comment on that line goes with it), else the statement and the blanks after it.
 */
export function removal(text: string, tokens: readonly Token[], start: number, end: number): Edit {
  let stop = end;
  let i = tokenAt(tokens, end);
  let comment = false;
  while (i >= 0 && i < tokens.length) {
    const t = tokens[i]!;
    if (t.type === 'T_WHITESPACE' && !t.text.includes('\n')) {
      stop = t.end;
      i++;
      continue;
    }
    if (t.type === 'T_COMMENT' && /^(\/\/|#(?!\[))/.test(t.text)) {
      stop = t.end;
      comment = true;
    }
    break;
  }
  let lineStart = start;
  while (lineStart > 0 && (text[lineStart - 1] === ' ' || text[lineStart - 1] === '\t')) lineStart--;
  const atLineStart = lineStart === 0 || text[lineStart - 1] === '\n';
  // A single-line comment token ends with its newline; otherwise look for the newline after the blanks.
  let lineEnd = -1;
  if (comment && text[stop - 1] === '\n') lineEnd = stop;
  else if (text.startsWith('\r\n', stop)) lineEnd = stop + 2;
  else if (text[stop] === '\n') lineEnd = stop + 1;
  else if (stop === text.length) lineEnd = stop;
  if (atLineStart && lineEnd >= 0) {
    // Never take the newline an open tag owns, nor leave `?>` glued to the previous line's code.
    const prev = tokenAt(tokens, lineStart - 1);
    if (lineStart === 0 || prev < 0 || tokens[prev]!.type !== 'T_OPEN_TAG' || tokens[prev]!.end === lineStart) {
      return { start: lineStart, end: lineEnd, text: '' };
    }
  }
  // Code before it on the line: also take the blanks between that code and the statement when
  // nothing follows it on the line (unless the blanks belong to the open tag `<?php `).
  let from = start;
  if (lineEnd >= 0 && lineStart < start) {
    const blank = tokenAt(tokens, lineStart);
    if (blank >= 0 && tokens[blank]!.type === 'T_WHITESPACE') from = lineStart;
  }
  if (comment && text[stop - 1] === '\n') {
    // Keep the newline that the comment token carried.
    return { start: from, end: stop, text: text.endsWith('\r\n', stop) ? '\r\n' : '\n' };
  }
  return { start: from, end: stop, text: '' };
}

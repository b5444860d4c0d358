/**
 * The `files` save handler's `session.save_path` forms: `/path`, `N;/path`, `N;MODE;/path`, and the
 * empty string (the system temp dir). Rules from php-src ext/session/mod_files.c (PS_OPEN_FUNC(files)):
 * the value is split on at most the first two `;` (so the path itself may hold `;`), the depth is
 * strtol(base 10) of the first field (non-numeric means 0), the mode is strtol(base 8) of the second
 * (default 0600), and the path is everything after the last split.
 */
import { tmpdir } from 'node:os';
import type { Finding, Severity } from '@session-migrate/common';

/**
 * From which severity on a save_path finding means PHP cannot use the value (every session_start
 * fails, or sessions land elsewhere than meant): `high`. Findings below it (`medium`: PHP accepts
 * the value but not as written; `info`) are advice. The one severity scale of
 * @session-migrate/common (packages/common/src/finding.ts).
 */
export const SAVE_PATH_FAILS_AT: Severity = 'high';

/** A finding about a save_path value (stable `id`s; see test/fixtures/cases/BUG-15), on the one Finding shape and severity scale. */
export interface SavePathFinding extends Finding {
  id:
    | 'save-path-depth-looks-like-mode'
    | 'save-path-invalid-depth'
    | 'save-path-non-numeric-depth'
    | 'save-path-invalid-mode'
    | 'save-path-mode-unreadable'
    | 'save-path-empty'
    | 'save-path-empty-directory';
  /** `high`: PHP fails with this value (SAVE_PATH_FAILS_AT); `medium`: PHP reads it otherwise than written; `info`. */
  severity: 'high' | 'medium' | 'info';
}

export interface FilesSavePath {
  /** Directory levels below `path`, each named by one character of the session ID. */
  depth: number;
  /** File mode PHP asks for when creating session files (before the process umask). */
  mode: number;
  /** The base directory; the system temp dir when the value is empty. */
  path: string;
  findings: SavePathFinding[];
}

/** Parses a C-like strtol prefix: optional sign, then digits of `base`; returns 0 when there are none. */
function strtol(text: string, base: 8 | 10): number {
  const m = (base === 10 ? /^\s*([+-]?)(\d*)/ : /^\s*([+-]?)([0-7]*)/).exec(text);
  const digits = m?.[2] ?? '';
  if (digits === '') return 0;
  const value = parseInt(digits, base);
  return m?.[1] === '-' ? -value : value;
}

/** strtol's range on 64-bit Linux (LONG_MIN..LONG_MAX): beyond it errno is ERANGE. */
const LONG_MAX = 2n ** 63n - 1n;

/** Whether strtol(text, 10) sets ERANGE: the digits it reads are beyond LONG_MIN..LONG_MAX. */
function strtolOverflows(text: string): boolean {
  const m = /^\s*([+-]?)(\d+)/.exec(text);
  if (m === null) return false;
  const v = BigInt(m[2]!);
  return m[1] === '-' ? v > LONG_MAX + 1n : v > LONG_MAX;
}

/** session.sid_length's default (ext/session/session.c), the session ID length PHP compares the depth with. */
export const DEFAULT_SID_LENGTH = 32;

/**
 * Parses a `files` handler save_path.
 * @param value the raw session.save_path string as ini_get() returns it.
 * @param sidLength the session ID length (session.sid_length, default 32): a depth of at least that
 *   many levels fails every session_start (mod_files.c ps_files_path_create: `key_len <= dirdepth`).
 * @returns depth, mode (number, e.g. 0o600) and base path, with findings for values PHP mishandles.
 */
export function parseFilesSavePath(value: string, sidLength: number = DEFAULT_SID_LENGTH): FilesSavePath {
  const findings: SavePathFinding[] = [];
  if (value === '') {
    findings.push({ id: 'save-path-empty', severity: 'info', message: 'empty save_path: PHP uses the system temporary directory' });
    return { depth: 0, mode: 0o600, path: tmpdir(), findings };
  }
  const fields: string[] = [];
  let rest = value;
  for (let i = 0; i < 2; i++) {
    const at = rest.indexOf(';');
    if (at < 0) break;
    fields.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  fields.push(rest);
  const depth = fields.length > 1 ? parseDepthField(fields[0] ?? '', fields.length, sidLength, findings) : 0;
  const mode = fields.length > 2 ? parseModeField(fields[1] ?? '', findings) : 0o600;
  const path = fields[fields.length - 1] ?? '';
  if (path === '') {
    findings.push({
      id: 'save-path-empty-directory',
      severity: 'high',
      message: 'no directory after the last ";": PHP cannot store sessions',
    });
  }
  return { depth, mode, path, findings };
}

/**
 * The depth field (`N;...`) as mod_files.c reads it (ps_files_open / PS_OPEN_FUNC(files): ZEND_STRTOL
 * base 10, so "abc" is 0), with a finding for each value PHP mishandles.
 * @param fieldCount how many `;`-separated fields the save_path has (2: `N;path`, 3: `N;MODE;path`)
 * @returns the depth PHP uses
 */
function parseDepthField(first: string, fieldCount: number, sidLength: number, findings: SavePathFinding[]): number {
  const depth = strtol(first, 10);
  if (!/^\s*[+-]?\d/.test(first)) {
    findings.push({
      id: 'save-path-non-numeric-depth',
      severity: 'medium',
      message: `the depth field "${first}" is not a number: PHP silently uses depth 0`,
    });
  } else if (strtolOverflows(first)) {
    findings.push({
      id: 'save-path-invalid-depth',
      severity: 'high',
      message: `depth ${first.trim()} is out of range: PHP fails every session_start ('The first parameter in session.save_path is invalid')`,
    });
  } else if (depth < 0) {
    findings.push({
      id: 'save-path-invalid-depth',
      severity: 'high',
      message: `depth ${depth} is invalid: PHP fails every session_start`,
    });
  } else if (fieldCount === 2 && /^\s*0\d{3}\s*$/.test(first)) {
    findings.push({
      id: 'save-path-depth-looks-like-mode',
      severity: 'high',
      message: `the first field is the DEPTH (${depth}), not a mode; PHP fails every session_start ('Failed to create session data file path')`,
    });
  } else if (depth >= sidLength) {
    findings.push({
      id: 'save-path-invalid-depth',
      severity: 'high',
      message: `depth ${first.trim()} is not below the session ID length (${sidLength}): PHP fails every session_start ('Failed to create session data file path')`,
    });
  }
  return depth;
}

/**
 * The mode field (`N;MODE;path`) as mod_files.c reads it (ZEND_STRTOL base 8), with a finding for a
 * mode out of range or one that leaves PHP's own user unable to read and write its files.
 * @returns the mode PHP uses (e.g. 0o600)
 */
function parseModeField(field: string, findings: SavePathFinding[]): number {
  const mode = strtol(field, 8);
  if (mode < 0 || mode > 0o7777) {
    findings.push({
      id: 'save-path-invalid-mode',
      severity: 'high',
      message: `mode ${field} is out of range: PHP fails every session_start`,
    });
  } else if ((mode & 0o600) !== 0o600) {
    // ps_files_open creates the file with this mode (O_CREAT): the first request writes it, every
    // later open(O_RDWR) of it by the (non-root) PHP user fails with EACCES
    findings.push({
      id: 'save-path-mode-unreadable',
      severity: 'medium',
      message: `the mode field ${JSON.stringify(field)} reads as 0${mode.toString(8)}: PHP creates session files its own user cannot read and write again, so every session is lost after its first request`,
    });
  }
  return mode;
}

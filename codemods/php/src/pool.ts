/**
 * PHP-FPM pool files read by the PHP codemod (`--fpm-pool`), for one thing only: which session keys a
 * pool pins with `php_admin_value[...]` / `php_admin_flag[...]` (shared case BUG-14). A pinned key
 * cannot be changed at run time: `ini_set()` returns false for it (php-fpm 8.2, BUG-14 expected.json).
 *
 * - `session.save_handler` pinned: reported as `codemod-target-locked` (error). The codemod's change
 *   relies on changing the save handler at run time (session_set_save_handler() switches
 *   session.save_handler to "user" through the same ini machinery), which such a pool forbids; the
 *   pool file must be changed instead.
 * - `session.save_path` pinned: reported as info: the encrypted handler ignores save_path, so the pin
 *   does not block it (the app's own `ini_set('session.save_path', ...)` already returned false there).
 *
 * Syntax read (php-fpm's ini dialect): `[pool]` sections, `;` and `#` comments, `key = value` lines.
 */
import type { Finding } from './analyze.ts';

/** Findings for one pool file; `file` is the name to report it under. */
export function analyzeFpmPool(text: string, file: string): Finding[] {
  const findings: Finding[] = [];
  let pool = '(global)';
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section !== null) {
      pool = section[1]!.trim();
      return;
    }
    const m = /^php_admin_(?:value|flag)\[\s*([^\]]+?)\s*\]\s*=\s*(.*)$/i.exec(line);
    if (m === null) return;
    const key = m[1]!.toLowerCase();
    const value = m[2]!.replace(/^"(.*)"$/, '$1');
    if (key === 'session.save_handler') {
      findings.push({
        file, line: i + 1, id: 'codemod-target-locked', severity: 'error',
        message: `pool [${pool}] pins session.save_handler = ${value} with php_admin_value: PHP refuses run-time changes of it, so the handler the codemod registers cannot be relied on there`,
        suggestion: `change the pool file instead: remove php_admin_value[session.save_handler] from [${pool}] (or deploy the ini fragment from apply)`,
      });
    } else if (key === 'session.save_path') {
      findings.push({
        file, line: i + 1, id: 'pool-save-path-locked', severity: 'info',
        message: `pool [${pool}] pins session.save_path with php_admin_value: ini_set('session.save_path') returns false there; the encrypted handler ignores save_path, so this does not block it`,
      });
    }
  });
  return findings;
}

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
 * The file is read by php-ini's parseFpmConfig, the one reader of php-fpm's configuration
 * (sapi/fpm/fpm/fpm_conf.c: line by line through the Zend ini parser, `[pool]` sections, quoting,
 * `${VAR}`, `include=`, flags normalised to "1"/"0"), as if php-fpm.conf included it. What php-fpm
 * applies is what counts: the first php_admin_* line of a key (firstWins, fpm_php.c); a flag whose
 * value is not a boolean makes php-fpm refuse to start, so it pins nothing (the audit reports it as
 * `fpm-invalid-flag`).
 */
import { createRootFs, firstWins, parseFpmConfig, type IniFileSystem } from '@session-migrate/php-ini';
import type { Finding } from './model.ts';

/**
 * Findings for one pool file.
 * @param text the file's contents (the caller has read it).
 * @param file the name to report it under; `include=` lines in it are read from the disk.
 */
export function analyzeFpmPool(text: string | Uint8Array, file: string): Finding[] {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const cfg = parseFpmConfig({ file: [file], fs: withFile(createRootFs(), file, bytes) });
  const findings: Finding[] = [];
  for (const pool of cfg.pools) {
    for (const v of firstWins(pool.phpAdminValues)) {
      const key = v.key.toLowerCase();
      const directive = `${v.flag ? 'php_admin_flag' : 'php_admin_value'}[${v.key}]`;
      if (key === 'session.save_handler') {
        findings.push({
          file: v.file,
          line: v.line,
          id: 'codemod-target-locked',
          severity: 'high',
          message: `pool [${pool.name}] pins session.save_handler = ${v.value} with ${v.flag ? 'php_admin_flag' : 'php_admin_value'}: PHP refuses run-time changes of it, so the handler the codemod registers cannot be relied on there`,
          fix: `change the pool file instead: remove ${directive} from [${pool.name}] (or deploy the ini fragment from apply)`,
        });
      } else if (key === 'session.save_path') {
        findings.push({
          file: v.file,
          line: v.line,
          id: 'pool-save-path-locked',
          severity: 'info',
          message: `pool [${pool.name}] pins session.save_path with ${v.flag ? 'php_admin_flag' : 'php_admin_value'}: ini_set('session.save_path') returns false there; the encrypted handler ignores save_path, so this does not block it`,
        });
      }
    }
  }
  return findings;
}

/** `fs` with `file` served from memory (the text the caller already read). */
function withFile(fs: IniFileSystem, file: string, bytes: Uint8Array): IniFileSystem {
  return { ...fs, readFile: (path) => (path === file ? bytes : fs.readFile(path)) };
}

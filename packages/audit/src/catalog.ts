/**
 * The audit's rules: stable IDs, severity, what they mean and how to fix them. docs/audit-rules.md is
 * this table in prose (a test keeps the two in step); SARIF output lists it as tool.driver.rules.
 * Sources: test/fixtures/reference/php-ini-semantics.md (php-src main/php_ini.c, Zend/zend_ini_scanner.l,
 * ext/session/session.c, ext/session/mod_files.c, sapi/fpm/fpm/fpm_conf.c), test/fixtures/cases BUG-11,
 * BUG-13, BUG-14, BUG-15, BUG-17, OWASP Session Management Cheat Sheet (cookie attributes, strict mode);
 * the run-time rules: runtime.ts (Zend/zend_ini.c, ext/session/mod_files.c, Debian's sessionclean).
 */
import type { Severity } from './model.ts';

/** One rule. */
export interface Rule {
  id: string;
  severity: Severity;
  /** One line: what is wrong. */
  title: string;
  /** One line: what to change. */
  fix: string;
}

const R = (id: string, severity: Severity, title: string, fix: string): Rule => ({ id, severity, title, fix });

/** Every rule, in documentation order. */
export const RULES: readonly Rule[] = [
  R(
    'plaintext-files-storage',
    'high',
    "session.save_handler is `files`: every session is stored in clear text on the web host's disk",
    'Move sessions to encrypted Redis (`session-migrate plan` / `apply`), or at least keep save_path in a private 0700 directory owned by the PHP user.',
  ),
  R(
    'save-path-shared-temp',
    'high',
    'session files go to a shared temporary directory (/tmp, /var/tmp, /dev/shm, or an empty save_path = the system temp dir)',
    'Set session.save_path to a private directory (e.g. `/var/lib/php/sessions`, mode 1733 or 0700 owned by the PHP user), or move to encrypted Redis.',
  ),
  R(
    'save-path-world-readable',
    'high',
    'the session directory is readable by other users (o+r): anyone on the host can list session IDs and hijack sessions',
    'chmod o-r (Debian uses 1733: others may create but not list); better 0700 owned by the PHP user.',
  ),
  R(
    'save-path-world-writable',
    'medium',
    'the session directory is writable by other users without the sticky bit: they can delete or plant session files',
    'chmod 1733 or 0700 on the session directory.',
  ),
  R(
    'save-path-missing',
    'medium',
    'the session directory does not exist (or is a symbolic link, which the audit does not follow): session_start() fails or writes elsewhere',
    'Create the directory with the right owner and mode, or fix session.save_path.',
  ),
  R(
    'session-file-readable-by-others',
    'critical',
    'session files are readable by other users (o+r): their contents and IDs are exposed',
    'chmod o-r the existing files, set the save_path MODE field (`N;0600;/path`) or the PHP process umask to 077, and move to encrypted Redis.',
  ),
  R(
    'session-file-group-readable',
    'medium',
    'session files are readable by their group (g+r)',
    'Use MODE 0600 in save_path (`N;0600;/path`) and a umask of 077 for the PHP process.',
  ),
  R(
    'session-file-foreign-owner',
    'medium',
    "session files owned by another user than the one PHP runs as (and root): PHP's files handler does not read them, and session-migrate does not migrate them (another user planted them, or several pools share the directory)",
    'Find out who wrote them (a local user planting session files, or another pool sharing the directory); remove the planted ones, give each pool its own session directory (0700, owned by its user), and tell session-migrate plan the user PHP runs as (--php-user).',
  ),
  R(
    'strict-mode-off',
    'medium',
    'session.use_strict_mode is off: PHP accepts uninitialised session IDs chosen by an attacker (session fixation)',
    'session.use_strict_mode = 1',
  ),
  R(
    'cookie-not-secure',
    'medium',
    'session.cookie_secure is off: the session cookie is also sent over plain HTTP',
    'session.cookie_secure = 1 (the site must be served over HTTPS)',
  ),
  R(
    'cookie-not-httponly',
    'medium',
    'session.cookie_httponly is off: JavaScript (and XSS) can read the session cookie',
    'session.cookie_httponly = 1',
  ),
  R(
    'cookie-no-samesite',
    'low',
    'session.cookie_samesite is empty: the browser default applies, and older browsers send the cookie cross-site',
    'session.cookie_samesite = "Lax" (or "Strict"); write "None" in quotes only when cross-site use is intended',
  ),
  R(
    'samesite-none-unquoted',
    'medium',
    'session.cookie_samesite = None without quotes is the ini keyword none = empty string: no SameSite attribute at all',
    'Write session.cookie_samesite = "None" (quoted) if None is really meant, otherwise "Lax".',
  ),
  R(
    'use-only-cookies-off',
    'high',
    'session.use_only_cookies is off: session IDs are accepted from the URL (leaks through Referer and logs, eases fixation)',
    'session.use_only_cookies = 1',
  ),
  R('use-trans-sid-on', 'high', 'session.use_trans_sid is on: PHP writes session IDs into URLs', 'session.use_trans_sid = 0'),
  R(
    'redis-no-tls',
    'medium',
    'the Redis save handler connects without TLS: sessions and the password cross the network in clear',
    'Use `tls://host:port` in session.save_path (phpredis 5.3+) or a private, encrypted network; session-migrate encrypts the values themselves.',
  ),
  R(
    'redis-no-auth',
    'high',
    'the Redis save handler connects without a password (no auth=): anyone who reaches Redis reads and forges sessions',
    'Set requirepass / ACL users on Redis and add `auth=` (percent-encoded) to session.save_path in a file readable only by root and PHP.',
  ),
  R(
    'secret-in-world-readable-file',
    'high',
    'session.save_path with an auth= password is set in a file every local user can read',
    'chmod o-r the file (0640 root:<php group>), or move the save_path line to a file only root and PHP can read.',
  ),
  R(
    'redis-save-path-malformed',
    'high',
    'the phpredis save_path does not mean what it looks like (an unencoded , + or & in a value, a missing host)',
    'Percent-encode reserved characters in values (`,`→%2C, `+`→%2B, `&`→%26) and quote the whole value in the ini file.',
  ),
  R(
    'removed-directive',
    'medium',
    'a directive that this PHP version no longer has (e.g. session.entropy_file, removed in 7.1): the line silently does nothing',
    'Delete the line; for session ID strength use session.sid_length / sid_bits_per_character (PHP < 8.4) or the defaults.',
  ),
  R(
    'unknown-directive',
    'medium',
    'a directive name PHP never had (a typo such as session.save_hander, wrong case, or any name containing `session` that PHP does not know, such as openssl_session_save_path from published hardening guides): the line silently does nothing',
    'Fix the name (ini keys are case-sensitive) or delete the line.',
  ),
  R(
    'deprecated-directive',
    'low',
    'a setting deprecated in the PHP version found (8.4: changing sid_length, sid_bits_per_character, use_only_cookies, use_trans_sid, trans_sid_*, referer_check)',
    'Remove the setting and keep the default.',
  ),
  R(
    'ini-syntax-error',
    'high',
    'a syntax error in an ini file: PHP keeps the lines before it and silently ignores every later line of that file',
    "Fix the line (quote values that contain = ; ! ( ) { } & | ^ ~ or a redis URL); check with `php -n -c FILE -r 'echo 1;'`.",
  ),
  R(
    'save-path-truncated-by-comment',
    'high',
    "an unquoted ';' in session.save_path starts a comment: `2;/var/lib/php/sessions` becomes the relative directory `2`",
    'Quote the value: session.save_path = "2;/var/lib/php/sessions"',
  ),
  R(
    'save-path-depth-looks-like-mode',
    'high',
    'save_path `0660;/path`: the first field is the directory DEPTH, not a mode; every session_start() fails',
    'Write `N;MODE;/path` with an explicit depth, e.g. "0;0660;/path", or just "/path".',
  ),
  R(
    'save-path-invalid',
    'high',
    'save_path has an invalid depth or mode, or no directory: every session_start() fails',
    'Write `/path`, `N;/path` or `N;MODE;/path` with N >= 0 and an octal MODE.',
  ),
  R(
    'save-path-mode-unreadable',
    'high',
    'save_path MODE does not give the owner read and write (0, 0400, a non-octal "800"): PHP creates each session file and cannot open it again, so every session is lost after its first request',
    'Write a MODE that starts with 6 or 7 for the owner, e.g. "0;0600;/path", or leave MODE out (0600).',
  ),
  R(
    'save-path-non-numeric-depth',
    'medium',
    'the depth field of save_path is not a number: PHP silently uses depth 0',
    'Remove the field or write a number.',
  ),
  R(
    'session-subdirs-required',
    'medium',
    'save_path has a depth N > 0: PHP does not create the N levels of sub-directories itself',
    'Create them (php-src ext/session/mod_files.sh) before going live, or use depth 0.',
  ),
  R(
    'gc-disabled-by-depth',
    'medium',
    'with a depth N > 0 PHP never garbage-collects session files (session_gc() returns false): they pile up',
    'Run an external cleaner (find -mmin), or move to Redis where gc_maxlifetime becomes a TTL.',
  ),
  R(
    'file-mode-umask',
    'info',
    'the MODE field of save_path is still reduced by the PHP process umask',
    'Check the resulting file modes; set the umask of the PHP service explicitly.',
  ),
  R(
    'codemod-target-locked',
    'info',
    'session.save_handler / save_path are pinned with php_admin_value: ini_set() and .user.ini cannot change them in this pool',
    'Switch the handler in the pool file (php_admin_value) itself; an application-side ini_set() returns false here.',
  ),
  R(
    'php-ini-missing',
    'low',
    'no php.ini is loaded (official Docker image default): PHP runs on compiled defaults',
    'Copy php.ini-production to php.ini (`cp "$PHP_INI_DIR/php.ini-production" "$PHP_INI_DIR/php.ini"`) and review the session section.',
  ),
  R(
    'fpm-invalid-flag',
    'high',
    'php_flag/php_admin_flag in a pool file has a value that is not a boolean: php-fpm refuses to start',
    'Use on/off, 1/0, yes/no, true/false.',
  ),
  R(
    'runtime-setting-differs',
    'info',
    "the application's PHP code sets a session directive at run time (ini_set(), session_save_path(), session_name(), session_set_cookie_params(), session_start() options) to another value than the configuration: requests that run it use the run-time value",
    'Check that the run-time value is meant; set it in php.ini (or the pool) instead when it applies to the whole application, so the configuration shows what PHP really uses.',
  ),
  R(
    'runtime-setting-unresolved',
    'info',
    'a run-time session setting whose value (or directive name) depends on the request (a variable, a function call): the audit cannot say what PHP will use',
    'Review the call by hand; prefer constants or the configuration for session settings.',
  ),
  R(
    'runtime-setting-ignored',
    'medium',
    'a run-time session setting PHP refuses (the directive does not exist, cannot be changed at run time, is pinned by php_admin_value or a [PATH=]/[HOST=] section, or the value is invalid): the call returns false and the configured value stays',
    'Remove the call, or make the change where PHP accepts it (php.ini, the pool, .user.ini for PHP_INI_PERDIR directives); fix the value or the name.',
  ),
  R(
    'runtime-custom-save-handler',
    'medium',
    'the application registers its own save handler (session_set_save_handler()): the configured save_handler and save_path do not apply to it, and where it stores sessions is not visible to the audit',
    'Review where the handler stores sessions and whether they are encrypted; to move it to encrypted Redis, see `session-migrate codemod php --replace-custom-handler`.',
  ),
  R(
    'runtime-save-path-no-gc',
    'high',
    "the application sets session.save_path at run time to a directory no garbage collection cleans (PHP's own GC off, e.g. gc_probability=0 on Debian, or a depth N > 0, and no cron job such as Debian's /usr/lib/php/sessionclean, which reads only php.ini's save_path): session files pile up and expired session IDs stay valid",
    "Remove the run-time save_path (use the configured one), or clean the directory (cron: find DIR -name 'sess_*' -cmin +MINUTES -delete, or gc_probability > 0 for that application); better, move sessions to encrypted Redis.",
  ),
  R(
    'runtime-gc-maxlifetime-cut-by-cleaner',
    'medium',
    "the application raises session.gc_maxlifetime at run time, but its sessions are in a directory Debian's /usr/lib/php/sessionclean cleans with php.ini's gc_maxlifetime: the files are deleted after php.ini's lifetime, and users are logged out earlier than the code says",
    "Set session.gc_maxlifetime in php.ini (the value sessionclean reads), or give the application its own session directory and cleanup; with encrypted Redis the TTL follows the plan's gc_maxlifetime.",
  ),
  R(
    'cookie-lifetime-above-gc-maxlifetime',
    'low',
    'session.cookie_lifetime (configured or set at run time) is above session.gc_maxlifetime: the session data can be removed (or its Redis TTL expire) while the browser still sends the cookie, so users are logged out earlier than the cookie says',
    'Raise session.gc_maxlifetime to at least the cookie lifetime, or shorten the cookie; a "remember me" needs its own token, not a long session.',
  ),
  R(
    'audit-incomplete',
    'medium',
    'the audit could not read something it needed (unreadable, too large, binary, a symbolic link loop): results are partial',
    'Re-run with enough permissions, or check the named file by hand.',
  ),
];

const BY_ID = new Map(RULES.map((r) => [r.id, r]));

/** The rule with that ID; throws on an unknown ID (a programming error). */
export function rule(id: string): Rule {
  const r = BY_ID.get(id);
  if (r === undefined) throw new Error(`unknown audit rule ${id}`);
  return r;
}

/**
 * Constants PHP has defined when it parses php.ini (so `E_ALL`, `PHP_OS` in an unquoted value are
 * replaced): the Zend engine's (`zend_register_standard_constants`: E_*, DEBUG_BACKTRACE_*,
 * ZEND_*) and main/main.c's (`php_module_startup` registers PHP_* and the output/upload constants
 * before `php_init_config()`). Extension constants are registered later and are NOT available.
 *
 * The list and values were read from PHP 8.2.36 (Debian, CLI) by
 * packages/php-ini/scripts/ini-constants.sh, which writes every constant name into an ini file and
 * keeps the names PHP replaced. Build-dependent values (PHP_VERSION, paths, PHP_SAPI, PHP_BINARY)
 * can be overridden.
 */

/** Values from the Debian php8.2 CLI build this project's oracle ran on. */
const PHP82_DEBIAN_CLI: Record<string, string> = {
  E_ERROR: '1',
  E_WARNING: '2',
  E_PARSE: '4',
  E_NOTICE: '8',
  E_CORE_ERROR: '16',
  E_CORE_WARNING: '32',
  E_COMPILE_ERROR: '64',
  E_COMPILE_WARNING: '128',
  E_USER_ERROR: '256',
  E_USER_WARNING: '512',
  E_USER_NOTICE: '1024',
  E_STRICT: '2048',
  E_RECOVERABLE_ERROR: '4096',
  E_DEPRECATED: '8192',
  E_USER_DEPRECATED: '16384',
  E_ALL: '32767',
  DEBUG_BACKTRACE_PROVIDE_OBJECT: '1',
  DEBUG_BACKTRACE_IGNORE_ARGS: '2',
  ZEND_THREAD_SAFE: '',
  ZEND_DEBUG_BUILD: '',
  TRUE: '1',
  FALSE: '',
  NULL: '',
  PHP_VERSION: '8.2.36',
  PHP_MAJOR_VERSION: '8',
  PHP_MINOR_VERSION: '2',
  PHP_RELEASE_VERSION: '36',
  PHP_EXTRA_VERSION: '',
  PHP_VERSION_ID: '80236',
  PHP_ZTS: '0',
  PHP_DEBUG: '0',
  PHP_OS: 'Linux',
  PHP_OS_FAMILY: 'Linux',
  PHP_SAPI: 'cli',
  DEFAULT_INCLUDE_PATH: '.:/usr/share/php',
  PEAR_INSTALL_DIR: '/usr/share/php',
  PEAR_EXTENSION_DIR: '/usr/lib/php/20220829',
  PHP_EXTENSION_DIR: '/usr/lib/php/20220829',
  PHP_PREFIX: '/usr',
  PHP_BINDIR: '/usr/bin',
  PHP_MANDIR: '/usr/share/man',
  PHP_LIBDIR: '/usr/lib/php',
  PHP_DATADIR: '/usr/share/php/8.2',
  PHP_SYSCONFDIR: '/etc',
  PHP_LOCALSTATEDIR: '/var',
  PHP_CONFIG_FILE_PATH: '/etc/php/8.2/cli',
  PHP_CONFIG_FILE_SCAN_DIR: '/etc/php/8.2/cli/conf.d',
  PHP_SHLIB_SUFFIX: 'so',
  PHP_EOL: '\n',
  PHP_MAXPATHLEN: '4096',
  PHP_INT_MAX: '9223372036854775807',
  PHP_INT_MIN: '-9223372036854775808',
  PHP_INT_SIZE: '8',
  PHP_FD_SETSIZE: '1024',
  PHP_FLOAT_DIG: '15',
  PHP_FLOAT_EPSILON: '2.0E-16',
  PHP_FLOAT_MAX: '2.0E+308',
  PHP_FLOAT_MIN: '2.0E-308',
  PHP_BINARY: '/usr/bin/php8.2',
  PHP_OUTPUT_HANDLER_START: '1',
  PHP_OUTPUT_HANDLER_WRITE: '0',
  PHP_OUTPUT_HANDLER_FLUSH: '4',
  PHP_OUTPUT_HANDLER_CLEAN: '2',
  PHP_OUTPUT_HANDLER_FINAL: '8',
  PHP_OUTPUT_HANDLER_CONT: '0',
  PHP_OUTPUT_HANDLER_END: '8',
  PHP_OUTPUT_HANDLER_CLEANABLE: '16',
  PHP_OUTPUT_HANDLER_FLUSHABLE: '32',
  PHP_OUTPUT_HANDLER_REMOVABLE: '64',
  PHP_OUTPUT_HANDLER_STDFLAGS: '112',
  PHP_OUTPUT_HANDLER_STARTED: '4096',
  PHP_OUTPUT_HANDLER_DISABLED: '8192',
  UPLOAD_ERR_OK: '0',
  UPLOAD_ERR_INI_SIZE: '1',
  UPLOAD_ERR_FORM_SIZE: '2',
  UPLOAD_ERR_PARTIAL: '3',
  UPLOAD_ERR_NO_FILE: '4',
  UPLOAD_ERR_NO_TMP_DIR: '6',
  UPLOAD_ERR_CANT_WRITE: '7',
  UPLOAD_ERR_EXTENSION: '8',
};

/** `sapi_module.name` per SAPI (also the `php-<name>.ini` file PHP looks for first). */
export const SAPI_MODULE_NAMES = { cli: 'cli', cgi: 'cgi-fcgi', fpm: 'fpm-fcgi', apache2handler: 'apache2handler' } as const;
export type Sapi = keyof typeof SAPI_MODULE_NAMES;

export interface ConstantOptions {
  sapi?: Sapi;
  /** PHP version string ("8.2.36"); sets PHP_VERSION and the *_VERSION constants. */
  phpVersion?: string;
  /** Any other overrides (PHP_OS, PHP_BINARY, ...). */
  overrides?: Record<string, string>;
}

/**
 * The constants an ini value can name at startup, as strings (what the value becomes).
 * Case-sensitive names; a name containing ':' is never a constant (php-src bug #26893).
 */
export function startupConstants(opts: ConstantOptions = {}): Record<string, string> {
  const c: Record<string, string> = { ...PHP82_DEBIAN_CLI };
  if (opts.sapi) {
    c.PHP_SAPI = SAPI_MODULE_NAMES[opts.sapi];
    if (opts.sapi !== 'cli') {
      const dir = opts.sapi === 'cgi' ? 'cgi' : opts.sapi === 'fpm' ? 'fpm' : 'apache2';
      c.PHP_CONFIG_FILE_PATH = `/etc/php/8.2/${dir}`;
      c.PHP_CONFIG_FILE_SCAN_DIR = `/etc/php/8.2/${dir}/conf.d`;
      c.PHP_BINARY = opts.sapi === 'cgi' ? '/usr/bin/php-cgi8.2' : opts.sapi === 'fpm' ? '/usr/sbin/php-fpm8.2' : '';
    }
  }
  if (opts.phpVersion && /^\d+\.\d+\.\d+/.test(opts.phpVersion)) {
    const [maj, min, rel] = opts.phpVersion.split(/[.-]/).map((x) => Number.parseInt(x, 10));
    c.PHP_VERSION = opts.phpVersion;
    c.PHP_MAJOR_VERSION = String(maj);
    c.PHP_MINOR_VERSION = String(min);
    c.PHP_RELEASE_VERSION = String(rel);
    c.PHP_VERSION_ID = String((maj ?? 0) * 10000 + (min ?? 0) * 100 + (rel ?? 0));
  }
  return Object.assign(c, opts.overrides ?? {});
}

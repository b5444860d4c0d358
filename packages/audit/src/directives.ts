/**
 * Directive facts the rules need: which names exist in a PHP version, defaults, changeability,
 * removed names, and 8.4 deprecations (shared/reference/php-ini-semantics.md §8, php-src
 * ext/session/session.c PHP_INI_BEGIN, UPGRADING 8.4). Interim table for session.* and the few core
 * directives the audit reads, until packages/php-ini exports its full directive table.
 */
import type { DirectiveFacts } from './engine.ts';

type Row = [dflt: string, changeable: DirectiveFacts['changeable'], since?: string];

const SESSION: Record<string, Row> = {
  'session.save_path': ['', 'all'], 'session.name': ['PHPSESSID', 'all'], 'session.save_handler': ['files', 'all'],
  'session.auto_start': ['0', 'perdir'], 'session.gc_probability': ['1', 'all'], 'session.gc_divisor': ['100', 'all'],
  'session.gc_maxlifetime': ['1440', 'all'], 'session.serialize_handler': ['php', 'all'], 'session.cookie_lifetime': ['0', 'all'],
  'session.cookie_path': ['/', 'all'], 'session.cookie_domain': ['', 'all'], 'session.cookie_secure': ['0', 'all'],
  'session.cookie_httponly': ['0', 'all'], 'session.cookie_samesite': ['', 'all', '7.3'], 'session.cookie_partitioned': ['0', 'all', '8.5'],
  'session.use_strict_mode': ['0', 'all'], 'session.use_cookies': ['1', 'all'], 'session.use_only_cookies': ['1', 'all'],
  'session.referer_check': ['', 'all'], 'session.cache_limiter': ['nocache', 'all'], 'session.cache_expire': ['180', 'all'],
  'session.use_trans_sid': ['0', 'all'], 'session.trans_sid_tags': ['a=href,area=href,frame=src,form=', 'all', '7.1'],
  'session.trans_sid_hosts': ['', 'all', '7.1'], 'session.sid_length': ['32', 'all', '7.1'], 'session.sid_bits_per_character': ['4', 'all', '7.1'],
  'session.lazy_write': ['1', 'all', '7.0'], 'session.upload_progress.enabled': ['1', 'perdir'], 'session.upload_progress.cleanup': ['1', 'perdir'],
  'session.upload_progress.prefix': ['upload_progress_', 'perdir'], 'session.upload_progress.name': ['PHP_SESSION_UPLOAD_PROGRESS', 'perdir'],
  'session.upload_progress.freq': ['1%', 'perdir'], 'session.upload_progress.min_freq': ['1', 'perdir'],
  'user_ini.filename': ['.user.ini', 'system'], 'user_ini.cache_ttl': ['300', 'system'], 'sys_temp_dir': ['', 'system'],
  'redis.session.locking_enabled': ['0', 'all'],
};

const REMOVED: Record<string, string> = {
  'session.entropy_file': '7.1', 'session.entropy_length': '7.1', 'session.hash_function': '7.1', 'session.hash_bits_per_character': '7.1',
  'session.bug_compat_42': '5.4', 'session.bug_compat_warn': '5.4',
};

const num = (v: string) => { const [a, b] = v.split('.').map((x) => parseInt(x, 10)); return (a ?? 0) * 100 + (b ?? 0); };

export function directiveFacts(name: string, version: string): DirectiveFacts | null {
  const r = SESSION[name];
  if (r === undefined) return null;
  if (r[2] !== undefined && num(version) < num(r[2])) return null;
  return { default: r[0], changeable: r[1] };
}

export function directiveNamesFor(version: string): string[] {
  return Object.keys(SESSION).filter((n) => directiveFacts(n, version) !== null);
}

export function removedInVersion(name: string): string | null {
  return REMOVED[name] ?? null;
}

/** php-src ext/session/session.c validators (8.2): the value PHP rejects at startup keeps the default. */
export function validate(name: string, value: string, version: string): boolean {
  const int = /^\s*[+-]?\d+/.test(value) ? parseInt(value, 10) : 0;
  switch (name) {
    case 'session.save_handler': return ['files', 'redis', 'rediscluster', 'memcached', 'memcache'].includes(value);
    case 'session.serialize_handler': return ['php', 'php_binary', 'php_serialize', 'igbinary', 'msgpack'].includes(value);
    case 'session.sid_length': return int >= 22 && int <= 256;
    case 'session.sid_bits_per_character': return int >= 4 && int <= 6;
    case 'session.name': return value !== '' && !/^\s*\d+\s*$/.test(value);
    case 'session.cookie_lifetime': return int >= 0;
    case 'session.gc_probability': return num(version) < 804 || int >= 0;
    default: return true;
  }
}

const truthy = (v: string) => ['on', 'yes', 'true'].includes(v.trim().toLowerCase()) || (parseInt(v, 10) || 0) !== 0;

/** 8.4+: changing these is deprecated (UPGRADING 8.4, RFC deprecations_php_8_4 / deprecate-get-post-sessions). */
export function deprecationOf(name: string, value: string, version: string): string | null {
  if (num(version) < 804) return null;
  switch (name) {
    case 'session.sid_length': return value.trim() !== '32' ? `changing session.sid_length is deprecated in PHP ${version}` : null;
    case 'session.sid_bits_per_character': return value.trim() !== '4' ? `changing session.sid_bits_per_character is deprecated in PHP ${version}` : null;
    case 'session.use_only_cookies': return !truthy(value) ? `disabling session.use_only_cookies is deprecated in PHP ${version}` : null;
    case 'session.use_trans_sid': return truthy(value) ? `enabling session.use_trans_sid is deprecated in PHP ${version}` : null;
    case 'session.referer_check': return value !== '' ? `session.referer_check is deprecated in PHP ${version}` : null;
    case 'session.trans_sid_tags': case 'session.trans_sid_hosts': return `${name} is deprecated in PHP ${version}`;
    default: return null;
  }
}

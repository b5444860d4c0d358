/**
 * The PHP version whose ini rules apply, and where a value's environment variables came from.
 *
 * PHP 8.3 rules are checked against php-src's own text (the machine runs PHP 8.2 only; the 8.2 rules
 * have real php as their oracle in fuzz-vs-php.test.ts):
 * - Zend/zend_ini_scanner.l (PHP 8.3+): in ST_VARNAME, `:-` ends the name and starts ST_VAR_FALLBACK
 *   (TC_FALLBACK); the fallback is scanned like a value (CONSTANT, NUMBER, FALLBACK_CHARS, `"..."`,
 *   `${`) up to `}`.
 * - Zend/zend_ini_parser.y: `cfg_var_ref: TC_DOLLAR_CURLY TC_VARNAME TC_FALLBACK fallback '}'`,
 *   `fallback: var_string_list | %empty` (constants resolved, as in a value); zend_ini_get_var takes
 *   the configuration hash first, then the environment (a variable set to '' is set), and the
 *   fallback only when neither has the name.
 * - php-src PR #11351 (commits bc8b9ae, a48b977), UPGRADING 8.3.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envOriginOf, loadConfiguration, parseIni, readSessionIni } from '../src/index.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes `files` (relative path -> text) under a new temporary directory; returns it. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'php-ini-version-'));
  dirs.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

const values = (text: string, env: Record<string, string>, phpVersion: string): string[] =>
  parseIni(text, { file: 'v.ini', env, phpVersion }).entries.map((e) => e.value);

describe('${NAME:-fallback} by the PHP 8.3 rules of php-src', () => {
  it('the fallback is taken only when neither an earlier key nor the environment has the name (set to "" is set)', () => {
    const text = 'a = ${SM_UNSET:-7200}\nb = ${SM_EMPTY:-7200}\nc = ${SM_SET:-7200}\nk = 60\nd = ${k:-7200}\ne = ${SM_UNSET:-}\n';
    const env = { SM_EMPTY: '', SM_SET: '5400' };
    expect(values(text, env, '8.3')).toEqual(['7200', '', '5400', '60', '60', '']);
    // 8.2: the whole `NAME:-fallback` is the variable's name, unset: ''
    expect(values(text, env, '8.2')).toEqual(['', '', '', '60', '', '']);
  });
  it('a constant in the fallback is resolved (fallback: var_string_list), a nested ${} and quotes work', () => {
    const text = 'a = ${SM_UNSET:-E_ALL}\nb = ${SM_UNSET:-${SM_SET:-x}/y}\nc = "${SM_UNSET:-"a;b"}"\nd = ${SM_UNSET:-${SM_UNSET2:-z}}\n';
    expect(values(text, { SM_SET: '/s' }, '8.3')).toEqual(['32767', '/s/y', 'a;b', 'z']);
  });
  it('the version may name a release (8.3.4) or a later minor (8.4): the same rules', () => {
    for (const v of ['8.3.4', '8.4', '9.0']) expect(values('a = ${SM_UNSET:-1}\n', {}, v)).toEqual(['1']);
    for (const v of ['8.2.36', '8.1', '7.4']) expect(values('a = ${SM_UNSET:-1}\n', {}, v)).toEqual(['']);
  });
  it('readSessionIni applies the version given: 8.3 takes the fallback where 8.2 reads an unset name', () => {
    const d = tree({ 'php.ini': 'session.gc_maxlifetime = ${SM_TEST_GC:-7200}\n' });
    const read = (phpVersion?: string) => {
      const r = readSessionIni({ iniFile: join(d, 'php.ini'), scanDir: '', env: {}, ...(phpVersion !== undefined ? { phpVersion } : {}) });
      if (!r.ok) throw new Error(r.error);
      return r.values['session.gc_maxlifetime'];
    };
    expect(read('8.3')).toMatchObject({ value: '7200', line: 1, envVars: ['SM_TEST_GC'] });
    // 8.2 (also the default): the unset name `SM_TEST_GC:-7200` gives '' (php 8.2.36 -c: ini_get() is '')
    expect(read().value).toBe('');
    expect(read('8.2').value).toBe('');
  });
  it('a pool file is read by the same version', () => {
    const d = tree({
      'php.ini': '',
      'www.conf': '[www]\nphp_admin_value[session.gc_maxlifetime] = ${SM_TEST_GC:-3600}\n',
    });
    const r = readSessionIni({ iniFile: join(d, 'php.ini'), scanDir: '', fpmConf: join(d, 'www.conf'), env: {}, phpVersion: '8.3' });
    if (!r.ok) throw new Error(r.error);
    expect(r.values['session.gc_maxlifetime']).toMatchObject({ value: '3600', origin: 'pool php_admin_value', envVars: ['SM_TEST_GC'] });
  });
});

describe('${KEY} of an earlier key whose value came from ${ENV}: the variable comes along, with the key it came through', () => {
  it('in one file', () => {
    const text = 'base = ${SM_DIR}\nsession.save_path = "${base}/sess"\nother = ${session.save_path}\nplain = 1\nx = ${plain}\n';
    const e = parseIni(text, { file: '/etc/php.ini', env: { SM_DIR: '/srv' } }).entries;
    expect(e.map((x) => [x.key, x.value, x.envVars, x.envVarsVia])).toEqual([
      ['base', '/srv', ['SM_DIR'], undefined],
      ['session.save_path', '/srv/sess', ['SM_DIR'], [{ key: 'base', file: '/etc/php.ini', line: 1, envVars: ['SM_DIR'] }]],
      [
        'other',
        '/srv/sess',
        ['SM_DIR'],
        [
          { key: 'session.save_path', file: '/etc/php.ini', line: 2, envVars: ['SM_DIR'] },
          { key: 'base', file: '/etc/php.ini', line: 1, envVars: ['SM_DIR'] },
        ],
      ],
      ['plain', '1', undefined, undefined],
      ['x', '1', undefined, undefined],
    ]);
    // a key set again without a variable carries none
    const again = parseIni('a = ${SM_DIR}\na = /x\nb = ${a}\n', { file: 'p.ini', env: { SM_DIR: '/srv' } }).entries;
    expect(again[2]).not.toHaveProperty('envVars');
  });
  it('across php.ini and conf.d (loadConfiguration), and into a pool line (readSessionIni)', () => {
    const d = tree({
      'php.ini': 'redis_host = ${SM_REDIS_HOST}\n',
      'conf.d/20-session.ini': 'session.save_handler = redis\nsession.save_path = "tcp://${redis_host}:6379"\n',
      'www.conf': '[www]\nphp_admin_value[session.save_path] = "${session.save_path}?database=2"\n',
    });
    const env = { SM_REDIS_HOST: '10.0.0.5' };
    const cfg = loadConfiguration({ sapi: 'cli', iniPath: join(d, 'php.ini'), scanDir: join(d, 'conf.d'), env });
    expect(cfg.settings.get('session.save_path')).toMatchObject({
      value: 'tcp://10.0.0.5:6379',
      envVars: ['SM_REDIS_HOST'],
      envVarsVia: [{ key: 'redis_host', file: join(d, 'php.ini'), line: 1, envVars: ['SM_REDIS_HOST'] }],
    });
    const r = readSessionIni({ iniFile: join(d, 'php.ini'), scanDir: join(d, 'conf.d'), fpmConf: join(d, 'www.conf'), env });
    if (!r.ok) throw new Error(r.error);
    expect(r.values['session.save_path']).toEqual({
      value: 'tcp://10.0.0.5:6379?database=2',
      file: join(d, 'www.conf'),
      line: 2,
      origin: 'pool php_admin_value',
      envVars: ['SM_REDIS_HOST'],
      envVarsVia: [
        { key: 'session.save_path', file: join(d, 'conf.d/20-session.ini'), line: 2, envVars: ['SM_REDIS_HOST'] },
        { key: 'redis_host', file: join(d, 'php.ini'), line: 1, envVars: ['SM_REDIS_HOST'] },
      ],
    });
  });
});

describe('envOriginOf: the one copy of an EnvOrigin', () => {
  it('copies envVars and envVarsVia when present, in that order, and nothing else', () => {
    const via = [{ key: 'base', file: '/etc/php.ini', line: 1, envVars: ['SM_DIR'] }];
    const setting = { value: 'x', file: 'f', line: 2, envVarsVia: via, envVars: ['SM_DIR'] };
    expect(envOriginOf(setting)).toEqual({ envVars: ['SM_DIR'], envVarsVia: via });
    expect(Object.keys(envOriginOf({ envVarsVia: via, envVars: ['SM_DIR'] }))).toEqual(['envVars', 'envVarsVia']);
    expect(envOriginOf({ envVars: ['A'] })).toEqual({ envVars: ['A'] });
    expect(envOriginOf({})).toEqual({});
    expect(Object.keys(envOriginOf({ envVars: undefined, envVarsVia: undefined }))).toEqual([]);
  });
});

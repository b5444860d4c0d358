/**
 * Known faults (test/fixtures/cases BUG-11, 13, 14, 17) and bad input (unreadable file, binary garbage,
 * a 50 MB file, a symlink loop in a scan dir, a missing root) for the ini engine.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createRootFs,
  defaultFpmPrefix,
  effectiveForPool,
  expandGlob,
  iniGetValues,
  loadConfiguration,
  parseFpmConfig,
  parseIni,
  parseRedisSavePath,
  redactRedisSavePath,
  describeRedisHost,
  collectUserIni,
  effectiveForRequest,
  directiveInfo,
} from '../src/index.ts';
import { CASES_DIR, FPM_CHECK_DIR } from '../../../test/support/fixtures.ts';

const cases = CASES_DIR;
const tmp = mkdtempSync(join(tmpdir(), 'php-ini-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('BUG-11: JS ini parsing of ; # = differs from PHP', () => {
  const exp = JSON.parse(readFileSync(join(cases, 'BUG-11/expected.json'), 'utf8')).expected_toolkit_effective_values as Record<
    string,
    Record<string, unknown>
  >;
  for (const [file, want] of Object.entries(exp)) {
    it(file, () => {
      const cfg = loadConfiguration({ iniPath: join(cases, 'BUG-11', file), noIni: true });
      const v = iniGetValues(cfg, ['session.save_path', 'session.gc_maxlifetime', 'session.use_strict_mode']);
      expect(v['session.save_path']).toBe(want['session.save_path']);
      if (file === 'unquoted_equals.ini') {
        expect(v['session.gc_maxlifetime']).toBe('1440');
        expect(v['session.use_strict_mode']).toBe('0');
        expect(cfg.errors).toEqual([expect.objectContaining({ kind: 'syntax', line: 3, message: "syntax error, unexpected '='" })]);
      } else {
        expect(cfg.errors).toEqual([]);
      }
    });
  }
});

describe('BUG-13: booleans are converted at parse time, quoted words stay raw', () => {
  const exp = JSON.parse(readFileSync(join(cases, 'BUG-13/expected.json'), 'utf8')).expected_toolkit;
  it('booleans.ini raw values', () => {
    const cfg = loadConfiguration({ iniPath: join(cases, 'BUG-13/booleans.ini'), noIni: true });
    const v = iniGetValues(cfg, Object.keys(exp['booleans.ini']));
    for (const [k, want] of Object.entries(exp['booleans.ini'] as Record<string, { raw: string }>)) expect(v[k], k).toBe(want.raw);
  });
  for (const variant of exp.cookie_httponly_variants as Array<{ ini: string; raw: string }>) {
    it(`session.cookie_httponly = ${variant.ini}`, () => {
      const r = parseIni(`session.cookie_httponly = ${variant.ini}\n`, { file: 'v.ini' });
      expect(r.entries[0]?.value).toBe(variant.raw);
    });
  }
});

describe('BUG-14: php.ini < pool php_value < .user.ini < ini_set, php_admin_value locks', () => {
  const dir = join(cases, 'BUG-14');
  const cfg = loadConfiguration({ sapi: 'fpm', iniPath: join(dir, 'php.ini'), noIni: true });
  const fpm = parseFpmConfig({ file: join(dir, 'pool.conf'), fs: createRootFs() });
  const pool = (n: string) => fpm.pools.find((p) => p.name === n)!;
  const userIni = (docroot: string) =>
    collectUserIni({ fs: createRootFs(), documentRoot: join(dir, docroot), scriptDir: join(dir, docroot), filename: '.user.ini' }).entries;
  const set: Array<[string, string]> = [['session.save_path', '/srv/php/runtime-path']];
  it('reads both pools', () => {
    expect(fpm.pools.map((p) => p.name)).toEqual(['admin', 'plain']);
    expect(fpm.errors).toEqual([]);
  });
  it('admin pool, no .user.ini', () => {
    const r = effectiveForPool(cfg, pool('admin'), { iniSet: set }, ['session.save_path', 'session.gc_maxlifetime']);
    expect(r.values).toEqual({ 'session.save_path': '/srv/php/admin-path', 'session.gc_maxlifetime': '7200' });
    expect(r.iniSetResults).toEqual([{ key: 'session.save_path', returned: false }]);
    expect(r.settings['session.save_path']?.locked).toBe(true);
  });
  it('plain pool, no .user.ini', () => {
    const before = effectiveForPool(cfg, pool('plain'), {}, ['session.save_path']);
    expect(before.values['session.save_path']).toBe('/srv/php/pool-path');
    const r = effectiveForPool(cfg, pool('plain'), { iniSet: set }, ['session.save_path', 'session.gc_maxlifetime']);
    expect(r.values).toEqual({ 'session.save_path': '/srv/php/runtime-path', 'session.gc_maxlifetime': '1440' });
    expect(r.iniSetResults).toEqual([{ key: 'session.save_path', returned: '/srv/php/pool-path' }]);
  });
  it('admin pool + .user.ini', () => {
    const r = effectiveForPool(cfg, pool('admin'), { userIni: userIni('docroot_userini'), iniSet: set }, [
      'session.save_path',
      'session.gc_maxlifetime',
    ]);
    expect(r.values).toEqual({ 'session.save_path': '/srv/php/admin-path', 'session.gc_maxlifetime': '60' });
    expect(r.iniSetResults[0]?.returned).toBe(false);
  });
  it('plain pool + .user.ini', () => {
    const r = effectiveForPool(cfg, pool('plain'), { userIni: userIni('docroot_userini'), iniSet: set }, [
      'session.save_path',
      'session.gc_maxlifetime',
    ]);
    expect(r.values).toEqual({ 'session.save_path': '/srv/php/runtime-path', 'session.gc_maxlifetime': '60' });
    expect(r.iniSetResults).toEqual([{ key: 'session.save_path', returned: '/srv/php/userini-path' }]);
  });
  it('duplicate php_value keys in one pool: the first wins; php_flag normalises to 1/0; $pool expands', () => {
    const f = join(tmp, 'dup.conf');
    writeFileSync(
      f,
      '[www]\nphp_value[session.gc_maxlifetime] = 200\nphp_value[session.gc_maxlifetime] = 300\nphp_flag[session.cookie_secure] = off\nphp_value[session.save_path] = "/var/lib/php/$pool"\n',
    );
    const c = parseFpmConfig({ file: f, fs: createRootFs() });
    const r = effectiveForPool(cfg, c.pools[0]!, {}, ['session.gc_maxlifetime', 'session.cookie_secure', 'session.save_path']);
    expect(r.values).toEqual({ 'session.gc_maxlifetime': '200', 'session.cookie_secure': '0', 'session.save_path': '/var/lib/php/www' });
  });
});

describe('BUG-17: phpredis save_path: split on "," first, then form-decode', () => {
  const exp = JSON.parse(readFileSync(join(cases, 'BUG-17/expected.json'), 'utf8')).expected_toolkit.cases as Array<{
    save_path: string;
    parsed: Array<Record<string, unknown>>;
    finding?: { id: string };
  }>;
  for (const c of exp) {
    it(c.save_path.replace(/auth=[^&]*/, 'auth=…'), () => {
      const r = parseRedisSavePath(c.save_path);
      const first = r.hosts[0]!;
      const want = c.parsed[0]!;
      if ('auth' in want) expect(first.auth?.password).toBe(want.auth);
      if ('host' in want) expect([first.host, first.port]).toEqual([want.host, want.port]);
      if ('database' in want) expect(first.database).toBe(want.database);
      if ('prefix' in want) expect(first.prefix).toBe(want.prefix);
      if ('timeout' in want) expect(first.timeout).toBe(want.timeout);
      if ('b' in want) expect(first.params.b).toBe(want.b);
      expect(r.hosts.length).toBe(c.parsed.length);
      if (c.finding) expect(r.findings.map((f) => f.id)).toContain(c.finding.id);
      else expect(r.findings.filter((f) => f.severity === 'high')).toEqual([]);
      // never print the password
      const pw = first.auth?.password;
      if (pw) {
        expect(redactRedisSavePath(c.save_path)).not.toContain(`auth=${c.save_path.split('auth=')[1]!.split('&')[0]}`);
        expect(describeRedisHost(first)).not.toContain(`auth=${pw}`);
        expect(first.redacted).toMatch(/auth=<redacted len=\d+>/);
      }
    });
  }
  it('several hosts, tls and unix sockets', () => {
    const r = parseRedisSavePath(
      'tls://r1:6380?auth[]=app&auth[]=s3cret&database=3, unix:///run/redis.sock?prefix=x: tcp://10.0.0.6?weight=2',
    );
    expect(r.hosts.map((h) => [h.scheme, h.host, h.port, h.socket])).toEqual([
      ['tls', 'r1', 6380, null],
      ['unix', null, null, '/run/redis.sock'],
      ['tcp', '10.0.0.6', 6379, null],
    ]);
    expect(r.hosts[0]!.auth).toEqual({ user: 'app', password: 's3cret' });
    expect(r.hosts[1]!.prefix).toBe('x:');
    expect(redactRedisSavePath('tls://r1?auth[]=app&auth[]=s3cret')).not.toContain('s3cret');
  });

  it('a password with unencoded blanks is hidden whole; the servers after it stay (phpredis splits at blanks)', () => {
    // phpredis reads the password "ab" and a server "cd ef"; the operator meant "ab cd ef"
    expect(parseRedisSavePath('tcp://h:6379?auth=ab cd').hosts.map((h) => h.auth?.password ?? null)).toEqual(['ab', null]);
    expect(redactRedisSavePath('tcp://h:6379?auth=ab cd  ef&database=2')).toBe('tcp://h:6379?auth=<redacted len=9>&database=2');
    expect(redactRedisSavePath('tcp://h:6379?auth=ab cd, tcp://h2:6379?auth=x y')).toBe(
      'tcp://h:6379?auth=<redacted len=5>, tcp://h2:6379?auth=<redacted len=3>',
    );
    for (const next of ['tls://h2:6380', '/run/redis.sock', '10.0.0.2:6379'])
      expect(redactRedisSavePath(`tcp://h:6379?auth=s3cret ${next}`)).toBe(`tcp://h:6379?auth=<redacted len=6> ${next}`);
  });
});

describe('bad input', () => {
  it('an unreadable main file and scan-dir file: recorded, partial, no crash', () => {
    const d = join(tmp, 'unreadable');
    mkdirSync(join(d, 'conf.d'), { recursive: true });
    writeFileSync(join(d, 'php.ini'), 'session.name = MAIN\n');
    writeFileSync(join(d, 'conf.d', '10-secret.ini'), 'session.name = SECRET\n');
    chmodSync(join(d, 'conf.d', '10-secret.ini'), 0o000);
    const real = createRootFs();
    const secret = join(d, 'conf.d', '10-secret.ini');
    // root can read mode-000 files: then simulate the EACCES the audit user would get
    const fs =
      'code' in real.readFile(secret)
        ? real
        : { ...real, readFile: (p: string) => (p === secret ? { code: 'EACCES', error: `${p}: permission denied` } : real.readFile(p)) };
    const cfg = loadConfiguration({ iniPath: join(d, 'php.ini'), scanDir: join(d, 'conf.d'), fs });
    chmodSync(secret, 0o644);
    expect(cfg.partial).toBe(true);
    expect(cfg.errors).toEqual([expect.objectContaining({ kind: 'io', file: join(d, 'conf.d', '10-secret.ini') })]);
    expect(iniGetValues(cfg, ['session.name'])['session.name']).toBe('MAIN');
  });
  it('binary garbage: a syntax error or a silent stop, never a crash', () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let n = 0; n < 50; n++) {
      const bytes = new Uint8Array(4096).map(() => rnd() % 256);
      const r = parseIni(bytes, { file: `garbage-${n}` });
      expect(Array.isArray(r.entries)).toBe(true);
      for (const e of r.errors) expect(['syntax', 'notice']).toContain(e.kind);
    }
    const f = join(tmp, 'garbage.ini');
    writeFileSync(f, Buffer.from([0x73, 0x3d, 0x28, 0xff, 0xfe, 0x00, 0x01, 0x22, 0x7b]));
    const cfg = loadConfiguration({ iniPath: f, noIni: true });
    expect(cfg.loadedFile).toBe(f);
    expect(cfg.errors.length).toBeGreaterThan(0);
  });
  it('a 50 MB file completes with the right result', () => {
    const line = `; ${'x'.repeat(90)}\nsession.gc_maxlifetime = "${'y'.repeat(20)}"\n`;
    const count = Math.ceil((50 * 1024 * 1024) / line.length);
    const f = join(tmp, 'big.ini');
    writeFileSync(f, line.repeat(count) + 'session.name = "BIG_END"\n');
    const cfg = loadConfiguration({ iniPath: f, noIni: true });
    expect(cfg.errors).toEqual([]);
    expect(iniGetValues(cfg, ['session.name'])['session.name']).toBe('BIG_END');
    expect(cfg.entries.filter((e) => e.file === f).length).toBe(count + 1);
    // pathological shapes stay linear too: one huge quoted value and many unmatched quotes
    const r = parseIni(`a = "${'z'.repeat(5_000_000)}"\n` + "b = ' x\n".repeat(200_000), { file: 'q.ini' });
    expect(r.entries[0]?.value.length).toBe(5_000_000);
  });
  it('a symlink loop in a scan dir: ELOOP recorded, other files still read', () => {
    const d = join(tmp, 'loop');
    mkdirSync(d, { recursive: true });
    symlinkSync('b.ini', join(d, 'a.ini'));
    symlinkSync('a.ini', join(d, 'b.ini'));
    writeFileSync(join(d, 'c.ini'), 'session.name = AFTER_LOOP\n');
    const cfg = loadConfiguration({ scanDir: d, iniPath: join(tmp, 'none.ini') });
    expect(cfg.partial).toBe(true);
    expect(cfg.errors.map((e) => e.message).join('\n')).toMatch(/too many levels of symbolic links/);
    expect(cfg.scannedFiles).toEqual([join(d, 'c.ini')]);
    expect(iniGetValues(cfg, ['session.name'])['session.name']).toBe('AFTER_LOOP');
  });
  it('symlinks never leave --root', () => {
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'etc/php/8.2/cli/conf.d'), { recursive: true });
    mkdirSync(join(root, 'etc/php/8.2/mods-available'), { recursive: true });
    writeFileSync(join(root, 'etc/php/8.2/cli/php.ini'), 'session.save_path = /in/root\n');
    writeFileSync(join(root, 'etc/php/8.2/mods-available/redis.ini'), 'extension=redis.so\n');
    symlinkSync('/etc/php/8.2/mods-available/redis.ini', join(root, 'etc/php/8.2/cli/conf.d/20-redis.ini'));
    symlinkSync('../../../../../../../../etc/passwd', join(root, 'etc/php/8.2/cli/conf.d/30-escape.ini'));
    const cfg = loadConfiguration({ root });
    expect(cfg.loadedFile).toBe('/etc/php/8.2/cli/php.ini');
    expect(cfg.scannedFiles).toEqual(['/etc/php/8.2/cli/conf.d/20-redis.ini']);
    expect(cfg.extensions.map((e) => e.name)).toEqual(['redis']);
    expect(iniGetValues(cfg, ['session.save_path', 'redis.session.locking_enabled'])).toEqual({
      'session.save_path': '/in/root',
      'redis.session.locking_enabled': '0',
    });
    expect(readdirSync(join(root, 'etc/php/8.2/cli/conf.d')).length).toBe(2);
  });
  it('lstat and readlink look at the link itself; the directories above it resolve inside the root', () => {
    const root = join(tmp, 'lroot');
    mkdirSync(join(root, 'etc/real'), { recursive: true });
    writeFileSync(join(root, 'etc/real/a.ini'), 'x=1\n');
    symlinkSync('/etc/real', join(root, 'etc/dirlink'));
    symlinkSync('/etc/real/a.ini', join(root, 'etc/real/abs.ini'));
    symlinkSync('../../../../../../etc/passwd', join(root, 'etc/real/escape.ini'));
    symlinkSync('loop2', join(root, 'etc/real/loop1'));
    symlinkSync('loop1', join(root, 'etc/real/loop2'));
    const fs = createRootFs({ root });
    expect(fs.lstat('/etc/dirlink/abs.ini')).toMatchObject({ type: 'symlink' });
    expect(fs.stat('/etc/dirlink/abs.ini')).toMatchObject({ type: 'file', size: 4 });
    expect(fs.readlink('/etc/dirlink/abs.ini')).toBe('/etc/real/a.ini');
    expect(fs.readlink('/etc/real/escape.ini')).toBe('../../../../../../etc/passwd');
    expect(fs.stat('/etc/real/escape.ini')).toMatchObject({ code: 'ENOENT' });
    expect(fs.lstat('/etc/real/loop1')).toMatchObject({ type: 'symlink' });
    expect(fs.stat('/etc/real/loop1')).toMatchObject({ code: 'ELOOP' });
    expect(fs.lstat('/etc/real/a.ini')).toMatchObject({ type: 'file' });
    expect(fs.readlink('/etc/real/a.ini')).toMatchObject({ code: 'EINVAL' });
    expect(fs.lstat('/etc/nope/a.ini')).toMatchObject({ code: 'ENOENT' });
    expect(fs.lstat('/')).toMatchObject({ type: 'dir' });
  });
  it('a non-existent root: one error, partial, empty configuration', () => {
    const cfg = loadConfiguration({ root: join(tmp, 'no-such-root') });
    expect(cfg.partial).toBe(true);
    expect(cfg.errors).toEqual([expect.objectContaining({ kind: 'io', message: expect.stringMatching(/does not exist/) })]);
    expect(cfg.loadedFile).toBeNull();
  });
});

describe('directive data', () => {
  it('removed and deprecated session directives per version', () => {
    expect(directiveInfo('session.entropy_file', '8.2')).toMatchObject({ exists: false, removedIn: '7.1' });
    expect(directiveInfo('session.entropy_file', '7.0').exists).toBe(true);
    expect(directiveInfo('session.sid_length', '8.4')).toMatchObject({ exists: true, deprecatedIn: '8.4' });
    expect(directiveInfo('session.cookie_partitioned', '8.2').exists).toBe(false);
    expect(directiveInfo('session.cookie_partitioned', '8.5')).toMatchObject({ exists: true, default: '0' });
    expect(directiveInfo('sys_temp_dir')).toMatchObject({ exists: true, access: 4, default: '' });
    expect(directiveInfo('session.cookie_secure', '7.1').default).toBe('');
    expect(directiveInfo('redis.session.locking_enabled').exists).toBe(false);
    expect(directiveInfo('redis.session.locking_enabled', { extensions: ['Core', 'session', 'redis'] }).exists).toBe(true);
  });
  it('ini_get() for another PHP version: 8.4 rejects gc_divisor = 0, 7.0 still knows entropy_length', () => {
    const f = join(tmp, 'versions.ini');
    writeFileSync(f, 'session.gc_divisor = 0\nsession.entropy_length = 32\nsession.cookie_partitioned = 1\n');
    const cfg = loadConfiguration({ iniPath: f, noIni: true });
    const keys = ['session.gc_divisor', 'session.entropy_length', 'session.cookie_partitioned'];
    expect(iniGetValues(cfg, keys, '8.2')).toEqual({
      'session.gc_divisor': '0',
      'session.entropy_length': false,
      'session.cookie_partitioned': false,
    });
    expect(iniGetValues(cfg, keys, '8.4')).toEqual({
      'session.gc_divisor': '100',
      'session.entropy_length': false,
      'session.cookie_partitioned': false,
    });
    expect(iniGetValues(cfg, keys, '8.5')['session.cookie_partitioned']).toBe('1');
    expect(iniGetValues(cfg, keys, '7.0')['session.entropy_length']).toBe('32');
  });
  it('PATH sections lock; .user.ini cannot change PHP_INI_SYSTEM directives', () => {
    const cfg = loadConfiguration({ sapi: 'cgi', noIni: true, defines: ['session.name=A'] });
    const entries = parseIni('sys_temp_dir = /x\nsession.name = B\n', { file: '/d/.user.ini', mode: 'user.ini' }).entries;
    const r = effectiveForRequest(cfg, { userIni: entries }, ['sys_temp_dir', 'session.name']);
    expect(r.values).toEqual({ sys_temp_dir: '', 'session.name': 'B' });
    expect(r.ignored[0]).toMatchObject({ key: 'sys_temp_dir', origin: '.user.ini' });
  });
});

describe('reference/fpm-check: pool php_value/php_flag/php_admin_value as real php-fpm 8.2 applied them', () => {
  const dir = FPM_CHECK_DIR;
  const lines = readFileSync(join(dir, 'expected.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'));
  const expected = lines.map((l) => JSON.parse(l) as Record<string, string>);
  const env = { FPMTEST_ENV: 'fromenv' };
  const cfg = loadConfiguration({ sapi: 'fpm', iniPath: join(dir, 'php.ini'), noIni: true, env });
  const fpm = parseFpmConfig({ file: join(dir, 'pool.conf.in'), fs: createRootFs(), env, lookup: (n) => cfg.settings.get(n)?.value });
  const www = fpm.pools.find((p) => p.name === 'www')!;
  const keys = Object.keys(expected[0]!).filter((k) => k.startsWith('session.'));
  const request = (fastcgiParams?: { PHP_VALUE?: string }) => {
    const userIni = collectUserIni({
      fs: createRootFs(),
      documentRoot: join(dir, 'www'),
      scriptDir: join(dir, 'www'),
      filename: '.user.ini',
    }).entries;
    return effectiveForRequest(
      cfg,
      {
        pool: www,
        fastcgiParams,
        serverName: 'localhost',
        scriptDir: join(dir, 'www'),
        userIni,
        iniSet: [
          ['session.name', 'RUNTIME'],
          ['session.cache_limiter', 'public'],
        ],
      },
      keys,
    );
  };
  it('request 1: first duplicate wins, flags 1/0, php_value off = "", admin locks, ${ENV}', () => {
    const r = request();
    const before = effectiveForRequest(
      cfg,
      {
        pool: www,
        serverName: 'localhost',
        scriptDir: join(dir, 'www'),
        userIni: collectUserIni({ fs: createRootFs(), documentRoot: join(dir, 'www'), scriptDir: join(dir, 'www'), filename: '.user.ini' })
          .entries,
      },
      keys,
    );
    for (const k of keys) expect(before.values[k], k).toBe(expected[0]![k]);
    expect(r.iniSetResults.map((x) => x.returned)).toEqual([false, expected[0]!.ini_set_cl!.replace(/'/g, '')]);
    expect(r.values['session.name']).toBe(expected[0]!.name_after);
  });
  it('request 2: fastcgi PHP_VALUE overrides the pool value', () => {
    const r = effectiveForRequest(cfg, { pool: www, fastcgiParams: { PHP_VALUE: 'session.gc_maxlifetime=999' } }, [
      'session.gc_maxlifetime',
    ]);
    expect(r.values['session.gc_maxlifetime']).toBe(expected[1]!['session.gc_maxlifetime']);
  });
});

describe('parser modes and versions', () => {
  it('${NAME:-fallback} is 8.3+; 8.2 reads the whole NAME:-fallback as a variable name', () => {
    const text = 'a = ${SM_UNSET:-/fb}\nb = "x${SM_SET:-no}y"\n';
    const env = { SM_SET: 'set' };
    expect(parseIni(text, { file: 'v.ini', env, phpVersion: '8.2' }).entries.map((e) => e.value)).toEqual(['', 'xy']);
    expect(parseIni(text, { file: 'v.ini', env, phpVersion: '8.3' }).entries.map((e) => e.value)).toEqual(['/fb', 'xsety']);
  });
  it('fpm mode: each line is parsed alone (a quoted value cannot span lines), sections are pools', () => {
    const r = parseIni('[www]\nphp_value[session.name] = "A\nB"\nuser = x\n', { file: 'pool.conf', mode: 'fpm' });
    expect(r.errors[0]).toMatchObject({ kind: 'syntax', line: 2 });
    const ok = parseIni('[www]\nphp_admin_value[session.save_path] = "/a;b"\n[other]\nphp_flag[display_errors] = on\n', {
      file: 'pool.conf',
      mode: 'fpm',
    });
    expect(ok.entries.map((e) => [e.section, e.key, e.offset, e.value, e.line])).toEqual([
      ['www', 'php_admin_value', 'session.save_path', '/a;b', 2],
      ['other', 'php_flag', 'display_errors', '1', 4],
    ]);
  });
  it('user.ini mode: ${} sees the main configuration (lookup), not earlier .user.ini lines', () => {
    const r = parseIni('x = 1\ny = ${x}${main}\n', {
      file: '.user.ini',
      mode: 'user.ini',
      lookup: (n) => (n === 'main' ? 'M' : undefined),
    });
    expect(r.entries.map((e) => e.value)).toEqual(['1', 'M']);
    const p = parseIni('x = 1\ny = ${x}${main}\n', { file: 'php.ini', mode: 'php.ini', lookup: (n) => (n === 'main' ? 'M' : undefined) });
    expect(p.entries.map((e) => e.value)).toEqual(['1', '1M']);
  });
  it('every entry keeps file and line; errors carry the line PHP prints', () => {
    const r = parseIni('; c\n\na = 1\n[S]\nb = "2\n3"\nc = (\n', { file: '/etc/php.ini' });
    expect(r.entries.map((e) => [e.key, e.file, e.line])).toEqual([
      ['a', '/etc/php.ini', 3],
      ['b', '/etc/php.ini', 5],
    ]);
    expect(r.errors).toEqual([{ file: '/etc/php.ini', line: 8, kind: 'syntax', message: 'syntax error, unexpected END_OF_LINE' }]);
  });
});

describe('FPM config under --root', () => {
  it('include= globs are sorted and read inside the root; an include loop is read once and fatal', () => {
    const root = join(tmp, 'fpmroot');
    mkdirSync(join(root, 'etc/php/8.2/fpm/pool.d'), { recursive: true });
    writeFileSync(
      join(root, 'etc/php/8.2/fpm/php-fpm.conf'),
      '[global]\npid = /run/php/php8.2-fpm.pid\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\n',
    );
    writeFileSync(
      join(root, 'etc/php/8.2/fpm/pool.d/www.conf'),
      '[www]\nuser = www-data\nphp_admin_value[session.save_path] = "/var/lib/php/sessions/$pool"\n',
    );
    writeFileSync(
      join(root, 'etc/php/8.2/fpm/pool.d/api.conf'),
      '[api]\nphp_value[session.save_handler] = redis\nphp_value[session.save_path] = "tcp://127.0.0.1:6379?auth=x"\n',
    );
    writeFileSync(join(root, 'etc/php/8.2/fpm/pool.d/zz.txt'), '[ignored]\n');
    const fs = createRootFs({ root });
    const c = parseFpmConfig({ file: '/etc/php/8.2/fpm/php-fpm.conf', fs });
    expect(c.files).toEqual(['/etc/php/8.2/fpm/php-fpm.conf', '/etc/php/8.2/fpm/pool.d/api.conf', '/etc/php/8.2/fpm/pool.d/www.conf']);
    expect(c.pools.map((p) => p.name)).toEqual(['api', 'www']);
    expect(c.pools[1]!.phpAdminValues[0]).toMatchObject({ key: 'session.save_path', value: '/var/lib/php/sessions/www', line: 3 });
    expect(c.global.get('pid')?.value).toBe('/run/php/php8.2-fpm.pid');
    expect(c.partial).toBe(false);

    writeFileSync(join(root, 'etc/php/8.2/fpm/pool.d/loop.conf'), 'include=/etc/php/8.2/fpm/pool.d/loop.conf\n');
    const looped = parseFpmConfig({ file: '/etc/php/8.2/fpm/php-fpm.conf', fs });
    expect(looped.fatal).toBe(true);
    expect(looped.partial).toBe(true);
    expect(looped.errors.map((e) => e.message)).toEqual(['/etc/php/8.2/fpm/pool.d/loop.conf: include loop; not read again']);
    expect(looped.files.filter((f) => f.endsWith('loop.conf'))).toHaveLength(1);
    expect(looped.pools.map((p) => p.name)).toEqual(['api', 'www']);
  });
  it('more than 5 files nested in each other is refused (fpm_conf_load_ini_file: ini_recursion++ > 4)', () => {
    const root = join(tmp, 'fpmdeep');
    mkdirSync(join(root, 'etc/fpm'), { recursive: true });
    writeFileSync(join(root, 'etc/fpm/php-fpm.conf'), 'include=/etc/fpm/1.conf\n');
    for (let i = 1; i <= 6; i++) writeFileSync(join(root, `etc/fpm/${i}.conf`), `[p${i}]\nuser = u${i}\ninclude=/etc/fpm/${i + 1}.conf\n`);
    const c = parseFpmConfig({ file: '/etc/fpm/php-fpm.conf', fs: createRootFs({ root }) });
    expect(c.pools.map((p) => p.name)).toEqual(['p1', 'p2', 'p3', 'p4']);
    expect(c.fatal).toBe(true);
    expect(c.errors.map((e) => e.message)).toEqual(['/etc/fpm/5.conf: include nested more than 5 levels (php-fpm refuses it); not read']);
  });
  it('glob(3): wildcards in any component, [...] classes, dot names only for a dot pattern; NUL files refused', () => {
    const root = join(tmp, 'fpmglob');
    for (const d of ['etc/fpm/a1', 'etc/fpm/a2', 'etc/fpm/b1']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'etc/fpm/php-fpm.conf'), 'include=/etc/fpm/a[0-9]/*.conf\ninclude=/etc/fpm/b?/.*.conf\n');
    writeFileSync(join(root, 'etc/fpm/a2/x.conf'), '[a2x]\nuser = a\n');
    writeFileSync(join(root, 'etc/fpm/a1/y.conf'), '[a1y]\nuser = a\n');
    writeFileSync(join(root, 'etc/fpm/a1/.hidden.conf'), '[hidden]\nuser = a\n');
    writeFileSync(join(root, 'etc/fpm/b1/.dot.conf'), '[dot]\nuser = b\n');
    writeFileSync(join(root, 'etc/fpm/b1/z.conf'), '[nodot]\nuser = b\n');
    writeFileSync(join(root, 'etc/fpm/a2/bin.conf'), Buffer.from([0x5b, 0x62, 0x5d, 0x0a, 0, 1, 2]));
    const fs = createRootFs({ root });
    expect(expandGlob(fs, '/etc/fpm/a[!2]/*.conf')).toEqual(['/etc/fpm/a1/y.conf']);
    const c = parseFpmConfig({ file: '/etc/fpm/php-fpm.conf', fs });
    expect(c.pools.map((p) => p.name)).toEqual(['a1y', 'a2x', 'dot']);
    expect(c.files).toEqual(['/etc/fpm/php-fpm.conf', '/etc/fpm/a1/y.conf', '/etc/fpm/a2/x.conf', '/etc/fpm/b1/.dot.conf']);
    expect(c.errors).toEqual([
      expect.objectContaining({ kind: 'io', message: '/etc/fpm/a2/bin.conf: binary data (NUL bytes); not an FPM configuration, not read' }),
    ]);
    expect(c.partial).toBe(true);
    expect(c.fatal).toBe(false);
  });
  it('invalid flags are listed apart; seq keeps the written order across php_value and php_admin_value; a file list reads like includes', () => {
    const root = join(tmp, 'fpmflags');
    mkdirSync(join(root, 'etc/fpm/pool.d'), { recursive: true });
    writeFileSync(
      join(root, 'etc/fpm/pool.d/www.conf'),
      '[www]\nphp_admin_value[a] = 1\nphp_flag[b] = maybe\nphp_value[c] = $pool\nphp_admin_flag[d] = off\n',
    );
    writeFileSync(join(root, 'etc/fpm/pool.d/zz.conf'), '[www]\nphp_value[e] = 2\n');
    const fs = createRootFs({ root });
    const c = parseFpmConfig({ file: expandGlob(fs, '/etc/fpm/pool.d/*.conf'), fs });
    expect(c.pools).toHaveLength(1);
    const www = c.pools[0]!;
    const all = [...www.phpValues, ...www.phpAdminValues, ...c.invalidFlags].sort((x, y) => x.seq! - y.seq!);
    expect(all.map((v) => [v.key, v.value, v.line])).toEqual([
      ['a', '1', 2],
      ['b', 'maybe', 3],
      ['c', 'www', 4],
      ['d', '0', 5],
      ['e', '2', 2],
    ]);
    expect(c.invalidFlags).toEqual([expect.objectContaining({ pool: 'www', key: 'b', flag: true, admin: false })]);
    expect(c.errors).toEqual([
      expect.objectContaining({ kind: 'syntax', line: 3, message: 'php_flag[b]: invalid boolean value (php-fpm refuses to start)' }),
    ]);
    expect(c.fatal).toBe(true);
  });
});

describe('FPM include= relative to the install prefix (fpm_conf.c fpm_evaluate_full_path)', () => {
  const root = join(tmp, 'fpmprefix');
  mkdirSync(join(root, 'usr/local/etc/php-fpm.d'), { recursive: true });
  mkdirSync(join(root, 'usr/etc/pools'), { recursive: true });
  mkdirSync(join(root, 'etc/php/8.2/fpm/etc/pools'), { recursive: true });
  mkdirSync(join(root, 'opt/php/etc/pools'), { recursive: true });
  // Docker php:*-fpm ships exactly this line in /usr/local/etc/php-fpm.conf.
  writeFileSync(join(root, 'usr/local/etc/php-fpm.conf'), '[global]\ninclude=etc/php-fpm.d/*.conf\n');
  writeFileSync(join(root, 'usr/local/etc/php-fpm.d/www.conf'), '[www]\nphp_value[session.name] = DOCKER\n');
  writeFileSync(join(root, 'etc/php/8.2/fpm/php-fpm.conf'), '[global]\ninclude=etc/pools/*.conf\n');
  writeFileSync(join(root, 'usr/etc/pools/a.conf'), '[prefixed]\nphp_value[session.name] = USR\n');
  writeFileSync(join(root, 'etc/php/8.2/fpm/etc/pools/a.conf'), '[beside]\nphp_value[session.name] = BESIDE\n');
  writeFileSync(join(root, 'opt/php/etc/pools/a.conf'), '[custom]\nphp_value[session.name] = OPT\n');
  const fs = createRootFs({ root });

  it('the Docker image: include=etc/php-fpm.d/*.conf is read below /usr/local', () => {
    expect(defaultFpmPrefix('/usr/local/etc/php-fpm.conf')).toBe('/usr/local');
    const c = parseFpmConfig({ file: '/usr/local/etc/php-fpm.conf', fs });
    expect(c.files).toEqual(['/usr/local/etc/php-fpm.conf', '/usr/local/etc/php-fpm.d/www.conf']);
    expect(c.pools.map((p) => [p.name, p.phpValues[0]?.value])).toEqual([['www', 'DOCKER']]);
  });
  it('a distribution build (prefix /usr): relative to /usr, never to the including file', () => {
    expect(defaultFpmPrefix('/etc/php/8.2/fpm/php-fpm.conf')).toBe('/usr');
    const c = parseFpmConfig({ file: '/etc/php/8.2/fpm/php-fpm.conf', fs });
    expect(c.pools.map((p) => p.name)).toEqual(['prefixed']);
  });
  it('the caller can pass the real prefix (php-fpm --prefix)', () => {
    const c = parseFpmConfig({ file: '/etc/php/8.2/fpm/php-fpm.conf', fs, prefix: '/opt/php' });
    expect(c.files).toEqual(['/etc/php/8.2/fpm/php-fpm.conf', '/opt/php/etc/pools/a.conf']);
    expect(c.pools.map((p) => [p.name, p.phpValues[0]?.value])).toEqual([['custom', 'OPT']]);
  });
});

describe('SAPI scope of the request layers', () => {
  it('the CLI ignores .user.ini and [PATH=] even when asked (cases 23, 59)', () => {
    const f = join(tmp, 'cli-scope.ini');
    writeFileSync(f, 'session.name = MAIN\n[PATH=/srv/app]\nsession.name = PATHVAL\n');
    const cfg = loadConfiguration({ sapi: 'cli', iniPath: f, noIni: true });
    const userIni = parseIni('session.gc_maxlifetime = 5\n', { file: '/srv/app/.user.ini', mode: 'user.ini' }).entries;
    const r = effectiveForRequest(cfg, { scriptDir: '/srv/app', userIni }, ['session.name', 'session.gc_maxlifetime']);
    expect(r.values).toEqual({ 'session.name': 'MAIN', 'session.gc_maxlifetime': '1440' });
    expect(r.ignored[0]).toMatchObject({ origin: '.user.ini', reason: expect.stringMatching(/never reads/) });
    const cgi = effectiveForRequest(loadConfiguration({ sapi: 'cgi', iniPath: f, noIni: true }), { scriptDir: '/srv/app', userIni }, [
      'session.name',
      'session.gc_maxlifetime',
    ]);
    expect(cgi.values).toEqual({ 'session.name': 'PATHVAL', 'session.gc_maxlifetime': '5' });
  });
});

describe('${NAME} the configuration and the given environment do not set', () => {
  it('is read as PHP reads it without that variable, with a notice naming it once per file (the PHP process may have it)', () => {
    const text = 'session.save_path = "${SESSION_DIR}/sess"\nsession.name = ${SESSION_DIR}\nk = ${HOME}\nd = ${D:-/x}\n';
    const r = parseIni(text, { file: '/etc/php.ini', env: { HOME: '/root' }, phpVersion: '8.3' });
    expect(r.entries.map((e) => [e.key, e.value])).toEqual([
      ['session.save_path', '/sess'],
      ['session.name', ''],
      ['k', '/root'],
      ['d', '/x'],
    ]);
    expect(r.errors.map((e) => [e.kind, e.line, e.message.split(':')[0]])).toEqual([
      ['notice', 1, '${SESSION_DIR} is set neither earlier in the configuration nor in the environment given'],
    ]);
    // a pool file (php-fpm reads its master's environment)
    const dir = mkdtempSync(join(tmpdir(), 'php-ini-envref-'));
    writeFileSync(join(dir, 'www.conf'), '[www]\nphp_admin_value[session.save_path] = ${SESSION_DIR}/sess\n');
    const fpm = parseFpmConfig({ file: join(dir, 'www.conf'), fs: createRootFs(), env: {} });
    rmSync(dir, { recursive: true, force: true });
    expect(fpm.pools[0]!.phpAdminValues.map((v) => v.value)).toEqual(['/sess']);
    expect(fpm.errors.filter((e) => e.kind === 'notice').map((e) => e.message)).toEqual([
      expect.stringContaining('${SESSION_DIR} is set neither'),
    ]);
  });
});

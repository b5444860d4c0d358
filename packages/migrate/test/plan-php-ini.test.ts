/**
 * gcMaxlifetimeFromIni, plan's choice of TTL against the session.gc_maxlifetime of the PHP
 * configuration given (--php-ini): the default, the refusal of a shorter value, --allow-shorter-ttl,
 * a longer value, values plan cannot take, and nothing read without --php-ini. No PHP is started
 * here: what readSessionIni reads is checked against real php and php-fpm in test/plan-php-ini.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserFacingError } from '@session-migrate/common';
import { describeGcMaxlifetimeFrom, describePhpIniRules, gcMaxlifetimeFromIni, iniConsistency, phpIniRulesFor } from '../src/index.ts';

let dir: string;
const ini = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sm-plan-gc-ini-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gcMaxlifetimeFromIni', () => {
  it('without --php-ini: --gc-maxlifetime, else 1440, and nothing is said', () => {
    const said: string[] = [];
    expect(gcMaxlifetimeFromIni({ onWarning: (w) => said.push(w) })).toEqual({ gcMaxlifetime: 1440, from: { kind: 'default' } });
    expect(gcMaxlifetimeFromIni({ gcMaxlifetime: 60, onWarning: (w) => said.push(w) })).toEqual({
      gcMaxlifetime: 60,
      from: { kind: 'option' },
    });
    expect(said).toEqual([]);
  });

  it("no --gc-maxlifetime: PHP's value, with where it was set; PHP's default when no file sets it", () => {
    const file = ini('a.ini', '; comment\nsession.gc_maxlifetime = 7200\n');
    const said: string[] = [];
    const r = gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, onWarning: (w) => said.push(w) });
    expect(r.gcMaxlifetime).toBe(7200);
    expect(r.from).toEqual({ kind: 'php-ini', phpIni: file, file, line: 2, origin: 'php.ini' });
    expect(said).toEqual([`note: TTL of migrated sessions 7200 s: session.gc_maxlifetime from ${file}:2; --php-ini ${file}`]);
    const none = ini('none.ini', 'display_errors = Off\n');
    said.length = 0;
    const d = gcMaxlifetimeFromIni({ phpIni: { file: none, scanDir: '', phpVersion: '8.2' }, onWarning: (w) => said.push(w) });
    expect(d.gcMaxlifetime).toBe(1440);
    expect(d.from).toEqual({ kind: 'php-ini', phpIni: none, file: null, line: null, origin: 'default' });
    expect(said[0]).toContain("PHP's default, set in no file read");
  });

  it('a shorter --gc-maxlifetime is refused naming both values and the file, unless allowShorterTtl', () => {
    const file = ini('b.ini', 'session.gc_maxlifetime = 7200\n');
    const phpIni = { file, scanDir: '', phpVersion: '8.2' };
    expect(() => gcMaxlifetimeFromIni({ phpIni, gcMaxlifetime: 7199 })).toThrow(
      new UserFacingError(
        `--gc-maxlifetime 7199 is shorter than session.gc_maxlifetime 7200 that PHP runs with (${file}:1; --php-ini ${file}): migrated sessions would expire in Redis up to 1 s before PHP would have removed them, logging their users out early; leave out --gc-maxlifetime to take 7200, or give --allow-shorter-ttl`,
      ),
    );
    const said: string[] = [];
    expect(gcMaxlifetimeFromIni({ phpIni, gcMaxlifetime: 60, allowShorterTtl: true, onWarning: (w) => said.push(w) }).gcMaxlifetime).toBe(
      60,
    );
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^warning: --gc-maxlifetime 60 is shorter .* \(--allow-shorter-ttl\)$/);
  });

  it('an equal value is taken silently, a longer one with a note', () => {
    const file = ini('c.ini', 'session.gc_maxlifetime = 7200\n');
    const said: string[] = [];
    expect(
      gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, gcMaxlifetime: 7200, onWarning: (w) => said.push(w) })
        .gcMaxlifetime,
    ).toBe(7200);
    expect(said).toEqual([]);
    gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, gcMaxlifetime: 9000, onWarning: (w) => said.push(w) });
    expect(said).toEqual([
      `note: --gc-maxlifetime 9000 is longer than session.gc_maxlifetime 7200 (${file}:1; --php-ini ${file}): migrated sessions stay in Redis up to 1800 s longer than PHP would have kept them; nobody is logged out early`,
    ]);
  });

  it('a value plan cannot take as a TTL is one line: a quantity suffix, 0, too large, a bad --gc-maxlifetime first', () => {
    for (const [v, shown] of [
      ['2h', '2h'],
      ['1k', '1k'],
      ['0', '0'],
      ['"  "', '  '],
      ['4294967296', '4294967296'],
    ] as const) {
      const file = ini('d.ini', `session.gc_maxlifetime = ${v}\n`);
      expect(() => gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' } })).toThrow(
        `session.gc_maxlifetime "${shown}" (${file}:1; --php-ini ${file}) is not a whole number of seconds from 1 to 2147483647`,
      );
    }
    const file = ini('e.ini', 'session.gc_maxlifetime = 7200\n');
    expect(() => gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, gcMaxlifetime: 0 })).toThrow(
      '--gc-maxlifetime must be a whole number',
    );
  });

  it('a pool file without a pool, or with several and none named, is one line', () => {
    const file = ini('f.ini', 'session.gc_maxlifetime = 7200\n');
    const empty = ini('empty.conf', '[global]\npid = /run/x.pid\n');
    expect(() => gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: empty } })).toThrow(
      `--fpm-pool ${empty}: defines no pool ([name] section)`,
    );
    const two = ini('two.conf', '[a]\nphp_admin_value[session.gc_maxlifetime] = 10\n[b]\nphp_value[session.gc_maxlifetime] = 99999\n');
    expect(() => gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: two } })).toThrow(
      `--fpm-pool ${two}: defines 2 pools (a, b): name one with --fpm-pool-name`,
    );
    // php_value applies over the php.ini too (the pool's value, whichever way it goes)
    expect(gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: two, fpmPool: 'b' } })).toMatchObject({
      gcMaxlifetime: 99999,
      from: { kind: 'php-ini', phpIni: file, pool: 'b', file: two, line: 4, origin: 'pool php_value' },
    });
    // a --gc-maxlifetime taken (equal or longer) is the option's, even with --php-ini read
    expect(
      gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: two, fpmPool: 'b' }, gcMaxlifetime: 99999 }).from,
    ).toEqual({
      kind: 'option',
    });
    expect(gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: two, fpmPool: 'a' } }).gcMaxlifetime).toBe(10);
  });
});

describe('per-directory values', () => {
  it('a [PATH=] or [HOST=] section setting session.gc_maxlifetime is named in a warning (PHP-CGI/FPM apply it per request)', () => {
    const file = ini(
      'g.ini',
      'session.gc_maxlifetime = 7200\n[PATH=/var/www/admin]\nsession.gc_maxlifetime = 86400\n[HOST=shop.example]\nsession.name = S\n',
    );
    const said: string[] = [];
    expect(gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, onWarning: (w) => said.push(w) }).gcMaxlifetime).toBe(
      7200,
    );
    expect(said).toEqual([
      `warning: [PATH=/var/www/admin] in ${file}:3 sets session.gc_maxlifetime 86400 for the scripts it covers; plan gives every session one TTL: check it is not longer than the TTL taken`,
      `note: TTL of migrated sessions 7200 s: session.gc_maxlifetime from ${file}:1; --php-ini ${file}`,
    ]);
  });
});

describe('iniConsistency', () => {
  it('a save_path through a symbolic link names the same directory as the source given by its target: no warning', () => {
    const real = join(dir, 'sessions-real');
    const link = join(dir, 'sessions-link');
    mkdirSync(real);
    symlinkSync(real, link);
    const said: string[] = [];
    const read = (path: string) =>
      gcMaxlifetimeFromIni({
        phpIni: { file: ini('sp.ini', `session.save_handler = files\nsession.save_path = "${path}"\n`), scanDir: '', phpVersion: '8.2' },
        gcMaxlifetime: 1440,
      }).ini!;
    const { dev, ino } = statSync(real);
    const source = { kind: 'files' as const, dir: real, savePath: real, depth: 0, dev, ino };
    iniConsistency(read(link), 'php', [source], (w) => said.push(w));
    iniConsistency(read(`1;0600;${link}`), 'php', [source], (w) => said.push(w));
    expect(said).toEqual([]);
    // Another directory is still named.
    iniConsistency(read(join(dir, 'elsewhere')), 'php', [source], (w) => said.push(w));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^warning: session.save_path in the PHP configuration is .*elsewhere.*which no files source reads/);
  });

  it('a configuration whose save handler is not files, for a plan of session files: a warning naming the handler and where it is set', () => {
    const real = join(dir, 'sessions-real-2');
    mkdirSync(real);
    const { dev, ino } = statSync(real);
    const source = { kind: 'files' as const, dir: real, savePath: real, depth: 0, dev, ino };
    const file = ini('redis.ini', 'session.save_handler = redis\nsession.save_path = "tcp://127.0.0.1:6379"\n');
    const said: string[] = [];
    iniConsistency(
      gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, gcMaxlifetime: 1440 }).ini!,
      'php',
      [source],
      (w) => said.push(w),
    );
    expect(said).toEqual([
      `warning: session.save_handler is redis in the PHP configuration (${file}:1), not files, but the plan reads session files: is --php-ini the configuration of the PHP that writes these sessions?`,
    ]);
  });
});

describe('${VAR} in the PHP configuration: read from plan environment, PHP reads its own', () => {
  it('session.gc_maxlifetime from ${VAR}: one warning naming the variable, the file:line and the number; a key set earlier is no variable', () => {
    const file = ini('env.ini', 'x.base = 60\nsession.gc_maxlifetime = ${SM_GC}\nsession.serialize_handler = php\n');
    const said: string[] = [];
    const r = gcMaxlifetimeFromIni(
      { phpIni: { file, scanDir: '', phpVersion: '8.2' }, onWarning: (w) => said.push(w) },
      { SM_GC: '7200', SM_OTHER: 'x' },
    );
    expect(r.gcMaxlifetime).toBe(7200);
    expect(r.ini!.values['session.gc_maxlifetime'].envVars).toEqual(['SM_GC']);
    expect(r.ini!.values['session.serialize_handler'].envVars).toBeUndefined();
    expect(said).toEqual([
      `warning: session.gc_maxlifetime 7200 (${file}:2) is expanded from \${SM_GC}, read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
      `note: TTL of migrated sessions 7200 s: session.gc_maxlifetime from ${file}:2; --php-ini ${file}`,
    ]);
    // ${x.base} is the configuration's own key (zend_ini_get_var looks there first): not the environment
    const own = ini('own.ini', 'x.base = 60\nsession.gc_maxlifetime = ${x.base}0\n');
    said.length = 0;
    const o = gcMaxlifetimeFromIni(
      { phpIni: { file: own, scanDir: '', phpVersion: '8.2' }, onWarning: (w) => said.push(w) },
      { 'x.base': '9' },
    );
    expect(o.gcMaxlifetime).toBe(600);
    expect(o.ini!.values['session.gc_maxlifetime'].envVars).toBeUndefined();
    expect(said.filter((w) => w.includes('expanded from'))).toEqual([]);
  });

  it('unset in plan environment: the refusal names the variable', () => {
    const file = ini('unset.ini', 'session.gc_maxlifetime = ${SM_UNSET_GC}\n');
    expect(() => gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' } }, {})).toThrow(
      `session.gc_maxlifetime "" (${file}:1; --php-ini ${file}, expanded from \${SM_UNSET_GC} of plan's environment) is not a whole number`,
    );
  });

  it('a pool line from ${VAR} (php-fpm expands it from its environment); a pool line without one clears it', () => {
    const file = ini('pool-env.ini', 'session.gc_maxlifetime = ${SM_GC}\n');
    const pool = ini('pool-env.conf', '[www]\nphp_admin_value[session.gc_maxlifetime] = ${SM_POOL_GC}\n');
    const r = gcMaxlifetimeFromIni(
      { phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: pool } },
      { SM_GC: '60', SM_POOL_GC: '86400' },
    );
    expect(r.gcMaxlifetime).toBe(86400);
    expect(r.ini!.values['session.gc_maxlifetime']).toMatchObject({ file: pool, line: 2, envVars: ['SM_POOL_GC'] });
    const plain = ini('pool-plain.conf', '[www]\nphp_admin_value[session.gc_maxlifetime] = 3600\n');
    const p = gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2', fpmConf: plain } }, { SM_GC: '60' });
    expect(p.ini!.values['session.gc_maxlifetime'].envVars).toBeUndefined();
  });

  it('serialize_handler, save_handler, save_path from ${VAR}: a warning each, naming the variables, never their values', () => {
    const real = join(dir, 'sessions-env');
    mkdirSync(real);
    const { dev, ino } = statSync(real);
    const source = { kind: 'files' as const, dir: real, savePath: real, depth: 0, dev, ino };
    const file = ini(
      'env-all.ini',
      'session.serialize_handler = ${SM_SER}\nsession.save_handler = ${SM_HANDLER}\nsession.save_path = "${SM_ROOT}/${SM_DIR}"\n',
    );
    const env = { SM_SER: 'php', SM_HANDLER: 'files', SM_ROOT: dir, SM_DIR: 'sessions-env' };
    const said: string[] = [];
    iniConsistency(
      gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, gcMaxlifetime: 1440 }, env).ini!,
      'php',
      [source],
      (w) => said.push(w),
    );
    expect(said).toEqual([
      `warning: session.serialize_handler (${file}:1) is expanded from \${SM_SER}, read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
      `warning: session.save_handler (${file}:2) is expanded from \${SM_HANDLER}, read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
      `warning: session.save_path (${file}:3) is expanded from \${SM_ROOT}, \${SM_DIR}, read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
    ]);
    for (const w of said) expect(w).not.toContain('sessions-env');
  });
});

describe('the PHP version whose ini rules apply (phpIniRulesFor)', () => {
  it('--php-version as major.minor (a release number is cut), refused when it is no 7.0-7.4 or 8.x version (8.99, 7.9: no PHP version, refused, not guessed)', () => {
    expect(phpIniRulesFor('8.3')).toEqual({ phpVersion: '8.3', from: 'option' });
    expect(phpIniRulesFor(' 8.3.4 ')).toEqual({ phpVersion: '8.3', from: 'option' });
    expect(phpIniRulesFor('7.04')).toEqual({ phpVersion: '7.4', from: 'option' });
    for (const bad of ['8', 'eight', '8.x', '9.0', '5.6', '8.3-dev', '', '8.99', '7.9', '8.10'])
      expect(() => phpIniRulesFor(bad)).toThrow(
        new UserFacingError(
          `--php-version ${bad}: not a PHP version whose ini rules plan knows (give 7.0 to 7.4 or 8.x as major.minor, e.g. 8.3)`,
        ),
      );
  });
  it('in words, without brackets of their own (they go inside the parentheses of an error)', () => {
    expect(describePhpIniRules({ phpVersion: '8.3', from: 'option' })).toBe("read by PHP 8.3's ini rules; 8.3 is the --php-version given");
    expect(describePhpIniRules({ phpVersion: '8.2', from: 'php-binary' })).toBe(
      "read by PHP 8.2's ini rules; 8.2 is the version of php on the PATH",
    );
    expect(describePhpIniRules({ phpVersion: '8.2', from: 'assumed' })).toBe(
      "read by PHP 8.2's ini rules; 8.2 is assumed, as there is no --php-version and no php on the PATH: give --php-version if PHP runs another version",
    );
  });
  it('no php to ask: 8.2, assumed', () => {
    expect(phpIniRulesFor(undefined, join(dir, 'no-such-dir', 'no-php-here'))).toEqual({ phpVersion: '8.2', from: 'assumed' });
  });
  it('the version given is the one the files are read by: ${VAR:-default} is 8.3+', () => {
    const file = ini('fallback.ini', 'session.gc_maxlifetime = ${SM_UNSET_GC:-7200}\n');
    const said: string[] = [];
    const r = gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.3' }, onWarning: (w) => said.push(w) }, {});
    expect(r.gcMaxlifetime).toBe(7200);
    expect(r.iniRules).toEqual({ phpVersion: '8.3', from: 'option' });
    expect(() => gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' } }, {})).toThrow(
      `is not a whole number of seconds from 1 to 2147483647; plan cannot take it as a TTL (read by PHP 8.2's ini rules; 8.2 is the --php-version given)`,
    );
  });
});

describe('${ENV} through an earlier key', () => {
  it('the warning names the variable and the key it came through; the TTL record and its words say a variable gave it', () => {
    const file = ini('chain.ini', 'gc_base = ${SM_GC}\nsession.gc_maxlifetime = ${gc_base}0\n');
    const said: string[] = [];
    const r = gcMaxlifetimeFromIni({ phpIni: { file, scanDir: '', phpVersion: '8.2' }, onWarning: (w) => said.push(w) }, { SM_GC: '720' });
    expect(r.gcMaxlifetime).toBe(7200);
    expect(said[0]).toBe(
      `warning: session.gc_maxlifetime 7200 (${file}:2) is expanded from \${SM_GC} through \${gc_base} (${file}:1), read from plan's environment; PHP (php-fpm) expands it from its own environment when it starts, which may give another value: check the value PHP runs with (php -i, or phpinfo() under php-fpm)`,
    );
    expect(r.from).toEqual({
      kind: 'php-ini',
      phpIni: file,
      file,
      line: 2,
      origin: 'php.ini',
      envVars: ['SM_GC'],
      envVarsVia: [{ key: 'gc_base', file, line: 1 }],
    });
    // the plan file's JSON keeps its shape: EnvOrigin's two fields flat in the record, in this order
    expect(Object.keys(r.from)).toEqual(['kind', 'phpIni', 'file', 'line', 'origin', 'envVars', 'envVarsVia']);
    expect(describeGcMaxlifetimeFrom(r.from)).toBe(
      `session.gc_maxlifetime from ${file}:2; --php-ini ${file}; expanded from \${SM_GC} through \${gc_base} (${file}:1) of plan's environment (PHP takes them from its own: check the value PHP runs with)`,
    );
  });
});

/**
 * Directive validation against the real php binary: every session.* directive (and a few core
 * ones) is set to values from the edge cases of PHP's validators (empty, negative, out of range,
 * trailing blanks, hex, suffixes, numeric names, 'user' handler, ...); ini_get() from `php -n -c`
 * must equal iniGetValues(). One php run per value column.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { iniGetValues, knownDirectiveNames, loadConfiguration, parseFilesSavePath } from '../src/index.ts';

const VALUES = [
  '""',
  '0',
  '-1',
  '10',
  '22',
  '256',
  '257',
  '4',
  '6',
  '7',
  'abc',
  '1e3',
  '" 32"',
  '"32 "',
  '0x20',
  '150%',
  '100%',
  '"-5%"',
  'user',
  'files',
  'redis',
  '12345',
  '1.5',
  '"On"',
  '"024"',
  '"+30"',
  '" "',
  '"1 "',
  '"a b"',
  '"9999999999999999999999"',
  '"5k"',
  '"2m"',
];
const KEYS = [
  ...knownDirectiveNames().filter((k) => k.startsWith('session.')),
  'sys_temp_dir',
  'user_ini.filename',
  'user_ini.cache_ttl',
  'max_execution_time',
  'memory_limit',
  'error_reporting',
  'display_errors',
  'open_basedir',
];

// php is required (scripts/setup.sh installs it): a missing php fails here instead of skipping the oracle.
const tmp = mkdtempSync(join(tmpdir(), 'php-ini-validators-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('validators: iniGetValues() vs real ini_get()', () => {
  VALUES.forEach((value, i) => {
    it(`every directive = ${value}`, () => {
      const file = join(tmp, `v${i}.ini`);
      writeFileSync(file, KEYS.map((k) => `${k} = ${value}\n`).join(''));
      const code = `echo json_encode(array_combine(${JSON.stringify(KEYS)}, array_map('ini_get', ${JSON.stringify(KEYS)})));`;
      const p = spawnSync('env', ['-i', 'php', '-n', '-c', file, '-r', code], { encoding: 'utf8' });
      const live = JSON.parse(p.stdout.slice(p.stdout.lastIndexOf('{"'))) as Record<string, string | false>;
      const ours = iniGetValues(loadConfiguration({ iniPath: file, noIni: true }), KEYS);
      expect(ours).toEqual(live);
    });
  });
});

describe('files save_path values PHP fails on, vs real php (session_start twice, as a non-root PHP user would)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'php-ini-savepath-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /**
   * Runs two requests (two php processes) with one session ID under `save_path`; the second must read
   * what the first wrote. The file mode is checked as PHP left it (root would read a 0000 file).
   */
  function twoRequests(savePath: string, sidLength = 32): { ok: boolean; out: string } {
    const code = `session_id(str_repeat('a', ${sidLength})); if (!@session_start()) { echo 'FAIL ', error_get_last()['message'] ?? ''; exit; } $n = ($_SESSION['n'] ?? 0) + 1; $_SESSION['n'] = $n; session_write_close(); echo $n, ' ', decoct(fileperms('${dir}/sess_' . session_id()) & 0777);`;
    const run = () =>
      spawnSync('php', ['-n', '-d', `session.save_path="${savePath}"`, '-d', `session.sid_length=${sidLength}`, '-r', code], {
        encoding: 'utf8',
      }).stdout;
    rmSync(join(dir, 'sess_' + 'a'.repeat(sidLength)), { force: true });
    const first = run();
    const second = run();
    // the second request sees the first one's value, and the file can be opened read-write by its owner
    const m = /^2 (\d+)$/.exec(second);
    return { ok: m !== null && (parseInt(m[1]!, 8) & 0o600) === 0o600, out: `${first} | ${second}` };
  }

  it.each([
    [`99999999999999999999;${dir}`, 32, false],
    [`40;${dir}`, 32, false],
    [`32;${dir}`, 32, false],
    [`0;${dir}`, 32, true],
    [`0;0600;${dir}`, 32, true],
    [`0;0;${dir}`, 32, false],
    [`0;0400;${dir}`, 32, false],
    [`0;800;${dir}`, 32, false],
    [`0;0640;${dir}`, 40, true],
  ])('%s (sid_length %d): works = %s, and parseFilesSavePath says so', (savePath, sidLength, works) => {
    const php = twoRequests(savePath, sidLength);
    // as root, PHP opens a 0000 file anyway: the mode check above stands for the PHP user
    expect(php.ok, php.out).toBe(works);
    const findings = parseFilesSavePath(savePath, sidLength).findings.filter((f) => f.severity !== 'info');
    expect(findings.length > 0, JSON.stringify(findings)).toBe(!works);
  });
});

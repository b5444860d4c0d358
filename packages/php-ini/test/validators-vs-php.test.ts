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
import { iniGetValues, knownDirectiveNames, loadConfiguration } from '../src/index.ts';

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

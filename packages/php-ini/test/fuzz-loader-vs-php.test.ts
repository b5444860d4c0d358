/**
 * Differential fuzzing of file loading against the real php CLI: a random main file (given as a
 * file or as a directory holding php-cli.ini and/or php.ini), random scan dirs (several, with '.ini'
 * and decoy names, syntax errors, [PATH=] left open), PHP_INI_SCAN_DIR forms ('' / list / empty
 * elements are avoided: they name the machine's compiled dir), -n, -d options, ${key} across files.
 * php_ini_loaded_file(), php_ini_scanned_files() and get_cfg_var() must match.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfiguration } from '../src/index.ts';

const KEYS = ['k1', 'k2', 'k3', 'session.name', 'max_execution_time', 'html_errors', 'display_errors'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// php is required (scripts/setup.sh installs it): a missing php fails here instead of skipping the oracle.
const tmp = mkdtempSync(join(tmpdir(), 'php-ini-loader-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('fuzz: loadConfiguration vs real php CLI file loading', () => {
  const r = rng(Number(process.env.FUZZ_SEED ?? 777));
  const N = Number(process.env.FUZZ_N ?? 60);
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  const body = (tag: string): string => {
    let out = '';
    const n = 1 + Math.floor(r() * 3);
    for (let i = 0; i < n; i++) {
      const k = pick(KEYS);
      out += pick([
        `${k} = ${tag}\n`,
        `${k} = \${k1}${tag}\n`,
        `${k} = "\${k2}"\n`,
        `${k} = ${tag} (broken\n`,
        `[PATH=/p]\n`,
        `${k} = On\n`,
        `max_execution_time = 7\n`,
      ]);
    }
    return out;
  };
  for (let i = 0; i < N; i++) {
    const root = join(tmp, `l${i}`);
    const files: Array<[string, string]> = [];
    const mainKind = pick(['file', 'dir-both', 'dir-cli', 'dir-ini', 'missing']);
    if (mainKind === 'file') files.push(['main/custom.ini', body('MAIN')]);
    if (mainKind === 'dir-both' || mainKind === 'dir-cli') files.push(['main/php-cli.ini', body('CLI')]);
    if (mainKind === 'dir-both' || mainKind === 'dir-ini') files.push(['main/php.ini', body('INI')]);
    const dirs = ['s1', 's2', 's3'].slice(0, 1 + Math.floor(r() * 3));
    for (const d of dirs) {
      for (const name of ['10-a.ini', '9-b.ini', 'B.ini', '_c.ini', 'x.INI', 'y.ini.bak', 'z.conf'])
        if (r() < 0.35) files.push([`${d}/${name}`, body(name.replace(/\W/g, ''))]);
    }
    const scanDir = pick([null, '', dirs.map((d) => join(root, d)).join(':'), join(root, dirs[0]!), `${join(root, dirs[0]!)}/`]);
    const noIni = r() < 0.2;
    const defines = r() < 0.4 ? [pick(['k3=FROM_D', 'k1', 'html_errors=On', 'max_execution_time=9', 'session.name=/x;y'])] : [];
    it(`#${i} ${mainKind} scan=${scanDir === null ? 'unset' : JSON.stringify(scanDir.replace(root, ''))}${noIni ? ' -n' : ''} ${defines.join(' ')}`, () => {
      for (const [f, text] of files) {
        mkdirSync(join(root, f, '..'), { recursive: true });
        writeFileSync(join(root, f), text);
      }
      for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
      const iniPath =
        mainKind === 'file' ? join(root, 'main/custom.ini') : mainKind === 'missing' ? join(root, 'nope.ini') : `${join(root, 'main')}`;
      const envArgs = ['PATH=/usr/bin:/bin', ...(scanDir !== null ? [`PHP_INI_SCAN_DIR=${scanDir}`] : [])];
      const args = [...(noIni ? ['-n'] : []), '-c', iniPath, ...defines.flatMap((d) => ['-d', d])];
      const code = `echo "\\n@@", json_encode([php_ini_loaded_file(), php_ini_scanned_files(), array_map('get_cfg_var', ${JSON.stringify(KEYS)})]);`;
      // scanDir null: PHP would read the machine's compiled conf.d; keep the comparison on our dirs
      const p = spawnSync('env', ['-i', ...envArgs, 'php', ...args, '-r', code], { encoding: 'utf8' });
      const [loaded, scanned, values] = JSON.parse(p.stdout.slice(p.stdout.lastIndexOf('\n@@') + 3)) as [
        string | false,
        string | false,
        Array<string | false>,
      ];
      const cfg = loadConfiguration({ iniPath, noIni, scanDir, defines, env: { PATH: '/usr/bin:/bin' } });
      const liveScanned =
        scanned === false
          ? []
          : scanned
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean);
      expect(cfg.loadedFile).toBe(loaded === false ? null : loaded);
      if (scanDir !== null) {
        expect(cfg.scannedFiles).toEqual(liveScanned);
        expect(KEYS.map((k) => cfg.settings.get(k)?.value ?? false)).toEqual(values);
      } else {
        // the compiled scan dir is this machine's /etc/php/8.2/cli/conf.d: only compare what we own
        expect(cfg.scannedFiles.every((f) => liveScanned.includes(f))).toBe(true);
      }
    });
  }
});

/**
 * Differential fuzzing of the per-request layers against real php-cgi: random php.ini files with
 * [HOST=] and [PATH=] sections at several depths and random .user.ini files in the docroot and
 * below, over directives of every changeability (PHP_INI_ALL session.*, PERDIR upload_progress,
 * SYSTEM sys_temp_dir / user_ini.*), with values the validators reject now and then. ini_get() seen
 * by a script run through php-cgi must equal effectiveForCgiRequest().
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootFs, effectiveForCgiRequest, loadConfiguration } from '../src/index.ts';

const KEYS = [
  'session.save_handler',
  'session.serialize_handler',
  'display_errors',
  'session.name',
  'session.gc_maxlifetime',
  'session.cookie_secure',
  'session.sid_length',
  'session.upload_progress.enabled',
  'sys_temp_dir',
  'user_ini.filename',
  'session.cookie_path',
];
const VALUES: Record<string, string[]> = {
  'session.name': ['A', 'B', '123', '""', 'C'],
  'session.gc_maxlifetime': ['10', '20', '30', '24m'],
  'session.cookie_secure': ['On', 'Off', '"yes"', '0'],
  'session.sid_length': ['40', '10', '64'],
  'session.upload_progress.enabled': ['On', 'Off'],
  sys_temp_dir: ['/tmp/a', '/tmp/b'],
  'user_ini.filename': ['.user.ini', '.alt.ini', '""'],
  'session.cookie_path': ['/p1', '/p2'],
  'session.save_handler': ['files', 'redis', 'user', 'files'],
  'session.serialize_handler': ['php', 'igbinary', 'php_serialize'],
  display_errors: ['On', 'Off', 'stderr'],
};
const DIRS = ['', '/sub', '/sub/deep', '/su', '/other'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// php-cgi is required (scripts/setup.sh installs it): a missing php-cgi fails here instead of skipping the oracle.
const tmp = mkdtempSync(join(tmpdir(), 'php-ini-cgi-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('fuzz: CGI layers vs real php-cgi', () => {
  const r = rng(Number(process.env.FUZZ_SEED ?? 4242));
  const N = Number(process.env.FUZZ_N ?? 60);
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  const assignments = (n: number): string => {
    let out = '';
    for (let i = 0; i < n; i++) {
      const k = pick(KEYS);
      out += `${k} = ${pick(VALUES[k]!)}\n`;
    }
    return out;
  };
  for (let i = 0; i < N; i++) {
    const root = join(tmp, `c${i}`);
    const docroot = join(root, 'docroot');
    let ini = assignments(1 + Math.floor(r() * 4));
    const sections = Math.floor(r() * 4);
    for (let s = 0; s < sections; s++) {
      ini +=
        r() < 0.3
          ? `[HOST=${pick(['www.example.com', 'WWW.Example.com', 'other.example'])}]\n`
          : `[PATH=${docroot}${pick(DIRS)}${pick(['', '/'])}]\n`;
      ini += assignments(1 + Math.floor(r() * 3));
    }
    const userInis: Array<[string, string, string]> = [];
    for (const d of DIRS.slice(0, 3))
      if (r() < 0.5) userInis.push([d, pick(['.user.ini', '.user.ini', '.alt.ini']), assignments(1 + Math.floor(r() * 3))]);
    const scriptDir = pick(['', '/sub', '/sub/deep']);
    it(`#${i}`, () => {
      mkdirSync(join(docroot, 'sub/deep'), { recursive: true });
      mkdirSync(join(docroot, 'su'), { recursive: true });
      writeFileSync(join(root, 'php.ini'), ini);
      for (const [d, name, text] of userInis) writeFileSync(join(docroot + d, name), text);
      const script = join(docroot + scriptDir, 'index.php');
      writeFileSync(script, `<?php echo "\\n@@", json_encode(array_map('ini_get', ${JSON.stringify(KEYS)})), "\\n";`);
      const env = {
        REDIRECT_STATUS: '200',
        REQUEST_METHOD: 'GET',
        SCRIPT_FILENAME: script,
        DOCUMENT_ROOT: docroot,
        SERVER_NAME: 'www.example.com',
        PATH: '/usr/bin:/bin',
      };
      const p = spawnSync(
        'env',
        ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'php-cgi', '-n', '-c', join(root, 'php.ini')],
        { encoding: 'utf8' },
      );
      const m = /\n@@(.*)\n/.exec(p.stdout);
      const describe = `php.ini:\n${ini}\nuser.ini: ${JSON.stringify(userInis)}\nscript dir: ${scriptDir || '/'}`;
      const cfg0 = loadConfiguration({ sapi: 'cgi', iniPath: join(root, 'php.ini'), noIni: true });
      const ours0 = effectiveForCgiRequest(
        cfg0,
        { fs: createRootFs(), scriptFilename: script, documentRoot: docroot, serverName: 'www.example.com' },
        KEYS,
      );
      const fatal = ours0.fatal;
      if (!m) {
        // the request died during startup (the message shows only with display_errors on)
        expect(fatal, describe + '\n' + p.stdout).toBeDefined();
        const shown = /Fatal error<\/b>:\s+(.*?) in <b>/.exec(p.stdout)?.[1]?.replace(/&amp;quot;/g, '"');
        if (shown) expect(fatal!.message, describe).toBe(shown);
        return;
      }
      expect(fatal, describe).toBeUndefined();
      const live = JSON.parse(m![1]!) as Array<string | false>;
      const cfg = loadConfiguration({ sapi: 'cgi', iniPath: join(root, 'php.ini'), noIni: true });
      const ours = effectiveForCgiRequest(
        cfg,
        { fs: createRootFs(), scriptFilename: script, documentRoot: docroot, serverName: 'www.example.com' },
        KEYS,
      );
      expect(Object.fromEntries(KEYS.map((k) => [k, ours.values[k]])), describe).toEqual(
        Object.fromEntries(KEYS.map((k, j) => [k, live[j]])),
      );
    });
  }
});

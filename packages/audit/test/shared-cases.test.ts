/**
 * The known faults the audit must get right, from their own input files (test/fixtures/cases):
 * BUG-13 (booleans: raw and effective), BUG-14 (php.ini < pool php_value < .user.ini, php_admin_value
 * locks), BUG-17 (phpredis save_path forms and redaction), and the real php-fpm run in
 * test/fixtures/reference/fpm-check (first php_value wins, php_flag normalisation, admin beats .user.ini).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR } from '../../../test/support/fixtures.ts';
import { RootFs, auditHost, auditIniFile, defaultEngine, phpBool, renderJson, renderTable, loadPhpParser } from '@session-migrate/audit';

// Audits that read application code (--app, document roots) need codemod php's parser loaded.
await loadPhpParser();

const work = mkdtempSync(join(tmpdir(), 'audit-shared-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const engine = defaultEngine();

describe('BUG-13: booleans', () => {
  const exp = JSON.parse(readFileSync(join(FIXTURES_DIR, 'cases/BUG-13/expected.json'), 'utf8')).expected_toolkit;
  it('booleans.ini: raw values and what PHP makes of them', () => {
    const r = auditIniFile({ fs: new RootFs('/'), engine, iniFile: join(FIXTURES_DIR, 'cases/BUG-13/booleans.ini'), env: {} });
    const cfg = r.configs[0];
    for (const [k, want] of Object.entries(exp['booleans.ini'] as Record<string, { raw: string; effective: boolean | number }>)) {
      expect(cfg?.values[k]?.value, k).toBe(want.raw);
      if (typeof want.effective === 'boolean') expect(phpBool(cfg?.values[k]?.value), k).toBe(want.effective);
    }
    const ids = r.findings.map((f) => f.id);
    expect(ids).not.toContain('strict-mode-off');
    expect(ids).toContain('cookie-not-secure');
    expect(ids).not.toContain('cookie-not-httponly');
  });
  for (const v of exp.cookie_httponly_variants as Array<{ ini: string; raw: string; effective: boolean }>) {
    it(`session.cookie_httponly = ${v.ini}`, () => {
      const f = join(work, `httponly-${Buffer.from(v.ini).toString('hex')}.ini`);
      writeFileSync(f, `session.cookie_httponly = ${v.ini}\n`);
      const r = auditIniFile({ fs: new RootFs('/'), engine, iniFile: f, env: {} });
      expect(r.configs[0]?.values['session.cookie_httponly']?.value).toBe(v.raw);
      expect(phpBool(v.raw)).toBe(v.effective);
      expect(r.findings.some((x) => x.id === 'cookie-not-httponly')).toBe(!v.effective);
    });
  }
});

describe('BUG-14: php.ini < pool php_value < .user.ini; php_admin_value locks', () => {
  it('the four effective results confirmed on php-fpm', () => {
    const c = join(FIXTURES_DIR, 'cases/BUG-14');
    const root = join(work, 'bug14');
    mkdirSync(join(root, 'etc/php/8.2/fpm/pool.d'), { recursive: true });
    cpSync(join(c, 'php.ini'), join(root, 'etc/php/8.2/fpm/php.ini'));
    writeFileSync(join(root, 'etc/php/8.2/fpm/pool.d/pool.conf'), readFileSync(join(c, 'pool.conf'), 'utf8').replace(/@RUN@/g, '/run/php'));
    cpSync(join(c, 'docroot_plain'), join(root, 'srv/docroot_plain'), { recursive: true });
    cpSync(join(c, 'docroot_userini'), join(root, 'srv/docroot_userini'), { recursive: true });
    const r = auditHost({ fs: new RootFs(root), engine, host: 'h', env: {}, docroots: ['/srv/docroot_plain', '/srv/docroot_userini'] });
    const get = (id: string, k: string) => r.configs.find((x) => x.id === id)?.values[k];
    const exp = JSON.parse(readFileSync(join(c, 'expected.json'), 'utf8')).php_fpm_8_2_observed;
    expect(get('h/debian-8.2/fpm:admin', 'session.save_path')?.value).toBe(exp['admin/plain'][0].seen);
    expect(get('h/debian-8.2/fpm:admin', 'session.gc_maxlifetime')?.value).toBe(exp['admin/plain'][0].gc_maxlifetime);
    expect(get('h/debian-8.2/fpm:admin', 'session.save_path')?.locked).toBe(true);
    expect(get('h/debian-8.2/fpm:plain', 'session.save_path')?.value).toBe(exp['admin/plain'][1].seen);
    expect(get('h/debian-8.2/fpm:plain', 'session.gc_maxlifetime')?.value).toBe(exp['admin/plain'][1].gc_maxlifetime);
    expect(get('h/debian-8.2/fpm:plain', 'session.save_path')?.locked).toBeUndefined();
    expect(get('h/debian-8.2/fpm:admin@/srv/docroot_userini', 'session.save_path')?.value).toBe(exp['with .user.ini'][0].seen);
    expect(get('h/debian-8.2/fpm:admin@/srv/docroot_userini', 'session.gc_maxlifetime')?.value).toBe(
      exp['with .user.ini'][0].gc_maxlifetime,
    );
    expect(get('h/debian-8.2/fpm:plain@/srv/docroot_userini', 'session.save_path')?.value).toBe(exp['with .user.ini'][1].seen);
    expect(get('h/debian-8.2/fpm:plain@/srv/docroot_userini', 'session.gc_maxlifetime')?.value).toBe(
      exp['with .user.ini'][1].gc_maxlifetime,
    );
    const locked = r.findings.filter((f) => f.id === 'codemod-target-locked');
    expect(locked.map((f) => f.config)).toEqual(['h/debian-8.2/fpm:admin']);
    expect(locked[0]?.file).toBe('/etc/php/8.2/fpm/pool.d/pool.conf');
    expect(get('h/debian-8.2/fpm:admin', 'session.save_path')?.origin).toEqual({
      file: '/etc/php/8.2/fpm/pool.d/pool.conf',
      line: 6,
      layer: 'pool-admin',
    });
  });
});

describe('reference/fpm-check: the real php-fpm run, as fixture data', () => {
  it('request 1 values: first php_value wins, php_flag -> "1"/"0", php_value off -> "", admin beats .user.ini, ${VAR} from the environment', () => {
    const c = join(FIXTURES_DIR, 'reference/fpm-check');
    const root = join(work, 'fpmcheck');
    mkdirSync(join(root, 'etc/php/8.2/fpm/pool.d'), { recursive: true });
    cpSync(join(c, 'php.ini'), join(root, 'etc/php/8.2/fpm/php.ini'));
    writeFileSync(
      join(root, 'etc/php/8.2/fpm/pool.d/www.conf'),
      readFileSync(join(c, 'pool.conf.in'), 'utf8').replace(/@RUN@/g, '/run/php'),
    );
    cpSync(join(c, 'www'), join(root, 'srv/www'), { recursive: true });
    const r = auditHost({ fs: new RootFs(root), engine, host: 'h', env: { FPMTEST_ENV: 'fromenv' }, docroots: ['/srv/www'] });
    const lines = readFileSync(join(c, 'expected.txt'), 'utf8').split('\n');
    const want = JSON.parse(lines[1] as string) as Record<string, string>;
    const cfg = r.configs.find((x) => x.id === 'h/debian-8.2/fpm:www@/srv/www');
    expect(cfg).toBeDefined();
    for (const [k, v] of Object.entries(want)) if (k.startsWith('session.')) expect(cfg?.values[k]?.value, k).toBe(v);
    expect(cfg?.values['session.name']?.locked).toBe(true);
  });
});

describe('BUG-17: phpredis save_path forms', () => {
  const exp = JSON.parse(readFileSync(join(FIXTURES_DIR, 'cases/BUG-17/expected.json'), 'utf8')).expected_toolkit.cases as Array<{
    save_path: string;
    finding?: { id: string };
  }>;
  for (const c of exp) {
    it(c.save_path.replace(/auth=[^&]*/, 'auth=…'), () => {
      const f = join(work, `redis-${Buffer.from(c.save_path).toString('hex').slice(0, 40)}.ini`);
      writeFileSync(f, `session.save_handler = redis\nsession.save_path = "${c.save_path}"\n`, { mode: 0o600 });
      const r = auditIniFile({ fs: new RootFs('/'), engine, iniFile: f, env: {} });
      const malformed = r.findings.filter((x) => x.id === 'redis-save-path-malformed');
      expect(malformed.length > 0, JSON.stringify(malformed)).toBe(c.finding !== undefined);
      const out = renderTable([r]) + renderJson([r]);
      const auth = /auth=([^&]*)/.exec(c.save_path)?.[1] ?? '';
      expect(out).not.toContain(`auth=${auth}`);
      expect(out).toContain('auth=<redacted len=');
    });
  }
});

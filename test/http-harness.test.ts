/**
 * The php-fpm + nginx harness itself (test/support/http.ts): a PHP script that starts a session,
 * served through nginx by php-fpm from a temp dir; ini overrides and env[] lines reach the workers and
 * nothing else does; reload (SIGUSR2) applies new ini files and keeps the master's PID and the
 * sessions; PHP's error log is readable; stop() ends both by PID and removes their directories.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CookieClient, findProgram, makeDocroot, startPhpFpm, startPhpStack, type PhpStack } from './support/http.ts';

const REPO = join(import.meta.dirname, '..');

const APP = `<?php
if (@session_start() === false) { http_response_code(500); echo "session_start failed"; exit; }
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
if (isset($_GET['log'])) { error_log('harness-marker ' . $_GET['log']); }
header('Content-Type: application/json');
echo json_encode([
    'n' => $_SESSION['n'],
    'sapi' => PHP_SAPI,
    'handler' => ini_get('session.save_handler'),
    'gc' => ini_get('session.gc_maxlifetime'),
    'prepend' => ini_get('auto_prepend_file'),
    'env' => getenv('SESSION_MIGRATE_HARNESS'),
    'leak' => getenv('SESSION_MIGRATE_HARNESS_LEAK'),
    'php_ini' => php_ini_loaded_file(),
    'scanned' => php_ini_scanned_files(),
    'opcache' => function_exists('opcache_get_status') && is_array(@opcache_get_status(false)),
    'redis' => extension_loaded('redis'),
    'sodium' => extension_loaded('sodium'),
    'pid' => getmypid(),
]);
`;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('php-fpm + nginx harness', () => {
  let stack: PhpStack;
  let docroot: string;
  let sessions: string;
  let prepend: string;

  beforeAll(async () => {
    process.env.SESSION_MIGRATE_HARNESS_LEAK = 'must-not-reach-php';
    docroot = makeDocroot({ 'index.php': APP });
    sessions = mkdtempSync(join(tmpdir(), 'sm-harness-sessions-'));
    prepend = join(sessions, '..', `prepend-${process.pid}.php`);
    writeFileSync(prepend, '<?php\n');
    stack = await startPhpStack({
      docroot,
      fpm: { workers: 2, ini: { 'session.save_path': sessions, 'session.gc_maxlifetime': 1234 }, env: { SESSION_MIGRATE_HARNESS: 'one' } },
    });
  });
  afterAll(async () => {
    delete process.env.SESSION_MIGRATE_HARNESS_LEAK;
    await stack?.stop();
    for (const d of [docroot, sessions]) if (d) rmSync(d, { recursive: true, force: true });
    if (prepend) rmSync(prepend, { force: true });
  });

  it('serves a session through nginx and php-fpm with only the given ini and env', async () => {
    const c = new CookieClient();
    const r1 = await c.get(stack.base, '/');
    expect(r1.status, r1.body).toBe(200);
    const v1 = JSON.parse(r1.body) as Record<string, unknown>;
    expect(v1).toMatchObject({
      n: 1,
      sapi: 'fpm-fcgi',
      handler: 'files',
      gc: '1234',
      env: 'one',
      leak: false,
      redis: true,
      sodium: true,
      opcache: true,
    });
    expect(v1.php_ini).toBe(join(stack.fpm.dir, 'php.ini')); // never /etc/php
    expect(v1.scanned).toBe(false); // nothing in the instance's conf.d yet
    expect(c.cookies.get('PHPSESSID')).toMatch(/^[a-z0-9]{26,}$/);
    const r2 = await c.get(stack.base, '/some/route?x=1'); // front controller
    expect(JSON.parse(r2.body)).toMatchObject({ n: 2 });
    expect(existsSync(join(sessions, `sess_${c.cookies.get('PHPSESSID')}`))).toBe(true);
  });

  it('reload applies new ini files and env[] lines, keeps the master PID and the sessions', async () => {
    const c = new CookieClient();
    const before = JSON.parse((await c.get(stack.base, '/')).body) as { n: number; pid: number };
    const frag = join(stack.fpm.dir, '..', `frag-${process.pid}.ini`);
    writeFileSync(frag, `auto_prepend_file = "${prepend}"\nsession.gc_maxlifetime = 999\n`);
    const masterPid = stack.fpm.pid;
    await stack.fpm.reload({ iniFiles: [frag], env: { SESSION_MIGRATE_HARNESS: 'two' } });
    rmSync(frag);
    expect(stack.fpm.pid).toBe(masterPid);
    expect(alive(masterPid)).toBe(true);
    const after = JSON.parse((await c.get(stack.base, '/')).body) as Record<string, unknown>;
    expect(after).toMatchObject({ n: before.n + 1, gc: '999', prepend, env: 'two' });
    expect(String(after.scanned)).toContain(`frag-${process.pid}.ini`);
    expect(after.pid).not.toBe(before.pid); // new workers
  });

  it('a configuration php-fpm refuses is reported and nothing is reloaded', async () => {
    const pidBefore = stack.fpm.pid;
    await expect(stack.fpm.reload({ env: { 'BAD NAME': 'x' } })).rejects.toThrow(/env name not allowed/);
    const c = new CookieClient();
    expect((await c.get(stack.base, '/')).status).toBe(200);
    expect(stack.fpm.pid).toBe(pidBefore);
  });

  it("PHP's error log is readable and can be cleared", async () => {
    stack.fpm.clearErrorLog();
    const c = new CookieClient();
    await c.get(stack.base, '/?log=abc');
    expect(stack.fpm.readErrorLog()).toContain('harness-marker abc');
    stack.fpm.clearErrorLog();
    expect(stack.fpm.readErrorLog()).toBe('');
  });

  it('stop() ends both by PID and removes their directories', async () => {
    const { fpm, nginx } = stack;
    await stack.stop();
    expect(alive(fpm.pid)).toBe(false);
    expect(alive(nginx.pid)).toBe(false);
    expect(existsSync(fpm.dir)).toBe(false);
    expect(existsSync(nginx.dir)).toBe(false);
    stack = undefined as unknown as PhpStack;
  });
});

describe('harness options and users', () => {
  it("systemIni: the machine's php-fpm php.ini and conf.d, plus the instance's settings", async () => {
    const docroot = makeDocroot({ 'index.php': APP });
    const sessions = mkdtempSync(join(tmpdir(), 'sm-harness-sessions-'));
    const stack = await startPhpStack({
      docroot,
      fpm: { workers: 1, systemIni: true, ini: { 'session.save_path': sessions, 'session.gc_maxlifetime': 4321 } },
    });
    try {
      const r = JSON.parse((await new CookieClient().get(stack.base, '/')).body) as Record<string, unknown>;
      expect(r).toMatchObject({ n: 1, gc: '4321', redis: true });
      expect(r.php_ini).not.toBe(join(stack.fpm.dir, 'php.ini'));
      expect(String(r.scanned)).toContain(join(stack.fpm.dir, 'conf.d'));
    } finally {
      await stack.stop();
      rmSync(docroot, { recursive: true, force: true });
      rmSync(sessions, { recursive: true, force: true });
    }
  });

  it('a master killed outright leaves no worker behind once stop() ran', async () => {
    const fpm = await startPhpFpm({ workers: 2 });
    // Live (not zombie) processes of the master's process group, from /proc/<pid>/stat (proc(5)).
    const groupAlive = (): boolean =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .some((d) => {
          try {
            const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            return Number(f[2]) === fpm.pid && f[0] !== 'Z';
          } catch {
            return false;
          }
        });
    expect(groupAlive()).toBe(true);
    process.kill(fpm.pid, 'SIGKILL'); // the workers outlive their master
    await new Promise((r) => setTimeout(r, 100));
    expect(groupAlive()).toBe(true);
    await fpm.stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(groupAlive()).toBe(false);
    expect(existsSync(fpm.dir)).toBe(false);
  });

  // CI runs as root, developers do not: both must work. As root, run the stand-alone smoke script as
  // `nobody` too (as another user it runs as that user only).
  const runs: Array<{ name: string; asNobody: boolean }> = [{ name: 'this user', asNobody: false }];
  const root = process.getuid?.() === 0;
  let setpriv: string | undefined;
  try {
    setpriv = findProgram(['setpriv'], 'util-linux');
  } catch {
    setpriv = undefined;
  }
  if (root && setpriv !== undefined) runs.push({ name: 'nobody (uid 65534)', asNobody: true });

  it.each(runs)('serves a session when run as $name', ({ asNobody }) => {
    const base = tmpdir();
    const mode = statSync(base).mode & 0o777;
    const home = mkdtempSync(join(base, 'sm-smoke-user-'));
    try {
      if (asNobody) {
        chmodSync(base, mode | 0o001); // nobody may traverse (not list) the run's temp dir
        chownSync(home, 65534, 65534);
      }
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: home };
      const tsx = join(REPO, 'node_modules/.bin/tsx');
      const script = join(REPO, 'test/support/http-smoke.ts');
      const r = asNobody
        ? spawnSync(setpriv!, ['--reuid=65534', '--regid=65534', '--clear-groups', tsx, script], {
            env,
            encoding: 'utf8',
            timeout: 60_000,
            cwd: REPO,
          })
        : spawnSync(tsx, [script], { env, encoding: 'utf8', timeout: 60_000, cwd: REPO });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      expect(out).toEqual({
        uid: asNobody ? 65534 : process.getuid?.(),
        sapi: 'fpm-fcgi',
        counts: [1, 2],
        sameSession: true,
        processesGone: true,
        dirsGone: true,
      });
    } finally {
      if (asNobody) chmodSync(base, mode);
      rmSync(home, { recursive: true, force: true });
    }
  });
});

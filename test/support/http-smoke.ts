/**
 * A stand-alone smoke run of the php-fpm + nginx harness, for running it as another user
 * (test/http-harness.test.ts runs it as `nobody` when the suite runs as root):
 *
 *   npx tsx test/support/http-smoke.ts
 *
 * Starts php-fpm and nginx from temp dirs, sends two requests of one session, stops both and prints
 * one JSON line: {"uid", "sapi", "counts", "sameSession", "processesGone", "dirsGone"}.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CookieClient, makeDocroot, startPhpStack } from './http.ts';

const APP = `<?php
if (@session_start() === false) { http_response_code(500); echo "session_start failed"; exit; }
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo json_encode(['n' => $_SESSION['n'], 'sapi' => PHP_SAPI, 'uid' => posix_getuid()]);
`;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const docroot = makeDocroot({ 'index.php': APP });
const sessions = mkdtempSync(join(tmpdir(), 'sm-smoke-sessions-'));
try {
  const stack = await startPhpStack({
    docroot,
    fpm: { workers: 1, extensions: ['igbinary', 'redis', 'posix'], ini: { 'session.save_path': sessions } },
  });
  const c = new CookieClient();
  const a = JSON.parse((await c.get(stack.base, '/')).body) as { n: number; sapi: string; uid: number };
  const id = c.cookies.get('PHPSESSID');
  const b = JSON.parse((await c.get(stack.base, '/')).body) as { n: number };
  await stack.stop();
  console.log(
    JSON.stringify({
      uid: a.uid,
      sapi: a.sapi,
      counts: [a.n, b.n],
      sameSession: id !== undefined && c.cookies.get('PHPSESSID') === id,
      processesGone: !alive(stack.fpm.pid) && !alive(stack.nginx.pid),
      dirsGone: !existsSync(stack.fpm.dir) && !existsSync(stack.nginx.dir),
    }),
  );
} finally {
  rmSync(docroot, { recursive: true, force: true });
  rmSync(sessions, { recursive: true, force: true });
}

/**
 * The generated handler with persistent connections when Redis stalls (SIGSTOP: a fork, a slow
 * command, a failover) longer than its read timeout. One PHP process (`php -S`) serves two users in
 * turn, so the second request takes the persistent connection the first one used.
 *
 * A read timeout leaves phpredis's socket open with the command's reply still to come
 * (redis_read_reply_type() in phpredis's library.c throws without closing it). Before the fix the
 * handler gave up without closing that connection, so it went back to the persistent pool and the
 * next request's LOCK+GET received the late reply of the stalled one: another user's envelope,
 * which did not open under this key, so an empty session replaced that user's session in Redis
 * (found by an adversarial review; data loss). Now the stalled request fails (HTTP 500) and the next
 * one, on a new connection, gets its own session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, planArgs } from './support/migrate-cli.ts';
import { CookieClient, startPhpServer, startRedis, type PhpServer, type RedisServer } from './support/servers.ts';
import { createSandbox, removeSandbox, type SandboxLayout } from '../packages/cli/src/sandbox.ts';

let box: SandboxLayout;
let redis: RedisServer;
let php: PhpServer | undefined;

beforeAll(async () => {
  box = createSandbox({ gcMaxlifetime: 1440 });
  redis = await startRedis();
  expect(cli(['keys', 'generate', '--out', box.keyFile]).status).toBe(0);
  const p = cli(
    planArgs({ dir: box.sessions, target: redis.url, keyFile: box.keyFile, planFile: box.planFile, artifactsDir: box.artifactsDir }),
  );
  expect(p.status, p.stderr).toBe(0);
  const a = cli(['apply', '--plan', box.planFile]);
  expect(a.status, a.stderr + a.stdout).toBe(0);
  expect(readFileSync(join(box.artifactsDir, 'session-migrate-bootstrap.php'), 'utf8')).toMatch(/'persistent' => true/);
});
afterAll(async () => {
  try {
    process.kill(redis.pid, 'SIGCONT');
  } catch {
    // already stopped
  }
  await php?.stop();
  await redis?.stop();
  if (box) removeSandbox(box);
});

interface View {
  session: Record<string, unknown>;
}

describe('persistent connections after a Redis stall longer than the read timeout', () => {
  it('the stalled request fails; the next request on the same PHP process keeps its own session', async () => {
    php = await startPhpServer({
      docroot: box.docroot,
      phpIni: box.phpIni,
      scanDir: box.artifactsDir,
      env: { SESSION_MIGRATE_KEY_FILE: box.keyFile },
    });
    const alice = new CookieClient();
    const bob = new CookieClient();
    expect((await alice.get(php.base, '/?action=login&user=alice')).status).toBe(200);
    expect((await bob.get(php.base, '/?action=login&user=bob')).status).toBe(200);

    process.kill(redis.pid, 'SIGSTOP');
    let stalled: { status: number };
    try {
      stalled = await alice.get(php.base, '/');
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    expect(stalled.status).toBe(500);
    // The stalled request's commands run now that Redis is back; their replies go nowhere.
    await new Promise((r) => setTimeout(r, 300));

    const after = await bob.get(php.base, '/');
    expect(after.status, after.body).toBe(200);
    // Before the fix: Bob's session came back empty (and a warning about the failed write followed).
    expect(after.body).toMatch(/^\{[^\n]*\}$/);
    expect((JSON.parse(after.body) as View).session).toMatchObject({ user: 'bob' });
    // In Redis too: a new PHP process (no persistent connection) reads Bob's session.
    await php.stop();
    php = await startPhpServer({
      docroot: box.docroot,
      phpIni: box.phpIni,
      scanDir: box.artifactsDir,
      env: { SESSION_MIGRATE_KEY_FILE: box.keyFile },
    });
    const fresh = await bob.get(php.base, '/');
    expect((JSON.parse(fresh.body) as View).session).toMatchObject({ user: 'bob' });
    const log = readFileSync(join(box.root, 'php-error.log'), 'utf8');
    expect(log).not.toMatch(/did not open/);
  }, 60_000);
});

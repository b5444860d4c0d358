/**
 * Setup file of the unit tier (vitest.config.ts, project `unit`): a unit test starts no server and no
 * PHP. Anything that tries to start redis-server, redis-cli, php, php-cgi, php-fpm, nginx, wrk or
 * phpunit, or to open or listen on a network socket, fails at once with the rule and the fix, so a
 * test that needs them cannot slip into the fast tier (CONTRIBUTING.md, "Test layers").
 *
 * Child processes of other programs (node itself, the CLI, mkfifo, flock) and Unix socket pipes are
 * allowed: they are part of what a unit test may exercise.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { basename } from 'node:path';
import { expect } from 'vitest';

/** Programs that are servers, or PHP, or talk to servers: integration-tier only. */
const SERVER_PROGRAMS = /^(php[0-9.]*|php-cgi[0-9.]*|php-fpm[0-9.]*|redis-server|redis-cli|redis-sentinel|nginx|wrk|phpunit|phpcs)$/;

function refuse(what: string): never {
  const file = expect.getState().testPath ?? 'this test file';
  throw new Error(
    `unit tier: ${file} ${what}; a test that does must be in the integration tier: add it to INTEGRATION in vitest.config.ts (CONTRIBUTING.md, "Test layers")`,
  );
}

function checkProgram(command: unknown): void {
  if (typeof command !== 'string') return;
  const program = basename(command.trim().split(/\s+/)[0] ?? '');
  if (SERVER_PROGRAMS.test(program)) refuse(`starts ${program}`);
}

type AnyFn = (...args: unknown[]) => unknown;
const cp = childProcess as unknown as Record<string, AnyFn>;
for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync']) {
  const real = cp[name]!;
  cp[name] = function guarded(this: unknown, command: unknown, ...rest: unknown[]) {
    // exec/execSync run a shell line (spawn with `shell: true` too): its first word is the program.
    checkProgram(command);
    return real.call(this, command, ...rest);
  };
}

/** The Unix socket path a connect()/listen() call names, or undefined for TCP/IP (a port, a host). */
function socketPath(args: unknown[]): string | undefined {
  const first = args[0];
  if (typeof first === 'string') return first;
  const path = typeof first === 'object' && first !== null && 'path' in first ? (first as { path?: unknown }).path : undefined;
  return typeof path === 'string' ? path : undefined;
}

const realConnect = net.Socket.prototype.connect as AnyFn;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  if (socketPath(args) === undefined) refuse('opens a network connection');
  return realConnect.apply(this, args) as net.Socket;
} as typeof net.Socket.prototype.connect;

const realListen = net.Server.prototype.listen as AnyFn;
net.Server.prototype.listen = function guardedListen(this: net.Server, ...args: unknown[]) {
  if (socketPath(args) === undefined) refuse('listens on a network port');
  return realListen.apply(this, args) as net.Server;
} as typeof net.Server.prototype.listen;

// ESM named imports (`import { spawnSync } from 'node:child_process'`) see the guarded functions too.
syncBuiltinESMExports();

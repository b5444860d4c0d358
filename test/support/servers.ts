/**
 * Real servers for tests, from the same sandbox code the demo uses: a throwaway redis-server on a free
 * loopback port (`--save ''`) and `php -S`, both stopped by PID. Their ports come from
 * test/support/ports.ts (safe with several vitest workers), not from the sandbox's own `listen(0)`.
 */
import {
  startRedis as sandboxRedis,
  startPhpServer as sandboxPhpServer,
  type PhpServer,
  type RedisServer,
} from '../../packages/cli/src/sandbox.ts';
import { freePort } from './ports.ts';

export { CookieClient, type RedisServer, type PhpServer } from '../../packages/cli/src/sandbox.ts';
export { freePort } from './ports.ts';

/**
 * Starts `redis-server` on a loopback port with no persistence (`--save ''`): sandbox.ts startRedis.
 * @param port a port to reuse (to stand in for a restarted server); default a new one from freePort().
 */
export async function startRedis(extraArgs: string[] = [], port?: number): Promise<RedisServer> {
  return sandboxRedis(extraArgs, port ?? (await freePort()));
}

/** Starts `php -S` (sandbox.ts startPhpServer) on a port from freePort() unless `options.port` names one. */
export async function startPhpServer(options: Parameters<typeof sandboxPhpServer>[0]): Promise<PhpServer> {
  return sandboxPhpServer({ ...options, port: options.port ?? (await freePort()) });
}

/**
 * Real servers for tests, from the same sandbox code the demo uses: a throwaway redis-server on a free
 * loopback port (`--save ''`) and `php -S`, both stopped by PID.
 */
export { freePort, startRedis, startPhpServer, CookieClient, type RedisServer, type PhpServer } from '../../packages/cli/src/sandbox.ts';

/**
 * The unit tier's guard (test/support/unit-guard.ts, a setup file of the `unit` project only): a unit
 * test that starts a server or PHP, or uses the network, fails with the rule and the fix, while node
 * child processes and Unix socket paths stay allowed.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';

describe('the unit tier refuses servers, PHP and the network', () => {
  it('refuses php, php-fpm, redis-server (by name or path), a TCP connection and a TCP listener, naming this file and the fix', () => {
    expect(() => spawnSync('php', ['-v'])).toThrow(
      /^unit tier: .*unit-guard\.test\.ts starts php; .*add it to INTEGRATION in vitest\.config\.ts/,
    );
    expect(() => spawnSync('php-fpm8.2', ['-v'])).toThrow(/starts php-fpm8\.2/);
    expect(() => spawnSync('/usr/bin/redis-server', ['--version'])).toThrow(/starts redis-server/);
    expect(() => net.connect(6379, '127.0.0.1')).toThrow(/opens a network connection/);
    expect(() => net.createServer().listen(0, '127.0.0.1')).toThrow(/listens on a network port/);
  });

  it('lets node itself run', () => {
    expect(spawnSync(process.execPath, ['-e', 'process.exit(3)']).status).toBe(3);
  });
});

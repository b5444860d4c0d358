/**
 * The generated PHP is code users commit: it must pass PHP_CodeSniffer's PSR-12 standard
 * (Debian package php-codesniffer, installed by scripts/setup.sh).
 */
import { describe, expect, it, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderArtifacts, writeArtifacts } from '@session-migrate/generate';

/** Every temporary directory of this file, removed afterwards (they hold session files and keys). */
const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-test-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

describe('generated PHP follows PSR-12', () => {
  it('phpcs --standard=PSR12 reports nothing (no error, no warning) for the bootstrap, the autoloader and every class', () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-psr12-'));
    const tls = {
      caFile: '/etc/redis/ca.pem',
      certFile: '/etc/redis/client.pem',
      keyFile: '/etc/redis/client.key',
      serverName: 'redis.internal',
    };
    const artifacts = renderArtifacts({
      installDir: dir,
      redis: { topology: 'cluster', host: '127.0.0.1', port: 6380, prefix: 'shop:sess:', tls, seeds: [{ host: '10.0.0.1', port: 7000 }] },
      expectedLookupIds: ['0123456789abcdef'],
      readThrough: { savePath: '2;/var/lib/php/sessions' },
      previousAutoPrependFile: '/srv/prepend.php',
    });
    writeArtifacts(dir, artifacts);
    const files = artifacts.filter((a) => a.path.endsWith('.php')).map((a) => join(dir, a.path));
    expect(files.length).toBeGreaterThan(10);
    const r = spawnSync('phpcs', ['--standard=PSR12', '--report=summary', '-s', ...files], { encoding: 'utf8' });
    expect(r.error, 'phpcs is missing: run scripts/setup.sh (apt-get install php-codesniffer)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

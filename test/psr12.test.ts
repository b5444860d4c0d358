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
  it('phpcs --standard=PSR12 reports nothing for the handler class and the bootstrap', () => {
    const dir = mkdtempSync(join(scratchRoot, 'sm-psr12-'));
    writeArtifacts(dir, renderArtifacts({ installDir: dir, redis: { host: '127.0.0.1', port: 6380, db: 2, prefix: 'shop:sess:' }, expectedLookupIds: ['0123456789abcdef'] }));
    const r = spawnSync('phpcs', ['--standard=PSR12', '--report=summary', '-s', join(dir, 'EncryptedRedisSessionHandler.php'), join(dir, 'session-migrate-bootstrap.php')], { encoding: 'utf8' });
    expect(r.error, 'phpcs is missing: run scripts/setup.sh (apt-get install php-codesniffer)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

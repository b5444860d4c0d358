/**
 * The generated PHP class reads key rings exactly as the TypeScript CLI does (docs/keys.md,
 * test/fixtures/cases/BUG-22): the same vectors (docs/keyring-vectors.json, also run by
 * packages/envelope/test/keyring.test.ts) give the same lookup ID, key IDs and Redis key names, and
 * the same malformed texts are refused with the same error, never echoing key text. Also the PHP
 * key sources: SESSION_MIGRATE_KEY_RING_FILE, SESSION_MIGRATE_KEY_PROVIDER (a callable), and the
 * one-source rule. Real php and redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, loadSodium, parseKeyText } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { PHP_DIR, PHP_EXTENSIONS, REPO, lastJson, renderInto, runPhp, type Rendered } from './php/harness.ts';

interface Vectors {
  valid: Array<{
    name: string;
    text: string;
    lookup_key_hex: string;
    lookup_id: string;
    current_key_id: string;
    previous_key_ids: string[];
    prefix: string;
    session_id: string;
    redis_key: string;
  }>;
  invalid: Array<{ name: string; text: string; expect: string }>;
}
type Result = {
  ok?: { lookupId: string; keyId: string; keyIds: string[]; lookupKeyHex: string; redisKey: string; wiped: boolean };
  error?: string;
};

const vectors = JSON.parse(readFileSync(join(REPO, 'docs/keyring-vectors.json'), 'utf8')) as Vectors;
let redis: RedisServer;
let rendered: Rendered;
let tmp: string;

function php(request: Record<string, unknown>, env: Record<string, string> = {}): Result[] {
  const run = runPhp(
    [...PHP_EXTENSIONS, '-d', 'error_reporting=-1', '-d', 'display_errors=stderr', join(PHP_DIR, 'keyring-ops.php'), rendered.autoloadFile],
    {
      input: JSON.stringify({ redisPort: redis.port, ...request }),
      env,
    },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return lastJson<{ results: Result[] }>(run).results;
}
const keyLike = (text: string) => text.match(/[A-Za-z0-9+/_-]{40,}={0,2}/g) ?? [];

beforeAll(async () => {
  redis = await startRedis();
  rendered = renderInto({ redis: { host: '127.0.0.1', port: redis.port } });
  tmp = mkdtempSync(join(tmpdir(), 'sm-php-keyring-'));
});
afterAll(async () => {
  await redis?.stop();
  if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('key ring vectors in PHP (docs/keyring-vectors.json)', () => {
  it('derives the same lookup ID, key IDs and key names as the vectors and the TypeScript reader', async () => {
    for (const v of vectors.valid) {
      const [r] = php({ texts: [v.text], prefix: v.prefix, sessionId: v.session_id });
      expect(r, v.name).toEqual({
        ok: {
          lookupId: v.lookup_id,
          keyId: v.current_key_id,
          keyIds: [v.current_key_id, ...v.previous_key_ids],
          lookupKeyHex: v.lookup_key_hex,
          redisKey: v.redis_key,
          wiped: true,
        },
      });
      const ts = await EnvelopeCodec.fromRing(parseKeyText(await loadSodium(), v.text, 'ts'));
      expect([ts.lookupId, ts.keyName(v.prefix, v.session_id)]).toEqual([r!.ok!.lookupId, r!.ok!.redisKey]);
    }
  });

  it('refuses every invalid vector with the same error fragment, never echoing key text', () => {
    const results = php({ texts: vectors.invalid.map((v) => v.text) });
    vectors.invalid.forEach((v, i) => {
      const error = results[i]!.error ?? '';
      expect(error, v.name).toMatch(/^RuntimeException: session-migrate: vector: /);
      expect(error, v.name).toContain(v.expect);
      for (const k of keyLike(v.text)) expect(error).not.toContain(k.slice(0, 16));
    });
  });
});

describe('PHP key sources', () => {
  const ringVector = vectors.valid[1]!;
  const file = (name: string, text: string, mode: number) => {
    const p = join(tmp, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };

  it('SESSION_MIGRATE_KEY_RING_FILE, SESSION_MIGRATE_KEY_FILE and SESSION_MIGRATE_KEY read a ring', () => {
    const ringFile = file('ring', ringVector.text, 0o600);
    const envs: Array<Record<string, string>> = [
      { SESSION_MIGRATE_KEY_RING_FILE: ringFile },
      { SESSION_MIGRATE_KEY_FILE: ringFile },
      { SESSION_MIGRATE_KEY: ringVector.text },
    ];
    for (const env of envs) {
      const [r] = php({ fromEnvironment: true, sessionId: ringVector.session_id }, env);
      expect(r!.ok, JSON.stringify(r)).toMatchObject({
        lookupId: ringVector.lookup_id,
        keyId: ringVector.current_key_id,
        redisKey: ringVector.redis_key,
      });
    }
  });

  it('SESSION_MIGRATE_KEY_PROVIDER: a PHP file returning a callable (e.g. a secrets manager client)', () => {
    const textFile = file('ring-for-provider', ringVector.text, 0o600);
    const provider = file(
      'provider.php',
      `<?php\nreturn static function (): string {\n    return (string) file_get_contents(${JSON.stringify(textFile)});\n};\n`,
      0o644,
    );
    const [r] = php({ fromEnvironment: true, sessionId: ringVector.session_id }, { SESSION_MIGRATE_KEY_PROVIDER: provider });
    expect(r!.ok).toMatchObject({ lookupId: ringVector.lookup_id, redisKey: ringVector.redis_key });
    const secret = ringVector.text.match(/current (\S+)/)![1]!;
    const throwing = file(
      'throwing.php',
      `<?php\nreturn static function (): string {\n    throw new RuntimeException('token ${secret} rejected');\n};\n`,
      0o644,
    );
    const [t] = php({ fromEnvironment: true }, { SESSION_MIGRATE_KEY_PROVIDER: throwing });
    expect(t!.error).toBe(`RuntimeException: session-migrate: key provider ${throwing} failed (RuntimeException)`);
    const notCallable = file('not-callable.php', '<?php\nreturn 42;\n', 0o644);
    expect(php({ fromEnvironment: true }, { SESSION_MIGRATE_KEY_PROVIDER: notCallable })[0]!.error).toContain(
      'the file must return a callable',
    );
    const wrongType = file('wrong-type.php', '<?php\nreturn static function () {\n    return null;\n};\n', 0o644);
    expect(php({ fromEnvironment: true }, { SESSION_MIGRATE_KEY_PROVIDER: wrongType })[0]!.error).toContain(
      'returned a NULL, not key text',
    );
  });

  it('refuses a non-canonical base64 key from SESSION_MIGRATE_KEY and SESSION_MIGRATE_KEY_FILE without echoing it', () => {
    const single = vectors.valid[0]!.text.trim();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const flipped = single.slice(0, 42) + alphabet[alphabet.indexOf(single[42]!) ^ 1] + '=';
    const keyFile = file('non-canonical.key', `${flipped}\n`, 0o600);
    const cases: Array<[Record<string, string>, string]> = [
      [{ SESSION_MIGRATE_KEY: flipped }, 'environment variable SESSION_MIGRATE_KEY: not a session-migrate key'],
      [{ SESSION_MIGRATE_KEY_FILE: keyFile }, `key file ${keyFile}: not a session-migrate key`],
    ];
    for (const [env, expected] of cases) {
      const [r] = php({ fromEnvironment: true }, env);
      expect(r!.ok, JSON.stringify(env)).toBeUndefined();
      expect(r!.error).toContain(expected);
      expect(r!.error).not.toContain(flipped.slice(0, 16));
    }
  });

  it('refuses two sources at once, a ring file others can read, and a truncated ring file', () => {
    const ringFile = file('ring2', ringVector.text, 0o600);
    const both = php({ fromEnvironment: true }, { SESSION_MIGRATE_KEY_RING_FILE: ringFile, SESSION_MIGRATE_KEY: ringVector.text })[0]!
      .error!;
    expect(both).toBe('RuntimeException: session-migrate: SESSION_MIGRATE_KEY_RING_FILE and SESSION_MIGRATE_KEY are all set; set only one');
    const open = file('ring-open', ringVector.text, 0o604);
    expect(php({ fromEnvironment: true }, { SESSION_MIGRATE_KEY_RING_FILE: open })[0]!.error).toMatch(
      /accessible to others \(mode 0604\); fix with chmod o-rwx/,
    );
    const truncated = file('ring-cut', ringVector.text.slice(0, ringVector.text.indexOf('\nend')), 0o600);
    expect(php({ fromEnvironment: true }, { SESSION_MIGRATE_KEY_RING_FILE: truncated })[0]!.error).toContain(
      `key file ${truncated}: truncated: no 'end' line`,
    );
  });
});

describe('templates/examples/aws-secrets-manager.php.example', () => {
  const example = join(REPO, 'templates/examples/aws-secrets-manager.php.example');
  it('passes php -l, keeps PHP 7.4 syntax and PSR-12', () => {
    const lint = runPhp(['-l', example]);
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    const guard = lastJson<string[]>(runPhp(['-d', 'extension=tokenizer', join(PHP_DIR, 'syntax-guard.php'), example]));
    expect(guard).toEqual([]);
    const phpcs = spawnSync('phpcs', ['--standard=PSR12', '--extensions=example/php', '--report=summary', example], { encoding: 'utf8' });
    expect(phpcs.stdout + phpcs.stderr).toBe('');
  });
});

/**
 * End to end for `session-migrate codemod php` (issue 6): a realistic multi-file legacy app
 * (codemods/php/test/legacy-app: three entry points, an include chain, a header that calls
 * session_start(), a config that forces the files handler) is rewritten through the CLI binary, every
 * changed file passes `php -l`, and then the app, served by `php -S` WITHOUT the auto_prepend ini
 * fragment, keeps its session encrypted in a real redis-server through the generated handler.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { renderArtifacts, writeArtifacts } from '@session-migrate/generate';
import { CookieClient, startPhpServer, startRedis, type RedisServer } from './support/servers.ts';
import { BIN } from './support/migrate-cli.ts';

/** Each test starts the CLI (tsx) several times; on a loaded machine one start can take 10 s. */
const CLI_TIMEOUT_MS = 240_000;
const LEGACY_APP = join(import.meta.dirname, '../codemods/php/test/legacy-app');

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every file below dir (relative path -> bytes). */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

let redis: RedisServer;
let root: string;
let app: string;
let keyFile: string;
let phpIni: string;
let filesDir: string;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'codemod-php-e2e-'));
  app = join(root, 'app');
  cpSync(LEGACY_APP, app, { recursive: true });
  keyFile = join(root, 'master.key');
  expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
  // The generated handler, installed inside the app (the codemod requires it relative to __DIR__).
  writeArtifacts(
    join(app, 'session-migrate'),
    renderArtifacts({
      installDir: join(app, 'session-migrate'),
      redis: { host: '127.0.0.1', port: redis.port },
    }),
  );
  // The host's php.ini as it was: files sessions, and NO auto_prepend_file (the codemod is the path
  // for hosts where the ini fragment cannot be deployed). Extensions come from the system scan dir.
  filesDir = join(root, 'files-sessions');
  mkdirSync(filesDir, { mode: 0o700 });
  phpIni = join(root, 'php.ini');
  writeFileSync(
    phpIni,
    [
      'session.save_handler = files',
      `session.save_path = "${filesDir}"`,
      'session.gc_probability = 0',
      'display_errors = stderr',
      'log_errors = On',
      `error_log = "${join(root, 'php-error.log')}"`,
      '',
    ].join('\n'),
  );
}, CLI_TIMEOUT_MS);

afterAll(async () => {
  await redis?.stop();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

describe('codemod php on a legacy app, end to end', () => {
  it(
    'before the codemod the app does not reach Redis (the config forces the files handler)',
    async () => {
      const php = await startPhpServer({ docroot: app, phpIni, env: { SESSION_MIGRATE_KEY_FILE: keyFile } });
      try {
        await new CookieClient().get(php.base, '/index.php?user=alice');
      } finally {
        await php.stop();
      }
      expect(await redis.client.dbsize()).toBe(0);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    '--dry-run prints the diff as JSON and writes nothing; the real run rewrites exactly two files, which pass php -l',
    () => {
      const before = snapshot(app);
      const handler = join(app, 'session-migrate', 'session-migrate-bootstrap.php');
      const dry = cli(['codemod', 'php', app, '--handler-bootstrap', handler, '--dry-run', '--json']);
      expect(dry.status, dry.stderr).toBe(0);
      const planned = JSON.parse(dry.stdout) as {
        changes: { file: string; diff: string; written: boolean }[];
        registeredIn: string[];
        sessionEntryPoints: string[];
      };
      expect(planned.changes.map((c) => [c.file, c.written])).toEqual([
        ['includes/bootstrap.php', false],
        ['includes/config.php', false],
      ]);
      expect(planned.registeredIn).toEqual(['includes/bootstrap.php']);
      expect(planned.sessionEntryPoints).toEqual(['admin/index.php', 'api.php', 'index.php']);
      expect(planned.changes[1]!.diff).toContain("-ini_set('session.save_handler', 'files');\n-session_save_path('/tmp/x');\n");
      expect(snapshot(app)).toEqual(before);

      const run = cli(['codemod', 'php', app, '--handler-bootstrap', handler]);
      expect(run.status, run.stderr + run.stdout).toBe(0);
      expect(run.stdout).toContain('changed 2 file(s): includes/bootstrap.php, includes/config.php');
      expect(run.stdout).toContain('handler registered in: includes/bootstrap.php');
      const after = snapshot(app);
      const changed = [...after.keys()].filter((f) => !after.get(f)!.equals(before.get(f)!)).sort();
      expect(changed).toEqual(['includes/bootstrap.php', 'includes/config.php']);
      for (const f of changed) {
        const lint = spawnSync('php', ['-l', join(app, f)], { encoding: 'utf8' });
        expect(lint.status, lint.stdout + lint.stderr).toBe(0);
        expect(statSync(join(app, f)).mode & 0o777).toBe(statSync(join(LEGACY_APP, f)).mode & 0o777);
      }
      expect(after.get('includes/bootstrap.php')!.toString('utf8').split('\n')[1]).toBe(
        "require_once __DIR__ . '/../session-migrate/session-migrate-bootstrap.php'; // session-migrate: encrypted Redis session handler",
      );
      expect(after.get('vendor/acme/legacy-session/Session.php')!.toString('utf8')).toContain("ini_set('session.save_handler', 'files');");

      const again = cli(['codemod', 'php', app, '--handler-bootstrap', handler, '--json']);
      expect(again.status).toBe(0);
      expect((JSON.parse(again.stdout) as { changes: unknown[] }).changes).toEqual([]);
      expect(snapshot(app)).toEqual(after);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'serves a session through the generated handler: encrypted in Redis, seen by the next requests on every entry point',
    async () => {
      const php = await startPhpServer({ docroot: app, phpIni, env: { SESSION_MIGRATE_KEY_FILE: keyFile } });
      const alice = new CookieClient();
      try {
        const first = await alice.get(php.base, '/index.php?user=alice');
        expect(first.status).toBe(200);
        expect(first.body).toContain('visits=1');
        expect(first.body).toContain('user=alice');

        const keys = await redis.client.keys('*');
        expect(keys).toHaveLength(1);
        expect(keys[0]).toMatch(/^smsess:\{[0-9a-f]{64}\}$/);
        const stored = (await redis.client.getBuffer(keys[0]!))!;
        expect(stored.includes(Buffer.from('alice'))).toBe(false);
        const codec = await EnvelopeCodec.create([readKeyFile(keyFile)]);
        const opened = codec.open(keys[0]!, stored);
        expect(opened.ok).toBe(true);
        if (opened.ok) expect(opened.plaintext.toString('utf8')).toBe('visits|i:1;user|s:5:"alice";');
        expect(await redis.client.ttl(keys[0]!)).toBeGreaterThan(0);

        const admin = await alice.get(php.base, '/admin/index.php');
        expect(admin.status).toBe(200);
        expect(admin.body).toContain('admin for alice, visits=1');
        const api = await alice.get(php.base, '/api.php');
        expect(api.status).toBe(200);
        expect(JSON.parse(api.body)).toEqual({
          handler: 'user',
          session_id_length: 32,
          session: { visits: 1, user: 'alice', admin_seen: true },
        });
        const second = await alice.get(php.base, '/index.php');
        expect(second.body).toContain('visits=2');

        // A new browser has no session: the admin page refuses it (the header has already sent a 200).
        const stranger = await new CookieClient().get(php.base, '/admin/index.php');
        expect(stranger.body).toContain('login first');
      } finally {
        await php.stop();
      }
      expect(readdirSync(filesDir)).toEqual([]);
    },
    CLI_TIMEOUT_MS,
  );
});

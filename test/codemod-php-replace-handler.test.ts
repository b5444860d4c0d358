/**
 * `codemod php --replace-custom-handler` end to end (BUG-20): a legacy app that registers its own
 * save handler with six callables overrides the handler the generated bootstrap registered (here
 * through auto_prepend_file, as the ini fragment deploys it), so its sessions never reach Redis.
 * After the codemod (CLI binary) the call registers the generated handler again through
 * EncryptedRedisSessionHandler::registeredHandler(), and real PHP (php -S) keeps the session
 * encrypted in a real redis-server; the custom store is no longer used (and its sessions are not
 * migrated, as the finding says). Also: registeredHandler() without the bootstrap throws LogicException.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { renderArtifacts, writeArtifacts } from '@session-migrate/generate';
import { CookieClient, startPhpServer, startRedis, type RedisServer } from './support/servers.ts';
import { caseFile } from './support/fixtures.ts';
import { BIN } from './support/migrate-cli.ts';

const CLI_TIMEOUT_MS = 240_000;
const BUG20 = caseFile('BUG-20', 'legacy_callbacks_registration.php');

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The callbacks BUG-20's registration names: a files-like store of the app's own under $LEGACY_STORE. */
const CALLBACKS = `<?php
function sess_path($id) { return getenv('LEGACY_STORE') . '/s_' . $id; }
function sess_open($path, $name) { return true; }
function sess_close() { return true; }
function sess_read($id) { return is_file(sess_path($id)) ? (string) file_get_contents(sess_path($id)) : ''; }
function sess_write($id, $data) { return file_put_contents(sess_path($id), $data) !== false; }
function sess_destroy($id) { @unlink(sess_path($id)); return true; }
function sess_gc($max) { return 0; }
`;

let redis: RedisServer;
let root: string;
let app: string;
let keyFile: string;
let phpIni: string;
let legacyStore: string;
let errorLog: string;

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'codemod-php-replace-'));
  app = join(root, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'callbacks.php'), CALLBACKS);
  // index.php: the callbacks, then BUG-20's registration file as is, then a page that counts visits.
  const registration = readFileSync(BUG20, 'utf8');
  writeFileSync(
    join(app, 'index.php'),
    registration.replace(/^<\?php\n/, "<?php\nrequire __DIR__ . '/callbacks.php';\n") +
      "$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;\necho 'visits=' . $_SESSION['visits'];\n",
  );
  keyFile = join(root, 'master.key');
  expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
  // A namespace other than the default: the codemod must read it from the generated bootstrap.
  writeArtifacts(
    join(app, 'session-migrate'),
    renderArtifacts({
      installDir: join(app, 'session-migrate'),
      redis: { host: '127.0.0.1', port: redis.port },
      namespace: 'Acme\\Sessions',
    }),
  );
  legacyStore = join(root, 'legacy-store');
  mkdirSync(legacyStore, { mode: 0o700 });
  errorLog = join(root, 'php-error.log');
  phpIni = join(root, 'php.ini');
  writeFileSync(
    phpIni,
    [
      `auto_prepend_file = "${join(app, 'session-migrate', 'session-migrate-bootstrap.php')}"`,
      'session.gc_probability = 0',
      'error_reporting = -1',
      'display_errors = stderr',
      'log_errors = On',
      `error_log = "${errorLog}"`,
      '',
    ].join('\n'),
  );
}, CLI_TIMEOUT_MS);

afterAll(async () => {
  await redis?.stop();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

async function visit(client: CookieClient): Promise<string> {
  const php = await startPhpServer({ docroot: app, phpIni, env: { SESSION_MIGRATE_KEY_FILE: keyFile, LEGACY_STORE: legacyStore } });
  try {
    const r = await client.get(php.base, '/index.php');
    expect(r.status).toBe(200);
    return r.body;
  } finally {
    await php.stop();
  }
}

describe('codemod php --replace-custom-handler, end to end (BUG-20)', () => {
  const legacy = new CookieClient();

  it(
    "before: the app's six-callable registration runs after the bootstrap and replaces the encrypted handler",
    async () => {
      expect(await visit(legacy)).toBe('visits=1');
      expect(readdirSync(legacyStore)).toHaveLength(1);
      expect(await redis.client.dbsize()).toBe(0);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'without the flag the CLI only reports it (exit 1, nothing written); with it, rewrites the call and requires the bootstrap before it',
    () => {
      const before = readFileSync(join(app, 'index.php'));
      const off = cli(['codemod', 'php', app, '--json']);
      expect(off.status, off.stderr).toBe(1);
      expect((JSON.parse(off.stdout) as { findings: { id: string }[] }).findings.map((f) => f.id)).toContain('custom-handler-registered');
      expect(readFileSync(join(app, 'index.php')).equals(before)).toBe(true);

      const on = cli(['codemod', 'php', app, '--replace-custom-handler', '--json']);
      // custom-handler-replaced is medium (the old storage is not migrated): left for a person, exit 1.
      expect(on.status, on.stderr + on.stdout).toBe(1);
      const report = JSON.parse(on.stdout) as { findings: { id: string; message: string }[]; registeredIn: string[] };
      // The require goes into the first file index.php enters before the call (the planner's rule).
      expect(report.registeredIn).toEqual(['callbacks.php']);
      expect(readFileSync(join(app, 'callbacks.php'), 'utf8').split('\n').slice(0, 3)).toEqual([
        '<?php',
        "require_once __DIR__ . '/session-migrate/session-migrate-bootstrap.php'; // session-migrate: encrypted Redis session handler",
        "function sess_path($id) { return getenv('LEGACY_STORE') . '/s_' . $id; }",
      ]);
      expect(report.findings.find((f) => f.id === 'custom-handler-replaced')?.message).toContain('NOT migrated');
      const text = readFileSync(join(app, 'index.php'), 'utf8');
      expect(text).toBe(
        [
          '<?php',
          "require __DIR__ . '/callbacks.php';",
          '// app code the codemod must rewrite: callback-style registration (deprecated since PHP 8.4)',
          'session_set_save_handler(\\Acme\\Sessions\\EncryptedRedisSessionHandler::registeredHandler(), true);',
          'session_start();',
          "$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;",
          "echo 'visits=' . $_SESSION['visits'];",
          '',
        ].join('\n'),
      );
      for (const f of ['index.php', 'callbacks.php']) {
        const lint = spawnSync('php', ['-n', '-l', join(app, f)], { encoding: 'utf8' });
        expect(lint.status, lint.stdout + lint.stderr).toBe(0);
      }

      const again = cli(['codemod', 'php', app, '--replace-custom-handler', '--json']);
      expect(again.status).toBe(0);
      expect((JSON.parse(again.stdout) as { changes: unknown[] }).changes).toEqual([]);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'after: the session round-trips through the generated handler, encrypted in Redis; the custom store is not used and its session is not migrated',
    async () => {
      const stored = readdirSync(legacyStore);
      const alice = new CookieClient();
      expect(await visit(alice)).toBe('visits=1');
      expect(await visit(alice)).toBe('visits=2');
      const keys = await redis.client.keys('*');
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/^smsess:\{[0-9a-f]{64}\}$/);
      const codec = await EnvelopeCodec.create([readKeyFile(keyFile)]);
      const opened = codec.open(keys[0]!, (await redis.client.getBuffer(keys[0]!))!);
      expect(opened.ok).toBe(true);
      if (opened.ok) expect(opened.plaintext.toString('utf8')).toBe('visits|i:2;');
      // The browser from before the rewrite starts over: the custom handler's session was not migrated.
      expect(await visit(legacy)).toBe('visits=1');
      expect(readdirSync(legacyStore)).toEqual(stored);
      let log = '';
      try {
        log = readFileSync(errorLog, 'utf8');
      } catch {
        // no log written: nothing went wrong
      }
      expect(log).not.toMatch(/Deprecated|Warning|Fatal|session-migrate/);
    },
    CLI_TIMEOUT_MS,
  );

  it('registeredHandler() before the bootstrap ran throws a LogicException that says to require it first', () => {
    const autoload = join(app, 'session-migrate', 'autoload.php');
    const script = join(root, 'early.php');
    writeFileSync(
      script,
      `<?php\nrequire ${JSON.stringify(autoload)};\ntry {\n    \\Acme\\Sessions\\EncryptedRedisSessionHandler::registeredHandler();\n    echo 'no exception';\n} catch (\\LogicException $e) {\n    echo get_class($e), ': ', $e->getMessage();\n}\n`,
    );
    const r = spawnSync('php', ['-d', 'error_reporting=-1', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      'LogicException: session-migrate: no encrypted session handler is registered yet; require session-migrate-bootstrap.php before this call',
    );
  });
});

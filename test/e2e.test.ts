/**
 * End to end with real processes: PHP's built-in server on the files handler, the session-migrate CLI,
 * a throwaway redis-server, then PHP again on the generated handler and ini fragment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { createSandbox, removeSandbox, type SandboxLayout } from '../packages/cli/src/sandbox.ts';
import { CookieClient, startPhpServer, startRedis, type RedisServer } from './support/servers.ts';
import { BIN, planArgs } from './support/migrate-cli.ts';

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** cli() as a child process, awaited: for independent runs started at the same time. */
function cliAsync(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env }, timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** A one-line error on stderr, exit 2, nothing on stdout. */
function expectUsageError(r: CliResult, pattern: RegExp): void {
  expect(r.status, r.stderr + r.stdout).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

/**
 * expectUsageError over several command lines that write nothing and do not depend on each other,
 * started at once (each start is mostly Node's and the CLI's load, about 0.25 s of CPU).
 */
async function expectUsageErrors(cases: Array<[args: string[], pattern: RegExp]>): Promise<void> {
  const results = await Promise.all(cases.map(([args]) => cliAsync(args)));
  results.forEach((r, i) => {
    expect(r.status, `${cases[i]![0].join(' ')}: ${r.stderr}${r.stdout}`).toBe(2);
    expectUsageError(r, cases[i]![1]);
  });
}

interface View {
  handler: string;
  session: Record<string, unknown>;
  encoded: string;
}

async function view(c: CookieClient, base: string, path: string): Promise<View> {
  const res = await c.get(base, path);
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as View;
}

let redis: RedisServer;
let box: SandboxLayout;

beforeAll(async () => {
  redis = await startRedis();
  box = createSandbox({ gcMaxlifetime: 1440 });
});
afterAll(async () => {
  await redis.stop();
  removeSandbox(box);
});

describe('main job: files -> plan -> apply -> PHP on the generated handler -> verify', () => {
  const users: Array<{ client: CookieClient; before: View }> = [];

  it('moves real PHP sessions into encrypted Redis and every user stays logged in', async () => {
    // 1. PHP writes sessions through the real files handler.
    const php = await startPhpServer({ docroot: box.docroot, phpIni: box.phpIni });
    try {
      for (let i = 0; i < 4; i++) {
        const client = new CookieClient();
        await view(client, php.base, `/?action=login&user=e2e${i}`);
        const before = await view(client, php.base, `/?action=add&sku=Zo%C3%AB-${i}&qty=${i + 2}`);
        expect(before.handler).toBe('files');
        users.push({ client, before });
      }
    } finally {
      await php.stop();
    }
    const files = readdirSync(box.sessions).filter((f) => f.startsWith('sess_'));
    expect(files.length).toBeGreaterThanOrEqual(4);

    // 2. keys generate, plan, apply.
    expect(cli(['keys', 'generate', '--out', box.keyFile]).status).toBe(0);
    const plan = cli([
      'plan',
      '--source',
      `files:${box.sessions}`,
      '--target',
      redis.url,
      '--key-file',
      box.keyFile,
      '--out',
      box.planFile,
      '--artifacts-dir',
      box.artifactsDir,
    ]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/4 to migrate/);
    const planJson = JSON.parse(readFileSync(box.planFile, 'utf8')) as {
      key: { keyId: string; lookupId: string };
      summary: { live: number; formats: Record<string, number> };
    };
    expect(planJson.summary.live).toBe(4);
    expect(planJson.summary.formats).toEqual({ php: 4 });
    const key = readFileSync(box.keyFile, 'utf8').trim();
    expect(readFileSync(box.planFile, 'utf8')).not.toContain(key);

    const apply = cli(['apply', '--plan', box.planFile, '--json']);
    expect(apply.status, apply.stderr).toBe(0);
    const applied = JSON.parse(apply.stdout) as {
      ok: boolean;
      target: string;
      sessions: { counts: { migrated: number } };
      nothingToDo: boolean;
      artifacts: Array<{ status: string }>;
    };
    expect(applied.sessions.counts.migrated).toBe(4);
    // The verdict and the server, as verify's, purge's, rotate's and rollback's documents have them.
    expect(applied.ok).toBe(true);
    expect(applied.target).toMatch(/^redis:\/\/127\.0\.0\.1:\d+/);
    expect(applied.artifacts.length).toBeGreaterThan(10); // bootstrap, ini fragment, autoload.php, src/*.php
    expect(applied.artifacts.every((a) => a.status === 'written')).toBe(true);

    // Redis holds no session ID and no plaintext.
    const keys = await redis.client.keys('*');
    expect(keys).toHaveLength(4);
    for (const k of keys) {
      expect(k).toMatch(/^smsess:\{[0-9a-f]{64}\}$/);
      const value = (await redis.client.getBuffer(k))!;
      expect(value.includes(Buffer.from('e2e'))).toBe(false);
      expect(await redis.client.ttl(k)).toBeGreaterThan(1300);
    }
    for (const f of files) expect(keys.join(' ')).not.toContain(f.slice(5));

    // 3. Re-running apply changes nothing and says so.
    const again = cli(['apply', '--plan', box.planFile]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/nothing to do/);
    expect(again.stdout).toMatch(/already present 4/);

    // 4. PHP restarts with the generated handler; the plaintext files are moved away.
    renameSync(box.sessions, box.sessions + '.old');
    const php2 = await startPhpServer({
      docroot: box.docroot,
      phpIni: box.phpIni,
      scanDir: box.artifactsDir,
      env: { SESSION_MIGRATE_KEY_FILE: box.keyFile },
    });
    try {
      for (const u of users) {
        const after = await view(u.client, php2.base, '/?action=whoami');
        expect(after.handler).toBe('user');
        expect(after.session).toEqual(u.before.session);
        expect(after.encoded).toBe(u.before.encoded);
      }
      const updated = await view(users[0]!.client, php2.base, '/?action=add&sku=NEW&qty=1');
      expect((updated.session.cart as unknown[]).length).toBe(2);
      const reread = await view(users[0]!.client, php2.base, '/?action=whoami');
      expect(reread.session).toEqual(updated.session);
    } finally {
      await php2.stop();
    }
    expect(existsSync(box.sessions)).toBe(false);
    expect(await redis.client.dbsize()).toBe(4);

    // PHP given another master key fails visibly and names both lookup IDs, instead of logging everyone out.
    const wrongKey = join(box.root, 'wrong.key');
    expect(cli(['keys', 'generate', '--out', wrongKey]).status).toBe(0);
    const php3 = await startPhpServer({
      docroot: box.docroot,
      phpIni: box.phpIni,
      scanDir: box.artifactsDir,
      env: { SESSION_MIGRATE_KEY_FILE: wrongKey },
    });
    try {
      const res = await users[1]!.client.get(php3.base, '/?action=whoami');
      expect(res.status).toBe(500);
      expect(res.body).toContain('session_start failed');
    } finally {
      await php3.stop();
    }
    expect(readFileSync(join(box.root, 'php-error.log'), 'utf8')).toMatch(
      new RegExp(
        `has lookup ID [0-9a-f]{16} \\(current key ID [0-9a-f]{16}\\), but this deployment expects lookup ID ${planJson.key.lookupId}`,
      ),
    );
    expect(await redis.client.dbsize()).toBe(4);
  });

  it('verify exits 0, and 1 naming the key once plaintext is planted under the prefix', async () => {
    const base = ['verify', '--target', redis.url, '--key-file', box.keyFile];
    // The old files were last written a minute ago (before the cutover).
    const oldDir = `${box.sessions}.old`;
    const minuteAgo = Date.now() / 1000 - 60;
    for (const f of readdirSync(oldDir)) utimesSync(join(oldDir, f), minuteAgo, minuteAgo);
    // User 0 changed their cart through the handler since: different bytes, but newer (full TTL left).
    const ok = cli([...base, '--source', `files:${oldDir}`]);
    expect(ok.status, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/3 identical in Redis, 1 newer in Redis \(updated through the handler\)/);
    // The same value with less lifetime left than the file: a copy older than the file, so it fails.
    const codec = await EnvelopeCodec.create([readKeyFile(box.keyFile)]);
    const key0 = codec.keyName('smsess:', users[0]!.client.cookies.get('PHPSESSID')!);
    expect(await redis.client.pexpire(key0, 100_000)).toBe(1);
    const stale = cli([...base, '--source', `files:${oldDir}`]);
    expect(stale.status).toBe(1);
    expect(stale.stdout).toMatch(/different-content 1/);
    await redis.client.expire(key0, 1440);
    const clean = cli(base);
    expect(clean.status, clean.stdout).toBe(0);
    expect(clean.stdout).toMatch(/4 valid/);

    await redis.client.set('smsess:planted-by-attacker', 'user|s:5:"admin";');
    const planted = cli([...base, '--json']);
    expect(planted.status).toBe(1);
    const report = JSON.parse(planted.stdout) as { failures: Array<{ key: string; reason: string }> };
    // Under the prefix and loadable by PHP: named a plaintext session, not just "not an envelope".
    expect(report.failures).toEqual([{ key: 'smsess:planted-by-attacker', reason: 'plaintext-session' }]);
    expect(planted.stdout).not.toContain('admin');

    const human = cli(base);
    expect(human.stdout).toMatch(/FAIL\s+smsess:planted-by-attacker: plaintext-session/);
    await redis.client.del('smsess:planted-by-attacker');

    // An authentic envelope without a TTL would never expire.
    await redis.client.set('smsess:no-ttl', codec.seal('smsess:no-ttl', Buffer.from('a|i:1;')));
    const noTtl = cli([...base, '--json']);
    expect(noTtl.status).toBe(1);
    expect((JSON.parse(noTtl.stdout) as { failures: unknown[] }).failures).toEqual([{ key: 'smsess:no-ttl', reason: 'no-ttl' }]);
    // The same envelope copied to another key name does not open.
    await redis.client.set('smsess:copied', codec.seal('smsess:no-ttl', Buffer.from('a|i:1;')), 'EX', 60);
    await redis.client.del('smsess:no-ttl');
    const copied = cli([...base, '--json']);
    expect((JSON.parse(copied.stdout) as { failures: unknown[] }).failures).toEqual([{ key: 'smsess:copied', reason: 'auth-failed' }]);
    await redis.client.del('smsess:copied');
  });
});

describe('bad input: one line, exit 2, nothing written to Redis', () => {
  const target = () => redis.url.replace(/\/0$/, '/5');
  async function db5Size(): Promise<number> {
    await redis.client.select(5);
    const n = await redis.client.dbsize();
    await redis.client.select(0);
    return n;
  }

  it('missing session directory', async () => {
    expectUsageError(
      cli([
        'plan',
        '--source',
        `files:${box.root}/missing`,
        '--target',
        target(),
        '--key-file',
        box.keyFile,
        '--out',
        join(box.root, 'p1.json'),
      ]),
      /source directory .*missing: no such file or directory/,
    );
    expect(existsSync(join(box.root, 'p1.json'))).toBe(false);
  });

  it('unreadable session directory', async () => {
    // Root reads everything, so an unreadable directory is simulated with a file in its place.
    writeFileSync(join(box.root, 'not-a-dir'), '');
    expectUsageError(
      cli(['plan', '--source', `files:${box.root}/not-a-dir`, '--target', target(), '--key-file', box.keyFile]),
      /not a directory/,
    );
  });

  it('Redis unreachable', async () => {
    // plan and verify at once: each spends its time in the connection's reconnect attempts.
    const [r, v] = await Promise.all([
      cliAsync([
        'plan',
        '--source',
        `files:${box.sessions}.old`,
        '--target',
        'redis://127.0.0.1:1/0',
        '--key-file',
        box.keyFile,
        '--out',
        join(box.root, 'p2.json'),
      ]),
      cliAsync(['verify', '--target', 'redis://127.0.0.1:1/0', '--key-file', box.keyFile]),
    ]);
    expectUsageError(r, /cannot connect to Redis at redis:\/\/127\.0\.0\.1:1\/0: ECONNREFUSED/);
    expectUsageError(v, /cannot connect to Redis/);
  });

  it('missing, malformed and world-readable key files', async () => {
    const src = `files:${box.sessions}.old`;
    expectUsageError(
      cli(['plan', '--source', src, '--target', target(), '--key-file', join(box.root, 'nope.key')]),
      /key file .*nope\.key: no such file/,
    );
    const bad = join(box.root, 'bad.key');
    writeFileSync(bad, 'this-is-not-a-key-SECRETISH', { mode: 0o600 });
    const r = cli(['plan', '--source', src, '--target', target(), '--key-file', bad]);
    expectUsageError(r, /not a session-migrate key/);
    expect(r.stderr).not.toContain('SECRETISH');
    const open = join(box.root, 'open.key');
    writeFileSync(open, readFileSync(box.keyFile));
    chmodSync(open, 0o644);
    expectUsageError(cli(['plan', '--source', src, '--target', target(), '--key-file', open]), /chmod 600/);
    expect(await db5Size()).toBe(0);
  });

  it('plan drift: another key, a replaced source directory', async () => {
    const dir = join(box.root, 'drift-sessions');
    renameSync(box.sessions + '.old', dir);
    const planFile = join(box.root, 'drift.plan.json');
    const keyFile = join(box.root, 'drift.key');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    expect(
      cli([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        target(),
        '--key-file',
        keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(box.root, 'drift-art'),
      ]).status,
    ).toBe(0);

    // The key file is replaced by another key.
    renameSync(keyFile, keyFile + '.orig');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    expectUsageError(
      cli(['apply', '--plan', planFile]),
      /no longer matches: key file .* now has lookup ID [0-9a-f]{16}, the plan was made for lookup ID/,
    );
    // verify, purge, rollback and rotate refuse it the same way (before: verify called every session
    // missing and said to run apply again, which refuses).
    const drifted =
      /no longer matches: key file .* now has lookup ID [0-9a-f]{16}, the plan was made for lookup ID [0-9a-f]{16}; give the key the plan was made with, or re-run plan\n$/;
    await expectUsageErrors([
      [['verify', '--plan', planFile], drifted],
      [['purge', '--plan', planFile, '--dry-run'], drifted],
      [['rollback', '--plan', planFile, '--remove-keys', '--dry-run'], drifted],
      [['rotate', '--plan', planFile], drifted],
    ]);
    renameSync(keyFile + '.orig', keyFile);

    // The source directory is replaced.
    renameSync(dir, dir + '.moved');
    const { cpSync } = await import('node:fs');
    mkdirSync(dir);
    cpSync(dir + '.moved', dir, { recursive: true });
    expectUsageError(cli(['apply', '--plan', planFile]), /source directory .* was replaced/);
    expect(await db5Size()).toBe(0);
    expect(existsSync(join(box.root, 'drift-art'))).toBe(false);
  });

  it('plan drift: the target Redis was restarted or replaced', async () => {
    const other = await startRedis();
    const planFile = join(box.root, 'target-drift.plan.json');
    const src = join(box.root, 'drift-sessions');
    expect(
      cli([
        'plan',
        '--source',
        `files:${src}`,
        '--target',
        other.url,
        '--key-file',
        box.keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(box.root, 'td-art'),
      ]).status,
    ).toBe(0);
    const port = other.port;
    await other.stop();
    const replacement = await startRedis([], port);
    try {
      expectUsageError(cli(['apply', '--plan', planFile]), /is not the server the plan was made against/);
      expect(await replacement.client.dbsize()).toBe(0);
    } finally {
      await replacement.stop();
    }
  });

  it('bad plan file, unknown command and missing options', async () => {
    writeFileSync(join(box.root, 'garbage.json'), '{"not": "a plan"');
    await expectUsageErrors([
      [['apply', '--plan', join(box.root, 'garbage.json')], /not valid JSON/],
      [['apply', '--plan', join(box.root, 'none.json')], /no such file/],
      [['frobnicate'], /Unknown argument|Unknown command/i],
      [['plan'], /Missing required argument/],
    ]);
  });

  it('flags that take no value, numbers out of range, hand-edited plans', async () => {
    const src = `files:${join(box.root, 'drift-sessions')}`;
    await expectUsageErrors([
      [['apply', '--dry-run=yes'], /--dry-run takes no value/],
      // An option given twice is refused, not resolved by guessing (a real purge instead of a dry run).
      [['purge', '--plan', 'p.json', '--dry-run', '--dry-run=false'], /--dry-run given more than once/],
      [['verify', '--target', target(), '--key-file', box.keyFile, '--key-file', box.keyFile], /--key-file given more than once/],
      [['apply', '--plan', 'a.json', '--no-json', '--json'], /--json given more than once/],
      // yargs also takes camelCase spellings: they are the same option, checked the same way.
      [['purge', '--plan', 'p.json', '--dry-run', '--dryRun=false'], /--dry-run given more than once/],
      [['purge', '--plan', 'p.json', '--dryRun=yes'], /--dry-run takes no value/],
      [['apply', '--plan', 'a.json', '--dry-run', '--no-dryRun'], /--dry-run given more than once/],
      [['keys', 'id', '--key-file', 'a', '--keyFile', 'b'], /--key-file given more than once/],
      [
        ['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--gc-maxlifetime', 'abc'],
        /--gc-maxlifetime must be a number/,
      ],
      [['verify', '--target', target(), '--key-file', box.keyFile, '--gc-maxlifetime', '-1'], /--gc-maxlifetime must be a whole number/],
      [
        ['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--serialize-handler', 'wddx'],
        /Invalid values: .*Choices: "php"/,
      ],
      [['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--prefix', 'a b'], /prefix "a b" must be/],
      [['plan', '--source', 'files:;;', '--target', target(), '--key-file', box.keyFile], /no directory after the last/],
    ]);
    writeFileSync(join(box.root, 'null.json'), 'null');
    expectUsageError(cli(['apply', '--plan', join(box.root, 'null.json')]), /not a session-migrate plan/);
    const planFile = join(box.root, 'edit.plan.json');
    expect(
      cli([
        'plan',
        '--source',
        src,
        '--target',
        target(),
        '--key-file',
        box.keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(box.root, 'edit-art'),
      ]).status,
    ).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { target: { db: number } };
    plan.target.db = 7;
    writeFileSync(planFile, JSON.stringify(plan));
    expectUsageError(cli(['apply', '--plan', planFile]), /target fields disagree with the URL/);
    writeFileSync(join(box.root, 'a-file'), '');
    expectUsageError(
      cli(['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--artifacts-dir', join(box.root, 'a-file', 'art')]),
      /--artifacts-dir .* is not a directory/,
    );
    expect(await db5Size()).toBe(0);
  });

  it('prints hostile file names escaped, and hints at a depth layout when no session is at the top', async () => {
    const dir = join(box.root, 'hostile');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'sess_\u001b]0;PWNED\u0007\u001b[31mRED'), 'x');
    writeFileSync(join(dir, 'sess_bad\nFAKE LINE'), 'x');
    const r = cli([
      'plan',
      '--source',
      `files:${dir}`,
      '--target',
      target(),
      '--key-file',
      box.keyFile,
      '--out',
      join(box.root, 'h.json'),
      '--artifacts-dir',
      join(box.root, 'h-art'),
    ]);
    expect(r.status).toBe(0);
    // eslint-disable-next-line no-control-regex -- the control characters are what must not be printed
    expect(r.stdout).not.toMatch(/[\u001b\u0007]/);
    expect(r.stdout).toContain('sess_\\x1b]0;PW…');
    expect(r.stdout.split('\n').some((l) => l.startsWith('FAKE LINE'))).toBe(false);
    expect(r.stdout).toMatch(/WARNING +no session files found .*one-character subdirectories/);
  });

  it('plan --out never replaces a file that is not a plan; apply never replaces a foreign artifact', async () => {
    const src = `files:${join(box.root, 'drift-sessions')}`;
    const keyBefore = readFileSync(box.keyFile);
    expectUsageError(
      cli(['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--out', box.keyFile]),
      /is not a session-migrate plan; refusing to replace it/,
    );
    expect(readFileSync(box.keyFile).equals(keyBefore)).toBe(true);
    expectUsageError(
      cli(['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--max-session-bytes', 'abc']),
      /--max-session-bytes must be a number/,
    );
    const art = join(box.root, 'foreign-art');
    mkdirSync(join(art, 'src'), { recursive: true });
    writeFileSync(join(art, 'src', 'EncryptedRedisSessionHandler.php'), "<?php // the application's own file");
    const planFile = join(box.root, 'foreign.plan.json');
    expect(
      cli(['plan', '--source', src, '--target', target(), '--key-file', box.keyFile, '--out', planFile, '--artifacts-dir', art]).status,
    ).toBe(0);
    expectUsageError(cli(['apply', '--plan', planFile]), /was not generated by session-migrate; refusing to replace it/);
    expect(readFileSync(join(art, 'src', 'EncryptedRedisSessionHandler.php'), 'utf8')).toContain('the application');
    expect(await db5Size()).toBe(0);
  });

  it('apply refuses a symlinked src/ (or any linked directory inside the artifacts dir) as it refuses a linked bootstrap: one line, nothing written', async () => {
    mkdirSync(join(box.root, 'linked-sessions'), { recursive: true });
    if (!existsSync(box.keyFile)) expect(cli(['keys', 'generate', '--out', box.keyFile]).status).toBe(0); // run alone (-t)
    for (const linked of ['src', 'src/nested']) {
      const art = join(box.root, `linked-art-${linked.replace('/', '-')}`);
      const elsewhere = join(box.root, `elsewhere-${linked.replace('/', '-')}`);
      mkdirSync(elsewhere, { recursive: true });
      const planFile = join(box.root, `linked-${linked.replace('/', '-')}.plan.json`);
      const plan = cli(
        planArgs({ dir: join(box.root, 'linked-sessions'), target: target(), keyFile: box.keyFile, planFile, artifactsDir: art }),
      );
      expect(plan.status, plan.stderr).toBe(0);
      // The whole src/ a link, or (with the real src/) nothing but a link named as a directory would be.
      if (linked === 'src') {
        mkdirSync(art, { recursive: true });
        symlinkSync(elsewhere, join(art, 'src'));
      } else {
        mkdirSync(art, { recursive: true });
        writeFileSync(join(art, 'src'), 'not a directory');
      }
      const refused =
        linked === 'src'
          ? /linked-art-src\/src is a symbolic link; refusing to write the artifacts through it/
          : /linked-art-src-nested\/src exists and is not a directory; refusing to write the artifacts through it/;
      await expectUsageErrors([
        [['apply', '--plan', planFile, '--dry-run'], refused],
        [['apply', '--plan', planFile], refused],
        [['generate', 'php', '--plan', planFile], refused],
      ]);
      expect(readdirSync(elsewhere)).toEqual([]);
      expect(readdirSync(art).sort()).toEqual(['src']);
    }
    expect(await db5Size()).toBe(0);
  });

  it("verify --plan uses the plan's gc_maxlifetime, and says why sessions were not checked", async () => {
    const dir = join(box.root, 'old-sessions');
    mkdirSync(dir);
    const old = Date.now() / 1000 - 7200;
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(dir, `sess_oldsession${i}000000000000000`), `n|i:${i};`);
      utimesSync(join(dir, `sess_oldsession${i}000000000000000`), old, old);
    }
    const planFile = join(box.root, 'old.plan.json');
    const t = redis.url.replace(/\/0$/, '/9');
    expect(
      cli([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        t,
        '--key-file',
        box.keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(box.root, 'old-art'),
        '--gc-maxlifetime',
        '86400',
      ]).status,
    ).toBe(0);
    expect(cli(['apply', '--plan', planFile]).status).toBe(0);
    await redis.client.select(9);
    await redis.client.flushdb();
    await redis.client.select(0);
    const withPlan = cli(['verify', '--plan', planFile, '--source', `files:${dir}`]);
    expect(withPlan.status).toBe(1);
    expect(withPlan.stdout).toMatch(/missing-in-redis 3/);
    // Without --source, an empty prefix where the plan copied sessions is not success either.
    const emptyTarget = cli(['verify', '--plan', planFile, '--gc-maxlifetime', '1440']);
    expect(emptyTarget.status).toBe(1);
    expect(emptyTarget.stdout).toMatch(/no-keys 1/);
    // Its FAIL line says what it means (fresh-clone review: a bare "no-keys" was explained nowhere).
    expect(emptyTarget.stdout).toMatch(
      /FAIL +smsess:\*: no-keys \(the plan found live sessions, but the target holds no key at all: check the target URL, its database number and the prefix, or run apply\)$/m,
    );
    expect(emptyTarget.stderr).toMatch(/note: verify overrides the plan: --gc-maxlifetime 1440 \(plan: 86400\)/);
    const withoutPlan = cli(['verify', '--target', t, '--key-file', box.keyFile, '--source', `files:${dir}`]);
    expect(withoutPlan.stdout).toMatch(/NOTE +not checked: 3 past gc_maxlifetime \(1440 s\)/);
  });

  it('verify reads key names as bytes: plaintext under a non-UTF-8 name is caught', async () => {
    const name = Buffer.concat([Buffer.from('smsess:'), Buffer.from([0xff, 0xfe])]);
    await redis.client.set(name, 'user|s:5:"alice";');
    try {
      const r = cli(['verify', '--target', redis.url, '--key-file', box.keyFile]);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/FAIL +smsess:\\\\xff\\\\xfe: plaintext-session/);
      expect(r.stdout).not.toContain('alice');
    } finally {
      await redis.client.del(name);
    }
  });

  it('apply over a plan whose session files all became symlinks says nothing was left to copy, not "already applied"', async () => {
    const b = createSandbox({ gcMaxlifetime: 1440 });
    try {
      const outside = join(b.root, 'outside');
      writeFileSync(outside, 'n|i:1;');
      for (const id of ['a1b2c3d4e5f6a7b8c9d0e1f2a3', 'b1b2c3d4e5f6a7b8c9d0e1f2a3'])
        writeFileSync(join(b.sessions, `sess_${id}`), 'n|i:1;');
      expect(cli(['keys', 'generate', '--out', b.keyFile]).status).toBe(0);
      const t = redis.url.replace(/\/0$/, '/6');
      const plan = cli(planArgs({ dir: b.sessions, target: t, keyFile: b.keyFile, planFile: b.planFile, artifactsDir: b.artifactsDir }));
      expect(plan.status, plan.stderr).toBe(0);
      // Applied once (the artifacts written, the sessions copied), then Redis emptied and every
      // file replaced by a symlink, which apply never follows: nothing left to copy.
      expect(cli(['apply', '--plan', b.planFile]).status).toBe(0);
      await redis.client.select(6);
      await redis.client.flushdb();
      await redis.client.select(0);
      for (const f of readdirSync(b.sessions)) {
        rmSync(join(b.sessions, f));
        symlinkSync(outside, join(b.sessions, f));
      }
      const r = cli(['apply', '--plan', b.planFile]);
      expect(r.stdout, r.stderr).toMatch(/nothing to do: no session of the plan was left to copy/);
      expect(r.stdout).not.toMatch(/already applied/);
      expect(r.stdout).toMatch(/symlink/);
    } finally {
      await redis.client.select(6);
      await redis.client.flushdb();
      await redis.client.select(0);
      removeSandbox(b);
    }
  });

  it('verify --target on a database with no key under the prefix says nothing was verified (a wrong database number passed silently)', () => {
    const r = cli(['verify', '--target', redis.url.replace(/\/0$/, '/7'), '--key-file', box.keyFile]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(
      /^ {2}NOTE {8}no key under the prefix: nothing was verified; if sessions were migrated, check the target URL's database number and the prefix \(verify --plan fails here\)$/m,
    );
    // Not said where keys were checked.
    expect(cli(['verify', '--target', redis.url, '--key-file', box.keyFile]).stdout).not.toMatch(/nothing was verified/);
  });

  it('keys generate refuses to overwrite', async () => {
    const before = readFileSync(box.keyFile);
    expectUsageError(cli(['keys', 'generate', '--out', box.keyFile]), /already exists/);
    expect(readFileSync(box.keyFile).equals(before)).toBe(true);
  });
});

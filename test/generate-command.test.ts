/**
 * `session-migrate generate php` through the CLI binary: writes only the plan's artifacts, in the plan's
 * mode or the one asked for, and refuses contradictory or impossible modes with one line, exit 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from './support/servers.ts';
import { BIN } from './support/migrate-cli.ts';

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

let redis: RedisServer;
let root: string;
beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-generate-cli-'));
});
afterAll(async () => {
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('generate', () => {
  it("writes the artifacts in the plan's mode, switches with --strict, refuses both modes at once", () => {
    const sessions = join(root, 'sessions');
    mkdirSync(join(sessions, 'a'), { recursive: true });
    const keyFile = join(root, 'k');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    const plan = join(root, 'plan.json');
    const artifacts = join(root, 'artifacts');
    const planned = cli([
      'plan',
      '--source',
      `files:1;${sessions}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      plan,
      '--artifacts-dir',
      artifacts,
      '--read-through',
    ]);
    expect(planned.status, planned.stderr).toBe(0);
    const bootstrap = () => readFileSync(join(artifacts, 'session-migrate-bootstrap.php'), 'utf8');

    const rt = cli(['generate', 'php', '--plan', plan, '--json']);
    expect(rt.status, rt.stderr).toBe(0);
    expect(JSON.parse(rt.stdout)).toMatchObject({ mode: 'read-through', dryRun: false });
    expect(bootstrap()).toContain(`'readThrough' => ['dir' => '${sessions}', 'depth' => 1],`);
    expect(
      JSON.parse(cli(['generate', 'php', '--plan', plan, '--json']).stdout).artifacts.every(
        (a: { status: string }) => a.status === 'unchanged',
      ),
    ).toBe(true);

    const dry = cli(['generate', 'php', '--plan', plan, '--strict', '--dry-run']);
    expect(dry.status).toBe(0);
    expect(bootstrap()).toContain("'readThrough' => ['dir'"); // a dry run writes nothing
    expect(cli(['generate', 'php', '--plan', plan, '--strict']).status).toBe(0);
    expect(bootstrap()).toContain("'readThrough' => null,");

    const both = cli(['generate', 'php', '--plan', plan, '--strict', '--read-through']);
    expect(both.status).toBe(2);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an artifacts directory that became a file (or is below one) is one line and exit 2, with --dry-run too; nothing is written', () => {
    const sessions = join(root, 'sessions-file-dir');
    mkdirSync(sessions, { recursive: true });
    const keyFile = join(root, 'k-file-dir');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    const plan = join(root, 'plan-file-dir.json');
    const artifacts = join(root, 'artifacts-file-dir');
    const planned = cli([
      'plan',
      '--source',
      `files:${sessions}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      plan,
      '--artifacts-dir',
      artifacts,
    ]);
    expect(planned.status, planned.stderr).toBe(0);
    writeFileSync(artifacts, 'not a directory\n');
    for (const extra of [['--dry-run'], [], ['--dry-run', '--json']]) {
      const r = cli(['generate', 'php', '--plan', plan, ...extra]);
      expect(r.stderr, extra.join(' ')).toBe(
        `session-migrate: ${artifacts} exists and is not a directory; refusing to write the artifacts into ${artifacts}\n`,
      );
      expect(r.stdout).toBe('');
      expect(r.status).toBe(2);
    }
    const below = JSON.parse(readFileSync(plan, 'utf8')) as { artifacts: { outDir: string } };
    below.artifacts.outDir = join(artifacts, 'sub');
    writeFileSync(plan, JSON.stringify(below));
    const r = cli(['generate', 'php', '--plan', plan, '--dry-run']);
    expect(r.stderr).toBe(
      `session-migrate: ${artifacts} exists and is not a directory; refusing to write the artifacts into ${join(artifacts, 'sub')}\n`,
    );
    expect(r.status).toBe(2);
    expect(readFileSync(artifacts, 'utf8')).toBe('not a directory\n');
  });

  it('plan --no-locking / --lock-* / --no-persistent are stored in the plan; generate php overrides them, and apply keeps its choices; bad values exit 2', () => {
    const sessions = join(root, 'sessions-lock');
    mkdirSync(sessions, { recursive: true });
    const keyFile = join(root, 'k-lock');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    const plan = join(root, 'plan-lock.json');
    const artifacts = join(root, 'artifacts-lock');
    const planArgs = [
      'plan',
      '--source',
      `files:${sessions}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      plan,
      '--artifacts-dir',
      artifacts,
    ];
    const planned = cli([
      ...planArgs,
      '--lock-retries',
      '7',
      '--lock-wait-micros',
      '5000',
      '--lock-ttl',
      '12',
      '--lock-failure',
      'readonly',
      '--no-persistent',
    ]);
    expect(planned.status, planned.stderr).toBe(0);
    expect(planned.stdout).toMatch(
      /locking +on: up to 7 retries 5000 µs apart, lock TTL max_execution_time or 12 s, on failure readonly; one Redis connection per request/,
    );
    expect(JSON.parse(readFileSync(plan, 'utf8')).artifacts).toMatchObject({
      locking: { retries: 7, waitMicros: 5000, ttlSeconds: 12, onFailure: 'readonly' },
      persistent: false,
    });
    const bootstrap = () => readFileSync(join(artifacts, 'session-migrate-bootstrap.php'), 'utf8');
    expect(cli(['generate', 'php', '--plan', plan]).status).toBe(0);
    expect(bootstrap()).toContain("'retries' => 7,");
    expect(bootstrap()).toContain("'onFailure' => 'readonly',");
    expect(bootstrap()).toContain("'persistent' => false,");
    const ini = readFileSync(join(artifacts, '99-session-migrate.ini'), 'utf8');
    expect(ini).toContain(';   locking      on: a request waits for the lock 7 times 5000 microseconds, at most 70 ms');

    const off = cli(['generate', 'php', '--plan', plan, '--no-locking', '--persistent']);
    expect(off.status, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/artifact +.*session-migrate-bootstrap\.php: written/);
    expect(off.stdout).toMatch(/artifact +.*autoload\.php and .*src\/ \(\d+ files\): \d+ unchanged/);
    expect(bootstrap()).toContain("'enabled' => false,");
    expect(bootstrap()).toContain("'retries' => 7,"); // the plan's other choices stay
    expect(bootstrap()).toContain("'persistent' => true,");

    // apply run afterwards keeps what generate php chose (it recorded them), never the plan's alone.
    const applied = cli(['apply', '--plan', plan, '--json']);
    expect(applied.status, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout).generateChoices).toEqual({ mode: 'strict', locking: { enabled: false }, persistent: true });
    expect(bootstrap()).toContain("'enabled' => false,");
    expect(bootstrap()).toContain("'persistent' => true,");
    const dryRun = cli(['apply', '--plan', plan, '--dry-run']);
    expect(dryRun.stdout).toContain('session-migrate apply (dry run: nothing written; each session looked up in Redis, read only)');
    const appliedText = cli(['apply', '--plan', plan]);
    expect(appliedText.stdout).toContain(
      'artifact    as generate php made them: strict mode, persistent connections on, locking enabled=false (generate php --plan PLAN changes them)',
    );
    // A damaged record: one line, exit 2, nothing written.
    const record = join(artifacts, '.session-migrate-generate.json');
    const before = bootstrap();
    writeFileSync(record, '{"mode": "sometimes"}');
    const damaged = cli(['apply', '--plan', plan]);
    expect(damaged.status).toBe(2);
    expect(damaged.stderr.trim().split('\n')).toEqual([
      expect.stringContaining('.session-migrate-generate.json is not what generate php writes'),
    ]);
    expect(bootstrap()).toBe(before);
    // A value the renderer refuses: the error names the record it came from.
    writeFileSync(
      record,
      JSON.stringify({ generated: 'Generated by session-migrate generate php', mode: 'strict', locking: { retries: -1 } }),
    );
    const refused = cli(['apply', '--plan', plan]);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/locking\.retries: .*\(with the choices generate php recorded in .*\.session-migrate-generate\.json\)$/),
    ]);
    expect(bootstrap()).toBe(before);
    rmSync(record);
    expect(cli(['generate', 'php', '--plan', plan, '--no-locking', '--persistent']).status).toBe(0);
    expect(cli(['apply', '--plan', plan]).status).toBe(0);
    // A new plan into the same artifacts directory says that apply will keep the recorded choices.
    const replanned = cli(planArgs);
    expect(replanned.status, replanned.stderr).toBe(0);
    expect(replanned.stderr).toContain(
      `note: ${record} holds the choices generate php made (strict mode, persistent connections on, locking enabled=false); apply keeps them over this plan's`,
    );

    for (const bad of [
      ['--lock-retries', '-1'],
      ['--lock-ttl', '0'],
      ['--lock-wait-micros', '1.5'],
      ['--lock-failure', 'ignore'],
      ['--locking=maybe'],
    ]) {
      const r = cli(['generate', 'php', '--plan', plan, ...bad]);
      expect(r.status, bad.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), bad.join(' ')).toHaveLength(1);
    }
  });
});

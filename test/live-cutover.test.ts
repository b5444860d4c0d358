/**
 * Live cutover with real processes (issue 4): the read-through handler serves traffic while `apply`
 * runs through the CLI binary.
 *
 * (a) Concurrency: several php-cli processes keep updating a set of sessions through the generated
 *     handler in read-through mode (test/php/read-through-worker.php) while `apply` copies the same
 *     sessions from their files. Afterwards every session in Redis equals its last write; lost
 *     updates are counted and must be zero.
 * (b) HTTP (php -S, CookieClient): a user stays logged in through every phase: files handler ->
 *     read-through handler deployed (before apply) -> after apply -> strict mode -> after purge; a
 *     user who logged out before apply is not brought back by apply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { createSandbox, removeSandbox, type SandboxLayout } from '../packages/cli/src/sandbox.ts';
import { CookieClient, startPhpServer, startRedis, type PhpServer, type RedisServer } from './support/servers.ts';
import { PHP_DIR, PHP_EXTENSIONS, renderInto, type Rendered } from './php/harness.ts';
import { BIN } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env }, timeout: 180_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a process to its end without blocking the event loop (other children keep running). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** $_SESSION['n'] of a `php`-serialized payload written by the worker or planted by the test. */
function sessionN(payload: Buffer): number | undefined {
  const m = /(?:^|;|\})n\|i:(-?\d+);/.exec(payload.toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

describe('(a) concurrency: PHP processes write through the read-through handler while apply runs', () => {
  let redis: RedisServer;
  let root: string;
  let rendered: Rendered;

  beforeAll(async () => {
    redis = await startRedis();
    root = mkdtempSync(join(tmpdir(), 'sm-live-'));
  });
  afterAll(async () => {
    await redis?.stop();
    if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('every session in Redis equals its last write: zero lost updates', async () => {
    const WORKERS = 3;
    const SESSIONS = 240;
    const sessions = join(root, 'sessions');
    mkdirSync(sessions, { mode: 0o700 });
    const ids: string[] = [];
    const fileBytes = new Map<string, Buffer>();
    for (let i = 0; i < SESSIONS; i++) {
      const id = randomBytes(16).toString('hex');
      const data = Buffer.from(`user|s:6:"u${String(i).padStart(5, '0')}";n|i:0;`, 'latin1');
      writeFileSync(join(sessions, `sess_${id}`), data, { mode: 0o600 });
      // Last written by the files handler a minute ago, before the read-through deploy.
      const aMinuteAgo = new Date(Date.now() - 60_000);
      utimesSync(join(sessions, `sess_${id}`), aMinuteAgo, aMinuteAgo);
      ids.push(id);
      fileBytes.set(id, data);
    }
    const keyFile = join(root, 'master.key');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    const planFile = join(root, 'plan.json');
    const plan = cli([
      'plan',
      '--source',
      `files:${sessions}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--gc-maxlifetime',
      '1440',
      '--artifacts-dir',
      join(root, 'artifacts'),
      '--read-through',
    ]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('read-through (migrating) mode');

    // The fleet runs the read-through handler before apply starts (phase 1 of docs/runbook.md).
    rendered = renderInto({ redis: { host: '127.0.0.1', port: redis.port }, readThrough: { savePath: sessions } });
    const stopFile = join(root, 'stop');
    const workers = Array.from({ length: WORKERS }, (_, w) => {
      const own = join(root, `ids-${w}`);
      writeFileSync(own, ids.filter((_, i) => i % WORKERS === w).join('\n') + '\n');
      return run(
        'php',
        [
          '-n',
          '-c',
          rendered.iniFile,
          ...PHP_EXTENSIONS,
          '-d',
          'error_reporting=-1',
          '-d',
          'display_errors=stderr',
          '-d',
          'log_errors=0',
          '-d',
          `error_log=${join(root, `worker-${w}.log`)}`,
          '-d',
          'session.gc_maxlifetime=1440',
          join(PHP_DIR, 'read-through-worker.php'),
          own,
          stopFile,
          '3000',
        ],
        { PATH: process.env.PATH ?? '/usr/bin:/bin', SESSION_MIGRATE_KEY_FILE: keyFile },
      );
    });

    // apply starts while the workers are taking sessions over.
    for (let i = 0; i < 200 && (await redis.client.dbsize()) < 5; i++) await sleep(50);
    const apply = await run(process.execPath, [BIN, 'apply', '--plan', planFile, '--json']);
    writeFileSync(stopFile, '');
    const outs = await Promise.all(workers);

    expect(apply.stderr).toBe('');
    // Keys the handler took over first hold newer sessions: counted as newerInRedis, not conflicts.
    expect(apply.status, apply.stdout).toBe(0);
    const summary = JSON.parse(apply.stdout) as { sessions: { counts: Record<string, number> } };
    const c = summary.sessions.counts;
    expect(c.failed).toBe(0);
    expect(c.conflicts).toBe(0);
    expect(c.newerInRedis).toBeGreaterThan(0);
    expect(c.migrated! + c.alreadyPresent! + c.newerInRedis!).toBe(SESSIONS);

    const writes = new Map<string, number>();
    for (const out of outs) {
      expect(out.stderr).toBe('');
      expect(out.status).toBe(0);
      const w = JSON.parse(out.stdout.trim().split('\n').pop()!) as { writes: Record<string, number>; visits: number; errors: string[] };
      expect(w.errors).toEqual([]);
      for (const [id, n] of Object.entries(w.writes)) writes.set(id, n);
    }
    expect(writes.size).toBe(SESSIONS); // every session was updated by PHP at least once (the last round runs after apply)

    const codec = await EnvelopeCodec.create([readKeyFile(keyFile)]);
    let lost = 0;
    let checked = 0;
    for (const id of ids) {
      const key = codec.keyName(PREFIX, id);
      const value = await redis.client.getBuffer(key);
      const opened = value !== null ? codec.open(key, value) : undefined;
      const n = opened?.ok === true ? sessionN(opened.plaintext) : undefined;
      checked++;
      if (n !== writes.get(id)) lost++;
    }
    expect(checked).toBe(SESSIONS);
    expect(lost).toBe(0);
    // The handler's log names what it took over from files (key names only, never a session ID).
    const logs = Array.from({ length: WORKERS }, (_, w) => join(root, `worker-${w}.log`))
      .filter(existsSync)
      .map((f) => readFileSync(f, 'latin1'))
      .join('');
    const tookOver = logs.split('\n').filter((l) => l.includes('read-through: took over')).length;
    expect(logs.split('\n').filter((l) => l !== '' && !l.includes('read-through: took over'))).toEqual([]);
    for (const id of ids) expect(logs).not.toContain(id);
    // Each session came either from its file through the handler or from apply's copy: both paths ran.
    expect(tookOver + summary.sessions.counts.migrated!).toBeGreaterThanOrEqual(SESSIONS);
    // no plaintext was written: the files are exactly as before
    for (const id of ids) expect(readFileSync(join(sessions, `sess_${id}`)).equals(fileBytes.get(id)!)).toBe(true);
    expect(readdirSync(sessions)).toHaveLength(SESSIONS);
  });
});

describe('(b) HTTP: a migrated user stays logged in through every phase', () => {
  let redis: RedisServer;
  let box: SandboxLayout;
  let php: PhpServer | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    box = createSandbox({ gcMaxlifetime: 1440 });
  });
  afterAll(async () => {
    await php?.stop();
    await redis?.stop();
    if (box) removeSandbox(box);
  });

  interface View {
    handler: string;
    session: Record<string, unknown> | unknown[];
    encoded: string;
  }
  async function view(c: CookieClient, path: string): Promise<View> {
    const res = await c.get(php!.base, path);
    expect(res.status, res.body).toBe(200);
    return JSON.parse(res.body) as View;
  }
  async function restartPhp(withArtifacts: boolean): Promise<void> {
    await php?.stop();
    php = await startPhpServer(
      withArtifacts
        ? { docroot: box.docroot, phpIni: box.phpIni, scanDir: box.artifactsDir, env: { SESSION_MIGRATE_KEY_FILE: box.keyFile } }
        : { docroot: box.docroot, phpIni: box.phpIni },
    );
  }
  const sessionFiles = () => readdirSync(box.sessions).filter((f) => f.startsWith('sess_'));

  /**
   * Sends requests as `client` until `proc` exits (at least one, sent while it runs); every answer
   * must be a logged-in session. Returns how many were sent and the last view.
   */
  async function whileRunning(proc: Promise<CliResult>, client: CookieClient, path: string): Promise<{ requests: number; last: View }> {
    let done = false;
    void proc.then(() => {
      done = true;
    });
    let requests = 0;
    let last: View | undefined;
    do {
      last = await view(client, path);
      requests++;
      expect((last.session as Record<string, unknown>).user).toBe('alice');
    } while (!done);
    return { requests, last };
  }

  it('files -> read-through -> apply -> strict -> purge; a logout before apply stays logged out', async () => {
    // Phase 0: the files handler.
    await restartPhp(false);
    const alice = new CookieClient();
    await view(alice, '/?action=login&user=alice');
    const aliceBefore = await view(alice, '/?action=add&sku=BOOK&qty=2');
    expect(aliceBefore.handler).toBe('files');
    const carol = new CookieClient(); // logs in now, comes back only after apply
    const carolBefore = await view(carol, '/?action=login&user=carol');
    const bob = new CookieClient(); // logs out during the read-through phase, before apply
    await view(bob, '/?action=login&user=bob');
    const bobId = bob.cookies.get('PHPSESSID')!;
    const bobFile = join(box.sessions, `sess_${bobId}`);
    copyFileSync(bobFile, join(box.root, 'bob-session-copy')); // a copy apply may still find (another host, a backup...)
    const dave = new CookieClient(); // logs out after the switch to strict mode
    await view(dave, '/?action=login&user=dave');
    const daveId = dave.cookies.get('PHPSESSID')!;
    expect(sessionFiles()).toHaveLength(4);

    // Phase 1: plan with --read-through, generate the artifacts, deploy (restart PHP with them).
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
      '--gc-maxlifetime',
      '1440',
      '--artifacts-dir',
      box.artifactsDir,
      '--read-through',
    ]);
    expect(plan.status, plan.stderr).toBe(0);
    const gen = cli(['generate', 'php', '--plan', box.planFile]);
    expect(gen.status, gen.stderr).toBe(0);
    expect(gen.stdout).toContain('read-through mode');
    await restartPhp(true);

    const aliceRt = await view(alice, '/?action=whoami');
    expect(aliceRt.handler).toBe('user');
    expect(aliceRt.session).toEqual(aliceBefore.session); // still logged in, served from her old file
    const aliceAdded = await view(alice, '/?action=add&sku=PEN&qty=1'); // now only in encrypted Redis
    expect(JSON.stringify(aliceAdded.session)).toContain('PEN');
    // Bob logs out: the app destroys his session (a page that calls session_destroy()).
    writeFileSync(join(box.docroot, 'logout.php'), '<?php\nsession_start();\n$_SESSION = [];\nsession_destroy();\necho "bye";\n');
    expect((await bob.get(php!.base, '/logout.php')).body).toBe('bye');
    expect(existsSync(bobFile)).toBe(false); // destroy removed the plaintext
    copyFileSync(join(box.root, 'bob-session-copy'), bobFile); // ...but apply still finds a copy of it
    const copied = statSync(join(box.root, 'bob-session-copy'));
    utimesSync(bobFile, copied.atime, copied.mtime); // restored with its mtime, as `cp -p` or a backup would

    // Phase 2: apply while PHP serves (Alice keeps shopping during the copy), then verify.
    const applying = run(process.execPath, [BIN, 'apply', '--plan', box.planFile, '--json']);
    const during = await whileRunning(applying, alice, '/?action=add&sku=DURING-APPLY&qty=1');
    const apply = await applying;
    expect(apply.stderr).toBe('');
    const counts = (JSON.parse(apply.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
    expect(counts.failed).toBe(0);
    expect(counts.destroyed).toBe(1); // Bob's copy met his tombstone
    const verify = cli(['verify', '--plan', box.planFile]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);

    const bobAgain = new CookieClient();
    bobAgain.cookies.set('PHPSESSID', bobId);
    const bobView = await view(bobAgain, '/?action=whoami');
    expect(bobView.session).toEqual([]); // not resurrected
    expect(bobAgain.cookies.get('PHPSESSID')).not.toBe(bobId); // strict mode issued a new ID
    const aliceNow = await view(alice, '/?action=whoami');
    expect(aliceNow.session).toEqual(during.last.session); // every update made during apply is kept
    expect(JSON.stringify(aliceNow.session).split('DURING-APPLY').length - 1).toBe(during.requests);
    expect((await view(carol, '/?action=whoami')).session).toEqual(carolBefore.session); // copied by apply

    // Phase 3: strict mode.
    const strict = cli(['generate', 'php', '--plan', box.planFile, '--strict']);
    expect(strict.status, strict.stderr).toBe(0);
    expect(readFileSync(join(box.artifactsDir, 'session-migrate-bootstrap.php'), 'utf8')).toContain("'readThrough' => null,");
    await restartPhp(true);
    expect((await view(alice, '/?action=whoami')).session).toEqual(aliceNow.session);
    expect((await view(carol, '/?action=whoami')).session).toEqual(carolBefore.session);

    // Dave logs out in strict mode. His file is still there (strict mode never touches the files),
    // so the destroy must leave a tombstone as in read-through mode: else an apply re-run would bring
    // him back from the file, verify would call him missing, purge would refuse his file, and a
    // rollback to files would leave it live.
    expect((await view(dave, '/?action=whoami')).session).toMatchObject({ user: 'dave' });
    expect((await dave.get(php!.base, '/logout.php')).body).toBe('bye');
    expect(existsSync(join(box.sessions, `sess_${daveId}`))).toBe(true);
    const reapply = cli(['apply', '--plan', box.planFile, '--json']);
    expect(reapply.status, reapply.stderr).toBe(0);
    const reapplied = JSON.parse(reapply.stdout) as { generateChoices?: unknown; sessions: { counts: Record<string, number> } };
    expect(reapplied.sessions.counts).toMatchObject({ failed: 0, destroyed: 2 }); // Bob's copy and Dave's file
    // The plan says read-through; the re-run keeps the artifacts in strict mode all the same.
    expect(reapplied.generateChoices).toEqual({ mode: 'strict' });
    expect(readFileSync(join(box.artifactsDir, 'session-migrate-bootstrap.php'), 'utf8')).toContain("'readThrough' => null,");
    const reapplyText = cli(['apply', '--plan', box.planFile]);
    expect(reapplyText.status, reapplyText.stderr).toBe(0);
    expect(reapplyText.stdout).toContain('artifact    as generate php made them: strict mode (generate php --plan PLAN changes them)');
    const daveAgain = new CookieClient();
    daveAgain.cookies.set('PHPSESSID', daveId);
    expect((await view(daveAgain, '/?action=whoami')).session).toEqual([]); // not resurrected
    expect(daveAgain.cookies.get('PHPSESSID')).not.toBe(daveId);
    const reverify = cli(['verify', '--plan', box.planFile, '--json']);
    expect(reverify.status, reverify.stdout + reverify.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(reverify.stdout))).not.toContain('missing-in-redis');
    const back = cli(['rollback', '--plan', box.planFile, '--to', `files:${box.sessions}`, '--dry-run', '--json']);
    expect(back.status, back.stdout + back.stderr).toBe(0);
    // Both tombstones are newer than the files (Dave's file and Bob's restored copy): both would go.
    expect((JSON.parse(back.stdout) as { counts: Record<string, number> }).counts).toMatchObject({
      'destroyed-file-removed': 2,
      'not-in-redis': 0,
    });

    // Phase 4: purge. Every file is proven (same, newer, destroyed), so all plaintext goes.
    const dry = cli(['purge', '--plan', box.planFile, '--dry-run']);
    expect(dry.status, dry.stdout + dry.stderr).toBe(0);
    expect(sessionFiles().length).toBeGreaterThan(0);
    const purging = run(process.execPath, [BIN, 'purge', '--plan', box.planFile, '--json']);
    const duringPurge = await whileRunning(purging, alice, '/?action=whoami');
    expect(duringPurge.last.session).toEqual(aliceNow.session);
    const purge = await purging;
    expect(purge.status, purge.stdout + purge.stderr).toBe(0);
    expect(JSON.parse(purge.stdout)).toMatchObject({ complete: true, remaining: { files: 0, bytes: 0 } });
    expect(sessionFiles()).toEqual([]);
    const aliceAfter = await view(alice, '/?action=add&sku=CUP&qty=3');
    expect(JSON.stringify(aliceAfter.session)).toContain('PEN');
    expect(JSON.stringify(aliceAfter.session)).toContain('CUP');
    expect((await view(carol, '/?action=whoami')).session).toEqual(carolBefore.session);
    expect(sessionFiles()).toEqual([]); // strict mode writes no file
  });
});

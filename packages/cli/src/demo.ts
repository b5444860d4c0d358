/**
 * `session-migrate demo`: the whole operator flow on a throwaway sandbox. Real PHP (`php -S`) writes
 * sessions to files for simulated users, then keys generate -> plan -> apply -> verify run against a
 * local redis-server, PHP restarts with the generated handler and ini fragment, and every user must
 * still see the same session. Prints what happens, never session contents.
 */
import { renameSync, symlinkSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { DEFAULT_GC_MAXLIFETIME, describeFsError, checkWholeNumber } from '@session-migrate/common';
import { DEFAULT_PREFIX } from '@session-migrate/envelope';
import type { Print } from './commands/context.ts';
import { signalExitCode, STOPPING_SIGNALS } from './signal-exit.ts';
import { keysGenerate } from './commands-keys.ts';
import { planCommand } from './commands/plan.ts';
import { applyCommand } from './commands/apply.ts';
import { verifyCommand } from './commands/verify.ts';
import {
  CookieClient,
  createSandbox,
  killSpawnedNow,
  removeSandbox,
  startPhpServer,
  startRedis,
  type PhpServer,
  type RedisServer,
  type SandboxLayout,
} from './sandbox.ts';

const GC_MAXLIFETIME = DEFAULT_GC_MAXLIFETIME;

interface SessionView {
  handler: string;
  session: unknown;
  encoded: string;
}

async function view(client: CookieClient, php: PhpServer, path: string): Promise<SessionView> {
  const res = await client.get(php.base, path);
  if (res.status !== 200) throw new Error(`PHP answered HTTP ${res.status} for ${path.split('&')[0]}`);
  return JSON.parse(res.body) as SessionView;
}

/** What the steps share: the sandbox, its servers, and the printers. */
interface DemoRun {
  layout: SandboxLayout;
  redis: RedisServer;
  print: Print;
  /** Prints a numbered step heading. */
  step: (n: number, text: string) => void;
  /** Prints a line indented under the current step. */
  indent: Print;
  /** Prints ok or FAIL and counts failures. */
  check: (ok: boolean, text: string) => void;
  /** Records a server the demo started, for the signal handler to end (DemoSignals). */
  started: <T extends StartedServer>(server: T) => T;
}

/** The users' sessions before the migration, seen by PHP on the files handler. */
interface Before {
  clients: CookieClient[];
  views: SessionView[];
  /** A user whose session is made older than gc_maxlifetime. */
  stale: CookieClient;
  /** The session files PHP wrote (names `sess_ID`). */
  files: string[];
}

/** Step 2: PHP on the files handler; simulated users log in and fill a cart; realistic leftovers are planted. */
async function sessionsOnFiles(run: DemoRun, users: number): Promise<Before> {
  const { layout } = run;
  const php = run.started(await startPhpServer({ docroot: layout.docroot, phpIni: layout.phpIni }));
  const clients: CookieClient[] = [];
  const views: SessionView[] = [];
  const stale = new CookieClient();
  try {
    run.step(2, `PHP on the files handler (php -S 127.0.0.1:${php.port}): ${users} users log in and fill a cart`);
    for (let i = 0; i < users; i++) {
      const c = new CookieClient();
      await view(c, php, `/?action=login&user=user${i + 1}`);
      await view(c, php, `/?action=add&sku=SKU-${100 + i}&qty=${i + 1}`);
      views.push(await view(c, php, `/?action=add&sku=GIFT-CARD&qty=1`));
      clients.push(c);
    }
    await view(stale, php, '/?action=login&user=gone-home');
  } finally {
    await php.stop();
  }
  // Realistic leftovers: one session past gc_maxlifetime, a stray file and a symlink planted in the directory.
  const files = readdirSync(layout.sessions).filter((f) => f.startsWith('sess_'));
  const staleId = stale.cookies.get('PHPSESSID');
  const old = Date.now() / 1000 - GC_MAXLIFETIME - 60;
  if (staleId !== undefined) utimesSync(join(layout.sessions, `sess_${staleId}`), old, old);
  writeFileSync(join(layout.sessions, 'sess_not.a.session'), 'x');
  symlinkSync('/etc/passwd', join(layout.sessions, 'sess_symlinkedoutsidethedirectory'));
  run.indent(
    `${files.length} plaintext session files written by PHP in ${layout.sessions} (one of them is ${GC_MAXLIFETIME + 60} s old), plus a stray file and a symlink`,
  );
  return { clients, views, stale, files };
}

/** The verify command's arguments for the sandbox (also the checks of steps 8 and 9). */
function verifyArgs(run: DemoRun) {
  return {
    target: run.redis.url,
    key: { kind: 'file' as const, path: run.layout.keyFile },
    prefix: DEFAULT_PREFIX,
    gcMaxlifetime: GC_MAXLIFETIME,
    serializeHandler: 'php' as const,
    json: false,
  };
}

/** Steps 3 to 7: keys generate, plan, apply (twice), verify --source, run as the CLI runs them. */
async function migrate(run: DemoRun, files: readonly string[]): Promise<void> {
  const { layout, redis, step, indent, check } = run;
  step(3, 'session-migrate keys generate');
  await keysGenerate({ out: layout.keyFile }, indent);

  step(4, 'session-migrate plan');
  const planArgs = {
    source: `files:${layout.sessions}`,
    target: redis.url,
    key: { kind: 'file' as const, path: layout.keyFile },
    prefix: DEFAULT_PREFIX,
    out: layout.planFile,
    gcMaxlifetime: GC_MAXLIFETIME,
    serializeHandler: 'php' as const,
    maxSessionBytes: 8 * 1024 * 1024,
    artifactsDir: layout.artifactsDir,
    json: false,
  };
  check((await planCommand(planArgs, indent)) === 0, 'plan written');

  step(5, 'session-migrate apply');
  check((await applyCommand({ plan: layout.planFile, dryRun: false, json: false }, indent)) === 0, 'apply succeeded');
  step(6, 'session-migrate apply (again: must change nothing)');
  check(
    (await applyCommand({ plan: layout.planFile, dryRun: false, json: false }, indent)) === 0,
    'second apply succeeded and changed nothing',
  );

  step(7, 'session-migrate verify --source');
  check(
    (await verifyCommand({ ...verifyArgs(run), source: `files:${layout.sessions}` }, indent)) === 0,
    'verify: every value is an authentic envelope with a TTL, every live session is in Redis',
  );
  const keys = await redis.client.keys('*');
  check(
    keys.every((k) => !files.some((f) => k.includes(f.slice(5)))),
    `no session ID appears in any of the ${keys.length} Redis key names`,
  );
}

/** Step 8: PHP restarts on the generated handler; every user must see the same session, and keep writing. */
async function sessionsOnRedis(run: DemoRun, before: Before): Promise<void> {
  const { layout, step, indent, check } = run;
  const users = before.clients.length;
  step(8, 'PHP restarts with the generated handler and ini fragment; the plaintext directory is moved away');
  renameSync(layout.sessions, layout.sessions + '.old');
  const php = run.started(
    await startPhpServer({
      docroot: layout.docroot,
      phpIni: layout.phpIni,
      scanDir: layout.artifactsDir,
      env: { SESSION_MIGRATE_KEY_FILE: layout.keyFile },
    }),
  );
  try {
    let same = 0;
    for (let i = 0; i < users; i++) {
      const after = await view(before.clients[i]!, php, '/?action=whoami');
      if (
        after.handler === 'user' &&
        isDeepStrictEqual(after.session, before.views[i]!.session) &&
        after.encoded === before.views[i]!.encoded
      )
        same++;
    }
    check(same === users, `${same}/${users} users still logged in with byte-identical session data, served from encrypted Redis`);
    const added = await view(before.clients[0]!, php, '/?action=add&sku=AFTER-MIGRATION&qty=1');
    check(
      added.handler === 'user' && JSON.stringify(added.session).includes('AFTER-MIGRATION'),
      'a user keeps shopping: the handler writes the updated session, encrypted',
    );
    const expired = await view(before.stale, php, '/?action=whoami');
    check(isDeepStrictEqual(expired.session, []), 'the expired session was not carried over (that user starts a fresh session)');
  } finally {
    await php.stop();
  }
  check((await verifyCommand(verifyArgs(run), indent)) === 0, 'verify after PHP wrote through the handler');
}

/**
 * Step 9: a plaintext value planted under the prefix must make verify fail. The demo says first that
 * verify's FAILED report and its FAIL line are expected, so a first reader is not startled by them.
 */
async function tamperCheck(run: DemoRun): Promise<void> {
  const planted = `${DEFAULT_PREFIX}planted`;
  run.step(9, 'tamper check: a plaintext value planted under the prefix');
  await run.redis.client.set(planted, 'user|s:5:"admin";', 'EX', 60);
  run.indent(`next: verify must flag the planted plaintext key ${planted}, so the FAILED report below is expected`);
  const said: string[] = [];
  const code = await verifyCommand(verifyArgs(run), (line) => {
    said.push(line);
    run.indent(line);
  });
  run.check(
    code === 1 && said.some((l) => /^\s*FAIL\s/.test(l) && l.includes(`${planted}: plaintext-session`)),
    `verify caught it: exit 1, and its FAIL line names ${planted}`,
  );
}

/**
 * Takes every `SESSION_MIGRATE_*` variable out of this process's environment (passwords, keys,
 * sentinel users of a real deployment, which the operator may have exported): the sandbox's
 * redis-server has no password, and its PHP servers must read the sandbox's key, never a real one.
 * @returns a function that puts them back.
 */
function hideDeploymentEnvironment(): () => void {
  const hidden: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('SESSION_MIGRATE_') || value === undefined) continue;
    hidden[name] = value;
    delete process.env[name];
  }
  return () => Object.assign(process.env, hidden);
}

/** A server the demo started: its PID, and how a signal handler ends it at once. */
interface StartedServer {
  pid: number;
  killNow(): void;
}

/**
 * While the demo runs, SIGINT (Ctrl-C), SIGTERM and SIGHUP end its servers at once (killNow), remove
 * the sandbox (unless --keep), say so in one stderr line and exit 128 + the signal. Node's default
 * would exit at once and leave redis-server and `php -S` running, and the sandbox's key and plaintext
 * sessions on disk, or, during the clean-up after the last step, end the process without a word.
 * Once `cleaningUp()` is called (the demo's own clean-up has begun), the line says the demo was
 * interrupted during clean-up, which server PIDs are stopped and what is left (the sandbox kept, or a
 * directory that could not be removed). The handlers stay until the process ends: the CLI exits after
 * the demo, and a signal while it winds down (connections closing) still gets its line, except in
 * the last moments of Node's exit, once no handler runs any more: the process then ends with exit 0
 * and no line (the demo passed and its clean-up was done: nothing is left).
 * @returns `cleaningUp`, to call when the clean-up begins.
 */
function onSignalsCleanUp(
  servers: readonly StartedServer[],
  sandbox: () => SandboxLayout | undefined,
  keep: boolean,
): { cleaningUp(): void } {
  let cleaning = false;
  const handler = (signal: NodeJS.Signals): void => {
    for (const s of servers) s.killNow();
    killSpawnedNow(); // a server still starting when the signal came (not in `servers` yet)
    const layout = sandbox();
    const left = layout === undefined ? undefined : keep ? `sandbox kept in ${layout.root}` : removedOrLeft(layout);
    const line = cleaning
      ? `interrupted during the demo's clean-up: its servers are stopped (pid ${servers.map((s) => s.pid).join(', ')}); ${left ?? 'nothing is left'}`
      : `interrupted: demo stopped its servers${left === undefined ? '' : left === REMOVED ? ' and removed the sandbox' : `; ${left}`}`;
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}session-migrate: ${line}\n`);
    process.exit(signalExitCode(signal));
  };
  for (const name of STOPPING_SIGNALS) process.once(name, handler);
  return {
    cleaningUp: () => {
      cleaning = true;
    },
  };
}

const REMOVED = 'the sandbox is removed, nothing is left';

/** Removes the sandbox for a signal handler: REMOVED, or `left DIR (why: remove it by hand)` when it cannot. */
function removedOrLeft(layout: SandboxLayout): string {
  try {
    removeSandbox(layout);
    return REMOVED;
  } catch (err) {
    return `left ${layout.root} (${describeFsError(err)}: remove it by hand)`;
  }
}

/** Runs the demo; returns 0 when every step and check passed. */
export async function demoCommand(options: { users: number; keep: boolean }, print: Print): Promise<number> {
  checkWholeNumber('users', options.users, 1, 200);
  let redis: RedisServer | undefined;
  let layout: SandboxLayout | undefined;
  let failures = 0;
  const servers: StartedServer[] = [];
  const started = <T extends StartedServer>(server: T): T => {
    servers.push(server);
    return server;
  };
  const restoreEnvironment = hideDeploymentEnvironment();
  const signals = onSignalsCleanUp(servers, () => layout, options.keep);
  try {
    layout = createSandbox({ gcMaxlifetime: GC_MAXLIFETIME });
    redis = started(await startRedis());
    const run: DemoRun = {
      started,
      layout,
      redis,
      print,
      step: (n, text) => print(`\n[${n}] ${text}`),
      indent: (line) => print(`    ${line}`),
      check: (ok, text) => {
        if (!ok) failures++;
        print(`    ${ok ? 'ok  ' : 'FAIL'} ${text}`);
      },
    };
    run.step(1, `sandbox in ${layout.root}; redis-server on 127.0.0.1:${redis.port} (pid ${redis.pid}, no persistence)`);
    const before = await sessionsOnFiles(run, options.users);
    await migrate(run, before.files);
    await sessionsOnRedis(run, before);
    await tamperCheck(run);
    print(
      failures === 0
        ? '\ndemo passed: sessions moved from plaintext files into encrypted Redis without logging anyone out'
        : `\ndemo FAILED: ${failures} check(s) failed`,
    );
    return failures === 0 ? 0 : 1;
  } finally {
    signals.cleaningUp();
    await redis?.stop();
    if (layout !== undefined) {
      if (options.keep) print(`sandbox kept in ${layout.root} (files to read; its redis-server is stopped)`);
      else removeSandbox(layout);
    }
    restoreEnvironment();
  }
}

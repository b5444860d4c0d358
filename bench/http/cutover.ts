/**
 * The cutover under load (issue 11 item 7), as proof of "without logging anyone out":
 *
 *   npm run bench:cutover                                  (2,000 sessions, 32 clients, 10 s per phase)
 *   npm run bench:cutover -- --sessions 200 --phase 2      (quick)
 *
 * A bounded Node client keeps N sessions busy through nginx + php-fpm (real session cookies, a
 * keep-alive connection pool, at most one request in flight per session as a browser tab) while the
 * fleet goes through docs/runbook.md, driven by the CLI of this checkout as an operator would. Half
 * the users stay active throughout; a quarter leave after the files phase and come back once apply
 * has copied their file, a quarter come back only in strict mode (nothing but apply's copy can keep
 * them logged in):
 *
 *   files      the `files` handler over a plaintext session directory; the sessions are created here
 *   read-through  `plan --read-through`, `generate php --plan`; php-fpm reloaded (SIGUSR2) with the
 *              generated ini fragment(s) and SESSION_MIGRATE_KEY_FILE in the pool's env[]
 *   apply      `apply --plan` runs while the load goes on, then `verify --plan`
 *   strict     `generate php --plan --strict`; php-fpm reloaded
 *
 * Every answer is checked: a Set-Cookie with another session ID, or a session that comes back empty,
 * is a logout; a counter that does not go up by exactly one per 2xx answer (and, at the end, the
 * counter each session holds) gives the updates lost; every other status, and every failed
 * request, is counted as non-2xx. Goal: 0, 0, 0. test/cutover-under-load.test.ts runs a small
 * version and asserts it.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startRedis, type RedisServer } from '../../packages/cli/src/sandbox.ts';
import { makeDocroot, startPhpStack, type IniSettings, type PhpStack } from '../../test/support/http.ts';
import { APP_PHP, SessionHttp, artifactIniFiles, cli, cliOk, createSessions, parseView, pool } from './common.ts';

export interface CutoverOptions {
  /** Sessions kept busy. Default 2000. */
  sessions?: number;
  /** Requests in flight at once (each on its own session). Default 32. */
  concurrency?: number;
  /** How long the load runs in each phase before the next step, in ms. Default 10000. */
  phaseMs?: number;
  /** php-fpm workers. Default 4. */
  workers?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /**
   * An operator's mistake, for the tests that prove the counts can fail (never in the benchmark):
   * 'skip-apply' goes to strict mode without apply (users away since the files phase are logged out);
   * 'files-again' goes back to the files handler instead of strict mode, without `rollback`
   * (updates made in Redis are lost); 'no-key' deploys read-through without the key in env[]
   * (session_start() fails: non-2xx).
   */
  fault?: 'skip-apply' | 'files-again' | 'no-key';
}

export interface PhaseStats {
  phase: string;
  /** Answers received in this phase (requests sent while it was current). */
  requests: number;
  logouts: number;
  non2xx: number;
  /** session.save_handler values the application reported, with counts. */
  handlers: Record<string, number>;
}

export interface CutoverResult {
  sessions: number;
  requests: number;
  /** Answers that set a new session cookie, or showed an empty session, for a session that existed; plus sessions missing at the end. */
  logouts: number;
  /** Increments answered with 2xx that the session does not hold. */
  lostUpdates: number;
  /** Answers other than 2xx, and requests that got no answer. */
  non2xx: number;
  phases: PhaseStats[];
  /** apply --json's session counts and exit status; verify's exit status. */
  apply: { status: number; counts: Record<string, number> };
  verify: { status: number; output: string };
  /** PHP error log lines that say the read-through handler took a session over from its file. */
  tookOver: number;
  /** Every other line of the PHP error log (none expected). */
  otherPhpErrors: string[];
  /** The first problems seen (phase, session index, what), for a report; never a session ID. */
  problems: string[];
  seconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface SessionState {
  sid: string;
  /** The counter the session holds after the last 2xx answer. */
  expected: number;
  /** When the user comes back: 'now' (active throughout), after apply, or only in strict mode. */
  returns: 'now' | 'after-apply' | 'in-strict';
  /** Not sent while true (the user is away). */
  away: boolean;
  /** Away and not in the idle pool (put back when the user returns). */
  parked: boolean;
}

/**
 * Runs the whole scenario with its own redis-server, php-fpm and nginx (temp dirs, loopback, stopped
 * by PID) and returns the counts. Throws only when a server or a CLI step that must succeed fails
 * (plan, generate); apply's and verify's outcome is returned.
 */
export async function runCutover(options: CutoverOptions = {}): Promise<CutoverResult> {
  const N = options.sessions ?? 2000;
  const concurrency = options.concurrency ?? 32;
  const phaseMs = options.phaseMs ?? 10_000;
  const log = options.log ?? ((): void => undefined);
  const t0 = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'sm-cutover-'));
  let redis: RedisServer | undefined;
  let stack: PhpStack | undefined;
  let http: SessionHttp | undefined;
  let running = false;
  let lanes: Array<Promise<void>> = [];
  let docroot: string | undefined;
  try {
    redis = await startRedis();
    const sessionsDir = join(root, 'sessions');
    mkdirSync(sessionsDir, { mode: 0o700 });
    docroot = makeDocroot({ 'index.php': APP_PHP });
    const keyFile = join(root, 'master.key');
    const planFile = join(root, 'plan.json');
    const artifactsDir = join(root, 'artifacts');
    const baseIni: IniSettings = {
      'session.save_handler': 'files',
      'session.save_path': sessionsDir,
      'session.serialize_handler': 'php',
      'session.gc_maxlifetime': 1440,
      'session.lazy_write': 1,
    };
    stack = await startPhpStack({ docroot, fpm: { workers: options.workers ?? 4, ini: baseIni } });
    http = new SessionHttp(stack.base, concurrency + 4);

    // Phase 0: the files handler; the users log in.
    log(`files: creating ${N} sessions`);
    const { ids } = await createSessions(http, N, Math.min(concurrency, 16));
    // Half the users stay active throughout. The others leave after the files phase: a quarter come back
    // once apply has copied their file (read-through still on), a quarter only in strict mode, where
    // nothing but apply's copy can keep them logged in.
    const state: SessionState[] = ids.map((sid, k) => ({
      sid,
      expected: 0,
      away: false,
      parked: false,
      returns: k % 4 === 1 ? ('after-apply' as const) : k % 4 === 3 ? ('in-strict' as const) : ('now' as const),
    }));

    const phases: PhaseStats[] = [];
    let current: PhaseStats;
    const enter = (phase: string): void => {
      current = { phase, requests: 0, logouts: 0, non2xx: 0, handlers: {} };
      phases.push(current);
      log(`phase: ${phase}`);
    };
    enter('files');
    let lost = 0;
    const problems: string[] = [];
    const problem = (p: PhaseStats, k: number, what: string): void => {
      if (problems.length < 20) problems.push(`${p.phase}: session ${k}: ${what}`);
    };

    // The load: `concurrency` lanes, each takes an idle session at random, sends one `hit`, checks it.
    running = true;
    const idle: number[] = state.map((_, k) => k);
    const takeIdle = (): number | undefined => {
      if (idle.length === 0) return undefined;
      const i = Math.floor(Math.random() * idle.length);
      const k = idle[i]!;
      idle[i] = idle[idle.length - 1]!;
      idle.pop();
      return k;
    };
    const lane = async (): Promise<void> => {
      while (running) {
        const k = takeIdle();
        if (k === undefined) {
          await sleep(1);
          continue;
        }
        const s = state[k]!;
        const p = current;
        try {
          const a = await http!.get('/index.php?a=hit', s.sid);
          p.requests++;
          const v = parseView(a.body);
          if (a.status < 200 || a.status > 299) {
            p.non2xx++;
            problem(p, k, `HTTP ${a.status} ${a.body.trim().slice(0, 120)}`);
          } else if ((a.setCookie !== undefined && a.setCookie !== s.sid) || v?.missing === true) {
            p.logouts++;
            problem(p, k, a.setCookie !== undefined ? 'answered with a new session cookie' : 'the session came back empty');
            // The browser takes the new cookie; the user logs in again.
            const again = await http!.get(`/index.php?a=new&k=${k}`, a.setCookie ?? s.sid);
            s.sid = again.setCookie ?? a.setCookie ?? s.sid;
            s.expected = 0;
          } else if (v?.n === undefined) {
            p.non2xx++;
            problem(p, k, `unexpected answer ${a.body.trim().slice(0, 120)}`);
          } else {
            if (v.h !== undefined) p.handlers[v.h] = (p.handlers[v.h] ?? 0) + 1;
            if (v.n !== s.expected + 1) {
              if (v.n < s.expected + 1) lost += s.expected + 1 - v.n;
              problem(p, k, `counter ${v.n} after ${s.expected}`);
            }
            s.expected = v.n;
          }
        } catch (err) {
          p.requests++;
          p.non2xx++;
          problem(p, k, `no answer: ${(err as Error).message}`);
        } finally {
          if (s.away) s.parked = true;
          else idle.push(k);
        }
      }
    };
    const leave = (group: SessionState['returns']): void => {
      state.forEach((s, k) => {
        if (s.returns !== group) return;
        s.away = true;
        const i = idle.indexOf(k);
        if (i >= 0) {
          idle.splice(i, 1);
          s.parked = true;
        }
      });
    };
    const comeBack = (group: SessionState['returns']): void => {
      state.forEach((s, k) => {
        if (s.returns !== group) return;
        s.away = false;
        if (s.parked) {
          s.parked = false;
          idle.push(k);
        }
      });
    };
    lanes = Array.from({ length: concurrency }, () => lane());
    await sleep(phaseMs);

    // Phase 1: plan with --read-through, generate, reload php-fpm with the artifacts.
    leave('after-apply');
    leave('in-strict');
    await cliOk(['keys', 'generate', '--out', keyFile]);
    await cliOk([
      'plan',
      '--source',
      `files:${sessionsDir}`,
      '--target',
      redis.url,
      '--key-file',
      keyFile,
      '--out',
      planFile,
      '--gc-maxlifetime',
      '1440',
      '--artifacts-dir',
      artifactsDir,
      '--read-through',
    ]);
    await cliOk(['generate', 'php', '--plan', planFile]);
    const env = { SESSION_MIGRATE_KEY_FILE: keyFile };
    await stack.fpm.reload({ iniFiles: artifactIniFiles(planFile), env: options.fault === 'no-key' ? {} : env });
    enter('read-through');
    await sleep(phaseMs);

    // Phase 2: apply while the load goes on, then verify.
    if (options.fault === 'no-key') await stack.fpm.reload({ env });
    let applied = { status: -1, stdout: '', stderr: 'not run' };
    let verified = { status: -1, stdout: '', stderr: 'not run' };
    let counts: Record<string, number> = {};
    if (options.fault !== 'skip-apply') {
      enter('read-through, apply running');
      applied = await cli(['apply', '--plan', planFile, '--json']);
      try {
        counts = (JSON.parse(applied.stdout) as { sessions: { counts: Record<string, number> } }).sessions.counts;
      } catch {
        problems.push(`apply printed no JSON (exit ${applied.status}): ${applied.stderr.trim().slice(0, 300)}`);
      }
      log(`apply: exit ${applied.status} ${JSON.stringify(counts)}`);
      verified = await cli(['verify', '--plan', planFile]);
      log(`verify: exit ${verified.status}`);
    }
    enter('read-through, after apply');
    comeBack('after-apply');
    await sleep(phaseMs);

    // Phase 3: strict mode.
    if (options.fault === 'files-again') {
      await stack.fpm.reload({ iniFiles: [], env: {} });
      enter('files again (fault)');
    } else {
      await cliOk(['generate', 'php', '--plan', planFile, '--strict']);
      await stack.fpm.reload({ iniFiles: artifactIniFiles(planFile), env });
      enter('strict');
    }
    comeBack('in-strict');
    await sleep(phaseMs);

    running = false;
    await Promise.all(lanes);

    // Every session must still hold every increment that was answered with 2xx.
    let missingAtEnd = 0;
    await pool(state.length, Math.min(concurrency, 16), async (k) => {
      const s = state[k]!;
      try {
        const a = await http!.get('/index.php?a=peek', s.sid);
        const v = parseView(a.body);
        if (a.status !== 200 || v === undefined) {
          current.non2xx++;
          problem(current, k, `final read: HTTP ${a.status}`);
        } else if (v.missing === true || (a.setCookie !== undefined && a.setCookie !== s.sid)) {
          missingAtEnd++;
          problem(current, k, 'final read: the session is gone');
        } else if ((v.n ?? 0) < s.expected) {
          lost += s.expected - (v.n ?? 0);
          problem(current, k, `final read: counter ${v.n} but ${s.expected} increments were answered`);
        }
      } catch (err) {
        current.non2xx++;
        problem(current, k, `final read: no answer: ${(err as Error).message}`);
      }
    });

    const lines = stack.fpm
      .readErrorLog()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const tookOver = lines.filter((l) => l.includes('read-through: took over')).length;
    const requests = phases.reduce((s, p) => s + p.requests, 0);
    return {
      sessions: N,
      requests,
      logouts: phases.reduce((s, p) => s + p.logouts, 0) + missingAtEnd,
      lostUpdates: lost,
      non2xx: phases.reduce((s, p) => s + p.non2xx, 0),
      phases,
      apply: { status: applied.status, counts },
      verify: { status: verified.status, output: (verified.stdout + verified.stderr).trim() },
      tookOver,
      otherPhpErrors: lines.filter((l) => !l.includes('read-through: took over')).slice(0, 50),
      problems,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    running = false;
    await Promise.all(lanes);
    http?.close();
    await stack?.stop();
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
    if (docroot !== undefined) rmSync(docroot, { recursive: true, force: true });
  }
}

/** Prints a result as the bench does. */
export function formatCutover(r: CutoverResult): string[] {
  const out = [
    `cutover under load: ${r.sessions} sessions, ${r.requests} requests in ${r.seconds.toFixed(1)} s`,
    ...r.phases.map(
      (p) =>
        `  ${p.phase.padEnd(28)} ${String(p.requests).padStart(7)} answers  logouts ${p.logouts}  non-2xx ${p.non2xx}  handler ${
          Object.entries(p.handlers)
            .map(([h, n]) => `${h} ${n}`)
            .join(', ') || '-'
        }`,
    ),
    `  apply       exit ${r.apply.status}  ${Object.entries(r.apply.counts)
      .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(', ')}`,
    `  verify      exit ${r.verify.status}`,
    `  read-through took over ${r.tookOver} session file(s); other PHP error log lines: ${r.otherPhpErrors.length}`,
    `  RESULT      logouts ${r.logouts}, updates lost ${r.lostUpdates}, non-2xx ${r.non2xx}   (goal: 0, 0, 0)`,
  ];
  for (const p of r.problems.slice(0, 10)) out.push(`  problem     ${p}`);
  for (const l of r.otherPhpErrors.slice(0, 5)) out.push(`  php log     ${l.slice(0, 200)}`);
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: number): number => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? Number(argv[i + 1]) : def;
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: a positive number`);
    return v;
  };
  const r = await runCutover({
    sessions: opt('sessions', 2000),
    concurrency: opt('concurrency', 32),
    phaseMs: opt('phase', 10) * 1000,
    workers: opt('workers', 4),
    log: (l) => console.log(`  ... ${l}`),
  });
  for (const l of formatCutover(r)) console.log(l);
  process.exitCode = r.logouts === 0 && r.lostUpdates === 0 && r.non2xx === 0 && r.apply.status === 0 && r.verify.status === 0 ? 0 : 1;
}

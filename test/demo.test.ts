/**
 * `session-migrate demo` as an operator runs it (README "Try it"): from a shell where a real
 * deployment's variables may be exported, and stopped with Ctrl-C (SIGINT) or SIGTERM halfway. Each
 * run gets its own TMPDIR, so what the demo leaves on disk can be listed; the servers it starts are
 * named by the PID and port it prints.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SOURCE_BIN as BIN } from './support/migrate-cli.ts';

const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-demo-test-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

/**
 * tsx's compile cache, shared by every run below: tsx keeps it in TMPDIR/tsx-<euid> (its
 * temporary-directory module), and each run gets a fresh TMPDIR, so each would compile every source
 * again (about 0.7 s of CPU a run). Not the demo's: leftovers() leaves it out.
 */
const tsxCache = join(scratchRoot, 'tsx-cache');
mkdirSync(tsxCache);

/** A fresh TMPDIR for one demo run, holding only the link to the shared tsx cache. */
function demoTmp(prefix: string): string {
  const tmp = mkdtempSync(join(scratchRoot, prefix));
  symlinkSync(tsxCache, join(tmp, `tsx-${process.geteuid?.() ?? userInfo().username}`));
  return tmp;
}

/** The environment of a shell where a real deployment's variables are exported (none may reach the sandbox). */
function deploymentEnv(tmp: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TMPDIR: tmp,
    SESSION_MIGRATE_REDIS_PASSWORD: 'prod-password-must-not-be-used',
    SESSION_MIGRATE_SENTINEL_PASSWORD: 'prod-sentinel-password',
    // A real 32-byte key (base64): the sandbox's PHP must read the sandbox's key file, not this.
    SESSION_MIGRATE_KEY: Buffer.alloc(32, 7).toString('base64'),
  };
}

/** What the demo left in TMPDIR (tsx's own cache directory, tsx-UID, is not the demo's). */
function leftovers(tmp: string): string[] {
  return readdirSync(tmp).filter((f) => !f.startsWith('tsx-'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Running, not a zombie (a killed child waits to be reaped: kill(pid, 0) still succeeds then); proc(5) stat. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The PIDs of `parent`'s children whose command line contains `word` (proc(5):
 * /proc/PID/task/TID/children, /proc/PID/cmdline).
 */
function childrenWith(parent: number, word: string): number[] {
  try {
    const kids = readFileSync(`/proc/${parent}/task/${parent}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.filter((k) => {
      try {
        return readFileSync(`/proc/${k}/cmdline`, 'latin1').split('\0').includes(word);
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('session-migrate demo', () => {
  it('SIGTERM while redis-server is still starting (spawned, not yet answering): the server is killed too, nothing is left', async () => {
    const tmp = demoTmp('early-');
    const child = spawn(process.execPath, [BIN, 'demo', '--users', '2'], { env: { ...process.env, TMPDIR: tmp } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // The moment redis-server is spawned (the server, with --port; not the `redis-server --version`
    // probe before it): before startRedis returned it to the demo.
    let redisPid: number | undefined;
    for (let i = 0; i < 20_000 && redisPid === undefined && child.exitCode === null; i++) {
      redisPid = childrenWith(child.pid!, '--port')[0];
      if (redisPid === undefined) await new Promise((r) => setTimeout(r, 1));
    }
    expect(redisPid).toBeDefined();
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(err).toBe('session-migrate: interrupted: demo stopped its servers and removed the sandbox\n');
    for (let i = 0; i < 50 && running(redisPid!); i++) await new Promise((r) => setTimeout(r, 100));
    expect(running(redisPid!)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("passes in a shell with a deployment's SESSION_MIGRATE_* variables exported, and prints none of them", () => {
    const tmp = demoTmp('env-');
    const env = deploymentEnv(tmp);
    const r = spawnSync(process.execPath, [BIN, 'demo', '--users', '2'], { encoding: 'utf8', env, timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('demo passed');
    expect(r.status).toBe(0);
    // step 9's FAIL line is announced as expected before it, and judged after it
    const tamper = r.stdout.slice(r.stdout.indexOf('[9] tamper check'));
    const told = tamper.indexOf('next: verify must flag the planted plaintext key smsess:planted, so the FAILED report below is expected');
    const fail = tamper.indexOf('FAIL        smsess:planted: plaintext-session');
    const caught = tamper.indexOf('ok   verify caught it: exit 1, and its FAIL line names smsess:planted');
    expect([told > 0, fail > told, caught > fail]).toEqual([true, true, true]);
    for (const secret of [env.SESSION_MIGRATE_REDIS_PASSWORD!, env.SESSION_MIGRATE_SENTINEL_PASSWORD!, env.SESSION_MIGRATE_KEY!])
      expect(r.stdout + r.stderr).not.toContain(secret);
    expect(leftovers(tmp)).toEqual([]);
  });

  // A signal during the clean-up after the last step (operator review): after "demo passed", while
  // redis-server stops and the sandbox goes; and with --keep after "sandbox kept in", while the
  // process winds down. It ended with no line (killed by the signal: Node's default once the handlers
  // were removed); now one line says so, names the stopped servers' PIDs and what is left.
  for (const keep of [false, true]) {
    it(`SIGTERM during clean-up${keep ? ' (--keep, after "sandbox kept in")' : ' (after "demo passed")'}: one line naming the stopped servers and what is left, exit 143`, async () => {
      const tmp = demoTmp('cleanup-');
      const child = spawn(process.execPath, [BIN, 'demo', '--users', '2', ...(keep ? ['--keep'] : [])], {
        env: { ...process.env, TMPDIR: tmp },
      });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const when = keep ? /sandbox kept in (\S+)/ : /demo passed/;
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (when.test(out)) resolve();
        });
        child.once('exit', () => reject(new Error(`demo ended before clean-up: ${out}${err}`)));
      });
      child.kill('SIGTERM');
      const code = await exited;
      const redisPid = Number(/redis-server on 127\.0\.0\.1:\d+ \(pid (\d+)/.exec(out)![1]);
      const kept = keep ? /sandbox kept in (\S+)/.exec(out)![1]! : undefined;
      // Killed by the signal (code null), never: the handler says so and exits 143. With --keep the
      // demo's work is over; a signal that lands while Node itself ends the process (after its event
      // loop drained, where no handler runs any more) finds it exiting 0 with nothing to say.
      if (keep && code === 0) expect(err).toBe('');
      else {
        expect(code, out + err).toBe(143);
        expect(err).toMatch(
          new RegExp(
            `^session-migrate: interrupted during the demo's clean-up: its servers are stopped \\(pid ${redisPid}, \\d+, \\d+\\); ${keep ? `sandbox kept in ${kept!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}` : 'the sandbox is removed, nothing is left'}\n$`,
          ),
        );
      }
      for (let i = 0; i < 50 && running(redisPid); i++) await new Promise((r) => setTimeout(r, 100));
      expect(running(redisPid)).toBe(false);
      expect(leftovers(tmp)).toEqual(keep ? [basename(kept!)] : []);
    });
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} halfway stops redis-server and php -S, removes the sandbox, says so in one line and exits 128 + signal`, async () => {
      const tmp = demoTmp('sig-');
      const child = spawn(process.execPath, [BIN, 'demo', '--users', '200'], { env: { ...process.env, TMPDIR: tmp } });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      // Step [2] runs PHP on the files handler while redis-server is up: interrupt there.
      const seen = await new Promise<{ redisPid: number; redisPort: number; phpPort: number }>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const redis = /redis-server on 127\.0\.0\.1:(\d+) \(pid (\d+)/.exec(out);
          const php = /php -S 127\.0\.0\.1:(\d+)\)/.exec(out);
          if (redis !== null && php !== null) resolve({ redisPid: Number(redis[2]), redisPort: Number(redis[1]), phpPort: Number(php[1]) });
        });
        child.once('exit', () => reject(new Error(`demo ended before step 2: ${out}${err}`)));
      });
      expect(alive(seen.redisPid)).toBe(true);
      child.kill(signal);
      const code = await exited;
      expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(err).toBe('session-migrate: interrupted: demo stopped its servers and removed the sandbox\n');
      // SIGKILL is delivered at once, but the kernel reaps a killed process's port a moment later.
      for (let i = 0; i < 50 && (alive(seen.redisPid) || (await listening(seen.phpPort))); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(alive(seen.redisPid)).toBe(false);
      expect(await listening(seen.redisPort)).toBe(false);
      expect(await listening(seen.phpPort)).toBe(false);
      expect(leftovers(tmp)).toEqual([]);
    });
  }
});

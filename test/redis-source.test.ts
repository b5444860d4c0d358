/**
 * `--source redis:...`: plaintext sessions that real PHP wrote through phpredis's `redis` save handler
 * (with a prefix, a database and a password in its save_path, test/fixtures/cases/BUG-17) are planned,
 * applied into encrypted keys on the same server (another prefix), with their TTLs kept; verify fails
 * while any plaintext key remains and passes once they are removed (the purge primitive
 * removeIfUnchanged, which refuses a value that changed). Plus the save_path parse rules of BUG-17.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { openRedisSource, parseRedisSourceSpec, type SourceSession } from '@session-migrate/sources';
import { startRedis, type RedisServer } from './support/servers.ts';
import { caseFile } from './support/fixtures.ts';
import { BIN } from './support/migrate-cli.ts';

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('parseRedisSourceSpec: phpredis save_path rules (test/fixtures/cases/BUG-17)', () => {
  interface Case {
    save_path: string;
    parsed: Array<Record<string, unknown>>;
    finding?: { id: string };
  }
  const expected = JSON.parse(readFileSync(caseFile('BUG-17', 'expected.json'), 'utf8')) as { expected_toolkit: { cases: Case[] } };

  for (const c of expected.expected_toolkit.cases) {
    it(`${c.save_path}`, () => {
      const savePath = c.save_path;
      if (c.parsed.length > 1) {
        // ',' splits servers: refused, and the message does not repeat the password.
        expect(() => parseRedisSourceSpec(savePath, {})).toThrow(/names 2 servers/);
        try {
          parseRedisSourceSpec(savePath, {});
        } catch (err) {
          expect((err as Error).message).not.toContain('ab,cd');
          // An error names the password without its length (the plan's and reports' spec keeps
          // BUG-17's `<redacted len=N>`, asserted below).
          expect((err as Error).message).toContain('auth=***');
          expect((err as Error).message).not.toContain('len=');
        }
        return;
      }
      const want = c.parsed[0]!;
      const p = parseRedisSourceSpec(savePath, {});
      if ('host' in want) expect(p.description.host).toBe(want.host);
      if ('port' in want) expect(p.description.port).toBe(want.port);
      expect(p.password).toBe(want.auth);
      expect(p.description.db).toBe((want.database as number | undefined) ?? 0);
      expect(p.description.prefix).toBe((want.prefix as string | undefined) ?? 'PHPREDIS_SESSION:');
      expect(p.description.auth).toBe(true);
      // Redacted everywhere: the printable spec names the length, never the password.
      expect(p.description.spec).not.toContain(`=${String(want.auth)}`);
      expect(p.description.spec).toContain(`<redacted len=${String(want.auth).length}>`);
    });
  }

  it('redis:// URLs, the auth array form, the environment password, bad specs', () => {
    const u = parseRedisSourceSpec('redis://:s3cret@127.0.0.1:7000/3?prefix=app%3A', {});
    expect(u.description).toMatchObject({
      host: '127.0.0.1',
      port: 7000,
      db: 3,
      prefix: 'app:',
      url: 'redis://127.0.0.1:7000/3',
      auth: true,
    });
    expect(u.password).toBe('s3cret');
    expect(u.description.spec).not.toContain('s3cret');
    const arr = parseRedisSourceSpec('tcp://h:1?auth[]=user&auth[]=pa%2Css', {});
    expect(arr).toMatchObject({ username: 'user', password: 'pa,ss' });
    expect(arr.description.spec).not.toContain('pa%2Css');
    const env = parseRedisSourceSpec('tcp://h:1', { SESSION_MIGRATE_SOURCE_REDIS_PASSWORD: 'fromenv' });
    expect(env.password).toBe('fromenv');
    expect(env.description.prefix).toBe('PHPREDIS_SESSION:');
    expect(() => parseRedisSourceSpec('unix:///run/redis.sock', {})).toThrow(/not understood/);
    expect(() => parseRedisSourceSpec('tcp://h:1?prefix=', {})).toThrow(/empty prefix/);
    expect(() => parseRedisSourceSpec('tcp://h:1?database=x', {})).toThrow(/not a number/);
  });
});

describe('plaintext phpredis sessions as the source', () => {
  const password = 'ab+cd';
  const sourceSpec = (port: number) => `redis:tcp://127.0.0.1:${port}?database=2&prefix=shop%3Asess%3A&auth=ab%2Bcd&timeout=2.5`;
  let redis: RedisServer;
  let root: string;
  let keyFile: string;
  let codec: EnvelopeCodec;
  const ids = Array.from({ length: 6 }, (_, i) => `phpredis${String(i).padStart(18, '0')}`);

  beforeAll(async () => {
    redis = await startRedis();
    await redis.client.config('SET', 'requirepass', password);
    root = mkdtempSync(join(tmpdir(), 'sm-redis-source-'));
    keyFile = join(root, 'master.key');
    expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
    codec = await EnvelopeCodec.create([readKeyFile(keyFile)]);
    // Real PHP writes the sessions through phpredis, with the save_path of BUG-17.
    for (const [i, id] of ids.entries()) {
      const r = spawnSync(
        'php',
        [
          '-d',
          'session.save_handler=redis',
          // Quoted: unquoted, the ini scanner would read `&` as an operator.
          '-d',
          `session.save_path="tcp://127.0.0.1:${redis.port}?database=2&prefix=shop%3Asess%3A&auth=ab%2Bcd"`,
          '-d',
          'session.gc_maxlifetime=900',
          '-r',
          'session_id($argv[1]); session_start(); $_SESSION["user"] = $argv[1]; $_SESSION["n"] = (int) $argv[2]; $_SESSION["name"] = "Zoë"; session_write_close(); echo "ok";',
          id,
          String(i),
        ],
        { encoding: 'utf8' },
      );
      expect(r.stdout + r.stderr).toBe('ok');
    }
  });
  afterAll(async () => {
    await redis.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('plan, apply, verify: TTLs kept, plaintext fails verify until removed, no password anywhere', async () => {
    await redis.client.select(2);
    expect((await redis.client.keys('shop:sess:*')).sort()).toEqual(ids.map((id) => `shop:sess:${id}`).sort());
    await redis.client.pexpire(`shop:sess:${ids[1]}`, 500_000);
    await redis.client.persist(`shop:sess:${ids[2]}`);
    // Not a session: another type, and a lock key of phpredis.
    await redis.client.rpush('shop:sess:listkey000000000000', 'x');
    await redis.client.set(`shop:sess:${ids[0]}_LOCK`, '1', 'EX', 3600);

    const env = { SESSION_MIGRATE_REDIS_PASSWORD: password };
    const target = `redis://127.0.0.1:${redis.port}/2`;
    const planFile = join(root, 'plan.json');
    const base = ['--target', target, '--key-file', keyFile, '--gc-maxlifetime', '900'];
    // Same server and database with an overlapping prefix: refused.
    const overlap = cli(
      ['plan', '--source', sourceSpec(redis.port), ...base, '--prefix', 'shop:sess:enc:', '--out', join(root, 'x.json')],
      env,
    );
    expect(overlap.status).toBe(2);
    expect(overlap.stderr).toMatch(/overlap/);

    const plan = cli(['plan', '--source', sourceSpec(redis.port), ...base, '--out', planFile, '--artifacts-dir', join(root, 'art')], env);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/6 to migrate/);
    expect(plan.stdout).toMatch(/1 source key\(s\) have no TTL: they get gc_maxlifetime \(900 s\)/);
    expect(plan.stdout).toMatch(/wrong-type 1/);
    const planText = readFileSync(planFile, 'utf8');
    for (const text of [planText, plan.stdout, plan.stderr]) {
      expect(text).not.toContain('ab+cd');
      expect(text).not.toContain('ab%2Bcd');
    }
    expect(planText).toContain('<redacted len=5>');

    // apply reopens the source from the plan: the password comes from the environment.
    const noPass = cli(['apply', '--plan', planFile], env);
    expect(noPass.status).toBe(2);
    expect(noPass.stderr).toMatch(/cannot connect to the source Redis.*SESSION_MIGRATE_SOURCE_REDIS_PASSWORD/);
    const sourcePttl = new Map<string, number>();
    for (const id of ids) sourcePttl.set(id, await redis.client.pttl(`shop:sess:${id}`));
    const applyEnv = { ...env, SESSION_MIGRATE_SOURCE_REDIS_PASSWORD: password };
    const apply = cli(['apply', '--plan', planFile, '--json'], applyEnv);
    expect(apply.status, apply.stderr).toBe(0);
    const counts = (JSON.parse(apply.stdout) as { sessions: { counts: { migrated: number; noTtl: number } } }).sessions.counts;
    expect(counts).toMatchObject({ migrated: 6, noTtl: 1 });
    // The list key and the _LOCK key are keys of the source, not files (before: "skipped files").
    const again = cli(['apply', '--plan', planFile], applyEnv);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /^ {2}not copied {2}0 expired, 0 empty, 0 that PHP would reject; skipped keys: (wrong-type 1, bad-session-id 1|bad-session-id 1, wrong-type 1)$/m,
    );
    for (const id of ids) {
      const key = codec.keyName('smsess:', id);
      const opened = codec.open(key, (await redis.client.getBuffer(key))!);
      expect(opened.ok && opened.plaintext.equals((await redis.client.getBuffer(`shop:sess:${id}`))!)).toBe(true);
      const [pttl, now] = [await redis.client.pttl(key), await redis.client.pttl(`shop:sess:${id}`)];
      if (id === ids[2]) {
        // No TTL in the source: gc_maxlifetime (900 s), said in the plan and the apply summary.
        expect(now).toBe(-1);
        expect(900_000 - pttl).toBeLessThan(30_000);
        expect(pttl).toBeLessThanOrEqual(900_000);
      } else {
        // Kept exactly (PX from the PTTL read): source and copy expire within 2 s of each other.
        expect(Math.abs(pttl - now)).toBeLessThan(2_000);
        expect(pttl).toBeLessThanOrEqual(sourcePttl.get(id)!);
      }
    }

    // verify with the source: every session copied, but plaintext remains: FAIL.
    const v1 = cli(['verify', '--plan', planFile, '--source', sourceSpec(redis.port), '--json'], env);
    expect(v1.status, v1.stderr).toBe(1);
    const r1 = JSON.parse(v1.stdout) as {
      source: { matching: number };
      plaintext: { remaining: number };
      failureCounts: Record<string, number>;
      failures: Array<{ key: string }>;
    };
    expect(r1.source.matching).toBe(6);
    // The 6 sessions count; the list key and phpredis's _LOCK key under the prefix are no sessions.
    expect(r1.plaintext.remaining).toBe(6);
    expect(r1.failureCounts).toEqual({ 'plaintext-remains': 6 });
    for (const f of r1.failures) for (const id of ids) expect(f.key).not.toContain(id); // IDs shortened
    // --plaintext-prefix does the same without a source.
    // With --plan the plan's source is read too (presence of its sessions): it needs the source password.
    expect(cli(['verify', '--plan', planFile, '--plaintext-prefix', 'shop:sess:'], env).stderr).toMatch(
      /source Redis.*SESSION_MIGRATE_SOURCE_REDIS_PASSWORD/,
    );
    const v2 = cli(['verify', '--plan', planFile, '--plaintext-prefix', 'shop:sess:'], applyEnv);
    expect(v2.status).toBe(1);
    expect(v2.stdout).toMatch(/plaintext-remains 6/);
    expect(v2.stdout).toMatch(/2 other key\(s\) there are not sessions \(ignored\)/);
    // --plan alone: the plan's source is a plaintext Redis prefix, so it is checked as well.
    const v2b = cli(['verify', '--plan', planFile], applyEnv);
    expect(v2b.status).toBe(1);
    expect(v2b.stdout).toMatch(/plaintext-remains 6/);
    // Right after apply (apply, deploy, verify, purge) the plaintext keys are the expected state: one
    // FAIL line with their count, three keys and the next step, not one line per key.
    const fails = v2b.stdout.split('\n').filter((l) => l.startsWith('  FAIL '));
    expect(fails, v2b.stdout).toHaveLength(1);
    expect(fails[0]).toMatch(
      /^ {2}FAIL {8}plaintext-remains: 6 plaintext session key\(s\) left \((shop:sess:[0-9a-z]{6}…, ){2}shop:sess:[0-9a-z]{6}… and 3 more\): expected after apply, until purge deletes them; every other check passed: run session-migrate purge \(it deletes each key proven in Redis\), then verify again$/,
    );
    for (const id of ids) expect(v2b.stdout).not.toContain(id);

    // A host still on phpredis writes a session again (new bytes, a fresh TTL): apply keeps the copy in
    // Redis (CONFLICT) and purge does not prove it, both naming the source key, not a file.
    await redis.client.set(`shop:sess:${ids[3]}`, 'user|s:5:"again";', 'EX', 900);
    const conflict = cli(['apply', '--plan', planFile], applyEnv);
    expect(conflict.stdout).toMatch(
      /^ {2}CONFLICT {4}smsess:\{[0-9a-f]{64}\} \(shop:sess:phpred…\): key holds a different session that is not newer than the source \(was the source key changed by a host still on the phpredis handler\?\)$/m,
    );
    const notProven = cli(['purge', '--plan', planFile, '--dry-run'], applyEnv);
    expect(notProven.stdout).toMatch(
      /^ {2}NOT PROVEN {2}shop:sess:phpred… \(smsess:\{[0-9a-f]{64}\}\): Redis holds other bytes, not provably newer than the source key$/m,
    );

    // The purge primitive: deletes a plaintext key only while it still holds what was verified.
    const source = await openRedisSource(sourceSpec(redis.port).slice('redis:'.length));
    try {
      const sessions: SourceSession[] = [];
      for await (const batch of source.sessions()) for (const s of batch) if (s.kind === 'session') sessions.push(s);
      expect(sessions).toHaveLength(6);
      const changed = sessions[0]!;
      await redis.client.set(`shop:sess:${changed.id}`, 'user|s:7:"changed";');
      expect(await source.removeIfUnchanged(changed)).toBe('changed');
      expect(await redis.client.exists(`shop:sess:${changed.id}`)).toBe(1);
      for (const s of sessions.slice(1)) expect(await source.removeIfUnchanged(s)).toBe('removed');
      expect(await source.removeIfUnchanged(sessions[1]!)).toBe('gone');
      await redis.client.del(`shop:sess:${changed.id}`);
    } finally {
      await source.close();
    }
    // The non-session keys stay: purge never removes them, and verify does not wait for them.
    const v3 = cli(['verify', '--plan', planFile, '--source', sourceSpec(redis.port)], env);
    expect(v3.status, v3.stdout).toBe(0);
    expect(v3.stdout).toMatch(/0 plaintext session key\(s\) left/);
    const v4 = cli(['verify', '--plan', planFile], applyEnv);
    expect(v4.status, v4.stdout).toBe(0);
    expect(v4.stdout).toMatch(/0 plaintext session key\(s\) left under "shop:sess:"/);
  });
});

describe('a password with a bad %-escape (target or redis source)', () => {
  // 11 characters: neither the password, nor any piece of it, nor its length may be printed.
  const password = 'Qx%zzWv7Kpj';
  it('is named as "the password" on one line, exit 2, without its value or its length', () => {
    const root = mkdtempSync(join(tmpdir(), 'sm-bad-escape-'));
    try {
      const keyFile = join(root, 'master.key');
      expect(cli(['keys', 'generate', '--out', keyFile]).status).toBe(0);
      const files = `files:${root}`;
      const runs: Array<{ target: string; source: string; names: RegExp }> = [
        {
          target: `redis://app:${password}@127.0.0.1:1/0`,
          source: files,
          names: /^session-migrate: target URL: bad %-escape in the password/,
        },
        { target: `redis+sentinel://app:${password}@127.0.0.1:1/m`, source: files, names: /target URL: bad %-escape in the password/ },
        {
          target: 'redis://127.0.0.1:1/0',
          source: `redis:redis://app:${password}@127.0.0.1:1/0`,
          names: /source URL: bad %-escape in the password/,
        },
        {
          target: 'redis://127.0.0.1:1/0',
          source: `redis:rediss://app:${password}@127.0.0.1:1/0`,
          names: /source URL: bad %-escape in the password/,
        },
        {
          target: 'redis://127.0.0.1:1/0',
          source: `redis:redis+sentinel://app:${password}@127.0.0.1:1/m`,
          names: /source URL: bad %-escape in the password/,
        },
        // Other errors about a source spec name it the same way (no length either).
        { target: 'redis://127.0.0.1:1/0', source: `redis:redis://app:${password}@127.0.0.1:1,h:2/0`, names: /names 2 servers/ },
      ];
      for (const run of runs) {
        const r = cli(['plan', '--source', run.source, '--target', run.target, '--key-file', keyFile, '--out', join(root, 'plan.json')], {
          SESSION_MIGRATE_REDIS_PASSWORD: '',
        });
        const what = `${run.source} -> ${run.target}: ${r.stderr}`;
        expect(r.status, what).toBe(2);
        const lines = r.stderr.trim().split('\n');
        expect(lines, what).toHaveLength(1);
        expect(lines[0], what).toMatch(run.names);
        for (const text of [r.stdout, r.stderr]) {
          expect(text, what).not.toContain('Qx');
          expect(text, what).not.toContain('zzWv7Kpj');
          expect(text, what).not.toMatch(/len=|\b11\b/);
        }
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

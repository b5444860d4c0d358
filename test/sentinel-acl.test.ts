/**
 * Sentinels protected by an ACL user (Redis >= 6.2 sentinels: `ACL SETUSER` sent to the sentinel;
 * https://redis.io/docs/management/sentinel/): the sentinel's `default` user is off and the only way
 * in is the user `SENTINEL_USER` with the minimal rule of docs/redis.md. The CLI (ioredis
 * `sentinelUsername`/`sentinelPassword`) plans, applies and verifies through it, and the generated PHP
 * handler (real php, phpredis, sodium; RedisSentinel with `[user, password]`) reads and writes a
 * session through it; the sentinel's ACL LOG stays empty, so the rule is enough. A wrong password and
 * a missing user fail with one line naming the variable, never the password. A user without a
 * password is sent an empty one, AUTH <user> "", by the CLI (ioredis, askSentinels and
 * SentinelConnector) and the handler (SentinelMasterLocator::auth()) alike: a `nopass` sentinel user
 * connects (plan and apply, the handler's requests), a user with a password is refused in one line
 * naming the sentinel, the user and the unset variable; the ACL LOG shows the AUTH was that user's.
 * Over TLS too (phpredis 5 asks through \Redis with the context `auth`). One topology
 * (master, replica, sentinel) for the file, and one TLS topology for the TLS case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvelopeCodec } from '@session-migrate/envelope';
import { makeTlsMaterial, startSentinel, type SentinelTopology } from './support/redis-topologies.ts';
import { cli, countPresent, newKey, usageLine, writeSessionFiles } from './support/migrate-cli.ts';
import { renderInto, sessionRequest, vectors, type Rendered } from './php/harness.ts';

const PREFIX = 'smsess:';
const SENTINEL_USER = 'sm-sentinel';
const SENTINEL_PW = 'sentinel-acl-secret';
const WRONG_PW = 'not-the-sentinel-pw';
/** A `nopass` sentinel ACL user (any password, the empty one too) with the same rule. */
const NOPASS_SENTINEL_USER = 'sm-sentinel-nopass';
/** The minimal sentinel rule of docs/redis.md ("Sentinels"). */
const SENTINEL_RULE = ['+sentinel|get-master-addr-by-name', '+sentinel|sentinels', '+subscribe', '&+switch-master'];
const ENV = { SESSION_MIGRATE_SENTINEL_USERNAME: SENTINEL_USER, SESSION_MIGRATE_SENTINEL_PASSWORD: SENTINEL_PW };

let s: SentinelTopology;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-sentinel-acl-'));
  ({ keyFile, codec } = await newKey(root));
  s = await startSentinel();
  // The admin connection stays authenticated as `default` after it is turned off (ACL SETUSER: "off"
  // refuses new authentications only), so the topology helpers keep working.
  await s.sentinel.admin.call('ACL', 'SETUSER', SENTINEL_USER, 'reset', 'on', `>${SENTINEL_PW}`, ...SENTINEL_RULE);
  await s.sentinel.admin.call('ACL', 'SETUSER', 'default', 'off');
}, 60_000);
afterAll(async () => {
  await s?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The sentinel's ACL LOG entries (denied commands, keys, channels, failed AUTH) since the last reset. */
async function aclLog(): Promise<string[]> {
  const entries = (await s.sentinel.admin.call('ACL', 'LOG')) as unknown[][];
  return entries.map((e) => JSON.stringify(e));
}

describe('CLI through a sentinel with an ACL user', () => {
  it('plan -> apply -> verify succeed; the sentinel denies nothing; the plan holds no password', async () => {
    await s.sentinel.admin.call('ACL', 'LOG', 'RESET');
    const dir = join(root, 'files');
    const ids = writeSessionFiles(dir, 'sacl', 50);
    const planFile = join(root, 'plan.json');
    const args = ['plan', '--source', `files:${dir}`, '--target', s.url, '--key-file', keyFile, '--out', planFile];
    const p = cli([...args, '--artifacts-dir', join(root, 'art')], ENV);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/Sentinel master "sessions"/);
    expect(readFileSync(planFile, 'utf8')).not.toContain(SENTINEL_PW);
    const a = cli(['apply', '--plan', planFile, '--json'], ENV);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const master = await s.currentMaster();
    expect(await countPresent(master.admin, codec, PREFIX, ids)).toBe(50);
    const v = cli(['verify', '--plan', planFile], ENV);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    for (const r of [p, a, v]) expect(r.stdout + r.stderr).not.toContain(SENTINEL_PW);
    expect(await aclLog()).toEqual([]);
  }, 120_000);

  it('a wrong password, a password without the user: one line, exit 2, the variable named, never the password', async () => {
    const dir = join(root, 'bad');
    writeSessionFiles(dir, 'bad', 3);
    const planFile = join(root, 'bad.json');
    const plan = (env: Record<string, string>) =>
      cli(['plan', '--source', `files:${dir}`, '--target', s.url, '--key-file', keyFile, '--out', planFile], env);
    const where = `127\\.0\\.0\\.1:${s.sentinel.port}`;

    const wrong = plan({ ...ENV, SESSION_MIGRATE_SENTINEL_PASSWORD: WRONG_PW });
    expect(usageLine(wrong)).toMatch(
      new RegExp(
        `^session-migrate: every sentinel of .* refused the login: ${where}: WRONGPASS .*SESSION_MIGRATE_SENTINEL_USERNAME.*SESSION_MIGRATE_SENTINEL_PASSWORD`,
      ),
    );
    expect(wrong.stderr + wrong.stdout).not.toContain(WRONG_PW);

    const noUser = plan({ SESSION_MIGRATE_SENTINEL_PASSWORD: SENTINEL_PW });
    expect(usageLine(noUser)).toMatch(
      new RegExp(`${where}: WRONGPASS .*SESSION_MIGRATE_SENTINEL_PASSWORD.*SESSION_MIGRATE_SENTINEL_USERNAME`),
    );
    expect(noUser.stderr + noUser.stdout).not.toContain(SENTINEL_PW);
    expect(existsSync(planFile)).toBe(false);
  }, 60_000);

  it('a nopass sentinel user without SESSION_MIGRATE_SENTINEL_PASSWORD (unset or empty): plan and apply through it (AUTH <user> ""); the sentinel denies nothing', async () => {
    await s.sentinel.admin.call('ACL', 'SETUSER', NOPASS_SENTINEL_USER, 'reset', 'on', 'nopass', ...SENTINEL_RULE);
    try {
      const envs: Array<Record<string, string>> = [
        { SESSION_MIGRATE_SENTINEL_USERNAME: NOPASS_SENTINEL_USER },
        { SESSION_MIGRATE_SENTINEL_USERNAME: NOPASS_SENTINEL_USER, SESSION_MIGRATE_SENTINEL_PASSWORD: '' },
      ];
      for (const [i, env] of envs.entries()) {
        await s.sentinel.admin.call('ACL', 'LOG', 'RESET');
        const dir = join(root, `nopass-${i}`);
        const ids = writeSessionFiles(dir, `snp${i}`, 10);
        const planFile = join(root, `nopass-${i}.json`);
        const p = cli(
          [
            'plan',
            '--source',
            `files:${dir}`,
            '--target',
            s.url,
            '--key-file',
            keyFile,
            '--out',
            planFile,
            '--artifacts-dir',
            join(root, `nopass-art-${i}`),
          ],
          env,
        );
        expect(p.status, p.stderr).toBe(0);
        const a = cli(['apply', '--plan', planFile, '--json'], env);
        expect(a.status, a.stderr + a.stdout).toBe(0);
        expect(await countPresent((await s.currentMaster()).admin, codec, PREFIX, ids)).toBe(10);
        // The sentinels' `default` user is off: only AUTH as the nopass user gets in, and nothing is denied.
        expect(await aclLog()).toEqual([]);
      }
    } finally {
      await s.sentinel.admin.call('ACL', 'DELUSER', NOPASS_SENTINEL_USER);
    }
  }, 120_000);

  it('a sentinel user with a password and SESSION_MIGRATE_SENTINEL_PASSWORD unset: one line naming the sentinel, the user and the unset variable, exit 2, nothing written', async () => {
    const dir = join(root, 'nopw');
    const ids = writeSessionFiles(dir, 'nopw', 3);
    const planFile = join(root, 'nopw.json');
    const artifacts = join(root, 'nopw-art');
    const where = `127\\.0\\.0\\.1:${s.sentinel.port}`;
    const refused = (userEnv: string, pwEnv: string, state = 'is not set') =>
      new RegExp(
        `^session-migrate: every sentinel of .* refused the login: ${where}: WRONGPASS .*the sentinel user ${SENTINEL_USER} in ${userEnv} was sent no password.*: ${pwEnv} ${state}`,
      );
    await s.sentinel.admin.call('ACL', 'LOG', 'RESET');
    // An empty variable counts as unset, and is named as empty (as the PHP handler's log line does).
    const envs: Array<[Record<string, string>, string]> = [
      [{ SESSION_MIGRATE_SENTINEL_USERNAME: SENTINEL_USER }, 'is not set'],
      [{ SESSION_MIGRATE_SENTINEL_USERNAME: SENTINEL_USER, SESSION_MIGRATE_SENTINEL_PASSWORD: '' }, 'is empty'],
    ];
    for (const [env, state] of envs) {
      const r = cli(
        ['plan', '--source', `files:${dir}`, '--target', s.url, '--key-file', keyFile, '--out', planFile, '--artifacts-dir', artifacts],
        env,
      );
      expect(usageLine(r)).toMatch(refused('SESSION_MIGRATE_SENTINEL_USERNAME', 'SESSION_MIGRATE_SENTINEL_PASSWORD', state));
      expect(r.stdout + r.stderr).not.toContain(SENTINEL_PW);
      expect(existsSync(planFile)).toBe(false);
      expect(existsSync(artifacts)).toBe(false);
    }
    // What was sent: AUTH as that user (refused), never as `default`.
    const log = (await s.sentinel.admin.call('ACL', 'LOG')) as unknown[][];
    expect(log.length).toBeGreaterThan(0);
    for (const e of log) {
      const entry = new Map<string, unknown>();
      for (let i = 0; i + 1 < e.length; i += 2) entry.set(String(e[i]), e[i + 1]);
      expect(entry.get('reason')).toBe('auth');
      expect(entry.get('username')).toBe(SENTINEL_USER);
    }

    // apply of a plan made with the password, run without it: refused the same way, no session written
    const p = cli(
      ['plan', '--source', `files:${dir}`, '--target', s.url, '--key-file', keyFile, '--out', planFile, '--artifacts-dir', artifacts],
      ENV,
    );
    expect(p.status, p.stderr).toBe(0);
    const a = cli(['apply', '--plan', planFile], { SESSION_MIGRATE_SENTINEL_USERNAME: SENTINEL_USER });
    expect(a.status).not.toBe(0);
    expect(
      a.stderr
        .trim()
        .split('\n')
        .filter((l) => !/^session-migrate: warning:/.test(l)),
    ).toEqual([expect.stringMatching(refused('SESSION_MIGRATE_SENTINEL_USERNAME', 'SESSION_MIGRATE_SENTINEL_PASSWORD'))]);
    expect(a.stdout + a.stderr).not.toContain(SENTINEL_PW);
    expect(await countPresent((await s.currentMaster()).admin, codec, PREFIX, ids)).toBe(0);

    // the source role has its own pair of variables
    const source = cli(
      ['plan', '--source', `redis:${s.url}`, '--target', s.url, '--key-file', keyFile, '--out', join(root, 'nopw-src.json')],
      {
        ...ENV,
        SESSION_MIGRATE_SOURCE_SENTINEL_USERNAME: SENTINEL_USER,
      },
    );
    expect(usageLine(source)).toMatch(refused('SESSION_MIGRATE_SOURCE_SENTINEL_USERNAME', 'SESSION_MIGRATE_SOURCE_SENTINEL_PASSWORD'));
    expect(source.stdout + source.stderr).not.toContain(SENTINEL_PW);
    expect(existsSync(join(root, 'nopw-src.json'))).toBe(false);
  }, 120_000);
});

describe('generated PHP handler through a sentinel with an ACL user', () => {
  let sandbox: string;
  let rendered: Rendered;

  beforeAll(() => {
    sandbox = mkdtempSync(join(tmpdir(), 'sm-sentinel-acl-php-'));
    rendered = renderInto({
      redis: {
        topology: 'sentinel',
        host: '127.0.0.1',
        port: s.sentinel.port,
        sentinels: [{ host: '127.0.0.1', port: s.sentinel.port }],
        masterName: s.masterName,
      },
    });
  });
  afterAll(() => {
    if (rendered) rmSync(rendered.dir, { recursive: true, force: true });
    if (sandbox) rmSync(sandbox, { recursive: true, force: true });
  });

  /** Removes the handler's master cache, so the next request asks the sentinel. */
  const forgetMaster = (): void => {
    for (const f of readdirSync(sandbox).filter((x) => x.startsWith('session-migrate-sentinel-'))) rmSync(join(sandbox, f));
  };

  /** One request of an application (php CLI) through the rendered ini fragment and bootstrap. */
  function request(args: string[], env: Record<string, string>, r: Rendered = rendered) {
    return sessionRequest<{ started: boolean; idAfter: string; session: unknown }>(r, args, {
      dir: sandbox,
      env: { SESSION_MIGRATE_KEY: vectors.master_key_base64, ...env },
    });
  }

  it('writes and reads a session with [user, password]; the sentinel denies nothing', async () => {
    await s.sentinel.admin.call('ACL', 'LOG', 'RESET');
    const phpCodec = await EnvelopeCodec.create([Buffer.from(vectors.master_key_base64, 'base64')]);
    const first = request(['--set={"n":7}'], ENV);
    expect(first.out.started, first.logs.join('\n') + first.stderr).toBe(true);
    expect(first.logs).toEqual([]);
    expect(first.stderr).toBe('');
    const master = await s.currentMaster();
    expect(await master.admin.exists(phpCodec.keyName(PREFIX, first.out.idAfter))).toBe(1);
    forgetMaster();
    const again = request([`--id=${first.out.idAfter}`], ENV);
    expect(again.out, again.logs.join('\n')).toMatchObject({ started: true, idAfter: first.out.idAfter, session: { n: 7 } });
    expect(await aclLog()).toEqual([]);
  });

  it('a nopass sentinel user without SESSION_MIGRATE_SENTINEL_PASSWORD (AUTH <user> ""): found and used; the sentinel denies nothing', async () => {
    await s.sentinel.admin.call('ACL', 'SETUSER', NOPASS_SENTINEL_USER, 'reset', 'on', 'nopass', ...SENTINEL_RULE);
    try {
      await s.sentinel.admin.call('ACL', 'LOG', 'RESET');
      const phpCodec = await EnvelopeCodec.create([Buffer.from(vectors.master_key_base64, 'base64')]);
      const envs: Array<Record<string, string>> = [
        { SESSION_MIGRATE_SENTINEL_USERNAME: NOPASS_SENTINEL_USER },
        { SESSION_MIGRATE_SENTINEL_USERNAME: NOPASS_SENTINEL_USER, SESSION_MIGRATE_SENTINEL_PASSWORD: '' },
      ];
      for (const env of envs) {
        forgetMaster();
        const res = request(['--set={"np":1}'], env);
        expect(res.out.started, res.logs.join('\n') + res.stderr).toBe(true);
        expect(res.logs).toEqual([]);
        expect(await (await s.currentMaster()).admin.exists(phpCodec.keyName(PREFIX, res.out.idAfter))).toBe(1);
      }
      expect(await aclLog()).toEqual([]);
    } finally {
      forgetMaster();
      await s.sentinel.admin.call('ACL', 'DELUSER', NOPASS_SENTINEL_USER);
    }
  });

  it('over TLS (rediss+sentinel://, mutual): the CLI plans and the handler (phpredis 5: \\Redis with the context auth) reads and writes', async () => {
    const tls = makeTlsMaterial();
    const t = await startSentinel({ tls: { material: tls, mutual: true } });
    try {
      await t.sentinel.admin.call('ACL', 'SETUSER', SENTINEL_USER, 'reset', 'on', `>${SENTINEL_PW}`, ...SENTINEL_RULE);
      await t.sentinel.admin.call('ACL', 'SETUSER', 'default', 'off');
      const tlsArgs = ['--tls-ca-file', tls.caFile, '--tls-cert-file', tls.clientCertFile, '--tls-key-file', tls.clientKeyFile];
      const dir = join(root, 'tls-files');
      writeSessionFiles(dir, 'tacl', 5);
      const planFile = join(root, 'tls-plan.json');
      const p = cli(
        [
          'plan',
          '--source',
          `files:${dir}`,
          '--target',
          t.url,
          ...tlsArgs,
          '--key-file',
          keyFile,
          '--out',
          planFile,
          '--artifacts-dir',
          join(root, 'tls-art'),
        ],
        ENV,
      );
      expect(p.status, p.stderr).toBe(0);
      const r = renderInto({
        redis: {
          topology: 'sentinel',
          host: '127.0.0.1',
          port: t.sentinel.port,
          sentinels: [{ host: '127.0.0.1', port: t.sentinel.port }],
          masterName: t.masterName,
          tls: { caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile },
        },
      });
      try {
        forgetMaster();
        const first = request(['--set={"t":1}'], ENV, r);
        expect(first.out.started, first.logs.join('\n') + first.stderr).toBe(true);
        const phpCodec = await EnvelopeCodec.create([Buffer.from(vectors.master_key_base64, 'base64')]);
        expect(await (await t.currentMaster()).admin.exists(phpCodec.keyName(PREFIX, first.out.idAfter))).toBe(1);
        forgetMaster();
        const wrong = request([`--id=${first.out.idAfter}`], { ...ENV, SESSION_MIGRATE_SENTINEL_PASSWORD: WRONG_PW }, r);
        expect(wrong.out.started).toBe(false);
        expect(wrong.logs).toHaveLength(1);
        expect(wrong.logs[0]).toMatch(
          /refused the user in SESSION_MIGRATE_SENTINEL_USERNAME with the password in SESSION_MIGRATE_SENTINEL_PASSWORD \(WRONGPASS/,
        );
        expect(wrong.logs.join('\n') + wrong.stderr).not.toContain(WRONG_PW);
        expect((await t.sentinel.admin.call('ACL', 'LOG')) as unknown[]).toHaveLength(1); // the wrong AUTH only
      } finally {
        forgetMaster();
        rmSync(r.dir, { recursive: true, force: true });
      }
    } finally {
      await t.stop();
      tls.remove();
    }
  }, 60_000);

  it('a wrong password, a password without the user, a user without a password: one log line naming the variable, never the password, even with the master cached', () => {
    forgetMaster();
    // A request with the right credentials caches the master's address for the host's workers; the
    // cached answer is bound to the credentials that got it, so the bad ones below still ask, and fail.
    expect(request(['--set={"c":1}'], ENV).out.started).toBe(true);
    const cache = readdirSync(sandbox).filter((f) => f.startsWith('session-migrate-sentinel-'));
    expect(cache).toHaveLength(1);
    const cached = readFileSync(join(sandbox, cache[0]!), 'utf8');
    const id = 'someone0000000000000000000001';
    const cases: Array<[Record<string, string>, RegExp, string]> = [
      [
        { ...ENV, SESSION_MIGRATE_SENTINEL_PASSWORD: WRONG_PW },
        /^session-migrate: sessions are unavailable: Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ refused the user in SESSION_MIGRATE_SENTINEL_USERNAME with the password in SESSION_MIGRATE_SENTINEL_PASSWORD \(WRONGPASS [^)]*\)\)$/,
        WRONG_PW,
      ],
      // the `default` user is off and has no password: AUTH <password> alone is refused
      [
        { SESSION_MIGRATE_SENTINEL_PASSWORD: SENTINEL_PW },
        /^session-migrate: sessions are unavailable: Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ refused the password in SESSION_MIGRATE_SENTINEL_PASSWORD \((WRONGPASS|ERR AUTH) [^)]*\)\)$/,
        SENTINEL_PW,
      ],
      // a user without its password is sent an empty one (AUTH <user> ""), which only a nopass user takes
      [
        { SESSION_MIGRATE_SENTINEL_USERNAME: SENTINEL_USER },
        /^session-migrate: sessions are unavailable: Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ refused the user sm-sentinel in SESSION_MIGRATE_SENTINEL_USERNAME without a password: SESSION_MIGRATE_SENTINEL_PASSWORD is not set \(WRONGPASS [^)]*\)\)$/,
        SENTINEL_PW,
      ],
      [
        { SESSION_MIGRATE_SENTINEL_USERNAME: SENTINEL_USER, SESSION_MIGRATE_SENTINEL_PASSWORD: '' },
        /^session-migrate: sessions are unavailable: Sentinel: no master for "sessions" \(127\.0\.0\.1:\d+ refused the user sm-sentinel in SESSION_MIGRATE_SENTINEL_USERNAME without a password: SESSION_MIGRATE_SENTINEL_PASSWORD is empty \(WRONGPASS [^)]*\)\)$/,
        SENTINEL_PW,
      ],
    ];
    for (const [env, cause, secret] of cases) {
      const res = request([`--id=${id}`], env);
      expect(res.out.started, JSON.stringify(res)).toBe(false);
      expect(res.logs, res.logs.join('\n')).toHaveLength(1);
      expect(res.logs[0]).toMatch(cause);
      expect(res.logs.join('\n') + res.stderr).not.toContain(secret);
      expect(readdirSync(sandbox).filter((f) => f.startsWith('sess_'))).toEqual([]);
      expect(readFileSync(join(sandbox, cache[0]!), 'utf8')).toBe(cached);
    }
  });
});

/**
 * The documented minimal ACL rule of every command (packages/redis/src/acl.ts, docs/redis.md): each
 * command runs as a user restricted to exactly its rule, against a real master with a replica (so
 * apply's WAIT is exercised) on database 1 (so SELECT is in the rule). A rule without a command the
 * tool needs stops it with a line that names the command to add. Also: `+@all -@dangerous +info` on
 * the prefix works for every command; plan and verify read maxmemory and maxmemory-policy from INFO
 * memory (no CONFIG) and warn with the fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import { aclRuleFor, type AclCommand } from '@session-migrate/redis';
import { addAclUser, parseInfo, startNode, type RedisNode } from './support/redis-topologies.ts';
import { cli, planArgs, usageLine, writePlaintextSessions, writeSessionFiles, newKey } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
const SRC = 'PHPREDIS_SESSION:';
const DB = 1;
let master: RedisNode;
let replica: RedisNode;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
const ENV = { SESSION_MIGRATE_REDIS_PASSWORD: 'app-pw', SESSION_MIGRATE_SOURCE_REDIS_PASSWORD: 'src-pw' };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-acl-'));
  ({ keyFile, codec } = await newKey(root));
  master = await startNode();
  replica = await startNode({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  for (let i = 0; i < 200 && parseInfo(await replica.admin.info('replication')).get('master_link_status') !== 'up'; i++)
    await new Promise((r) => setTimeout(r, 25));
  await master.admin.select(DB);
});
afterAll(async () => {
  await replica?.stop();
  await master?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const target = () => `redis://app@127.0.0.1:${master.port}/${DB}`;
const source = () => `redis:redis://reader@127.0.0.1:${master.port}/${DB}?prefix=${encodeURIComponent(SRC)}`;

/** Gives user `app` exactly the rule of a command (on the master and the replica: ACLs are per node). */
async function appRule(command: AclCommand, rule = aclRuleFor(command, PREFIX, 'standalone', DB)): Promise<void> {
  await addAclUser([master, replica], { name: 'app', password: 'app-pw', rule });
}
async function readerRule(command: AclCommand, rule = aclRuleFor(command, SRC, 'standalone', DB)): Promise<void> {
  await addAclUser([master, replica], { name: 'reader', password: 'src-pw', rule });
}

describe('minimal ACL rules', () => {
  it('each command works as a user restricted to exactly its documented rule', async () => {
    expect(aclRuleFor('apply', PREFIX, 'standalone', DB)).toBe(
      'resetkeys ~smsess:* -@all +ping +info +select +eval +evalsha +exists +set +type +get +pttl +wait',
    );
    expect(aclRuleFor('verify', PREFIX, 'standalone', DB)).toBe(
      'resetkeys ~* -@all +ping +info +select +scan +pttl +getrange +type +strlen +get +mget +exists',
    );
    const dir = join(root, 'files');
    writeSessionFiles(dir, 'acl', 100);
    const planFile = join(root, 'plan.json');
    await appRule('plan');
    const p = cli(
      [
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
        join(root, 'art'),
      ],
      ENV,
    );
    expect(p.status, p.stderr).toBe(0);

    await appRule('apply');
    const a = cli(['apply', '--plan', planFile, '--json'], ENV);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    const out = JSON.parse(a.stdout) as { confirm: { minReplicas: Record<string, number> }; sessions: { counts: Record<string, number> } };
    // The replica is there: WAIT ran under the rule.
    expect(out.confirm.minReplicas).toEqual({ '*': 1 });
    expect(out.sessions.counts).toMatchObject({ migrated: 100, unconfirmed: 0, missingAfterWrite: 0 });

    await appRule('verify');
    const v = cli(['verify', '--plan', planFile, '--source', `files:${dir}`], ENV);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    const vp = cli(['verify', '--plan', planFile, '--json'], ENV);
    expect(vp.status, vp.stderr + vp.stdout).toBe(0);
    // The rule as documented before +mget: verify gets NOPERM for its first MGET and goes on with
    // GET per key; the same report.
    await appRule('verify', aclRuleFor('verify', PREFIX, 'standalone', DB).replace(' +mget', ''));
    const vOld = cli(['verify', '--plan', planFile, '--json'], ENV);
    expect(vOld.status, vOld.stderr + vOld.stdout).toBe(0);
    const withoutTime = (out: string): unknown => ({ ...(JSON.parse(out) as object), elapsedMs: 0 });
    expect(withoutTime(vOld.stdout)).toEqual(withoutTime(vp.stdout));
    await appRule('verify');
    // verify reads every key of the database (~*): another application's keys of any type, and a
    // plaintext session outside the prefix, which fails.
    await master.admin.hset('otherapp:h', 'f', 'v');
    await master.admin.set('otherapp:big', 'z'.repeat(40_000));
    await master.admin.set(`PHPREDIS_SESSION:${'p'.repeat(26)}`, 'user|s:1:"x";', 'EX', 600);
    const va = cli(['verify', '--plan', planFile, '--json'], ENV);
    expect(va.status, va.stderr).toBe(1);
    expect(JSON.parse(va.stdout)).toMatchObject({ failureCounts: { 'plaintext-session': 1 }, otherTypes: { hash: 1, string: 1 } });
    // --prefix-only under its own rule (the prefix's keys only).
    expect(aclRuleFor('verify-prefix-only', PREFIX, 'standalone', DB)).toBe(
      'resetkeys ~smsess:* -@all +ping +info +select +scan +pttl +getrange +type +strlen +get +mget +exists',
    );
    await appRule('verify-prefix-only');
    const vpo = cli(['verify', '--plan', planFile, '--prefix-only'], ENV);
    expect(vpo.status, vpo.stderr + vpo.stdout).toBe(0);
    // The whole-database scan under the prefix-only rule: stopped with what to do, one line, exit 2.
    expect(usageLine(cli(['verify', '--plan', planFile], ENV))).toMatch(
      /refused to read a key outside the prefix .*verify reads every key of the database; allow the user to read every key \(resetkeys ~\* -@all .*\), or run verify --prefix-only/,
    );
    await master.admin.del('otherapp:h', 'otherapp:big', `PHPREDIS_SESSION:${'p'.repeat(26)}`);

    await appRule('rotate');
    const r = cli(['rotate', '--target', target(), '--key-file', keyFile], ENV);
    expect(r.status, r.stderr + r.stdout).toBe(0);

    await appRule('rollback-to-files');
    const rt = cli(['rollback', '--plan', planFile, '--to', `files:${dir}`], ENV);
    expect(rt.status, rt.stderr + rt.stdout).toBe(0);
    expect(rt.stdout).toMatch(/unchanged 100/);

    await appRule('purge');
    const pu = cli(['purge', '--plan', planFile, '--dry-run'], ENV);
    expect(pu.status, pu.stderr + pu.stdout).toBe(0);
    expect(pu.stdout).toMatch(/would delete 100 file/);

    await appRule('rollback-remove-keys');
    const rk = cli(['rollback', '--plan', planFile, '--remove-keys'], ENV);
    expect(rk.status, rk.stderr + rk.stdout).toBe(0);
    expect(rk.stdout).toMatch(/removed 100 envelope/);
  });

  it('a Redis source read and purged as a user restricted to exactly the source rules', async () => {
    await master.admin.flushall();
    await writePlaintextSessions(master.admin, SRC, 'src', 40);
    // A key PHP never reads (its ID has characters PHP refuses) holding session data: purge leaves it
    // and says that verify still fails it.
    await master.admin.set(`${SRC}bad id!`, 'user|s:1:"x";', 'EX', 900);
    const planFile = join(root, 'src-plan.json');
    await appRule('plan');
    await readerRule('source-read');
    const p = cli(
      [
        'plan',
        '--source',
        source(),
        '--target',
        target(),
        '--key-file',
        keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(root, 'src-art'),
      ],
      ENV,
    );
    expect(p.status, p.stderr).toBe(0);
    await appRule('apply');
    const a = cli(['apply', '--plan', planFile], ENV);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    await appRule('verify');
    const v = cli(['verify', '--plan', planFile, '--source', source()], ENV);
    expect(v.status).toBe(1); // plaintext remains until purge: the check itself ran under the rules
    expect(v.stdout).toMatch(/40 plaintext session key\(s\) left/);
    await appRule('purge');
    await readerRule('source-purge');
    const pu = cli(['purge', '--plan', planFile], ENV);
    expect(pu.status, pu.stderr + pu.stdout).toBe(0);
    expect(pu.stdout).toMatch(/deleted +40 key/);
    expect(pu.stdout).toMatch(
      /^ {2}untouched +not sessions PHP reads: bad-session-id 1; a Redis key among them that holds session data is plaintext left behind \(verify fails it when the source is in the target's database, not on another server or database\): delete such keys by hand$/m,
    );
    await master.admin.del(`${SRC}bad id!`);
  });

  it('a rule without a needed command stops the command with what to add: one line, exit 2, nothing written', async () => {
    await master.admin.flushall();
    const dir = join(root, 'missing');
    writeSessionFiles(dir, 'mis', 10);
    const planFile = join(root, 'missing-plan.json');
    await appRule('plan');
    expect(
      cli(
        [
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
          join(root, 'mis-art'),
        ],
        ENV,
      ).status,
    ).toBe(0);
    // apply without EVAL/EVALSHA: permanent, never retried.
    await appRule('apply', aclRuleFor('apply', PREFIX, 'standalone', DB).replace(' +eval +evalsha', ''));
    const started = Date.now();
    const line = usageLine(cli(['apply', '--plan', planFile, '--retry-delay-ms', '1000'], ENV));
    // The first call apply sends is EVALSHA (the workers encode it) or EVAL: either is named.
    expect(line).toMatch(
      /apply stopped, nothing was written .*NOPERM.*lacks EVAL(SHA)? \(\+eval(sha)?\); the minimal rule is resetkeys ~smsess:\* -@all \+ping.* \+eval \+evalsha /,
    );
    // Not retried (8 retries from 1 s would take minutes).
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(Number(await master.admin.dbsize())).toBe(0);
    // A key pattern that does not cover the prefix.
    await appRule('apply', aclRuleFor('apply', 'other:', 'standalone', DB));
    expect(usageLine(cli(['apply', '--plan', planFile], ENV))).toMatch(/does not allow keys under the prefix/);
    // No INFO: the topology cannot be checked.
    await appRule('verify', aclRuleFor('verify', PREFIX, 'standalone', DB).replace(' +info', ''));
    expect(usageLine(cli(['verify', '--plan', planFile], ENV))).toMatch(/lacks INFO \(\+info\)/);
    expect(Number(await master.admin.dbsize())).toBe(0);
  });

  it('a rule without GET, met only at an existing key: the sessions written are counted (exit 1, the rest written), never "nothing was written"', async () => {
    await master.admin.flushall();
    const dir = join(root, 'noget');
    const ids = writeSessionFiles(dir, 'nog', 6);
    const planFile = join(root, 'noget-plan.json');
    await appRule('plan');
    const p = cli(planArgs({ dir, target: target(), keyFile, planFile, artifactsDir: join(root, 'nog-art') }), ENV);
    expect(p.status, p.stderr).toBe(0);
    await appRule('apply');
    expect(cli(['apply', '--plan', planFile], ENV).status).toBe(0);
    // Five keys gone again; one stays, so the script's SET NX finds it and reads it with GET, which
    // the rule now refuses. The script used to stop there, after writing the sessions before it in
    // the same call, and apply said it had written nothing (exit 2).
    const kept = codec.keyName(PREFIX, ids[2]!);
    await master.admin.del(...ids.filter((_, i) => i !== 2).map((id) => codec.keyName(PREFIX, id)));
    await appRule('apply', aclRuleFor('apply', PREFIX, 'standalone', DB).replace(' +get', ''));
    const a = cli(['apply', '--plan', planFile, '--json', '--min-replicas', '0'], ENV);
    expect(a.status, a.stderr + a.stdout).toBe(1);
    const out = JSON.parse(a.stdout) as { sessions: { counts: Record<string, number>; stopped?: { code: string; fix?: string } } };
    expect(out.sessions.counts).toMatchObject({ migrated: 5, notDone: 1, failed: 0 });
    // Redis 7 does not name the command a script was refused: the fix names the script's commands and the rule.
    expect(out.sessions.stopped).toMatchObject({ code: 'NOPERM' });
    expect(out.sessions.stopped?.fix).toMatch(/lacks a command that session-migrate's Lua script runs .*GET.*; the minimal rule is /);
    expect(Number(await master.admin.dbsize())).toBe(6);
    expect(await master.admin.exists(kept)).toBe(1);
    await master.admin.del(...ids.filter((_, i) => i !== 2).map((id) => codec.keyName(PREFIX, id)));
    const text = cli(['apply', '--plan', planFile, '--min-replicas', '0'], ENV);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(/^ {2}STOPPED +.*can't run this command.*Lua script runs/m);
    expect(text.stderr).not.toMatch(/nothing was written/);
  });

  it('rollback as a user lacking SCAN, EVAL or DEL: one line naming what to add, never "unexpected error"', async () => {
    await master.admin.flushall();
    const dir = join(root, 'rbacl');
    writeSessionFiles(dir, 'rba', 4);
    const planFile = join(root, 'rbacl-plan.json');
    await appRule('plan');
    expect(cli(planArgs({ dir, target: target(), keyFile, planFile, artifactsDir: join(root, 'rba-art') }), ENV).status).toBe(0);
    await appRule('apply');
    expect(cli(['apply', '--plan', planFile], ENV).status).toBe(0);
    const minimal = (c: AclCommand) => aclRuleFor(c, PREFIX, 'standalone', DB);
    // --remove-keys: SCAN refused at the start, EVAL (the compare-and-delete) and DEL (inside it) at the first key.
    for (const drop of [' +scan', ' +eval', ' +del']) {
      await appRule('rollback-remove-keys', minimal('rollback-remove-keys').replace(drop, ''));
      const r = cli(['rollback', '--plan', planFile, '--remove-keys'], ENV);
      expect(usageLine(r)).toMatch(
        /^session-migrate: rollback stopped: .*the minimal rule is resetkeys ~smsess:\* .*; re-running is safe$/,
      );
      expect(r.stderr).not.toMatch(/unexpected error/);
      expect(Number(await master.admin.dbsize())).toBe(4);
    }
    // --to: SCAN (which counts the keys no listed ID names once the files are written) is checked
    // before anything is written: exit 2, no file.
    await appRule('rollback-to-files', minimal('rollback-to-files').replace(' +scan', ''));
    const back = join(root, 'rbacl-back');
    mkdirSync(back, { mode: 0o700 });
    const to = cli(['rollback', '--plan', planFile, '--to', `files:${back}`, '--ids-from', `files:${dir}`], ENV);
    expect(to.status, to.stderr + to.stdout).toBe(2);
    expect(usageLine(to)).toMatch(/^session-migrate: rollback stopped: .*lacks SCAN \(\+scan\).*; re-running is safe$/);
    expect(to.stderr).not.toMatch(/unexpected error/);
    expect(readdirSync(back)).toHaveLength(0);
    // With the minimal rule the same command writes the 4 files.
    await appRule('rollback-to-files', minimal('rollback-to-files'));
    const ok = cli(['rollback', '--plan', planFile, '--to', `files:${back}`, '--ids-from', `files:${dir}`], ENV);
    expect(ok.status, ok.stderr + ok.stdout).toBe(0);
    expect(readdirSync(back)).toHaveLength(4);
  });

  it('a replica given as the target is refused before anything is written (this node is a replica)', async () => {
    await master.admin.flushall();
    await appRule('plan', `resetkeys ~${PREFIX}* +@all -@dangerous +info`);
    const dir = join(root, 'replica');
    writeSessionFiles(dir, 'rep', 3);
    const line = usageLine(
      cli(
        [
          'plan',
          '--source',
          `files:${dir}`,
          '--target',
          `redis://app@127.0.0.1:${replica.port}/${DB}`,
          '--key-file',
          keyFile,
          '--out',
          join(root, 'rep.json'),
        ],
        ENV,
      ),
    );
    expect(line).toMatch(/is a replica of 127\.0\.0\.1:\d+ \(READONLY\): give the master/);
  });

  it('"+@all -@dangerous +info" on the prefix works for every command (verify with --prefix-only once other keys exist; no CONFIG, as on ElastiCache)', async () => {
    await master.admin.flushall();
    const rule = `resetkeys ~${PREFIX}* +@all -@dangerous +info`;
    await appRule('apply', rule);
    const dir = join(root, 'elasticache');
    writeSessionFiles(dir, 'ela', 20);
    const planFile = join(root, 'ela-plan.json');
    const run = (args: string[]) => {
      const r = cli(args, ENV);
      expect(r.status, `${args[0]}: ${r.stderr}${r.stdout}`).toBe(0);
      return r;
    };
    run([
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
      join(root, 'ela-art'),
    ]);
    run(['apply', '--plan', planFile]);
    run(['verify', '--plan', planFile, '--source', `files:${dir}`]);
    // With another application's key in the database, the whole-database scan needs ~*: --prefix-only works.
    await master.admin.set('otherapp:k', 'v');
    expect(usageLine(cli(['verify', '--plan', planFile], ENV))).toMatch(/or run verify --prefix-only/);
    run(['verify', '--plan', planFile, '--prefix-only']);
    await master.admin.del('otherapp:k');
    run(['rotate', '--target', target(), '--key-file', keyFile]);
    run(['rollback', '--plan', planFile, '--to', `files:${dir}`, '--dry-run']);
    run(['purge', '--plan', planFile, '--dry-run']);
    run(['rollback', '--plan', planFile, '--remove-keys', '--dry-run']);
    // CONFIG really is refused to this user: nothing above used it.
    await expect(master.admin.call('ACL', 'DRYRUN', 'app', 'CONFIG', 'GET', 'maxmemory')).resolves.toMatch(/no permissions/);
  });

  it('plan and verify warn about an eviction policy that can drop sessions and about memory headroom (from INFO memory)', async () => {
    await master.admin.flushall();
    await appRule('plan', `resetkeys ~${PREFIX}* +@all -@dangerous +info`);
    await master.admin.call('CONFIG', 'SET', 'maxmemory', String(4 * 1024 * 1024));
    await master.admin.call('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
    try {
      const dir = join(root, 'memory');
      writeSessionFiles(dir, 'mem', 20_000);
      const planFile = join(root, 'mem-plan.json');
      const p = cli(
        [
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
          join(root, 'mem-art'),
        ],
        ENV,
      );
      expect(p.status, p.stderr).toBe(0);
      expect(p.stdout).toMatch(/memory +expected ~[\d.]+ MiB in Redis for 20000 session/);
      expect(p.stdout).toMatch(/WARNING .*maxmemory-policy volatile-lru can evict sessions .*set maxmemory-policy noeviction/);
      expect(p.stdout).toMatch(/WARNING .*would use .* of maxmemory 4\.0 MiB .*raise maxmemory/);
      const plan = JSON.parse(readFileSync(planFile, 'utf8')) as {
        target: { memory: { expectedBytes: number; nodes: Array<{ policy: string }> } };
      };
      expect(plan.target.memory.nodes[0]!.policy).toBe('volatile-lru');
      const v = cli(['verify', '--target', target(), '--key-file', keyFile], ENV);
      expect(v.stderr).toMatch(/warning: .*maxmemory-policy volatile-lru can evict sessions/);
    } finally {
      await master.admin.call('CONFIG', 'SET', 'maxmemory', '0');
      await master.admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
    expect(codec.keyId).toMatch(/^[0-9a-f]{16}$/);
  });
});

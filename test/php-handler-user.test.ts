/**
 * The generated PHP handler's own Redis ACL user (plan / generate php --handler-user): with a real
 * redis-server whose `default` user is off, a migration user with exactly the rules of plan and apply
 * (aclRuleFor) and a handler user with exactly handlerAclRule's rule, plan and apply run as the
 * migration user, generate php --handler-user names the handler's user, and real PHP (php CLI through
 * the generated ini fragment and bootstrap) reads, writes, locks, regenerates and destroys sessions
 * as the handler user, with only that user's password in its environment. The migration user's name
 * is in no generated file, and a later apply keeps the handler user (GENERATE_CHOICES_FILE).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EnvelopeCodec, readKeyFile } from '@session-migrate/envelope';
import { aclRuleFor, handlerAclRule } from '@session-migrate/redis';
import { addAclUser, startCluster, startNode, type RedisNode } from './support/redis-topologies.ts';
import { PHP_DIR, PHP_EXTENSIONS, sessionRequest, type Rendered } from './php/harness.ts';
import { cli, planArgs } from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
const MIGRATE = { name: 'sm-migrate', password: 'migrate-pw-1' };
const HANDLER = { name: 'sm-php', password: 'php-pw-2' };
const ADMIN = { name: 'sm-admin', password: 'admin-pw-3' };
const IDS = ['0123456789abcdef0123456789abcdef', 'fedcba9876543210fedcba9876543210', 'aaaabbbbccccddddeeeeffff00001111'];

interface Out {
  started: boolean;
  idAfter: string;
  session: Record<string, unknown> | unknown[] | null;
  closed: boolean | null;
  regenerated: boolean | null;
  destroyed: boolean | null;
}

let node: RedisNode;
let admin: Redis;
let root: string;
let p: { dir: string; target: string; keyFile: string; planFile: string; artifactsDir: string };
const migrateEnv = { SESSION_MIGRATE_REDIS_PASSWORD: MIGRATE.password };

/** Every generated file of a directory (recursively), as text. */
function generatedText(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

function artifacts(): Rendered {
  const dir = p.artifactsDir;
  return {
    dir,
    artifacts: [],
    handlerFile: join(dir, 'src/EncryptedRedisSessionHandler.php'),
    autoloadFile: join(dir, 'autoload.php'),
    bootstrapFile: join(dir, 'session-migrate-bootstrap.php'),
    iniFile: join(dir, '99-session-migrate.ini'),
    phpFiles: [],
  };
}

/** PHP's environment on a PHP host: the key file and the handler user's password only. */
const phpEnv = (): Record<string, string> => ({ SESSION_MIGRATE_KEY_FILE: p.keyFile, SESSION_MIGRATE_REDIS_PASSWORD: HANDLER.password });

function request(args: string[]): Out {
  return sessionRequest<Out>(artifacts(), args, { dir: root, env: phpEnv() }).out;
}

/** One request (test/php/paused-request.php) that holds its session (and lock) while `meanwhile` runs. */
async function pausedRequest(args: string[], meanwhile: () => Promise<void>): Promise<Out> {
  const ready = join(root, `ready-${Date.now()}`);
  const go = `${ready}-go`;
  const child = spawn(
    'php',
    [
      '-n',
      '-c',
      artifacts().iniFile,
      ...PHP_EXTENSIONS,
      '-d',
      'display_errors=stderr',
      join(PHP_DIR, 'paused-request.php'),
      ...args,
      `--ready=${ready}`,
      `--go=${go}`,
    ],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: root, ...phpEnv() } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  for (let i = 0; i < 1000 && !existsSync(ready); i++) await new Promise((res) => setTimeout(res, 10));
  try {
    expect(existsSync(ready), stderr).toBe(true);
    await meanwhile();
  } finally {
    writeFileSync(go, '');
  }
  expect(await exited, stderr).toBe(0);
  return JSON.parse(stdout.trim().split('\n').pop()!) as Out;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-handler-user-'));
  node = await startNode();
  await addAclUser(node, { ...ADMIN, rule: '~* &* +@all' });
  admin = new Redis({ host: '127.0.0.1', port: node.port, username: ADMIN.name, password: ADMIN.password, maxRetriesPerRequest: 1 });
  // plan's rule and apply's in one user (both start with resetkeys ... -@all: apply's plus +scan).
  await addAclUser(node, { ...MIGRATE, rule: `${aclRuleFor('apply', PREFIX)} +scan` });
  await addAclUser(node, { ...HANDLER, rule: handlerAclRule(PREFIX) });
  await admin.call('ACL', 'SETUSER', 'default', 'off');
  await admin.call('ACL', 'LOG', 'RESET');
  const dir = join(root, 'sessions');
  mkdirSync(dir, { mode: 0o700 });
  IDS.forEach((id, i) => writeFileSync(join(dir, `sess_${id}`), `user|s:5:"user${i}";n|i:${i};`, { mode: 0o600 }));
  p = {
    dir,
    target: `redis://${MIGRATE.name}@127.0.0.1:${node.port}/0`,
    keyFile: join(root, 'master.key'),
    planFile: join(root, 'plan.json'),
    artifactsDir: join(root, 'artifacts'),
  };
  expect(cli(['keys', 'generate', '--out', p.keyFile]).status).toBe(0);
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await node?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the PHP handler with its own ACL user', () => {
  it('plan and apply as the migration user say the handler would connect as it, and how to give it its own', () => {
    const plan = cli(planArgs(p), migrateEnv);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(
      `  redis user  note: the PHP handler connects as the migration's ACL user "${MIGRATE.name}"; give it a user of its own with --handler-user NAME (rule: ${handlerAclRule(PREFIX)}; docs/redis.md), its password in SESSION_MIGRATE_REDIS_PASSWORD on the PHP hosts`,
    );
    const apply = cli(['apply', '--plan', p.planFile], migrateEnv);
    expect(apply.status, apply.stderr + apply.stdout).toBe(0);
    expect(readFileSync(artifacts().bootstrapFile, 'utf8')).toContain(`'username' => '${MIGRATE.name}',`);
  });

  it('generate php --handler-user writes a handler that connects as that user; the migration user is in no generated file', () => {
    const gen = cli(['generate', 'php', '--plan', p.planFile, '--handler-user', HANDLER.name], migrateEnv);
    expect(gen.status, gen.stderr).toBe(0);
    expect(gen.stdout).toContain(
      `  redis user  the PHP handler connects as ACL user "${HANDLER.name}" (rule: ${handlerAclRule(PREFIX)}); its password in SESSION_MIGRATE_REDIS_PASSWORD on the PHP hosts`,
    );
    expect(readFileSync(artifacts().bootstrapFile, 'utf8')).toContain(`'username' => '${HANDLER.name}',`);
    const text = generatedText(p.artifactsDir);
    expect(text).not.toContain(MIGRATE.name);
    for (const pw of [MIGRATE.password, HANDLER.password, ADMIN.password]) expect(text).not.toContain(pw);
    // apply run again (another source, the strict switch) keeps the handler's user.
    const again = cli(['apply', '--plan', p.planFile], migrateEnv);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    expect(generatedText(p.artifactsDir)).not.toContain(MIGRATE.name);
    expect(readFileSync(artifacts().bootstrapFile, 'utf8')).toContain(`'username' => '${HANDLER.name}',`);
  });

  it('real PHP reads, writes, locks, regenerates and destroys sessions as the handler user, with nothing refused', async () => {
    // read a migrated session, then write it
    const read = request([`--id=${IDS[0]}`, '--set={"n":10}']);
    expect(read).toMatchObject({ started: true, session: { user: 'user0', n: 0 }, closed: true });
    expect(request([`--id=${IDS[0]}`]).session).toEqual({ user: 'user0', n: 10 });
    // a new session
    const fresh = request(['--set={"cart":["a"]}']);
    expect(fresh.started).toBe(true);
    expect(request([`--id=${fresh.idAfter}`]).session).toEqual({ cart: ['a'] });

    // the lock: taken while a request holds the session, by a connection of the handler user
    const keysBefore = await admin.dbsize();
    const held = await pausedRequest([`--id=${IDS[1]}`, '--set={"n":11}'], async () => {
      expect(await admin.dbsize()).toBe(keysBefore + 1);
      const clients = String(await admin.call('CLIENT', 'LIST')).split('\n');
      expect(clients.some((c) => c.includes(` user=${HANDLER.name} `))).toBe(true);
      expect(clients.some((c) => c.includes(` user=${MIGRATE.name} `))).toBe(false);
    });
    expect(held).toMatchObject({ started: true, session: { user: 'user1', n: 1 }, closed: true });
    expect(await admin.dbsize()).toBe(keysBefore);
    expect(request([`--id=${IDS[1]}`]).session).toEqual({ user: 'user1', n: 11 });

    // regenerate (a login): the data moves to the new ID, the old one is gone
    const regen = request([`--id=${IDS[2]}`, '--regenerate']);
    expect(regen).toMatchObject({ started: true, regenerated: true, closed: true });
    expect(regen.idAfter).not.toBe(IDS[2]);
    expect(request([`--id=${regen.idAfter}`]).session).toEqual({ user: 'user2', n: 2 });
    expect(request([`--id=${IDS[2]}`]).session).toEqual([]); // PHP's empty array

    // destroy (a logout)
    const codec = await EnvelopeCodec.create([readKeyFile(p.keyFile)]);
    const key0 = codec.keyName(PREFIX, IDS[0]!);
    codec.wipe();
    expect(await admin.exists(key0)).toBe(1);
    expect(request([`--id=${IDS[0]}`, '--destroy'])).toMatchObject({ started: true, destroyed: true });
    expect(await admin.exists(key0)).toBe(0);
    expect(request([`--id=${IDS[0]}`]).session).toEqual([]); // PHP's empty array

    // nothing was refused (NOPERM) nor a password wrong on the way
    expect(await admin.call('ACL', 'LOG')).toEqual([]);
  });

  it("with the migration user's name but the handler's password, PHP fails: the user really is the handler's", () => {
    const gen = cli(['generate', 'php', '--plan', p.planFile, '--handler-user', MIGRATE.name], migrateEnv);
    expect(gen.status, gen.stderr).toBe(0);
    const r = sessionRequest<Out>(artifacts(), [`--id=${IDS[1]}`], { dir: root, env: phpEnv() });
    expect(r.out.started).toBe(false);
    expect(r.logs.join('\n')).toMatch(/WRONGPASS/);
    expect(cli(['generate', 'php', '--plan', p.planFile, '--handler-user', HANDLER.name]).status).toBe(0);
  });

  it('plan --handler-user records it; a bad --handler-user gets one line, exit 2, and nothing written', () => {
    const planFile = join(root, 'plan2.json');
    const ok = cli([...planArgs({ ...p, planFile, artifactsDir: join(root, 'art2') }), '--handler-user', HANDLER.name], migrateEnv);
    expect(ok.status, ok.stderr).toBe(0);
    expect((JSON.parse(readFileSync(planFile, 'utf8')) as { artifacts: { handlerUser?: string } }).artifacts.handlerUser).toBe(
      HANDLER.name,
    );
    expect(ok.stdout).toContain(`  redis user  the PHP handler connects as ACL user "${HANDLER.name}"`);

    // generate php --json names the user, whether it is the handler's own, and its rule
    const json = cli(['generate', 'php', '--plan', planFile, '--json', '--dry-run']);
    expect(json.status, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { handlerUser: unknown }).handlerUser).toEqual({
      user: HANDLER.name,
      own: true,
      aclRule: handlerAclRule(PREFIX),
    });
    // a plan whose handler user was edited into one Redis cannot take is refused before anything is written
    const edited = JSON.parse(readFileSync(planFile, 'utf8')) as { artifacts: { handlerUser: string } };
    edited.artifacts.handlerUser = 'two words';
    writeFileSync(planFile, JSON.stringify(edited));
    const refused = cli(['generate', 'php', '--plan', planFile]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/artifacts\.handlerUser is not a Redis ACL user name \(edited by hand\?\); re-run plan\n$/);
    expect(existsSync(join(root, 'art2'))).toBe(false);

    const bootstrap = readFileSync(artifacts().bootstrapFile, 'utf8');
    for (const bad of ['', 'two words', 'tab\there', 'nl\nx']) {
      const planFile3 = join(root, 'plan3.json');
      const r = cli([...planArgs({ ...p, planFile: planFile3 }), '--handler-user', bad], migrateEnv);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--handler-user: (empty|a Redis ACL user name cannot contain spaces or control characters)/);
      expect(existsSync(planFile3)).toBe(false);
      const g = cli(['generate', 'php', '--plan', p.planFile, '--handler-user', bad]);
      expect(g.status, g.stderr).toBe(2);
      expect(g.stderr.trim().split('\n')).toHaveLength(1);
      expect(g.stdout).toBe('');
      expect(readFileSync(artifacts().bootstrapFile, 'utf8')).toBe(bootstrap);
    }
  });
});

describe('the PHP handler with its own ACL user on a Redis Cluster', () => {
  it('plan and apply as the migration user, generate php --handler-user; PHP (RedisCluster) works as the handler user, nothing refused', async () => {
    const cluster = await startCluster();
    const dir = mkdtempSync(join(root, 'cluster-'));
    try {
      await addAclUser(cluster, { ...MIGRATE, rule: `${aclRuleFor('apply', PREFIX, 'cluster')} +scan +cluster|nodes` });
      await addAclUser(cluster, { ...HANDLER, rule: handlerAclRule(PREFIX, 'cluster') });
      for (const n of cluster.nodes) await n.admin.call('ACL', 'LOG', 'RESET');
      const sessions = join(dir, 'sessions');
      mkdirSync(sessions, { mode: 0o700 });
      IDS.forEach((id, i) => writeFileSync(join(sessions, `sess_${id}`), `user|s:5:"user${i}";n|i:${i};`, { mode: 0o600 }));
      const q = {
        dir: sessions,
        target: `redis://${MIGRATE.name}@127.0.0.1:${cluster.nodes[0]!.port}/0`,
        keyFile: p.keyFile,
        planFile: join(dir, 'plan.json'),
        artifactsDir: join(dir, 'artifacts'),
      };
      const plan = cli(planArgs(q), migrateEnv);
      expect(plan.status, plan.stderr).toBe(0);
      expect(plan.stdout).toContain(`--handler-user NAME (rule: ${handlerAclRule(PREFIX, 'cluster')}; docs/redis.md)`);
      const apply = cli(['apply', '--plan', q.planFile], migrateEnv);
      expect(apply.status, apply.stderr + apply.stdout).toBe(0);
      const gen = cli(['generate', 'php', '--plan', q.planFile, '--handler-user', HANDLER.name]);
      expect(gen.status, gen.stderr).toBe(0);
      expect(generatedText(q.artifactsDir)).not.toContain(MIGRATE.name);
      const r: Rendered = { ...artifacts(), iniFile: join(q.artifactsDir, '99-session-migrate.ini') };
      const req = (args: string[]): Out => sessionRequest<Out>(r, args, { dir: root, env: phpEnv() }).out;

      expect(req([`--id=${IDS[0]}`, '--set={"n":10}'])).toMatchObject({ started: true, session: { user: 'user0', n: 0 }, closed: true });
      expect(req([`--id=${IDS[0]}`]).session).toEqual({ user: 'user0', n: 10 });
      const regen = req([`--id=${IDS[1]}`, '--regenerate']);
      expect(regen).toMatchObject({ started: true, regenerated: true });
      expect(req([`--id=${regen.idAfter}`]).session).toEqual({ user: 'user1', n: 1 });
      expect(req([`--id=${IDS[2]}`, '--destroy'])).toMatchObject({ started: true, destroyed: true });
      expect(req([`--id=${IDS[2]}`]).session).toEqual([]);
      // Nothing was refused (ACL LOG, as user:reason:object): RedisCluster's check of a pooled
      // connection (ECHO) is in handlerAclRule's cluster rule, and the CLIENT SETNAME of ioredis's
      // slot-map refresher in aclRuleFor's.
      const refused = new Set<string>();
      for (const n of cluster.nodes) {
        const entries = (await n.admin.call('ACL', 'LOG')) as unknown[][];
        for (const e of entries) {
          const f = new Map<string, unknown>();
          for (let i = 0; i + 1 < e.length; i += 2) f.set(String(e[i]), e[i + 1]);
          refused.add(`${String(f.get('username'))}:${String(f.get('reason'))}:${String(f.get('object'))}`);
        }
      }
      expect([...refused]).toEqual([]);
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});

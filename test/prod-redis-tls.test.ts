/**
 * TLS with a private CA and ACL users through the CLI (issue 10), against a TLS-only redis-server
 * (`--port 0 --tls-port`) requiring client certificates, with certificates made by openssl in the
 * test (test/support/redis-topologies.ts). The plan records the user name and the TLS file paths
 * (never contents) and every later command reuses them; a Redis source over TLS (--source-tls-*);
 * purge, rotate and rollback; every bad TLS input is one line naming the option, exit 2, nothing
 * written. Also a cluster and a Sentinel set-up over TLS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import {
  addAclUser,
  makeTlsMaterial,
  startCluster,
  startNode,
  startSentinel,
  startTlsRedis,
  type RedisNode,
  type TlsMaterial,
} from './support/redis-topologies.ts';
import {
  cli,
  cliTimed,
  countPresent,
  EXIT_AFTER_ERROR_MS,
  newKey,
  usageLine,
  writePlaintextSessions,
  writeSessionFiles,
} from './support/migrate-cli.ts';

const PREFIX = 'smsess:';
const SRC = 'PHPREDIS_SESSION:';
let tls: TlsMaterial;
let server: RedisNode;
let root: string;
let keyFile: string;
let codec: EnvelopeCodec;
let TLS_ARGS: string[];
const ENV = { SESSION_MIGRATE_REDIS_PASSWORD: 'app-pw-1', SESSION_MIGRATE_SOURCE_REDIS_PASSWORD: 'reader-pw-2' };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-tls-'));
  ({ keyFile, codec } = await newKey(root));
  tls = makeTlsMaterial();
  server = await startTlsRedis(tls, { mutual: true });
  // The target user may touch only the target prefix; the source user only the source prefix.
  await addAclUser(server, { name: 'app', password: 'app-pw-1', rule: `~${PREFIX}* +@all -@dangerous +info` });
  await addAclUser(server, { name: 'reader', password: 'reader-pw-2', rule: `~${SRC}* +@all -@dangerous +info` });
  TLS_ARGS = ['--tls-ca-file', tls.caFile, '--tls-cert-file', tls.clientCertFile, '--tls-key-file', tls.clientKeyFile];
});
afterAll(async () => {
  await server?.stop();
  tls?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
});

const url = (user: string) => server.url.replace('rediss://', `rediss://${user}@`);
const SOURCE_TLS = () => [
  '--source-tls-ca-file',
  tls.caFile,
  '--source-tls-cert-file',
  tls.clientCertFile,
  '--source-tls-key-file',
  tls.clientKeyFile,
];

describe('TLS with a private CA, mutual TLS, ACL users', () => {
  it('plan records user and TLS paths (not contents); apply, verify --plan --source, purge, rotate, rollback reuse them', async () => {
    const dir = join(root, 'files');
    const ids = writeSessionFiles(dir, 'tls', 200);
    const planFile = join(root, 'plan.json');
    const p = cli(
      [
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        url('app'),
        ...TLS_ARGS,
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
    const text = readFileSync(planFile, 'utf8');
    const plan = JSON.parse(text) as { target: { username: string; tls: boolean; tlsFiles: Record<string, string>; url: string } };
    expect(plan.target).toMatchObject({
      username: 'app',
      tls: true,
      url: server.url,
      tlsFiles: { caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile },
    });
    expect(text).not.toContain('BEGIN');
    expect(text).not.toContain('app-pw-1');
    expect(p.stdout).toMatch(/user "app"; with AUTH; TLS, CA /);

    // No TLS options, no user: everything comes from the plan.
    const a = cli(['apply', '--plan', planFile, '--json'], ENV);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect(await countPresent(server.admin, codec, PREFIX, ids)).toBe(200);
    // The PHP bootstrap gets the TLS files and the user, not a tls:// glued to the host... (the
    // generated template still takes TLS as phpredis's tls:// scheme until the handler rewrite).
    const v = cli(['verify', '--plan', planFile, '--source', `files:${dir}`], ENV);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    const r = cli(['rotate', '--target', url('app'), ...TLS_ARGS, '--key-file', keyFile], ENV);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const rb = cli(['rollback', '--plan', planFile, '--to', `files:${dir}`, '--dry-run'], ENV);
    expect(rb.status, rb.stderr + rb.stdout).toBe(0);
    expect(rb.stdout).toMatch(/would write 0, unchanged 200/);
    const pu = cli(['purge', '--plan', planFile], ENV);
    expect(pu.status, pu.stderr + pu.stdout).toBe(0);
    expect(pu.stdout).toMatch(/deleted +200 file/);
    await server.admin.flushall();
  });

  it('a Redis source over TLS with its own user (--source-tls-*), the target on the same server', async () => {
    const ids = await writePlaintextSessions(server.admin, SRC, 'tsrc', 30);
    const spec = `redis:${url('reader')}?prefix=${encodeURIComponent(SRC)}`;
    const planFile = join(root, 'src-plan.json');
    const p = cli(
      [
        'plan',
        '--source',
        spec,
        ...SOURCE_TLS(),
        '--target',
        url('app'),
        ...TLS_ARGS,
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
    const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { source: { username: string; tlsFiles: Record<string, string> } };
    expect(plan.source).toMatchObject({ username: 'reader', tlsFiles: { caFile: tls.caFile } });
    const a = cli(['apply', '--plan', planFile, '--json'], ENV);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect(await countPresent(server.admin, codec, PREFIX, ids)).toBe(30);
    expect(cli(['purge', '--plan', planFile], ENV).status).toBe(0);
    const v = cli(['verify', '--plan', planFile], ENV);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    expect(v.stdout).toMatch(/0 plaintext session key\(s\) left/);
    // The source password comes only from its own variable.
    expect(usageLine(cli(['verify', '--plan', planFile], { SESSION_MIGRATE_REDIS_PASSWORD: 'app-pw-1' }))).toMatch(
      /source Redis.*SESSION_MIGRATE_SOURCE_REDIS_PASSWORD/,
    );
    await server.admin.flushall();
  });

  it('a password in the URL still works, with a warning', async () => {
    const r = cli(['verify', '--target', server.url.replace('rediss://', 'rediss://app:app-pw-1@'), ...TLS_ARGS, '--key-file', keyFile]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(/warning: the password in the target URL is visible .*SESSION_MIGRATE_REDIS_PASSWORD/);
    expect(r.stdout + r.stderr).not.toContain('app-pw-1');
  });

  it('a certificate problem: the process exits at once after its error line (no ioredis timer left)', async () => {
    const dir = join(root, 'untrusted');
    writeSessionFiles(dir, 'unt', 3);
    const r = await cliTimed(
      [
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        url('app'),
        '--key-file',
        keyFile,
        '--out',
        join(root, 'untrusted.json'),
        '--tls-ca-file',
        tls.otherCaFile,
      ],
      ENV,
    );
    expect(usageLine(r)).toMatch(/certificate problem.*--tls-ca-file/);
    expect(r.lingerMs).toBeLessThan(EXIT_AFTER_ERROR_MS);
  });

  it('bad input: one line naming the option, exit 2, nothing written', async () => {
    const dir = join(root, 'bad');
    writeSessionFiles(dir, 'bad', 3);
    const plan = (target: string, extra: string[], env: Record<string, string> = ENV) =>
      cli(['plan', '--source', `files:${dir}`, '--target', target, '--key-file', keyFile, '--out', join(root, 'bad.json'), ...extra], env);
    // The system CAs do not know our private CA.
    expect(usageLine(plan(url('app'), ['--tls-cert-file', tls.clientCertFile, '--tls-key-file', tls.clientKeyFile]))).toMatch(
      /certificate problem: .*not signed by a trusted CA.*--tls-ca-file/,
    );
    // Another CA than the one that signed the server's certificate.
    expect(
      usageLine(
        plan(url('app'), ['--tls-ca-file', tls.otherCaFile, '--tls-cert-file', tls.clientCertFile, '--tls-key-file', tls.clientKeyFile]),
      ),
    ).toMatch(/certificate problem.*--tls-ca-file/);
    // Mutual TLS without a client certificate.
    expect(usageLine(plan(url('app'), ['--tls-ca-file', tls.caFile]))).toMatch(
      /certificate problem: the server requires a client certificate; give --tls-cert-file and --tls-key-file/,
    );
    // A CA file that is missing or not PEM; a client key without its certificate.
    expect(usageLine(plan(url('app'), ['--tls-ca-file', join(root, 'nope.pem')]))).toMatch(/--tls-ca-file .*nope\.pem: no such file/);
    expect(usageLine(plan(url('app'), ['--tls-ca-file', tls.notPemFile]))).toMatch(/--tls-ca-file .* is not a PEM certificate/);
    expect(usageLine(plan(url('app'), ['--tls-ca-file', tls.caFile, '--tls-key-file', tls.clientKeyFile]))).toMatch(
      /--tls-key-file needs --tls-cert-file/,
    );
    expect(
      usageLine(
        plan(url('app'), ['--tls-ca-file', tls.caFile, '--tls-cert-file', tls.clientCertFile, '--tls-key-file', tls.otherClientKeyFile]),
      ),
    ).toMatch(/the key does not belong to the certificate/);
    // TLS options with a redis:// URL; plain TCP to a TLS-only port.
    expect(usageLine(plan(url('app').replace('rediss:', 'redis:'), ['--tls-ca-file', tls.caFile]))).toMatch(
      /given, but the target URL is not TLS: use rediss:\/\//,
    );
    expect(usageLine(plan(url('app').replace('rediss:', 'redis:'), []))).toMatch(/cannot connect.*TLS-only server\? use rediss:\/\//);
    // The reverse: TLS to a plaintext port. The server never answers a ClientHello (it waits for the end
    // of an inline command): found by a plaintext PING, not left to a bare ETIMEDOUT.
    const plain = await startNode();
    try {
      expect(usageLine(plan(`rediss://127.0.0.1:${plain.port}/0`, ['--tls-ca-file', tls.caFile]))).toMatch(
        new RegExp(
          `^session-migrate: cannot connect to Redis at rediss://127\\.0\\.0\\.1:${plain.port}/0: the server does not speak TLS on this port: it answered in plaintext Redis; use redis:// instead of rediss:// \\(redis\\+sentinel:// instead of rediss\\+sentinel://\\), or check the port$`,
        ),
      );
      expect(Number(await plain.admin.dbsize())).toBe(0);
    } finally {
      await plain.stop();
    }
    // An unknown scheme.
    expect(usageLine(plan(url('app').replace('rediss:', 'memcached:'), []))).toMatch(/unsupported target scheme "memcached:"/);
    // A source key without its certificate.
    expect(
      usageLine(
        cli(
          [
            'plan',
            '--source',
            `redis:${url('reader')}`,
            '--source-tls-key-file',
            tls.clientKeyFile,
            '--target',
            url('app'),
            ...TLS_ARGS,
            '--key-file',
            keyFile,
            '--out',
            join(root, 'bad.json'),
          ],
          ENV,
        ),
      ),
    ).toMatch(/--source-tls-key-file needs --source-tls-cert-file/);
    // Wrong password; an ACL rule without the prefix.
    const wrong = plan(url('app'), TLS_ARGS, { SESSION_MIGRATE_REDIS_PASSWORD: 'Wr0ngPassw0rdXYZ' });
    expect(usageLine(wrong)).toMatch(/WRONGPASS.*check the user name in the URL and the password given in SESSION_MIGRATE_REDIS_PASSWORD/);
    expect(wrong.stdout + wrong.stderr).not.toContain('Wr0ngPassw0rdXYZ');
    expect(Number(await server.admin.dbsize())).toBe(0);
  });

  it('--tls-server-name: a certificate issued for a name, reached by IP', async () => {
    const named = await startTlsRedis(tls, { serverCert: 'named' });
    try {
      const dir = join(root, 'named');
      writeSessionFiles(dir, 'nmd', 5);
      const base = [
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        named.url,
        '--key-file',
        keyFile,
        '--tls-ca-file',
        tls.caFile,
        '--out',
        join(root, 'named.json'),
        '--artifacts-dir',
        join(root, 'named-art'),
      ];
      expect(usageLine(cli(base))).toMatch(
        new RegExp(
          `certificate problem: .*not valid for this host name or IP \\(ERR_TLS_CERT_ALTNAME_INVALID\\); it is issued for DNS:${tls.namedServerName.replace(/\./g, '\\.')}; .*--tls-server-name NAME$`,
        ),
      );
      // A --tls-server-name that was given but does not match: said so, with the names the certificate holds
      const wrongName = usageLine(cli([...base, '--tls-server-name', 'wrong.name']));
      expect(wrongName).toMatch(
        new RegExp(
          `certificate problem: the server's certificate does not match the name given with --tls-server-name \\(wrong\\.name\\); it is issued for DNS:${tls.namedServerName.replace(/\./g, '\\.')} \\(ERR_TLS_CERT_ALTNAME_INVALID\\); give one of its names$`,
        ),
      );
      expect(wrongName).not.toMatch(/give that name with/);
      const ok = cli([...base, '--tls-server-name', tls.namedServerName]);
      expect(ok.status, ok.stderr).toBe(0);
      expect(
        (JSON.parse(readFileSync(join(root, 'named.json'), 'utf8')) as { target: { tlsFiles: { serverName: string } } }).target.tlsFiles
          .serverName,
      ).toBe(tls.namedServerName);
      const a = cli(['apply', '--plan', join(root, 'named.json')]);
      expect(a.status, a.stderr + a.stdout).toBe(0);
    } finally {
      await named.stop();
    }
  });
});

describe('cluster and Sentinel over TLS', () => {
  it('a 3-master cluster over mutual TLS: plan -> apply -> verify --plan --source', async () => {
    const cluster = await startCluster({ tls: { material: tls, mutual: true } });
    try {
      const dir = join(root, 'tls-cluster');
      const ids = writeSessionFiles(dir, 'tcl', 300);
      const planFile = join(root, 'tls-cluster.json');
      const p = cli([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        cluster.url,
        ...TLS_ARGS,
        '--key-file',
        keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(root, 'tcl-art'),
      ]);
      expect(p.status, p.stderr).toBe(0);
      expect(p.stdout).toMatch(/Redis Cluster, 3 master/);
      expect(cli(['apply', '--plan', planFile]).status).toBe(0);
      expect(await countPresent(cluster.client(), codec, PREFIX, ids)).toBe(300);
      const v = cli(['verify', '--plan', planFile, '--source', `files:${dir}`]);
      expect(v.status, v.stderr + v.stdout).toBe(0);
    } finally {
      await cluster.stop();
    }
  });

  it('rediss+sentinel://: TLS to the sentinel and to the master', async () => {
    const s = await startSentinel({ tls: { material: tls, mutual: true } });
    try {
      const dir = join(root, 'tls-sentinel');
      const ids = writeSessionFiles(dir, 'tsn', 100);
      const planFile = join(root, 'tls-sentinel.json');
      expect(s.url).toMatch(/^rediss\+sentinel:/);
      const p = cli([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        s.url,
        ...TLS_ARGS,
        '--key-file',
        keyFile,
        '--out',
        planFile,
        '--artifacts-dir',
        join(root, 'tsn-art'),
      ]);
      expect(p.status, p.stderr).toBe(0);
      const a = cli(['apply', '--plan', planFile]);
      expect(a.status, a.stderr + a.stdout).toBe(0);
      expect(await countPresent((await s.currentMaster()).admin, codec, PREFIX, ids)).toBe(100);
      expect(cli(['verify', '--plan', planFile]).status).toBe(0);
    } finally {
      await s.stop();
    }
  });
});

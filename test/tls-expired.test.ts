/**
 * An expired client certificate (TLS is always verified): a certificate past its notAfter that a
 * mutual-TLS server refuses (SSL alert 45, "certificate expired") is one line that names the file and
 * the option, exit 2, nothing written; never OpenSSL's raw error text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTlsMaterial, startTlsRedis, type RedisNode, type TlsMaterial } from './support/redis-topologies.ts';
import { cli, newKey, usageLine, writeSessionFiles } from './support/migrate-cli.ts';

let root: string;
let tls: TlsMaterial;
let keyFile: string;
const servers: RedisNode[] = [];

/**
 * A certificate signed by the material's CA that expired in 2020 (`openssl ca -startdate -enddate`:
 * `openssl x509 -req` cannot set a notBefore in the past). Returns the certificate and key files.
 */
function expiredCertificate(name: string, ext: string): { cert: string; key: string } {
  const d = join(root, `ca-${name}`);
  mkdirSync(d);
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(join(d, 'index.txt'), '');
  writeFileSync(join(d, 'serial'), '1000\n');
  writeFileSync(
    join(d, 'ca.cnf'),
    `[ca]\ndefault_ca=c\n[c]\ndir=.\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\ndefault_md=sha256\npolicy=p\nx509_extensions=e\n[p]\ncommonName=supplied\n[e]\n${ext}\n`,
  );
  run([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'x.key',
    '-out',
    'x.csr',
    '-subj',
    `/CN=${name}`,
  ]);
  run([
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-cert',
    tls.caFile,
    '-keyfile',
    join(tls.dir, 'ca.key'),
    '-in',
    'x.csr',
    '-out',
    'x.crt',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
  ]);
  return { cert: join(d, 'x.crt'), key: join(d, 'x.key') };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-tls-expired-'));
  tls = makeTlsMaterial();
  ({ keyFile } = await newKey(root));
}, 60_000);
afterAll(async () => {
  for (const s of servers) await s.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  tls?.remove();
});

describe('expired TLS certificates', () => {
  it('an expired client certificate refused by a mutual-TLS server: one line naming the file and the option, exit 2, nothing written', async () => {
    const server = await startTlsRedis(tls, { mutual: true });
    servers.push(server);
    const expired = expiredCertificate('expired-client', 'extendedKeyUsage=clientAuth');
    const dir = join(root, 'sessions');
    writeSessionFiles(dir, 'exp', 3);
    const r = cli([
      'plan',
      '--source',
      `files:${dir}`,
      '--target',
      `rediss://127.0.0.1:${server.port}/0`,
      '--tls-ca-file',
      tls.caFile,
      '--tls-cert-file',
      expired.cert,
      '--tls-key-file',
      expired.key,
      '--key-file',
      keyFile,
      '--out',
      join(root, 'plan.json'),
    ]);
    expect(r.status).toBe(2);
    const line = usageLine(r);
    expect(line).toBe(
      `session-migrate: cannot connect to Redis at rediss://127.0.0.1:${server.port}/0: certificate problem: the server refused the client certificate ${expired.cert}: it has expired (SSL alert 45); give a valid one with --tls-cert-file`,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(Number(await server.admin.dbsize())).toBe(0);
  });
});

/**
 * A server certificate that has expired: one line that says so, with this host's
 * clock and what to do (renew it, or set the clock right), exit 2, nothing written. The server is a
 * TLS listener of Node's own presenting certificates made by openssl in the test: the handshake fails
 * before any Redis command, so what answers after it does not matter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './support/ports.ts';
import { makeTlsMaterial, type TlsMaterial } from './support/redis-topologies.ts';
import { cliChild, newKey, usageLine, writeSessionFiles } from './support/migrate-cli.ts';

let root: string;
let keyFile: string;
let tls: TlsMaterial;

const openssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: tls.dir, stdio: ['ignore', 'ignore', 'pipe'] });
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A leaf for IP 127.0.0.1 signed by ca.crt, valid for `days` days from now (0: it expires at once). */
function leaf(name: string, days: number): void {
  openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(tls.dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    String(days),
    '-extfile',
    `${name}.ext`,
  ]);
}

/** A TLS listener presenting `name`.crt on a free loopback port; closes every connection it gets. */
async function listen(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: readFileSync(join(tls.dir, `${name}.crt`)), key: readFileSync(join(tls.dir, `${name}.key`)) }, (s) =>
    s.destroy(),
  );
  server.on('tlsClientError', () => {});
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sm-tls-expired-'));
  ({ keyFile } = await newKey(root));
  // The CA of the other TLS tests (makeTlsMaterial: ca.crt and ca.key in its directory).
  mkdirSync(join(root, 'tls'));
  tls = makeTlsMaterial(join(root, 'tls'));
  leaf('expired', 0); // notAfter = notBefore = now: expired one second later
  await new Promise((r) => setTimeout(r, 1_100));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('an expired server certificate', () => {
  it('plan: one line naming the expiry, this host clock and what to do; exit 2; no plan written', async () => {
    const { server, port } = await listen('expired');
    try {
      const dir = join(root, 'sessions');
      writeSessionFiles(dir, 'exp', 2);
      const out = join(root, 'plan.json');
      const r = await cliChild([
        'plan',
        '--source',
        `files:${dir}`,
        '--target',
        `rediss://127.0.0.1:${port}/0`,
        '--tls-ca-file',
        tls.caFile,
        '--key-file',
        keyFile,
        '--out',
        out,
      ]).done;
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(usageLine(r)).toMatch(
        /certificate problem: the server's certificate, or a CA certificate of its chain, has expired \(CERT_HAS_EXPIRED; this host's clock says \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\): renew it on the server, or set this host's clock right if it is wrong$/,
      );
      expect(existsSync(out)).toBe(false);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

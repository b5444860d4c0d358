/**
 * Real Redis topologies for tests: a TLS-only server (optionally mutual TLS), ACL users, a 3-master
 * Redis Cluster (optionally over TLS) with slot migration, and master + replica + sentinel with a forced
 * failover. Every process is a real `redis-server` on a free loopback port with `--save ''`, started in
 * its own temporary directory (under TMPDIR, which test/support/global-setup.ts points at a per-run
 * directory), stopped by PID and its directory removed by `stop()`.
 *
 * Start-up is kept to seconds so that one test file can start a topology in `beforeAll` and share it
 * across its tests (stop it in `afterAll`).
 *
 * Sources: TLS options https://redis.io/docs/latest/operate/oss_and_stack/management/security/encryption/ ;
 * cluster set-up https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/ ; slot migration
 * https://redis.io/commands/cluster-setslot/ ; Sentinel https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/ .
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis, Cluster } from 'ioredis';
import { freePort } from './servers.ts';

const execFileAsync = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Certificates

/**
 * Certificates and keys made with openssl for one test file (PEM files in `dir`). EC P-256 keys keep
 * generation to a few tens of milliseconds.
 * - `caFile`: the CA that signed `serverCertFile` (SAN IP:127.0.0.1, DNS:localhost) and `clientCertFile`.
 * - `namedServerCertFile`: signed by the same CA, but valid only for `namedServerName` (no IP SAN), to
 *   test `--tls-server-name`.
 * - `otherCaFile`: a second CA nobody trusts; `otherServerCertFile` is a server certificate it signed
 *   (SAN 127.0.0.1), and `otherClientCertFile` a client certificate it signed.
 * - `notPemFile`: a file that exists and is not PEM.
 */
export interface TlsMaterial {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  namedServerCertFile: string;
  namedServerKeyFile: string;
  namedServerName: string;
  otherCaFile: string;
  otherServerCertFile: string;
  otherServerKeyFile: string;
  otherClientCertFile: string;
  otherClientKeyFile: string;
  notPemFile: string;
  /** Removes `dir`. */
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Makes a CA, a server certificate, a client certificate and an untrusted second CA with openssl
 * (`openssl req -x509` / `openssl x509 -req`), valid for two days.
 * @param dir where to write them; default a new temporary directory (removed by `remove()`).
 * @throws Error when openssl fails.
 */
export function makeTlsMaterial(dir?: string): TlsMaterial {
  const d = dir ?? mkdtempSync(join(tmpdir(), 'sm-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, cn: string): void => {
    openssl(
      [
        'req',
        '-x509',
        ...ec,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-subj',
        `/CN=${cn}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      d,
    );
  };
  const leaf = (name: string, caName: string, cn: string, ext: string): void => {
    openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], d);
    writeFileSync(join(d, `${name}.ext`), ext);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${caName}.crt`,
        '-CAkey',
        `${caName}.key`,
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
      ],
      d,
    );
  };
  // Servers also present their certificate as clients (replication, cluster bus, MIGRATE): both EKUs.
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n';
  ca('ca', 'session-migrate test CA');
  leaf('server', 'ca', 'redis test server', serverExt);
  leaf('client', 'ca', 'session-migrate test client', 'extendedKeyUsage=clientAuth\n');
  const namedServerName = 'redis.internal.test';
  leaf('named', 'ca', namedServerName, `subjectAltName=DNS:${namedServerName}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  ca('other-ca', 'untrusted test CA');
  leaf('other-server', 'other-ca', 'untrusted redis server', serverExt);
  leaf('other-client', 'other-ca', 'untrusted client', 'extendedKeyUsage=clientAuth\n');
  writeFileSync(join(d, 'not-pem.crt'), 'this is not a certificate\n');
  const f = (n: string): string => join(d, n);
  return {
    dir: d,
    caFile: f('ca.crt'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
    namedServerCertFile: f('named.crt'),
    namedServerKeyFile: f('named.key'),
    namedServerName,
    otherCaFile: f('other-ca.crt'),
    otherServerCertFile: f('other-server.crt'),
    otherServerKeyFile: f('other-server.key'),
    otherClientCertFile: f('other-client.crt'),
    otherClientKeyFile: f('other-client.key'),
    notPemFile: f('not-pem.crt'),
    remove: () => rmSync(d, { recursive: true, force: true }),
  };
}

/**
 * TLS set-up of a server. `mutual` adds `--tls-auth-clients yes` (clients must present a certificate
 * signed by the CA); `serverCert` picks which certificate the server presents: `trusted` (default,
 * SAN 127.0.0.1), `named` (valid only for `material.namedServerName`) or `untrusted` (signed by the
 * second CA).
 */
export interface TlsServerOptions {
  material: TlsMaterial;
  mutual?: boolean;
  serverCert?: 'trusted' | 'named' | 'untrusted';
}

function tlsServerArgs(tls: TlsServerOptions): string[] {
  const m = tls.material;
  const [cert, key] =
    tls.serverCert === 'named'
      ? [m.namedServerCertFile, m.namedServerKeyFile]
      : tls.serverCert === 'untrusted'
        ? [m.otherServerCertFile, m.otherServerKeyFile]
        : [m.serverCertFile, m.serverKeyFile];
  return [
    '--tls-cert-file',
    cert,
    '--tls-key-file',
    key,
    '--tls-ca-cert-file',
    m.caFile,
    '--tls-auth-clients',
    tls.mutual === true ? 'yes' : 'no',
  ];
}

/** ioredis `tls` options for an admin client of a server with these TLS options (trusts both CAs). */
function adminTls(tls: TlsServerOptions): Record<string, unknown> {
  const m = tls.material;
  return {
    ca: [readFileSync(m.caFile), readFileSync(m.otherCaFile)],
    cert: readFileSync(m.clientCertFile),
    key: readFileSync(m.clientKeyFile),
    ...(tls.serverCert === 'named' ? { servername: m.namedServerName } : {}),
  };
}

/** redis-cli arguments that connect to a server with these TLS options. */
function cliTlsArgs(tls: TlsServerOptions | undefined): string[] {
  if (tls === undefined) return [];
  const m = tls.material;
  const ca = tls.serverCert === 'untrusted' ? m.otherCaFile : m.caFile;
  return [
    '--tls',
    '--cacert',
    ca,
    '--cert',
    m.clientCertFile,
    '--key',
    m.clientKeyFile,
    ...(tls.serverCert === 'named' ? ['--sni', m.namedServerName] : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// One server

/**
 * One redis-server (or sentinel) process. `url` is what a CLI user would type (`redis://` or
 * `rediss://127.0.0.1:PORT/0`, no credentials); `admin` is a client as the default user (no password)
 * for set-up and assertions, closed by `stop()`.
 */
export interface RedisNode {
  host: string;
  port: number;
  pid: number;
  url: string;
  tls?: TlsServerOptions;
  dir: string;
  admin: Redis;
  /** Runs `redis-cli` against this node and returns its stdout (trimmed). */
  cli(...args: string[]): Promise<string>;
  /** SIGTERM by PID (SIGKILL after 5 s), then removes the node's directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL by PID (a crash); the directory stays until `stop()`. */
  kill(): Promise<void>;
  /**
   * Starts the node again after `kill()` (a crash and a restart by a supervisor, a maintenance
   * reboot): the same redis-server arguments, port, directory and log file, so a cluster node reads
   * its own nodes.conf again (same node ID, slots, epochs and peers) and rejoins its cluster on its
   * own. With `--save ''` it starts with no key: every key it held is lost, as on a node without
   * persistence. Sets a new `pid` and connects `admin` again (once it answers PING).
   * @throws Error when the node is still running or was stopped, or does not start (its log's last lines).
   */
  restart(): Promise<void>;
  /**
   * SIGSTOP by PID: the process hangs without closing its connections (a frozen VM, a long GC pause),
   * so peers see it connected but it answers nothing; `resume()` (SIGCONT) lets it go on; `stop()`
   * works on a paused node. Do not use `admin` or `cli` while it is paused (they would wait).
   */
  pause(): void;
  resume(): void;
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  if (child.pid !== undefined) {
    process.kill(child.pid, signal);
    // A node a test paused (SIGSTOP) gets the signal only once it runs again.
    if (signal !== 'SIGKILL') process.kill(child.pid, 'SIGCONT');
  }
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

async function waitForListen(port: number, child: ChildProcess, what: string, logFile: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .slice(-3)
          .join(' | ');
      } catch {
        /* none */
      }
      throw new Error(`${what} exited at start (code ${child.exitCode}): ${log}`);
    }
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: HOST }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${HOST}:${port}`);
    await sleep(25);
  }
}

/**
 * Starts one redis-server on a free loopback port with `--save ''` and `--appendonly no`, in a new
 * temporary directory. With `tls`, the server listens only on TLS (`--port 0 --tls-port PORT`), and
 * replication and the cluster bus use TLS too (`--tls-replication yes`, `--tls-cluster yes`).
 * @param options.args further redis-server arguments (`['--cluster-enabled', 'yes']`, ...)
 * @param options.sentinelConf when set, this text is written to sentinel.conf and the process runs
 *   as a sentinel (`redis-server sentinel.conf --sentinel`); `port`, `bind`, `dir` and the TLS lines
 *   are added here.
 * @param options.adminPassword password of the default user, for the `admin` client (a sentinel with `requirepass`)
 * @throws Error naming the last lines of the server's log when it does not start.
 */
export async function startNode(
  options: { tls?: TlsServerOptions; args?: string[]; sentinelConf?: string; port?: number; adminPassword?: string } = {},
): Promise<RedisNode> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'sm-topo-'));
  const logFile = join(dir, 'redis.log');
  const tlsArgs =
    options.tls !== undefined
      ? ['--port', '0', '--tls-port', String(port), ...tlsServerArgs(options.tls), '--tls-replication', 'yes']
      : ['--port', String(port)];
  let argv: string[];
  if (options.sentinelConf !== undefined) {
    const conf = join(dir, 'sentinel.conf');
    // Sentinel rewrites its configuration file: it must be writable and its own.
    writeFileSync(conf, options.sentinelConf);
    argv = [conf, '--sentinel', '--bind', HOST, '--dir', dir, '--logfile', logFile, ...tlsArgs, ...(options.args ?? [])];
  } else {
    argv = [
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--logfile',
      logFile,
      ...tlsArgs,
      ...(options.tls !== undefined && (options.args ?? []).includes('--cluster-enabled') ? ['--tls-cluster', 'yes'] : []),
      ...(options.args ?? []),
    ];
  }
  let child = spawn('redis-server', argv, { stdio: 'ignore' });
  try {
    await waitForListen(port, child, 'redis-server', logFile);
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const admin = new Redis({
    host: HOST,
    port,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    ...(options.adminPassword !== undefined ? { password: options.adminPassword } : {}),
    ...(options.tls !== undefined ? { tls: adminTls(options.tls) } : {}),
  });
  admin.on('error', () => undefined);
  const connectAdmin = async (): Promise<void> => {
    await admin.connect();
    // A server that is still LOADING answers PING with an error: wait until it answers.
    for (let i = 0; ; i++) {
      try {
        await admin.ping();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(20);
      }
    }
  };
  try {
    await connectAdmin();
  } catch (err) {
    admin.disconnect();
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  const node: RedisNode = {
    host: HOST,
    port,
    pid: child.pid ?? -1,
    url: `${options.tls !== undefined ? 'rediss' : 'redis'}://${HOST}:${port}/0`,
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    dir,
    admin,
    async cli(...args: string[]) {
      const { stdout } = await execFileAsync(
        'redis-cli',
        ['-h', HOST, '-p', String(port), ...cliTlsArgs(options.tls), ...args],
        options.adminPassword !== undefined ? { env: { ...process.env, REDISCLI_AUTH: options.adminPassword } } : {},
      );
      return stdout.trim();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      admin.disconnect();
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      admin.disconnect();
      await stopChild(child, 'SIGKILL');
    },
    async restart() {
      if (stopped) throw new Error(`restart() of node ${port}, which was stopped`);
      if (child.exitCode === null && child.signalCode === null)
        throw new Error(`restart() of node ${port}, which is still running: kill() it first`);
      child = spawn('redis-server', argv, { stdio: 'ignore' });
      node.pid = child.pid ?? -1;
      await waitForListen(port, child, 'redis-server (restarted)', logFile);
      await connectAdmin();
    },
    pause() {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGSTOP');
    },
    resume() {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGCONT');
    },
  };
  return node;
}

/**
 * Starts a TLS-only redis-server (`--port 0 --tls-port P`) with the certificates of `material`.
 * @param options.mutual require client certificates (`--tls-auth-clients yes`)
 * @param options.serverCert which certificate the server presents (see TlsServerOptions)
 */
export function startTlsRedis(
  material: TlsMaterial,
  options: { mutual?: boolean; serverCert?: 'trusted' | 'named' | 'untrusted'; args?: string[] } = {},
): Promise<RedisNode> {
  return startNode({
    tls: {
      material,
      ...(options.mutual !== undefined ? { mutual: options.mutual } : {}),
      ...(options.serverCert !== undefined ? { serverCert: options.serverCert } : {}),
    },
    ...(options.args !== undefined ? { args: options.args } : {}),
  });
}

/**
 * Writes `n` keys of another application (`app:0` .. `app:<n-1>`, value `x`) into a cluster, 1,000
 * pipelined at a time: enough keys that each master takes many SCAN calls (a scan can be caught in
 * the middle of a node).
 */
export async function fillOtherKeys(cluster: ClusterTopology, n: number): Promise<void> {
  const c = cluster.client();
  for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, n - i) }, (_, j) => c.set(`app:${i + j}`, 'x')));
}

/** SCAN calls a node ran so far (INFO commandstats `cmdstat_scan`; 0 before the first). */
export async function scanCalls(n: RedisNode): Promise<number> {
  const line = parseInfo(String(await n.admin.info('commandstats'))).get('cmdstat_scan');
  return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
}

/** Parses `INFO` text into a map of field -> value. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n').join('\n').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// ACL users

/**
 * Adds (or replaces) an ACL user on every data node given: `ACL SETUSER user reset on >password RULE...`.
 * ACLs are per node (not replicated, not shared across a cluster), so pass every node of a topology
 * (a cluster's or a sentinel set-up's `nodes`). The rule is split on whitespace, e.g.
 * `'~sess:* +@all -@dangerous +info'` (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/).
 * @throws Error with Redis's message when the rule is invalid.
 */
export async function addAclUser(
  nodes: RedisNode | RedisNode[] | { nodes: RedisNode[] },
  user: { name: string; password: string; rule: string },
): Promise<void> {
  const list = Array.isArray(nodes) ? nodes : 'nodes' in nodes ? nodes.nodes : [nodes];
  const rule = user.rule.split(/\s+/).filter((t) => t !== '');
  for (const node of list) {
    await node.admin.call('ACL', 'SETUSER', user.name, 'reset', 'on', `>${user.password}`, ...rule);
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

/**
 * A Redis Cluster; `url` names its first node, as a user would give one seed. `nodes` are every node
 * (masters and replicas: ACL users go on each); `masters` and `replicas` are the roles `redis-cli
 * --cluster create` gave them (a failover swaps roles afterwards: ask `roles()` for the roles now).
 */
export interface ClusterTopology {
  nodes: RedisNode[];
  /** The masters at start (every node when started without replicas). */
  masters: RedisNode[];
  /** The replicas at start (none by default). */
  replicas: RedisNode[];
  url: string;
  tls?: TlsServerOptions;
  /** Node ID of each node (CLUSTER MYID), by port. */
  ids: Map<number, string>;
  /** The node serving a slot now (from CLUSTER SLOTS of the first node). */
  ownerOf(slot: number): Promise<RedisNode>;
  /**
   * Roles now, from CLUSTER NODES of `via` (default: the first node that answers among `nodes`):
   * each master with its replicas (`master_link_status` not checked here).
   */
  roles(via?: RedisNode): Promise<{ masters: RedisNode[]; replicasOf: Map<RedisNode, RedisNode[]> }>;
  /** Waits until every node given (default every node) reports `cluster_state:ok` and every replica among them `master_link_status:up`. */
  waitForSync(nodes?: RedisNode[], timeoutMs?: number): Promise<void>;
  /** An ioredis Cluster client (default user) for assertions; closed by `stop()`. */
  client(): Cluster;
  /** Total DBSIZE over the nodes that are masters now (a replica's copies are not counted twice). */
  dbsize(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts `masters` (default 3) x (1 + `replicas`, default 0) redis-servers with `cluster-enabled yes`
 * (each with its own bus port from `--cluster-port`), joins them with `redis-cli --cluster create ...
 * --cluster-replicas N --cluster-yes`, and waits until every node reports `cluster_state:ok` and every
 * replica `master_link_status:up`. With replicas, every node syncs diskless at once
 * (`--repl-diskless-sync yes --repl-diskless-sync-delay 0`), so a full sync takes milliseconds. With
 * `tls`, clients, the cluster bus, replication and MIGRATE all use TLS.
 * Source: https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/#create-a-redis-cluster
 * @throws Error when the cluster is not ready within 20 s.
 */
export async function startCluster(
  options: { masters?: number; replicas?: number; tls?: TlsServerOptions } = {},
): Promise<ClusterTopology> {
  const masterCount = options.masters ?? 3;
  const replicaCount = options.replicas ?? 0;
  if (!Number.isInteger(replicaCount) || replicaCount < 0) throw new Error(`replicas must be a whole number >= 0, got ${replicaCount}`);
  const replArgs = replicaCount > 0 ? ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'] : [];
  const settled = await Promise.allSettled(
    Array.from({ length: masterCount * (1 + replicaCount) }, async () =>
      withFreshPorts((busPort) =>
        startNode({
          ...(options.tls !== undefined ? { tls: options.tls } : {}),
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '3000',
            ...replArgs,
          ],
        }),
      ),
    ),
  );
  const nodes = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    // One node did not start: stop those that did (by PID), none is left behind.
    await Promise.all(nodes.map((n) => n.stop()));
    throw failed.reason;
  }
  let clients: Cluster[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of clients) c.disconnect();
    clients = [];
    await Promise.all(nodes.map((n) => n.stop()));
  };
  const byId = new Map<string, RedisNode>();
  const roles = async (via?: RedisNode): Promise<{ masters: RedisNode[]; replicasOf: Map<RedisNode, RedisNode[]> }> => {
    let text: string | undefined;
    let lastErr: unknown;
    for (const n of via !== undefined ? [via] : nodes) {
      try {
        text = String(await n.admin.call('CLUSTER', 'NODES'));
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (text === undefined) throw lastErr instanceof Error ? lastErr : new Error('no node answered CLUSTER NODES');
    // CLUSTER NODES: <id> <ip:port@cport> <flags> <master id or -> ... (https://redis.io/commands/cluster-nodes/)
    const masters: RedisNode[] = [];
    const replicasOf = new Map<RedisNode, RedisNode[]>();
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    for (const l of lines) {
      const [id, , flags] = l.split(' ');
      const n = byId.get(id!);
      if (n !== undefined && flags!.split(',').includes('master')) {
        masters.push(n);
        replicasOf.set(n, []);
      }
    }
    for (const l of lines) {
      const [id, , flags, masterId] = l.split(' ');
      const n = byId.get(id!);
      const m = byId.get(masterId!);
      if (n !== undefined && m !== undefined && flags!.split(',').includes('slave')) replicasOf.get(m)?.push(n);
    }
    return { masters, replicasOf };
  };
  const waitForSync = async (which: RedisNode[] = nodes, timeoutMs = 20_000): Promise<void> => {
    await waitForClusterOk(which, timeoutMs);
    await waitFor('every replica with master_link_status:up', timeoutMs, async () => {
      for (const n of which) {
        const info = parseInfo(await n.admin.info('replication'));
        if (info.get('role') === 'slave' && info.get('master_link_status') !== 'up') return false;
      }
      return true;
    });
  };
  let masters: RedisNode[] = nodes;
  let replicas: RedisNode[] = [];
  try {
    await nodes[0]!.cli(
      '--cluster',
      'create',
      ...nodes.map((n) => `${HOST}:${n.port}`),
      '--cluster-replicas',
      String(replicaCount),
      '--cluster-yes',
    );
    for (const n of nodes) byId.set(String(await n.admin.call('CLUSTER', 'MYID')), n);
    if (replicaCount > 0) {
      // Every node must know every replica's role before the roles are read.
      await waitFor(`${masterCount} masters with ${replicaCount} replica(s) each`, 20_000, async () => {
        for (const n of nodes) {
          const r = await roles(n);
          if (r.masters.length !== masterCount || [...r.replicasOf.values()].some((l) => l.length !== replicaCount)) return false;
        }
        return true;
      });
      masters = (await roles()).masters;
      replicas = nodes.filter((n) => !masters.includes(n));
    }
    await waitForSync(nodes, 20_000);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const ids = new Map<number, string>();
  for (const [id, n] of byId) ids.set(n.port, id);
  return {
    nodes,
    masters,
    replicas,
    url: nodes[0]!.url,
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ids,
    async ownerOf(slot: number) {
      const ranges = (await nodes[0]!.admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
      for (const [from, to, master] of ranges) {
        if (slot >= from && slot <= to) {
          const node = nodes.find((n) => n.port === Number(master[1]));
          if (node !== undefined) return node;
        }
      }
      throw new Error(`no owner for slot ${slot}`);
    },
    roles,
    waitForSync,
    client() {
      const c = new Cluster(
        nodes.map((n) => ({ host: HOST, port: n.port })),
        {
          ...(options.tls !== undefined ? { redisOptions: { tls: adminTls(options.tls) } } : {}),
        },
      );
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async dbsize() {
      let total = 0;
      for (const n of replicaCount > 0 ? (await roles()).masters : nodes) {
        const size = Number(await n.admin.dbsize());
        total += size;
      }
      return total;
    },
    stop: stopAll,
  };
}

/**
 * Starts one node with `cluster-enabled yes` that never joined a cluster and serves no slot: it
 * reports `cluster_enabled:1` and `cluster_state:fail`, as a cluster that lost slots does.
 */
export async function startFailedClusterNode(options: { tls?: TlsServerOptions } = {}): Promise<RedisNode> {
  return withFreshPorts((busPort) =>
    startNode({
      ...options,
      args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort)],
    }),
  );
}

/**
 * Starts a cluster node with a free bus port, again with new ports (at most 3 times) when redis-server
 * could not bind one: a port found free can be taken by another process before redis-server binds it
 * (seen in a full run: "bind: Address already in use" on the bus port), which is not what a test checks.
 */
async function withFreshPorts(start: (busPort: number) => Promise<RedisNode>): Promise<RedisNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test(String(err))) throw err;
    }
  }
}

/** Waits until every node given reports `cluster_state:ok` in CLUSTER INFO. */
export async function waitForClusterOk(nodes: RedisNode[], timeoutMs = 20_000): Promise<void> {
  await waitFor('cluster_state:ok on every node', timeoutMs, async () => {
    for (const n of nodes) {
      const info = parseInfo(String(await n.admin.call('CLUSTER', 'INFO')));
      if (info.get('cluster_state') !== 'ok') return false;
    }
    return true;
  });
}

/**
 * Moves hash slots to another master while clients keep working, the way `redis-cli --cluster reshard`
 * does it (https://redis.io/commands/cluster-setslot/): for each slot, `CLUSTER SETSLOT s IMPORTING src`
 * on the destination, `CLUSTER SETSLOT s MIGRATING dst` on the source, `CLUSTER GETKEYSINSLOT` + `MIGRATE
 * ... KEYS` until the slot is empty, then `CLUSTER SETSLOT s NODE dst` on the destination, the source and
 * every other node. During the move clients get ASK (and TRYAGAIN for multi-key commands whose keys are
 * split), after it MOVED.
 * @param options.slots the slots to move (each must be owned by one node other than `to`)
 * @param options.pauseMs wait between slots, to stretch the migration over a concurrent run
 * @param options.keysPerMigrate keys per MIGRATE call (default 100)
 * @returns the number of keys moved
 */
export async function migrateSlots(
  cluster: ClusterTopology,
  options: { slots: number[]; to: RedisNode; pauseMs?: number; keysPerMigrate?: number; shouldStop?: () => boolean },
): Promise<number> {
  const dst = options.to;
  const dstId = cluster.ids.get(dst.port)!;
  let moved = 0;
  for (const slot of options.slots) {
    if (options.shouldStop?.() === true) break;
    const src = await cluster.ownerOf(slot);
    if (src.port === dst.port) continue;
    const srcId = cluster.ids.get(src.port)!;
    await dst.admin.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', srcId);
    await src.admin.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', dstId);
    for (;;) {
      const keys = (await src.admin.callBuffer(
        'CLUSTER',
        'GETKEYSINSLOT',
        String(slot),
        String(options.keysPerMigrate ?? 100),
      )) as Buffer[];
      if (keys.length === 0) break;
      // MIGRATE host port "" 0 timeout REPLACE KEYS k...: the source connects to the destination itself.
      await src.admin.callBuffer('MIGRATE', HOST, String(dst.port), '', '0', '5000', 'REPLACE', 'KEYS', ...keys);
      moved += keys.length;
    }
    await dst.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', dstId);
    await src.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', dstId);
    for (const n of cluster.nodes) {
      if (n !== src && n !== dst) await n.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', dstId);
    }
    if (options.pauseMs !== undefined && options.pauseMs > 0) await sleep(options.pauseMs);
  }
  return moved;
}

// ---------------------------------------------------------------------------------------------
// Sentinel

/**
 * A master, a replica and one sentinel monitoring them as `masterName` (quorum 1). `url` is the
 * `redis+sentinel://127.0.0.1:SENTINEL_PORT/MASTER/0` a user would give (`rediss+sentinel://` over TLS).
 * `nodes` are the data nodes (for addAclUser); which of them is master changes with `failover()`.
 */
export interface SentinelTopology {
  nodes: RedisNode[];
  sentinel: RedisNode;
  masterName: string;
  url: string;
  tls?: TlsServerOptions;
  /** The data node the sentinel reports as master now (SENTINEL GET-MASTER-ADDR-BY-NAME). */
  currentMaster(): Promise<RedisNode>;
  /**
   * Forces `SENTINEL FAILOVER`, then waits until the replica reports `role:master` and the sentinel
   * reports it as the master. A forced failover does not wait for the replica to catch up: writes
   * the old master acknowledged just before can be lost, as in production. By default
   * (`reconfigureOldMaster: 'now'`) the old master is then turned into a replica at once the way the
   * sentinel does it later (MULTI, REPLICAOF, CLIENT KILL TYPE normal, EXEC), which saves the ~8 s the
   * sentinel waits before it does so itself; `'sentinel'` leaves that to the sentinel. With
   * `waitForReplica` (default true) also waits until the old master replicates from the new one
   * (call `waitForSync()` before the next failover: the sentinel must have seen that too).
   * Returns the new master.
   */
  failover(options?: { waitForReplica?: boolean; reconfigureOldMaster?: 'now' | 'sentinel'; timeoutMs?: number }): Promise<RedisNode>;
  /**
   * Waits until every replica of the current master has master_link_status:up and the sentinel saw it
   * so in its own INFO of the replica (which it refreshes every 10 s): then a failover can start at
   * once. `sentinelView: false` skips the second wait (the data nodes are in sync; the sentinel may
   * not know yet).
   */
  waitForSync(timeoutMs?: number, options?: { sentinelView?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The sentinel's `down-after-milliseconds`: how long a node may leave a PING unanswered before the
 * sentinel calls it down (SDOWN) and, for a master, starts a fail-over of its own. Every fail-over of
 * the tests is asked for (`failover()`: SENTINEL FAILOVER, which does not wait for it), so this only
 * has to be long enough that a loaded machine never triggers one: with 1000 ms, a sentinel that got
 * no PONG from the new master within 1 s of `+switch-master` (2 cores shared by two test files and
 * the PHP they start) failed over a second time, back to the old master, in about 1 run in 5 of
 * php-handler-topologies' fail-over test (its log: `+sdown master ... +try-failover`); a test then
 * found the old master writable again. A killed master is never waited for here: the tests that kill
 * one do not need the sentinel to notice (GET-MASTER-ADDR-BY-NAME still names it).
 * Source: https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/ ("down-after-milliseconds",
 * "SENTINEL FAILOVER").
 */
const SENTINEL_DOWN_AFTER_MS = 30_000;

/**
 * Starts master + replica (`--replicaof`) + a sentinel (`redis-server sentinel.conf --sentinel`) with
 * `down-after-milliseconds` SENTINEL_DOWN_AFTER_MS and `failover-timeout 10000`, and waits until the
 * sentinel knows the replica and it is in sync, so that `failover()` can run at once.
 * @param options.sentinelPassword `requirepass` of the sentinel (for SESSION_MIGRATE_SENTINEL_PASSWORD)
 * @param options.tls data nodes and the sentinel listen on TLS only (the sentinel talks TLS to them)
 */
export async function startSentinel(
  options: { masterName?: string; tls?: TlsServerOptions; sentinelPassword?: string } = {},
): Promise<SentinelTopology> {
  const masterName = options.masterName ?? 'sessions';
  const tlsOpt = options.tls !== undefined ? { tls: options.tls } : {};
  const started: RedisNode[] = [];
  try {
    const master = await startNode({ ...tlsOpt, args: ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'] });
    started.push(master);
    const replica = await startNode({
      ...tlsOpt,
      args: ['--replicaof', HOST, String(master.port), '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
    });
    started.push(replica);
    await waitFor(
      'replica in sync',
      10_000,
      async () => parseInfo(await replica.admin.info('replication')).get('master_link_status') === 'up',
    );
    const conf = [
      `sentinel monitor ${masterName} ${HOST} ${master.port} 1`,
      `sentinel down-after-milliseconds ${masterName} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`,
      ...(options.sentinelPassword !== undefined ? [`requirepass "${options.sentinelPassword}"`] : []),
      '',
    ].join('\n');
    const sentinel = await startNodeAsSentinel(conf, options.tls, options.sentinelPassword);
    started.push(sentinel);
    const nodes = [master, replica];
    const topology: SentinelTopology = {
      nodes,
      sentinel,
      masterName,
      url: `${options.tls !== undefined ? 'rediss' : 'redis'}+sentinel://${HOST}:${sentinel.port}/${masterName}/0`,
      ...tlsOpt,
      async currentMaster() {
        const [, port] = (await sentinel.admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string];
        const node = nodes.find((n) => n.port === Number(port));
        if (node === undefined) throw new Error(`sentinel reports an unknown master port ${port}`);
        return node;
      },
      async waitForSync(timeoutMs = 30_000, syncOptions = {}) {
        const m = await topology.currentMaster();
        for (const n of nodes) {
          if (n === m) continue;
          await waitFor(`replica ${n.port} in sync`, timeoutMs, async () => {
            const info = parseInfo(await n.admin.info('replication'));
            return info.get('role') === 'slave' && info.get('master_port') === String(m.port) && info.get('master_link_status') === 'up';
          });
          if (syncOptions.sentinelView === false) continue;
          // The sentinel's own view, from its periodic INFO of the replica (every 10 s): only a
          // replica it saw in sync with the current master can be promoted (else SENTINEL FAILOVER
          // answers NOGOODSLAVE), so a test can fail over at once once this returns.
          await waitFor(`sentinel sees replica ${n.port} in sync`, timeoutMs, async () => {
            const reps = (await sentinel.admin.call('SENTINEL', 'REPLICAS', masterName)) as string[][];
            return reps.some((r) => {
              const f = new Map<string, string>();
              for (let i = 0; i + 1 < r.length; i += 2) f.set(r[i]!, r[i + 1]!);
              return (
                f.get('port') === String(n.port) &&
                !/s_down|o_down|disconnected/.test(f.get('flags') ?? '') &&
                f.get('master-link-status') === 'ok' &&
                f.get('role-reported') === 'slave' &&
                f.get('master-port') === String(m.port) &&
                f.get('master-link-down-time') === '0'
              );
            });
          });
        }
      },
      async failover(opts = {}) {
        const timeoutMs = opts.timeoutMs ?? 20_000;
        const old = await topology.currentMaster();
        const next = nodes.find((n) => n !== old)!;
        // NOGOODSLAVE right after a start or a previous failover: retry until the sentinel accepts.
        await waitFor('SENTINEL FAILOVER accepted', timeoutMs, async () => {
          try {
            await sentinel.admin.call('SENTINEL', 'FAILOVER', masterName);
            return true;
          } catch (err) {
            return /INPROG/.test((err as Error).message);
          }
        });
        await waitFor(
          'the replica promoted',
          timeoutMs,
          async () => parseInfo(await next.admin.info('replication')).get('role') === 'master',
        );
        await waitFor('the sentinel reporting the new master', timeoutMs, async () => (await topology.currentMaster()) === next);
        if (opts.reconfigureOldMaster !== 'sentinel') {
          // What the sentinel sends the old master once it notices it (about 8 s later): REPLICAOF the
          // new master and drop its normal clients, so they reconnect and ask the sentinel again.
          const r = old.admin.multi();
          r.call('REPLICAOF', HOST, String(next.port));
          r.call('CLIENT', 'KILL', 'TYPE', 'normal');
          await r.exec().catch(() => undefined);
        }
        if (opts.waitForReplica !== false) await topology.waitForSync(timeoutMs, { sentinelView: false });
        return next;
      },
      async stop() {
        await Promise.all(started.map((n) => n.stop()));
      },
    };
    await topology.waitForSync();
    return topology;
  } catch (err) {
    await Promise.all(started.map((n) => n.stop()));
    throw err;
  }
}

function startNodeAsSentinel(conf: string, tls: TlsServerOptions | undefined, password: string | undefined): Promise<RedisNode> {
  return startNode({
    sentinelConf: conf,
    ...(tls !== undefined ? { tls } : {}),
    ...(password !== undefined ? { adminPassword: password } : {}),
  });
}

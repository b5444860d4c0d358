/**
 * Loopback TCP ports for the servers tests start (redis-server plain/TLS/cluster/sentinel, php -S,
 * php-fpm over TCP, nginx, "a port nothing listens on"): the one place a test picks a port.
 *
 * Why not ask the kernel (`listen(0)`, close, hand the number on)? The port is free again between the
 * close and the moment redis-server binds it, so with two vitest workers (vitest.config.ts) or two
 * vitest runs on one machine, another process can be handed the same number; and a test that stops
 * a server and starts it again "on the same port" needs that port to stay its own meanwhile.
 *
 * So a port from freePort() is reserved for the life of the process that took it (a vitest worker
 * runs one test file):
 * - It lies in PORTS_FIRST..PORTS_LAST (10000-19999), below Linux's ephemeral range
 *   (net.ipv4.ip_local_port_range, 32768-60999 by default; ip-sysctl.rst in the kernel's
 *   Documentation/networking), which the kernel uses for `listen(0)` and for the local end of
 *   outgoing connections: no client socket and no kernel-chosen port ever lands on one of ours.
 *   A cluster node's bus port is given explicitly (`--cluster-port`, from freePort too:
 *   test/support/redis-topologies.ts); were it left to its default, port + 10000
 *   (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/), it would lie in
 *   20000-29999: never handed out here, and below the ephemeral range as well; freePort() checks it
 *   is free too.
 * - The reservation is a listening Unix socket in Linux's abstract namespace (unix(7)) named after
 *   the port: one process at a time can hold a name, the kernel drops it when the process ends (even
 *   by SIGKILL), and it leaves no file behind. Other vitest runs on the machine (other checkouts)
 *   use the same names, so they skip our ports as we skip theirs. Elsewhere than Linux there is no
 *   abstract namespace and freePort() relies on the bind check below alone.
 * - The port and port + 10000 must bind on 127.0.0.1 now (something outside the tests, or a server
 *   left running by a killed test process, may hold them).
 * Each process starts its search at a point derived from its pid, so that workers starting together
 * do not queue up on the same first ports.
 */
import { createServer, type Server } from 'node:net';

export const PORTS_FIRST = 10_000;
export const PORTS_LAST = 19_999;
/** Redis Cluster's default bus port offset (cluster-spec: "the cluster bus port is the data port + 10000"). */
const BUS_OFFSET = 10_000;
const SPAN = PORTS_LAST - PORTS_FIRST + 1;
const HOST = '127.0.0.1';

/** Reservations held by this process, by port: kept open (unref'd) until the process exits. */
const held = new Map<number, Server | undefined>();
let cursor = (process.pid * 7919) % SPAN;

function listenOn(srv: Server, target: { path: string } | { port: number; host: string }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(err);
    };
    srv.once('error', onError);
    srv.listen({ ...target, exclusive: true }, () => {
      srv.off('error', onError);
      resolve(true);
    });
  });
}

/** Takes this machine's reservation of `port` for this process; false when another process holds it. */
async function reserve(port: number): Promise<boolean> {
  if (process.platform !== 'linux') {
    held.set(port, undefined);
    return true;
  }
  const srv = createServer();
  if (!(await listenOn(srv, { path: `\0session-migrate-test-port-${port}` }))) return false;
  srv.unref();
  held.set(port, srv);
  return true;
}

function release(port: number): void {
  held.get(port)?.close();
  held.delete(port);
}

/** True when a listener can bind 127.0.0.1:port right now. */
async function bindable(port: number): Promise<boolean> {
  const srv = createServer();
  if (!(await listenOn(srv, { port, host: HOST }))) return false;
  await new Promise((r) => srv.close(r));
  return true;
}

/**
 * A TCP port on 127.0.0.1, in 10000-19999, that no other process using this helper holds, and that
 * this process keeps until it exits (so a server may be stopped and started again on it).
 * @throws Error when every port of the range is taken.
 */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < SPAN; tried++) {
    const port = PORTS_FIRST + cursor;
    cursor = (cursor + 1) % SPAN;
    if (held.has(port) || !(await reserve(port))) continue;
    if ((await bindable(port)) && (await bindable(port + BUS_OFFSET))) return port;
    release(port); // in use by something else: leave it
  }
  throw new Error(`no free loopback port in ${PORTS_FIRST}-${PORTS_LAST}`);
}

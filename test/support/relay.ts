/**
 * A TCP relay in front of a real redis-server that cuts a connection at a chosen command, to lose a
 * connection mid-run deterministically: `cutAt(pattern, nth)` makes it destroy the connection whose
 * bytes carry the nth occurrence of `pattern` (counted over every connection since cutAt, across
 * chunk boundaries; that chunk is not forwarded) and refuse every connection after (ECONNREFUSED,
 * as from a dead server) until `reopen()`. `loseReplyTo(pattern, nth)` instead lets that chunk
 * through and cuts the connection at the next bytes Redis sends on it (not forwarded): the command
 * ran, its reply is lost, and the next connection is accepted, as after a reset of an established
 * connection; with `meanwhile`, a reconnect waits until it has run (it changes the server between
 * the first run and ioredis's second send: an ACL, a role). A pattern is a command as RESP sends it, e.g. `\r\nget\r\n` (matched without regard
 * to case).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './ports.ts';

export interface Relay {
  /** 127.0.0.1 port the relay listens on (the same after reopen). */
  port: number;
  /** Cuts at the `nth` (1 = first) occurrence of `pattern` from now on; undefined: cut nothing. */
  cutAt(pattern: string | undefined, nth?: number): void;
  /**
   * Lets the `nth` (1 = first) occurrence of `pattern` from now on through and cuts at its reply (see
   * the module comment); `meanwhile` runs at the cut, and connections accepted before it settles are
   * piped to Redis only once it has (its failure is thrown by stop()).
   */
  loseReplyTo(pattern: string, nth?: number, meanwhile?: () => Promise<unknown>): void;
  /** Whether a cut happened (the relay refuses connections then). */
  readonly cut: boolean;
  /** Listens again after a cut (nothing cut until the next cutAt). */
  reopen(): Promise<void>;
  stop(): void;
}

/** Starts a relay to 127.0.0.1:`to` on a free port (see the module comment). */
export async function startRelay(to: number): Promise<Relay> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let pattern: string | undefined;
  let nth = 1;
  let seen = 0;
  let didCut = false;
  /** loseReplyTo: forward the matching chunk, cut at the reply, keep listening. */
  let atReply = false;
  let server: Server | undefined;
  /** loseReplyTo's `meanwhile`, and its run once started (new connections wait for it). */
  let meanwhileFn: (() => Promise<unknown>) | undefined;
  let held: Promise<void> | undefined;
  let meanwhileError: unknown;
  /** Occurrences of `pattern` ending in `chunk`, given the `tail` of the same connection before it. */
  const count = (tail: string, chunk: string): number => {
    const text = (tail + chunk).toLowerCase();
    let n = 0;
    for (let at = text.indexOf(pattern!); at >= 0; at = text.indexOf(pattern!, at + 1)) if (at + pattern!.length > tail.length) n++;
    return n;
  };
  const listen = async (): Promise<void> => {
    const own = createServer((client) => {
      if (held !== undefined) {
        // A loseReplyTo's `meanwhile` still runs: this connection reaches Redis once it has.
        const gate = held;
        client.pause();
        sockets.add(client);
        client.on('error', () => client.destroy());
        void gate.then(() => {
          if (client.destroyed) return;
          pipe(client);
          client.resume();
        });
        return;
      }
      pipe(client);
    });
    server = own;
    await new Promise<void>((r) => own.listen(port, '127.0.0.1', r));
    /** Pipes one accepted connection to Redis, counting `pattern` and cutting as told. */
    function pipe(client: Socket): void {
      const upstream = createConnection({ host: '127.0.0.1', port: to });
      sockets.add(client).add(upstream);
      let tail = '';
      // loseReplyTo: the command went through on this connection; what Redis answers next is dropped with the connection.
      let replyLost = false;
      const cutBoth = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('data', (d: Buffer) => {
        const chunk = d.toString('latin1');
        if (pattern !== undefined && !didCut) {
          seen += count(tail, chunk);
          tail = (tail + chunk).slice(-pattern.length);
          if (seen >= nth && atReply) {
            didCut = true;
            replyLost = true;
          } else if (seen >= nth) {
            didCut = true;
            own.close(); // no connection after: ECONNREFUSED, as from a dead server
            cutBoth();
            return;
          }
        }
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        if (!replyLost) {
          client.write(d);
          return;
        }
        if (meanwhileFn !== undefined) {
          const fn = meanwhileFn;
          meanwhileFn = undefined;
          held = fn()
            .then(
              () => undefined,
              (err: unknown) => {
                meanwhileError = err;
              },
            )
            .finally(() => {
              held = undefined;
            });
        }
        cutBoth();
      });
      client.on('error', cutBoth).on('close', cutBoth);
      upstream.on('error', cutBoth).on('close', cutBoth);
    }
  };
  await listen();
  return {
    port,
    cutAt(p, n = 1) {
      pattern = p?.toLowerCase();
      nth = n;
      seen = 0;
      atReply = false;
    },
    loseReplyTo(p, n = 1, meanwhile) {
      meanwhileFn = meanwhile;
      pattern = p.toLowerCase();
      nth = n;
      seen = 0;
      atReply = true;
    },
    get cut() {
      return didCut;
    },
    async reopen() {
      pattern = undefined;
      atReply = false;
      didCut = false;
      server?.close();
      await listen();
    },
    stop() {
      for (const s of sockets) s.destroy();
      server?.close();
      if (meanwhileError !== undefined) throw meanwhileError;
    },
  };
}

/**
 * The one Redis connection layer of every command: connects from a parsed URL with TLS files and
 * credentials, tells the topology apart (a single node, Redis Cluster from `INFO cluster`, or a master
 * behind Sentinel), and offers what the commands need on any topology: SCAN on every master,
 * pipelines grouped by hash slot, INFO of every master, WAIT for replicas, and one error classifier.
 *
 * Cluster and Sentinel are ioredis's own clients (https://github.com/redis/ioredis#cluster,
 * #sentinel): ioredis follows MOVED/ASK, refreshes the slot map, and finds the master through the
 * sentinels again after a failover (failoverDetector). What is ours: grouping a batch by slot owner so
 * each pipeline goes to one node, retrying the commands of a pipeline that a resharding redirected,
 * and checking the topology before anything is written.
 */
import { Redis, Cluster, type ChainableCommander, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { UserFacingError } from '@session-migrate/common';
import {
  formatHostPort,
  type HostPort,
  type RedisAddress,
  type RedisCredentials,
  type RedisRole,
  type Topology,
  PASSWORD_ENV,
  SENTINEL_PASSWORD_ENV,
  SENTINEL_USERNAME_ENV,
} from './url.ts';
import { PLAINTEXT_SERVER, describeTlsError, loadTlsOptions, speaksPlainRedis, type TlsFiles } from './tls.ts';
import {
  classifiedLine,
  classifyRedisError,
  CLOSED_UNDER_COMMANDS,
  CLUSTER_NODES_DENIED,
  CONNECTION_CLOSED,
  isConnectionLost,
  redactedMessage,
  SCAN_INTERRUPTED,
  SCAN_RESHARDED,
  SCAN_RESHARDING,
  type ClassifiedError,
} from './errors.ts';

/** Everything needed to connect: where (URL), how (TLS files), as whom (credentials), and for what. */
export interface RedisSpec {
  address: RedisAddress;
  /** Absolute paths (normalizeTlsFiles); only with a TLS URL. */
  tls?: TlsFiles;
  credentials: RedisCredentials;
  role: RedisRole;
}

export interface OpenOptions {
  /** Every command times out after this many ms (default 30 000): a server that never answers must not hang the tool. */
  commandTimeoutMs?: number;
  /** Reconnect in the background for as long as the connection lives (apply's own retry loop decides when to stop). */
  keepReconnecting?: boolean;
  /** The command writes: a single node that is a replica is refused before anything is written. */
  write?: boolean;
  /** The documented minimal ACL rule of the command (for NOPERM advice). */
  aclRule?: string;
  /**
   * Where a warning line goes (no trailing newline; default: kept in the connection's `warnings`;
   * nothing is written to stderr). Today the note that an ACL user without CLUSTER NODES
   * makes a cluster SCAN blind to slots still being migrated, and the note of keys a master holds in
   * slots it does not serve (see `scan`).
   */
  onWarning?: (line: string) => void;
  /**
   * Redis Cluster: how long a SCAN waits for a replica to take over the slots of a master that went
   * away during it, ms (default DEFAULT_FAILOVER_WAIT_MS); see RedisConnection.scan.
   */
  failoverWaitMs?: number;
  /**
   * Sentinel: before connecting, wait until the master the sentinels report answers as master (a
   * failover in progress: the old master down or demoted, no replica promoted yet), for
   * `failoverWaitMs` ms (default DEFAULT_FAILOVER_WAIT_MS; waitForSentinelMaster, the wait of
   * followSentinelMaster). Without it a master that does not answer fails the open at once. A name
   * no sentinel knows, or no sentinel answering, fails at once either way. Every command opens its
   * target and its Redis sources with it (migrate's commandRedisWait: openTarget, openSources,
   * openPlanSources); a library caller that does not ask for it gets the fail-at-once open.
   */
  waitForSentinelMaster?: boolean;
}

/** What the connection found; safe to print and to store in a plan (no password, no file contents). */
export interface ConnectionDescription {
  /** The URL without credentials. */
  url: string;
  topology: Topology;
  /** The node given (standalone, cluster seed) or the master found through Sentinel at connect time. */
  host: string;
  port: number;
  db: number;
  tls: boolean;
  /** Absolute TLS file paths and server name (TLS only). */
  tlsFiles?: TlsFiles;
  username?: string;
  /** A password was given. */
  auth: boolean;
  /** Cluster: the masters at connect time, and their node IDs (CLUSTER MYID), same order. */
  nodes?: HostPort[];
  nodeIds?: string[];
  /** Sentinel: the sentinels and the master group name. */
  sentinels?: HostPort[];
  masterName?: string;
  /** Standalone and Sentinel: run_id of the node serving (INFO server). */
  runId?: string;
  /**
   * Standalone and Sentinel: the replication ID of the data set the node serves (INFO replication
   * `master_replid`). A master's own, which every replica that follows it (directly or through
   * another replica) reports too, so a master and its replicas share it; a replica that is not in
   * sync yet, or was detached (REPLICAOF NO ONE), or a restarted master without persistence has
   * another (https://redis.io/docs/latest/operate/oss_and_stack/management/replication/,
   * "Replication ID explained").
   */
  replicationId?: string;
  /** Standalone: the node is a replica (INFO replication `role:slave`) of this `host:port`. */
  replicaOf?: string;
}

/** One entry of a grouped pipeline: a key (it decides the slot) and the commands for it. */
export interface GroupedItem {
  key: string | Buffer;
  /** Adds this item's commands to the pipeline (all on keys of the same slot as `key`). */
  build(pipe: ChainableCommander): void;
}

/** [error, result] of one command, as ioredis's pipeline gives it. */
export type Reply = [Error | null, unknown];

/**
 * Shortest wait for replicas to report an offset (replicasCaughtUp), ms: a replica sends REPLCONF ACK
 * about once a second (replicationCron, https://github.com/redis/redis src/replication.c), plus room
 * for a busy machine (a re-run after a failover, under the whole test suite, saw more than 2 s).
 */
const REPLCONF_ACK_WINDOW_MS = 3000;

/** Errors of a cluster command that moved with its slot, or may succeed a moment later. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;
/** Rounds of re-sending redirected commands before the error is given back to the caller. */
const REDIRECT_ROUNDS = 30;

/**
 * The error of WAIT sent to a node that is a replica now (src/replication.c waitCommand in
 * https://github.com/redis/redis): a master a failover demoted while this client still counted it
 * as a master. Its writes are not confirmed; the run goes on (a failover is transient).
 */
const WAIT_ON_REPLICA = /^ERR WAIT cannot be used with replica instances/;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Hash slot (0..16383) of a key, honouring hash tags (Redis Cluster specification, "Key distribution model"); ioredis's own function. */
export function hashSlot(key: string | Buffer): number {
  return calculateSlot(key);
}

/** Parses INFO text into field -> value. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/**
 * An open connection to a target or a source, on any topology. Use `RedisConnection.open`; close it
 * with `close()`.
 */
export class RedisConnection {
  /** Use `RedisConnection.open`. */
  constructor(
    readonly spec: RedisSpec,
    /** ioredis client: a `Redis` (single node or Sentinel) or a `Cluster`; routes keyed commands itself. */
    readonly client: Redis | Cluster,
    description: ConnectionDescription,
    private readonly aclRule?: string,
  ) {
    this.described = description;
    if (client instanceof Redis) failRepeatedResends(client);
  }

  /** What `description` returns (replaced when a scan follows a new Sentinel master: scanAgainAfterFailover). */
  private described: ConnectionDescription;

  /**
   * What this connection is connected to: the description made at open, except that behind Sentinel,
   * after a scan started again on a new master (scanAgainAfterFailover), `host`, `port`, `runId` and
   * `replicationId` are the new master's (the server the command's reads then came from, which a plan
   * records).
   */
  get description(): ConnectionDescription {
    return this.described;
  }

  /**
   * Warning lines of this connection nobody took (OpenOptions.onWarning not given), in order. A
   * library does not write to stderr, nor decide about repeats: the CLI passes onWarning and prints
   * each text once per process (packages/cli/src/redis-options.ts `warn`, the one home of that rule).
   */
  readonly warnings: string[] = [];
  /** Where warning lines go (OpenOptions.onWarning; default: kept in `warnings`). */
  onWarning: (line: string) => void = (line) => {
    this.warnings.push(line);
  };
  /** The ACL user got NOPERM for CLUSTER NODES: scans compare CLUSTER SLOTS only (said once). */
  private noClusterNodes = false;

  get topology(): Topology {
    return this.description.topology;
  }

  /** The printable URL. */
  get url(): string {
    return this.description.url;
  }

  /**
   * Connects and checks the server: PING, the database, the topology (INFO cluster; for a cluster
   * `cluster_state:ok`; for Sentinel that a sentinel knows the master name), and with `write` that a
   * single node is a master.
   * @throws UserFacingError (exit 2) naming the URL and the cause: an unreachable server or sentinel,
   *   a certificate problem with the option that fixes it, a wrong password, an ACL rule without
   *   INFO, a failed cluster, an unknown master name, a replica.
   */
  static async open(spec: RedisSpec, options: OpenOptions = {}): Promise<RedisConnection> {
    const a = spec.address;
    const tls = a.tls ? loadTlsOptions(spec.tls, spec.role) : undefined;
    const common = commonOptions(spec, options, tls);
    if (a.kind === 'sentinel') {
      const conn = await openSentinel(spec, options, common, tls);
      // Its notes (scanAgainAfterFailover) go where the caller's warnings go.
      if (options.onWarning !== undefined) conn.onWarning = options.onWarning;
      return conn;
    }
    const { info, clusterState } = await probeNode(spec, options, common);
    if (info.get('redis_mode') === 'sentinel') {
      throw new UserFacingError(
        `${a.url} is a sentinel, not a data node: use ${a.tls ? 'rediss' : 'redis'}+sentinel://${formatHostPort(a)}/MASTER_NAME/${a.db}`,
      );
    }
    if (clusterState !== undefined) {
      if (clusterState.get('cluster_state') !== 'ok') {
        throw new UserFacingError(
          `Redis Cluster at ${a.url} reports cluster_state:${clusterState.get('cluster_state') ?? 'unknown'} (${clusterState.get('cluster_slots_assigned') ?? '?'} of 16384 slots assigned, ${clusterState.get('cluster_slots_fail') ?? '?'} failing): fix the cluster first; nothing was written`,
        );
      }
      if (a.db !== 0) throw new UserFacingError(`${a.url} is a Redis Cluster, which has only database 0: use /0 in the URL`);
      const conn = await openCluster(spec, options, common);
      if (options.onWarning !== undefined) conn.onWarning = options.onWarning;
      if (options.failoverWaitMs !== undefined) conn.failoverWaitMs = options.failoverWaitMs;
      return conn;
    }
    // A single node: a master for commands that write; then the connection on the database asked for.
    if (options.write === true && info.get('role') === 'slave') {
      const master = info.get('master_host') !== undefined ? ` of ${info.get('master_host')}:${info.get('master_port')}` : '';
      throw new UserFacingError(
        `Redis at ${a.url} is a replica${master} (READONLY): give the master (the primary endpoint); nothing was written`,
      );
    }
    return openStandalone(spec, options, common, info);
  }

  /** Classifies an error of this connection (see errors.ts). */
  classify(err: unknown): ClassifiedError {
    return classifyRedisError(err, {
      topology: this.topology,
      ...(this.spec.credentials.username !== undefined ? { username: this.spec.credentials.username } : {}),
      ...(this.spec.credentials.password !== undefined ? { password: this.spec.credentials.password } : {}),
      role: this.spec.role,
      ...(this.aclRule !== undefined ? { aclRule: this.aclRule } : {}),
    });
  }

  /**
   * The connections to every master: a cluster's masters (from its current slot map), or the one
   * node (Sentinel: the current master). Each is a `Redis` connection of this client.
   * @throws Error when a cluster has no master in its slot map.
   */
  async masters(): Promise<Redis[]> {
    if (!(this.client instanceof Cluster)) return [this.client];
    const masters = this.client.nodes('master');
    if (masters.length === 0) throw new Error('the cluster reports no master');
    return masters;
  }

  /** `host:port` of a master connection (what it connected to). */
  nodeName(node: Redis): string {
    const o = node.options;
    const at = this.topology === 'sentinel' ? socketPeer(node) : undefined;
    return formatHostPort(at ?? { host: o.host ?? '127.0.0.1', port: o.port ?? 6379 });
  }

  /**
   * SCANs the keys under a prefix on every master (SCAN MATCH with the prefix's glob characters
   * escaped; an empty prefix: every key of the database, without MATCH), one batch of key names (raw
   * bytes) per SCAN reply. A key may come twice, as SCAN
   * guarantees no more (https://redis.io/commands/scan); during a resharding a key that moves may be
   * seen on both nodes.
   * A cursor is a position in one server's hash table, valid only while that server runs: when a
   * master's connection closes during its scan (a restart, a fail-over; ioredis reconnects and would
   * go on with the old cursor over a rebuilt table, skipping keys without a sign), the scan throws
   * (SCAN_INTERRUPTED, a transient connection error) instead of ending as if complete; run again.
   * On one server (or Sentinel's master) so too when the SCAN itself fails with the connection lost
   * (a kill -9 while it was in flight: ioredis's reconnects spent), not the bare connection error
   * (test/sentinel-midrun-failover.test.ts, test/sentinel-source-midrun-failover.test.ts).
   * In a Redis Cluster a master lost during the scan (kill -9, a crash: a routine failover) is
   * replaced instead when a node of its shard takes over exactly its slots within failoverWaitMs
   * (takeOver): a master not scanned yet is scanned there; one scanned whole is not scanned again (SCAN
   * lists only keys present for the whole scan, and its replica holds no others); one lost mid-scan is
   * scanned there from cursor 0, listing only keys not listed from it (kept for REPLAY_KEYS keys at
   * most). SCAN_INTERRUPTED still when it had no replica, none took over in time, it had listed more
   * than REPLAY_KEYS keys, its replacement went away too, or CLUSTER NODES was refused (NOPERM).
   * In a Redis Cluster SCAN runs master by master, and SCAN on a node returns only that node's keys
   * (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/, "Live resharding").
   * Keys of a slot that moves from master A to master B are missed when B is scanned before A and keys
   * move (MIGRATE) after B's SCAN went past them and before A's SCAN reached them. Checks, each before
   * the first SCAN and after the last, on every master:
   * - the slot map (which slots each master and its replicas serve, by node ID, from CLUSTER NODES; a
   *   failover that swaps a master and its replica, or a replica that left, is no move): a slot whose
   *   move ended meanwhile (`SETSLOT NODE`) throws SCAN_RESHARDED.
   * - each master's own config epoch (the `myself` line of CLUSTER NODES, column 7): `SETSLOT NODE`
   *   on the node importing a slot bumps it (src/cluster.c clusterBumpConfigEpochWithoutConsensus,
   *   https://github.com/redis/redis), so a slot moved away and back meanwhile (the slot map the same
   *   at both checks) throws SCAN_RESHARDED too; a node that was not a master at both checks (a
   *   failover) is left out.
   * - each master's count of slot-assigning commands run (CLUSTER SETSLOT, ADDSLOTS, DELSLOTS, ...;
   *   INFO commandstats, slotCommandCalls): `SETSLOT NODE` sent without IMPORTING first, or
   *   DELSLOTS + ADDSLOTS, bump no epoch, so a slot handed away and back that way is seen only here;
   *   any such command run on a master meanwhile (an aborted move too) throws SCAN_RESHARDED (redis
   *   7.0 and later; not on a node that joined during the scan).
   * - CLUSTER NODES, whose `myself` line lists the node's slots being migrated (`[slot->-dst]`) or
   *   imported (`[slot-<-src]`), a state CLUSTER SLOTS does not show
   *   (https://redis.io/docs/latest/commands/cluster-nodes/, "Special slot entries"): a slot being moved
   *   at either moment throws SCAN_RESHARDING (a move still running at both checks, or started during
   *   the scan). Without `+cluster|nodes` in the ACL rule (NOPERM) CLUSTER SLOTS is compared instead
   *   (no epochs, no migrating entries, no slots served: CLUSTER_NODES_DENIED says what that misses),
   *   and onWarning says so once per connection.
   * Both are transient: run again (once the resharding has finished).
   * With CLUSTER NODES, only keys of slots the master served at the first check are listed: keys a master holds in a slot
   * it does not serve were left by a move aborted with `SETSLOT STABLE` after some MIGRATEs (they stay
   * on the destination until moved back; a GET goes to the slot's master and does not find them), so
   * no client reads them; they are counted, and onWarning names the master and the slots (never the
   * keys) once the scan ended (for a master lost during the scan: the node that took over its slots,
   * which holds the same keys, each counted once). A move aborted before the scan loses no key a client can read: keys
   * only left the slot's master, which is scanned whole (one aborted during the scan ran SETSLOT:
   * SCAN_RESHARDED, run again).
   * @param count SCAN COUNT hint
   * @param onNode called before each master is scanned, with its `host:port` (and before the node
   *   that took over a master lost mid-scan is scanned)
   * @throws Error whose message starts with SCAN_INTERRUPTED when a master's connection closed
   *   meanwhile and it could not be replaced (see above); Error(SCAN_RESHARDED) when a cluster's slots moved meanwhile; Error starting with
   *   SCAN_RESHARDING when a slot was being migrated before or after the scan
   */
  async *scan(prefix: string, count = 1000, onNode?: (node: string) => void): AsyncGenerator<Buffer[]> {
    const masters = await this.masters();
    const cluster = this.topology === 'cluster';
    const before = cluster ? await this.clusterViews(masters) : undefined;
    const names = new Map(masters.map((node) => [node, this.nodeName(node)]));
    // The one close detector: a master whose connection closes at any time of the scan (kill -9, a
    // restart, a fail-over) is noted at once (its cursor is lost). A cluster master is then replaced
    // by the replica that took over its slots (live), or the scan throws (transient: run again).
    const gone = new Set<Redis>();
    /** When each master of `gone` closed (performance.now()): scanAgainAfterFailover's wait counts from there. */
    const goneAt = new Map<Redis, number>();
    const leaves: Array<() => void> = [];
    const watch = (node: Redis): void => {
      const onGone = (): void => {
        gone.add(node);
        if (!goneAt.has(node)) goneAt.set(node, performance.now());
      };
      node.on('close', onGone);
      leaves.push(() => node.off('close', onGone));
    };
    masters.forEach(watch);
    const interrupted = (node: Redis, why = ''): Error => {
      const err = new Error(
        cluster
          ? `${SCAN_INTERRUPTED} the Redis Cluster: master ${names.get(node)} went away (a crash or fail-over?)${why}: keys may have been skipped; run again`
          : `${SCAN_INTERRUPTED} ${names.get(node)} (a restart or fail-over?): keys may have been skipped; run again`,
      );
      // scanAgainAfterFailover knows it as this connection's, and when the master was lost.
      this.scanInterruptions.set(err, goneAt.get(node) ?? performance.now());
      return err;
    };
    // The node scanned (and checked after) for each master: the master, or the node that took over
    // its slots once it went away (each master replaced once at most), with that node's count of
    // slot commands when it was taken (compared after the scan instead of the lost master's).
    const current = [...masters];
    const slotCommandsAt = before?.map((v) => v.slotCommands);
    const replaced = new Set<number>();
    const live = async (i: number, why = ''): Promise<Redis> => {
      const node = current[i]!;
      if (!gone.has(node)) return node;
      const lost = before?.[i];
      if (lost === undefined || replaced.has(i)) throw interrupted(node, why);
      if (!replaceable(lost)) throw interrupted(node, `${why} and no replica can take over its slots`);
      const next = await this.takeOver(lost);
      if (next === undefined) throw interrupted(node, `${why} and no replica took over its slots within ${this.failoverWaitMs / 1000} s`);
      replaced.add(i);
      current[i] = next.node;
      names.set(next.node, this.nodeName(next.node));
      watch(next.node);
      slotCommandsAt![i] = next.view.slotCommands;
      return next.node;
    };
    // Keys a master holds in slots it does not serve (left by a move aborted with SETSLOT STABLE
    // after MIGRATE): no client reads them (a GET goes to the slot's master); counted per slot, not
    // listed. Counted per master (index in `current`), so that a master lost mid-scan, whose
    // replacement is scanned from cursor 0 and holds the same keys (a replica copies every key, in
    // any slot), is not counted twice; the warning names the node scanned last for it (current[i]).
    const strays = new Map<number, Map<number, number>>();
    try {
      for (let i = 0; i < current.length; i++) {
        let node = await live(i);
        onNode?.(names.get(node)!);
        const served = before?.[i]!.served;
        // The keys listed from this master so far (latin1 names), so that if it goes away mid-scan
        // its replacement, scanned from cursor 0, lists only the others: kept only when the master
        // can be replaced, and for REPLAY_KEYS keys at most (memory); past that a loss mid-scan throws.
        let listedHere: Set<string> | undefined = before !== undefined && replaceable(before[i]!) ? new Set() : undefined;
        let tooMany = false;
        let skip: Set<string> | undefined;
        let cursor = '0';
        for (;;) {
          if (gone.has(node)) {
            if (tooMany) throw interrupted(node, ` after more than ${REPLAY_KEYS} of its keys were listed`);
            // Throws unless a replica took over (a second loss, or no replica: throws too).
            node = await live(i);
            onNode?.(names.get(node)!);
            skip = listedHere ?? new Set();
            listedHere = undefined;
            strays.delete(i);
            cursor = '0';
          }
          let reply: [Buffer, Buffer[]];
          try {
            reply =
              prefix === ''
                ? await node.scanBuffer(cursor, 'COUNT', count)
                : await node.scanBuffer(cursor, 'MATCH', scanPatternForPrefix(prefix), 'COUNT', count);
          } catch (err) {
            // One server (or Sentinel's master): a lost connection lost the cursor too (a kill -9 of
            // the master while its SCAN was in flight, before the close was seen): the interruption.
            // Not a close Redis makes at every SCAN (CLOSED_UNDER_COMMANDS, permanent): that one says why.
            if (!cluster) {
              const c = this.classify(err);
              throw isConnectionLost(c) && c.kind === 'transient' ? interrupted(node) : err;
            }
            // A cluster node's client does not reconnect (ioredis ConnectionPool: retryStrategy null):
            // the connection ended; the replacement, if any, is scanned instead.
            if (!(gone.has(node) || node.status === 'end')) throw err;
            gone.add(node);
            continue;
          }
          // A reply after a close may come from a reconnected client, with the old cursor over a rebuilt table.
          if (gone.has(node)) continue;
          cursor = reply[0].toString('latin1');
          let listed = served === undefined ? reply[1] : servedKeys(reply[1], served, strays, i);
          if (skip !== undefined) listed = listed.filter((k) => !skip!.has(k.toString('latin1')));
          if (listedHere !== undefined) {
            for (const k of listed) listedHere.add(k.toString('latin1'));
            if (listedHere.size > REPLAY_KEYS) {
              listedHere = undefined;
              tooMany = true;
            }
          }
          if (listed.length > 0) yield listed;
          if (cursor === '0') break;
        }
      }
      if (before !== undefined) {
        // A master scanned whole and lost since needs no second scan (SCAN lists only keys present
        // for the whole scan; its replica holds no other): its replacement is only checked.
        const nodes: Redis[] = [];
        for (let i = 0; i < current.length; i++) nodes.push(await live(i));
        const after = await this.clusterViews(nodes);
        if (
          slotsMoved(
            before.map((v) => v.map),
            after.map((v) => v.map),
          ) ||
          epochsMoved(before, after) ||
          slotCommandsAt!.some((calls, i) => calls !== after[i]!.slotCommands)
        )
          throw new Error(SCAN_RESHARDED);
        // A node lost after these checks: its answers above were read before it went away.
        for (const [m, slots] of strays) this.onWarning(strayKeysWarning(names.get(current[m]!)!, slots));
      }
    } finally {
      for (const leave of leaves) leave();
    }
  }

  /** How long a cluster SCAN waits for a lost master's replica to take over its slots, ms (OpenOptions.failoverWaitMs). */
  failoverWaitMs = DEFAULT_FAILOVER_WAIT_MS;

  /**
   * The node that took over the slots of a master lost during a scan (`lost`: that master's view
   * before the scan, with CLUSTER NODES): polls ioredis's slot map (refreshed) for up to
   * failoverWaitMs until one master serves every slot `lost` served, then asks that node's own
   * CLUSTER NODES: it must be a master, of `lost`'s shard (the lost master or one of the nodes listed
   * as its replicas before the scan, so it holds the same keys), serving exactly those slots.
   * @returns the node and its view now, or undefined when none did within the wait
   * @throws Error starting with SCAN_RESHARDING when that node reports a slot being migrated
   */
  private async takeOver(lost: ClusterView): Promise<{ node: Redis; view: ClusterView } | undefined> {
    const cluster = this.client as Cluster;
    const shard = shardOf(lost);
    const slots: number[] = [];
    lost.served!.forEach((v, slot) => void (v === 1 && slots.push(slot)));
    const deadline = Date.now() + this.failoverWaitMs;
    while (Date.now() < deadline) {
      await refreshSlots(cluster);
      const keys = new Set(slots.map((slot) => cluster.slots[slot]?.[0]));
      const key = keys.size === 1 ? [...keys][0] : undefined;
      const node = key === undefined ? undefined : cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === key);
      if (node !== undefined && node.status !== 'end') {
        const view = await this.clusterViews([node]).then(
          ([v]) => v!,
          (err: unknown) => {
            if (err instanceof Error && err.message.startsWith(SCAN_RESHARDING)) throw err;
            return undefined;
          },
        );
        if (view?.self?.master === true && shard.has(view.self.id) && sameSlots(view.served!, lost.served!)) return { node, view };
      }
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
    }
    return undefined;
  }

  /**
   * Every master's view of the cluster (see ClusterView): from CLUSTER NODES, which lists every
   * replica (CLUSTER SLOTS of redis 7.0 leaves out replicas it deems not yet available, so a failover
   * looked like a move), and the calls of the slot-assigning commands so far (INFO commandstats,
   * slotCommandCalls); throws SCAN_RESHARDING when a master reports a slot being migrated or
   * imported. On NOPERM for CLUSTER NODES: CLUSTER SLOTS instead (no config epoch, no slots served),
   * with a warning once.
   */
  private async clusterViews(masters: readonly Redis[]): Promise<ClusterView[]> {
    const calls = await Promise.all(masters.map(async (node) => slotCommandCalls(await node.info('commandstats'))));
    return (await this.slotViews(masters)).map((view, i) => ({ ...view, slotCommands: calls[i]! }));
  }

  /** clusterViews without the slot commands' count: CLUSTER NODES, or CLUSTER SLOTS on NOPERM. */
  private async slotViews(masters: readonly Redis[]): Promise<Array<Omit<ClusterView, 'slotCommands'>>> {
    if (!this.noClusterNodes) {
      let texts: string[] | undefined;
      try {
        texts = await Promise.all(masters.map(async (node) => String(await node.call('CLUSTER', 'NODES'))));
      } catch (err) {
        if (!/^NOPERM\b/.test(err instanceof Error ? err.message : String(err))) throw err;
        this.noClusterNodes = true;
        this.onWarning(CLUSTER_NODES_DENIED);
      }
      if (texts !== undefined) {
        const moves = texts.flatMap(slotMovesOf);
        if (moves.length > 0) throw new Error(resharding(moves));
        return texts.map((t) => {
          const self = selfOfNodes(t);
          const map = slotMapOfNodes(t);
          return { map, ...(self !== undefined ? { self, served: servedBy(map, self.id) } : {}) };
        });
      }
    }
    // No `served`: without the migrating/importing entries a slot still being imported looks the same.
    return (await slotMapsOf(masters)).map((map) => ({ map }));
  }

  /**
   * Runs the commands of many items in pipelines, one pipeline per node owning their slots (a single
   * node or Sentinel: one pipeline). Commands a resharding redirected (MOVED, ASK, TRYAGAIN,
   * CLUSTERDOWN) are sent again, the whole item, after the slot map is refreshed; an item still
   * redirected after that keeps its error.
   * @returns the replies of each item, in order (never throws for a failed command; a dropped
   *   connection gives every command of the pipeline an error).
   */
  async runGrouped(items: GroupedItem[]): Promise<Reply[][]> {
    const out: Reply[][] = new Array(items.length);
    if (items.length === 0) return out;
    if (!(this.client instanceof Cluster)) {
      await runPipeline(
        this.client,
        items,
        items.map((_, i) => i),
        out,
      );
      return out;
    }
    const cluster = this.client;
    let pending = items.map((_, i) => i);
    // Items that got ASK go alone in the next round.
    const alone = new Set<number>();
    for (let round = 0; pending.length > 0; round++) {
      if (cluster.slots.length === 0) await waitClusterReady(cluster);
      const groups = new Map<string, number[]>();
      for (const i of pending) {
        const slot = calculateSlot(items[i]!.key);
        // One pipeline per ioredis slot group (the nodes that serve the slot): what its pipeline accepts.
        const group = alone.has(i) ? `ask:${i}` : String(cluster._groupsBySlot[slot] ?? cluster.slots[slot]?.join(';') ?? 'none');
        let list = groups.get(group);
        if (list === undefined) groups.set(group, (list = []));
        list.push(i);
      }
      alone.clear();
      await Promise.all([...groups.values()].map((idx) => runPipeline(cluster, items, idx, out)));
      const again = pending.filter((i) => out[i]!.some(([err]) => err !== null && REDIRECTED.test(err.message)));
      if (again.length === 0 || round >= REDIRECT_ROUNDS) break;
      // A slot being migrated answers ASK until it is done: those items go alone, so ioredis's
      // pipeline can follow the ASK (it does when every command of a pipeline got the same redirection).
      for (const i of again) if (out[i]!.some(([err]) => err !== null && /^ASK\b/.test(err.message))) alone.add(i);
      if (again.some((i) => out[i]!.some(([err]) => err !== null && /^MOVED\b/.test(err.message)))) await refreshSlots(cluster);
      await sleep(Math.min(20 * (round + 1), 200));
      pending = again;
    }
    return out;
  }

  /** INFO `section` of every master, by `host:port`. */
  async infoPerMaster(section: string): Promise<Array<{ node: string; info: Map<string, string> }>> {
    const out: Array<{ node: string; info: Map<string, string> }> = [];
    for (const node of await this.masters()) out.push({ node: this.nodeName(node), info: parseInfo(await node.info(section)) });
    return out;
  }

  /**
   * Replicas connected to each master now (INFO replication `connected_slaves`), by `host:port`
   * (a cluster) or as `*` (the one master of a single node or Sentinel).
   */
  async replicasPerMaster(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const all = await this.infoPerMaster('replication');
    // One master (a single node, or behind Sentinel): `*`, so the count still applies after a
    // failover moved the master to another address.
    if (this.topology !== 'cluster') {
      out.set('*', Number(all[0]?.info.get('connected_slaves') ?? '0'));
      return out;
    }
    for (const { node, info } of all) out.set(node, Number(info.get('connected_slaves') ?? '0'));
    return out;
  }

  /**
   * A Redis Cluster's masters now, for matching them with a plan's record across a failover (a
   * failover gives the shard another master, at another `host:port`, with another node ID): each
   * master's node ID, `host:port`, replicas connected (INFO replication `connected_slaves`, the same
   * count replicasPerMaster gives), and the IDs of the nodes its CLUSTER NODES lists as its replicas,
   * failed ones too. One CLUSTER NODES and one INFO replication per master: the ID is that answer's
   * `myself` line (selfOfNodes); when this ACL user may not run CLUSTER NODES (NOPERM), CLUSTER MYID
   * gives the ID and no replica IDs are known. Empty for a single node or Sentinel.
   * redis.io/commands/cluster-nodes (fields: id, address, flags, master ID, ...).
   */
  async clusterMasters(): Promise<Array<{ id: string; node: string; replicas: number; replicaIds: string[] }>> {
    if (!(this.client instanceof Cluster)) return [];
    return Promise.all(
      (await this.masters()).map(async (node) => {
        const [self, info] = await Promise.all([this.selfInCluster(node), node.info('replication')]);
        return { ...self, node: this.nodeName(node), replicas: Number(parseInfo(info).get('connected_slaves') ?? '0') };
      }),
    );
  }

  /**
   * A cluster node's ID and the IDs of its replicas, from its own CLUSTER NODES; on NOPERM (or a scan
   * of this connection already met NOPERM) its CLUSTER MYID, with no replica IDs.
   */
  private async selfInCluster(node: Redis): Promise<{ id: string; replicaIds: string[] }> {
    if (!this.noClusterNodes) {
      try {
        const text = String(await node.call('CLUSTER', 'NODES'));
        const id = selfOfNodes(text)?.id;
        if (id !== undefined) return { id, replicaIds: replicasIn(nodeLines(text), id) };
      } catch (err) {
        if (!/^NOPERM\b/.test(err instanceof Error ? err.message : String(err))) throw err;
      }
    }
    return { id: String(await node.call('CLUSTER', 'MYID')), replicaIds: [] };
  }

  /**
   * Sends `WAIT numreplicas timeout` to every master that has `min` > 0 (redis.io/commands/wait): it
   * blocks until that many replicas acknowledged every earlier write of this client's connection to
   * that master, or the timeout passes. WAIT only speaks for writes sent on the same connection: when
   * a master connection closed since `since` (a generation()), some writes went over a connection
   * now gone (ioredis re-sends a command whose reply was lost on the new one, which finds its own
   * write done), and WAIT on the new connection proves nothing of them. When the masters are the
   * servers they were at `since` (a connection to the same address opened again), they are asked as
   * replicasCaughtUp asks (their replicas at the master's `master_repl_offset`), which speaks for every
   * write a master holds, whoever sent it (before, every session of such a batch was UNCONFIRMED with
   * the replica in step: test/apply-replica-recheck.test.ts "a write whose reply was lost"). When
   * they are other servers (a failover), writes sent to the old master may be lost with it: every
   * master counts as short (`(reconnected)`, acked 0). A master demoted by a failover that answers
   * WAIT with an error (it is a replica now) counts as short, not as a reason to stop.
   * @param min replicas wanted per master (`host:port` -> n, or `*` for any master)
   * @returns the masters that acknowledged fewer than asked, with how many did
   */
  async waitForReplicas(
    min: Map<string, number>,
    timeoutMs: number,
    since?: string,
  ): Promise<Array<{ node: string; wanted: number; acked: number }>> {
    const short = await this.perWantedMaster(min, async (node, wanted) => {
      try {
        return Number(await node.call('WAIT', String(wanted), String(timeoutMs)));
      } catch (err) {
        if (this.classify(err).kind === 'permanent' && !WAIT_ON_REPLICA.test((err as Error).message)) throw err;
        return 0;
      }
    });
    if (since !== undefined && short.length === 0) {
      const now = await this.generation();
      if (now !== since) {
        // The same servers, connected again: their replicas' offsets speak for the old connection's
        // writes too. Other servers (a failover): nothing here speaks for writes sent to the old
        // master, which may be lost with it (test/prod-redis-sentinel.test.ts "a SENTINEL FAILOVER
        // during apply": every lost session counted unconfirmed).
        if (RedisConnection.serversOf(now) === RedisConnection.serversOf(since)) return this.replicasCaughtUp(min, timeoutMs);
        short.push({ node: '(reconnected)', wanted: Math.max(1, ...min.values()), acked: 0 });
      }
    }
    return short;
  }

  /**
   * Runs `count` on every master that `min` wants replicas of (wantedReplicas), all at once.
   * @returns the masters whose count came back below what was wanted, with the count (`acked`)
   */
  private async perWantedMaster(
    min: Map<string, number>,
    count: (node: Redis, wanted: number) => Promise<number>,
  ): Promise<Array<{ node: string; wanted: number; acked: number }>> {
    const short: Array<{ node: string; wanted: number; acked: number }> = [];
    await Promise.all(
      (await this.masters()).map(async (node) => {
        const name = this.nodeName(node);
        const wanted = wantedReplicas(min, name);
        if (wanted <= 0) return;
        const acked = await count(node, wanted);
        if (acked < wanted) short.push({ node: name, wanted, acked });
      }),
    );
    return short;
  }

  /**
   * Proves that each master's replicas hold everything the master holds now, whoever wrote it: for a
   * run that wrote nothing new, a WAIT proves nothing (WAIT only counts this connection's own writes,
   * https://redis.io/docs/latest/commands/wait/). For every master with `min` > 0 it reads
   * `master_repl_offset` from INFO replication (https://redis.io/docs/latest/commands/info/), then
   * polls INFO replication until `wanted` replicas report `state=online` and `offset>=` that value in
   * their `slaveN:ip=..,port=..,state=online,offset=..,lag=..` lines, or `timeoutMs` passes (at least
   * REPLCONF_ACK_WINDOW_MS). A replica reports its offset with REPLCONF ACK about once a second
   * (replicationCron in src/replication.c of https://github.com/redis/redis), so a replica in sync is
   * seen within ~1 s, and a shorter wait would call a healthy replica short. A node that answers
   * `role:slave` (demoted by a failover this client has not seen yet) counts as short with 0.
   * @param min replicas wanted per master (`host:port` -> n, or `*` for any master), as waitForReplicas
   * @returns the masters with fewer replicas caught up than wanted, with how many were (`acked`)
   * @throws the INFO error when it is permanent (e.g. an ACL rule without INFO); transient errors
   *   count that master as short
   */
  async replicasCaughtUp(min: Map<string, number>, timeoutMs: number): Promise<Array<{ node: string; wanted: number; acked: number }>> {
    const deadline = Date.now() + Math.max(timeoutMs, REPLCONF_ACK_WINDOW_MS);
    return this.perWantedMaster(min, async (node, wanted) => {
      let acked = 0;
      try {
        const first = parseInfo(await node.info('replication'));
        const target = Number(first.get('master_repl_offset') ?? NaN);
        if (first.get('role') === 'master' && Number.isFinite(target)) {
          for (let info = first; ;) {
            acked = replicasAtOffset(info, target);
            if (acked >= wanted || Date.now() >= deadline) break;
            await sleep(Math.min(50, Math.max(0, deadline - Date.now())));
            info = parseInfo(await node.info('replication'));
            if (info.get('role') !== 'master') return 0;
          }
        }
      } catch (err) {
        if (this.classify(err).kind === 'permanent') throw err;
      }
      return acked;
    });
  }

  /**
   * `host:port` (as nodeName gives it) of the master serving a key's hash slot in a cluster's slot map
   * now; undefined on other topologies (one master) or when the slot map does not know the slot.
   */
  masterNameOfKey(key: string | Buffer): string | undefined {
    if (!(this.client instanceof Cluster)) return undefined;
    // ioredis's slot map holds node keys `host:port` (master first), built from options host and port.
    const nodeKey = this.client.slots[calculateSlot(key)]?.[0];
    if (nodeKey === undefined) return undefined;
    const i = nodeKey.lastIndexOf(':');
    return formatHostPort({ host: nodeKey.slice(0, i), port: Number(nodeKey.slice(i + 1)) });
  }

  private closes = new WeakMap<Redis, { id: number; closes: number; server: string }>();
  private nextNodeId = 0;

  /**
   * A token that changes whenever a master connection closes or is replaced (a reconnect, a
   * failover, a new cluster node): writes and a WAIT separated by a change were not on one connection.
   * It also names each master's address (nodeName), so that waitForReplicas can tell a connection to
   * the same server opened again from another server (a failover).
   */
  async generation(): Promise<string> {
    const parts: string[] = [];
    for (const node of await this.masters()) {
      let w = this.closes.get(node);
      if (w === undefined) {
        const entry = { id: this.nextNodeId++, closes: 0, server: this.nodeName(node) };
        this.closes.set(node, entry);
        node.on('close', () => {
          entry.closes++;
        });
        // The server of the connection last made ready (behind Sentinel nodeName is the socket's
        // peer): it changes only with a new connection, never while one is being made.
        node.on('ready', () => {
          entry.server = this.nodeName(node);
        });
        w = entry;
      }
      parts.push(`${w.id}:${w.closes}@${w.server}`);
    }
    return parts.sort().join(',');
  }

  /** The masters' servers (nodeName when each connection was last ready) a generation() names, sorted. */
  private static serversOf(generation: string): string {
    return generation
      .split(',')
      .map((part) => part.slice(part.indexOf('@') + 1))
      .sort()
      .join(',');
  }

  /**
   * Whether a master connection closed since `generation` (generation() taken before a command): then
   * ioredis may have sent the command again on the new connection (autoResendUnfulfilledCommands; see
   * failRepeatedResends), so its reply may answer a second send whose first one ran, and an error
   * reply says nothing of the first. A generation that cannot be read counts as closed. The one home
   * of that question for purge's, rollback's and rotate's compare-and-delete / compare-and-set
   * (test/stopped-part-way.test.ts "lost reply").
   */
  async closedSince(generation: string | undefined): Promise<boolean> {
    return generation === undefined || (await this.generation().catch(() => undefined)) !== generation;
  }

  /**
   * generation() before a command whose second send closedSince is to tell, or undefined when the
   * masters cannot be listed now (a cluster with no master answering: generation() throws, and the
   * command itself then fails with its own classified error, not this one); closedSince(undefined)
   * is true.
   */
  async generationBefore(): Promise<string | undefined> {
    return this.generation().catch(() => undefined);
  }

  /**
   * Cluster node IDs of the masters now (CLUSTER MYID), to recognise the same cluster after a
   * resharding or failover; empty for other topologies.
   */
  async clusterNodeIds(): Promise<string[]> {
    if (!(this.client instanceof Cluster)) return [];
    const ids: string[] = [];
    for (const node of await this.masters()) ids.push(String(await node.call('CLUSTER', 'MYID')));
    return ids;
  }

  /** run_id of the node serving now (INFO server): the master behind Sentinel, or the single node. */
  async runId(): Promise<string | undefined> {
    if (this.client instanceof Cluster) return undefined;
    return parseInfo(await this.client.info('server')).get('run_id');
  }

  /**
   * Sentinel: the master the sentinels report now (SENTINEL GET-MASTER-ADDR-BY-NAME), so a caller can
   * check that it reads from the current master after a failover. Undefined for other topologies.
   */
  async sentinelMaster(): Promise<HostPort | undefined> {
    if (this.topology !== 'sentinel') return undefined;
    return (await askSentinels(this.spec, this.spec.address.tls ? loadTlsOptions(this.spec.tls, this.spec.role) : undefined)).master;
  }

  /**
   * Sentinel: makes sure the client talks to the master the sentinels report now; reconnects (ioredis
   * asks the sentinels again) when it does not, and waits until it does (waitForSentinelMaster, the
   * one wait of every command).
   * @param timeoutMs how long to wait, ms (default DEFAULT_FAILOVER_WAIT_MS); 0 looks once
   * @throws UserFacingError (waitForSentinelMaster's line) when it still does not after `timeoutMs`.
   */
  async followSentinelMaster(timeoutMs = DEFAULT_FAILOVER_WAIT_MS): Promise<void> {
    if (this.topology !== 'sentinel' || !(this.client instanceof Redis)) return;
    const client = this.client;
    let attempt = 0;
    await waitForSentinelMaster(this.spec.address, timeoutMs, async () => {
      // A client whose reconnects were spent while the master was down (no keepReconnecting: a few
      // tries, commonOptions' retryStrategy) has ended for good: connect it again, which asks the
      // sentinels for the master anew (https://github.com/redis/ioredis lib/Redis.ts connect(), from
      // status `end`), not awaited: the next looks see it connecting, then ready.
      if (client.status === 'end' && !this.closing) client.connect().catch(() => undefined);
      const master = await this.sentinelMaster();
      // Only a ready client is asked: a command to one still connecting waits in its offline queue
      // (up to its reconnects or the command timeout), which would stretch the wait past timeoutMs.
      const role =
        client.status === 'ready'
          ? await client.info('replication').then(
              (t) => parseInfo(t).get('role'),
              () => undefined,
            )
          : undefined;
      const here = this.nodeName(client);
      const ok = master !== undefined && role === 'master' && here === formatHostPort(master);
      if (!ok && client.status === 'ready' && attempt++ > 0 && here !== (master !== undefined ? formatHostPort(master) : '')) {
        // Reconnect: ioredis asks the sentinels for the master again. Only a ready client: each
        // disconnect adds a 'close' listener to its socket (https://github.com/redis/ioredis
        // lib/connectors/AbstractConnector.ts disconnect()), so calling it every look while the socket
        // is closed or still connecting piled them up (MaxListenersExceededWarning after 11 looks).
        client.disconnect(true);
      }
      return { ...(master !== undefined ? { master } : {}), ok, why: `connected to ${here}, role ${role ?? 'unknown'}` };
    });
  }

  /**
   * The SCAN_INTERRUPTED errors this connection's scan() threw (scanAgainAfterFailover), each with
   * when the master's connection closed (performance.now(), ms).
   */
  private readonly scanInterruptions = new WeakMap<Error, number>();

  /**
   * Sentinel: whether a scan of this connection that a failover cut short may be run again from the
   * beginning, on the new master. `err` is what the caller's scan threw: an error with SCAN_INTERRUPTED
   * that this connection's scan() made (or an error whose `cause` is one, as a source's one line
   * wraps it). A SCAN cursor is valid on one server only (scan()), so the caller must start its scan
   * over, and rebuild from nothing whatever it had counted (never merge what the cut-short scan saw).
   * Waits for the master the sentinels report (followSentinelMaster, the one wait of every command),
   * then says on onWarning, once per restart, that `what` starts again there.
   * A caller bounds its restarts by SCAN_RESTARTS_AFTER_FAILOVER (a master that keeps failing over:
   * its one line then).
   * @param what the command, as the operator typed it (`verify`, `plan`, `apply`), for the note
   * @param timeoutMs how long to wait for the master, ms (--master-wait-ms; default DEFAULT_FAILOVER_WAIT_MS),
   *   counted from the close of the master's connection that cut the scan short: ioredis reports
   *   that close to the caller's commands only once its reconnects ran out (seconds later when no
   *   sentinel answers either: openSentinel's sentinelRetryStrategy), which before started the
   *   wait that much late (apply ended seconds past --master-wait-ms). Once that much has passed,
   *   one look (followSentinelMaster with 0).
   * @param then what the new start means for the counts, appended to the note after `; ` (apply:
   *   what it wrote before is counted as already present); none: the note ends at `there`
   * @returns true: scan again; false: `err` is not this connection's interruption, the topology is
   *   not Sentinel, or no master served within `timeoutMs` (the caller throws `err`, its one line)
   */
  async scanAgainAfterFailover(err: unknown, what: string, timeoutMs = DEFAULT_FAILOVER_WAIT_MS, then?: string): Promise<boolean> {
    const e = err instanceof Error && !this.scanInterruptions.has(err) && err.cause instanceof Error ? err.cause : err;
    const lostAt = e instanceof Error ? this.scanInterruptions.get(e) : undefined;
    if (this.topology !== 'sentinel' || lostAt === undefined || this.closing) return false;
    try {
      await this.followSentinelMaster(Math.max(0, Math.round(timeoutMs - (performance.now() - lostAt))));
      await this.describeServingMaster();
    } catch {
      return false;
    }
    this.onWarning(
      `note: the master of ${this.url} went away during ${what}'s SCAN (a restart or fail-over); the sentinels now report ${this.nodeName(this.client as Redis)}: ${what} started again from the beginning there${then !== undefined ? `; ${then}` : ''}`,
    );
    return true;
  }

  /**
   * Behind Sentinel: the description's `host`, `port`, `runId` and `replicationId` made those of the
   * master the client is connected to now (after followSentinelMaster), from its INFO server and
   * replication sections, as openSentinel made them at open.
   * @throws the INFO command's error (the caller treats it as no master)
   */
  private async describeServingMaster(): Promise<void> {
    const client = this.client as Redis;
    const info = parseInfo(`${await client.info('server')}\n${await client.info('replication')}`);
    const { runId: _runId, replicationId: _replicationId, replicaOf: _replicaOf, ...kept } = this.described;
    // Where the socket is connected: the master the sentinels reported when the client reconnected.
    this.described = { ...kept, ...socketPeer(client), ...nodeIdentity(info) };
  }

  private closing = false;
  /** keepConnected's pending reconnect (100 ms to 2 s), cancelled by close(). */
  private reconnectTimer: NodeJS.Timeout | undefined;

  /**
   * Keeps the client connected for as long as this connection lives: ioredis ends a client for good
   * when a reconnect races with a disconnect (e.g. its Sentinel failover detector firing while the
   * client reconnects after a CLIENT KILL), after which every command fails with "Connection is
   * closed". Such an end is followed by a new connect (with backoff: 100 ms doubling up to 2 s)
   * unless close() was called; close() cancels a pending one, so a closed connection never
   * reconnects nor keeps the process running (packages/redis/test/connection.test.ts "keepConnected").
   */
  keepConnected(): void {
    let attempt = 0;
    const client = this.client;
    const again = (): void => {
      if (this.closing) return;
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = setTimeout(
        () => {
          this.reconnectTimer = undefined;
          if (this.closing || client.status !== 'end') return;
          client.connect().then(
            () => {
              attempt = 0;
            },
            () => {
              attempt++;
              if (client.status === 'end') again();
            },
          );
        },
        Math.min(100 * 2 ** attempt, 2000),
      );
    };
    client.on('end', again);
  }

  /** Closes every connection of this client (disconnectClient). */
  close(): void {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    disconnectClient(this.client);
  }
}

/**
 * Closes an ioredis client for good, whatever its state, leaving nothing that keeps the process
 * running: the one way every client this module creates is closed (probe, single node, Cluster,
 * sentinel clients, on failure as on success; RedisConnection.close). Afterwards every command the
 * client held (waiting for its reply, queued for a reconnect) has failed with ioredis's "Connection
 * is closed." (isConnectionLost), a command sent later fails so at once, no reconnect is pending and
 * no socket open. ioredis's `disconnect()` alone does that only for a client whose socket is open
 * (lib/Redis.ts disconnect, lib/redis/event_handler.ts closeHandler of https://github.com/redis/ioredis;
 * installed copy node_modules/ioredis/built/):
 * - its socket is closed already (status `reconnecting`: the server closed it and a reconnect is
 *   pending; `end`: it will not reconnect), so ioredis's close handler, which ends the client and
 *   fails its queues, never runs again: `disconnect()` only cleared the reconnect timer and left the
 *   client `reconnecting` for ever, its commands pending until their 30 s command timeout (the CLI
 *   stayed 30 s after its error line, 1 run in 3 of verify against a Redis that closed the
 *   connection at every reply, test/reconnect-bound.test.ts); endStranded ends it;
 * - `disconnect()` calls `socket.end()` and arms a timer of `disconnectTimeout` (2 s by default)
 *   that only the socket's 'close' event clears, which a closed socket has emitted already
 *   (lib/connectors/AbstractConnector.ts disconnect): the process stayed 2 s after its one-line
 *   error. Such a socket is not disconnected again; a Sentinel client (`sentinels` option) still is,
 *   as only its disconnect() closes the connections of its failover detector to the sentinels
 *   (lib/connectors/SentinelConnector/index.ts), which outlive the master connection: commonOptions'
 *   DISCONNECT_TIMEOUT_MS makes that timer (and a connect still in progress) end at once.
 * A Cluster's nodes do not reconnect (ioredis gives them no retryStrategy; one that ended left the
 * pool on its own 'end'), and Cluster.disconnect() disconnects those in its pool; the Cluster client
 * ends once the last of them has (its pool's 'drain'). A Cluster client with no node in its pool
 * (every node gone: it waits to connect again) never would: endStrandedCluster ends it. One that
 * ended already is left so (a disconnect() would make it `disconnecting` again, where a command sent
 * later waits in its offline queue for ever instead of failing). Either way the commands waiting in
 * a Cluster's retry queue (a master killed under them, CLUSTERDOWN) are failed at once and its timers
 * cleared: failDelayedRetries.
 * packages/redis/test/connection.test.ts "close() of a client waiting to reconnect" and "close() of
 * a Redis Cluster connection waiting to reconnect", test/reconnect-bound.test.ts ("exits promptly"),
 * test/redis-url-user-without-password.test.ts ("exits at once").
 */
function disconnectClient(client: Redis | Cluster): void {
  if (client instanceof Cluster) {
    if (client.status !== 'end') {
      if (client.status !== 'wait' && client.nodes('all').length === 0) endStrandedCluster(client);
      else client.disconnect();
    }
    failDelayedRetries(client);
    return;
  }
  const socketClosed = client.status === 'reconnecting' || client.status === 'end';
  if (socketClosed) endStranded(client);
  if (!socketClosed || (client.options.sentinels ?? []).length > 0) client.disconnect();
  // A client that had reconnected and closed again before it was ready keeps the commands of the
  // connection before (see endStranded): failed once its close handler has run.
  if (client.status === 'end') endStranded(client);
  else client.once('end', () => endStranded(client));
}

/**
 * The fields of an ioredis 6 `Redis` client that endStranded reads and writes (not in its typings
 * but `status`): lib/Redis.ts and lib/redis/event_handler.ts of https://github.com/redis/ioredis.
 */
interface RedisInternals {
  status: Redis['status'];
  /** Commands sent while no connection was ready, for the next one (Redis.sendCommand). */
  offlineQueue: { shift(): { command: { reject(err: Error): void } } | undefined };
  /** Commands sent on the connection that closed, waiting for their replies (public). */
  commandQueue: Redis['commandQueue'];
  /** The commandQueue of a connection that closed while ready, sent again once a new one is (closeHandler, readyHandler). */
  prevCommandQueue?: Redis['commandQueue'] | null;
}

/**
 * The part of disconnectClient that reaches into ioredis (6.0.0), kept here alone: ends a client
 * whose socket is closed already and fails every command it still holds.
 *
 * A `reconnecting` client (a reconnect timer pending, no socket) is ended by ioredis's own close
 * handler, run the one way ioredis runs it without a socket: `disconnect()` of a client whose status
 * is `wait` (never connected) calls closeHandler itself, which, the close being manual, sets the
 * status `end` (emitting 'end') and fails the offline queue and the command queue with "Connection
 * is closed." (lib/Redis.ts disconnect, lib/redis/event_handler.ts closeHandler and its close(),
 * Redis.flushQueue, of https://github.com/redis/ioredis). `disconnect()` clears the reconnect timer
 * first.
 *
 * Then the commands no ioredis path fails, with the same error: the `prevCommandQueue` of a
 * connection that closed while ready, when a reconnect got as far as connecting (connectHandler
 * starts a new commandQueue) and closed again before ready: closeHandler keeps it for a ready
 * that never comes, and flushQueue does not look at it; and whatever the queues still hold.
 * packages/redis/test/connection.test.ts "close() of a client waiting to reconnect" fails if
 * ioredis stops doing so (the commands left pending, the client not `end`).
 */
function endStranded(client: Redis): void {
  const c = client as unknown as RedisInternals;
  if (c.status === 'reconnecting') {
    c.status = 'wait';
    client.disconnect();
  }
  const closed = new Error('Connection is closed.');
  for (const queue of [c.offlineQueue, c.commandQueue, c.prevCommandQueue]) {
    for (let item = queue?.shift(); item !== undefined; item = queue?.shift()) item.command.reject(closed);
  }
  c.prevCommandQueue = null;
}

/**
 * The part of disconnectClient that reaches into ioredis's Cluster (6.0.0), kept here alone: ends a
 * Cluster client whose node pool is empty, and fails the commands it queued.
 *
 * A Cluster client whose every node went away (each node client ends on its socket's close, as
 * ioredis gives it no retryStrategy, and leaves the pool; the empty pool's 'drain' makes the client
 * `close`, and its handleCloseEvent `reconnecting`) holds the commands sent since in its offline
 * queue, with no timer (a Cluster starts a command's timeout only when it hands it to a node).
 * `disconnect()` of such a client clears the reconnect timer, sets it `disconnecting` and empties a
 * pool that is empty already: no 'drain' comes, so handleCloseEvent never runs again, the client
 * stays `disconnecting` and its queued commands pending for ever (lib/cluster/index.ts `disconnect`,
 * `handleCloseEvent`, `flushQueue` and lib/cluster/ConnectionPool.ts `reset` of
 * https://github.com/redis/ioredis). `disconnect()` of a client whose status is `wait` (never
 * connected) runs handleCloseEvent itself: the close being manual, it sets the status `end`
 * (emitting 'end') and fails the offline queue with "None of startup nodes is available", the way
 * it ends a cluster whose reconnects ran out. So the status is set to `wait` first, as endStranded
 * does for a single node. The same holds for a client `connecting` again before its pool is filled
 * (resolving the startup nodes' names): its connect then stops there ("Connection is aborted").
 * packages/redis/test/connection.test.ts "close() of a Redis Cluster connection waiting to
 * reconnect" fails if ioredis stops doing so (the command left pending, the client not `end`).
 */
function endStrandedCluster(cluster: Cluster): void {
  cluster.status = 'wait';
  cluster.disconnect();
}

/** The retry queue of an ioredis 6 Cluster client (`delayQueue`, lib/cluster/DelayQueue.ts; not in its typings). */
interface ClusterDelayQueue {
  /** Per bucket (`failover`, `clusterdown`, `tryagain`, `moved`): the retries waiting for its timer. */
  queues: Record<string, { shift(): (() => void) | undefined } | null>;
  /** Per bucket: the timer that runs them (retryDelayOnFailover, retryDelayOnClusterDown, ...). */
  timeouts: Record<string, NodeJS.Timeout | null>;
}

/**
 * The part of disconnectClient that reaches into ioredis's Cluster retry queue (6.0.0), kept here
 * alone: fails at once the commands waiting in it, and clears its timers.
 *
 * A command whose node connection closed under it ("Connection is closed.": a master killed, a
 * failover) while the Cluster client was ready, or that got CLUSTERDOWN or TRYAGAIN, waits in the
 * client's DelayQueue for a timer (retryDelayOnFailover, retryDelayOnClusterDown,
 * retryDelayOnTryAgain: newCluster), which then refreshes the slot map and sends it again
 * (lib/cluster/index.ts handleError, lib/cluster/DelayQueue.ts of https://github.com/redis/ioredis).
 * `disconnect()` clears neither. After a close the timer still fired; the command was sent again into
 * a client whose status its pool's late 'drain' events had set back from `end` to `close` (each node
 * ending after the pool was emptied emits one: lib/cluster/ConnectionPool.ts), so it went to the
 * offline queue, where nothing fails it, and its command timer (commandTimeout, 30 s) kept the
 * process running that long. Running the waiting retries now, before that, hands each command to the
 * client while it ends: a client that has ended fails it ("Cluster is ended."); one still ending
 * (`disconnecting`) queues it offline, which its end fails ("None of startup nodes is available").
 * Either is a lost connection (isConnectionLost).
 * packages/redis/test/connection.test.ts "close() of a Redis Cluster connection with a command in
 * ioredis's retry queue" fails if ioredis stops doing so (the command left pending, a timer left).
 */
function failDelayedRetries(cluster: Cluster): void {
  const queue = (cluster as unknown as { delayQueue?: ClusterDelayQueue }).delayQueue;
  if (queue === undefined) return;
  for (const bucket of Object.keys(queue.timeouts)) {
    clearTimeout(queue.timeouts[bucket] ?? undefined);
    queue.timeouts[bucket] = null;
  }
  for (const bucket of Object.keys(queue.queues)) {
    const retries = queue.queues[bucket];
    queue.queues[bucket] = null;
    for (let retry = retries?.shift(); retry !== undefined; retry = retries?.shift()) retry();
  }
}

/**
 * What each of `nodes` says of the slot map (CLUSTER SLOTS, https://redis.io/docs/latest/commands/cluster-slots/):
 * per node asked, every slot range (`start-end`) with the IDs of the nodes serving it (master and
 * replicas).
 */
async function slotMapsOf(nodes: readonly Redis[]): Promise<Array<Map<string, Set<string>>>> {
  return Promise.all(
    nodes.map(async (node) => {
      const ranges = (await node.call('CLUSTER', 'SLOTS')) as Array<[number, number, ...Array<[string, number, string?]>]>;
      return new Map(ranges.map(([start, end, ...served]) => [`${start}-${end}`, new Set(served.map((n) => n[2] ?? `${n[0]}:${n[1]}`))]));
    }),
  );
}

/** A slot being moved, as the `myself` line of CLUSTER NODES shows it on the source (`->-`) or the destination (`-<-`). */
export interface SlotMove {
  slot: number;
  /** Node IDs. */
  from: string;
  to: string;
}

/**
 * The slots a node is migrating or importing, from its CLUSTER NODES reply: the `myself` line's
 * special slot entries `[SLOT->-DST_ID]` (migrating) and `[SLOT-<-SRC_ID]` (importing)
 * (https://redis.io/docs/latest/commands/cluster-nodes/, "Special slot entries"; only the node's own
 * line carries them, so every master must be asked).
 */
export function slotMovesOf(clusterNodes: string): SlotMove[] {
  const moves: SlotMove[] = [];
  for (const line of clusterNodes.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 3 || !fields[2]!.split(',').includes('myself')) continue;
    const me = fields[0]!;
    for (const f of fields.slice(8)) {
      const m = /^\[(\d+)-([<>])-([0-9a-f]+)\]$/.exec(f);
      if (m === null) continue;
      moves.push(m[2] === '>' ? { slot: Number(m[1]), from: me, to: m[3]! } : { slot: Number(m[1]), from: m[3]!, to: me });
    }
  }
  return moves;
}

/**
 * CLUSTER NODES as the fields of each node's line (https://redis.io/commands/cluster-nodes/: id,
 * ip:port@cport, flags, master ID or `-`, ping-sent, pong-recv, config epoch, link state, slots...).
 */
function nodeLines(clusterNodes: string): string[][] {
  return clusterNodes
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter((f) => f.length >= 8);
}

/** The IDs of the nodes whose master is `id` (its replicas, failed ones too), from nodeLines. */
function replicasIn(lines: readonly string[][], id: string): string[] {
  return lines.filter((f) => f[3] === id).map((f) => f[0]!);
}

/**
 * The slot map of a CLUSTER NODES reply: each slot range of a master (`0-5460`, `5461`) -> the IDs of
 * that master and of the nodes listed as its replicas (failed ones too).
 */
export function slotMapOfNodes(clusterNodes: string): Map<string, Set<string>> {
  const lines = nodeLines(clusterNodes);
  const map = new Map<string, Set<string>>();
  for (const f of lines) {
    if (!f[2]!.split(',').includes('master')) continue;
    const ids = new Set([f[0]!, ...replicasIn(lines, f[0]!)]);
    for (const range of f.slice(8)) if (!range.startsWith('[')) map.set(range, ids);
  }
  return map;
}

/**
 * One master's view of a Redis Cluster at one moment of a scan: the slot map (range -> IDs of the
 * master and replicas serving it), the node itself from the `myself` line of CLUSTER NODES (absent
 * without CLUSTER NODES), and which slots it serves (1 per slot, by slot number).
 */
interface ClusterView {
  map: Map<string, Set<string>>;
  self?: NodeSelf;
  served?: Uint8Array;
  /** Calls of the slot-assigning CLUSTER subcommands on this master so far (slotCommandCalls). */
  slotCommands: number;
}

/**
 * The CLUSTER subcommands that change which node serves a slot, or its migrating/importing state
 * (https://redis.io/docs/latest/commands/cluster-setslot/, cluster-addslots, cluster-delslots, ...),
 * and MIGRATE, which moves a slot's keys.
 */
const SLOT_COMMANDS = [
  'cluster|setslot',
  'cluster|addslots',
  'cluster|addslotsrange',
  'cluster|delslots',
  'cluster|delslotsrange',
  'cluster|flushslots',
  // MIGRATE moves keys from this node to another (a resharding's step, https://redis.io/docs/latest/commands/migrate/):
  // one during the scan may carry keys from a master not scanned yet to one already scanned. CLUSTER
  // NODES shows a migration running at either check; without +cluster|nodes only this count does.
  'migrate',
];

/**
 * How many times the node ran a command of SLOT_COMMANDS since its start (or CONFIG RESETSTAT), from
 * its INFO commandstats text (`cmdstat_cluster|setslot:calls=N,usec=...`: one line per subcommand
 * since redis 7.0, https://redis.io/docs/latest/commands/info/; a command never run has no line).
 * A scan compares it before and after: `CLUSTER SETSLOT <slot> NODE <id>` sent without IMPORTING
 * first bumps no config epoch (src/cluster.c clusterCommandSetSlot, https://github.com/redis/redis),
 * nor do ADDSLOTS/DELSLOTS, so a slot handed away and back that way leaves the slot map and every
 * epoch as they were; only these counts show it. Redis 6 counts every CLUSTER subcommand in one
 * `cmdstat_cluster` line (which the scan's own CLUSTER NODES moves): 0 there, no check.
 */
export function slotCommandCalls(commandstats: string): number {
  const info = parseInfo(commandstats);
  let calls = 0;
  for (const command of SLOT_COMMANDS) {
    const m = /(?:^|,)calls=(\d+)/.exec(info.get(`cmdstat_${command}`) ?? '');
    if (m !== null) calls += Number(m[1]);
  }
  return calls;
}

/** The `myself` line of CLUSTER NODES: node ID, whether a master, and its config epoch (column 7). */
export interface NodeSelf {
  id: string;
  master: boolean;
  configEpoch: string;
}

/**
 * The node answering a CLUSTER NODES reply (its `myself` line; https://redis.io/docs/latest/commands/cluster-nodes/,
 * fields `id ip:port@bus flags master ping-sent pong-recv config-epoch link-state slot...`); undefined
 * when there is none.
 */
export function selfOfNodes(clusterNodes: string): NodeSelf | undefined {
  for (const line of clusterNodes.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const flags = f[2]!.split(',');
    if (flags.includes('myself')) return { id: f[0]!, master: flags.includes('master'), configEpoch: f[6]! };
  }
  return undefined;
}

/** The slots served by node `id` (as master or replica) in a slot map: 1 per slot served. */
function servedBy(map: ReadonlyMap<string, ReadonlySet<string>>, id: string): Uint8Array {
  const served = new Uint8Array(16384);
  for (const [range, ids] of map) {
    if (!ids.has(id)) continue;
    const [start, end = start] = range.split('-').map(Number);
    served.fill(1, start, end! + 1);
  }
  return served;
}

/**
 * Keys of one master a cluster SCAN keeps (their names, in a Set) so that, if that master goes away
 * mid-scan, the node that took over its slots is scanned from cursor 0 and lists only the others: about
 * 100 bytes each for a session key, so some 50 MB at most. A master that goes away after listing more
 * fails the scan (SCAN_INTERRUPTED, run again), as any loss did before.
 */
export const REPLAY_KEYS = 500_000;

/**
 * How long a command waits for a failover to finish, ms, by default: a cluster SCAN for a replica to
 * take over the slots of a master that went away (OpenOptions.failoverWaitMs), and followSentinelMaster
 * for the master the sentinels report (the CLI's --master-wait-ms sets both). A cluster failover needs
 * the cluster's node timeout to flag the master as failed (cluster-node-timeout, 15 s by default in
 * redis.conf) plus an election
 * (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/, "Replica election and promotion").
 */
export const DEFAULT_FAILOVER_WAIT_MS = 30_000;

/**
 * How often a command whose SCAN a Sentinel failover cut short starts again from the beginning
 * (RedisConnection.scanAgainAfterFailover): verify over its target and sources, plan and apply over a
 * Redis source. Past it, a master that keeps failing over gets the scan's one line (run again).
 */
export const SCAN_RESTARTS_AFTER_FAILOVER = 3;

/** The IDs of a master's shard (itself and the nodes its CLUSTER NODES lists as its replicas, failed ones too). */
function shardOf(view: ClusterView): Set<string> {
  const ids = new Set<string>();
  if (view.self === undefined) return ids;
  for (const shard of view.map.values()) if (shard.has(view.self.id)) for (const id of shard) ids.add(id);
  return ids;
}

/**
 * Whether a master lost during a scan can be replaced (RedisConnection.takeOver): its view came from
 * CLUSTER NODES (which slots it served, which nodes are its replicas), and it had a replica.
 */
function replaceable(view: ClusterView): boolean {
  return view.self?.master === true && view.served !== undefined && shardOf(view).size > 1;
}

/** Whether two slot sets (servedBy) are the same. */
function sameSlots(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The keys of a SCAN reply in slots `served`; the others are counted in `strays` (per master, by its
 * index `master` in the scan's list of masters, then per slot).
 */
function servedKeys(keys: Buffer[], served: Uint8Array, strays: Map<number, Map<number, number>>, master: number): Buffer[] {
  const listed: Buffer[] = [];
  for (const k of keys) {
    const slot = hashSlot(k);
    if (served[slot] === 1) {
      listed.push(k);
      continue;
    }
    const bySlot = strays.get(master) ?? new Map<number, number>();
    strays.set(master, bySlot.set(slot, (bySlot.get(slot) ?? 0) + 1));
  }
  return listed;
}

/**
 * Whether a master's config epoch changed between two checks (same nodes asked, each about itself):
 * `CLUSTER SETSLOT <slot> NODE <myself>` on a node importing the slot bumps its config epoch unless it
 * already has the greatest one (clusterBumpConfigEpochWithoutConsensus in src/cluster.c of
 * https://github.com/redis/redis), so a slot moved away and back between the checks leaves the slot
 * map as it was but a master's epoch greater. A node that was not a master at both checks (a failover
 * promotes a replica with a new epoch) is left out: a failover is no move.
 */
function epochsMoved(before: readonly ClusterView[], after: readonly ClusterView[]): boolean {
  return before.some((b, i) => {
    const a = after[i]!.self;
    return (
      b.self !== undefined && a !== undefined && b.self.id === a.id && b.self.master && a.master && b.self.configEpoch !== a.configEpoch
    );
  });
}

/** The warning of keys a master holds in slots it does not serve (counts and slots, never key names). */
function strayKeysWarning(node: string, slots: ReadonlyMap<number, number>): string {
  const sorted = [...slots.keys()].sort((a, b) => a - b);
  const keys = [...slots.values()].reduce((a, b) => a + b, 0);
  const named = sorted.slice(0, 5).join(', ') + (sorted.length > 5 ? ` and ${sorted.length - 5} more` : '');
  return `warning: master ${node} holds ${keys} key${keys === 1 ? '' : 's'} of slot${sorted.length === 1 ? '' : 's'} ${named} that it does not serve (a slot move aborted with CLUSTER SETSLOT STABLE after MIGRATE?): no client can read them, and SCAN left them out; finish the move or MIGRATE them back to the slot's master (redis-cli --cluster check shows the slot map)`;
}

/** The SCAN_RESHARDING message for the moves found (each slot once, at most 5 named). */
function resharding(moves: readonly SlotMove[]): string {
  const slots = [...new Set(moves.map((m) => m.slot))].sort((a, b) => a - b);
  const named = slots.slice(0, 5).join(', ') + (slots.length > 5 ? ` and ${slots.length - 5} more` : '');
  return `${SCAN_RESHARDING} (slot${slots.length === 1 ? '' : 's'} ${named} being migrated between masters): SCAN may miss keys already moved; run again when the resharding has finished`;
}

/**
 * Whether slots moved between two slot maps of slotMapsOf (same nodes asked): a range that appeared or
 * went, or one now served by none of the nodes that served it (another shard). A failover (master and
 * replica swap) or a replica that left keeps a node in common: no move.
 */
function slotsMoved(before: ReadonlyArray<Map<string, Set<string>>>, after: ReadonlyArray<Map<string, Set<string>>>): boolean {
  return before.some((b, i) => {
    const a = after[i]!;
    if (a.size !== b.size) return true;
    for (const [range, ids] of b) {
      const now = a.get(range);
      if (now === undefined || ![...ids].some((id) => now.has(id))) return true;
    }
    return false;
  });
}

/** Replicas wanted of master `name`; a master not known at the start (a cluster failover promoted a replica): as many as the most. */
function wantedReplicas(min: Map<string, number>, name: string): number {
  return min.get(name) ?? min.get('*') ?? Math.max(0, ...min.values());
}

/**
 * Replicas of an INFO replication answer that are online and at `offset` or beyond, from the
 * `slaveN:ip=..,port=..,state=online,offset=..,lag=..` lines (https://redis.io/docs/latest/commands/info/).
 */
export function replicasAtOffset(info: Map<string, string>, offset: number): number {
  let n = 0;
  for (const [field, value] of info) {
    if (!/^slave\d+$/.test(field)) continue;
    const f = new Map(value.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
    if (f.get('state') === 'online' && Number(f.get('offset') ?? NaN) >= offset) n++;
  }
  return n;
}

async function runPipeline(client: Redis | Cluster, items: GroupedItem[], idx: number[], out: Reply[][]): Promise<void> {
  const pipe = client.pipeline();
  const counts: number[] = [];
  for (const i of idx) {
    const before = pipe.length;
    items[i]!.build(pipe);
    counts.push(pipe.length - before);
  }
  let replies: Reply[];
  try {
    replies = ((await pipe.exec()) ?? []) as Reply[];
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    idx.forEach((i, n) => {
      out[i] = Array.from({ length: counts[n]! }, (): Reply => [e, null]);
    });
    return;
  }
  let at = 0;
  idx.forEach((i, n) => {
    const c = counts[n]!;
    const r: Reply[] = [];
    for (let k = 0; k < c; k++) r.push(replies[at + k] ?? [new Error('no reply'), null]);
    out[i] = r;
    at += c;
  });
}

function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}

function waitClusterReady(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => {
    if (cluster.status === 'ready') return resolve();
    const done = (): void => {
      cluster.off('ready', done);
      resolve();
    };
    cluster.once('ready', done);
    setTimeout(done, 5000);
  });
}

/** Escapes glob characters of a prefix for SCAN MATCH (`*`, `?`, `[`, `]`, `\`). */
export function scanPatternForPrefix(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, (c) => '\\' + c) + '*';
}

/** A key name for reports: as text when it is UTF-8, with any other byte as `\xNN`. */
export function keyNameForDisplay(key: Buffer): string {
  const text = key.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(key)) return text;
  return [...key]
    .map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
    .join('');
}

function baseDescription(spec: RedisSpec): Pick<ConnectionDescription, 'url' | 'db' | 'tls' | 'tlsFiles' | 'username' | 'auth'> {
  const a = spec.address;
  return {
    url: a.url,
    db: a.db,
    tls: a.tls,
    ...(a.tls && spec.tls !== undefined ? { tlsFiles: spec.tls } : {}),
    ...(spec.credentials.username !== undefined ? { username: spec.credentials.username } : {}),
    auth: spec.credentials.password !== undefined,
  };
}

/**
 * How long ioredis's disconnect() lets a socket it ended (`socket.end()`) close on its own before it
 * destroys it, ms (ioredis's `disconnectTimeout`, 2000 by default: lib/connectors/AbstractConnector.ts
 * of https://github.com/redis/ioredis). Nothing here waits for a graceful close: a disconnect
 * abandons the connection, its pending replies included. With 0 a socket already closed (a Sentinel
 * client's, see disconnectClient) or still connecting no longer holds the process for 2 s.
 */
const DISCONNECT_TIMEOUT_MS = 0;

/**
 * ioredis options shared by every connection of a spec (a single node, each node of a cluster, a
 * Sentinel master; the probe too).
 *
 * A user named in the URL without any password (none in the URL nor in the role's variable) is sent
 * as `AUTH <user> ""` (in ioredis's `HELLO 3 AUTH <user> ""`): a `nopass` ACL user accepts any
 * password and the connection runs as that user; any other user, or a name that is really a password
 * (`redis://SECRET@host`), is refused with WRONGPASS (connectFailure, which never echoes the name).
 * So the user recorded in a plan is always the one that authenticated, never a name recorded
 * while the connection ran as `default` (https://redis.io/docs/latest/commands/auth/,
 * https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/ "nopass"). ioredis 6
 * would send the same for an absent password (https://github.com/redis/ioredis lib/Redis.ts _connect:
 * `auth: [username, password]`; lib/utils toArg writes undefined as ""); it is explicit here so it
 * does not depend on that. Redis < 6 has no ACL users: there ioredis only warns on the refused
 * two-argument AUTH and goes on as if no user were named (not handled here).
 * test/redis-url-user-without-password.test.ts.
 */
function commonOptions(spec: RedisSpec, options: OpenOptions, tls: RedisOptions['tls'] | undefined): RedisOptions {
  const c = spec.credentials;
  return {
    ...(c.username !== undefined ? { username: c.username, password: c.password ?? '' } : {}),
    ...(c.username === undefined && c.password !== undefined ? { password: c.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
    connectTimeout: 5000,
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? 30_000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    // CLIENT SETINFO is unknown to Redis 7.0 and needs +client|setinfo in an ACL rule: not sent.
    disableClientInfo: true,
    // With keepReconnecting (apply) ioredis reconnects for as long as the client lives, and apply's
    // own bounded retry loop decides when to give up; otherwise 3 attempts.
    retryStrategy:
      options.keepReconnecting === true
        ? (times: number) => Math.min(times * 100, 2000)
        : (times: number) => (times > 3 ? null : Math.min(times * 200, 1000)),
    // A write to a node that became a replica (failover) answers READONLY: reconnect, so a Sentinel
    // client asks the sentinels for the new master; the command itself fails and is classified.
    reconnectOnError: (err: Error) => (/^READONLY\b/.test(err.message) && spec.address.kind === 'sentinel' ? 1 : false),
  };
}

/**
 * Bounds ioredis's re-sending of unanswered commands (`autoResendUnfulfilledCommands`, on by
 * default): a command whose connection the server closed before its reply is sent again after each
 * reconnect, and ioredis's `maxRetriesPerRequest` does not count those re-sends, since every
 * successful reconnect sets its counter back to 0 (lib/redis/event_handler.ts of
 * https://github.com/redis/ioredis: closeHandler flushes the queue only after maxRetriesPerRequest + 1
 * closes in a row without 'ready', and readyHandler sets `retryAttempts = 0`; installed copy
 * node_modules/ioredis/built/redis/event_handler.js). A server that closes the connection each time
 * the command runs (a reply over client-output-buffer-limit, a client evicted by maxmemory-clients)
 * made the command loop until its 30 s timeout; apply's retries of a batch made that minutes.
 *
 * Here a command (the same Command object, re-sent) that was waiting for its reply when a connection
 * that had been ready closed more than `client.options.maxRetriesPerRequest` times fails with
 * CLOSED_UNDER_COMMANDS's error, and so does every other command still waiting on that connection
 * (Redis dropped their replies with it). Closes of connections that never got ready (a restarted
 * server refusing, a failed handshake) are left to ioredis's own limit, as before. The error is not
 * a reply of Redis, so a write that failed so may have run (mayHaveRun).
 * packages/redis/test/connection.test.ts "a server that closes the connection at every reply",
 * test/reconnect-bound.test.ts.
 */
function failRepeatedResends(client: Redis): void {
  const limit = client.options.maxRetriesPerRequest;
  if (typeof limit !== 'number' || limit < 0) return;
  const closesUnder = new WeakMap<object, number>();
  let wasReady = client.status === 'ready';
  client.on('ready', () => {
    wasReady = true;
  });
  // 'close' is emitted on the next tick after ioredis's closeHandler ran: the queue is still the
  // closed connection's, i.e. the commands it will re-send once reconnected (prevCommandQueue).
  client.on('close', () => {
    if (!wasReady) return;
    wasReady = false;
    const queue = client.commandQueue;
    let most = 0;
    for (const item of queue.toArray()) {
      const n = (closesUnder.get(item.command) ?? 0) + 1;
      closesUnder.set(item.command, n);
      most = Math.max(most, n);
    }
    if (most <= limit) return;
    const error = new Error(`${CLOSED_UNDER_COMMANDS} ${most} times while the same commands waited for their replies`);
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) item.command.reject(error);
  });
}

/**
 * Redis's reply to AUTH with a password alone when its default user has none (src/acl.c authCommand
 * of https://github.com/redis/redis: "AUTH <password> called without any password configured for
 * the default user"; before Redis 6 "Client sent AUTH, but no password is set"). ioredis accepts
 * such a password silently (its RESP3 handshake sends HELLO 3 AUTH default <password>, which a
 * `nopass` default user accepts) or only warns (lib/redis/event_handler.js handleAuthError);
 * phpredis sends AUTH <password> and fails the connect, so the generated handler, given the same
 * variable, would fail every session_start(). AUTH with a user and a password is accepted by a
 * `nopass` user, in Redis and in phpredis alike: with a user nothing is checked.
 */
const NO_PASSWORD_CONFIGURED = /without any password configured|no password is set/i;

/**
 * On a connection ioredis opened with the credentials: with a password and no user, sends
 * `AUTH <password>` as phpredis does (harmless on a server that has the password) and refuses a
 * password the server does not use.
 * @param refuse the error for a server that needs no password (NO_PASSWORD_CONFIGURED)
 * @throws that error, or the server's reply error (WRONGPASS, ...) for the caller to classify
 */
async function confirmPasswordNeeded(
  client: Redis,
  password: string | undefined,
  username: string | undefined,
  refuse: () => UserFacingError,
): Promise<void> {
  if (password === undefined || username !== undefined) return;
  try {
    await client.call('AUTH', password);
  } catch (err) {
    if (NO_PASSWORD_CONFIGURED.test((err as Error).message ?? '')) throw refuse();
    throw err;
  }
}

/** The one-line refusal of a password the server does not use (names the variable, never the password). */
function unneededPassword(spec: RedisSpec, where: string, sentinel = false): UserFacingError {
  const given = sentinel
    ? `${SENTINEL_PASSWORD_ENV[spec.role]} is set`
    : spec.credentials.passwordInUrl
      ? 'the URL gives a password'
      : `${PASSWORD_ENV[spec.role]} is set`;
  return new UserFacingError(
    `${where} requires no password, but ${given}: AUTH with it is refused (no password is configured for the default user), as the PHP handler's would be; ${!sentinel && spec.credentials.passwordInUrl ? 'remove it from the URL' : 'unset it'}, or ${sentinel ? `give the sentinels' ACL user in ${SENTINEL_USERNAME_ENV[spec.role]}` : 'name the ACL user in the URL'}`,
  );
}

/**
 * How long the first connection to a node waits for the reply to its INFO (and CLUSTER INFO): a
 * Redis server answers at once, even a loaded one; a port that accepted the connection and stays
 * silent (another service waiting for its client to speak, a hung server) is named after this
 * rather than after the 30 s of the commands' timeout (OpenOptions.commandTimeoutMs, when shorter,
 * applies instead).
 */
export const PROBE_REPLY_TIMEOUT_MS = 10_000;

/**
 * One plain connection to the node a URL gives (or `node`: the master a sentinel named), to learn
 * what it is: its INFO and, when cluster mode is on, its CLUSTER INFO. The connection is closed
 * before this returns. No ready check: that is INFO, which the probe sends itself (a rule without
 * INFO must fail with our message, not with ioredis's console warning), each reply awaited
 * PROBE_REPLY_TIMEOUT_MS at most, and a node still loading is refused (refuseLoading), so the ready
 * check of the connection opened next passes at once.
 * @param node the node to probe instead of the URL's, and how to name it (`the master H:P of URL`)
 * @throws UserFacingError (connectFailure) for an unreachable node, a certificate problem, a wrong
 *   password or a rule without INFO / CLUSTER INFO
 */
async function probeNode(
  spec: RedisSpec,
  options: OpenOptions,
  common: RedisOptions,
  node?: { at: HostPort; where: string },
): Promise<{ info: Map<string, string>; clusterState?: Map<string, string> }> {
  const a = spec.address;
  const at: HostPort = node?.at ?? a;
  const where = node?.where ?? `${spec.role === 'source' ? 'the source ' : ''}Redis at ${a.url}`;
  const replyTimeoutMs = Math.min(options.commandTimeoutMs ?? PROBE_REPLY_TIMEOUT_MS, PROBE_REPLY_TIMEOUT_MS);
  const probe = new Redis({
    ...common,
    host: at.host,
    port: at.port,
    db: 0,
    commandTimeout: replyTimeoutMs,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
  });
  let lastError: Error | undefined;
  probe.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    let info: Map<string, string>;
    try {
      await connectWatchingForPlaintext(probe, a.tls, at);
      await confirmPasswordNeeded(probe, spec.credentials.password, spec.credentials.username, () => unneededPassword(spec, where));
      info = parseInfo(await probe.info());
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      // ioredis ends the INFO with "Connection is closed." after its timeout error (lastError).
      if ([err, lastError].some((e) => /^Command timed out/.test((e as Error | undefined)?.message ?? '')))
        throw new UserFacingError(
          `cannot connect to ${where}: connected, but no Redis reply within ${replyTimeoutMs / 1000} s: check that ${formatHostPort(at)} is a Redis server`,
        );
      throw connectFailure(spec, isPlaintextServer(err) ? err : (lastError ?? err), options.aclRule, where);
    }
    refuseLoading(info, where);
    if (info.get('cluster_enabled') !== '1' || info.get('redis_mode') === 'sentinel') return { info };
    try {
      return { info, clusterState: parseInfo(String(await probe.call('CLUSTER', 'INFO'))) };
    } catch (err) {
      throw connectFailure(spec, err, options.aclRule, undefined, true);
    }
  } finally {
    disconnectClient(probe);
  }
}

/**
 * Refuses a node that is still loading its data set (INFO persistence `loading:1`, after a restart
 * or a full sync: https://redis.io/docs/latest/commands/info/). It answers INFO but LOADING to almost
 * every other command, and ioredis's ready check waits, silently, until the load has finished
 * (lib/redis/index.ts _readyCheck of https://github.com/redis/ioredis: INFO again every
 * `loading_eta_seconds`), which on a large data set is minutes.
 * @param where what to name: `Redis at URL`, `the source Redis at URL`, `the master H:P of URL`
 * @throws UserFacingError naming `where` and the load's estimated time left, when loading
 */
function refuseLoading(info: Map<string, string>, where: string): void {
  if (info.get('loading') !== '1') return;
  const eta = Number(info.get('loading_eta_seconds'));
  const left = Number.isFinite(eta) && eta > 0 ? `, about ${eta} s left` : '';
  throw new UserFacingError(
    `${where} is loading its data set into memory (INFO loading:1${left}): run the command again once it has loaded; nothing was written`,
  );
}

/**
 * The address a client's socket is connected to (behind Sentinel, the master the sentinels named when
 * it last connected; its options keep the sentinels' addresses), or undefined while it has none.
 */
function socketPeer(node: Redis): HostPort | undefined {
  const s = node.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  return s?.remoteAddress !== undefined && s.remotePort !== undefined ? { host: s.remoteAddress, port: s.remotePort } : undefined;
}

/**
 * What INFO (server and replication sections) says of a node's identity and data set: `runId`,
 * `replicationId`, and `replicaOf` for a replica (see ConnectionDescription).
 */
function nodeIdentity(info: Map<string, string>): Pick<ConnectionDescription, 'runId' | 'replicationId' | 'replicaOf'> {
  const runId = info.get('run_id');
  const replicationId = info.get('master_replid');
  const masterHost = info.get('master_host');
  return {
    ...(runId !== undefined ? { runId } : {}),
    ...(replicationId !== undefined ? { replicationId } : {}),
    ...(info.get('role') === 'slave' && masterHost !== undefined
      ? { replicaOf: formatHostPort({ host: masterHost, port: Number(info.get('master_port')) }) }
      : {}),
  };
}

/** The connection to a single node on the URL's database (SELECT checked), kept connected when asked. */
async function openStandalone(
  spec: RedisSpec,
  options: OpenOptions,
  common: RedisOptions,
  info: Map<string, string>,
): Promise<RedisConnection> {
  const a = spec.address;
  const client = new Redis({ ...common, host: a.host, port: a.port, db: a.db, lazyConnect: true });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    disconnectClient(client);
    // The probe's INFO answered in plaintext a moment ago (probeNode).
    throw connectFailure(spec, lastError ?? err, options.aclRule, undefined, true);
  }
  await selectChecked(client, a, spec);
  const description: ConnectionDescription = {
    ...baseDescription(spec),
    topology: 'standalone',
    host: a.host,
    port: a.port,
    ...nodeIdentity(info),
  };
  const conn = new RedisConnection(spec, client, description, options.aclRule);
  if (options.keepReconnecting === true) conn.keepConnected();
  return conn;
}

/**
 * The connection to a Redis Cluster from the seed `spec.address` (ioredis's Cluster on every master,
 * database 0), with `description.nodes` (the masters' `host:port`) and `description.nodeIds` (their
 * CLUSTER MYID, in the same order), kept connected when asked.
 * @throws UserFacingError naming a master that did not answer its node ID (masterIds), or the connect
 *   failure (connectFailure) otherwise; the cluster client is disconnected then
 */
async function openCluster(spec: RedisSpec, options: OpenOptions, common: RedisOptions): Promise<RedisConnection> {
  const a = spec.address;
  const cluster = newCluster(spec, options, common);
  let lastError: Error | undefined;
  cluster.on('error', (err: Error) => {
    lastError = err;
  });
  cluster.on('node error', (err: Error) => {
    lastError = err;
  });
  const desc: ConnectionDescription = { ...baseDescription(spec), topology: 'cluster', host: a.host, port: a.port };
  const conn = newConnection(spec, cluster, desc, options.aclRule);
  try {
    const early = await connectAskingMasterIds(cluster, (masters) => masterIds(spec, options, masters));
    const masters = await conn.masters();
    desc.nodes = masters.map((m) => ({ host: m.options.host ?? a.host, port: m.options.port ?? a.port }));
    // The same connections as at the first slot map (no reconnect since): those answers stand.
    desc.nodeIds =
      early.masters.length === masters.length && early.masters.every((m, i) => m === masters[i])
        ? early.ids
        : await masterIds(spec, options, masters);
  } catch (err) {
    disconnectClient(cluster);
    if (err instanceof UserFacingError) throw err;
    // The seed answered the probe in plaintext, and the nodes it maps are announced for plaintext.
    throw connectFailure(spec, lastError ?? err, options.aclRule, undefined, true);
  }
  if (options.keepReconnecting === true) conn.keepConnected();
  return conn;
}

/**
 * ioredis's Cluster client for `spec` (lazyConnect: not connected yet), with `common`'s options for
 * each node (its retryStrategy and reconnectOnError left out: the cluster's own retry rules apply,
 * bounded: see clusterRetryStrategy), retries of MOVED, TRYAGAIN, CLUSTERDOWN and failovers,
 * and with TLS the host names as the nodes announce them.
 */
function newCluster(spec: RedisSpec, options: OpenOptions, common: RedisOptions): Cluster {
  const a = spec.address;
  const { retryStrategy: _r, reconnectOnError: _e, ...redisOptions } = common;
  return new Cluster([{ host: a.host, port: a.port }], {
    redisOptions: { ...redisOptions, ...(common.tls !== undefined ? { tls: common.tls } : {}) },
    lazyConnect: true,
    // Off: masterIds checks every master instead (see connectAskingMasterIds for why).
    enableReadyCheck: false,
    enableOfflineQueue: true,
    maxRedirections: 32,
    retryDelayOnMoved: 0,
    retryDelayOnTryAgain: 100,
    retryDelayOnClusterDown: 200,
    retryDelayOnFailover: 200,
    slotsRefreshTimeout: 5000,
    // Keep host names as the nodes announce them, so TLS verifies the name the certificate is for
    // (https://github.com/redis/ioredis#special-note-aws-elasticache-clusters-with-tls).
    ...(common.tls !== undefined
      ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) }
      : {}),
    // Bounded even with keepReconnecting: a Cluster client whose every node went away holds the
    // commands sent meanwhile in its offline queue, where no command timeout runs (it starts once a
    // node takes the command), until the client is ready again or ends (handleCloseEvent, flushQueue
    // of https://github.com/redis/ioredis lib/cluster/index.ts). Reconnecting for ever held them for
    // ever: apply printed nothing and never ended against a cluster whose every node died
    // (test/cluster-gone.test.ts). After 3 attempts it ends, failing them with "None of startup nodes
    // is available" (a lost connection: apply's own retries decide), and keepConnected connects it
    // again; meanwhile a command fails at once ("Cluster is ended.").
    clusterRetryStrategy: (times: number) => (times > 3 ? null : Math.min(times * 200, 1000)),
  });
}

/**
 * Connects `cluster` (made with lazyConnect and enableReadyCheck off, newCluster) while every master
 * is asked its node ID and state (`ask`, i.e. masterIds) as soon as the first slot map is known, so
 * that a master that does not answer, refuses, or reports a failed cluster fails the connect at once,
 * named. ioredis's own ready check (CLUSTER INFO of one master picked at random) is off: when it
 * failed (NOPERM, cluster_state:fail, a timeout) ioredis only reconnected, and the promise of the
 * first connect() never settled (its 'close' listener is removed once 'refresh' came; a later
 * connect resolves a promise of its own), so the command hung.
 *
 * This relies on the order of ioredis's Cluster (v6, lib/cluster/index.ts,
 * https://github.com/redis/ioredis/blob/main/lib/cluster/index.ts; node_modules/ioredis/built/cluster/index.js
 * is the copy installed): refreshSlotsCache() emits 'refresh' once a node has given the slot map, and
 * connect() resolves only from its own 'refresh' listener (readyHandler). So 'refresh' always comes
 * before connect() resolves, and the listener added here, before connect() adds its own, runs first,
 * on the masters of that first slot map.
 *
 * @returns the masters of the first slot map (ioredis's node clients) and their IDs, in the same order
 * @throws what `ask` throws (without waiting for connect()), or connect()'s error
 */
async function connectAskingMasterIds(
  cluster: Cluster,
  ask: (masters: Redis[]) => Promise<string[]>,
): Promise<{ masters: Redis[]; ids: string[] }> {
  const atRefresh = new Promise<{ masters: Redis[]; ids: string[] }>((resolve, reject) => {
    cluster.once('refresh', () => {
      const masters = cluster.nodes('master');
      ask(masters).then((ids) => resolve({ masters, ids }), reject);
    });
  });
  atRefresh.catch(() => undefined); // connect() may fail first: then nothing awaits it
  // A failed answer ends the wait at once; answers wait for connect(), which resolves after 'refresh'.
  await Promise.race([cluster.connect(), atRefresh.then(() => new Promise<void>(() => undefined))]);
  return atRefresh;
}

/**
 * The node ID of each master (CLUSTER MYID) and its `cluster_state` (CLUSTER INFO: this is the ready
 * check, on every master rather than ioredis's one at random), asked of every master at once, each
 * reply awaited PROBE_REPLY_TIMEOUT_MS at most (OpenOptions.commandTimeoutMs when shorter): this is
 * the first contact with masters other than the seed, and a hung master (its port accepts
 * connections, it answers nothing; SIGSTOP, a stuck host) would otherwise hold the command for the
 * commands' 30 s and ioredis's retries, and be reported against the seed.
 * @returns the IDs, in the order of `masters`
 * @throws UserFacingError naming the master that did not answer, failed (NOPERM, LOADING, ...) or
 *   reports a cluster_state other than ok, and what to do
 */
async function masterIds(spec: RedisSpec, options: OpenOptions, masters: Redis[]): Promise<string[]> {
  const replyTimeoutMs = Math.min(options.commandTimeoutMs ?? PROBE_REPLY_TIMEOUT_MS, PROBE_REPLY_TIMEOUT_MS);
  return Promise.all(
    masters.map(async (m) => {
      const name = formatHostPort({ host: m.options.host ?? spec.address.host, port: m.options.port ?? spec.address.port });
      const what = `${spec.role === 'source' ? 'the source ' : ''}Redis Cluster master ${name} (of ${spec.address.url})`;
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('no reply')), replyTimeoutMs);
      });
      const reply = Promise.all([m.call('CLUSTER', 'MYID'), m.call('CLUSTER', 'INFO')]);
      reply.catch(() => undefined); // a late failure after the timeout: the client is disconnected then
      let id: string;
      let state: string | undefined;
      try {
        const [myid, info] = await Promise.race([reply, silent]);
        id = String(myid);
        state = parseInfo(String(info)).get('cluster_state');
      } catch (err) {
        if (err instanceof Error && err.message === 'no reply')
          throw new UserFacingError(
            `cannot connect to ${what}: connected, but no reply within ${replyTimeoutMs / 1000} s (hung or overloaded): check that node, and run the command again once it answers or the cluster has failed it over to its replica; nothing was written`,
          );
        throw connectFailure(spec, err, options.aclRule, what, true);
      } finally {
        clearTimeout(timer);
      }
      if (state !== 'ok')
        throw new UserFacingError(
          `${what} reports cluster_state:${state ?? 'unknown'}: fix the cluster first (or run the command again once it has recovered); nothing was written`,
        );
      return id;
    }),
  );
}

/**
 * What to check after a sentinel refused AUTH or asked for it: the password variable, and with a
 * sentinel ACL user the user variable too (names only, never the password). A sentinel user without
 * a password was sent `AUTH <user> ""` (askSentinels), which only a `nopass` user accepts: then the
 * user is named (a user name, not a secret: url.ts SENTINEL_USERNAME_ENV) with the unset variable
 * ("is empty" when it is set to "": RedisCredentials.sentinelPasswordEmpty), as the PHP handler's
 * log line does (php/src/SentinelMasterLocator.php, php/src/ConnectionFactory.php).
 */
function sentinelAuthHint(spec: RedisSpec): string {
  const pw = SENTINEL_PASSWORD_ENV[spec.role];
  const { sentinelUsername, sentinelPassword, sentinelPasswordEmpty } = spec.credentials;
  if (sentinelUsername !== undefined && sentinelPassword === undefined)
    return `the sentinel user ${sentinelUsername} in ${SENTINEL_USERNAME_ENV[spec.role]} was sent no password, which only a nopass user accepts: ${pw} ${sentinelPasswordEmpty === true ? 'is empty' : 'is not set'}`;
  if (sentinelUsername !== undefined) return `check the sentinel user in ${SENTINEL_USERNAME_ENV[spec.role]} and its password in ${pw}`;
  return `give the sentinel password in ${pw}, and the user in ${SENTINEL_USERNAME_ENV[spec.role]} if the sentinels' default user is off`;
}

/** One look of waitForSentinelMaster: the master the sentinels report (none: no sentinel answered), whether it serves as master, and what was seen when not. */
interface SentinelMasterLook {
  master?: HostPort;
  ok: boolean;
  why: string;
}

/**
 * The one wait for a Sentinel master, behind followSentinelMaster (apply's end check and read-back,
 * verify before its scan) and openSentinel (with OpenOptions.waitForSentinelMaster: the target and
 * the Redis sources of every command, migrate's commandRedisWait): calls
 * `look` (at once, then every 250 ms) until it says the master the sentinels report serves as master,
 * for at most `timeoutMs` (0: one look). During a failover the sentinels report the old master until
 * one of them promotes a replica and announces it (+switch-master), and a demoted master answers
 * `role:slave` until it is reconfigured
 * (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/, "Sentinel API",
 * SENTINEL GET-MASTER-ADDR-BY-NAME).
 * @throws UserFacingError, one line naming the master name, the URL, the wait and the last look
 *   (an address and a connection error or role, never a password), when none served in time.
 */
async function waitForSentinelMaster(address: RedisAddress, timeoutMs: number, look: () => Promise<SentinelMasterLook>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await look();
    if (seen.ok) return;
    if (Date.now() >= deadline) {
      const reported =
        seen.master !== undefined ? `the sentinels report ${formatHostPort(seen.master)} (${seen.why})` : 'no sentinel answers';
      throw new UserFacingError(
        `no master of "${address.masterName ?? ''}" at ${address.url} ${timeoutMs === 0 ? '(--master-wait-ms 0: looked once, no wait)' : `within ${timeoutMs / 1000} s`}: ${reported}; a failover still in progress, or no replica left to promote: run again once the sentinels report a master that answers`,
      );
    }
    await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
  }
}

/** Sentinel answers: the master address, or why there is none. */
async function askSentinels(
  spec: RedisSpec,
  tls: RedisOptions['tls'] | undefined,
): Promise<{ master?: HostPort; unknownName: boolean; errors: string[]; dataNodes: HostPort[] }> {
  const a = spec.address;
  const errors: string[] = [];
  const dataNodes: HostPort[] = [];
  let unknownName = false;
  for (const s of a.sentinels ?? []) {
    const client = new Redis({
      host: s.host,
      port: s.port,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      connectTimeout: 3000,
      commandTimeout: 5000,
      disableClientInfo: true,
      // A user without a password: AUTH <user> "" (ioredis's HELLO 3 AUTH <user> ""), as commonOptions.
      ...(spec.credentials.sentinelUsername !== undefined
        ? { username: spec.credentials.sentinelUsername, password: spec.credentials.sentinelPassword ?? '' }
        : {}),
      ...(spec.credentials.sentinelUsername === undefined && spec.credentials.sentinelPassword !== undefined
        ? { password: spec.credentials.sentinelPassword }
        : {}),
      ...(tls !== undefined ? { tls } : {}),
    });
    let lastError: Error | undefined;
    client.on('error', (err: Error) => {
      lastError = err;
    });
    try {
      await connectWatchingForPlaintext(client, tls !== undefined, s);
      await confirmPasswordNeeded(client, spec.credentials.sentinelPassword, spec.credentials.sentinelUsername, () =>
        unneededPassword(spec, `the sentinel ${formatHostPort(s)} of ${a.url}`, true),
      );
      const r = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', a.masterName!)) as [string, string] | null;
      if (r === null) {
        unknownName = true;
        continue;
      }
      return { master: { host: r[0], port: Number(r[1]) }, unknownName, errors, dataNodes };
    } catch (err) {
      if (err instanceof UserFacingError) throw err;
      if (NOT_A_SENTINEL.test((err as Error).message ?? '')) {
        dataNodes.push(s);
        errors.push(`${formatHostPort(s)} is a Redis data node, not a sentinel (it does not know SENTINEL)`);
        continue;
      }
      const e = (isPlaintextServer(err) ? err : (lastError ?? err)) as NodeJS.ErrnoException;
      const why =
        describeTlsError(e, spec.role, spec.tls) ??
        (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(e.message)
          ? `${redactedMessage(e.message.split('\n')[0]!, spec.credentials.sentinelPassword)} (${sentinelAuthHint(spec)})`
          : (e.code ?? redactedMessage(e.message, spec.credentials.sentinelPassword)));
      errors.push(`${formatHostPort(s)}: ${why}`);
    } finally {
      disconnectClient(client);
    }
  }
  return { unknownName, errors, dataNodes };
}

/**
 * A data node's reply to SENTINEL GET-MASTER-ADDR-BY-NAME: SENTINEL is a command of sentinel mode only
 * (src/server.c processCommand of https://github.com/redis/redis: "ERR unknown command 'SENTINEL'...").
 */
const NOT_A_SENTINEL = /^ERR unknown command .?sentinel/i;

/**
 * A sentinel's refusal of the login, as askSentinels records it (`host:port: <reply>`): WRONGPASS
 * (a wrong password or user), NOAUTH (a password needed), NOPERM (a user without the commands);
 * https://redis.io/docs/latest/commands/auth/.
 */
const AUTH_REFUSED = /: (WRONGPASS|NOAUTH|NOPERM)\b/;

async function openSentinel(
  spec: RedisSpec,
  options: OpenOptions,
  common: RedisOptions,
  tls: RedisOptions['tls'] | undefined,
): Promise<RedisConnection> {
  const a = spec.address;
  let found = await askSentinels(spec, tls);
  if (found.master === undefined) {
    if (found.unknownName)
      throw new UserFacingError(
        `no sentinel of ${a.url} knows a master named "${a.masterName}" (SENTINEL GET-MASTER-ADDR-BY-NAME); check the name in the URL`,
      );
    if (found.dataNodes.length > 0) {
      const d = found.dataNodes[0]!;
      throw new UserFacingError(
        `no sentinel answers at ${a.url}: ${found.errors.join('; ')}; give the sentinels' addresses (port 26379 by default), or ${a.tls ? 'rediss' : 'redis'}://${formatHostPort(d)}/${a.db} for that node itself`,
      );
    }
    // Every sentinel answered and refused the login: reached, not unreachable.
    const refused = found.errors.length > 0 && found.errors.every((e) => AUTH_REFUSED.test(e));
    throw new UserFacingError(
      `${refused ? 'every sentinel of' : 'cannot reach any sentinel of'} ${a.url}${refused ? ' refused the login' : ''}: ${found.errors.join('; ')}`,
    );
  }
  if (options.waitForSentinelMaster === true) {
    let first = true;
    await waitForSentinelMaster(a, options.failoverWaitMs ?? DEFAULT_FAILOVER_WAIT_MS, async () => {
      const now = first ? found : await askSentinels(spec, tls);
      first = false;
      if (now.master === undefined) return { ok: false, why: now.errors.join('; ') };
      found = now;
      const where = `the master ${formatHostPort(now.master)} of ${a.url}`;
      try {
        const role = (await probeNode(spec, options, common, { at: now.master, where })).info.get('role');
        return { master: now.master, ok: role === 'master', why: `role ${role ?? 'unknown'}` };
      } catch (err) {
        // Not answering (refused, reset, timed out): wait. A password refused, TLS, NOPERM: fail now.
        if (err instanceof NodeUnreachable) return { master: now.master, ok: false, why: err.why };
        throw err;
      }
    });
  }
  // The master first, as a single node's URL is (probeNode): a password it does not use, a rule
  // without INFO, a node still loading or one that never answers fail here in one line; ioredis's
  // ready check would warn on the console, or wait out the load or the commands' timeout.
  await probeNode(spec, options, common, { at: found.master, where: `the master ${formatHostPort(found.master)} of ${a.url}` });
  const client = new Redis({
    ...common,
    sentinels: (a.sentinels ?? []).map((s) => ({ host: s.host, port: s.port })),
    name: a.masterName!,
    role: 'master',
    db: a.db,
    lazyConnect: true,
    // A sentinel user without a password: ioredis's sentinel connections send HELLO 3 AUTH <user> ""
    // (https://github.com/redis/ioredis lib/connectors/SentinelConnector connectToSentinel:
    // `password: sentinelPassword || null`, lib/utils toArg writes null as ""), as askSentinels does;
    // test/sentinel-acl.test.ts checks it against a sentinel's ACL LOG.
    ...(spec.credentials.sentinelPassword !== undefined ? { sentinelPassword: spec.credentials.sentinelPassword } : {}),
    ...(spec.credentials.sentinelUsername !== undefined ? { sentinelUsername: spec.credentials.sentinelUsername } : {}),
    ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    // Subscribes to +switch-master on the sentinels and reconnects to the new master at once.
    failoverDetector: true,
    sentinelRetryStrategy:
      options.keepReconnecting === true
        ? (times: number) => Math.min(times * 100, 2000)
        : (times: number) => (times > 5 ? null : Math.min(times * 200, 1000)),
  });
  sentinelClientsDisconnectAtOnce(client);
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  let info: Map<string, string>;
  try {
    await client.connect();
    await client.ping();
    info = parseInfo(`${await client.info('server')}\n${await client.info('replication')}`);
  } catch (err) {
    disconnectClient(client);
    throw connectFailure(spec, lastError ?? err, options.aclRule, `the master ${formatHostPort(found.master)} of ${a.url}`);
  }
  await selectChecked(client, a, spec);
  const desc: ConnectionDescription = {
    ...baseDescription(spec),
    topology: 'sentinel',
    host: found.master.host,
    port: found.master.port,
    sentinels: a.sentinels ?? [],
    masterName: a.masterName!,
    ...nodeIdentity(info),
  };
  const conn = newConnection(spec, client, desc, options.aclRule);
  if (options.keepReconnecting === true) conn.keepConnected();
  return conn;
}

/** The part of an ioredis 6 SentinelConnector that sentinelClientsDisconnectAtOnce replaces (not in its typings). */
interface SentinelConnectorInternals {
  connectToSentinel(endpoint: unknown, options?: RedisOptions): Redis;
}

/**
 * The part of openSentinel that reaches into ioredis (6.0.0), kept here alone: gives the clients a
 * Sentinel client opens to its sentinels (one per round to ask for the master, and the failover
 * detector's subscribers) commonOptions' disconnectTimeout (DISCONNECT_TIMEOUT_MS). ioredis makes
 * them with its default of 2000 ms (SentinelConnector connectToSentinel passes only some of the
 * client's options: lib/connectors/SentinelConnector/index.ts of https://github.com/redis/ioredis)
 * and disconnects each once done with it, also after its connection was refused: its socket had
 * closed already, so the 2 s timer of lib/connectors/AbstractConnector.ts disconnect() ran out in
 * full, and with the sentinels gone apply stayed 2 s after its last line
 * (test/sentinel-source-midrun-failover.test.ts, "the master and the sentinel killed", fails without
 * this). Nothing here waits for a sentinel's graceful close.
 */
function sentinelClientsDisconnectAtOnce(client: Redis): void {
  const connector = (client as unknown as { connector?: Partial<SentinelConnectorInternals> }).connector;
  const original = connector?.connectToSentinel;
  if (connector === undefined || typeof original !== 'function') return;
  connector.connectToSentinel = (endpoint, options) =>
    original.call(connector, endpoint, { disconnectTimeout: DISCONNECT_TIMEOUT_MS, ...options });
}

/** After this long without a finished TLS handshake, connectWatchingForPlaintext() asks the port in plaintext. */
const PLAINTEXT_CHECK_AFTER_MS = 1000;

function isPlaintextServer(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === PLAINTEXT_SERVER;
}

/**
 * `client.connect()`, and for TLS a fast failure when the port speaks plaintext Redis: a TLS
 * ClientHello sent to a plaintext redis-server gets no answer (the server waits for the end of what it
 * reads as an inline command), so the handshake would only end at connectTimeout with a bare
 * ETIMEDOUT. When the handshake has not finished after PLAINTEXT_CHECK_AFTER_MS, one plain TCP
 * connection sends PING (speaksPlainRedis); a Redis reply fails the connect with PLAINTEXT_SERVER.
 * A TLS server never answers so, and a handshake that finishes in time costs nothing extra.
 */
async function connectWatchingForPlaintext(client: Redis, tls: boolean, at: HostPort): Promise<void> {
  const connecting = client.connect();
  if (!tls) return connecting;
  connecting.catch(() => undefined); // the race below reports it; a plaintext verdict disconnects the client
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const plaintext = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      void speaksPlainRedis(at.host, at.port).then((yes) => {
        if (yes && !settled)
          reject(Object.assign(new Error(`${formatHostPort(at)} answered in plaintext Redis, not TLS`), { code: PLAINTEXT_SERVER }));
      });
    }, PLAINTEXT_CHECK_AFTER_MS);
  });
  plaintext.catch(() => undefined);
  try {
    await Promise.race([connecting, plaintext]);
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}

function newConnection(
  spec: RedisSpec,
  client: Redis | Cluster,
  desc: ConnectionDescription,
  aclRule: string | undefined,
): RedisConnection {
  return new RedisConnection(spec, client, desc, aclRule);
}

/**
 * A one-line UserFacingError for a failed connect, with the fix when one is known. Exported for its
 * unit test (packages/redis/test/connect-failure.test.ts).
 * @param answeredBefore the server (or the cluster, through its seed) already answered this open in
 *   plaintext (the probe's INFO): a connection it closes now is a node gone or restarting, not a
 *   TLS-only server, so the line gives no "use rediss://" hint. A TLS-only server closes a plaintext
 *   connection before any reply (it reads the bytes as a TLS handshake and fails it).
 */
export function connectFailure(
  spec: RedisSpec,
  err: unknown,
  aclRule: string | undefined,
  what?: string,
  answeredBefore = false,
): UserFacingError {
  const e = err as NodeJS.ErrnoException;
  const where = what ?? `${spec.role === 'source' ? 'the source ' : ''}Redis at ${spec.address.url}`;
  const tlsWhy = describeTlsError(e, spec.role, spec.tls);
  if (tlsWhy !== undefined) return new UserFacingError(`cannot connect to ${where}: ${tlsWhy}`);
  const c = classifyRedisError(err, {
    role: spec.role,
    ...(spec.credentials.username !== undefined ? { username: spec.credentials.username } : {}),
    ...(spec.credentials.password !== undefined ? { password: spec.credentials.password } : {}),
    ...(aclRule !== undefined ? { aclRule } : {}),
  });
  if (c.code === 'NOAUTH' || c.code === 'WRONGPASS') {
    const { username, password, passwordInUrl } = spec.credentials;
    // None given: say where it goes; one given and refused: say which to check (never its value).
    // The user name is never echoed either: `redis://SECRET@host` puts a password where the user
    // name goes (RFC 3986 userinfo without ':'; ioredis reads it as the user name), with or without
    // a password in the environment besides.
    const fix =
      password === undefined
        ? `${username !== undefined ? 'a user name but no password given: if that name was the password, write the URL as redis://:PASSWORD@host, or rather ' : ''}give the password in ${PASSWORD_ENV[spec.role]}`
        : `check the user name${username !== undefined && !passwordInUrl ? ' in the URL' : ''} and the password given ${passwordInUrl ? 'in the URL' : `in ${PASSWORD_ENV[spec.role]}`}`;
    return new UserFacingError(`cannot connect to ${where}: ${c.message} (${fix})`);
  }
  if (c.kind === 'permanent') return new UserFacingError(`cannot connect to ${where}: ${classifiedLine(c)}`);
  const code = e?.code;
  let why = typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : c.message;
  if ((code === 'ECONNRESET' || c.message === CONNECTION_CLOSED) && !spec.address.tls && !answeredBefore)
    why += ' (a TLS-only server? use rediss://)';
  if (code === 'ETIMEDOUT' && spec.address.tls)
    why += ' (no TLS handshake: the server may not speak TLS on this port; use redis:// for a plaintext server, or check the port)';
  return new NodeUnreachable(`cannot connect to ${where}: ${why}`, why);
}

/**
 * connectFailure's error for a node that did not answer (a transient cause: refused, reset, timed
 * out), as opposed to one that answered and refused (password, ACL, TLS): openSentinel's wait for the
 * master (OpenOptions.waitForSentinelMaster) waits on the first kind only. `why`: the cause alone.
 */
class NodeUnreachable extends UserFacingError {
  constructor(
    message: string,
    readonly why: string,
  ) {
    super(message);
  }
}

/**
 * SELECTs the address's database again and checks it: ioredis's `db` option (kept so reconnects
 * re-select) ignores a refused SELECT and silently stays on db 0.
 * @throws UserFacingError naming the URL and database (the client is disconnected first)
 */
async function selectChecked(client: Redis, a: { url: string; db: number }, spec: RedisSpec): Promise<void> {
  if (a.db === 0) return;
  try {
    await client.select(a.db);
  } catch (err) {
    disconnectClient(client);
    throw new UserFacingError(
      `Redis at ${a.url} refused SELECT ${a.db}: ${redactedMessage((err as Error).message, spec.credentials.password)}`,
    );
  }
}

/**
 * The minimal Redis ACL rule each command needs (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/),
 * in one place: docs/redis.md prints them and test/acl-rules.test.ts runs every command as a user
 * restricted to exactly its rule. Commands are those session-migrate sends plus those ioredis sends
 * on its own: INFO (its ready check and our topology check), SELECT (a database other than 0),
 * CLUSTER SLOTS / CLUSTER INFO (ioredis's cluster client) and CLUSTER MYID (our drift check), EVAL
 * then EVALSHA (ioredis's defineCommand sends EVAL once per connection, then EVALSHA). Inside a Lua
 * script every command is checked against the user's ACL too, so the commands the scripts run are
 * listed. AUTH and HELLO are always allowed.
 *
 * On a cluster the commands that SCAN add CLUSTER NODES (RedisConnection.scan's resharding check), and
 * those that read or write keys add ASKING (ioredis follows an ASK redirection with it).
 *
 * In redis 7.0 INFO is in @dangerous, CLUSTER SLOTS/INFO/MYID/NODES in @slow, WAIT in @connection: a
 * `~PREFIX* +@all -@dangerous +info` access string (common on ElastiCache, which offers no CONFIG)
 * covers every rule here.
 */
import type { Topology } from './url.ts';

/** A session-migrate command that connects to Redis, and the role of the connection. */
export type AclCommand =
  | 'plan'
  | 'apply'
  | 'verify'
  | 'verify-prefix-only'
  | 'purge'
  | 'rollback-to-files'
  | 'rollback-remove-keys'
  | 'rotate'
  /** A `--source redis:` read by plan, apply and verify. */
  | 'source-read'
  /** A `--source redis:` whose keys purge deletes. */
  | 'source-purge';

/** Commands every connection sends: PING and INFO (connect and topology check). */
const BASE = ['ping', 'info'];
/**
 * What a Redis Cluster adds: ioredis's cluster client (CLUSTER SLOTS, CLUSTER INFO; its slot-map
 * refresher's connection names itself with CLIENT SETNAME `ioredis-cluster(refresher)`: lib/cluster/index.ts
 * of https://github.com/redis/ioredis, getInfoFromNode) and our node-ID check (CLUSTER MYID).
 */
const CLUSTER = ['cluster|slots', 'cluster|info', 'cluster|myid', 'client|setname'];
/**
 * What a Redis Cluster adds to a command that reads or writes keys: ioredis follows an ASK redirection
 * (a slot being migrated, its key already on the importing node) by sending ASKING before the command
 * (lib/cluster/index.ts of https://github.com/redis/ioredis: sendCommand's handleError `ask`, then `redis.asking()`; Redis cluster spec,
 * "ASK redirection"). Refused, the command goes without it, gets MOVED back to the migrating node and
 * ASK again, until ioredis gives up: the command fails for as long as the resharding lasts.
 */
const CLUSTER_KEYED = ['asking'];
/** Commands of ACL_COMMANDS that name no key (SCAN walks a node, WAIT counts replicas): never redirected. */
const KEYLESS: ReadonlySet<string> = new Set(['scan', 'wait']);
/**
 * What a Redis Cluster adds to a command that SCANs: CLUSTER NODES, whose migrating/importing slot
 * entries let RedisConnection.scan refuse to end as if complete during a resharding (without it the
 * scan compares CLUSTER SLOTS only, and warns).
 */
const CLUSTER_SCAN = ['cluster|nodes'];

/** Commands per session-migrate command, beyond BASE (data nodes). */
export const ACL_COMMANDS: Record<AclCommand, string[]> = {
  // Counts keys under the prefix; reads INFO memory.
  plan: ['scan'],
  // The guarded write (EVAL/EVALSHA of a script running EXISTS, SET, TYPE, GET, PTTL), WAIT for
  // replicas, the read-back (EXISTS); apply --dry-run: EXISTS, TYPE, GET, PTTL per session.
  apply: ['eval', 'evalsha', 'exists', 'set', 'type', 'get', 'pttl', 'wait'],
  // Every key of the database (key pattern ~*, see ALL_KEYS): SCAN, then PTTL + GETRANGE per key;
  // under the prefix PTTL per key and one MGET per batch (GET per key on a cluster, or when the rule
  // has no MGET, as documented before it was added: verify then goes on with GET); TYPE for keys of
  // another type, STRLEN + GET for values longer than GETRANGE read, GET for an empty one; with a
  // source or --plan: GET, PTTL and EXISTS per session. All read-only.
  verify: ['scan', 'pttl', 'getrange', 'type', 'strlen', 'get', 'mget', 'exists'],
  // verify --prefix-only: the same commands on the prefix's keys only.
  'verify-prefix-only': ['scan', 'pttl', 'getrange', 'type', 'strlen', 'get', 'mget', 'exists'],
  // GET, PTTL, EXISTS (tombstone) per session file.
  purge: ['get', 'pttl', 'exists'],
  'rollback-to-files': ['scan', 'get', 'pttl'],
  // Compare-and-delete in Lua (GET, DEL).
  'rollback-remove-keys': ['scan', 'get', 'eval', 'evalsha', 'del'],
  // Compare-and-set in Lua (GET, PTTL, SET).
  rotate: ['scan', 'get', 'pttl', 'eval', 'evalsha', 'set'],
  // SCAN + GET + PTTL; TYPE for verify's plaintext count.
  'source-read': ['scan', 'get', 'pttl', 'type'],
  // source-read plus a compare-and-delete in Lua (GET, DEL).
  'source-purge': ['scan', 'get', 'pttl', 'type', 'eval', 'evalsha', 'del'],
};

/**
 * Commands that read every key of the database, not only the prefix's: their rule has `~*`. verify
 * does, to find plaintext sessions anywhere; every command it sends is read-only, so `~*` gives the
 * user no write access (on redis 7, `%R~*` says so explicitly and works as well).
 */
const ALL_KEYS: ReadonlySet<AclCommand> = new Set(['verify']);

/**
 * The minimal ACL rule (selectors after `ACL SETUSER name on >password`) for a command on a prefix:
 * `resetkeys ~PREFIX* -@all +cmd...` (`~*` for the commands of ALL_KEYS). Glob characters of the
 * prefix are escaped as in SCAN MATCH.
 * @param db add SELECT when the database is not 0
 */
export function aclRuleFor(command: AclCommand, prefix: string, topology: Topology = 'standalone', db = 0): string {
  const cmds = [
    ...BASE,
    ...(db !== 0 ? ['select'] : []),
    ...ACL_COMMANDS[command],
    ...(topology === 'cluster' ? CLUSTER : []),
    ...(topology === 'cluster' && ACL_COMMANDS[command].some((c) => !KEYLESS.has(c)) ? CLUSTER_KEYED : []),
    ...(topology === 'cluster' && ACL_COMMANDS[command].includes('scan') ? CLUSTER_SCAN : []),
  ];
  const pattern = ALL_KEYS.has(command) ? '*' : prefix.replace(/[*?[\]\\]/g, (c) => '\\' + c) + '*';
  return `resetkeys ~${pattern} -@all ${[...new Set(cmds)].map((c) => `+${c}`).join(' ')}`;
}

/**
 * Commands a sentinel must allow to the sentinel user (when sentinels have ACLs): ioredis resolves
 * the master (SENTINEL GET-MASTER-ADDR-BY-NAME), lists sentinels (SENTINEL SENTINELS), and its
 * failover detector subscribes to `+switch-master`.
 */
export const SENTINEL_ACL =
  '+ping +sentinel|get-master-addr-by-name +sentinel|sentinels +sentinel|replicas +sentinel|slaves +subscribe &+switch-master';

/**
 * Commands the generated PHP handler sends (php/src/SessionStore.php): its scripts through EVALSHA,
 * and EVAL when the server answers NOSCRIPT; inside them GET, SET, DEL, EXISTS, EXPIRE; and a plain
 * GET of an old phpredis key in read-through mode (SessionStore::get()). On a cluster
 * phpredis's RedisCluster maps the keyspace with CLUSTER SLOTS (test/php-handler-topologies.test.ts).
 */
export const HANDLER_ACL_COMMANDS = ['eval', 'evalsha', 'get', 'set', 'del', 'exists', 'expire'];

/**
 * What the handler adds on a Redis Cluster: phpredis's RedisCluster maps the slots with CLUSTER SLOTS,
 * checks a pooled persistent connection with an ECHO round trip (redis.pconnect.echo_check_liveness,
 * on by default: library.c redis_sock_check_liveness in https://github.com/phpredis/phpredis), which
 * the handler turns off for a single node only (php/src/ConnectionFactory.php), and follows an ASK
 * redirection of a slot being migrated with ASKING (cluster_library.c cluster_send_asking; Redis
 * cluster spec, "ASK redirection"): without it every session of that slot fails during a resharding.
 */
const HANDLER_CLUSTER = ['cluster|slots', 'echo', 'asking'];

/**
 * The minimal ACL rule of the generated PHP handler's user on a prefix, in aclRuleFor's form:
 * `resetkeys ~PREFIX* -@all +eval +evalsha +get +set +del +exists +expire` (docs/redis.md), with
 * `+select` for a database other than 0 and HANDLER_CLUSTER on a cluster. A handler whose ini
 * fragment's `redis.pconnect.pool_pattern` was removed also needs `+echo +select` (docs/handler.md),
 * which this rule does not add. A read-through handler that also reads old phpredis keys in the same
 * Redis gets their prefixes too (`~PHPREDIS_SESSION:*`; it only reads them, with a plain GET).
 */
export function handlerAclRule(prefix: string, topology: Topology = 'standalone', db = 0, legacyPrefixes: readonly string[] = []): string {
  const cmds = [...HANDLER_ACL_COMMANDS, ...(db !== 0 ? ['select'] : []), ...(topology === 'cluster' ? HANDLER_CLUSTER : [])];
  const glob = (p: string): string => p.replace(/[*?[\]\\]/g, (c) => '\\' + c) + '*';
  // The handler only GETs these keys, with a plain GET (no script), so on redis 7 `%R~` (read-only)
  // works as well (php/tests/SessionStoreTest.php); plain `~` keeps the rule valid on redis 6, which
  // has no `%R~` (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/).
  const legacy = legacyPrefixes.map((p) => ` ~${glob(p)}`).join('');
  return `resetkeys ~${glob(prefix)}${legacy} -@all ${cmds.map((c) => `+${c}`).join(' ')}`;
}

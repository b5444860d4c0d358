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
 * In redis 7.0 INFO is in @dangerous, CLUSTER SLOTS/INFO/MYID in @slow, WAIT in @connection: a
 * `~PREFIX* +@all -@dangerous +info` access string (common on ElastiCache, which offers no CONFIG)
 * covers every rule here.
 */
import type { Topology } from './url.ts';

/** A session-migrate command that connects to Redis, and the role of the connection. */
export type AclCommand =
  | 'plan' | 'apply' | 'verify' | 'purge' | 'rollback-to-files' | 'rollback-remove-keys' | 'rotate'
  /** A `--source redis:` read by plan, apply and verify. */
  | 'source-read'
  /** A `--source redis:` whose keys purge deletes. */
  | 'source-purge';

/** Commands every connection sends: PING and INFO (connect and topology check). */
const BASE = ['ping', 'info'];
/** What a Redis Cluster adds (ioredis's cluster client and our node-ID check). */
const CLUSTER = ['cluster|slots', 'cluster|info', 'cluster|myid'];

/** Commands per session-migrate command, beyond BASE (data nodes). */
export const ACL_COMMANDS: Record<AclCommand, string[]> = {
  // Counts keys under the prefix; reads INFO memory.
  plan: ['scan'],
  // The guarded write (EVAL/EVALSHA of a script running EXISTS, SET, TYPE, GET, PTTL), WAIT for
  // replicas, the read-back (EXISTS).
  apply: ['eval', 'evalsha', 'exists', 'set', 'type', 'get', 'pttl', 'wait'],
  // SCAN + GET + PTTL of every key; with a source or --plan: GET, PTTL and EXISTS per session.
  verify: ['scan', 'get', 'pttl', 'exists'],
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
 * The minimal ACL rule (selectors after `ACL SETUSER name on >password`) for a command on a prefix:
 * `resetkeys ~PREFIX* -@all +cmd...`. Glob characters of the prefix are escaped as in SCAN MATCH.
 * @param db add SELECT when the database is not 0
 */
export function aclRuleFor(command: AclCommand, prefix: string, topology: Topology = 'standalone', db = 0): string {
  const cmds = [...BASE, ...(db !== 0 ? ['select'] : []), ...ACL_COMMANDS[command], ...(topology === 'cluster' ? CLUSTER : [])];
  const pattern = prefix.replace(/[*?[\]\\]/g, (c) => '\\' + c) + '*';
  return `resetkeys ~${pattern} -@all ${[...new Set(cmds)].map((c) => `+${c}`).join(' ')}`;
}

/**
 * Commands a sentinel must allow to the sentinel user (when sentinels have ACLs): ioredis resolves
 * the master (SENTINEL GET-MASTER-ADDR-BY-NAME), lists sentinels (SENTINEL SENTINELS), and its
 * failover detector subscribes to `+switch-master`.
 */
export const SENTINEL_ACL = '+ping +sentinel|get-master-addr-by-name +sentinel|sentinels +sentinel|replicas +sentinel|slaves +subscribe &+switch-master';

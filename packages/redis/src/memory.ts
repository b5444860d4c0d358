/**
 * Memory of the target, from `INFO memory` of every master (never CONFIG: ElastiCache offers none,
 * https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/RestrictedCommands.html): how much is used,
 * the limit, and the eviction policy. Every session has a TTL, so any policy but `noeviction` may
 * evict sessions when memory is full (https://redis.io/docs/latest/develop/reference/eviction/).
 */
import type { RedisConnection } from './connection.ts';

export interface NodeMemory {
  /** `host:port` of the master. */
  node: string;
  /** used_memory, bytes. */
  usedBytes: number;
  /** maxmemory, bytes (0: no limit). */
  maxmemory: number;
  /** maxmemory_policy (`noeviction`, `volatile-lru`, ...). */
  policy: string;
}

/** Reads INFO memory of every master. */
export async function readMemory(conn: RedisConnection): Promise<NodeMemory[]> {
  return (await conn.infoPerMaster('memory')).map(({ node, info }) => ({
    node,
    usedBytes: Number(info.get('used_memory') ?? '0'),
    maxmemory: Number(info.get('maxmemory') ?? '0'),
    policy: info.get('maxmemory_policy') ?? 'unknown',
  }));
}

/** Share of maxmemory above which a warning is given. */
export const MEMORY_HEADROOM = 0.9;

/**
 * Warnings about memory, each with the fix: an eviction policy that can evict sessions, and masters
 * that would pass 90 % of maxmemory with `addBytes` more (spread evenly over the masters).
 */
export function memoryWarnings(nodes: NodeMemory[], addBytes = 0): string[] {
  const out: string[] = [];
  const perNode = nodes.length > 0 ? addBytes / nodes.length : 0;
  for (const n of nodes) {
    if (n.maxmemory > 0 && n.policy !== 'noeviction') {
      out.push(
        `${n.node}: maxmemory-policy ${n.policy} can evict sessions when memory is full (every session has a TTL): set maxmemory-policy noeviction (ElastiCache: in the parameter group)`,
      );
    }
    if (n.maxmemory > 0 && n.usedBytes + perNode > n.maxmemory * MEMORY_HEADROOM) {
      out.push(
        `${n.node}: would use ${mib(n.usedBytes + perNode)} of maxmemory ${mib(n.maxmemory)} (more than ${Math.round(MEMORY_HEADROOM * 100)}%): raise maxmemory or use a larger node${nodes.length > 1 ? ' or more shards' : ''}`,
      );
    }
  }
  return out;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

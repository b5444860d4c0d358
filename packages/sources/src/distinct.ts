/**
 * Several sources in one plan must be distinct: no directory twice (also not through a symbolic link
 * or a bind mount, which give another path to the same directory), no directory inside another one's
 * walk, no Redis prefix twice or inside another on the same data. Otherwise one session would be
 * counted, copied and purged twice, and its two "copies" would look like a conflict.
 */
import { realpathSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { UserFacingError, printable } from '@session-migrate/common';
import type { FilesSourceDescription } from './files.ts';
import { sameRedisData } from './redis-source.ts';
import type { RedisSourceDescription, SourceDescription } from './source.ts';

/** How a source is named in messages and reports (no password: a Redis source's spec is redacted). */
export function sourceLabel(d: SourceDescription): string {
  return d.kind === 'files' ? `files:${printable(d.savePath)}` : `redis:${printable(d.spec)}`;
}

function realDir(d: FilesSourceDescription): string {
  try {
    return realpathSync(d.dir);
  } catch {
    return d.dir;
  }
}

/**
 * Whether files source `inner` lies inside the walk of `outer`: under `outer`'s directory through
 * one-character directories only, at a level from which its own sessions sit where `outer` reads
 * them (outer's depth). A deeper or differently named subdirectory is not walked by `outer`.
 */
function insideWalk(outer: FilesSourceDescription, outerReal: string, inner: FilesSourceDescription, innerReal: string): boolean {
  const rel = relative(outerReal, innerReal);
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return false;
  const parts = rel.split(sep);
  return parts.every((p) => p.length === 1) && parts.length + inner.depth === outer.depth;
}

/**
 * Refuses sources that are not distinct (see the module comment).
 * @throws UserFacingError naming both sources.
 */
export function checkDistinctSources(sources: readonly SourceDescription[]): void {
  const files = sources.filter((d): d is FilesSourceDescription => d.kind === 'files').map((d) => ({ d, real: realDir(d) }));
  for (let i = 0; i < files.length; i++) {
    for (let j = i + 1; j < files.length; j++) {
      const a = files[i]!;
      const b = files[j]!;
      if (a.d.dev === b.d.dev && a.d.ino === b.d.ino) {
        throw new UserFacingError(
          `sources ${sourceLabel(a.d)} and ${sourceLabel(b.d)} are the same directory (${printable(a.real)}, through a symbolic link or a bind mount): give it once`,
        );
      }
      const [outer, inner] = insideWalk(a.d, a.real, b.d, b.real)
        ? [a, b]
        : insideWalk(b.d, b.real, a.d, a.real)
          ? [b, a]
          : [undefined, undefined];
      if (outer !== undefined && inner !== undefined) {
        throw new UserFacingError(
          `source ${sourceLabel(inner.d)} lies inside the depth-${outer.d.depth} layout of ${sourceLabel(outer.d)}: its sessions would be read twice; give only ${sourceLabel(outer.d)}`,
        );
      }
    }
  }
  const redis = sources.filter((d): d is RedisSourceDescription => d.kind === 'redis');
  for (let i = 0; i < redis.length; i++) {
    for (let j = i + 1; j < redis.length; j++) {
      const a = redis[i]!;
      const b = redis[j]!;
      if (!sameRedisData(a, b)) continue;
      if (a.prefix === b.prefix)
        throw new UserFacingError(
          `sources ${sourceLabel(a)} and ${sourceLabel(b)} are the same keys (prefix "${printable(a.prefix)}" on ${a.url}): give it once`,
        );
      if (a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix)) {
        throw new UserFacingError(
          `sources ${sourceLabel(a)} and ${sourceLabel(b)} overlap: prefix "${printable(a.prefix)}" and "${printable(b.prefix)}" on the same Redis database ${a.url}; give the shorter prefix only`,
        );
      }
    }
  }
}

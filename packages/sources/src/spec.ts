import { UserFacingError, printable } from '@session-migrate/common';
import { redactUrl } from '@session-migrate/redis';
import { openFilesSource, type FilesSource, type FilesSourceOptions } from './files.ts';
import { openRedisSource, type OpenRedisSourceOptions } from './redis-source.ts';
import type { Source } from './source.ts';

/**
 * Opens a `files:` source from its command-line spec: `files:DIR` where DIR may be a save_path in
 * PHP's `N;MODE;/path` form (quote it in the shell).
 * @throws UserFacingError for another scheme or an unusable directory.
 */
export function openSource(spec: string, options: FilesSourceOptions = {}): FilesSource {
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? '' : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  if (scheme === 'files' && rest !== '') return openFilesSource(rest, options);
  throw new UserFacingError(`unsupported source "${namedSpec(spec)}": expected files:DIR (for example files:/var/lib/php/sessions)`);
}

/**
 * Opens any source: `files:DIR` (see openSource) or `redis:URL`, where URL is
 * `redis://host:port/db?prefix=P`, `redis+sentinel://host:port/MASTER/db?prefix=P` or phpredis's save_path `tcp://host:port?auth=..&prefix=..&database=..`
 * (see parseRedisSourceSpec; the password may come from SESSION_MIGRATE_SOURCE_REDIS_PASSWORD).
 * @throws UserFacingError for an unknown scheme, a bad spec, a missing directory or an unreachable
 *   server; the message never contains a password.
 */
export async function openAnySource(spec: string, options: FilesSourceOptions & OpenRedisSourceOptions = {}): Promise<Source> {
  // `redis://...` alone is taken as `redis:redis://...`.
  if (/^rediss?(\+sentinel)?:\/\//.test(spec)) return openRedisSource(spec, options);
  if (spec.startsWith('redis:')) return openRedisSource(spec.slice('redis:'.length), options);
  if (spec.startsWith('files:')) return openSource(spec, options);
  // phpredis's save_path pasted as it is (tcp://, tls://): its form is read, with redis: before it.
  const savePath = /^(tcp|tls):\/\//i.exec(spec)?.[1]?.toLowerCase();
  throw new UserFacingError(
    `unsupported source "${namedSpec(spec)}": expected files:DIR or redis:redis://host:port/db?prefix=P${savePath !== undefined ? `; a phpredis save_path is read with redis: before it (redis:${savePath}://host:port?...)` : ''}`,
  );
}

/**
 * A source spec this module does not understand, as its error names it: without its query, and with
 * the password of a Redis address in it replaced by `***` (redactUrl, the one redaction rule of
 * Redis addresses): phpredis's save_path pasted without its `redis:` prefix, `tcp://:PW@host:6379`,
 * is such a spec.
 */
function namedSpec(spec: string): string {
  return printable(redactUrl(spec.replace(/[?].*$/s, '')));
}

/**
 * flock(2) for Node, which has none: util-linux flock(1) is given the open file description behind
 * a file descriptor as its stdin and takes the lock on it; the lock belongs to the description
 * (flock(2): "locks created by flock() are associated with an open file description"), so it stays
 * after the child exits, until the last descriptor of that description is closed.
 *
 * PHP's files session handler holds flock(LOCK_EX) on a session file for as long as a request has
 * the session open (php-src ext/session/mod_files.c, ps_files_open), so a lock on the same file
 * tells whether PHP is writing it, and keeps PHP out while it is held.
 */
import { spawnSync } from 'node:child_process';

/**
 * Result of lockFd: `ok` the lock is held (until `fd` is closed); `held` another open file
 * description holds a conflicting lock (PHP mid-request); `unavailable` flock(1) could not be run
 * (not installed, no such system call on the file system) and nothing is known.
 */
export type FlockResult = 'ok' | 'held' | 'unavailable';

/**
 * Takes a shared or exclusive flock, without waiting, on the open file description behind `fd`
 * (opened for reading is enough: flock(2) does not look at the access mode). Released by closing
 * `fd`. Costs one short child process (~1-2 ms).
 * @param fd an open file descriptor of a regular file
 */
export function lockFd(fd: number, kind: 'shared' | 'exclusive'): FlockResult {
  const r = spawnSync('flock', [`--${kind}`, '--nonblock', '0'], { stdio: [fd, 'ignore', 'ignore'], timeout: 10_000 });
  if (r.error === undefined && r.status === 0) return 'ok';
  return r.error === undefined && r.status === 1 ? 'held' : 'unavailable';
}

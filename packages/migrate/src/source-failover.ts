/**
 * A Redis source behind Sentinel whose SCAN a failover cut short (its master killed, a replica
 * promoted), as plan and apply ride it out: a SCAN cursor is a position in one server's hash table,
 * valid on no other (RedisConnection.scan), so the pass over the sources starts again from the
 * beginning on the new master, never merged with the pass cut short. The wait for the new master, the
 * note and the rule of when it applies are RedisConnection.scanAgainAfterFailover's (verify's too);
 * the bound is SCAN_RESTARTS_AFTER_FAILOVER.
 */
import { SCAN_RESTARTS_AFTER_FAILOVER } from '@session-migrate/redis';
import { RedisSource, type Source } from '@session-migrate/sources';

/**
 * Whether a pass over `sources` that failed with `err` may start again from the beginning: `err` is a
 * SCAN of one of their Redis sources behind Sentinel cut short by a failover (the source's one line,
 * whose `cause` is the connection's SCAN_INTERRUPTED error), and the master the sentinels report
 * serves within `masterWaitMs`. Says so on that source's onWarning, once (the note).
 * @param what the command as typed (`plan`, `apply`), for the note
 * @param masterWaitMs --master-wait-ms (undefined: DEFAULT_FAILOVER_WAIT_MS)
 * @param then what the new start means for the counts, appended to the note
 * @returns false for any other error, a source of another kind, or no master in time (the caller throws
 *   or reports `err`, its one line, as before)
 */
export async function sourceScanAgain(
  sources: readonly Source[],
  err: unknown,
  what: 'plan' | 'apply',
  masterWaitMs: number | undefined,
  then?: string,
): Promise<boolean> {
  for (const s of sources)
    if (s instanceof RedisSource && (await s.connection.scanAgainAfterFailover(err, what, masterWaitMs, then))) return true;
  return false;
}

/**
 * Runs `pass` (a read of `sources` that builds its result from nothing each time), and again from the
 * beginning after each failover that cut a Redis source's SCAN short (sourceScanAgain), at most
 * SCAN_RESTARTS_AFTER_FAILOVER times.
 * @returns what the last, whole pass returned
 * @throws what `pass` threw when it may not start again (the source's one line)
 */
export async function readAgainAfterFailover<T>(
  sources: readonly Source[],
  what: 'plan' | 'apply',
  masterWaitMs: number | undefined,
  pass: () => Promise<T>,
): Promise<T> {
  for (let restarts = 0; ; restarts++) {
    try {
      return await pass();
    } catch (err) {
      if (restarts >= SCAN_RESTARTS_AFTER_FAILOVER || !(await sourceScanAgain(sources, err, what, masterWaitMs))) throw err;
    }
  }
}

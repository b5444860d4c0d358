/**
 * remainingTtlSeconds, from the one session-lifecycle policy (packages/common/src/lifecycle.ts),
 * re-exported here for the migrate API.
 */
export { remainingTtlSeconds } from '@session-migrate/common';

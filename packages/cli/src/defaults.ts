/**
 * The defaults the command modules' builders show in `--help`, from @session-migrate/common (its defaults.ts),
 * so that `--help` loads none of the packages that use them.
 */
export { DEFAULT_PLAN_FILE, DEFAULT_ARTIFACTS_DIR, DEFAULT_MAX_SESSION_BYTES, DEFAULT_PREFIX } from '@session-migrate/common';

/**
 * The defaults the command modules' builders show in `--help`, from their homes in the packages.
 */
export { DEFAULT_PLAN_FILE, DEFAULT_ARTIFACTS_DIR } from '@session-migrate/migrate';
export { DEFAULT_MAX_SESSION_BYTES } from '@session-migrate/sources';
export { DEFAULT_PREFIX } from '@session-migrate/common';

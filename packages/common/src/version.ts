/**
 * The version of session-migrate: what `session-migrate --version` prints and the npm package's
 * version (scripts/package/build.ts writes it into the published package.json). Change it only here.
 */
export const VERSION = '0.1.0';

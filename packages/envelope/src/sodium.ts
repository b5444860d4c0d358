/**
 * Loads libsodium-wrappers once and hands out the ready instance.
 * libsodium.js needs `await sodium.ready` before any call (https://github.com/jedisct1/libsodium.js).
 * It is imported on the first call, not when this module loads: commands that need no key (`--version`,
 * `audit`, the codemods) never pay for loading libsodium.
 */
import type sodiumModule from 'libsodium-wrappers';

export type Sodium = typeof sodiumModule;

let ready: Promise<Sodium> | undefined;

/** Resolves to the initialised libsodium instance. */
export function loadSodium(): Promise<Sodium> {
  ready ??= import('libsodium-wrappers').then(async ({ default: sodium }) => {
    await sodium.ready;
    return sodium;
  });
  return ready;
}

/**
 * Loads libsodium-wrappers once and hands out the ready instance.
 * libsodium.js needs `await sodium.ready` before any call (https://github.com/jedisct1/libsodium.js).
 */
import sodiumModule from 'libsodium-wrappers';

export type Sodium = typeof sodiumModule;

let ready: Promise<Sodium> | undefined;

/** Resolves to the initialised libsodium instance. */
export function loadSodium(): Promise<Sodium> {
  ready ??= sodiumModule.ready.then(() => sodiumModule);
  return ready;
}

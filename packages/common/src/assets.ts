/**
 * Where session-migrate finds its own files at run time (templates, PHP sources, scripts, worker
 * thread entries), in both layouts it runs from:
 *
 * - a clone of the repository, where the TypeScript sources run directly (tsx, vitest): paths are
 *   relative to the repository root;
 * - the built npm package (`npm run pack`, scripts/package/build.ts): the bundled JavaScript sits in
 *   `<package>/dist/`, and every asset below sits at the same path relative to the package root as in
 *   the repository (`<package>/templates/...`).
 *
 * This module is the only place that knows both layouts. The build tells it which one it is in by
 * defining `__SESSION_MIGRATE_PACKAGE_ROOT__` (esbuild `define`); the sources never define it.
 */
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Files and directories the npm package ships, by name: each path is relative to the repository
 * root, and the package holds it at the same relative path. Shipping another directory is one line
 * here; code finds it with assetPath(name), and the build copies every entry (a missing one fails
 * the build).
 */
export const PACKAGE_ASSETS = {
  /** Bootstrap and ini templates (packages/generate), IaC templates (templates/iac), examples. */
  templates: 'templates',
  /** The PHP handler's sources (php/autoload.php, php/src/), copied into the artifacts by packages/generate. */
  php: 'php',
  /** The POSIX sh collect script printed by `audit collect-script` (packages/audit/src/collected.ts). */
  auditCollectScript: 'packages/audit/src/collect-script.sh',
  /** Read by people: the README's links (envelope format, keys, runbook, audit rules) work in the package. */
  docs: 'docs',
  /** The README links them: the package map and the contributor guide. */
  architecture: 'ARCHITECTURE.md',
  contributing: 'CONTRIBUTING.md',
} as const satisfies Record<string, string>;

/** Name of a shipped file or directory (a key of PACKAGE_ASSETS). */
export type AssetName = keyof typeof PACKAGE_ASSETS;

/**
 * Worker thread entry points, by name. `source` is the TypeScript module the build bundles into
 * `<package>/dist/<name>.js`; `clone` is the JavaScript file a clone starts instead (it loads the
 * TypeScript sources through tsx). Both paths are relative to the repository root.
 */
export const WORKER_ENTRIES = {
  'prepare-worker': { source: 'packages/migrate/src/prepare-worker.ts', clone: 'packages/migrate/src/prepare-worker-entry.mjs' },
} as const satisfies Record<string, { source: string; clone: string }>;

/** Name of a worker thread entry (a key of WORKER_ENTRIES). */
export type WorkerName = keyof typeof WORKER_ENTRIES;

/**
 * Set by the package build to the package root relative to the bundled files in `dist/` (`'../'`).
 * Undefined when the TypeScript sources run.
 */
declare const __SESSION_MIGRATE_PACKAGE_ROOT__: string | undefined;

/** True in the built package, false when the repository's TypeScript sources run. */
export const IS_BUILT_PACKAGE: boolean = typeof __SESSION_MIGRATE_PACKAGE_ROOT__ === 'string';

/**
 * Absolute path of the package root (built package) or the repository root (clone), with a trailing
 * separator. This file is packages/common/src/assets.ts in a clone, a file in `dist/` when built.
 */
export const ROOT_DIR: string = fileURLToPath(
  new URL(typeof __SESSION_MIGRATE_PACKAGE_ROOT__ === 'string' ? __SESSION_MIGRATE_PACKAGE_ROOT__ : '../../../', import.meta.url),
);

/**
 * Absolute path of a shipped asset, or of a file inside a shipped directory.
 * @example assetPath('templates', 'iac', 'terraform') // <root>/templates/iac/terraform
 */
export function assetPath(name: AssetName, ...inside: string[]): string {
  return join(ROOT_DIR, PACKAGE_ASSETS[name], ...inside);
}

/**
 * URL of a worker thread's entry module, for `new Worker(url)`: the bundled `dist/<name>.js` in the
 * built package (starts in milliseconds), the tsx-loading entry in a clone.
 */
export function workerEntryUrl(name: WorkerName): URL {
  return IS_BUILT_PACKAGE ? pathToFileURL(join(ROOT_DIR, 'dist', `${name}.js`)) : pathToFileURL(join(ROOT_DIR, WORKER_ENTRIES[name].clone));
}

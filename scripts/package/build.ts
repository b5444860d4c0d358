/**
 * Builds the publishable `session-migrate` npm package and packs it:
 *
 *   npm run pack                      # build/package/ (the package tree), then dist/session-migrate-<version>.tgz
 *   npm run build                     # only build/package/ (e.g. to run build/package/bin/session-migrate.js)
 * (the command line is scripts/package/pack.ts; bench/apply.ts and the tests call buildPackage).
 *
 * What goes in (README "Install from npm"):
 * - `dist/`: JavaScript bundled by esbuild from the TypeScript sources, with every runtime dependency
 *   inside (yargs, ioredis, libsodium, php-parser, ts-morph and the TypeScript compiler, diff), so
 *   installing the tarball needs no registry. Entries: `index.js` (the library API,
 *   packages/cli/src/index.ts), `cli.js` (packages/cli/src/main.ts) and one file per worker thread
 *   (common/src/assets.ts WORKER_ENTRIES). Code splitting keeps the heavy modules in chunks that load
 *   only when a command needs them (checked below: HEAVY_PACKAGES).
 * - `dist/types/`: type declarations of the API (scripts/package/types.ts).
 * - every entry of PACKAGE_ASSETS (templates, scripts, docs) at its repository path.
 * - `bin/session-migrate.js`, a generated package.json (no dependencies), README.md and
 *   THIRD-PARTY-LICENSES.txt (the licenses of the bundled packages).
 *
 * A failure throws the one line pack.ts prints (isBuildFailure) and leaves no tarball; a source this
 * script itself loads (common's assets.ts and version.ts) that does not compile is reported by pack.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { builtinModules } from 'node:module';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';
// The two modules it needs, not @session-migrate/common's index: a source error elsewhere in common
// must reach esbuild (one line, no tarball left), not stop this script while it loads.
import { PACKAGE_ASSETS, WORKER_ENTRIES } from '../../packages/common/src/assets.ts';
import { VERSION } from '../../packages/common/src/version.ts';

const REPO = join(import.meta.dirname, '../..');
/** The package tree that `npm pack` packs. */
export const PACKAGE_DIR = join(REPO, 'build/package');
/** Where the tarball goes: dist/session-migrate-<version>.tgz. */
export const DIST_DIR = join(REPO, 'dist');
export const PACKAGE_NAME = 'session-migrate';
export const TARBALL = join(DIST_DIR, `${PACKAGE_NAME}-${VERSION}.tgz`);
/** Beside the tarball: the fingerprint of the inputs it was built from (for --if-stale). */
const FINGERPRINT_FILE = `${TARBALL}.inputs-sha256`;

/**
 * Packages too heavy to load on every start (the TypeScript compiler alone takes about a second):
 * no entry may import them statically, only through `await import()` in the command that needs them.
 */
const HEAVY_PACKAGES = ['typescript', 'ts-morph', '@ts-morph/common', 'php-parser', 'libsodium', 'libsodium-wrappers'];

/**
 * Modules that bundled code require()s inside a try/catch and does without: esbuild leaves those
 * calls as they are. debug (ioredis's logger) colours its output with supports-color when present;
 * the TypeScript compiler (ts-morph) installs source-map-support for its own stack traces when present.
 */
const OPTIONAL_REQUIRES = ['supports-color', 'source-map-support'];

/** Packages bundled inside another package's files (not visible as inputs of their own). */
const EMBEDDED_PACKAGES: Record<string, string[]> = { '@ts-morph/common': ['typescript'] };

/** What the package is built from: a change to any of these makes --if-stale rebuild. */
const INPUT_ROOTS = [
  'packages',
  'codemods',
  'scripts/package',
  'package.json',
  'package-lock.json',
  'README.md',
  'tsconfig.json',
  ...Object.values(PACKAGE_ASSETS),
];

class BuildError extends Error {}

/** Whether `err` is a failure of the build itself (BuildError): its message is the one line to print. */
export function isBuildFailure(err: unknown): err is Error {
  return err instanceof BuildError;
}

function fail(message: string): never {
  throw new BuildError(message);
}

/** sha256 over every input file (path and bytes), skipping tests and node_modules. */
export function inputsFingerprint(): string {
  const hash = createHash('sha256');
  const files: string[] = [];
  const walk = (path: string): void => {
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) {
        if (name === 'node_modules' || name === 'test' || name === '.git') continue;
        walk(join(path, name));
      }
    } else if (st.isFile()) files.push(path);
  };
  for (const root of INPUT_ROOTS) if (existsSync(join(REPO, root))) walk(join(REPO, root));
  for (const file of [...new Set(files)].sort()) {
    hash.update(relative(REPO, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/** The esbuild namespace of lazyHelpRendering's modules (the metafile names them `<namespace>:<package>`). */
const LAZY_HELP_NAMESPACE = 'lazy-help-rendering';

/** What yargs' ESM platform shim imports (node_modules/yargs/lib/platform-shims/esm.mjs). */
const YARGS_SHIM = /[\\/]node_modules[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/;

/**
 * yargs' ESM shim imports cliui and string-width (node_modules/yargs/lib/platform-shims/esm.mjs) only
 * to render help and usage text (yargs build/lib/usage.js: shim.cliui(), shim.stringWidth()), but
 * their modules do work as they load: each of the three copies of string-width (yargs', cliui's,
 * wrap-ansi's) builds an Intl.Segmenter and regular expressions of Unicode properties at its top level,
 * about 30 ms of CPU on every CLI start that renders no help. This plugin gives the shim, for each of
 * the two, a module that loads the real one (esbuild's require() of a bundled ES module: initialised on
 * the first call) when yargs first calls it. The same code renders the help; only when its modules
 * load changes. Resolved from yargs' own directory, so the copies are those yargs would import.
 */
const lazyHelpRendering: Plugin = {
  name: LAZY_HELP_NAMESPACE,
  setup(b) {
    b.onResolve({ filter: /^(cliui|string-width)$/ }, (args) =>
      YARGS_SHIM.test(args.importer) ? { path: args.path, namespace: LAZY_HELP_NAMESPACE, pluginData: args.resolveDir } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: LAZY_HELP_NAMESPACE }, (args) => ({
      contents: [
        'let loaded;',
        `export default function ${args.path === 'cliui' ? 'cliui' : 'stringWidth'}(...args) {`,
        `  loaded ??= require(${JSON.stringify(args.path)}).default;`,
        '  return loaded(...args);',
        '}',
      ].join('\n'),
      resolveDir: args.pluginData as string,
      loader: 'js',
    }));
  },
};

/** The JavaScript: three entries (API, CLI, workers) and their shared chunks, all in `<packageDir>/dist/`. */
async function bundle(packageDir: string): Promise<Metafile> {
  const workers = Object.fromEntries(Object.entries(WORKER_ENTRIES).map(([name, w]) => [name, join(REPO, w.source)]));
  const result = await build({
    absWorkingDir: REPO,
    entryPoints: { index: join(REPO, 'packages/cli/src/index.ts'), cli: join(REPO, 'packages/cli/src/main.ts'), ...workers },
    outdir: join(packageDir, 'dist'),
    // Chunks stay flat in dist/: common/src/assets.ts finds the package root as '../' from any of them.
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    define: { __SESSION_MIGRATE_PACKAGE_ROOT__: JSON.stringify('../') },
    // CommonJS dependencies (ioredis, php-parser, ts-morph) call require() for Node's modules, and the
    // TypeScript compiler reads __filename; an ES module has neither.
    banner: {
      js: [
        "import { createRequire as __smCreateRequire } from 'node:module';",
        "import { fileURLToPath as __smFileURLToPath } from 'node:url';",
        'const require = __smCreateRequire(import.meta.url);',
        'const __filename = __smFileURLToPath(import.meta.url);',
        "const __dirname = __smFileURLToPath(new URL('.', import.meta.url));",
      ].join('\n'),
    },
    legalComments: 'eof', // and every bundled package's license in THIRD-PARTY-LICENSES.txt
    // Also what keeps the banner's names apart from the bundled modules' own top-level `__dirname`.
    minify: true,
    keepNames: true,
    metafile: true,
    plugins: [lazyHelpRendering],
    // bundleOrFail reports the first error in one line; esbuild's own multi-line report would come first.
    logLevel: 'silent',
  });
  return result.metafile;
}

/**
 * The modules each entry loads before it runs (its static imports, recursively), and a check that
 * none is a heavy package and that nothing outside the bundle is imported but Node's own modules.
 */
function checkBundle(meta: Metafile): void {
  const outputs = meta.outputs;
  const staticClosure = (entry: string): Set<string> => {
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const imp of outputs[file]?.imports ?? []) if (imp.kind === 'import-statement' && !imp.external) visit(imp.path);
    };
    visit(entry);
    return seen;
  };
  const packageOf = (input: string): string | undefined => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
  const builtins = new Set(builtinModules);
  const unbundled = new Set<string>();
  for (const [file, out] of Object.entries(outputs)) {
    for (const imp of out.imports) {
      if (!imp.external || imp.path.startsWith('node:') || builtins.has(imp.path)) continue;
      if (imp.kind === 'require-call' && OPTIONAL_REQUIRES.includes(imp.path)) continue;
      unbundled.add(`${relative(PACKAGE_DIR, file)} imports ${imp.path} (${imp.kind})`);
    }
  }
  if (unbundled.size > 0) fail(`not bundled, and the package has no dependencies: ${[...unbundled].join('; ')}`);
  // A yargs that no longer imports them from that file would load them on every start again, unnoticed.
  for (const name of ['cliui', 'string-width']) {
    if (meta.inputs[`${LAZY_HELP_NAMESPACE}:${name}`] === undefined) {
      fail(`yargs' lib/platform-shims/esm.mjs no longer imports ${name}: update lazyHelpRendering (scripts/package/build.ts)`);
    }
  }
  // The CLI and the API; workers load what sealing needs (libsodium) once per thread.
  for (const name of ['dist/cli.js', 'dist/index.js']) {
    const file = Object.keys(outputs).find((f) => relative(PACKAGE_DIR, f) === name);
    if (file === undefined) fail(`esbuild wrote no ${name}`);
    for (const chunk of staticClosure(file)) {
      for (const input of Object.keys(outputs[chunk]?.inputs ?? {})) {
        const pkg = packageOf(input);
        if (pkg !== undefined && HEAVY_PACKAGES.includes(pkg)) {
          fail(`${name} loads ${pkg} at start-up (through ${input}); import it with await import() where it is used`);
        }
      }
    }
  }
}

/** The licenses of every bundled package, from node_modules. */
function thirdPartyLicenses(meta: Metafile): string {
  const packages = new Map<string, string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input);
    if (m !== null) packages.set(m[2]!, join(REPO, m[1]!));
  }
  // Packages that carry another one inside their own files: @ts-morph/common ships a copy of the
  // TypeScript compiler (dist/typescript.js, Apache-2.0).
  const carriedBy = new Map<string, string>();
  for (const [carrier, embedded] of Object.entries(EMBEDDED_PACKAGES)) {
    if (packages.has(carrier))
      for (const name of embedded) {
        packages.set(name, join(REPO, 'node_modules', name));
        carriedBy.set(name, carrier);
      }
  }
  const parts = ['session-migrate bundles the following packages into dist/. Their licenses follow.\n'];
  for (const [name, dir] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string; license?: string };
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text =
      file !== undefined
        ? readFileSync(join(dir, file), 'utf8').trim()
        : `(no license file; package.json says: ${pkg.license ?? 'nothing'})`;
    const title = carriedBy.has(name) ? `${name}, the copy inside ${carriedBy.get(name)}` : `${name}@${pkg.version ?? '?'}`;
    parts.push(`${'='.repeat(78)}\n${title} (${pkg.license ?? 'unknown license'})\n${'='.repeat(78)}\n${text}\n`);
  }
  return parts.join('\n');
}

function writePackageJson(): void {
  const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { description: string; engines: Record<string, string> };
  const pkg = {
    name: PACKAGE_NAME,
    version: VERSION,
    description: root.description,
    type: 'module',
    bin: { [PACKAGE_NAME]: 'bin/session-migrate.js' },
    main: './dist/index.js',
    types: './dist/types/packages/cli/src/index.d.ts',
    exports: {
      '.': { types: './dist/types/packages/cli/src/index.d.ts', default: './dist/index.js' },
      './package.json': './package.json',
    },
    engines: root.engines,
    keywords: ['php', 'session', 'redis', 'migration', 'encryption', 'libsodium', 'elasticache'],
  };
  writeFileSync(join(PACKAGE_DIR, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
}

function writeBin(packageDir: string): void {
  const bin = join(packageDir, 'bin/session-migrate.js');
  mkdirSync(dirname(bin), { recursive: true });
  writeFileSync(
    bin,
    [
      '#!/usr/bin/env node',
      '// The session-migrate CLI, built: no TypeScript at run time (the repository runs packages/cli/src through tsx).',
      '// `--version` alone is answered here, before the CLI and yargs load (about 40 ms less: issue 12 asks',
      '// for `npx session-migrate --version` in at most 0.3 s, of which npx itself takes about 0.25 s); it',
      "// prints what yargs' .version() prints, the same VERSION (test/package.test.ts compares the two).",
      'const argv = process.argv.slice(2);',
      "if (argv.length === 1 && argv[0] === '--version') {",
      `  process.stdout.write(${JSON.stringify(VERSION + '\n')});`,
      '} else {',
      "  const { main } = await import('../dist/cli.js');",
      '  process.exitCode = await main(argv);',
      '}',
      '',
    ].join('\n'),
  );
  chmodSync(bin, 0o755);
}

function checkAssets(): void {
  for (const [name, path] of Object.entries(PACKAGE_ASSETS)) {
    if (!existsSync(join(REPO, path))) fail(`PACKAGE_ASSETS.${name}: ${path} does not exist (packages/common/src/assets.ts)`);
  }
}

function copyAssets(packageDir: string): void {
  for (const path of Object.values(PACKAGE_ASSETS)) cpSync(join(REPO, path), join(packageDir, path), { recursive: true });
  cpSync(join(REPO, 'README.md'), join(packageDir, 'README.md'));
}

/** `npm pack` of build/package into dist/; returns the tarball path. */
function pack(): string {
  mkdirSync(DIST_DIR, { recursive: true });
  rmSync(TARBALL, { force: true });
  let out: string;
  try {
    out = execFileSync('npm', ['pack', '--json', '--pack-destination', DIST_DIR], {
      cwd: PACKAGE_DIR,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_ignore_scripts: 'true' },
    });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '')
      .trim()
      .split('\n')
      .pop();
    fail(`npm pack failed: ${stderr || (err as Error).message}`);
  }
  const [info] = JSON.parse(out) as Array<{ filename: string }>;
  const file = join(DIST_DIR, info!.filename.replace(/^@[^/]+\//, '').replace('/', '-'));
  if (file !== TARBALL || !existsSync(TARBALL)) fail(`npm pack wrote ${info?.filename}, expected ${relative(REPO, TARBALL)}`);
  return TARBALL;
}

/** bundle(), with an esbuild error turned into the build's one line (BuildError). */
async function bundleOrFail(packageDir: string): Promise<Metafile> {
  try {
    return await bundle(packageDir);
  } catch (err) {
    const first = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors?.[0];
    fail(
      `esbuild: ${first !== undefined ? `${first.location ? `${first.location.file}:${first.location.line}: ` : ''}${first.text}` : (err as Error).message.split('\n')[0]}`,
    );
  }
}

/**
 * The type declarations (scripts/package/types.ts), a type error as the build's one line. types.ts is
 * loaded here, not at the top: it loads the TypeScript compiler (about 1.5 s of CPU), which a build
 * that stops earlier (a missing asset, an esbuild error) and buildTestCli (every vitest run) never use.
 */
async function declarations(packageDir: string): Promise<void> {
  const { TypesError, buildTypes } = await import('./types.ts');
  try {
    buildTypes({ repo: REPO, outDir: join(packageDir, 'dist/types'), entry: 'packages/cli/src/index.ts' });
  } catch (err) {
    if (err instanceof TypesError) fail(err.message);
    throw err;
  }
}

/** Builds build/package/ (and packs it unless `noPack`); returns the tarball path, or the package dir. */
export async function buildPackage(options: { noPack?: boolean; ifStale?: boolean; quiet?: boolean } = {}): Promise<string> {
  const log = (line: string) => {
    if (options.quiet !== true) process.stderr.write(`session-migrate build: ${line}\n`);
  };
  const fingerprint = inputsFingerprint();
  if (
    options.ifStale === true &&
    !options.noPack &&
    existsSync(TARBALL) &&
    existsSync(FINGERPRINT_FILE) &&
    readFileSync(FINGERPRINT_FILE, 'utf8').trim() === fingerprint
  ) {
    log(`${relative(REPO, TARBALL)} is up to date`);
    return TARBALL;
  }
  const started = performance.now();
  // A failed build must not leave the previous tarball behind, installable as if it were this one.
  if (options.noPack !== true) {
    rmSync(TARBALL, { force: true });
    rmSync(FINGERPRINT_FILE, { force: true });
  }
  checkAssets();
  rmSync(PACKAGE_DIR, { recursive: true, force: true });
  mkdirSync(PACKAGE_DIR, { recursive: true });
  const meta = await bundleOrFail(PACKAGE_DIR);
  checkBundle(meta);
  mkdirSync(join(REPO, 'build'), { recursive: true });
  writeFileSync(join(REPO, 'build/metafile.json'), JSON.stringify(meta));
  await declarations(PACKAGE_DIR);
  copyAssets(PACKAGE_DIR);
  writeBin(PACKAGE_DIR);
  writePackageJson();
  writeFileSync(join(PACKAGE_DIR, 'THIRD-PARTY-LICENSES.txt'), thirdPartyLicenses(meta));
  if (options.noPack === true) {
    log(`built ${relative(REPO, PACKAGE_DIR)}/ in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return PACKAGE_DIR;
  }
  const tarball = pack();
  writeFileSync(FINGERPRINT_FILE, fingerprint + '\n');
  log(
    `wrote ${relative(REPO, tarball)} (${(statSync(tarball).size / 1024 / 1024).toFixed(1)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return tarball;
}

/** Where buildTestCli() keeps its builds: one directory per inputs fingerprint. */
export const TEST_CLI_DIR = join(REPO, 'build/test-cli');

/**
 * The CLI as the integration tests run it: the same esbuild bundle as the package (without the type
 * declarations and the tarball), in `build/test-cli/<fingerprint>/` with the package's layout
 * (dist/, bin/, the assets). A CLI process started from it loads in about 0.15 s of CPU, against
 * about 1 s through tsx (packages/cli/bin/session-migrate.js), and its worker threads start in
 * milliseconds; the suite starts the CLI several hundred times. Test/support/cli-build.ts calls it
 * once per test run (vitest globalSetup).
 *
 * Reused when a build of the same inputs (inputsFingerprint) is there; written to a temporary
 * directory and renamed into place, so a run never sees half a build. Builds of other fingerprints
 * are removed once they are two hours old (a suite still running from one keeps it). Returns the
 * absolute path of its `bin/session-migrate.js`.
 * @throws BuildError (its message is the build's one line) when esbuild fails.
 */
export async function buildTestCli(): Promise<string> {
  const fingerprint = inputsFingerprint().slice(0, 16);
  const dir = join(TEST_CLI_DIR, fingerprint);
  const bin = join(dir, 'bin/session-migrate.js');
  if (existsSync(bin)) return bin;
  mkdirSync(TEST_CLI_DIR, { recursive: true });
  const tmp = join(TEST_CLI_DIR, `.tmp-${process.pid}-${fingerprint}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    await bundleOrFail(tmp);
    copyAssets(tmp);
    writeBin(tmp);
    writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: PACKAGE_NAME, private: true, type: 'module' }) + '\n');
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another run built the same inputs meanwhile: its build is as good as this one.
      if (!existsSync(bin)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const old = Date.now() - 2 * 3600_000;
  for (const name of readdirSync(TEST_CLI_DIR)) {
    const path = join(TEST_CLI_DIR, name);
    if (name !== fingerprint && statSync(path).mtimeMs < old) rmSync(path, { recursive: true, force: true });
  }
  return bin;
}

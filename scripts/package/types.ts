/**
 * Type declarations of the package's API (scripts/package/build.ts): the TypeScript compiler emits a
 * .d.ts for every source file the API entry reaches; then every import specifier is made resolvable
 * in an installed package, where the workspace packages and the bundled dependencies do not exist:
 *
 * - `./x.ts` becomes `./x.js` (the declarations sit beside nothing else; `.js` maps to `.d.ts`);
 * - `@session-migrate/<name>[/<sub>]` becomes a relative path to that package's declaration, through
 *   the `exports` of its package.json;
 * - a bundled dependency whose types the API uses (VENDORED_TYPES) gets its declaration files copied
 *   into `dist/types/vendor/<name>/` and is imported from there;
 * - Node's own modules stay as they are (a consumer needs @types/node, as for any Node library).
 *
 * Only declarations reachable from the entry are written. Anything else is an error that names the
 * file and the specifier.
 */
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import ts from 'typescript';

/**
 * Bundled packages whose types appear in the API (or in the types of another one here), with the
 * declaration a bare import of the package resolves to, relative to its folder in node_modules. The
 * declarations reachable from it are shipped in `dist/types/vendor/<package>/`, with its license.
 */
const VENDORED_TYPES: Record<string, { entry: string }> = {
  ioredis: { entry: 'built/index.d.ts' },
  denque: { entry: 'index.d.ts' },
  'libsodium-wrappers': { entry: 'dist/modules-esm/libsodium-wrappers.d.mts' },
};

class TypesError extends Error {}

/** `.d.ts` -> `.js`, `.d.mts` -> `.mjs`: the specifier TypeScript maps back to the declaration. */
function jsSpecifierFor(declarationPath: string): string {
  return declarationPath.replace(/\.d\.ts$/, '.js').replace(/\.d\.mts$/, '.mjs');
}

function relativeSpecifier(fromFile: string, toFile: string): string {
  const rel = relative(dirname(fromFile), toFile).split(sep).join(posix.sep);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/** `@session-migrate/<name>[/<sub>]` -> the source file its package.json `exports` names, relative to the repository. */
function workspaceExports(repo: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const group of ['packages', 'codemods']) {
    for (const name of readdirSync(join(repo, group))) {
      const file = join(repo, group, name, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; exports?: Record<string, string> };
      for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
        map.set(sub === '.' ? pkg.name : posix.join(pkg.name, sub), posix.join(group, name, target));
      }
    }
  }
  return map;
}

/**
 * Emits and rewrites the declarations of `entry` (relative to `repo`) into `outDir`, keeping the
 * repository's layout (`<outDir>/packages/cli/src/index.d.ts`), after type-checking every source that
 * ships (packages/<name>/src, codemods/<name>/src).
 * @throws TypesError naming the file and the import that cannot be shipped, or the first type error
 *   (the check stops at the first file that has one; nothing is emitted then).
 */
export function buildTypes(options: { repo: string; outDir: string; entry: string }): void {
  const { repo, outDir } = options;
  const configPath = join(repo, 'tsconfig.json');
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, repo);
  const exportsMap = workspaceExports(repo);
  const compilerOptions: ts.CompilerOptions = {
    ...config.options,
    // The workspace packages by path, not through node_modules: files found in node_modules are
    // external libraries, and the compiler emits no declarations for them.
    paths: Object.fromEntries([...exportsMap].map(([spec, source]) => [spec, [join(repo, source)]])),
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    rootDir: repo,
    outDir: '/virtual-declarations',
  };
  // Every source that ships (packages/*/src, codemods/*/src, with the project's ambient declarations),
  // type-checked below: the CLI and the worker threads too, not only what the API entry reaches. Tests
  // and benches are npm test's tsc's (they do not ship).
  const shipped = config.fileNames.filter((f) => /(^|\/)(packages|codemods)\/[^/]+\/src\//.test(relative(repo, f)) || f.endsWith('.d.ts'));
  const roots = [join(repo, options.entry), ...shipped];
  const program = ts.createProgram(roots, compilerOptions);
  // The type check first: esbuild, which bundles the JavaScript, strips types without checking them, so
  // a type error would otherwise build and ship. It stops at the first file with an error (the build
  // reports one line): the options and the syntax of every file (parsed already), then file by file,
  // the roots in the order given (the entry, then tsconfig.json's order), then what else the program
  // holds (with skipLibCheck, nothing to check). ts.getPreEmitDiagnostics would check all ~170 files
  // (about 12 s of CPU) before reporting one; a clean build checks them all either way.
  const firstError = (diagnostics: readonly ts.Diagnostic[]): ts.Diagnostic | undefined =>
    diagnostics.find((d) => d.category === ts.DiagnosticCategory.Error);
  const throwIfError = (d: ts.Diagnostic | undefined): void => {
    if (d === undefined) return;
    const where =
      d.file !== undefined ? `${relative(repo, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : '';
    throw new TypesError(`declarations: ${where}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  };
  throwIfError(firstError([...program.getConfigFileParsingDiagnostics(), ...program.getOptionsDiagnostics()]));
  throwIfError(firstError(program.getSyntacticDiagnostics()));
  const checkOrder = [
    ...new Set([...roots.map((f) => program.getSourceFile(f)), ...program.getSourceFiles()].filter((f) => f !== undefined)),
  ];
  for (const file of checkOrder) throwIfError(firstError(program.getSemanticDiagnostics(file)));
  throwIfError(firstError(program.getGlobalDiagnostics()));
  const emitted = new Map<string, string>(); // repository-relative .d.ts path -> text
  const result = program.emit(
    undefined,
    (fileName, text) => {
      emitted.set(posix.relative('/virtual-declarations', fileName), text);
    },
    undefined,
    true,
  );
  // Declaration emit's own errors (a type it cannot name in a .d.ts).
  throwIfError(firstError(result.diagnostics));

  const builtins = new Set(builtinModules);
  const vendorTypes = new Map<string, string>(); // vendored package -> its "type" (module format of its .d.ts)
  /** Text of a file of the output tree: an emitted declaration, or `vendor/<package>/<path>` from node_modules. */
  const textOf = (file: string): string | undefined => {
    const vendor = /^vendor\/((?:@[^/]+\/)?[^/]+)\/(.+)$/.exec(file);
    if (vendor === null) return emitted.get(file);
    const path = join(repo, 'node_modules', vendor[1]!, vendor[2]!);
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  };
  const written = new Set<string>();
  const queue = [options.entry.replace(/\.ts$/, '.d.ts')];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (written.has(file)) continue;
    const text = textOf(file);
    if (text === undefined) throw new TypesError(`declarations: no declaration for ${file}`);
    written.add(file);
    const isVendored = file.startsWith('vendor/');
    const rewrite = (spec: string): string => {
      if (spec.startsWith('.')) {
        const joined = posix.normalize(posix.join(posix.dirname(file), spec));
        if (isVendored) {
          // A vendored package's own imports stay as written (its module format allows them); only follow them.
          const candidates = /\.m?js$/.test(joined)
            ? [joined.replace(/\.js$/, '.d.ts').replace(/\.mjs$/, '.d.mts')]
            : [`${joined}.d.ts`, `${joined}/index.d.ts`, joined];
          const found = candidates.find((c) => textOf(c) !== undefined);
          if (found === undefined) throw new TypesError(`declarations: ${file} imports ${spec}, which has no declaration`);
          queue.push(found);
          return spec;
        }
        const target = joined.replace(/\.ts$/, '.d.ts').replace(/\.js$/, '.d.ts');
        queue.push(target);
        return relativeSpecifier(join(outDir, file), join(outDir, jsSpecifierFor(target)));
      }
      if (spec.startsWith('@session-migrate/') && !isVendored) {
        const source = exportsMap.get(spec);
        if (source === undefined) throw new TypesError(`declarations: ${file} imports ${spec}, which no workspace package exports`);
        const target = source.replace(/\.ts$/, '.d.ts');
        queue.push(target);
        return relativeSpecifier(join(outDir, file), join(outDir, jsSpecifierFor(target)));
      }
      if (spec.startsWith('node:') || builtins.has(spec)) return spec;
      const name = /^(@[^/]+\/)?[^/]+/.exec(spec)![0];
      const vendor = VENDORED_TYPES[name];
      if (vendor === undefined || spec !== name) {
        throw new TypesError(
          `declarations: ${file} uses the types of ${spec}, which the package does not ship; keep it out of the API or add it to VENDORED_TYPES (scripts/package/types.ts)`,
        );
      }
      if (!vendorTypes.has(name)) {
        const pkg = JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as { type?: string };
        vendorTypes.set(name, pkg.type ?? 'commonjs');
      }
      const target = `vendor/${name}/${vendor.entry}`;
      queue.push(target);
      return relativeSpecifier(join(outDir, file), join(outDir, jsSpecifierFor(target)));
    };
    // The scanner's list of import/export/import() specifiers, with positions (comments are not imports).
    let out = text;
    const refs = ts.preProcessFile(text, true, true).importedFiles.sort((a, b) => b.pos - a.pos);
    for (const ref of refs) {
      // `pos` is at the opening quote or at the first character of the name, depending on the form.
      const start = text.startsWith(ref.fileName, ref.pos) ? ref.pos : ref.pos + 1;
      if (!text.startsWith(ref.fileName, start))
        throw new TypesError(`declarations: cannot locate the import of ${ref.fileName} in ${file}`);
      out = out.slice(0, start) + rewrite(ref.fileName) + out.slice(start + ref.fileName.length);
    }
    mkdirSync(dirname(join(outDir, file)), { recursive: true });
    writeFileSync(join(outDir, file), out);
  }

  for (const [name, type] of vendorTypes) {
    const from = join(repo, 'node_modules', name);
    const to = join(outDir, 'vendor', name);
    for (const license of readdirSync(from).filter((f) => /^licen[cs]e/i.test(f))) cpSync(join(from, license), join(to, license));
    // Its module format, as in its own package (ioredis: CommonJS declarations with extensionless
    // imports), not the session-migrate package's "type": "module".
    writeFileSync(
      join(to, 'package.json'),
      JSON.stringify({ name: `session-migrate-vendored-types-${name.replace('/', '-')}`, private: true, type }) + '\n',
    );
  }
}

export { TypesError };

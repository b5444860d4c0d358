/**
 * The IniEngine the CLI uses: php-ini's parser (parseIni, PHP-exact) for every file, read through an
 * AuditFs; the configuration-hash build order of php-src main/php_ini.c php_init_config() (one main
 * file, then each scan dir in list order, names sorted bytewise, only `*.ini` regular files); and the
 * directive table for ini_get() values.
 */
import { posix } from 'node:path';
import { parseIni } from '../../php-ini/src/parser.ts';
import type { AuditFs } from './vfs.ts';
import type { DirectiveFacts, HashEntry, IniEngine, IniSyntaxError, LoadedConfiguration, RedisSavePathView } from './engine.ts';
import { directiveFacts, directiveNamesFor, deprecationOf, removedInVersion, validate } from './directives.ts';
import { parseRedisView } from './redis.ts';

/** Byte-order comparison (alphasort in the "C" locale, php-src main/php_ini.c). */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function loadFile(fs: AuditFs, file: string, env: Record<string, string>, hash: Map<string, string>, version: string, out: LoadedConfiguration): boolean {
  const r = fs.readFile(file);
  if (!r.ok) { out.problems.push(`${file}: ${r.error}`); return false; }
  const parsed = parseIni(r.data, { file, mode: 'php.ini', env, lookup: (n) => hash.get(n), phpVersion: version });
  for (const e of parsed.entries) {
    if (e.scope.kind !== 'global' || e.extension !== undefined) continue;
    const entry: HashEntry = { key: e.key, value: e.value, file, line: e.line, ...(e.offset !== undefined ? { offset: e.offset } : {}) };
    out.entries.push(entry);
    if (e.offset === undefined) hash.set(e.key, e.value);
  }
  let ok = true;
  for (const err of parsed.errors) {
    if (err.kind === 'syntax') { out.errors.push({ file, line: err.line, message: err.message }); ok = false; }
    else if (err.kind === 'io') out.problems.push(`${file}: ${err.message}`);
    else if (/NUL/.test(err.message)) out.problems.push(`${file}:${err.line}: ${err.message} (binary data: PHP stops reading the file here)`);
  }
  return ok;
}

/** Creates the engine. */
export function defaultEngine(): IniEngine {
  return {
    load(fs: AuditFs, mainFile: string | null, scanDirs: string[], env: Record<string, string>, phpVersion: string): LoadedConfiguration {
      const out: LoadedConfiguration = { loadedFile: null, scannedFiles: [], entries: [], errors: [], problems: [] };
      const hash = new Map<string, string>();
      if (mainFile !== null) {
        const st = fs.stat(mainFile);
        if (st?.type === 'file') {
          out.loadedFile = mainFile;
          loadFile(fs, mainFile, env, hash, phpVersion, out);
        } else out.problems.push(`${mainFile}: ${st === null ? 'no such file' : 'not a regular file'}`);
      }
      const seen = new Set<string>();
      for (const dir of scanDirs) {
        if (dir === '') { out.problems.push('an empty PHP_INI_SCAN_DIR element means the compiled scan dir, which the audit cannot know: not read'); continue; }
        const names = fs.readdir(dir);
        if (names === null) continue;
        for (const name of names.sort(byteOrder)) {
          const dot = name.lastIndexOf('.');
          if (dot < 0 || name.slice(dot + 1) !== 'ini') continue;
          const p = posix.join(dir, name);
          if (fs.stat(p)?.type !== 'file') continue;
          // A loop through symlinks cannot make PHP read one file twice from one listing; guard anyway.
          if (seen.has(p)) continue;
          seen.add(p);
          if (loadFile(fs, p, env, hash, phpVersion, out)) out.scannedFiles.push(p);
        }
      }
      return out;
    },
    parseText(text, file, env, lookup, phpVersion, mode) {
      const parsed = parseIni(text, { file, mode, env, lookup: (n) => lookup.get(n), phpVersion });
      const entries: Array<HashEntry | { section: string; line: number; file: string }> = [];
      let section: string | null = null;
      for (const e of parsed.entries) {
        if (e.section !== section && e.section !== null) entries.push({ section: e.section, line: e.line, file });
        section = e.section;
        if (e.scope.kind !== 'global') continue;
        entries.push({ key: e.key, value: e.value, file, line: e.line, ...(e.offset !== undefined ? { offset: e.offset } : {}) });
      }
      const errors: IniSyntaxError[] = parsed.errors.filter((x) => x.kind === 'syntax').map((x) => ({ file, line: x.line, message: x.message }));
      return { entries, errors };
    },
    effective(entries: HashEntry[], phpVersion: string, defaults: Record<string, string>) {
      const last = new Map<string, number>();
      entries.forEach((e, i) => { if (e.offset === undefined) last.set(e.key, i); });
      const out = new Map<string, { value: string; from: number }>();
      for (const name of directiveNamesFor(phpVersion)) {
        const facts = directiveFacts(name, phpVersion) as DirectiveFacts;
        const dflt = defaults[name] ?? facts.default;
        const i = last.get(name);
        if (i === undefined) { out.set(name, { value: dflt, from: -1 }); continue; }
        const v = (entries[i] as HashEntry).value;
        out.set(name, validate(name, v, phpVersion) ? { value: v, from: i } : { value: dflt, from: -1 });
      }
      return out;
    },
    directive: (name, v) => directiveFacts(name, v),
    directiveNames: (v) => directiveNamesFor(v),
    removedIn: (name) => removedInVersion(name),
    deprecation: (name, value, v) => deprecationOf(name, value, v),
    redis: (value: string): RedisSavePathView => parseRedisView(value),
  };
}

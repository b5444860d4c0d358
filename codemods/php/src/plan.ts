/**
 * Where to register the handler (pure): builds the include graph of the app from the static
 * include/require events of every analysed file and decides which file gets the `require_once`.
 *
 * Model (an approximation of PHP, documented in docs/codemods.md, "codemod php"):
 * - an entry point is a file no other file includes and that has top-level code (not only
 *   declarations);
 * - execution order is source order; an include runs its file there (once per request: a file already
 *   entered is not entered again); conditions are ignored;
 * - a relative include path is tried in the including file's directory, then in the app directory.
 *
 * Choice: with `--bootstrap`, that file. Otherwise, among the entry points that reach a
 * session_start() (or a session_set_save_handler() of the generated handler, as
 * --replace-custom-handler writes it: it needs the bootstrap first as well) and do not already load the handler bootstrap (or register a custom handler with
 * session_set_save_handler()) before it, the first file (in
 * execution order of the first such entry point) that all of them enter before their first
 * session_start(), preferring one with top-level code of its own over a file of declarations, and
 * either over an entry point; if there is none, each of those entry points.
 */
import { posix } from 'node:path';
import type { FileAnalysis, FileEvent, Finding, IncludeEvent } from './model.ts';

export interface RegistrationPlan {
  /** Absolute paths of the files that get the require_once, in order. */
  targets: string[];
  /** Entry points found (absolute), sorted. */
  entryPoints: string[];
  /** Entry points whose execution reaches session_start() (absolute), sorted. */
  sessionEntryPoints: string[];
  findings: Finding[];
}

/** The analysed files and how their include events resolve. */
interface IncludeGraph {
  files: ReadonlyMap<string, FileAnalysis>;
  /** Base name of the handler bootstrap (an include naming it loads the handler). */
  handlerBase: string;
  /** Whether the include event loads the handler bootstrap. */
  isHandler: (ev: IncludeEvent) => boolean;
  /** The analysed file an include event enters, or null (computed path, or a file not analysed). */
  resolveInclude: (ev: IncludeEvent) => string | null;
}

/** What a request to one entry point does before its first session_start() (simulateRequest). */
interface RequestRun {
  started: boolean;
  /** The handler bootstrap is included first. */
  covered: boolean;
  /** A custom handler is registered first. */
  custom: boolean;
  /** Files entered, in order. */
  entered: string[];
}

/** Whether the event needs the handler registered first: session_start(), or a registration of the generated handler (registeredHandler()). */
const needsHandler = (ev: FileEvent): boolean =>
  ev.kind === 'session_start' || (ev.kind === 'custom_handler' && ev.needsBootstrap === true);

/** Entry points: files no other file includes and with top-level code, sorted. Computed includes are reported. */
function findEntryPoints(g: IncludeGraph, findings: Finding[]): string[] {
  const { files } = g;
  const included = new Set<string>();
  for (const [abs, a] of files) {
    for (const ev of a.events) {
      if (ev.kind !== 'include' || g.isHandler(ev)) continue;
      if (ev.candidates === null) {
        findings.push({
          file: a.file,
          line: ev.line,
          id: 'include-unresolved',
          severity: 'info',
          message: 'include/require with a computed path: not followed when looking for the bootstrap file',
        });
        continue;
      }
      const target = g.resolveInclude(ev);
      if (target !== null && target !== abs) included.add(target);
    }
  }
  return [...files.keys()].filter((f) => !included.has(f) && !files.get(f)!.declarationsOnly).sort();
}

/** Files entered before the first session_start() of a request to `entry`, in order. */
function simulateRequest(g: IncludeGraph, entry: string): RequestRun {
  const entered: string[] = [];
  const seen = new Set<string>();
  let covered = false;
  let custom = false;
  const visit = (file: string): boolean => {
    entered.push(file);
    seen.add(file);
    for (const ev of g.files.get(file)!.events) {
      // A registration of the generated handler (registeredHandler()) needs the bootstrap first, as session_start() does.
      if (ev.kind === 'session_start' || (ev.kind === 'custom_handler' && ev.needsBootstrap === true)) return true;
      if (ev.kind === 'custom_handler') {
        custom = true;
        continue;
      }
      if (g.isHandler(ev)) {
        covered = true;
        continue;
      }
      const target = g.resolveInclude(ev);
      if (target !== null && !seen.has(target) && visit(target)) return true;
    }
    return false;
  };
  const started = visit(entry);
  return { started, covered, custom, entered };
}

/**
 * session_start() calls no entry point reaches through static includes (a class loaded by an
 * autoloader, a path computed at run time): reported, never guessed at. Returns how many there are.
 */
function reportUnreached(
  g: IncludeGraph,
  entryPoints: readonly string[],
  sessionEntryPoints: readonly string[],
  bootstrap: string | undefined,
  findings: Finding[],
): number {
  const { files } = g;
  const reached = new Set<string>();
  const reach = (file: string) => {
    if (reached.has(file)) return;
    reached.add(file);
    for (const ev of files.get(file)!.events) {
      if (ev.kind !== 'include' || g.isHandler(ev)) continue;
      const target = g.resolveInclude(ev);
      if (target !== null) reach(target);
    }
  };
  entryPoints.forEach(reach);
  const unreached = [...files]
    .filter(([abs]) => !reached.has(abs))
    .flatMap(([, a]) =>
      a.events.filter(needsHandler).map((ev) => ({
        file: a.file,
        line: ev.line,
        what: ev.kind === 'session_start' ? 'session_start()' : 'session_set_save_handler(...registeredHandler())',
      })),
    );
  for (const u of unreached) {
    const none = bootstrap === undefined && sessionEntryPoints.length === 0;
    findings.push({
      file: u.file,
      line: u.line,
      id: 'session-start-unreached',
      severity: bootstrap !== undefined ? 'info' : none ? 'high' : 'medium',
      message:
        bootstrap !== undefined
          ? `${u.what} in a file no entry point includes statically: assumed to run after --bootstrap`
          : `${u.what} in a file no entry point includes statically (autoloaded class? computed include path?): could not tell which entry point runs it`,
      ...(bootstrap !== undefined
        ? {}
        : { fix: 'run again with --bootstrap FILE naming the file every request loads first (the front controller or its bootstrap)' }),
    });
  }
  return unreached.length;
}

/** With --bootstrap: that file (unless it already loads the handler); session entry points that skip it are reported. */
function targetsWithBootstrap(
  g: IncludeGraph,
  bootstrap: string,
  sessionEntryPoints: readonly string[],
  runs: ReadonlyMap<string, RequestRun>,
  rel: (abs: string) => string,
  findings: Finding[],
): string[] {
  for (const e of sessionEntryPoints) {
    if (!runs.get(e)!.entered.includes(bootstrap)) {
      findings.push({
        file: rel(e),
        line: 0,
        id: 'bootstrap-not-reached',
        severity: 'medium',
        message: `this entry point reaches session_start() without including ${rel(bootstrap)} first (as far as static includes show)`,
        fix: `include ${rel(bootstrap)} before session_start() here, or run the codemod without --bootstrap`,
      });
    }
  }
  const a = g.files.get(bootstrap)!;
  const has = a.events.some((ev) => ev.kind === 'include' && g.isHandler(ev));
  return has ? [] : [bootstrap];
}

/**
 * Without --bootstrap: the first file all uncovered session entry points enter before session_start()
 * (a shared bootstrap with code over a library of declarations, either over an entry point), else each of them.
 */
function chooseTargets(
  g: IncludeGraph,
  entryPoints: readonly string[],
  sessionEntryPoints: readonly string[],
  runs: ReadonlyMap<string, RequestRun>,
  unreached: number,
  findings: Finding[],
): string[] {
  const { files } = g;
  if (sessionEntryPoints.length === 0) {
    if (unreached > 0) return [];
    findings.push({
      file: '.',
      line: 0,
      id: 'no-session-start',
      severity: 'info',
      message: 'no entry point reaches session_start(): the handler was not registered anywhere',
    });
    return [];
  }
  // An entry point that registers its own handler before session_start() is left to a person
  // (reported as custom-handler-registered): the bootstrap would only be replaced there.
  const uncovered = sessionEntryPoints.filter((e) => !runs.get(e)!.covered && !runs.get(e)!.custom);
  if (uncovered.length === 0) {
    if (sessionEntryPoints.some((e) => runs.get(e)!.covered)) {
      findings.push({
        file: '.',
        line: 0,
        id: 'handler-already-registered',
        severity: 'info',
        message: `the entry points that start a session already load ${g.handlerBase} first (or register their own handler)`,
      });
    }
    return [];
  }
  const lists = uncovered.map((e) => runs.get(e)!.entered);
  const common = lists[0]!.filter((f) => lists.every((l) => l.includes(f)) && files.get(f)!.insertPoint !== null);
  const entrySet = new Set(entryPoints);
  // Prefer a shared bootstrap with code of its own over a library of declarations, and either over an entry point.
  const chosen =
    common.find((f) => !entrySet.has(f) && !files.get(f)!.declarationsOnly) ?? common.find((f) => !entrySet.has(f)) ?? common[0];
  return chosen !== undefined ? [chosen] : uncovered;
}

/**
 * @param files analysed files by absolute path.
 * @param handlerBootstrap absolute path of the generated session-migrate-bootstrap.php.
 * @param bootstrap absolute path of the file given with --bootstrap, if any (must be in `files`).
 * @param rel maps an absolute path to the report's relative path.
 */
export function planRegistration(
  files: ReadonlyMap<string, FileAnalysis>,
  handlerBootstrap: string,
  bootstrap: string | undefined,
  rel: (abs: string) => string,
): RegistrationPlan {
  const findings: Finding[] = [];
  const handlerBase = posix.basename(handlerBootstrap);
  const g: IncludeGraph = {
    files,
    handlerBase,
    isHandler: (ev) => (ev.candidates?.includes(handlerBootstrap) ?? false) || ev.raw.includes(handlerBase),
    resolveInclude: (ev) => ev.candidates?.find((c) => files.has(c)) ?? null,
  };
  const entryPoints = findEntryPoints(g, findings);
  const runs = new Map(entryPoints.map((e) => [e, simulateRequest(g, e)] as const));
  const sessionEntryPoints = entryPoints.filter((e) => runs.get(e)!.started);
  const unreached = reportUnreached(g, entryPoints, sessionEntryPoints, bootstrap, findings);
  const targets =
    bootstrap !== undefined
      ? targetsWithBootstrap(g, bootstrap, sessionEntryPoints, runs, rel, findings)
      : chooseTargets(g, entryPoints, sessionEntryPoints, runs, unreached, findings);
  return { targets, entryPoints, sessionEntryPoints, findings };
}

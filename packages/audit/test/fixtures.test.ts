/**
 * Fixture-driven audit tests: every directory in fixtures/ is one case (case.json says how to run,
 * expected.json what must and must not be reported). Also checks that every rule in the catalogue is
 * triggered by at least one fixture and explicitly absent from at least one other.
 */
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  RULES,
  RootFs,
  auditHost,
  auditIniFile,
  configJson,
  defaultEngine,
  renderJson,
  renderSarif,
  renderTable,
  type HostReport,
  loadPhpParser,
} from '@session-migrate/audit';

// Audits that read application code (--app, document roots) need codemod php's parser loaded.
await loadPhpParser();

const here = dirname(new URL(import.meta.url).pathname);
const fixturesDir = join(here, 'fixtures');
const work = mkdtempSync(join(tmpdir(), 'audit-fixtures-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface CaseJson {
  mode: 'ini' | 'root';
  ini?: string;
  scanDir?: string;
  phpVersion?: string;
  docroots?: string[];
  /** Empty directories to create (git keeps no empty directory). */
  dirs?: string[];
  chmod?: Record<string, string>;
  /** Owners (uid, also as gid) to give files: needs root, so the case is skipped for another user. */
  chown?: Record<string, number>;
  symlinks?: Record<string, string>;
  binary?: Record<string, number>;
  /** SERVER_NAME for [HOST=] sections (auditHost serverName). */
  serverName?: string;
  /** --app directories (host paths below root/ in root mode, paths below the fixture in ini mode). */
  apps?: string[];
}
interface ExpectedJson {
  expect: string[];
  absent: string[];
  values?: Record<string, Record<string, string | false>>;
  origins?: Record<string, Record<string, string>>;
  locked?: Record<string, string[]>;
  configs?: string[];
  messages?: string[];
  secretsNotIn?: string[];
  partial?: boolean;
  savePath?: Record<string, Record<string, unknown>>;
  phpVersion?: Record<string, string>;
  /** Per configuration: the value as the JSON report prints it (`values` and the session settings), after redaction. */
  redactedValues?: Record<string, Record<string, string>>;
  /** Text that must appear in no output (table, JSON, SARIF). */
  notInOutput?: string[];
  /** Per configuration: rule IDs that must not be reported for it. */
  configFindings?: Record<string, { absent: string[] }>;
}

const cases = readdirSync(fixturesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

/** Copies a fixture into a scratch dir and applies modes, links and generated binary files. */
function materialise(name: string, c: CaseJson): string {
  const dir = join(work, name);
  cpSync(join(fixturesDir, name), dir, { recursive: true });
  for (const p of c.dirs ?? []) mkdirSync(join(dir, p), { recursive: true });
  for (const [p, target] of Object.entries(c.symlinks ?? {})) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    symlinkSync(target, join(dir, p));
  }
  for (const [p, size] of Object.entries(c.binary ?? {})) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    const buf = Buffer.alloc(size);
    for (let i = 0; i < size; i++) buf[i] = (i * 131 + 7) & 0xff;
    writeFileSync(join(dir, p), buf);
  }
  for (const [p, uid] of Object.entries(c.chown ?? {})) chownSync(join(dir, p), uid, uid);
  for (const [p, mode] of Object.entries(c.chmod ?? {})) chmodSync(join(dir, p), parseInt(mode, 8));
  return dir;
}

/** Runs one fixture case. */
export function runCase(name: string): { report: HostReport; expected: ExpectedJson } {
  const c = JSON.parse(readFileSync(join(fixturesDir, name, 'case.json'), 'utf8')) as CaseJson;
  const expected = JSON.parse(readFileSync(join(fixturesDir, name, 'expected.json'), 'utf8')) as ExpectedJson;
  const dir = materialise(name, c);
  const engine = defaultEngine();
  const report =
    c.mode === 'ini'
      ? auditIniFile({
          fs: new RootFs('/'),
          engine,
          iniFile: join(dir, c.ini ?? 'php.ini'),
          env: {},
          ...(c.phpVersion !== undefined ? { phpVersion: c.phpVersion } : {}),
          ...(c.scanDir !== undefined
            ? {
                scanDirs: c.scanDir
                  .split(':')
                  .map((d) => join(dir, d))
                  .join(':'),
              }
            : {}),
          ...(c.apps !== undefined ? { apps: c.apps.map((a) => join(dir, a)) } : {}),
        })
      : auditHost({
          fs: new RootFs(join(dir, 'root')),
          engine,
          host: 'root',
          env: {},
          docroots: c.docroots ?? [],
          ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
          ...(c.apps !== undefined ? { apps: c.apps } : {}),
        });
  return { report, expected };
}

const triggered = new Set<string>();
const absent = new Set<string>();
const isRoot = process.getuid?.() === 0;
/** Cases that give files other owners (case.json `chown`): run as root only. */
const rootOnly = cases.filter((name) => {
  const c = JSON.parse(readFileSync(join(fixturesDir, name, 'case.json'), 'utf8')) as CaseJson;
  return c.chown !== undefined;
});
/** Rules only a root-only case triggers, excused from the coverage check for another user. */
const rootOnlyRules = new Set(
  rootOnly.flatMap((name) => (JSON.parse(readFileSync(join(fixturesDir, name, 'expected.json'), 'utf8')) as ExpectedJson).expect),
);

describe('audit fixtures', () => {
  for (const name of cases) {
    it.skipIf(!isRoot && rootOnly.includes(name))(name, () => {
      const { report, expected } = runCase(name);
      const ids = new Set(report.findings.map((f) => f.id));
      for (const id of expected.expect) {
        expect(ids, `${name}: expected ${id}; got ${[...ids].join(', ')}`).toContain(id);
        triggered.add(id);
      }
      const mustBeAbsent = (expected.absent ?? []).includes('*')
        ? RULES.map((r) => r.id).filter((id) => !expected.expect.includes(id))
        : (expected.absent ?? []);
      for (const id of mustBeAbsent) {
        expect(
          ids.has(id),
          `${name}: ${id} must not be reported: ${report.findings
            .filter((f) => f.id === id)
            .map((f) => f.message)
            .join(' | ')}`,
        ).toBe(false);
        absent.add(id);
      }
      const byId = new Map(report.configs.map((c) => [c.id, c]));
      if (expected.configs !== undefined) expect([...byId.keys()].sort()).toEqual([...expected.configs].sort());
      for (const [id, values] of Object.entries(expected.values ?? {})) {
        const cfg = byId.get(id);
        expect(cfg, `${name}: configuration ${id} (have ${[...byId.keys()].join(', ')})`).toBeDefined();
        for (const [k, v] of Object.entries(values)) expect(cfg?.values[k]?.value, `${name} ${id} ${k}`).toBe(v);
      }
      for (const [id, origins] of Object.entries(expected.origins ?? {})) {
        for (const [k, o] of Object.entries(origins)) {
          const got = byId.get(id)?.values[k]?.origin;
          expect(got === 'default' ? 'default' : `${got?.file}:${got?.line}`, `${name} ${id} ${k} origin`).toBe(o);
        }
      }
      for (const [id, keys] of Object.entries(expected.locked ?? {})) {
        const cfg = byId.get(id);
        const locked = Object.entries(cfg?.values ?? {})
          .filter(([, v]) => v.locked === true)
          .map(([k]) => k)
          .filter((k) => k.startsWith('session.'));
        expect(locked.sort(), `${name} ${id} locked`).toEqual([...keys].sort());
      }
      for (const [id, sp] of Object.entries(expected.savePath ?? {})) expect(byId.get(id)?.savePath).toMatchObject(sp);
      for (const [id, v] of Object.entries(expected.phpVersion ?? {})) expect(byId.get(id)?.phpVersion).toBe(v);
      if (expected.partial !== undefined) expect(report.partial).toBe(expected.partial);
      const all = [renderTable([report]), renderJson([report]), renderSarif([report], '0.0.0')].join('\n');
      for (const m of expected.messages ?? []) expect(all).toContain(m);
      for (const s of expected.secretsNotIn ?? []) expect(all, `${name}: secret leaked`).not.toContain(s);
      for (const [id, { absent: no }] of Object.entries(expected.configFindings ?? {})) {
        for (const rule of no)
          expect(
            report.findings.filter((f) => f.config === id && f.id === rule).map((f) => f.message),
            `${name} ${id} ${rule}`,
          ).toEqual([]);
      }
      // SARIF: every location names a file the audit really read or pointed at (never an invented
      // php.ini for a compiled default), relative to the ROOT base declared in originalUriBaseIds.
      const sarif = JSON.parse(renderSarif([report], '0.0.0')) as {
        runs: Array<{
          originalUriBaseIds?: Record<string, { uri: string }>;
          results: Array<{ locations?: Array<{ physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string } } }> }>;
        }>;
      };
      const real = new Set(
        [...report.configs.flatMap((c) => [c.loadedFile, ...c.scannedFiles]), ...report.findings.map((f) => f.file)]
          .filter((x): x is string => typeof x === 'string')
          .map((f) => f.replace(/^\/+/, '')),
      );
      for (const res of sarif.runs[0]!.results) {
        for (const l of res.locations ?? []) {
          expect(real, `${name}: SARIF uri ${l.physicalLocation.artifactLocation.uri}`).toContain(
            decodeURIComponent(l.physicalLocation.artifactLocation.uri),
          );
          expect(l.physicalLocation.artifactLocation.uriBaseId, `${name}: uriBaseId`).toBe('ROOT');
          expect(sarif.runs[0]!.originalUriBaseIds?.ROOT?.uri).toBe('file:///');
        }
      }
      for (const s of expected.notInOutput ?? []) expect(all, `${name}: must not print ${s}`).not.toContain(s);
      for (const [id, vals] of Object.entries(expected.redactedValues ?? {})) {
        const j = configJson(byId.get(id)!) as { values: Record<string, unknown>; session: Record<string, { value: unknown }> };
        for (const [k, v] of Object.entries(vals)) {
          expect(j.values[k], `${name} ${id} values.${k}`).toBe(v);
          if (k in j.session) expect(j.session[k]?.value, `${name} ${id} session.${k}`).toBe(v);
        }
      }
    });
  }

  it('every rule is triggered by one fixture and absent from another', () => {
    const missingTrigger = RULES.map((r) => r.id).filter((id) => !triggered.has(id) && (isRoot || !rootOnlyRules.has(id)));
    const missingAbsent = RULES.map((r) => r.id).filter((id) => !absent.has(id));
    expect(missingTrigger, 'rules no fixture triggers').toEqual([]);
    expect(missingAbsent, 'rules no fixture shows absent').toEqual([]);
  });
});

/**
 * The audit use case (src/use-case.ts, runAudit) called directly: it returns one report per host,
 * the same reports as the parts it is built on, decides `failed` by `failOn`, and refuses
 * conflicting options and missing paths with one-line UserFacingErrors. Unit tier: collected
 * documents, an ini file and a root in a temporary directory; the php binary named does not exist,
 * so nothing is started.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserFacingError } from '@session-migrate/common';
import {
  auditHost,
  defaultEngine,
  fleetJson,
  loadPhpParser,
  parseCollected,
  phpDefaults,
  probePhp,
  runAudit,
  severityRank,
  type AuditOptions,
} from '../src/index.ts';

const here = dirname(new URL(import.meta.url).pathname);
const fleet = join(here, 'fixtures-fleet', 'rb3-same-hostname');
const docs = ['web-2.json', 'web-3.json', 'img2.json'].map((f) => join(fleet, f));
const tmp = mkdtempSync(join(tmpdir(), 'sm-audit-use-case-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const NO_PHP = join(tmp, 'no-such-php');
const base: AuditOptions = { docroot: [], app: [], fromCollected: [], php: NO_PHP };

describe('runAudit', () => {
  it('audits collected documents: one report per document, equal to auditHost on each', async () => {
    const { reports, failed } = await runAudit({ ...base, fromCollected: docs, failOn: 'none' });
    expect(failed).toBe(false);
    expect(reports).toHaveLength(3);
    await loadPhpParser();
    const engine = defaultEngine();
    const direct = docs.map((file) => {
      const h = parseCollected(readFileSync(file, 'utf8'), file);
      return auditHost({ fs: h.fs, engine, host: h.host, env: {}, docroots: h.docroots, probe: h.probe, appsFromDocroots: false });
    });
    expect(fleetJson(reports)).toEqual(fleetJson(direct));
  });

  it('failed is true exactly when a finding is at or above failOn', async () => {
    const { reports } = await runAudit({ ...base, fromCollected: docs });
    const worst = Math.max(...reports.flatMap((r) => r.findings.map((f) => severityRank(f.severity))));
    for (const failOn of ['critical', 'high', 'medium', 'low', 'info'] as const) {
      expect((await runAudit({ ...base, fromCollected: docs, failOn })).failed, failOn).toBe(worst >= severityRank(failOn));
    }
    expect((await runAudit({ ...base, fromCollected: docs, failOn: 'info' })).failed).toBe(true);
    expect((await runAudit({ ...base, fromCollected: docs })).failed).toBe(false); // failOn defaults to 'none'
  });

  it('audits an ini file (no php: compiled defaults unknown) and a root; files sessions in /tmp are findings', async () => {
    const ini = join(tmp, 'php.ini');
    writeFileSync(ini, 'session.save_handler = files\nsession.save_path = "/tmp"\n');
    const byIni = await runAudit({ ...base, ini, env: {} });
    expect(byIni.reports).toHaveLength(1);
    expect(byIni.reports[0]!.findings.length).toBeGreaterThan(0);
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'etc/php/8.2/cli'), { recursive: true });
    writeFileSync(join(root, 'etc/php/8.2/cli/php.ini'), 'session.save_path = "/tmp"\n');
    const byRoot = await runAudit({ ...base, root });
    expect(byRoot.reports.map((r) => r.host)).toEqual(['root']);
  });

  it('refuses conflicting options and missing paths with one line', async () => {
    const ini = join(tmp, 'php.ini');
    writeFileSync(ini, '');
    const cases: Array<[Partial<AuditOptions>, RegExp]> = [
      [{ ini, root: tmp }, /use only one of --ini, --from-collected and --root/],
      [{ scanDir: tmp }, /--scan-dir needs --ini/],
      [{ fromCollected: docs, app: [tmp] }, /--app reads application code/],
      [{ ini, docroot: [tmp] }, /--docroot reads .user.ini/],
      [{ ini: join(tmp, 'missing.ini') }, /--ini .*missing\.ini: /],
      [{ root: ini }, /--root .*: not a directory/],
      [{ root: tmp, app: ['/no/such/app'] }, /--app \/no\/such\/app: no such file or directory \(below --root/],
      [{ fromCollected: [join(tmp, 'missing.json')] }, /--from-collected .*missing\.json: /],
    ];
    for (const [over, message] of cases) {
      const err = await runAudit({ ...base, ...over }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, String(message)).toBeInstanceOf(UserFacingError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('the php probes answer null when there is no php binary', () => {
    expect(probePhp(NO_PHP)).toBeNull();
    expect(phpDefaults(NO_PHP)).toBeNull();
  });
});

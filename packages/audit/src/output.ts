/**
 * Renders audit results: a readable table, JSON (`session-migrate-audit/1`), SARIF 2.1.0 (OASIS
 * SARIF v2.1.0, sections 3.13 run, 3.19 toolComponent.rules, 3.27 result, 3.28 location), and a fleet
 * summary over many hosts. No secret reaches any output: save paths are shown resolved with auth
 * reduced to a flag, and messages name files and keys only.
 */
import { printable } from '@session-migrate/common';
import { redactRedisSavePath, redactRedisSecrets } from '@session-migrate/php-ini';
import { RULES } from './catalog.ts';
import {
  SESSION_REPORT_KEYS,
  SEVERITIES,
  severityRank,
  type AppReport,
  type AuditedConfig,
  type Finding,
  type HostReport,
  type ResolvedSavePath,
  type RuntimeValue,
  type Severity,
} from './model.ts';

/**
 * Replaces every Redis password in a text the audit prints (values, settings, findings, table, SARIF,
 * fleet) with `<redacted len=N>`: the one redaction rule of @session-migrate/php-ini
 * (redactRedisSecrets, test/fixtures/cases BUG-17 report_redaction).
 */
export const redactSecrets: (text: string) => string = redactRedisSecrets;

/**
 * redactSecrets for the value of `directive`; a `session.save_path` value gets the save_path rule
 * (redactRedisSavePath: `auth=ab cd` hides `ab cd`, which phpredis would split into a password and a server).
 */
export function redactValue(directive: string | null, value: string): string {
  return directive === 'session.save_path' ? redactRedisSavePath(value) : redactRedisSecrets(value);
}

/**
 * The save path as the reports show it, secrets redacted: a files path goes through the save_path
 * rule too, since a Redis save_path left under `save_handler = files` (`tcp://h:6379?auth=PW`) is a
 * directory name to PHP (php-src ext/session/mod_files.c) and still holds the password.
 */
function redactedSavePath(sp: ResolvedSavePath): ResolvedSavePath {
  return sp.kind === 'files' ? { ...sp, path: redactValue('session.save_path', sp.path) } : sp;
}

/** The save path as one printable line, secrets redacted. */
export function describeSavePath(sp: ResolvedSavePath): string {
  switch (sp.kind) {
    case 'files':
      return `${sp.systemTemp ? '(system temp) ' : ''}${redactValue('session.save_path', sp.path)}${sp.depth > 0 ? ` depth=${sp.depth}` : ''} mode=${sp.mode}`;
    case 'redis':
      return (
        sp.servers
          .map(
            (s) =>
              `${s.scheme}://${s.host}${s.port !== null ? ':' + s.port : ''}${s.database !== undefined ? ' db=' + s.database : ''}${s.auth ? ' auth=<redacted>' : ''}`,
          )
          .join(', ') || '(no server)'
      );
    default:
      return redactSecrets(sp.value);
  }
}

function originText(cfg: AuditedConfig, key: string): string {
  const v = cfg.values[key];
  if (v === undefined) return '';
  if (v.origin === 'default') return 'default';
  return `${v.origin.file}${v.origin.line > 0 ? ':' + v.origin.line : ''}${v.locked === true ? ' (locked)' : ''}`;
}

function shown(cfg: AuditedConfig, key: string): string {
  if (key === 'session.save_path') return describeSavePath(cfg.savePath);
  const v = cfg.values[key]?.value;
  return v === undefined ? '(n/a)' : v === false ? '(unknown)' : redactSecrets(JSON.stringify(v));
}

/** Counts per severity. */
export function countBySeverity(findings: Finding[]): Record<Severity, number> {
  const c = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) c[f.severity]++;
  return c;
}

/** The readable report: per configuration the session settings with their origin, then the findings. */
export function renderTable(reports: HostReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`== ${printable(r.host)} (${printable(r.source)})${r.partial ? '  [PARTIAL: some input could not be read]' : ''}`);
    if (r.configs.length === 0) lines.push('   no PHP configuration found');
    for (const c of r.configs) {
      lines.push(
        `-- ${printable(c.id)}  PHP ${c.phpVersion}${c.phpVersionSource === 'assumed' ? ' (assumed)' : ''}  ini: ${printable(c.loadedFile ?? '(none)')}${c.scannedFiles.length > 0 ? ` + ${c.scannedFiles.length} scanned` : ''}${c.partial ? '  [partial]' : ''}`,
      );
      const rows = SESSION_REPORT_KEYS.map((k) => [k, shown(c, k), originText(c, k)] as const);
      const w1 = Math.max(...rows.map((x) => x[0].length));
      const w2 = Math.min(60, Math.max(...rows.map((x) => x[1].length)));
      for (const [k, v, o] of rows) lines.push(`   ${k.padEnd(w1)}  ${printable(v).padEnd(w2)}  ${printable(o)}`);
      if (c.runtime !== undefined && c.runtime.length > 0) {
        lines.push('   run time (application code), beside the configured value:');
        for (const r of c.runtime) lines.push(`     ${printable(runtimeLine(r))}`);
      }
    }
    for (const a of r.apps ?? []) lines.push(`   ${printable(appLine(a))}`);
    const sorted = [...r.findings].sort((a, b) => severityRank(b.severity) - severityRank(a.severity));
    lines.push(
      `   findings: ${
        sorted.length === 0
          ? 'none'
          : Object.entries(countBySeverity(sorted))
              .filter(([, n]) => n > 0)
              .map(([s, n]) => `${n} ${s}`)
              .join(', ')
      }`,
    );
    for (const f of sorted) {
      const loc = f.file !== undefined ? ` [${f.file}${f.line !== undefined ? ':' + f.line : ''}]` : '';
      lines.push(
        `   ${f.severity.toUpperCase().padEnd(8)} ${f.id}${f.config !== null ? ` (${f.config})` : ''}: ${printable(redactSecrets(f.message))}${printable(loc)}`,
      );
      lines.push(`            fix: ${printable(f.fix)}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** A run-time setting on one line: directive, value (redacted) or unresolved, where, and what PHP makes of it. */
export function runtimeLine(r: RuntimeValue): string {
  const name = r.directive ?? '(computed name)';
  const value =
    r.status === 'handler'
      ? `user handler ${r.handler ?? ''}`.trim()
      : r.value === null
        ? `unresolved: ${r.expression ?? 'computed'}`
        : JSON.stringify(redactValue(r.directive, r.value));
  const configured =
    r.configured === undefined
      ? ''
      : r.configured === false
        ? ' (configured: unknown)'
        : ` (configured: ${JSON.stringify(redactValue(r.directive, r.configured))})`;
  const status = r.status === 'refused' ? `refused: ${r.reason ?? ''}` : r.status;
  return `${name} = ${value}  ${r.via}() ${r.file}:${r.line}  ${status}${r.status === 'differs' || r.status === 'same' ? configured : ''}`;
}

/** One line about an application directory read. */
function appLine(a: AppReport): string {
  return `application ${a.dir}${a.realDir !== null && a.realDir !== a.dir ? ` (${a.realDir})` : ''}${a.implied ? ' [document root]' : ''}: ${a.files} PHP file(s) read, ${a.settings.length} run-time session setting(s)${a.problems.length > 0 ? `, ${a.problems.length} not read (audit-incomplete)` : ''}${a.notFollowed.length > 0 ? `, ${a.notFollowed.length} symbolic link(s) not followed` : ''}`;
}

/** A run-time value for JSON, secrets redacted. */
function runtimeJson(r: RuntimeValue): Record<string, unknown> {
  return {
    directive: r.directive,
    value: r.value === null ? null : redactValue(r.directive, r.value),
    status: r.status,
    via: r.via,
    file: r.file,
    line: r.line,
    ...(r.reason !== undefined ? { reason: redactSecrets(r.reason) } : {}),
    ...(r.configured !== undefined ? { configured: r.configured === false ? false : redactValue(r.directive, r.configured) } : {}),
    ...(r.expression !== undefined ? { expression: redactSecrets(r.expression) } : {}),
    ...(r.handler !== undefined ? { handler: r.handler } : {}),
  };
}

/**
 * JSON for one configuration: `values` maps each directive to what ini_get() returns (string, or false
 * for a name PHP does not know), with any auth= password replaced by `<redacted len=N>`.
 */
export function configJson(c: AuditedConfig): Record<string, unknown> {
  const values: Record<string, string | false> = {};
  const origins: Record<string, string> = {};
  for (const k of Object.keys(c.values).sort()) {
    const v = (c.values[k] as { value: string | false }).value;
    values[k] = v === false ? v : redactValue(k, v);
    origins[k] = originText(c, k);
  }
  const session: Record<string, unknown> = {};
  for (const k of SESSION_REPORT_KEYS)
    session[k] = {
      value: typeof c.values[k]?.value === 'string' ? redactValue(k, c.values[k]?.value as string) : (c.values[k]?.value ?? null),
      origin: originText(c, k),
      locked: c.values[k]?.locked === true,
    };
  return {
    id: c.id,
    sapi: c.sapi,
    pool: c.pool ?? null,
    directory: c.directory ?? null,
    php_version: c.phpVersion,
    php_version_source: c.phpVersionSource,
    loaded_file: c.loadedFile,
    scanned_files: c.scannedFiles,
    partial: c.partial,
    problems: c.problems,
    save_path: redactedSavePath(c.savePath),
    session,
    values,
    origins,
    ...(c.runtime !== undefined ? { runtime: c.runtime.map(runtimeJson) } : {}),
  };
}

/** The JSON report's `location` of a finding: `{ file, line? }`, or null when it points at no file. */
function locationOf(f: Finding): { file: string; line?: number } | null {
  return f.file !== undefined ? { file: f.file, ...(f.line !== undefined ? { line: f.line } : {}) } : null;
}

/** The `--json` document. */
export function renderJson(reports: HostReport[]): string {
  return JSON.stringify(
    {
      format: 'session-migrate-audit/1',
      partial: reports.some((r) => r.partial),
      hosts: reports.map((r) => ({
        host: r.host,
        source: r.source,
        partial: r.partial,
        problems: r.problems,
        configurations: r.configs.map(configJson),
        ...(r.apps !== undefined
          ? {
              applications: r.apps.map((a) => ({
                dir: a.dir,
                real_dir: a.realDir,
                implied_by_docroot: a.implied,
                php_files: a.files,
                problems: a.problems,
                not_followed: a.notFollowed,
                settings: a.settings.map((x) => ({
                  directive: x.directive,
                  value: x.value === null ? null : redactValue(x.directive, x.value),
                  via: x.via,
                  file: x.file,
                  line: x.line,
                  ...(x.expression !== undefined ? { expression: redactSecrets(x.expression) } : {}),
                  ...(x.handler !== undefined ? { handler: x.handler } : {}),
                })),
              })),
            }
          : {}),
        findings: r.findings.map((f) => ({
          rule_id: f.id,
          severity: f.severity,
          message: redactSecrets(f.message),
          fix: f.fix,
          config: f.config,
          location: locationOf(f),
        })),
      })),
    },
    null,
    2,
  );
}

const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
  info: 'note',
};

/** SARIF 2.1.0 log: one run, every rule in tool.driver.rules, one result per finding. */
export function renderSarif(reports: HostReport[], version: string): string {
  const results = reports.flatMap((r) =>
    r.findings.map((f) => ({
      ruleId: f.id,
      ruleIndex: RULES.findIndex((x) => x.id === f.id),
      level: SARIF_LEVEL[f.severity],
      message: { text: `${redactSecrets(f.message)}. Fix: ${f.fix}` },
      // A finding on a compiled default has no line: point at the configuration's loaded php.ini when
      // there is one (no region), else give no location at all (SARIF 3.27.12: locations may be empty).
      locations: ((file) =>
        file === undefined || file === null
          ? []
          : [
              {
                physicalLocation: {
                  artifactLocation: { uri: fileUri(file), uriBaseId: 'ROOT' },
                  ...(f.line !== undefined && f.line > 0 ? { region: { startLine: f.line } } : {}),
                },
              },
            ])(f.file ?? r.configs.find((c) => c.id === f.config)?.loadedFile),
      properties: { severity: f.severity, host: r.host, configuration: f.config },
    })),
  );
  return JSON.stringify(
    {
      $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
      version: '2.1.0',
      runs: [
        {
          tool: {
            driver: {
              name: 'session-migrate-audit',
              version,
              informationUri: 'https://github.com/session-migrate/session-migrate/blob/main/docs/audit-rules.md',
              rules: RULES.map((x) => ({
                id: x.id,
                name: x.id,
                shortDescription: { text: x.title },
                fullDescription: { text: x.title },
                help: { text: `Fix: ${x.fix}`, markdown: `**Fix:** ${x.fix}` },
                defaultConfiguration: { level: SARIF_LEVEL[x.severity] },
                properties: { severity: x.severity },
              })),
            },
          },
          // Artifact URIs are host paths without the leading '/', relative to ROOT (SARIF 3.14.14).
          originalUriBaseIds: { ROOT: { uri: 'file:///', description: { text: 'The root of the audited host or --root directory' } } },
          results,
        },
      ],
    },
    null,
    2,
  );
}

/** A host path as a SARIF URI relative to the ROOT uriBaseId (no leading slash: code-scanning tools resolve against a root). */
function fileUri(path: string): string {
  return path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
}

/** The document a report came from: the file of a `--from-collected` document (label `collected H from FILE`), else the report's source. */
function documentName(r: HostReport): string {
  const m = / from (.+)$/.exec(r.source);
  return m !== null ? m[1]! : r.source;
}

/**
 * One distinct name per report for fleet views. Hosts are told apart by name; when several reports
 * carry the same host name (cloned VMs, containers all called `localhost`), each of them is named
 * `host (document)` instead, and a warning names the collision. Same-named reports from the same
 * document get `#n` appended.
 * @returns `names[i]` for `reports[i]`, and one warning line per colliding host name.
 */
export function fleetHostNames(reports: HostReport[]): { names: string[]; warnings: string[] } {
  const byHost = new Map<string, number[]>();
  reports.forEach((r, i) => {
    const l = byHost.get(r.host) ?? [];
    l.push(i);
    byHost.set(r.host, l);
  });
  const names = reports.map((r) => r.host);
  const warnings: string[] = [];
  for (const [host, idx] of byHost) {
    if (idx.length < 2) continue;
    const seen = new Map<string, number>();
    for (const i of idx) {
      const base = `${host} (${documentName(reports[i]!)})`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      names[i] = n === 1 ? base : `${base} #${n}`;
    }
    warnings.push(
      `${idx.length} documents name the same host ${JSON.stringify(host)}: ${idx.map((i) => documentName(reports[i]!)).join(', ')} (counted as ${idx.length} hosts, named by document)`,
    );
  }
  return { names, warnings };
}

/** Finding keys `severity ruleId` of a fleet, highest severity first, then most hosts, then rule ID. */
function bySeverityThenCount(a: [string, Set<string>], b: [string, Set<string>]): number {
  const sev = (k: string) => severityRank(k.split(/\s+/)[0] as Severity);
  return sev(b[0]) - sev(a[0]) || b[1].size - a[1].size || (a[0] < b[0] ? -1 : 1);
}

/**
 * Fleet table: hosts per handler, per save path, per finding (highest severity first, then most
 * hosts). Reports with the same host name stay separate hosts (see fleetHostNames) and a `warning:`
 * line says so.
 */
export function renderFleet(reports: HostReport[]): string {
  const { names, warnings } = fleetHostNames(reports);
  const tally = (pick: (r: HostReport) => string[], order?: (a: [string, Set<string>], b: [string, Set<string>]) => number) => {
    const m = new Map<string, Set<string>>();
    reports.forEach((r, i) => {
      for (const k of new Set(pick(r))) {
        let s = m.get(k);
        if (s === undefined) {
          s = new Set();
          m.set(k, s);
        }
        s.add(names[i]!);
      }
    });
    return [...m.entries()].sort(order ?? ((a, b) => b[1].size - a[1].size || (a[0] < b[0] ? -1 : 1)));
  };
  const out: string[] = [
    `fleet: ${reports.length} hosts${reports.some((r) => r.partial) ? ` (${reports.filter((r) => r.partial).length} partial)` : ''}`,
  ];
  for (const w of warnings) out.push(`warning: ${printable(w)}`);
  const section = (title: string, rows: Array<[string, Set<string>]>) => {
    out.push('', title);
    if (rows.length === 0) out.push('  (none)');
    const w = Math.max(0, ...rows.map(([k]) => printable(k).length));
    for (const [k, hosts] of rows)
      out.push(
        `  ${printable(k).padEnd(w)}  ${String(hosts.size).padStart(4)} host(s): ${printable([...hosts].sort().slice(0, 8).join(', '))}${hosts.size > 8 ? ', …' : ''}`,
      );
  };
  section(
    'hosts per save handler',
    tally((r) => r.configs.map((c) => String(c.values['session.save_handler']?.value ?? '(n/a)'))),
  );
  section(
    'hosts per save path',
    tally((r) => r.configs.map((c) => `${String(c.values['session.save_handler']?.value ?? '')}: ${describeSavePath(c.savePath)}`)),
  );
  section(
    'hosts per finding',
    tally((r) => r.findings.map((f) => `${f.severity.padEnd(8)} ${f.id}`), bySeverityThenCount),
  );
  return out.join('\n') + '\n';
}

/** Fleet summary as JSON (host names as in fleetHostNames; `warnings` lists same-name collisions). */
export function fleetJson(reports: HostReport[]): Record<string, unknown> {
  const { names, warnings } = fleetHostNames(reports);
  const by = (pick: (r: HostReport) => string[]) => {
    const m: Record<string, string[]> = {};
    reports.forEach((r, i) => {
      for (const k of new Set(pick(r))) (m[k] ??= []).push(names[i]!);
    });
    return m;
  };
  return {
    hosts: names,
    partial_hosts: names.filter((_, i) => reports[i]!.partial),
    warnings,
    by_handler: by((r) => r.configs.map((c) => String(c.values['session.save_handler']?.value ?? '(n/a)'))),
    by_save_path: by((r) => r.configs.map((c) => describeSavePath(c.savePath))),
    by_finding: by((r) => r.findings.map((f) => f.id)),
  };
}

/**
 * The one shape of a finding and the one severity scale of every tool that reports findings: the
 * audit (packages/audit), codemod php (codemods/php) and codemod cdk (codemods/cdk).
 *
 * The scale is the audit's, documented with every rule in docs/audit-rules.md; its SARIF projection
 * (critical/high = `error`, medium = `warning`, low/info = `note`, SARIF 2.1.0 §3.27.10) is the
 * audit's `--format sarif`. Each tool says from which severity on a finding leaves its work
 * incomplete (its exit code 1): the audit's `--fail-on` (default high), codemod php high
 * (PHP_CODEMOD_FAILS_AT), codemod cdk medium (isBlocking).
 */

/** Severities, highest first. */
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
/** How serious a finding is, on the one scale of SEVERITIES. */
export type Severity = (typeof SEVERITIES)[number];

/** Rank for comparisons: critical 4 … info 0. */
export function severityRank(s: Severity): number {
  return SEVERITIES.length - 1 - SEVERITIES.indexOf(s);
}

/** True when `s` is `threshold` or more serious. */
export function isAtLeast(s: Severity, threshold: Severity): boolean {
  return severityRank(s) >= severityRank(threshold);
}

/**
 * One thing a tool found. Each tool adds the context it has (the audit: the configuration; codemod
 * cdk: the construct and property) in an interface that extends this one.
 */
export interface Finding {
  /** Stable ID of the rule that found it (the audit: docs/audit-rules.md; the codemods: their README sections). */
  id: string;
  severity: Severity;
  /** One line, safe to print: names files, directives and properties, never a secret or session contents. */
  message: string;
  /** What a person should do, when the tool did not (or must not) do it itself. */
  fix?: string;
  /** The file it is about, as the tool names files (relative to the directory it was run on, or absolute). */
  file?: string;
  /** 1-based line in `file`; 0 or absent when it is about the whole file. */
  line?: number;
  /** 1-based column (UTF-16 code units). */
  column?: number;
}

/** Runs one fixture of codemods/php/test/fixtures: input.php (+ options.json) through the codemod in a temp dir. */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCodemod, type CodemodReport } from '../src/index.ts';

export const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));

export interface FixtureOptions {
  /** Where input.php goes in the app directory. Default `index.php`. */
  path?: string;
  shortOpenTag?: boolean;
  /** --replace-custom-handler. */
  replaceCustomHandler?: boolean;
  /** --handler-namespace. */
  handlerNamespace?: string;
}

/** Findings as compact strings `severity id @line`, without the ones every fixture has. */
export function summarize(report: CodemodReport): { findings: string[]; skipped: boolean; incomplete: boolean } {
  return {
    findings: report.findings
      .filter((f) => f.id !== 'session-start' && f.id !== 'handler-bootstrap-missing')
      .map((f) => `${f.severity} ${f.id} @${f.line}`),
    skipped: report.skipped.length > 0,
    incomplete: report.incomplete,
  };
}

/**
 * Copies the fixture's input.php into a fresh app directory, runs the codemod (writing), and
 * returns the resulting bytes of the file and the report. `times` runs it that many times.
 */
export function runFixture(name: string, times = 1): { output: Buffer; report: CodemodReport; reports: CodemodReport[] } {
  const fixture = join(FIXTURES_DIR, name);
  const options: FixtureOptions = existsSync(join(fixture, 'options.json'))
    ? JSON.parse(readFileSync(join(fixture, 'options.json'), 'utf8')) as FixtureOptions
    : {};
  const app = mkdtempSync(join(tmpdir(), `codemod-php-${name}-`));
  try {
    const file = join(app, options.path ?? 'index.php');
    mkdirSync(dirname(file), { recursive: true });
    cpSync(join(fixture, 'input.php'), file);
    const reports: CodemodReport[] = [];
    for (let i = 0; i < times; i++) reports.push(runCodemod({
      dir: app, shortOpenTag: options.shortOpenTag === true,
      ...(options.replaceCustomHandler === true ? { replaceCustomHandler: true } : {}),
      ...(options.handlerNamespace !== undefined ? { handlerNamespace: options.handlerNamespace } : {}),
    }));
    return { output: readFileSync(file), report: reports[0]!, reports };
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
}

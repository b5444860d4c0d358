/**
 * Fixtures of the PHP codemod (codemods/php/test/fixtures), in the manner of rector's
 * `rules-tests/<Rule>/Fixture/`: one folder per rule (`<rule name>/`, rules/index.ts), plus
 * `registration/` (where and how the handler's require_once is written) and `skipped/` (files the
 * codemod must leave because they do not parse or lint). Each case folder holds:
 *
 * - `input.php` (or, for a configuration-file rule, `input.yaml`): one file of an app;
 * - `output.php`: the file after the codemod, byte for byte, or NO output file when the codemod must
 *   not change the file at all (its "must not change" cases: an output copy would hide a change);
 * - `report.json`: the findings, compact (`summarize`), whether it was skipped, whether incomplete;
 * - optional `options.json` (FixtureOptions).
 *
 * Case names are unique across folders, so tests name a case by its name alone.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCodemod, type CodemodReport } from '../src/index.ts';

export const FIXTURES_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Fixture folders that are not rules: the registration step and the files left alone. */
export const NON_RULE_FOLDERS = ['registration', 'skipped'] as const;

export interface FixtureOptions {
  /** Where the input goes in the app directory. Default `index.php`. */
  path?: string;
  shortOpenTag?: boolean;
  /** --replace-custom-handler. */
  replaceCustomHandler?: boolean;
  /** --handler-namespace. */
  handlerNamespace?: string;
}

/** One case: `folder/name`, its directory and its input file's name. */
export interface FixtureCase {
  folder: string;
  name: string;
  dir: string;
  input: string;
}

/** Every case, by name, in folder then name order. */
export const CASES: ReadonlyMap<string, FixtureCase> = new Map(
  readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .flatMap((folder) =>
      readdirSync(join(FIXTURES_DIR, folder), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
        .map((name): FixtureCase => {
          const dir = join(FIXTURES_DIR, folder, name);
          return { folder, name, dir, input: existsSync(join(dir, 'input.yaml')) ? 'input.yaml' : 'input.php' };
        }),
    )
    .map((c) => [c.name, c]),
);

/** The case named `name` (throws for an unknown name). */
export function fixture(name: string): FixtureCase {
  const c = CASES.get(name);
  if (c === undefined) throw new Error(`no fixture case ${name}`);
  return c;
}

/** The bytes of a file of a case. */
export function readFixture(name: string, file: string): Buffer {
  return readFileSync(join(fixture(name).dir, file));
}

/** The input of a case. */
export function fixtureInput(name: string): Buffer {
  return readFixture(name, fixture(name).input);
}

/** Whether the case has an output file (else the codemod must leave the input as it is). */
export function hasOutput(name: string): boolean {
  return existsSync(join(fixture(name).dir, 'output.php'));
}

/** What the file must be after the codemod: output.php, or the input itself for a must-not-change case. */
export function expectedOutput(name: string): Buffer {
  return hasOutput(name) ? readFixture(name, 'output.php') : fixtureInput(name);
}

export function fixtureOptions(name: string): FixtureOptions {
  const p = join(fixture(name).dir, 'options.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as FixtureOptions) : {};
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
 * Copies the fixture's input into a fresh app directory, runs the codemod (writing), and
 * returns the resulting bytes of the file and the report. `times` runs it that many times.
 */
export function runFixture(name: string, times = 1): { output: Buffer; report: CodemodReport; reports: CodemodReport[] } {
  const c = fixture(name);
  const options = fixtureOptions(name);
  const app = mkdtempSync(join(tmpdir(), `codemod-php-${name}-`));
  try {
    const file = join(app, options.path ?? 'index.php');
    mkdirSync(dirname(file), { recursive: true });
    cpSync(join(c.dir, c.input), file);
    // The generated handler bootstrap at its default place, as after `generate php`: without it every
    // case would also report handler-bootstrap-missing (medium, exit 1) and hide its own outcome.
    mkdirSync(join(app, 'session-migrate'));
    writeFileSync(
      join(app, 'session-migrate', 'session-migrate-bootstrap.php'),
      '<?php\n// Generated by session-migrate (fixture stand-in)\n',
    );
    const reports: CodemodReport[] = [];
    for (let i = 0; i < times; i++)
      reports.push(
        runCodemod({
          dir: app,
          shortOpenTag: options.shortOpenTag === true,
          ...(options.replaceCustomHandler === true ? { replaceCustomHandler: true } : {}),
          ...(options.handlerNamespace !== undefined ? { handlerNamespace: options.handlerNamespace } : {}),
        }),
      );
    return { output: readFileSync(file), report: reports[0]!, reports };
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
}

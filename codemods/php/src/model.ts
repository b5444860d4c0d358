/**
 * The shapes of the PHP codemod's analysis: what the analysis of one file returns (findings, edits,
 * the include/session events the registration plan reads, where a require could go) and what it
 * takes. Pure data; analyze.ts and the rules (rules/) fill them in.
 */
import { CODEMOD_FAILS_AT, type Finding as CommonFinding, type Severity, type TextEdit } from '@session-migrate/common';
import type { ParseOptions, ParsedSource } from './source.ts';
import type { SecretRange } from './redis-secrets.ts';

/**
 * One thing the codemod found: @session-migrate/common's Finding, always with a file and a line.
 * Severities (the one scale of common/finding.ts): `high`: the migration is not complete until
 * someone acts; `medium`: a person must review it; both exit 1 (PHP_CODEMOD_FAILS_AT); `info`: nothing to do. `id` values:
 * session-start, files-handler-call-removed, files-handler-call-neutralized, session-ini-kept,
 * session-getter, dynamic-value, dynamic-ini-option, other-save-handler, other-save-path,
 * custom-handler-registered, custom-handler-replaced, generated-handler-registration, framework-config, session-start-unreached, codemod-target-locked,
 * session-callable (a first-class callable `session_start(...)`, `ini_set(...)`: a Closure, no call),
 * session-string-callable (`call_user_func('ini_set', ...)`: a session function called through a string),
 * pool-save-path-locked,
 * namespace-function-elsewhere (`ini_set()` in namespace App, where another file declares App\ini_set()),
 * include-unresolved, parse-error, lint-failed, symlink-skipped, overlapping-edit, handler-registered,
 * handler-already-registered, no-session-start, bootstrap-not-reached, handler-bootstrap-missing,
 * insert-impossible, file-changed-meanwhile, write-failed.
 */
export interface Finding extends CommonFinding {
  /** File path relative to the app directory, `/`-separated. */
  file: string;
  /** 1-based line, 0 when the finding is about the whole file. */
  line: number;
}

export type { Severity };

/**
 * From this severity on, a finding leaves the codemod's work incomplete (CodemodReport.incomplete,
 * exit 1): the codemods' one rule, CODEMOD_FAILS_AT (@session-migrate/common codemod-outcome.ts).
 */
export const PHP_CODEMOD_FAILS_AT: Severity = CODEMOD_FAILS_AT;

/** Replace bytes [start, end) of the file with `text` (binary string): common's TextEdit. */
export type Edit = TextEdit;

/** An include/require in source order; `candidates` are absolute paths tried in order, null when not static. */
export interface IncludeEvent {
  kind: 'include';
  offset: number;
  line: number;
  once: boolean;
  candidates: string[] | null;
  /** Source text of the path expression (binary string), for reports and the handler check. */
  raw: string;
}

/** session_start() or session_set_save_handler() (a custom handler), in source order. */
export interface SessionStartEvent {
  kind: 'session_start';
  offset: number;
  line: number;
}

/**
 * session_set_save_handler(). `needsBootstrap`: the call registers the generated handler through
 * EncryptedRedisSessionHandler::registeredHandler() (rewritten now or earlier), so the bootstrap must
 * be required before it runs, as before session_start(); otherwise it is a custom handler left alone.
 */
export interface CustomHandlerEvent {
  kind: 'custom_handler';
  offset: number;
  line: number;
  needsBootstrap?: boolean;
}

export type FileEvent = IncludeEvent | SessionStartEvent | CustomHandlerEvent;

/** Where a `require_once` of the handler bootstrap goes in this file, and how to write it. */
export interface InsertPoint {
  offset: number;
  /**
   * 'line' = own line after the open tag; 'after-statement' = EOL first (after declare/namespace);
   * 'inline' = after an open tag that ends in a blank, code follows on the line; 'inline-nospace' =
   * after `<?` with no blank in the tag (short open tag); 'php-block' = `<?php ... ?>` before HTML.
   */
  style: 'line' | 'after-statement' | 'inline' | 'inline-nospace' | 'php-block';
  /** Indentation of the inserted line ('after-statement' inside `namespace X {`: that of the block's first line). */
  indent?: string;
}

export interface FileAnalysis {
  /** Relative path, `/`-separated. */
  file: string;
  findings: Finding[];
  edits: Edit[];
  events: FileEvent[];
  /** Only declarations at the top level (classes, functions, use, const): not an entry point. */
  declarationsOnly: boolean;
  insertPoint: InsertPoint | null;
  /** Reason when insertPoint is null. */
  insertProblem?: string;
  eol: '\n' | '\r\n';
  /**
   * Byte ranges of the text that hold a Redis password (redis-secrets.ts RedisSecretFinder: phpredis
   * credentials, the variables and constants that hold them, names that look like a secret): hidden
   * in the printed diff, never in the file.
   */
  secrets: SecretRange[];
}

/** Inputs of analyzeFile. */
export interface AnalyzeInput {
  /** File text as a binary string (one char per byte). */
  text: string;
  /** Absolute path of the file (for __DIR__ / __FILE__). */
  absPath: string;
  /** Absolute app directory (relative includes also try it, as the entry script's directory). */
  rootDir: string;
  /** Relative path for reports. */
  rel: string;
  parse?: ParseOptions;
  /**
   * Opt-in rewrite of custom handler registrations: the PHP namespace of the generated
   * EncryptedRedisSessionHandler class (e.g. `SessionMigrate`). Absent: they are only reported.
   */
  replaceCustomHandler?: { namespace: string };
  /**
   * Functions declared inside a namespace by the app's files: lower-cased fully qualified name
   * (function-names.ts namespacedFunctionDeclarations) → the file declaring it (relative path). An
   * unqualified call in that namespace may call one of them rather than PHP's function: it is
   * reported and not changed.
   */
  namespacedFunctions?: ReadonlyMap<string, string>;
  /** The file already parsed (parsePhp of `text` with `parse`), so it is not parsed twice. */
  parsed?: ParsedSource;
}

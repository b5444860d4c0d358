/**
 * What a rule of the PHP codemod is, and what it works on. The model is rector's (one rule per class,
 * each with its `Fixture/` folder): one module per rule in this folder, listed in rules/index.ts, each
 * with its fixture folder `test/fixtures/<rule name>/` (test/fixtures.test.ts checks both ways).
 *
 * A rule reads the calls of the global functions it names (`functions` + visitCall) and/or AST nodes of
 * some kinds (`nodeKinds` + visitNode), and reports findings, proposes edits and records the events
 * the registration plan reads, all through the FileContext of the file being analysed. Rules are pure:
 * no file system, no PHP.
 */
import type { Severity } from '@session-migrate/common';
import type { AnalyzeInput, Edit, FileEvent, Finding } from '../model.ts';
import type { WalkContext } from '../php-ast.ts';
import { lineOf, type PhpNode, type Token } from '../source.ts';

/** A call of a global function a rule reads, e.g. `\ini_set('session.save_handler', 'files')`. */
export interface FunctionCall {
  /** The function name, lower-cased, without a leading `\` (PHP function names are case-insensitive). */
  name: string;
  /** The `call` node, its callee name node and its arguments. */
  node: PhpNode;
  what: PhpNode;
  args: PhpNode[];
  /** Byte offset of the callee's name, and just past the call's `)` (from the tokens: BUG-27). */
  start: number;
  end: number;
  /** Where the call sits: its parent node (a statement, `@`, an expression), that one's parent... */
  parent: WalkContext | null;
}

/** One rule (see the module comment). */
export interface Rule {
  /** Stable name: the module's file name (rules/<name>.ts) and its fixture folder (test/fixtures/<name>/). */
  name: string;
  /** What the rule looks for and what it does about it, in one sentence (docs/codemods.md, "codemod php", says more). */
  description: string;
  /** The finding IDs it reports. */
  findings: readonly string[];
  /** Global functions (lower case) whose calls it reads; a call goes to the rules in RULES order until one handles it. */
  functions?: readonly string[];
  /** @returns true when the call is handled: no later rule sees it. */
  visitCall?(call: FunctionCall, file: FileContext): boolean;
  /** AST node kinds (php-parser) it reads. */
  nodeKinds?: readonly string[];
  visitNode?(node: PhpNode, parent: WalkContext | null, file: FileContext): void;
}

/** The file under analysis, as the rules see it, and what they found in it so far. */
export class FileContext {
  readonly findings: Finding[] = [];
  readonly edits: Edit[] = [];
  readonly events: FileEvent[] = [];

  constructor(
    readonly input: AnalyzeInput,
    readonly tokens: readonly Token[],
  ) {}

  /** The file's text, a binary string (one char per byte). */
  get text(): string {
    return this.input.text;
  }

  /** The file's path in reports (relative to the app directory, `/`-separated). */
  get rel(): string {
    return this.input.rel;
  }

  /** 1-based line of a byte offset. */
  line(offset: number): number {
    return lineOf(this.input.text, offset);
  }

  /** Reports a finding at `offset` (a negative offset: about the whole file, line 0). */
  find(offset: number, id: string, severity: Severity, message: string, fix?: string): void {
    this.findings.push({
      file: this.rel,
      line: offset < 0 ? 0 : this.line(offset),
      id,
      severity,
      message,
      ...(fix !== undefined ? { fix } : {}),
    });
  }

  edit(edit: Edit): void {
    this.edits.push(edit);
  }

  event(event: FileEvent): void {
    this.events.push(event);
  }
}

/** A rule that reads a configuration file of the application (not PHP) as text. */
export interface ConfigFileRule {
  /** Stable name: the module's file name and its fixture folder, as for Rule. */
  name: string;
  description: string;
  findings: readonly string[];
  /** Whether the rule reads this file (its path relative to the app directory, `/`-separated). */
  matches(rel: string): boolean;
  analyze(text: string, rel: string): Finding[];
}

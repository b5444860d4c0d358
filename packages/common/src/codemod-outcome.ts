/**
 * The one exit rule of the codemods (codemod php, codemod cdk): what a run leaves for a person, the
 * exit code and the last line the CLI prints. Both codemods' reports (`incomplete`) and both CLI
 * commands (packages/cli/src/commands-codemod-*.ts) go through here; docs/operator-guide.md (exit
 * codes) and docs/codemods.md state the same rule.
 *
 * - exit 0, `complete: nothing left to decide by hand`: no skipped file and no finding of severity
 *   medium or above;
 * - exit 1, `incomplete: ...`: a high or medium finding, or a skipped file (every skip needs a
 *   person: a file that does not parse, fails `php -l`, changed meanwhile, is not UTF-8, or a symbolic
 *   link that was not followed, whose target the codemod never looked at);
 * - exit 2: a file to change cannot be rewritten (checkRewritable, rewrite-files.ts): the real run
 *   refuses before writing anything, and `--dry-run` reports the same refusal (same line, exit 2)
 *   after its verdict line `incomplete: refused: ...` (a dry run ends with a verdict as any run does).
 */
import { UserFacingError } from './errors.ts';
import { isAtLeast, type Severity } from './finding.ts';

/** From this severity on, a codemod finding is left for a person (exit 1). */
export const CODEMOD_FAILS_AT: Severity = 'medium';

/** Whether a codemod finding leaves something for a person (CODEMOD_FAILS_AT or above). */
export function isLeftForPerson(f: { severity: Severity }): boolean {
  return isAtLeast(f.severity, CODEMOD_FAILS_AT);
}

/**
 * Whether a codemod run leaves something for a person: a finding at CODEMOD_FAILS_AT or above, or
 * any skipped file. `skipped`: how many files were skipped.
 */
export function codemodIncomplete(findings: readonly { severity: Severity }[], skipped: number): boolean {
  return skipped > 0 || findings.some(isLeftForPerson);
}

/** The last line of a codemod run that leaves nothing for a person. */
export const CODEMOD_COMPLETE_LINE = 'complete: nothing left to decide by hand';

/** The last line of a codemod run that leaves something for a person (exit 1). */
export const CODEMOD_INCOMPLETE_LINE = 'incomplete: review the high and medium findings above, and any skipped file';

/**
 * The last line of a dry run whose real run would refuse (exit 2): the same verdict form as the
 * other runs (`incomplete: ...`, a file is left for a person), the refusal itself on stderr.
 */
export const CODEMOD_REFUSED_LINE = 'incomplete: refused: the real run would change nothing (the reason follows)';

/**
 * Ends a codemod command: prints its last line (unless `print` is null, as with `--json`) and returns
 * its exit code, 0 or 1 (codemodIncomplete), or throws the refusal of a dry run.
 * @param report `incomplete` from the codemod's report; `refused`: checkRewritable's message when a
 *   dry run found a file the real run refuses (rewriteRefusal).
 * @throws UserFacingError (exit 2) with `refused`, the line the real run prints, after the last line
 *   (CODEMOD_REFUSED_LINE, of the same `incomplete: ...` form as a run that leaves something).
 */
export function finishCodemod(
  report: { incomplete: boolean; refused?: string | undefined },
  print: ((line: string) => void) | null,
): 0 | 1 {
  if (report.refused !== undefined) {
    // The verdict line, as every run ends with one: a refusal leaves a file for a person.
    print?.(CODEMOD_REFUSED_LINE);
    throw new UserFacingError(report.refused);
  }
  print?.(report.incomplete ? CODEMOD_INCOMPLETE_LINE : CODEMOD_COMPLETE_LINE);
  return report.incomplete ? 1 : 0;
}

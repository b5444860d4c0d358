/**
 * Several sources on the command line and in plans (issue 13 item 3): opening the sources given
 * with `--source` (repeatable) or recorded in a plan, refusing a source given twice or two that are
 * the same directory or the same keys, and the one table every command prints per source.
 */
import { UserFacingError, printable } from '@session-migrate/common';
import type { Plan, PlanSource } from '@session-migrate/migrate';
import {
  checkDistinctSources, checkSourceTargetPrefixes, openAnySource, openRecordedRedisSource, openSource, sourceLabel,
  type RedisSourceDescription, type Source, type SourceDescription,
} from '@session-migrate/sources';
import type { ConnectionDescription, TlsFiles } from '@session-migrate/redis';
import { warn } from './redis-options.ts';

export interface OpenSourcesOptions {
  maxSessionBytes: number;
  /** `--source-tls-*` (every Redis source of the command). */
  tls?: TlsFiles;
  /** purge deletes source keys: write access, the source-purge ACL rule. */
  write?: boolean;
}

/** Closes every source (errors of one do not keep the others open). */
export async function closeSources(sources: readonly Source[]): Promise<void> {
  await Promise.allSettled(sources.map((s) => s.close()));
}

/**
 * Opens the sources given on the command line, in order.
 * @throws UserFacingError for a source given twice (the same words), two that are the same directory
 *   (a symbolic link or bind mount) or the same keys, or one that cannot be opened; nothing stays open.
 */
export async function openSources(specs: readonly string[], options: OpenSourcesOptions): Promise<Source[]> {
  const seen = new Set<string>();
  for (const spec of specs) {
    const words = spec.trim();
    if (seen.has(words)) throw new UserFacingError(`--source ${printable(words.replace(/[?].*$/s, ''))} is given twice: give each source once`);
    seen.add(words);
  }
  const opened: Source[] = [];
  try {
    for (const spec of specs) {
      opened.push(await openAnySource(spec, {
        maxSessionBytes: options.maxSessionBytes, tls: options.tls ?? {}, onWarning: warn,
        ...(options.write === true ? { write: true, aclCommand: 'source-purge' as const } : {}),
      }));
    }
    checkDistinctSources(opened.map((s) => s.describe()));
    return opened;
  } catch (err) {
    await closeSources(opened);
    throw err;
  }
}

/**
 * Opens every source a plan recorded, in the plan's order: a files source by its save_path (its
 * directory and depth must still be what the plan says), a Redis source by its recorded connection.
 * @throws UserFacingError as openSources; nothing stays open.
 */
export async function openPlanSources(plan: Plan, planPath: string, options: OpenSourcesOptions): Promise<Source[]> {
  const opened: Source[] = [];
  try {
    for (const recorded of plan.sources) {
      if (recorded.kind === 'redis') {
        opened.push(await openRecordedRedisSource(recorded, {
          maxSessionBytes: options.maxSessionBytes, ...(options.tls !== undefined ? { tls: options.tls } : {}),
          ...(options.write === true ? { write: true, aclCommand: 'source-purge' as const } : {}),
        }));
        continue;
      }
      const files = openSource(`files:${recorded.savePath}`, { maxSessionBytes: options.maxSessionBytes });
      opened.push(files);
      const now = files.describe();
      if (now.dir !== recorded.dir || now.depth !== recorded.depth) {
        throw new UserFacingError(`plan ${planPath}: source.savePath and source.dir disagree (edited by hand?); re-run plan`);
      }
    }
    return opened;
  } catch (err) {
    await closeSources(opened);
    throw err;
  }
}

/** Refuses a Redis source whose keys overlap the target's prefix on the same data. */
export function checkSourcesAgainstTarget(sources: readonly Source[], target: ConnectionDescription & { prefix: string }): void {
  for (const s of sources) {
    const d = s.describe();
    if (d.kind === 'redis') checkSourceTargetPrefixes(d as RedisSourceDescription, target);
  }
}

/**
 * The source the generated handler reads through (plan --read-through): the plan's one files
 * source. The handler reads one legacy save_path (docs/runbook.md); Redis sources are never read
 * through (apply copies them).
 * @throws UserFacingError with no files source, or more than one.
 */
export function readThroughSource(sources: readonly SourceDescription[]): SourceDescription {
  const files = sources.filter((d) => d.kind === 'files');
  if (files.length === 1) return files[0]!;
  if (files.length === 0) throw new UserFacingError('--read-through: the generated handler reads through a legacy session directory, and no --source is a files: source; plan without --read-through (apply copies the Redis source)');
  throw new UserFacingError(`--read-through: the generated handler reads through one legacy save_path, and ${files.length} sources are files: sources (${files.map(sourceLabel).join(', ')}); plan without --read-through (apply copies every source; deploy the handler in strict mode once apply and verify pass), or give --read-through only the directory PHP writes to now (copy the others with their own plan, before the switch)`);
}

/** A source in a one-line table: its number, label and what it is (never a password). */
export function sourceRowLabel(d: SourceDescription | PlanSource, index: number): string {
  return `#${index + 1} ${sourceLabel(d)}`;
}

/**
 * A table with one row per source and a total row: column headers, right-aligned numbers. Lines
 * start with `indent`.
 */
export function sourcesTable(headers: readonly string[], rows: ReadonlyArray<{ label: string; values: readonly (number | string)[] }>, indent = '    '): string[] {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r.values[c] ?? '').length)));
  const labelWidth = Math.max(6, ...rows.map((r) => r.label.length));
  const line = (label: string, cells: readonly string[]): string => `${indent}${label.padEnd(labelWidth)}  ${cells.map((v, c) => v.padStart(widths[c]!)).join('  ')}`.trimEnd();
  return [line('source', headers), ...rows.map((r) => line(printable(r.label), r.values.map(String)))];
}

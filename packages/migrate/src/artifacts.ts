/**
 * The PHP artifacts a plan asks for: rendered by @session-migrate/generate from the plan's target,
 * written by apply into the plan's artifacts directory.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { renderArtifacts, writeArtifacts, type Artifact } from '@session-migrate/generate';
import type { Plan } from './plan.ts';

/** What apply did (or, in a dry run, would do) with one artifact. */
export interface ArtifactResult {
  /** Absolute path. */
  path: string;
  status: 'written' | 'unchanged' | 'would-write';
}

/** Renders the handler class, bootstrap and ini fragment for a plan (pure: no file is touched). */
export function artifactsForPlan(plan: Pick<Plan, 'target' | 'artifacts' | 'key'>): Artifact[] {
  return renderArtifacts({
    installDir: plan.artifacts.installDir,
    // phpredis takes TLS as a `tls://` scheme on the host.
    redis: { host: plan.target.tls ? `tls://${plan.target.host}` : plan.target.host, port: plan.target.port, db: plan.target.db, prefix: plan.target.prefix },
    expectedKeyIds: [plan.key.keyId],
  });
}

function sameOnDisk(path: string, a: Artifact): boolean {
  try {
    return (statSync(path).mode & 0o777) === a.mode && readFileSync(path, 'utf8') === a.contents;
  } catch {
    return false;
  }
}

/**
 * Writes a plan's artifacts (atomically, only those that differ), or with dryRun reports which would
 * be written.
 */
export function applyArtifacts(plan: Pick<Plan, 'target' | 'artifacts' | 'key'>, dryRun: boolean): ArtifactResult[] {
  const dir = plan.artifacts.outDir;
  const artifacts = artifactsForPlan(plan);
  if (dryRun) {
    return artifacts.map((a) => {
      const path = join(dir, a.path);
      return { path, status: sameOnDisk(path, a) ? 'unchanged' : 'would-write' };
    });
  }
  const result = writeArtifacts(dir, artifacts);
  return artifacts.map((a) => ({ path: join(dir, a.path), status: result.changed.includes(a.path) ? 'written' : 'unchanged' }));
}

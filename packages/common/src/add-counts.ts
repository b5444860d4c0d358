/**
 * The sum of two records of counts, key by key (a key missing from one counts 0 there): how several
 * sources' or directories' counts by reason or outcome are added up (plan's skipped/formats, purge's
 * and rollback's per-source counts). Returns a new record; neither argument is changed.
 */
export function addCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** docs/audit-rules.md lists exactly the rules of the catalogue, with the same severities. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RULES } from '@session-migrate/audit';

describe('docs/audit-rules.md', () => {
  it('has one row per rule, same id and severity, in catalogue order', () => {
    const text = readFileSync(join(import.meta.dirname, '../../../docs/audit-rules.md'), 'utf8');
    const rows = [...text.matchAll(/^\| `([a-z0-9-]+)` \| (critical|high|medium|low|info) \|/gm)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual(RULES.map((r) => [r.id, r.severity]));
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
    for (const r of RULES) expect(r.fix.length).toBeGreaterThan(10);
  });
});

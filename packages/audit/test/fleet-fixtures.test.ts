/**
 * Fixture-driven fleet tests: every directory in fixtures-fleet/ holds collected documents
 * (`session-migrate-collect/1`), case.json lists them in command-line order, and expected-fleet.txt /
 * expected-fleet.json are the `--fleet` table and JSON for them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditHost, defaultEngine, fleetJson, parseCollected, renderFleet, loadPhpParser } from '@session-migrate/audit';

// Audits that read application code (--app, document roots) need codemod php's parser loaded.
await loadPhpParser();

const here = dirname(new URL(import.meta.url).pathname);
const dir = join(here, 'fixtures-fleet');

describe('fleet fixtures', () => {
  for (const name of readdirSync(dir).sort()) {
    it(name, () => {
      const c = JSON.parse(readFileSync(join(dir, name, 'case.json'), 'utf8')) as { documents: string[] };
      const engine = defaultEngine();
      const reports = c.documents.map((file) => {
        const h = parseCollected(readFileSync(join(dir, name, file), 'utf8'), file);
        return auditHost({ fs: h.fs, engine, host: h.host, env: {}, docroots: h.docroots, probe: h.probe });
      });
      expect(renderFleet(reports)).toBe(readFileSync(join(dir, name, 'expected-fleet.txt'), 'utf8'));
      expect(fleetJson(reports)).toEqual(JSON.parse(readFileSync(join(dir, name, 'expected-fleet.json'), 'utf8')));
    });
  }
});

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SAVE_PATH_FAILS_AT, parseFilesSavePath } from '../src/index.ts';
import { caseFile } from '../../../test/support/fixtures.ts';

const bug15 = JSON.parse(readFileSync(caseFile('BUG-15', 'expected.json'), 'utf8')) as {
  expected_toolkit: {
    parse_save_path: Record<
      string,
      { depth: number; mode_octal?: string; path?: string; finding?: string | { id: string; severity: string } }
    >;
  };
};

/**
 * The case files name severities as PHP's failure modes (`error`: PHP fails with the value,
 * `warning`: PHP reads it otherwise than written); on the one severity scale of
 * @session-migrate/common they are SAVE_PATH_FAILS_AT (`high`) and `medium`.
 */
const ON_THE_ONE_SCALE: Record<string, string> = { error: SAVE_PATH_FAILS_AT, warning: 'medium', info: 'info' };

describe('parseFilesSavePath (test/fixtures/cases/BUG-15)', () => {
  for (const [input, want] of Object.entries(bug15.expected_toolkit.parse_save_path)) {
    it(JSON.stringify(input), () => {
      const got = parseFilesSavePath(input);
      expect(got.depth).toBe(want.depth);
      if (want.mode_octal !== undefined) expect('0' + got.mode.toString(8)).toBe(want.mode_octal);
      if (want.path !== undefined) expect(got.path).toBe(want.path);
      if (typeof want.finding === 'object') {
        expect(got.findings.map((f) => [f.id, f.severity])).toContainEqual([want.finding.id, ON_THE_ONE_SCALE[want.finding.severity]]);
      } else if (typeof want.finding === 'string') {
        expect(got.findings.map((f) => f.id)).toContain('save-path-non-numeric-depth');
      } else {
        expect(got.findings).toEqual([]);
      }
    });
  }
  it('plain path and empty value', () => {
    expect(parseFilesSavePath('/var/lib/php/sessions')).toMatchObject({
      depth: 0,
      mode: 0o600,
      path: '/var/lib/php/sessions',
      findings: [],
    });
    expect(parseFilesSavePath('').findings[0]?.id).toBe('save-path-empty');
  });
});

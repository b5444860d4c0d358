import { describe, expect, it } from 'vitest';
import { redactSessionFileNames } from '../src/errors.ts';

describe('redactSessionFileNames: no replayable session ID in an error line', () => {
  it("shortens every session file name in free text, as Node's system errors quote them", () => {
    expect(redactSessionFileNames("EPERM: operation not permitted, unlink '/var/lib/php/sessions/sess_abcdef0123456789ABCDEF'")).toBe(
      "EPERM: operation not permitted, unlink '/var/lib/php/sessions/sess_abcdef…'",
    );
    expect(redactSessionFileNames('sess_k3x,9-QQQQQQQQQ and /tmp/x/sess_zzzzzzzzzz.bak')).toBe('sess_k3x,9-… and /tmp/x/sess_zzzzzz….bak');
  });

  it('leaves alone what is not a session file name: short IDs, an already shortened one, words ending in sess_', () => {
    for (const text of ['sess_abc', 'sess_abcdef…', 'mysess_abcdefghijkl', 'a session file', 'process_abcdefghij']) {
      expect(redactSessionFileNames(text)).toBe(text);
    }
  });
});

/**
 * plan's last line (planWrittenLine, packages/cli/src/commands/plan.ts): a strict plan says to run
 * apply; a read-through plan says to generate and deploy the handler first, since docs/runbook.md
 * (phase 1) forbids apply before every host runs read-through.
 */
import { describe, expect, it } from 'vitest';
import { planWrittenLine } from '../src/commands/plan.ts';

describe('plan written line', () => {
  it('a strict plan: run apply', () => {
    expect(planWrittenLine('p.json', false)).toBe("  plan        written to p.json; run 'session-migrate apply --plan p.json'");
  });

  it('a read-through plan: generate php and deploy before apply', () => {
    const line = planWrittenLine('p.json', true);
    expect(line).toBe(
      "  plan        written to p.json; read-through: first 'session-migrate generate php --plan p.json', deploy it to every PHP host, then 'session-migrate apply --plan p.json' (docs/runbook.md)",
    );
    expect(line.indexOf('generate php')).toBeLessThan(line.indexOf('apply'));
  });
});

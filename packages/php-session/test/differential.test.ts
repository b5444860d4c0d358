/**
 * Differential tests against real PHP: every payload is decoded by PHP's own session_decode() (through
 * test/fixtures/cases/tools/php-session-norm.php) and by decodeSession(); acceptance and the value model must
 * agree. Corpus: every shared input file under every handler, payloads PHP itself encodes from varied
 * $_SESSION arrays (fixtures/gen-sessions.php), and seeded mutations of those (truncations, byte
 * changes, length/back-reference digit changes) to compare PHP's rejection rules too.
 */
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { SERIALIZE_HANDLERS, classifySession, decodeSession } from '../src/index.ts';
import { type OracleResult, lowerEnums, mapLimit, oracleView, phpDecodeOk, runOracle, runOracleBatch, show } from './helpers.ts';
import { type Case, crossCases, edgeCases, generatedCases, mutatedCases, sharedCases } from './corpus.ts';

const shared: Case[] = sharedCases();
const generated: Case[] = generatedCases();
const cross: Case[] = crossCases(generated);
const mutated: Case[] = mutatedCases(generated);
const edge: Case[] = edgeCases;

/**
 * Known, documented differences that come from PHP needing the application's classes: an enum that is
 * not loaded / a case that does not exist, or an igbinary Serializable object without its class. PHP
 * fails such payloads; we decode them and warn (classification assumes the app has its classes).
 */
function allowedDivergence(c: Case, oracle: OracleResult, warnings: string[]): boolean {
  const php = oracle.warnings.join('\n');
  if (warnings.includes('enum-requires-class') && /not found|Undefined constant|not an enum|does not exist/.test(php)) return true;
  if (c.handler === 'igbinary' && warnings.includes('serializable-object') && /has no unserializer/.test(php)) return true;
  return false;
}

/** null when ours agrees with PHP, else a description (no PHP crash cases: those are reported apart). */
function compare(c: Case, oracle: OracleResult): string | null {
  const ours = decodeSession(c.bytes, c.handler);
  const cls = classifySession(c.bytes, c.handler);
  if (cls.phpAccepts !== oracle.decodeOk) {
    if (ours.ok && allowedDivergence(c, oracle, ours.warnings)) return null;
    return (
      `${c.label}: PHP decode_ok=${oracle.decodeOk}, ours phpAccepts=${cls.phpAccepts} ` +
      `(${ours.ok ? 'ok' : ours.error}) php=${oracle.raw.slice(0, 300)}`
    );
  }
  if (!oracle.decodeOk) return ours.ok ? `${c.label}: PHP rejects, we decoded` : null;
  if (!ours.ok) return `${c.label}: PHP accepts, we fail: ${ours.error}`;
  const mine = oracleView(ours.entries);
  const php = lowerEnums(oracle.session);
  if (!isDeepStrictEqual(mine, php)) {
    return `${c.label}: value differs\n  ours ${show(mine).slice(0, 600)}\n  php  ${show(php).slice(0, 600)}`;
  }
  return null;
}

const oracle = new Map<Case, OracleResult>();

describe('differential: decodeSession vs PHP 8.2 session_decode()', () => {
  beforeAll(async () => {
    // the shared and PHP-encoded payloads go through the norm script itself, one process each
    const direct = [...shared, ...generated, ...edge];
    const results = await mapLimit(direct, 4, (c) => runOracle(c.bytes, c.handler));
    direct.forEach((c, i) => oracle.set(c, results[i]!));
    // the mutation corpus through the batch form (same printing code, one process for many payloads)
    const batched = [...cross, ...mutated];
    const batch = runOracleBatch(batched);
    batched.forEach((c, i) => oracle.set(c, batch[i]!));
  }, 300_000);

  it('the corpus is non-trivial (generator ran, every handler present)', () => {
    expect(generated.length).toBeGreaterThan(60);
    for (const h of SERIALIZE_HANDLERS) expect(generated.filter((c) => c.handler === h).length).toBeGreaterThan(15);
    expect(mutated.length).toBeGreaterThan(500);
  });

  it('PHP itself decodes every generated payload (the oracle works)', () => {
    const failed = generated.filter((c) => !oracle.get(c)!.parsed || !oracle.get(c)!.decodeOk).map((c) => c.label);
    expect(failed).toEqual([]);
  });

  it.each(shared.map((c) => [c.label, c] as const))('shared input %s', (_label, c) => {
    const o = oracle.get(c)!;
    expect(o.parsed, o.raw).toBe(true);
    expect(compare(c, o)).toBeNull();
  });

  it.each(generated.map((c) => [c.label, c] as const))('PHP-encoded %s', (_label, c) => {
    const o = oracle.get(c)!;
    expect(o.parsed, o.raw).toBe(true);
    expect(compare(c, o)).toBeNull();
  });

  it.each(edge.map((c) => [c.label, c] as const))('edge case %s', (_label, c) => {
    const o = oracle.get(c)!;
    if (o.parsed) {
      expect(compare(c, o)).toBeNull();
    } else {
      // PHP's printer cannot show it (it threw, or $_SESSION is not an array): compare the verdict only
      expect(classifySession(c.bytes, c.handler).phpAccepts).toBe(phpDecodeOk(c.bytes, c.handler));
    }
  });

  it('PHP-encoded payloads read with another handler: same verdict (and values when PHP accepts)', () => {
    const problems = cross
      .map((c) => {
        const o = oracle.get(c)!;
        if (!o.parsed) return `${c.label}: no oracle output ${o.raw}`;
        return compare(c, o);
      })
      .filter((p) => p !== null);
    expect(problems).toEqual([]);
    // the serializer-mismatch case of BUG-08, for all pairs: PHP rejects nearly all of them
    expect(cross.filter((c) => oracle.get(c)!.decodeOk).length).toBeLessThan(cross.length / 4);
  });

  it.each(SERIALIZE_HANDLERS)('mutated payloads (%s): accept/reject and values match PHP', (handler) => {
    const mine = mutated.filter((c) => c.handler === handler);
    const problems: string[] = [];
    let compared = 0;
    for (const c of mine) {
      const o = oracle.get(c)!;
      if (!o.parsed) {
        // PHP's printer died (e.g. recursing through a reference cycle); ours must still terminate.
        decodeSession(c.bytes, c.handler);
        continue;
      }
      compared++;
      const p = compare(c, o);
      if (p) problems.push(p);
    }
    expect(compared).toBeGreaterThan(mine.length * 0.9);
    expect(problems).toEqual([]);
  });
});

/**
 * loadableSessionFormat / loadsAsEmptySession against real PHP: for every payload of the corpus
 * (PHP-encoded sessions of all four handlers, the hand-written grammar corners, seeded mutations,
 * garbage), PHP's session_decode() under each handler is the oracle (test/php/session-formats.php:
 * a handler counts when decoding succeeds and $_SESSION is a non-empty array). verify's
 * plaintext-session class rests on these two functions.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifySession, loadableSessionFormat, loadsAsEmptySession } from '../src/index.ts';
import { edgeCases, generatedCases, mutations, prng } from './corpus.ts';
import { PHP_ARGS, repoRoot } from './helpers.ts';

const SCRIPT = path.join(repoRoot, 'test/php/session-formats.php');

/** Per payload, the handlers under which PHP loads it as a session with at least one variable. */
function phpLoads(payloads: Buffer[]): string[][] {
  const r = spawnSync('php', [...PHP_ARGS, SCRIPT, 'decode'], {
    input: payloads.map((p) => p.toString('hex')).join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 300_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => (l === '-' ? [] : l.split(',')));
}

describe('loadableSessionFormat', () => {
  it('says a payload is a session exactly when PHP loads it with a variable under some handler', () => {
    const generated = generatedCases();
    const rand = prng(1313);
    const garbage = Array.from({ length: 300 }, (_, i) =>
      Buffer.from(Array.from({ length: 1 + (i % 60) }, () => Math.floor(rand() * 256))),
    );
    const payloads = [
      ...generated.map((c) => c.bytes),
      ...edgeCases.map((c) => c.bytes),
      ...generated
        .filter((c) => c.bytes.length <= 2000)
        .slice(0, 60)
        .flatMap((c) => mutations(c, rand, 4))
        .map((c) => c.bytes),
      ...garbage,
      Buffer.from('N;'),
      Buffer.from('N;garbage'),
      Buffer.from('a:0:{}'),
      Buffer.from('a:0:{}trailing'),
      Buffer.from('i:5;'),
    ].filter((b) => b.length > 0);
    const php = phpLoads(payloads);
    const wrong: string[] = [];
    let needClass = 0;
    payloads.forEach((b, i) => {
      const ours = loadableSessionFormat(b);
      const theirs = php[i]!;
      // Enums and Serializable objects need their class in PHP (the oracle defines none); the
      // application has it, as classifySession assumes (README: known gaps): a session all the same.
      if (
        ours !== undefined &&
        theirs.length === 0 &&
        classifySession(b, ours).warnings.some((w) => w === 'enum-requires-class' || w === 'serializable-object')
      ) {
        needClass++;
        return;
      }
      if ((ours !== undefined) !== theirs.length > 0 || (ours !== undefined && !theirs.includes(ours))) {
        wrong.push(`${b.toString('hex').slice(0, 80)}: ours ${ours ?? '-'}, PHP ${theirs.join(',') || '-'}`);
      }
    });
    expect(wrong).toEqual([]);
    expect(payloads.length).toBeGreaterThan(500);
    expect(needClass).toBeLessThan(payloads.length / 10);
  }, 300_000);

  it('empty sessions: no variable, whatever PHP ignores after them', () => {
    for (const s of ['', 'N;', 'N;\x8a\x1f', 'a:0:{}', 'a:0:{}xyz']) expect(loadsAsEmptySession(Buffer.from(s, 'latin1'))).toBe(true);
    expect(loadsAsEmptySession(Buffer.from('000000021400', 'hex'))).toBe(true);
    for (const s of ['a|i:1;', 'a:1:{s:1:"a";i:1;}', 'hello', 'i:5;']) expect(loadsAsEmptySession(Buffer.from(s))).toBe(false);
  });
});

/**
 * Redis passwords written in an application's PHP code (phpredis credentials: redis-secrets.ts) are
 * never printed in the codemod's diff: each sits in the context lines of the require_once the
 * codemod adds after `<?php`, and shows as `<redacted len=N>`; the file written keeps it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePhp, redisSecretRanges, runCodemod } from '../src/index.ts';

let apps: string[] = [];
afterEach(() => {
  for (const a of apps) rmSync(a, { recursive: true, force: true });
  apps = [];
});

/** An app whose index.php is `<?php`, `lines`, `session_start();`; the codemod's dry-run diff of it. */
function dryRunDiff(lines: string[]): { dir: string; text: string; diff: string } {
  const dir = mkdtempSync(join(tmpdir(), 'codemod-php-secrets-'));
  apps.push(dir);
  const text = ['<?php', ...lines, 'session_start();', ''].join('\n');
  writeFileSync(join(dir, 'index.php'), text);
  const r = runCodemod({ dir, dryRun: true });
  expect(r.changes.map((c) => c.file)).toEqual(['index.php']);
  const diff = r.changes[0]!.diff;
  expect(diff).toContain('+require_once');
  return { dir, text, diff };
}

describe('codemod php: phpredis credentials in the diff context are redacted', () => {
  const cases: { name: string; lines: string[]; shown: string[] }[] = [
    { name: "$redis->auth('PW')", lines: ["$redis->auth('hunter2-pw');"], shown: [" $redis->auth('<redacted len=10>');"] },
    {
      name: "$redis->auth(['user', 'PW']) (the user name stays)",
      lines: ['$redis->auth([\'app-user\', "swordfish\\"pw"]);'],
      shown: [` $redis->auth(['app-user', "<redacted len=13>"]);`],
    },
    {
      name: "$redis->auth(['pass' => 'PW']) and ['PW'] (phpredis 6 form, one element)",
      lines: ["$redis->auth(['pass' => 'hunter2-pw']);", "$redis?->AUTH(credentials: ['swordfish']);"],
      shown: [" $redis->auth(['pass' => '<redacted len=10>']);", " $redis?->AUTH(credentials: ['<redacted len=9>']);"],
    },
    {
      name: "new RedisCluster(null, ['h:6379'], 1.5, 1.5, true, 'PW') and its array form",
      lines: [
        "$c = new RedisCluster(null, ['h:6379'], 1.5, 1.5, true, 'hunter2-pw');",
        "$d = new \\RedisCluster(NULL, ['h:6379'], 1.5, 1.5, true, ['user' => 'app', 'pass' => 'swordfish']);",
      ],
      shown: [
        " $c = new RedisCluster(null, ['h:6379'], 1.5, 1.5, true, '<redacted len=10>');",
        " $d = new \\RedisCluster(NULL, ['h:6379'], 1.5, 1.5, true, ['user' => 'app', 'pass' => '<redacted len=9>']);",
      ],
    },
    {
      name: "new RedisSentinel(['host' => ..., 'auth' => 'PW']) and the positional form before phpredis 6",
      lines: [
        "$s = new RedisSentinel(['host' => '127.0.0.1', 'auth' => 'hunter2-pw']);",
        "$t = new RedisSentinel('127.0.0.1', 26379, 0, NULL, 0, 0, 'swordfish');",
      ],
      shown: [
        " $s = new RedisSentinel(['host' => '127.0.0.1', 'auth' => '<redacted len=10>']);",
        " $t = new RedisSentinel('127.0.0.1', 26379, 0, NULL, 0, 0, '<redacted len=9>');",
      ],
    },
    {
      name: "new Redis(['auth' => ['user', 'PW']]) (phpredis 6 options) and connect()'s context",
      lines: [
        "$r = new Redis(['host' => '127.0.0.1', 'auth' => ['app', 'hunter2-pw']]);",
        "$r->connect('127.0.0.1', 6379, 1, '', 0, 0, ['auth' => ['app', 'swordfish']]);",
      ],
      shown: [
        " $r = new Redis(['host' => '127.0.0.1', 'auth' => ['app', '<redacted len=10>']]);",
        " $r->connect('127.0.0.1', 6379, 1, '', 0, 0, ['auth' => ['app', '<redacted len=9>']]);",
      ],
    },
    {
      name: "ini_set('redis.clusters.auth', ...); redis.session.* settings are no secret",
      lines: ["ini_set('redis.clusters.auth', 'mycluster=hunter2-pw');", "ini_set('redis.session.locking_enabled', '1');"],
      shown: [" ini_set('redis.clusters.auth', '<redacted len=20>');", " ini_set('redis.session.locking_enabled', '1');"],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const { dir, text, diff } = dryRunDiff(c.lines);
      expect(diff).not.toMatch(/hunter2|swordfish/);
      for (const line of c.shown) expect(diff.split('\n')).toContain(line);
      expect(readFileSync(join(dir, 'index.php'), 'utf8')).toBe(text);
    });
  }

  it('a heredoc password is hidden line by line (the diff keeps its line numbers), and the file written keeps it', () => {
    const lines = ['$redis->auth(<<<EOT', 'hunter2', '  swordfish', 'EOT);'];
    const { dir, text, diff } = dryRunDiff(lines);
    expect(diff).not.toMatch(/hunter2|swordfish/);
    expect(diff).toContain('@@ -1,4 +1,5 @@');
    expect(diff.split('\n').slice(-4)).toEqual([' $redis->auth(<redacted len=6>', ' <redacted len=7>', ' <redacted len=11>', '']);
    const written = runCodemod({ dir });
    expect(written.changes[0]!.written).toBe(true);
    expect(written.changes[0]!.diff).not.toMatch(/hunter2|swordfish/);
    const after = readFileSync(join(dir, 'index.php'), 'utf8');
    expect(after).not.toBe(text);
    expect(after).toContain(lines.join('\n'));
  });

  it('redisSecretRanges: the bytes inside the quotes, not the user name; nothing for a variable or another method', () => {
    const text = "<?php\n$r->auth(['u', 'pw']); $r->auth($pw); $r->get('k'); $x = ['auth' => b'q' . 'z'];\n";
    const ranges = redisSecretRanges(parsePhp(text, 'x.php').ast, text);
    expect(ranges.map((r) => text.slice(r.start, r.end))).toEqual(['pw', 'q', 'z']);
  });
});

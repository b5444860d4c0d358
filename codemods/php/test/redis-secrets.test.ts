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
import { secretLookingName } from '../src/redis-secrets.ts';

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

/** Lines that keep what follows them out of the diff's three lines of context. */
const PADDING = ['$a = 1;', '$b = 2;', '$c = 3;', '$d = 4;'];
/** A call the codemod removes (files-handler-call): a second hunk, far from the first. */
const REMOVED = "ini_set('session.save_handler', 'files');";

/**
 * An app whose index.php is `<?php` and `lines` (one of them `session_start();`): its dry-run diff,
 * and the file a real run writes, which must be the text with the codemod's own edits only (the
 * require_once after `<?php`, REMOVED taken out), every password kept.
 */
function diffAndWritten(lines: string[]): { diff: string; text: string } {
  const dir = mkdtempSync(join(tmpdir(), 'codemod-php-secrets-'));
  apps.push(dir);
  const text = ['<?php', ...lines, ''].join('\n');
  writeFileSync(join(dir, 'index.php'), text);
  const dry = runCodemod({ dir, dryRun: true });
  expect(dry.changes.map((c) => c.file)).toEqual(['index.php']);
  const diff = dry.changes[0]!.diff;
  expect(readFileSync(join(dir, 'index.php'), 'utf8')).toBe(text);
  const require = diff
    .split('\n')
    .find((l) => l.startsWith('+require_once'))!
    .slice(1);
  const written = runCodemod({ dir });
  expect(written.changes[0]!.written).toBe(true);
  expect(written.changes[0]!.diff).toBe(diff);
  const expected = ['<?php', require, ...lines.filter((l) => l !== REMOVED), ''].join('\n');
  expect(readFileSync(join(dir, 'index.php'), 'utf8')).toBe(expected);
  return { diff, text };
}

describe('codemod php: passwords held in variables and constants are redacted in the diff', () => {
  const cases: { name: string; lines: string[]; shown: string[]; hidden: string[] }[] = [
    {
      name: "$rk = 'PW' on a context line, $redis->auth($rk) out of the diff",
      lines: ["$rk = 'hunter2-pw';", ...PADDING, '$redis->auth($rk);', 'session_start();'],
      shown: [" $rk = '<redacted len=10>';"],
      hidden: ['hunter2-pw'],
    },
    {
      name: "define('RK', 'PW') and const RK2 = 'PW', then auth(RK) and auth(\\RK2)",
      lines: [
        "define('RK', 'hunter2-pw');",
        "const RK2 = 'swordfish';",
        ...PADDING,
        '$redis->auth(RK);',
        '$redis->auth(\\RK2);',
        'session_start();',
      ],
      shown: [" define('RK', '<redacted len=10>');", " const RK2 = '<redacted len=9>';"],
      hidden: ['hunter2-pw', 'swordfish'],
    },
    {
      name: 'a class constant and a property: auth(self::RK), auth(Conf::RK2), auth($this->rk)',
      lines: [
        "class Conf { const RK = 'hunter2-pw'; const RK2 = 'swordfish';",
        "  private $rk = 'opensesame';",
        ...PADDING.map((l) => `  public ${l}`),
        '  function c($r) { $r->auth(self::RK); $r->auth(Conf::RK2); $r->auth($this->rk); } }',
        'session_start();',
      ],
      shown: [" class Conf { const RK = '<redacted len=10>'; const RK2 = '<redacted len=9>';", "   private $rk = '<redacted len=10>';"],
      hidden: ['hunter2-pw', 'swordfish', 'opensesame'],
    },
    {
      name: "['auth' => $rk] with $rk = ['user', 'PW'] (the user name stays), and a chain $k = RK; auth($k)",
      lines: [
        "$rk = ['app-user', 'hunter2-pw'];",
        "define('RK', 'swordfish');",
        ...PADDING,
        "$r = new Redis(['host' => '127.0.0.1', 'auth' => $rk]);",
        '$k = RK;',
        '$r->auth($k);',
        'session_start();',
      ],
      shown: [" $rk = ['app-user', '<redacted len=10>'];", " define('RK', '<redacted len=9>');"],
      hidden: ['hunter2-pw', 'swordfish'],
    },
    {
      name: 'RedisCluster 6th argument, RedisSentinel 7th, ini_set redis.arrays.auth: each from a variable',
      lines: [
        "$c6 = 'hunter2-pw'; $s7 = 'swordfish';",
        "$ini = 'myarray=opensesame';",
        ...PADDING,
        "$c = new RedisCluster(null, ['h:6379'], 1.5, 1.5, true, $c6);",
        "$s = new RedisSentinel('127.0.0.1', 26379, 0, NULL, 0, 0, $s7);",
        "ini_set('redis.arrays.auth', $ini);",
        'session_start();',
      ],
      shown: [" $c6 = '<redacted len=10>'; $s7 = '<redacted len=9>';", " $ini = '<redacted len=18>';"],
      hidden: ['hunter2-pw', 'swordfish', 'opensesame'],
    },
    {
      name: 'the assignment after the auth() that reads it (second hunk)',
      lines: [
        'function connect($r) { global $rk; $r->auth($rk); }',
        ...PADDING,
        ...PADDING,
        "$rk = 'hunter2-pw';",
        REMOVED,
        'session_start();',
      ],
      shown: [" $rk = '<redacted len=10>';", `-${REMOVED}`],
      hidden: ['hunter2-pw'],
    },
    {
      name: 'names that look like a secret, with no auth() in the file: variable, array key, define, const',
      lines: [
        "$redis_pass = 'hunter2-pw';",
        "$config = ['host' => '127.0.0.1', 'Password' => 'swordfish'];",
        "define('REDIS_AUTH', 'opensesame'); const API_TOKEN = 'letmein';",
        'session_start();',
      ],
      shown: [
        " $redis_pass = '<redacted len=10>';",
        " $config = ['host' => '127.0.0.1', 'Password' => '<redacted len=9>'];",
        " define('REDIS_AUTH', '<redacted len=10>'); const API_TOKEN = '<redacted len=7>';",
      ],
      hidden: ['hunter2-pw', 'swordfish', 'opensesame', 'letmein'],
    },
    {
      name: 'names that look like a secret: property, static property, $a[key] =, parameter default, static variable, class constant',
      lines: [
        "class C { private $dbPasswd = 'hunter2-pw'; public static $clientSecret = 'swordfish'; const CREDENTIALS = 'opensesame'; }",
        "$cfg['redis']['auth'] = 'letmein'; C::$clientSecret = 'tiger-pw';",
        "function f($password = 'dragon-pw') { static $token = 'falcon-pw'; }",
        'session_start();',
      ],
      shown: [
        " class C { private $dbPasswd = '<redacted len=10>'; public static $clientSecret = '<redacted len=9>'; const CREDENTIALS = '<redacted len=10>'; }",
        " $cfg['redis']['auth'] = '<redacted len=7>'; C::$clientSecret = '<redacted len=8>';",
        " function f($password = '<redacted len=9>') { static $token = '<redacted len=9>'; }",
      ],
      hidden: ['hunter2-pw', 'swordfish', 'opensesame', 'letmein', 'tiger-pw', 'dragon-pw', 'falcon-pw'],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const { diff } = diffAndWritten(c.lines);
      for (const s of c.hidden) expect(diff).not.toContain(s);
      for (const line of c.shown) expect(diff.split('\n')).toContain(line);
    });
  }

  it('strings that are no secret stay printed: other names, an author, a string passed elsewhere than auth()', () => {
    const lines = [
      "$greeting = 'hello world'; $author = 'Jane Doe';",
      "$host = '127.0.0.1'; $passengers = 'many'; define('APP_NAME', 'shop');",
      "$redis->connect($host); $redis->auth(['app-user', $pw]); echo $greeting;",
      'session_start();',
    ];
    const { diff } = diffAndWritten(lines);
    for (const l of lines.slice(0, 3)) expect(diff.split('\n')).toContain(` ${l}`);
    expect(diff).not.toContain('redacted');
  });
});

describe('redis-secrets: the name rule and the data flow, on ranges', () => {
  it('secretLookingName: the fragments in any case and inside words; author, passenger and host are no secrets', () => {
    const secret = [
      'redis_pass',
      'Password',
      'REDIS_AUTH',
      'apiToken',
      'DBPASSWD',
      'redispwd',
      'clientSecret',
      'credentials',
      'authorization',
      'coauthorPassword',
    ];
    const plain = ['author', 'authors', 'certAuthority', 'passengers', 'host', 'prefix', 'cacheKey'];
    expect(secret.filter((n) => !secretLookingName(n))).toEqual([]);
    expect(plain.filter((n) => secretLookingName(n))).toEqual([]);
  });

  it('redisSecretRanges: a default given alongside a secret (getenv, $_ENV) is one, and what it is passed on from; interpolation and promoted properties', () => {
    const text = [
      '<?php',
      "$rk = getenv('REDIS_PASSWORD') ?: 'dev-1';",
      "$k2 = $_ENV['REDIS_AUTH'] ?? $fallback; $fallback = 'dev-2';",
      '$r->auth("x{$part}"); $part = \'dev-3\';',
      "class A { function __construct(private $rk3 = 'dev-4') {} function c($r) { $r->auth($this->rk3); } }",
      "$host = '127.0.0.1'; $r->connect($host);",
      '',
    ].join('\n');
    const ranges = redisSecretRanges(parsePhp(text, 'x.php').ast, text);
    expect(ranges.map((r) => text.slice(r.start, r.end))).toEqual(['dev-1', 'dev-2', 'x{$part}', 'dev-3', 'dev-4']);
  });
});

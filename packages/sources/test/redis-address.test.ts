/**
 * One phpredis address parser and one redaction rule (packages/php-ini/src/redis-save-path.ts): the
 * audit's save_path reading and a `--source redis:tcp://...` agree on every BUG-17 case, and no
 * printed form of either holds a password.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRedisSavePath, redactRedisSavePath, redactRedisSecrets, describeRedisHost } from '@session-migrate/php-ini';
import { parseRedisSourceSpec } from '../src/index.ts';
import { caseFile } from '../../../test/support/fixtures.ts';

interface Case {
  save_path: string;
  parsed: Array<Record<string, unknown>>;
}
const cases = (JSON.parse(readFileSync(caseFile('BUG-17', 'expected.json'), 'utf8')) as { expected_toolkit: { cases: Case[] } })
  .expected_toolkit.cases;

describe('the audit and a Redis source read a phpredis save_path the same way', () => {
  for (const c of cases.filter((x) => x.parsed.length === 1)) {
    it(c.save_path, () => {
      const audit = parseRedisSavePath(c.save_path).hosts;
      expect(audit).toHaveLength(1);
      const h = audit[0]!;
      const source = parseRedisSourceSpec(c.save_path, {});
      expect(source.description.host).toBe(h.host);
      expect(source.description.port).toBe(h.port);
      expect(source.description.db).toBe(h.database ?? 0);
      expect(source.prefix).toBe(h.prefix);
      expect(source.password).toBe(h.auth?.password);
      // One redaction: the same printed form, which names the parameter and never holds the password.
      expect(source.redactedSpec).toBe(redactRedisSavePath(c.save_path));
      expect(h.redacted).toBe(source.redactedSpec);
      for (const shown of [source.redactedSpec, h.redacted, describeRedisHost(h)]) {
        expect(shown).toContain(`auth=<redacted len=${h.auth!.password.length}>`);
        expect(shown).not.toContain(`auth=${c.save_path.split('auth=')[1]!.split('&')[0]!}`);
      }
    });
  }

  it('several servers: the audit sees them, a source refuses them, and neither prints the password', () => {
    const value = 'tcp://127.0.0.1:6391?auth=ab,cd';
    expect(parseRedisSavePath(value).hosts).toHaveLength(2);
    expect(() => parseRedisSourceSpec(value, {})).toThrow(/names 2 servers/);
    expect(redactRedisSavePath(value)).toBe('tcp://127.0.0.1:6391?auth=<redacted len=5>');
    // phpredis splits on whitespace too.
    expect(() => parseRedisSourceSpec('tcp://a:1 tcp://b:2', {})).toThrow(/names 2 servers/);
  });

  it('in a redis:// URL, a parameter phpredis does not read (a typo such as prefx=) is refused by name, not ignored', () => {
    expect(() => parseRedisSourceSpec('redis://h:1/1?prefx=APP:', {})).toThrow(/unknown parameter "prefx"/);
    expect(() => parseRedisSourceSpec('redis://h:1/1?prefx=APP:&auth=s3cret', {})).not.toThrow(/s3cret/);
    expect(() => parseRedisSourceSpec('redis+sentinel://s:26379/m/0?prefx=APP:', {})).toThrow(/unknown parameter "prefx"/);
    // A tcp:// save_path is read as phpredis reads it: phpredis ignores the typo and PHP keeps the
    // sessions under the default prefix, which is where the source must look.
    expect(parseRedisSourceSpec('tcp://h:1?prefx=APP:', {}).prefix).toBe('PHPREDIS_SESSION:');
    // Every parameter phpredis's session handler reads is accepted in a redis:// URL too.
    const spec =
      'redis://h:1/0?weight=1&timeout=2.5&read_timeout=1&persistent=1&persistent_id=x&retry_interval=100&prefix=APP:&database=2&auth=pw&stream[verify_peer]=0';
    expect(parseRedisSourceSpec(spec, {}).prefix).toBe('APP:');
  });
});

describe('redactRedisSecrets: never print a password, name it', () => {
  const table: Array<[string, string]> = [
    ['tcp://h:1?auth=s3cret&database=2', 'tcp://h:1?auth=<redacted len=6>&database=2'],
    ['tcp://h:1?database=2&auth=ab%2Bcd', 'tcp://h:1?database=2&auth=<redacted len=5>'],
    // '#', '/' and '?' are data in a phpredis query (phpredis #1631): all of it is the password.
    ['tcp://h:1?auth=ab#cd', 'tcp://h:1?auth=<redacted len=5>'],
    ['tcp://h:1?auth=a/b?c', 'tcp://h:1?auth=<redacted len=5>'],
    ['tls://r?auth[]=app&auth[]=s3cret', 'tls://r?auth[]=<redacted len=3>&auth[]=<redacted len=6>'],
    ['seed[]=h:7000&AUTH%5B%5D=pw', 'seed[]=h:7000&AUTH%5B%5D=<redacted len=2>'],
    ['redis://user:s3%40cret@h:1/0', 'redis://user:<redacted len=7>@h:1/0'],
    ['tcp://u:pw@h:1?prefix=x', 'tcp://u:<redacted len=2>@h:1?prefix=x'],
    // In prose and code: a quote or ',' followed by a separator ends the value; inside, it is redacted with it.
    ["ini_set('session.save_path', 'tcp://h:1?auth=pw');", "ini_set('session.save_path', 'tcp://h:1?auth=<redacted len=2>');"],
    ['"tcp://a:1?auth=x", "tcp://b:1"', '"tcp://a:1?auth=<redacted len=1>", "tcp://b:1"'],
    ['tcp://h:1?auth=pa"ss', 'tcp://h:1?auth=<redacted len=5>'],
    ['auth= is empty', 'auth= is empty'],
  ];
  for (const [text, shown] of table) it(text, () => expect(redactRedisSecrets(text)).toBe(shown));

  it('a source spec with a user name and password in the URL is redacted by the same rule', () => {
    const p = parseRedisSourceSpec('tcp://u:pw@127.0.0.1:7000/3?prefix=x', {});
    expect(p).toMatchObject({ username: 'u', password: 'pw', prefix: 'x' });
    expect(p.description).toMatchObject({ host: '127.0.0.1', port: 7000, db: 3 });
    expect(p.redactedSpec).toBe('tcp://u:<redacted len=2>@127.0.0.1:7000/3?prefix=x');
  });
});

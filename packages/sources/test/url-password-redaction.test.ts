/**
 * One redaction rule for secrets in a Redis address (php-ini's redactRedisSecrets; packages/redis's
 * redactUrl prints it as `***`): a password with '#', '@', ':' and '%' in a URL's userinfo never
 * shows in any error message, whether the address is a command's Redis URL (parseRedisUrl,
 * specFromUrl: --target) or a Redis source (parseRedisSourceSpec: --source redis:..., read by the
 * phpredis save_path parser for tcp:// and tls://), well formed or not.
 */
import { describe, expect, it } from 'vitest';
import { redactRedisSecrets } from '@session-migrate/php-ini';
import { parseRedisUrl, redactUrl, specFromUrl } from '@session-migrate/redis';
import { openAnySource, openSource, parseRedisSourceSpec } from '../src/index.ts';

/** Each piece between the special characters is distinctive, so a partial leak is caught too. */
const PIECES = ['Kq7zd', 'Wv3xd', 'Jm9pd', 'Tb2nd', 'zzHcd'];
const PASSWORD = `${PIECES[0]}#${PIECES[1]}@${PIECES[2]}:${PIECES[3]}%${PIECES[4]}`;
const ENCODED = encodeURIComponent(PASSWORD);

/** Addresses holding the password: well formed, and broken in the ways a hand-typed URL is. */
const ADDRESSES = [
  `redis://app:${PASSWORD}@127.0.0.1:6379/0`,
  `rediss://app:${PASSWORD}@cache.example:6380/2`,
  `redis://:${PASSWORD}@127.0.0.1`,
  `redis://app:${PASSWORD}@127.0.0.1:6379/0?prefix=x`,
  `redis://app:${PASSWORD}@127.0.0.1:99999/0`,
  `redis://app:${PASSWORD}@127.0.0.1:6379/x`,
  `redis://app:${PASSWORD}@`,
  `redis+sentinel://app:${PASSWORD}@10.0.0.1:26379,10.0.0.2:26379/mymaster/0`,
  `rediss+sentinel://app:${PASSWORD}@10.0.0.1:26379,10.0.0.2/`,
  `redis+sentinel://app:${PASSWORD}@10.0.0.1:x/m`,
  `redis://app:${ENCODED}@127.0.0.1:6379/0`,
  `redis://app:${ENCODED}@127.0.0.1:6379/0,redis://b:1`,
  `tcp://app:${PASSWORD}@127.0.0.1:6379/0?prefix=x`,
  `tcp://127.0.0.1:6379?auth=${encodeURIComponent(PASSWORD)}&database=x`,
  `tls://127.0.0.1:6379?auth[]=app&auth[]=${ENCODED}&prefix=`,
  `tcp://app:${PASSWORD}@127.0.0.1:6379?auth=${ENCODED}, tcp://second:1`,
  `redis//app:${PASSWORD}@127.0.0.1:6379`,
  `redis:app:${PASSWORD}@127.0.0.1:6379`,
  `app:${PASSWORD}@127.0.0.1:6379`,
];

function leaks(text: string): string[] {
  return PIECES.filter((p) => text.includes(p) || text.includes(encodeURIComponent(p)));
}

function messageOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

describe("a password with '#', '@', ':' and '%' in a Redis address", () => {
  it('never appears in an error message of the Redis URL path (parseRedisUrl, specFromUrl) nor the source path (parseRedisSourceSpec)', () => {
    let errors = 0;
    for (const address of ADDRESSES) {
      for (const [path, fn] of [
        ['parseRedisUrl', () => parseRedisUrl(address, 'target')],
        ['specFromUrl', () => specFromUrl(address, {}, 'source')],
        ['parseRedisSourceSpec', () => parseRedisSourceSpec(address, {})],
      ] as const) {
        const message = messageOf(fn);
        if (message === undefined) continue;
        errors++;
        expect(leaks(message), `${path}(${address}): ${message}`).toEqual([]);
      }
    }
    // Most of these are refused somewhere: the assertions above ran.
    expect(errors).toBeGreaterThan(ADDRESSES.length);
  });

  it('is hidden whole by both forms of the one rule, up to the last @ of the address', () => {
    for (const address of ADDRESSES.filter((a) => a.includes('://'))) {
      expect(leaks(redactRedisSecrets(address)), address).toEqual([]);
      expect(leaks(redactUrl(address)), address).toEqual([]);
    }
    expect(redactRedisSecrets(`redis://app:${PASSWORD}@127.0.0.1:6379/0`)).toBe(
      `redis://app:<redacted len=${PASSWORD.length}>@127.0.0.1:6379/0`,
    );
    expect(redactUrl(`redis://app:${PASSWORD}@127.0.0.1:6379/0`)).toBe('redis://app:***@127.0.0.1:6379/0');
    // The next URL of a list keeps its host.
    expect(redactUrl(`redis://a:${PASSWORD}@h1:1/0,redis://b:pw@h2:2/0`)).toBe('redis://a:***@h1:1/0,redis://b:***@h2:2/0');
  });

  it('a well-formed URL still yields the password to connect with (decoded), only its printed forms hide it', () => {
    const a = parseRedisUrl(`redis://app:${ENCODED}@127.0.0.1:6379/0`, 'target');
    expect(a).toMatchObject({ username: 'app', urlPassword: PASSWORD, url: 'redis://127.0.0.1:6379/0' });
    const s = parseRedisSourceSpec(`tcp://127.0.0.1:6379?auth=${ENCODED}&prefix=P:`, {});
    expect(s.password).toBe(PASSWORD);
    expect(leaks(s.redactedSpec)).toEqual([]);
  });

  it('never appears when the address is given as a source without its redis: prefix (openAnySource, openSource)', async () => {
    // `--source tcp://:PW@host:6379`, phpredis's save_path pasted as is: not a source form, refused
    // by name. Only the addresses that open no connection (no redis:// or redis: prefix) are tried.
    const offline = ADDRESSES.filter((a) => !a.startsWith('redis'));
    expect(offline.length).toBeGreaterThan(3);
    for (const address of offline) {
      const message = await openAnySource(address).then(
        () => undefined,
        (err: unknown) => (err as Error).message,
      );
      expect(message, address).toMatch(/unsupported source/);
      // phpredis's own form is read with redis: before it: the refusal says so.
      if (/^(tcp|tls):\/\//.test(address))
        expect(message, address).toMatch(/a phpredis save_path is read with redis: before it \(redis:(tcp|tls):\/\/host:port\?\.\.\.\)$/);
      expect(leaks(message ?? ''), `openAnySource(${address}): ${message}`).toEqual([]);
      const files = messageOf(() => openSource(address));
      expect(leaks(files ?? ''), `openSource(${address}): ${files}`).toEqual([]);
    }
  });
});

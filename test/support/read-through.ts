/**
 * The set-up of the read-through tests with a Redis source (test/read-through-topologies.test.ts,
 * test/read-through-sentinel-failover.test.ts, test/read-through-redis-source.test.ts): `plan
 * --read-through` of a files source plus plaintext phpredis keys, and one request of the app through
 * the artifacts `generate php` writes from that plan.
 */
import { expect } from 'vitest';
import { join } from 'node:path';
import { sessionRequest, type Rendered, type SessionRequest } from '../php/harness.ts';
import { cli, planArgs } from './migrate-cli.ts';

/** What planReadThrough() wrote. */
export interface ReadThroughPlan {
  planFile: string;
  /** The artifacts directory (`generate php --plan planFile` writes into it). */
  art: string;
  /** The handler's ACL rule as plan printed it, `(rule: ...)`: with `handlerUser` only, else ''. */
  rule: string;
}

/**
 * Runs `plan --source files:FILES --source redis:SOURCE?prefix=LEGACY --target TARGET --prefix PREFIX
 * --key-file KEY --out ROOT/NAME.json --artifacts-dir ROOT/NAME-art --gc-maxlifetime 1440
 * --read-through` (and `--handler-user USER`, then `extra`), and expects exit 0 and plan's line saying
 * the handler reads the old keys `LEGACY<ID>` in the target's Redis.
 * @param o.source the Redis source's URL, without its `?prefix=` (added from `o.legacy`)
 * @param o.handlerUser the handler's own ACL user: the rule plan prints for it is returned
 * @param o.extra more options of plan (`--serialize-handler igbinary`, ...)
 */
export function planReadThrough(o: {
  root: string;
  name: string;
  filesDir: string;
  source: string;
  legacy: string;
  target: string;
  prefix: string;
  keyFile: string;
  handlerUser?: string;
  extra?: string[];
}): ReadThroughPlan {
  const planFile = join(o.root, `${o.name}.json`);
  const art = join(o.root, `${o.name}-art`);
  const r = cli(
    planArgs(
      { dir: o.filesDir, target: o.target, keyFile: o.keyFile, planFile, artifactsDir: art },
      ...['--source', `redis:${o.source}?prefix=${encodeURIComponent(o.legacy)}`, '--prefix', o.prefix],
      ...['--gc-maxlifetime', '1440', '--read-through'],
      ...(o.handlerUser !== undefined ? ['--handler-user', o.handlerUser] : []),
      ...(o.extra ?? []),
    ),
  );
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toContain(`then the old phpredis keys ${o.legacy}<ID> in the target's Redis`);
  const rule = o.handlerUser !== undefined ? (/\(rule: ([^)]*)\)/.exec(r.stdout)?.[1] ?? '') : '';
  if (o.handlerUser !== undefined) expect(rule).not.toBe('');
  return { planFile, art, rule };
}

/**
 * One request of the app (test/php/session-request.php) through the bootstrap and ini fragment in
 * `art`, with the key file and, when given, the handler user's password in the environment; expects
 * nothing on PHP's stderr (no warning, no failed start).
 * @param o.dir TMPDIR of the request and home of its log file
 */
export function readThroughRequest<Out>(
  art: string,
  args: string[],
  o: { dir: string; keyFile: string; password?: string; ini?: string[] },
): Omit<SessionRequest<Out>, 'stderr'> {
  const r = { iniFile: join(art, '99-session-migrate.ini') } as Rendered;
  const password: Record<string, string> = o.password !== undefined ? { SESSION_MIGRATE_REDIS_PASSWORD: o.password } : {};
  const res = sessionRequest<Out>(r, args, {
    dir: o.dir,
    env: { SESSION_MIGRATE_KEY_FILE: o.keyFile, ...password },
    ...(o.ini !== undefined ? { ini: o.ini } : {}),
  });
  expect(res.stderr, res.logs.join('\n')).toBe('');
  return { out: res.out, logs: res.logs };
}

/**
 * Golden files of the generated artifacts (test/golden/<case>/): what users commit, byte for byte, so
 * that a reviewer sees every change to it in the diff of the golden files.
 *
 * After an intended change, rewrite them and review the diff:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/generate-golden.test.ts
 *
 * Cases `default` and `namespace-locking-off` hold every artifact (the bootstrap, the ini fragment,
 * autoload.php and src/); the other cases hold the two generated files only, and their sources must be
 * those of `default`.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { AUTOLOAD_FILE, SOURCE_DIR, renderArtifacts, type Artifact, type GenerateOptions } from '@session-migrate/generate';
import { artifactsForPlan, type Plan } from '@session-migrate/migrate';
import { DEFAULT_GC_MAXLIFETIME } from '@session-migrate/common';
import { REPO } from './php/harness.ts';

const GOLDEN = join(REPO, 'test/golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const isSource = (path: string): boolean => path === AUTOLOAD_FILE || path.startsWith(`${SOURCE_DIR}/`);

const TLS = {
  caFile: '/etc/session-migrate/redis-ca.pem',
  certFile: '/etc/session-migrate/client.pem',
  keyFile: '/etc/session-migrate/client.key',
  serverName: 'master.sessions.example.cache.amazonaws.com',
};

const CASES: Array<{ name: string; full: boolean; artifacts: () => Artifact[] }> = [
  {
    name: 'default',
    full: true,
    artifacts: () =>
      renderArtifacts({
        installDir: '/srv/app/session-migrate',
        redis: { host: 'redis.internal' },
        expectedLookupIds: ['0123456789abcdef'],
      }),
  },
  {
    name: 'tls-acl-read-through',
    full: false,
    artifacts: () =>
      renderArtifacts({
        installDir: '/srv/app/session-migrate',
        redis: {
          host: 'master.sessions.example.cache.amazonaws.com',
          port: 6380,
          db: 2,
          username: 'sessions',
          prefix: 'shop:sess:',
          timeoutSeconds: 1.5,
          tls: TLS,
        },
        expectedLookupIds: ['0123456789abcdef'],
        readThrough: { savePath: '2;/var/lib/php/sessions' },
        previousAutoPrependFile: '/srv/app/prepend.php',
        locking: { retries: 50, waitMicros: 10_000, ttlSeconds: 60, onFailure: 'readonly' },
      } satisfies GenerateOptions),
  },
  {
    name: 'cluster',
    full: false,
    artifacts: () =>
      renderArtifacts({
        installDir: '/srv/app/session-migrate',
        redis: {
          topology: 'cluster',
          host: 'clustercfg.sessions.example.cache.amazonaws.com',
          port: 6379,
          username: 'sessions',
          tls: { serverName: 'clustercfg.sessions.example.cache.amazonaws.com' },
          seeds: [
            { host: '10.0.1.10', port: 6379 },
            { host: '10.0.2.10', port: 6379 },
            { host: '10.0.3.10', port: 6379 },
          ],
        },
        expectedLookupIds: ['0123456789abcdef'],
      }),
  },
  {
    name: 'sentinel',
    full: false,
    artifacts: () =>
      renderArtifacts({
        installDir: '/srv/app/session-migrate',
        redis: {
          topology: 'sentinel',
          host: '10.0.0.5',
          db: 1,
          sentinels: [
            { host: '10.0.0.5', port: 26379 },
            { host: '10.0.0.6', port: 26379 },
          ],
          masterName: 'sessions',
        },
        expectedLookupIds: ['0123456789abcdef'],
      }),
  },
  {
    name: 'namespace-locking-off',
    full: true,
    artifacts: () =>
      renderArtifacts({
        installDir: '/var/www/app/session',
        namespace: 'Acme\\Session',
        fileNames: { bootstrap: 'sessions-bootstrap.php', ini: '50-sessions.ini' },
        redis: { host: '/run/redis/redis.sock', persistent: false },
        locking: { enabled: false },
      }),
  },
  {
    name: 'plan-rediss',
    full: false,
    // A plan as `plan` writes it for rediss://sessions@...: TLS with the system CA store, the ACL user,
    // the lookup ID checked (prod-redis's redisForArtifacts maps the plan's target).
    artifacts: () =>
      artifactsForPlan({
        target: {
          url: 'rediss://redis.internal:6379/0',
          topology: 'standalone',
          host: 'redis.internal',
          port: 6379,
          db: 0,
          tls: true,
          auth: true,
          username: 'sessions',
          prefix: 'smsess:',
          existingKeysUnderPrefix: 0,
        },
        artifacts: { outDir: '/tmp/unused', installDir: '/srv/app/session-migrate', files: [] },
        key: { provider: 'file', file: '/etc/session-migrate/master.key', keyId: 'aaaaaaaaaaaaaaaa', lookupId: 'bbbbbbbbbbbbbbbb' },
      } satisfies Pick<Plan, 'target' | 'artifacts' | 'key'>),
  },
  {
    name: 'plan-cluster-tls',
    full: false,
    // A cluster plan with a private CA and client certificate: seeds are the node given, then the masters plan saw.
    artifacts: () =>
      artifactsForPlan({
        target: {
          url: 'rediss://10.0.1.10:6379/0',
          topology: 'cluster',
          host: '10.0.1.10',
          port: 6379,
          db: 0,
          tls: true,
          auth: true,
          username: 'sessions',
          tlsFiles: {
            caFile: '/etc/session-migrate/ca.pem',
            certFile: '/etc/session-migrate/client.pem',
            keyFile: '/etc/session-migrate/client.key',
          },
          nodes: [
            { host: '10.0.1.10', port: 6379 },
            { host: '10.0.2.10', port: 6379 },
            { host: '10.0.3.10', port: 6379 },
          ],
          prefix: 'smsess:',
          existingKeysUnderPrefix: 0,
        },
        artifacts: { outDir: '/tmp/unused', installDir: '/srv/app/session-migrate', files: [], locking: { onFailure: 'readonly' } },
        key: { provider: 'ring', file: '/etc/session-migrate/ring', keyId: 'aaaaaaaaaaaaaaaa', lookupId: 'bbbbbbbbbbbbbbbb' },
      } satisfies Pick<Plan, 'target' | 'artifacts' | 'key'>),
  },
];

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

describe('golden files of the generated artifacts (UPDATE_GOLDEN=1 rewrites them)', () => {
  const sourcesOfDefault = new Map(
    CASES[0]!
      .artifacts()
      .filter((a) => isSource(a.path))
      .map((a) => [a.path, a.contents]),
  );

  for (const c of CASES) {
    it(c.name, () => {
      const artifacts = c.artifacts();
      const kept = c.full ? artifacts : artifacts.filter((a) => !isSource(a.path));
      if (!c.full) {
        for (const a of artifacts.filter((x) => isSource(x.path))) expect(a.contents, a.path).toBe(sourcesOfDefault.get(a.path));
      }
      const dir = join(GOLDEN, c.name);
      if (UPDATE) {
        rmSync(dir, { recursive: true, force: true });
        for (const a of kept) {
          mkdirSync(dirname(join(dir, a.path)), { recursive: true });
          writeFileSync(join(dir, a.path), a.contents);
        }
      }
      expect(listFiles(dir), `files of test/golden/${c.name} (UPDATE_GOLDEN=1 rewrites them)`).toEqual(kept.map((a) => a.path).sort());
      for (const a of kept) {
        expect(a.contents, `test/golden/${c.name}/${a.path} differs (UPDATE_GOLDEN=1 rewrites it; review the diff)`).toBe(
          readFileSync(join(dir, a.path), 'utf8'),
        );
      }
    });
  }
});

describe('constants of the PHP handler that mirror a TypeScript default (the PHP cannot import it)', () => {
  /** `public const NAME = <integer>;` of a PHP class, or undefined when it is not there. */
  const phpIntConstant = (php: string, name: string): number | undefined => {
    const m = new RegExp(`\\bconst\\s+${name}\\s*=\\s*(\\d+)\\s*;`).exec(php);
    return m === null ? undefined : Number(m[1]);
  };

  it('FALLBACK_TTL is DEFAULT_GC_MAXLIFETIME (packages/common/src/defaults.ts): in the shipped source, the generated handler and its golden file', () => {
    const handler = `${SOURCE_DIR}/EncryptedRedisSessionHandler.php`;
    const generated = CASES[0]!.artifacts().find((a) => a.path === handler);
    expect(generated, handler).toBeDefined();
    const copies: Array<[string, string]> = [
      ['php/src/EncryptedRedisSessionHandler.php', readFileSync(join(REPO, 'php/src/EncryptedRedisSessionHandler.php'), 'utf8')],
      [`generated ${handler}`, generated!.contents],
      [`test/golden/default/${handler}`, readFileSync(join(GOLDEN, 'default', handler), 'utf8')],
    ];
    for (const [where, php] of copies) expect(phpIntConstant(php, 'FALLBACK_TTL'), where).toBe(DEFAULT_GC_MAXLIFETIME);
  });
});

/**
 * A dry run refuses what the real run refuses: a target that is a replica (READONLY) is refused by
 * `apply --dry-run` and `rollback --remove-keys --dry-run` as by the real runs (exit 2, one line),
 * instead of counting what would be written or removed (adversarial review: "would remove 5" while
 * the real run was refused). The plan is made while the node is a master; the node is then made a
 * replica (REPLICAOF), as after a failover.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, newKey, planArgs, usageLine, writeSessionFiles } from './support/migrate-cli.ts';
import { startRedis, type RedisServer } from './support/servers.ts';

let master: RedisServer;
let node: RedisServer;
let root: string;
let planFile: string;

beforeAll(async () => {
  master = await startRedis();
  node = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-dry-replica-'));
  const { keyFile } = await newKey(root);
  const dir = join(root, 'sessions');
  writeSessionFiles(dir, 'dr', 5);
  planFile = join(root, 'plan.json');
  const plan = cli(planArgs({ dir, target: node.url, keyFile, planFile, artifactsDir: join(root, 'art') }));
  expect(plan.status, plan.stderr).toBe(0);
  const apply = cli(['apply', '--plan', planFile]);
  expect(apply.status, apply.stderr).toBe(0);
  // The node becomes a replica of an empty master (its keys go: the count a dry run would give is 0).
  await node.client.call('REPLICAOF', '127.0.0.1', String(master.port));
});

afterAll(async () => {
  await node?.stop();
  await master?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a dry run against a replica', () => {
  it('apply --dry-run and rollback --remove-keys --dry-run are refused as the real runs are: exit 2, one line naming the replica', () => {
    for (const args of [
      ['apply', '--plan', planFile],
      ['apply', '--plan', planFile, '--dry-run'],
      ['rollback', '--plan', planFile, '--remove-keys'],
      ['rollback', '--plan', planFile, '--remove-keys', '--dry-run'],
      ['rollback', '--plan', planFile, '--remove-keys', '--dry-run', '--json'],
    ]) {
      const r = cli(args);
      expect(usageLine(r), args.join(' ')).toMatch(
        /^session-migrate: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is a replica of 127\.0\.0\.1:\d+ \(READONLY\): give the master/,
      );
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });
});

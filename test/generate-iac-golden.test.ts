/**
 * Golden files of `generate iac` (test/golden/iac/<case>/): the Terraform and CloudFormation
 * templates as users receive them, byte for byte. test/generate-iac.test.ts checks what they mean
 * (resources, encryption, references); this test makes every change to them visible in review.
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/generate-iac-golden.test.ts   # after an intended change
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACT_MODE } from '@session-migrate/generate';
import { renderIac, type IacOptions } from '@session-migrate/generate/iac';
import { expectGoldenDir } from './support/golden.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'iac');

const CASES: Array<{ dir: string; options: IacOptions }> = [
  { dir: 'terraform-default', options: { format: 'terraform' } },
  { dir: 'terraform-named', options: { format: 'terraform', name: 'shop-sessions' } },
  { dir: 'cloudformation-default', options: { format: 'cloudformation' } },
  { dir: 'cloudformation-named', options: { format: 'cloudformation', name: 'shop-sessions' } },
  // Cluster mode (3 shards, 2 replicas each) with ElastiCache RBAC users.
  { dir: 'terraform-cluster-rbac', options: { format: 'terraform', auth: 'rbac', clusterShards: 3, replicasPerShard: 2 } },
  { dir: 'cloudformation-cluster-rbac', options: { format: 'cloudformation', auth: 'rbac', clusterShards: 3, replicasPerShard: 2 } },
  // Each on its own: RBAC on one shard (another prefix), cluster mode with the AUTH token.
  { dir: 'terraform-rbac', options: { format: 'terraform', auth: 'rbac', prefix: 'shop:sess:' } },
  { dir: 'cloudformation-cluster', options: { format: 'cloudformation', clusterShards: 2 } },
];

describe('generate iac: golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
  for (const c of CASES) {
    it(c.dir, () => {
      const artifacts = renderIac(c.options);
      for (const a of artifacts) expect(a.mode, a.path).toBe(ARTIFACT_MODE);
      expectGoldenDir(join(GOLDEN, c.dir), new Map(artifacts.map((a) => [a.path, a.contents])));
    });
  }
});

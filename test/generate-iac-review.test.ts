/**
 * `generate iac` as an ElastiCache operator reviews it before `terraform apply` or a stack deploy:
 * property names against the CloudFormation resource schema (as aws-cdk-lib's generated L1 classes
 * carry it), Terraform attribute names against the AWS provider's documented arguments, and the
 * production choices: sessions never evicted (maxmemory-policy noeviction, the rule of
 * packages/redis/src/memory.ts), TLS required, no automatic snapshots, a Redis 7 engine that matches
 * the parameter group family, Multi-AZ only over two or more subnets, and `--out` refused when empty.
 * Starts no server: unit tier.
 */
import { App, CfnDeletionPolicy, Stack } from 'aws-cdk-lib';
import { CfnSecurityGroup } from 'aws-cdk-lib/aws-ec2';
import { CfnParameterGroup, CfnReplicationGroup, CfnSubnetGroup, CfnUser, CfnUserGroup } from 'aws-cdk-lib/aws-elasticache';
import { CfnSecret } from 'aws-cdk-lib/aws-secretsmanager';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_PREFIX } from '@session-migrate/common';
import { GenerateOptionsError } from '@session-migrate/generate';
import { ForeignFileError, elastiCacheAccessString, renderIac, writeIac, type IacOptions } from '@session-migrate/generate/iac';
import { aclRuleFor, handlerAclRule, memoryWarnings } from '@session-migrate/redis';
import { readHcl, type HclBlock } from './support/hcl.ts';

type Obj = { [k: string]: unknown };

const cfnText = renderIac({ format: 'cloudformation' })[0]!.contents;
const cfn = parseYaml(cfnText, { uniqueKeys: true, strict: true }) as Obj;
const resources = cfn.Resources as Record<string, { Type: string; Properties: Obj; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
const params = cfn.Parameters as Record<string, Obj>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const rgProps = ofType('AWS::ElastiCache::ReplicationGroup')[0]![1].Properties;

const tfText = renderIac({ format: 'terraform' })[0]!.contents;
const tf = readHcl(tfText);
const tfOne = (type: string, kind: string): HclBlock => {
  const found = tf.filter((b) => b.type === type && b.labels[0] === kind);
  expect(found, `${type} ${kind}`).toHaveLength(1);
  return found[0]!;
};
const tfRg = tfOne('resource', 'aws_elasticache_replication_group');

/** A Terraform string literal's value: "^7\\.[0-9]+$" -> ^7\.[0-9]+$ (HCL escapes as JSON does). */
const hclString = (expr: string): string => JSON.parse(expr) as string;

/** A value of the right shape for an L1 constructor: lists stay lists, maps maps, intrinsics become 'x'. */
function placeholder(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return [];
  const ref = (v as Obj).Ref;
  if (typeof ref === 'string') return String(params[ref]?.Type ?? '').startsWith('List<') ? [] : 'x';
  return Object.keys(v).some((k) => k.startsWith('Fn::')) ? 'x' : {};
}

describe('generate iac, CloudFormation: names against the resource schema', () => {
  /** Resource type -> the CloudFormation property names of aws-cdk-lib's L1 class (its cfnPropertyNames). */
  const stack = new Stack(new App(), 'schema');
  const schema: Record<string, { names: Set<string>; make: (props: Obj) => unknown }> = {};
  let n = 0;
  const add = (type: string, make: (id: string, props: Obj) => unknown, minimal: Obj) => {
    const build = (props: Obj) => make(`r${n++}`, props);
    const names = (build(minimal) as { cfnPropertyNames: Record<string, string> }).cfnPropertyNames;
    schema[type] = { names: new Set(Object.values(names)), make: build };
  };
  add('AWS::ElastiCache::ReplicationGroup', (id, p) => new CfnReplicationGroup(stack, id, p as never), {
    replicationGroupDescription: 'd',
  });
  add('AWS::ElastiCache::SubnetGroup', (id, p) => new CfnSubnetGroup(stack, id, p as never), { description: 'd', subnetIds: [] });
  add('AWS::ElastiCache::ParameterGroup', (id, p) => new CfnParameterGroup(stack, id, p as never), {
    cacheParameterGroupFamily: 'redis7',
    description: 'd',
  });
  add('AWS::EC2::SecurityGroup', (id, p) => new CfnSecurityGroup(stack, id, p as never), { groupDescription: 'd' });
  add('AWS::SecretsManager::Secret', (id, p) => new CfnSecret(stack, id, p as never), {});

  it('every resource has a known type, only schema property names, and its required ones', () => {
    for (const [logical, r] of Object.entries(resources)) {
      const s = schema[r.Type];
      expect(s, `${logical}: ${r.Type}`).toBeDefined();
      for (const key of Object.keys(r.Properties)) expect(s!.names, `${logical}.${key}`).toContain(key);
      // The L1 constructor checks that the required properties are present (cdk requireProperty);
      // camelCase names, a placeholder for each value (the values are intrinsics, checked elsewhere).
      const camel = Object.fromEntries(Object.entries(r.Properties).map(([k, v]) => [k[0]!.toLowerCase() + k.slice(1), placeholder(v)]));
      expect(() => s!.make(camel), logical).not.toThrow();
    }
    // The check can fail: a misspelt name is not in the schema.
    expect(schema['AWS::ElastiCache::ReplicationGroup']!.names).not.toContain('TransitEncryption');
  });

  it('nested security group rules and the generated secret use documented keys', () => {
    // AWS::EC2::SecurityGroup Ingress / Egress and AWS::SecretsManager::Secret GenerateSecretString
    // (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ec2-securitygroup-ingress.html,
    // .../aws-properties-ec2-securitygroup-egress.html, .../aws-properties-secretsmanager-secret-generatesecretstring.html).
    const ingress = ['CidrIp', 'CidrIpv6', 'Description', 'FromPort', 'IpProtocol', 'SourcePrefixListId', 'SourceSecurityGroupId'];
    const egress = [
      'CidrIp',
      'CidrIpv6',
      'Description',
      'DestinationPrefixListId',
      'DestinationSecurityGroupId',
      'FromPort',
      'IpProtocol',
      'ToPort',
    ];
    const generate = [
      'ExcludeCharacters',
      'ExcludeLowercase',
      'ExcludeNumbers',
      'ExcludePunctuation',
      'ExcludeUppercase',
      'GenerateStringKey',
    ];
    const sg = ofType('AWS::EC2::SecurityGroup')[0]![1].Properties;
    for (const rule of sg.SecurityGroupIngress as Obj[]) for (const k of Object.keys(rule)) expect([...ingress, 'ToPort'], k).toContain(k);
    for (const rule of sg.SecurityGroupEgress as Obj[]) for (const k of Object.keys(rule)) expect(egress, k).toContain(k);
    const secret = ofType('AWS::SecretsManager::Secret')[0]![1].Properties;
    for (const k of Object.keys(secret.GenerateSecretString as Obj)) {
      expect([...generate, 'IncludeSpace', 'PasswordLength', 'RequireEachIncludedType', 'SecretStringTemplate'], k).toContain(k);
    }
  });

  it('every Fn::GetAtt names an attribute the resource type has', () => {
    const attrs: Record<string, string[]> = {
      'AWS::ElastiCache::ReplicationGroup': Object.getOwnPropertyNames(CfnReplicationGroup.prototype),
      'AWS::EC2::SecurityGroup': Object.getOwnPropertyNames(CfnSecurityGroup.prototype),
    };
    const found: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'Fn::GetAtt') found.push(`${String((v as string[])[0])}.${String((v as string[])[1])}`);
          if (k === 'Fn::Sub' && typeof v === 'string') for (const m of v.matchAll(/\$\{(\w+)\.([\w.]+)\}/g)) found.push(`${m[1]}.${m[2]}`);
          walk(v);
        }
      }
    };
    walk(cfn);
    expect(found.length).toBeGreaterThan(3);
    for (const ref of found) {
      const [logical, ...attr] = ref.split('.');
      const getter = `attr${attr.join('')}`; // PrimaryEndPoint.Address -> attrPrimaryEndPointAddress
      expect(attrs[resources[logical!]!.Type], ref).toContain(getter);
    }
  });
});

describe('generate iac, Terraform: attribute names against the AWS provider', () => {
  // https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/elasticache_replication_group
  // (argument reference; transit_encryption_mode since provider 5.47, hashicorp/terraform-provider-aws#30403).
  const REPLICATION_GROUP = new Set([
    'apply_immediately', 'at_rest_encryption_enabled', 'auth_token', 'auth_token_update_strategy', 'auto_minor_version_upgrade',
    'automatic_failover_enabled', 'cluster_mode', 'data_tiering_enabled', 'description', 'engine', 'engine_version',
    'final_snapshot_identifier', 'global_replication_group_id', 'ip_discovery', 'kms_key_id', 'maintenance_window',
    'multi_az_enabled', 'network_type', 'node_type', 'notification_topic_arn', 'num_cache_clusters', 'num_node_groups',
    'parameter_group_name', 'port', 'preferred_cache_cluster_azs', 'replicas_per_node_group', 'replication_group_id',
    'security_group_ids', 'security_group_names', 'snapshot_arns', 'snapshot_name', 'snapshot_retention_limit',
    'snapshot_window', 'subnet_group_name', 'tags', 'transit_encryption_enabled', 'transit_encryption_mode', 'user_group_ids',
  ]); // prettier-ignore
  // .../resources/elasticache_parameter_group
  const PARAMETER_GROUP = new Set(['name', 'family', 'description', 'tags']);

  it('uses only documented arguments, and a provider version that has them', () => {
    for (const k of tfRg.attrs.keys()) expect(REPLICATION_GROUP, k).toContain(k);
    expect(tfRg.blocks.map((b) => b.type)).toEqual(['lifecycle']);
    const pg = tfOne('resource', 'aws_elasticache_parameter_group');
    for (const k of pg.attrs.keys()) expect(PARAMETER_GROUP, k).toContain(k);
    expect(pg.blocks.map((b) => b.type)).toEqual(['parameter']);
    expect([...pg.blocks[0]!.attrs.keys()].sort()).toEqual(['name', 'value']);
    const providers = tf.find((b) => b.type === 'terraform')!.blocks.find((b) => b.type === 'required_providers')!;
    const aws = /version\s*=\s*">= 5\.(\d+)"/.exec(providers.attrs.get('aws')!);
    expect(aws, providers.attrs.get('aws')).not.toBeNull();
    expect(Number(aws![1])).toBeGreaterThanOrEqual(47);
  });
});

describe('generate iac: production shape of a session store', () => {
  it('sessions are never evicted: own parameter group, family redis7, maxmemory-policy noeviction (plan/verify stay quiet)', () => {
    // CloudFormation
    const pgs = ofType('AWS::ElastiCache::ParameterGroup');
    expect(pgs).toHaveLength(1);
    const [pgName, pg] = pgs[0]!;
    expect(pg.Properties.CacheParameterGroupFamily).toBe('redis7');
    expect(pg.Properties.Properties).toEqual({ 'maxmemory-policy': 'noeviction' });
    expect(rgProps.CacheParameterGroupName).toEqual({ Ref: pgName });
    // Terraform
    const tpg = tfOne('resource', 'aws_elasticache_parameter_group');
    expect(tpg.attrs.get('family')).toBe('"redis7"');
    expect(tpg.blocks).toHaveLength(1);
    expect(tpg.blocks[0]!.attrs.get('name')).toBe('"maxmemory-policy"');
    expect(tpg.blocks[0]!.attrs.get('value')).toBe('"noeviction"');
    expect(tfRg.attrs.get('parameter_group_name')).toBe(`aws_elasticache_parameter_group.${tpg.labels[1]}.name`);
    // The policy the templates set is the one plan and verify accept; ElastiCache's default is not.
    const node = (policy: string) => ({ node: 'n', usedBytes: 0, maxmemory: 1 << 30, policy });
    expect(memoryWarnings([node(hclString(tpg.blocks[0]!.attrs.get('value')!))])).toEqual([]);
    expect(memoryWarnings([node('volatile-lru')])).toHaveLength(1);
  });

  it('TLS is required, not preferred', () => {
    expect(rgProps.TransitEncryptionEnabled).toBe(true);
    expect(rgProps.TransitEncryptionMode).toBe('required');
    expect(tfRg.attrs.get('transit_encryption_enabled')).toBe('true');
    expect(tfRg.attrs.get('transit_encryption_mode')).toBe('"required"');
  });

  it('no automatic snapshots and none on delete (sessions are not kept in backups)', () => {
    expect(rgProps.SnapshotRetentionLimit).toBe(0);
    expect(rgProps.SnapshotName).toBeUndefined();
    expect(rgProps.SnapshotArns).toBeUndefined();
    expect(ofType('AWS::ElastiCache::ReplicationGroup')[0]![1].DeletionPolicy).not.toBe('Snapshot');
    expect(tfRg.attrs.get('snapshot_retention_limit')).toBe('0');
    expect(tfRg.attrs.has('final_snapshot_identifier')).toBe(false);
    expect(tfRg.attrs.has('snapshot_window')).toBe(false);
    for (const text of [cfnText, tfText]) expect(text).toMatch(/data-retention risk/);
  });

  it('the engine version must be Redis OSS 7 (it must match the parameter group family)', () => {
    const cfnPattern = new RegExp(params.EngineVersion!.AllowedPattern as string);
    const tfCondition = tfOne('variable', 'engine_version').blocks[0]!.attrs.get('condition')!;
    const tfPattern = new RegExp(hclString(/regex\(("(?:[^"\\]|\\.)*")/.exec(tfCondition)![1]!));
    for (const re of [cfnPattern, tfPattern]) {
      for (const good of ['7.0', '7.1', String(params.EngineVersion!.Default)]) expect(good, re.source).toMatch(re);
      for (const bad of ['6.2', '6.x', '7', '8.0', '7.1 ', 'valkey']) expect(bad, re.source).not.toMatch(re);
    }
  });

  it('a maintenance window can be chosen (AWS picks one otherwise)', () => {
    expect(tfOne('variable', 'maintenance_window').attrs.get('default')).toBe('null');
    expect(tfRg.attrs.get('maintenance_window')).toBe('var.maintenance_window');
    const re = new RegExp(params.MaintenanceWindow!.AllowedPattern as string);
    for (const good of ['', 'sun:04:00-sun:05:00', 'mon:23:30-tue:00:30']) expect(good).toMatch(re);
    for (const bad of ['sunday 4am', 'sun:4:00-sun:05:00', 'sun:04:00']) expect(bad).not.toMatch(re);
    expect(rgProps.PreferredMaintenanceWindow).toEqual({
      'Fn::If': ['HasMaintenanceWindow', { Ref: 'MaintenanceWindow' }, { Ref: 'AWS::NoValue' }],
    });
  });

  it('Terraform refuses Multi-AZ over a single subnet before creating anything', () => {
    const lifecycle = tfRg.blocks.find((b) => b.type === 'lifecycle')!;
    const pre = lifecycle.blocks.find((b) => b.type === 'precondition')!;
    expect(pre.attrs.get('condition')).toBe('!var.multi_az || length(var.private_subnet_ids) >= 2');
  });
});

describe('generate iac: replacement protection (a new replication group starts empty: every user logged out)', () => {
  for (const options of [{}, { auth: 'rbac' as const }, { auth: 'rbac' as const, clusterShards: 3 }]) {
    const what = JSON.stringify(options);
    it(`${what}: Terraform prevent_destroy on the replication group; CloudFormation keeps it on replacement, no snapshot`, () => {
      const tfV = readHcl(renderIac({ format: 'terraform', ...options })[0]!.contents);
      const rg = tfV.find((b) => b.type === 'resource' && b.labels[0] === 'aws_elasticache_replication_group')!;
      const lifecycle = rg.blocks.find((b) => b.type === 'lifecycle')!;
      expect(lifecycle.attrs.get('prevent_destroy')).toBe('true'); // a literal: Terraform allows no variable here
      // Only the replication group holds sessions; the other resources can be replaced freely.
      for (const b of tfV.filter((x) => x.type === 'resource' && x !== rg))
        expect(b.blocks.find((x) => x.type === 'lifecycle')?.attrs.get('prevent_destroy'), b.labels.join('.')).toBeUndefined();

      const cfnV = parseYaml(renderIac({ format: 'cloudformation', ...options })[0]!.contents, { uniqueKeys: true, strict: true }) as Obj;
      const resV = cfnV.Resources as Record<string, Obj>;
      const policies = Object.values(CfnDeletionPolicy) as string[];
      for (const [logical, r] of Object.entries(resV)) {
        for (const k of Object.keys(r))
          expect(
            ['Type', 'Properties', 'Condition', 'DependsOn', 'DeletionPolicy', 'UpdateReplacePolicy', 'Metadata'],
            `${logical}.${k}`,
          ).toContain(k);
        for (const k of ['DeletionPolicy', 'UpdateReplacePolicy'] as const)
          if (r[k] !== undefined) expect(policies, `${logical}.${k}`).toContain(r[k]);
      }
      const [, rgV] = Object.entries(resV).find(([, r]) => r.Type === 'AWS::ElastiCache::ReplicationGroup')!;
      expect(rgV.UpdateReplacePolicy).toBe(CfnDeletionPolicy.RETAIN);
      expect(rgV.DeletionPolicy).toBe(CfnDeletionPolicy.DELETE); // never Snapshot: sessions are not kept in backups
    });
  }

  it('the PHP handler is pointed at <name>-php with --handler-user (rbac), in the header and an output', () => {
    const tfV = renderIac({ format: 'terraform', auth: 'rbac', name: 'shop' })[0]!.contents;
    const cfnV = renderIac({ format: 'cloudformation', auth: 'rbac', name: 'shop' })[0]!.contents;
    expect(tfV).toContain('session-migrate plan ... --handler-user <name>-php');
    expect(cfnV).toContain('session-migrate plan ... --handler-user <Name>-php');
    const out = readHcl(tfV).find((b) => b.type === 'output' && b.labels[0] === 'php_handler_user')!;
    expect(out.attrs.get('value')).toBe('aws_elasticache_user.php.user_name');
    const outputs = (parseYaml(cfnV) as Obj).Outputs as Record<string, Obj>;
    expect(outputs.PhpHandlerUser!.Value).toEqual({ 'Fn::Sub': '${Name}-php' });
    expect((((parseYaml(cfnV) as Obj).Resources as Record<string, Obj>).PhpUser!.Properties as Obj).UserName).toEqual({
      'Fn::Sub': '${Name}-php',
    });
  });
});

describe('generate iac: --out', () => {
  it('an empty --out is refused (it would resolve to the working directory); the CLI case is in generate-iac.test.ts', () => {
    // dryRun only: without the check a real write would land in the working directory of the test run.
    expect(() => writeIac('', renderIac({ format: 'terraform' }), true)).toThrow(ForeignFileError);
    expect(() => writeIac('', renderIac({ format: 'terraform' }), true)).toThrow(
      '--out is empty: give a directory (for the working directory: --out .)',
    );
  });
});

describe('generate iac --auth rbac --cluster-shards: ElastiCache RBAC users and cluster mode', () => {
  const variants = [
    { topology: 'cluster' as const, prefix: DEFAULT_PREFIX, options: { auth: 'rbac' as const, clusterShards: 3, replicasPerShard: 2 } },
    { topology: 'standalone' as const, prefix: 'shop:sess:', options: { auth: 'rbac' as const, prefix: 'shop:sess:' } },
  ];
  /** The rule written as ElastiCache wants it: `on` instead of aclRuleFor's `resetkeys` (which ElastiCache does not need). */
  const onFor = (rule: string) => rule.replace(/^resetkeys /, 'on ');
  const cmdsOf = (access: string) => access.split(' ').filter((w) => w.startsWith('+'));

  for (const v of variants) {
    const cfnV = parseYaml(renderIac({ format: 'cloudformation', ...v.options })[0]!.contents, { uniqueKeys: true, strict: true }) as Obj;
    const resV = cfnV.Resources as Record<string, { Type: string; Properties: Obj }>;
    const tfV = readHcl(renderIac({ format: 'terraform', ...v.options })[0]!.contents);
    const tfUser = (label: string) =>
      tfV.find((b) => b.type === 'resource' && b.labels[0] === 'aws_elasticache_user' && b.labels[1] === label)!;
    const cfnAccess = (logical: string) => resV[logical]!.Properties.AccessString as string;

    it(`${v.topology}: the access strings are aclRuleFor's / handlerAclRule's, so they cannot drift`, () => {
      // The migration user: the union of these commands' rules (all on the prefix); verify its own user.
      const migrate = ['plan', 'apply', 'verify-prefix-only', 'purge', 'rollback-to-files', 'rollback-remove-keys', 'rotate'] as const;
      const union = [...new Set(migrate.flatMap((c) => cmdsOf(aclRuleFor(c, v.prefix, v.topology))))];
      const expected = {
        php: onFor(handlerAclRule(v.prefix, v.topology)),
        migrate: `on ~${v.prefix}* -@all ${union.join(' ')}`,
        verify: onFor(aclRuleFor('verify', v.prefix, v.topology)),
      };
      for (const [role, access] of Object.entries(expected)) {
        expect(hclString(tfUser(role).attrs.get('access_string')!), `terraform ${role}`).toBe(access);
        expect(cfnAccess(`${role[0]!.toUpperCase()}${role.slice(1)}User`), `cloudformation ${role}`).toBe(access);
        expect(access, role).not.toMatch(/resetkeys|\breset\b|[<>]/); // ElastiCache refuses reset and passwords in the string
      }
      // Every command a migration command's rule has is in the migration user's string, no more.
      for (const c of migrate)
        for (const cmd of cmdsOf(aclRuleFor(c, v.prefix, v.topology))) expect(expected.migrate, `${c} ${cmd}`).toContain(` ${cmd}`);
      expect(expected.verify).toMatch(/^on ~\* -@all /);
      expect(expected.migrate).not.toMatch(/~\*/); // the user that writes stays under the prefix
      if (v.topology === 'cluster') {
        for (const s of [expected.migrate, expected.verify]) expect(s).toContain('+cluster|nodes'); // SCAN's resharding check
        expect(expected.php).toContain('+cluster|slots');
        for (const s of Object.values(expected)) expect(s).toContain(' +asking'); // ioredis and phpredis follow ASK with ASKING
      } else {
        for (const s of Object.values(expected)) expect(s).not.toContain('cluster|');
      }
    });

    it(`${v.topology}: a disabled default user in the group, the group replaces the AUTH token, one secret per user`, () => {
      // Terraform
      const def = tfUser('default');
      expect(def.attrs.get('user_name')).toBe('"default"');
      expect(def.attrs.get('access_string')).toBe('"off -@all"');
      const group = tfV.find((b) => b.labels[0] === 'aws_elasticache_user_group')!;
      const ids = group.attrs.get('user_ids')!;
      for (const u of ['default', 'php', 'migrate', 'verify']) expect(ids).toContain(`aws_elasticache_user.${u}.user_id`);
      const rg = tfV.find((b) => b.labels[0] === 'aws_elasticache_replication_group')!;
      expect(rg.attrs.get('user_group_ids')).toBe(`[aws_elasticache_user_group.${group.labels[1]}.user_group_id]`);
      expect(rg.attrs.has('auth_token')).toBe(false);
      for (const u of ['php', 'migrate', 'verify']) {
        const mode = tfUser(u).blocks.find((b) => b.type === 'authentication_mode')!;
        expect(mode.attrs.get('type')).toBe('"password"');
        expect(mode.attrs.get('passwords')).toBe(`[random_password.${u}.result]`); // by reference only
        const version = tfV.find((b) => b.labels[0] === 'aws_secretsmanager_secret_version' && b.labels[1] === u)!;
        expect(version.attrs.get('secret_string')).toBe(`random_password.${u}.result`);
      }
      // CloudFormation
      expect(resV.DefaultUser!.Properties.UserName).toBe('default');
      expect(resV.DefaultUser!.Properties.AccessString).toBe('off -@all');
      expect(resV.UserGroup!.Properties.UserIds).toEqual(['DefaultUser', 'PhpUser', 'MigrateUser', 'VerifyUser'].map((r) => ({ Ref: r })));
      const rgV = Object.values(resV).find((r) => r.Type === 'AWS::ElastiCache::ReplicationGroup')!.Properties;
      expect(rgV.UserGroupIds).toEqual([{ Ref: 'UserGroup' }]);
      expect(rgV.AuthToken).toBeUndefined();
      for (const u of ['Php', 'Migrate', 'Verify']) {
        expect((resV[`${u}User`]!.Properties.AuthenticationMode as Obj).Passwords).toEqual([
          { 'Fn::Sub': `{{resolve:secretsmanager:\${${u}UserSecret}:SecretString}}` },
        ]);
        expect(resV[`${u}UserSecret`]!.Type).toBe('AWS::SecretsManager::Secret');
      }
    });

    it(`${v.topology}: CloudFormation names against the schema of CfnUser, CfnUserGroup and the rest`, () => {
      const stack = new Stack(new App(), 'rbac');
      let n = 0;
      const classes: Record<string, (props: Obj) => { cfnPropertyNames: Record<string, string> }> = {
        'AWS::ElastiCache::User': (p) => new CfnUser(stack, `u${n++}`, p as never) as never,
        'AWS::ElastiCache::UserGroup': (p) => new CfnUserGroup(stack, `u${n++}`, p as never) as never,
        'AWS::ElastiCache::ReplicationGroup': (p) => new CfnReplicationGroup(stack, `u${n++}`, p as never) as never,
        'AWS::ElastiCache::SubnetGroup': (p) => new CfnSubnetGroup(stack, `u${n++}`, p as never) as never,
        'AWS::ElastiCache::ParameterGroup': (p) => new CfnParameterGroup(stack, `u${n++}`, p as never) as never,
        'AWS::EC2::SecurityGroup': (p) => new CfnSecurityGroup(stack, `u${n++}`, p as never) as never,
        'AWS::SecretsManager::Secret': (p) => new CfnSecret(stack, `u${n++}`, p as never) as never,
      };
      const paramsV = cfnV.Parameters as Record<string, Obj>;
      const ph = (x: unknown): unknown => {
        if (x === null || typeof x !== 'object') return x;
        if (Array.isArray(x)) return [];
        const ref = (x as Obj).Ref;
        if (typeof ref === 'string') return String(paramsV[ref]?.Type ?? '').startsWith('List<') ? [] : 'x';
        return Object.keys(x).some((k) => k.startsWith('Fn::')) ? 'x' : {};
      };
      for (const [logical, r] of Object.entries(resV)) {
        const make = classes[r.Type];
        expect(make, `${logical}: ${r.Type}`).toBeDefined();
        const camel = Object.fromEntries(Object.entries(r.Properties).map(([k, x]) => [k[0]!.toLowerCase() + k.slice(1), ph(x)]));
        const built = make!(camel); // throws on a missing required property
        const names = new Set(Object.values(built.cfnPropertyNames));
        for (const key of Object.keys(r.Properties)) expect(names, `${logical}.${key}`).toContain(key);
      }
      // AuthenticationMode (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-elasticache-user-authenticationmode.html)
      for (const u of ['PhpUser', 'MigrateUser', 'VerifyUser', 'DefaultUser']) {
        const mode = resV[u]!.Properties.AuthenticationMode as Obj;
        for (const k of Object.keys(mode)) expect(['Type', 'Passwords'], `${u}.${k}`).toContain(k);
        expect(['password', 'no-password-required', 'iam']).toContain(mode.Type);
      }
    });

    it(`${v.topology}: Terraform arguments of the users and the group are documented ones`, () => {
      // https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/elasticache_user, .../elasticache_user_group
      const USER = new Set([
        'access_string',
        'authentication_mode',
        'engine',
        'no_password_required',
        'passwords',
        'tags',
        'user_id',
        'user_name',
      ]);
      const MODE = new Set(['type', 'passwords']);
      const GROUP = new Set(['engine', 'tags', 'user_group_id', 'user_ids']);
      for (const b of tfV.filter((x) => x.labels[0] === 'aws_elasticache_user')) {
        for (const k of b.attrs.keys()) expect(USER, `${b.labels[1]}.${k}`).toContain(k);
        for (const blk of b.blocks) {
          expect(blk.type).toBe('authentication_mode');
          for (const k of blk.attrs.keys()) expect(MODE, k).toContain(k);
        }
      }
      const group = tfV.find((b) => b.labels[0] === 'aws_elasticache_user_group')!;
      for (const k of group.attrs.keys()) expect(GROUP, k).toContain(k);
    });
  }

  it('cluster mode: shards and replicas, failover always on, cluster-enabled yes with noeviction, the configuration endpoint', () => {
    const o = { clusterShards: 3, replicasPerShard: 2 };
    const t = parseYaml(renderIac({ format: 'cloudformation', ...o })[0]!.contents) as Obj;
    const r = t.Resources as Record<string, { Type: string; Properties: Obj }>;
    const rg = r.ReplicationGroup!.Properties;
    expect(rg.NumNodeGroups).toEqual({ Ref: 'ClusterShards' });
    expect(rg.ReplicasPerNodeGroup).toEqual({ Ref: 'ReplicasPerShard' });
    expect(rg.AutomaticFailoverEnabled).toBe(true);
    expect(rg.NumCacheClusters).toBeUndefined();
    const p = t.Parameters as Record<string, Obj>;
    expect(p.ClusterShards).toMatchObject({ Type: 'Number', Default: 3, MinValue: 1, MaxValue: 500 });
    expect(p.ReplicasPerShard).toMatchObject({ Type: 'Number', Default: 2, MinValue: 1, MaxValue: 5 });
    expect(r.ParameterGroup!.Properties.Properties).toEqual({ 'maxmemory-policy': 'noeviction', 'cluster-enabled': 'yes' });
    expect(r.ParameterGroup!.Properties.CacheParameterGroupFamily).toBe('redis7');
    const outputs = t.Outputs as Record<string, Obj>;
    expect(outputs.ConfigurationEndpointAddress!.Value).toEqual({ 'Fn::GetAtt': ['ReplicationGroup', 'ConfigurationEndPoint.Address'] });
    expect(outputs.PrimaryEndpointAddress).toBeUndefined();
    expect(Object.getOwnPropertyNames(CfnReplicationGroup.prototype)).toContain('attrConfigurationEndPointAddress');
    expect(Object.getOwnPropertyNames(CfnReplicationGroup.prototype)).toContain('attrConfigurationEndPointPort');

    const h = readHcl(renderIac({ format: 'terraform', ...o })[0]!.contents);
    const trg = h.find((b) => b.labels[0] === 'aws_elasticache_replication_group')!.attrs;
    expect(trg.get('num_node_groups')).toBe('var.cluster_shards');
    expect(trg.get('replicas_per_node_group')).toBe('var.replicas_per_shard');
    expect(trg.get('automatic_failover_enabled')).toBe('true');
    expect(trg.get('multi_az_enabled')).toBe('var.multi_az');
    expect(trg.has('num_cache_clusters')).toBe(false);
    const pg = h.find((b) => b.labels[0] === 'aws_elasticache_parameter_group')!;
    expect(pg.attrs.get('family')).toBe('"redis7"');
    expect(Object.fromEntries(pg.blocks.map((b) => [hclString(b.attrs.get('name')!), hclString(b.attrs.get('value')!)]))).toEqual({
      'maxmemory-policy': 'noeviction',
      'cluster-enabled': 'yes',
    });
    expect(h.find((b) => b.type === 'variable' && b.labels[0] === 'cluster_shards')!.attrs.get('default')).toBe('3');
    expect(h.find((b) => b.type === 'variable' && b.labels[0] === 'replicas_per_shard')!.attrs.get('default')).toBe('2');
    expect(h.find((b) => b.type === 'output' && b.labels[0] === 'configuration_endpoint_address')!.attrs.get('value')).toBe(
      'aws_elasticache_replication_group.sessions.configuration_endpoint_address',
    );
    expect(h.find((b) => b.type === 'output' && b.labels[0] === 'session_migrate_target')!.attrs.get('value')).toContain(
      'configuration_endpoint_address',
    );
  });

  it('impossible shapes are refused with one line (GenerateOptionsError)', () => {
    const bad: Array<[Partial<IacOptions>, RegExp]> = [
      [{ clusterShards: 0 }, /--cluster-shards: a whole number of shards from 1 to 500/],
      [{ clusterShards: 501 }, /--cluster-shards/],
      [{ clusterShards: 1.5 }, /--cluster-shards/],
      [{ clusterShards: Number.NaN }, /--cluster-shards/],
      [{ clusterShards: 2, replicasPerShard: 6 }, /--replicas-per-shard: 1 to 5/],
      [{ clusterShards: 2, replicasPerShard: 0 }, /failover needs a replica in every shard/],
      [{ replicasPerShard: 2 }, /--replicas-per-shard needs --cluster-shards/],
      [{ clusterShards: 100, replicasPerShard: 5 }, /makes 600 nodes; ElastiCache allows 500/],
      [{ prefix: 'x:' }, /--prefix is used only with --auth rbac/],
      [{ auth: 'rbac', prefix: 'a b' }, /--prefix: 1-64/],
      [{ auth: 'rbac', prefix: '' }, /--prefix: 1-64/],
      [{ auth: 'acl' as never }, /auth: must be one of token, rbac/],
    ];
    for (const [o, re] of bad) {
      for (const format of ['terraform', 'cloudformation'] as const) {
        expect(() => renderIac({ format, ...o }), JSON.stringify(o)).toThrow(GenerateOptionsError);
        expect(() => renderIac({ format, ...o }), JSON.stringify(o)).toThrow(re);
      }
    }
    expect(renderIac({ format: 'terraform', clusterShards: 250 })[0]!.contents).toContain('default     = 250'); // 500 nodes
    expect(() => renderIac({ format: 'terraform', clusterShards: 251 })).toThrow(/makes 502 nodes/);
    expect(renderIac({ format: 'terraform', clusterShards: 83, replicasPerShard: 5 })[0]!.contents).toContain('default     = 83');
  });

  it('elastiCacheAccessString refuses what is not one of our rules (it cannot pass garbage to ElastiCache)', () => {
    expect(elastiCacheAccessString(['resetkeys ~a:* -@all +get', 'resetkeys ~a:* -@all +get +set'])).toBe('on ~a:* -@all +get +set');
    expect(() => elastiCacheAccessString(['resetkeys ~a:* -@all +get', 'resetkeys ~* -@all +get'])).toThrow(/different key patterns/);
    expect(() => elastiCacheAccessString(['on >secret ~* +@all'])).toThrow(/not an ACL rule/);
    expect(() => elastiCacheAccessString([])).toThrow();
  });
});

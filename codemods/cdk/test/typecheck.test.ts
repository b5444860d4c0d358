/**
 * Type-checks every CDK v2 fixture's output.ts against a small declaration stub of aws-cdk-lib.
 *
 * aws-cdk-lib itself is not a dependency (hundreds of megabytes for a test); the stub below declares
 * only what the fixtures use, with CfnReplicationGroupProps spelled out property by property as in the
 * AWS CDK API reference (aws-cdk-lib.aws_elasticache.CfnReplicationGroupProps) and no index
 * signature, so TypeScript's excess-property check rejects a misspelled property, and `authToken`
 * typed `string`, so a SecretValue without `.unsafeUnwrap()` is rejected.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const FIXTURES = join(import.meta.dirname, 'fixtures');

const STUB = `
declare module 'constructs' {
  export class Construct {
    constructor(scope: Construct, id: string);
  }
}
declare module 'aws-cdk-lib' {
  import { Construct } from 'constructs';
  export interface IResolvable { resolve(context: unknown): unknown }
  export interface StackProps { description?: string }
  export class App extends Construct { constructor() }
  export class Stack extends Construct {
    constructor(scope?: Construct, id?: string, props?: StackProps);
  }
  export class SecretValue {
    static secretsManager(secretId: string, options?: { jsonField?: string; versionStage?: string; versionId?: string }): SecretValue;
    unsafeUnwrap(): string;
    toJSON(): never;
  }
  import * as elasticache from 'aws-cdk-lib/aws-elasticache';
  export { elasticache as aws_elasticache };
}
declare module 'aws-cdk-lib/aws-secretsmanager' {
  import { Construct } from 'constructs';
  import { SecretValue } from 'aws-cdk-lib';
  export class Secret extends Construct {
    constructor(scope: Construct, id: string, props?: { generateSecretString?: { excludePunctuation?: boolean; passwordLength?: number } });
    readonly secretValue: SecretValue;
  }
}
declare module 'aws-cdk-lib/aws-elasticache' {
  import { Construct } from 'constructs';
  import { IResolvable } from 'aws-cdk-lib';
  type Flag = boolean | IResolvable;
  export interface CfnReplicationGroupProps {
    readonly replicationGroupDescription: string;
    readonly atRestEncryptionEnabled?: Flag;
    readonly authToken?: string;
    readonly automaticFailoverEnabled?: Flag;
    readonly autoMinorVersionUpgrade?: Flag;
    readonly cacheNodeType?: string;
    readonly cacheParameterGroupName?: string;
    readonly cacheSecurityGroupNames?: string[];
    readonly cacheSubnetGroupName?: string;
    readonly clusterMode?: string;
    readonly dataTieringEnabled?: Flag;
    readonly engine?: string;
    readonly engineVersion?: string;
    readonly globalReplicationGroupId?: string;
    readonly ipDiscovery?: string;
    readonly kmsKeyId?: string;
    readonly multiAzEnabled?: Flag;
    readonly networkType?: string;
    readonly notificationTopicArn?: string;
    readonly numCacheClusters?: number;
    readonly numNodeGroups?: number;
    readonly port?: number;
    readonly preferredCacheClusterAZs?: string[];
    readonly preferredMaintenanceWindow?: string;
    readonly primaryClusterId?: string;
    readonly replicasPerNodeGroup?: number;
    readonly replicationGroupId?: string;
    readonly securityGroupIds?: string[];
    readonly snapshotArns?: string[];
    readonly snapshotName?: string;
    readonly snapshotRetentionLimit?: number;
    readonly snapshottingClusterId?: string;
    readonly snapshotWindow?: string;
    readonly transitEncryptionEnabled?: Flag;
    readonly transitEncryptionMode?: string;
    readonly userGroupIds?: string[];
  }
  export class CfnReplicationGroup extends Construct {
    constructor(scope: Construct, id: string, props: CfnReplicationGroupProps);
  }
  export interface CfnCacheClusterProps {
    readonly cacheNodeType: string;
    readonly engine: string;
    readonly numCacheNodes: number;
    readonly transitEncryptionEnabled?: Flag;
  }
  export class CfnCacheCluster extends Construct {
    constructor(scope: Construct, id: string, props: CfnCacheClusterProps);
  }
  export class CfnSubnetGroup extends Construct {
    constructor(scope: Construct, id: string, props: { description: string; subnetIds: string[] });
    readonly ref: string;
  }
}
declare const process: { env: Record<string, string | undefined> };
declare function require(module: string): any;
declare const module: { exports: unknown };
`;

/** Fixtures not written against aws-cdk-lib v2 (or that use a local module on purpose). */
const NOT_V2 = new Set(['cdk-v1', 'monocdk', 'not-elasticache']);

/**
 * Type errors per file, for several files checked in one program (one lib load for all).
 * @param texts file name (without directory) -> source text.
 */
function typeErrorsOf(texts: Map<string, string>): Map<string, string[]> {
  const files = new Map([['/stub.d.ts', STUB], ...[...texts].map(([n, t]) => [`/src/${n}.ts`, t] as const)]);
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS,
    lib: ['lib.es2022.d.ts'], types: [], skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const base = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => {
    const t = files.get(name);
    return t !== undefined ? ts.createSourceFile(name, t, version, true) : base(name, version, ...rest);
  };
  const baseExists = host.fileExists.bind(host);
  host.fileExists = (name) => files.has(name) || baseExists(name);
  const program = ts.createProgram([...files.keys()], options, host);
  const out = new Map<string, string[]>();
  for (const n of texts.keys()) {
    const sf = program.getSourceFile(`/src/${n}.ts`)!;
    const diags = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    out.set(n, diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')));
  }
  const global = [...program.getGlobalDiagnostics(), ...program.getSemanticDiagnostics(program.getSourceFile('/stub.d.ts'))];
  if (global.length > 0) throw new Error(`stub: ${global.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')).join('; ')}`);
  return out;
}

describe('codemod cdk fixtures type-check against the aws-cdk-lib stub', () => {
  const cases = readdirSync(FIXTURES).filter((c) => !NOT_V2.has(c)).sort();

  it('the stub catches what it is for', () => {
    const good = readFileSync(join(FIXTURES, 'namespace-import', 'output.ts'), 'utf8');
    const errors = typeErrorsOf(new Map([
      ['good', good],
      ['no-unwrap', good.replace('.unsafeUnwrap()', '')],
      ['misspelled', good.replace('atRestEncryptionEnabled', 'atRestEncryption')],
    ]));
    expect(errors.get('good')).toEqual([]);
    expect(errors.get('no-unwrap')).toEqual([expect.stringMatching(/SecretValue.*not assignable to type 'string'/)]);
    expect(errors.get('misspelled')).toEqual([expect.stringMatching(/Object literal may only specify known properties/)]);
  });

  it('every v2 output.ts type-checks', () => {
    const errors = typeErrorsOf(new Map(cases.map((c) => [c, readFileSync(join(FIXTURES, c, 'output.ts'), 'utf8')])));
    expect(cases.length).toBeGreaterThan(15);
    for (const c of cases) expect(errors.get(c), c).toEqual([]);
  });
});

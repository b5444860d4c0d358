/**
 * transformSource cases that are not input/output pairs: option validation, files with syntax errors,
 * files without ElastiCache, and edits that must never produce unparsable code.
 */
import { describe, expect, it } from 'vitest';
import { isValidSecretName, transformSource } from '../src/index.ts';

const RG = `import * as cdk from 'aws-cdk-lib';
import * as ec from 'aws-cdk-lib/aws-elasticache';
new ec.CfnReplicationGroup(app, 'R', { replicationGroupDescription: 'r' });
`;

describe('transformSource', () => {
  it('accepts secret names and ARNs, rejects anything that would need quoting', () => {
    for (const ok of [
      'session-migrate/redis-auth-token',
      'a',
      'prod/x_y+z=1.2@3',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:n-AbCdEf',
    ]) {
      expect(isValidSecretName(ok), ok).toBe(true);
    }
    for (const bad of ['', "a'b", 'a"b', 'a b', 'a\\b', 'a\nb', 'x:y', '${x}', 'a`b']) {
      expect(isValidSecretName(bad), bad).toBe(false);
      expect(() => transformSource(RG, 'a.ts', { authSecretName: bad })).toThrow(/authSecretName/);
    }
  });

  it('leaves a file with a syntax error alone and reports where', () => {
    const broken = RG.replace("'r' });", "'r' ;");
    const r = transformSource(broken, 'a.ts');
    expect(r.output).toBe(broken);
    expect(r.changed).toBe(false);
    expect(r.findings).toMatchObject([{ id: 'syntax-error', severity: 'medium', line: 3 }]);
  });

  it('does not parse files that cannot import ElastiCache', () => {
    const text = "new CfnReplicationGroup(this, 'R', {});\n";
    expect(transformSource(text, 'a.ts')).toEqual({ output: text, changed: false, changes: [], findings: [], constructs: 0, secrets: [] });
  });

  it('fills an empty props object inline', () => {
    const r = transformSource(RG.replace("{ replicationGroupDescription: 'r' }", '{}'), 'a.ts');
    expect(r.output).toContain(
      "new ec.CfnReplicationGroup(app, 'R', { transitEncryptionEnabled: true, atRestEncryptionEnabled: true, authToken: cdk.SecretValue.secretsManager('session-migrate/redis-auth-token').unsafeUnwrap() });",
    );
  });

  it('handles .mts and .cts files', () => {
    for (const f of ['stack.mts', 'stack.cts']) expect(transformSource(RG, f).changed).toBe(true);
  });

  it('never reports a secret value, only where it is', () => {
    const text = RG.replace(
      "replicationGroupDescription: 'r'",
      "replicationGroupDescription: 'r', transitEncryptionEnabled: true, atRestEncryptionEnabled: true, authToken: 'hunter2-the-secret'",
    );
    const r = transformSource(text, 'a.ts');
    expect(r.findings.map((f) => f.id)).toEqual(['auth-token-in-code']);
    expect(JSON.stringify(r.findings)).not.toContain('hunter2');
    expect(r.changed).toBe(false);
  });

  it('does not use a type-only SecretValue import as a value', () => {
    const text = `import { type SecretValue, Stack } from 'aws-cdk-lib';
import type * as cdk from 'aws-cdk-lib';
import { CfnReplicationGroup } from 'aws-cdk-lib/aws-elasticache';
export type T = SecretValue | cdk.Stack;
new CfnReplicationGroup(new Stack(), 'R', { replicationGroupDescription: 'r' });
`;
    const r = transformSource(text, 'a.ts');
    // The name is taken (by a type), so no value import can be added under it: reported, not guessed.
    expect(r.findings.map((f) => f.id)).toEqual(['import-conflict', 'replaced-on-deploy']);
    expect(r.output).not.toContain('authToken');
    expect(r.output).toContain('atRestEncryptionEnabled: true');
  });
});

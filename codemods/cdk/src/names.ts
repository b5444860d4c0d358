/**
 * Names and checks of the CDK codemod that need no parser, so the CLI can offer them without loading
 * ts-morph (and TypeScript) on every start.
 */
import { isLeftForPerson } from '@session-migrate/common';
import type { Finding } from './transform.ts';

/** The secret `generate iac` creates with the default `--name`: `<name>/redis-auth-token`. */
export const DEFAULT_AUTH_SECRET_NAME = 'session-migrate/redis-auth-token';

/**
 * A Secrets Manager secret name (1 to 512 of `A-Za-z0-9/_+=.@-`, per the CreateSecret API reference)
 * or a secret ARN (which adds `:`). Nothing that would need escaping inside a string literal.
 */
export function isValidSecretName(name: string): boolean {
  return /^[A-Za-z0-9/_+=.@:-]{1,2048}$/.test(name) && (name.startsWith('arn:') || !name.includes(':'));
}

/**
 * Whether a finding leaves a construct non-compliant (high or medium; the CLI exits 1 when any does):
 * the codemods' one rule, isLeftForPerson in @session-migrate/common codemod-outcome.ts.
 */
export function isBlocking(f: Pick<Finding, 'severity'>): boolean {
  return isLeftForPerson(f);
}

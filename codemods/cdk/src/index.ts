/**
 * @session-migrate/codemod-cdk: turns on encryption in transit, encryption at rest and AUTH for
 * ElastiCache L1 constructs in AWS CDK TypeScript code (transform.ts: pure; run.ts: files).
 */
export * from './transform.ts';
export * from './run.ts';

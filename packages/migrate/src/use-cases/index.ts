/**
 * The use cases: one function per command that does the domain work and returns a typed report,
 * printing nothing (the CLI parses, calls one of these, prints). verify's is in @session-migrate/verify
 * (verifyMigration), which builds on this package.
 */
export * from './shared.ts';
export * from './plan.ts';
export * from './apply.ts';
export * from './purge.ts';
export * from './rollback.ts';
export * from './rotate.ts';
export * from './generate.ts';

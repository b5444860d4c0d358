export * from './plan.ts';
export * from './apply.ts';
export * from './ttl.ts';
export * from './artifacts.ts';
export * from './rotate.ts';
export * from './purge.ts';
export * from './rollback.ts';
export * from './several-sources.ts';

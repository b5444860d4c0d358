export * from './files.ts';
export * from './spec.ts';
export * from './source.ts';
export * from './redis-source.ts';
export * from './distinct.ts';
export * from './users.ts';

export * from './files.ts';
export * from './spec.ts';

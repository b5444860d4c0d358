export * from './errors.ts';
export * from './assets.ts';
export * from './version.ts';
export * from './atomic-write.ts';
export * from './finding.ts';
export * from './defaults.ts';
export * from './text-edits.ts';
export * from './lifecycle.ts';

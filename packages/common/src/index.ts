export * from './errors.ts';
export * from './assets.ts';
export * from './version.ts';

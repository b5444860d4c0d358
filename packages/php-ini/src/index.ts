export * from './save-path.ts';

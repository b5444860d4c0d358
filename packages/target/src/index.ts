export * from './guarded-write.ts';

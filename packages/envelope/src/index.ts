export * from './envelope.ts';
export * from './key-file.ts';
export { loadSodium, type Sodium } from './sodium.ts';
export * from './keyring.ts';
export * from './providers.ts';
export * from './key-layout.ts';
export * from './key-management.ts';

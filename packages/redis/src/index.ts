export * from './url.ts';
export * from './tls.ts';
export * from './errors.ts';
export * from './connection.ts';
export * from './spec.ts';
export * from './memory.ts';
export * from './acl.ts';

export * from './verify.ts';
export {
  KEY_CLASSES,
  PHPREDIS_PREFIXES,
  classifyKey,
  phpredisName,
  redactKeyName,
  type KeyClass,
  type KeyValue,
  type KeyVerdict,
  type KeyContext,
} from './classify.ts';
export { scanKeys, type ScannedKey, type ScanOptions } from './scan.ts';
export * from './use-case.ts';

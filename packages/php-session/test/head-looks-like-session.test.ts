/**
 * headLooksLikeSession: which first 16 KiB of a value too long to read whole verify reads whole
 * anyway (packages/verify/src/scan.ts), so a large plaintext session is classified, not skipped.
 */
import { describe, expect, it } from 'vitest';
import { headLooksLikeSession } from '../src/index.ts';

const head = (s: string): Buffer => Buffer.from(s).subarray(0, 16 * 1024);
const long = 'z'.repeat(20_000);

describe('headLooksLikeSession', () => {
  it.each([
    ['php, a first record that decodes', `user|s:5:"alice";blob|s:9437184:"${long}`],
    ['php, the first value runs past the head', `blob|s:9437184:"${long}`],
    ['php, an array first', `cart|a:100000:{i:0;s:3:"abc";${long}`],
    ['php_serialize', `a:2:{s:4:"user";s:5:"alice";s:4:"blob";s:9437184:"${long}`],
  ])('%s: true', (_, value) => {
    expect(headLooksLikeSession(head(value))).toBe(true);
  });

  it.each([
    ['text', `plain text ${long}`],
    ['JSON', `{"json": "${long}`],
    ['a serialized object of another application', `O:8:"stdClass":1:{s:1:"a";s:9437184:"${long}`],
    ['a name with a space and no length', `hello world|this is not ${long}`],
    ['zeros', '\0'.repeat(16 * 1024)],
    ['empty', ''],
  ])('%s: false', (_, value) => {
    expect(headLooksLikeSession(head(value))).toBe(false);
  });
});

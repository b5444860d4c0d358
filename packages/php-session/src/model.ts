/**
 * The decoded value model. It mirrors PHP's zvals closely enough to keep everything a session payload
 * can hold, without needing any class to be loaded:
 *
 * - strings are raw bytes (`Buffer`), because `s:N` counts bytes (ext/standard/var_unserializer.re);
 * - ints are `number` when they fit in a JS safe integer and `bigint` otherwise (PHP ints are 64-bit);
 * - array keys are `number | bigint` (PHP int keys) or `string` (PHP string keys, decoded with
 *   {@link bytesToName}: lossless, see {@link phpKeyBytes});
 * - the same PHP object reached twice (`r:` back-reference, igbinary objref) is the SAME JS object;
 * - a PHP reference (`R:`, igbinary `0x25`) is a `reference` node; every holder of the same PHP reference
 *   points at the same {@link PhpReference} box;
 * - incomplete classes keep mangled property names (`"\0Class\0prop"`, `"\0*\0prop"`);
 * - `C:` (Serializable) payloads are kept as opaque bytes; PHP itself drops them when the class is
 *   missing.
 *
 * Values can be cyclic (an object whose property points back at it, or crafted references), so code that
 * walks them must track what it has seen.
 */

/** PHP array key: int key (number, or bigint outside +-2^53) or string key (see bytesToName). */
export type PhpKey = string | number | bigint;

export type PhpEntry = [PhpKey, PhpValue];

export interface PhpNull {
  type: 'null';
}
export interface PhpBool {
  type: 'bool';
  value: boolean;
}
export interface PhpInt {
  type: 'int';
  value: number | bigint;
}
export interface PhpFloat {
  type: 'float';
  value: number;
}
export interface PhpString {
  type: 'string';
  bytes: Buffer;
}
export interface PhpArray {
  type: 'array';
  entries: PhpEntry[];
}
/** An object of any class. `className` as written in the payload (stdClass is canonicalised). */
export interface PhpObject {
  type: 'object';
  className: string;
  props: PhpEntry[];
}
/** A `C:` / igbinary object_ser (Serializable) object: class name plus the opaque payload bytes. */
export interface PhpSerializable {
  type: 'serializable';
  className: string;
  payload: Buffer;
}
/** A PHP 8.1 enum case (`E:` / igbinary enum_case). */
export interface PhpEnum {
  type: 'enum';
  className: string;
  caseName: string;
}
/** A PHP reference (`&`): all holders share the same `target` box. */
export interface PhpReferenceNode {
  type: 'reference';
  target: PhpReference;
}
export interface PhpReference {
  value: PhpValue;
  /**
   * Holders PHP keeps alive outside the decoded session (igbinary leaks the value that a repeated
   * array key replaces: igsd_addref_and_defer_dtor adds a reference that is never released). Counts
   * towards "is this still a reference" like any other holder.
   */
  extraHolders?: number;
}

export type PhpValue =
  PhpNull | PhpBool | PhpInt | PhpFloat | PhpString | PhpArray | PhpObject | PhpSerializable | PhpEnum | PhpReferenceNode;

export const NULL_VALUE: PhpNull = Object.freeze({ type: 'null' }) as PhpNull;

/** A PHP int in the model's representation (number when safe, bigint otherwise). */
export function intValue(v: bigint): number | bigint {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

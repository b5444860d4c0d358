/**
 * @session-migrate/php-session: decode PHP session payloads exactly as PHP does.
 *
 * - `decodeSession(bytes, handler)`: php / php_binary / php_serialize (php-src ext/session/session.c,
 *   values per ext/standard/var_unserializer.re) and igbinary (igbinary src/php7/igbinary.c).
 * - `sniffFormat(bytes)`, `classifySession(bytes, configured)`: per-file format and status for plan.
 * - `toValueModel(entries)`: the JSON value model of the shared QA cases.
 */
export {
  type SerializeHandler,
  type SessionEntries,
  type DecodeResult,
  type DecodeOptions,
  type SessionClassification,
  SERIALIZE_HANDLERS,
  decodeSession,
  sniffFormat,
  headLooksLikeSession,
  classifySession,
  loadableSessionFormat,
  loadsAsEmptySession,
} from './session.ts';
export type {
  PhpValue,
  PhpKey,
  PhpEntry,
  PhpNull,
  PhpBool,
  PhpInt,
  PhpFloat,
  PhpString,
  PhpArray,
  PhpObject,
  PhpSerializable,
  PhpEnum,
  PhpReferenceNode,
  PhpReference,
} from './model.ts';
export { toValueModel, phpFloatToString } from './value-model.ts';
export { phpKeyBytes, bytesToName } from './bytes.ts';

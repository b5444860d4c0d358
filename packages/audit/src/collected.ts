/**
 * The collect script (collect-script.sh, printed by `session-migrate audit collect-script`) and the
 * reader for the JSON documents it writes. Document format `session-migrate-collect/1`:
 * `{format, collector_version, host, collected_at, root, php: null | {binary, ini_output, values},
 *   docroots: [b64...], files: [{path, type, mode (octal string), uid, gid, size, content?, skipped?, target?}],
 *   users?: [{uid, name}]}`
 * where every host string (host, root, paths, contents, targets, php output, user names) is base64 (or
 * `hex:…` when the host had no base64 tool). `users` (collector_version 2) names the uids of `files`
 * from the host's user database; a document without it (collector_version 1) leaves them bare uids. `php.values` decodes to PHP's JSON
 * `{version, sys_temp_dir, loaded, values: ini_get_all(null, false)}`.
 */
import { readFileSync } from 'node:fs';
import { UserFacingError, assetPath, printable } from '@session-migrate/common';
import { CollectedFs, type CollectedEntry } from './vfs.ts';
import type { PhpProbe } from './analyze.ts';

/** The POSIX sh collect script, as printed by `audit collect-script`. */
export function collectScript(): string {
  return readFileSync(assetPath('auditCollectScript'), 'utf8');
}

/** One host's collected document, decoded. */
export interface CollectedHost {
  host: string;
  collectedAt: string;
  fs: CollectedFs;
  probe: PhpProbe | null;
  docroots: string[];
}

/** Largest collected document accepted (bytes). */
export const MAX_COLLECTED_BYTES = 256 * 1024 * 1024;

function bad(source: string, what: string): never {
  throw new UserFacingError(`${printable(source)}: not a session-migrate collect document (${what})`);
}

function decode(source: string, field: string, v: unknown): Buffer {
  if (typeof v !== 'string') bad(source, `${field} is not a string`);
  if (v.startsWith('hex:')) {
    const hex = v.slice(4);
    if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) bad(source, `${field} is not valid hex`);
    return Buffer.from(hex, 'hex');
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) bad(source, `${field} is not valid base64`);
  return Buffer.from(v, 'base64');
}

const str = (source: string, field: string, v: unknown) => decode(source, field, v).toString('utf8');

/**
 * Parses one collected document.
 * @param text the document; @param source its file name (for messages).
 * @throws UserFacingError (exit 2) with one line naming the file and what is wrong.
 */
export function parseCollected(text: string, source: string): CollectedHost {
  const d = collectedObject(text, source);
  const host = printable(str(source, 'host', d.host)) || source;
  if (!Array.isArray(d.files)) bad(source, 'files is not an array');
  const entries = d.files.map((f: unknown, i: number) => collectedEntry(f, i, source));
  const probe = d.php !== null && d.php !== undefined ? collectedProbe(d.php, source) : null;
  const docroots = Array.isArray(d.docroots) ? d.docroots.map((x, i) => str(source, `docroots[${i}]`, x)) : [];
  const users = collectedUsers(d.users, source);
  return {
    host,
    collectedAt: typeof d.collected_at === 'string' ? d.collected_at : '',
    fs: new CollectedFs(`collected ${host} from ${printable(source)}`, entries, users),
    probe,
    docroots,
  };
}

/**
 * The document's top-level object, checked to be JSON, an object and format
 * `session-migrate-collect/1`.
 * @throws UserFacingError (bad) naming the first of these that fails.
 */
function collectedObject(text: string, source: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    bad(source, `invalid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad(source, 'not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.format !== 'session-migrate-collect/1')
    bad(source, `format is ${JSON.stringify(d.format) ?? 'missing'}, expected "session-migrate-collect/1"`);
  return d;
}

/**
 * `files[i]`: an absolute path, a type (file, dir, symlink, other), an octal mode string, integer
 * uid/gid/size (bytes), and optional content (encoded bytes, decode), skipped reason and link target.
 * @throws UserFacingError (bad) naming `files[i].<field>` and what is wrong, fields in that order.
 */
function collectedEntry(f: unknown, i: number, source: string): CollectedEntry {
  if (typeof f !== 'object' || f === null) bad(source, `files[${i}] is not an object`);
  const e = f as Record<string, unknown>;
  const path = str(source, `files[${i}].path`, e.path);
  if (!path.startsWith('/')) bad(source, `files[${i}].path is not absolute`);
  const type = e.type;
  if (type !== 'file' && type !== 'dir' && type !== 'symlink' && type !== 'other')
    bad(source, `files[${i}].type is ${JSON.stringify(type)}`);
  const mode =
    typeof e.mode === 'string' && /^[0-7]{1,5}$/.test(e.mode)
      ? parseInt(e.mode, 8)
      : bad(source, `files[${i}].mode is not an octal string`);
  const num = (k: string) =>
    typeof e[k] === 'number' && Number.isInteger(e[k]) ? (e[k] as number) : bad(source, `files[${i}].${k} is not an integer`);
  const entry: CollectedEntry = { path, type, mode, uid: num('uid'), gid: num('gid'), size: num('size') };
  if (e.content !== undefined) entry.content = decode(source, `files[${i}].content`, e.content);
  if (e.skipped !== undefined) entry.skipped = str(source, `files[${i}].skipped`, e.skipped);
  if (e.target !== undefined) entry.target = str(source, `files[${i}].target`, e.target);
  return entry;
}

/**
 * `users`: the host's names of the uids the script recorded, as `[{uid, name}]` (uid a non-negative
 * integer, name encoded), into a map by uid for describeUidFrom (packages/sources users.ts); the first
 * entry of a uid wins and an empty name is no name. Missing (a document of collector_version 1): an
 * empty map, so every owner stays a bare uid. Names are kept as the host wrote them; describeUidFrom
 * makes them printable.
 * @throws UserFacingError (bad) naming `users` or `users[i].<field>` when it is not of that shape.
 */
function collectedUsers(users: unknown, source: string): Map<number, string> {
  const names = new Map<number, string>();
  if (users === undefined) return names;
  if (!Array.isArray(users)) bad(source, 'users is not an array');
  users.forEach((u: unknown, i: number) => {
    if (typeof u !== 'object' || u === null) bad(source, `users[${i}] is not an object`);
    const e = u as Record<string, unknown>;
    if (typeof e.uid !== 'number' || !Number.isSafeInteger(e.uid) || e.uid < 0) bad(source, `users[${i}].uid is not a uid`);
    const name = str(source, `users[${i}].name`, e.name);
    if (name !== '' && !names.has(e.uid)) names.set(e.uid, name);
  });
  return names;
}

/**
 * What the collector's php reported (`php`: `ini_output`, the `php --ini` text, and `values`, a JSON
 * text of version, sys_temp_dir and ini_get_all values), or null when `values` is missing, not JSON
 * or has no version string: the audit then models PHP without asking it.
 * @throws UserFacingError (bad) when `php` is not an object or a field is not an encoded string.
 */
function collectedProbe(php: unknown, source: string): PhpProbe | null {
  if (typeof php !== 'object') bad(source, 'php is not an object');
  const p = php as Record<string, unknown>;
  const iniOutput = str(source, 'php.ini_output', p.ini_output ?? '');
  const valuesText = str(source, 'php.values', p.values ?? '');
  let parsed: unknown = null;
  try {
    parsed = valuesText === '' ? null : JSON.parse(valuesText);
  } catch {
    parsed = null;
  }
  if (parsed === null || typeof parsed !== 'object') return null;
  const pv = parsed as { version?: unknown; sys_temp_dir?: unknown; values?: unknown };
  const values: Record<string, string | null> = {};
  if (typeof pv.values === 'object' && pv.values !== null) {
    for (const [k, v] of Object.entries(pv.values)) values[k] = typeof v === 'string' ? v : v === null ? null : String(v);
  }
  if (typeof pv.version !== 'string') return null;
  return { version: pv.version, iniOutput, values, ...(typeof pv.sys_temp_dir === 'string' ? { sysTempDir: pv.sys_temp_dir } : {}) };
}

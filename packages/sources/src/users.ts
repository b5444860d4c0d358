/**
 * The system's user database, for `plan --php-user NAME|UID` and for naming a uid in plan's output:
 * `getent passwd KEY` (NSS: /etc/passwd, LDAP, sssd alike; getent(1) exits 2 when KEY is not found),
 * else /etc/passwd itself (passwd(5): `name:password:UID:GID:gecos:home:shell`) where getent is missing.
 * Another system's user database (the passwd file of a mounted image, for `audit --root`) is parsed
 * from its text by passwdNames and named with describeUidFrom, in the same `33 (www-data)` form.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UserFacingError, printable } from '@session-migrate/common';

/** A passwd entry's name and uid. */
export interface SystemUser {
  name: string;
  uid: number;
}

/** The entry of a user name or uid; undefined when the database has none. */
export function lookupUser(key: string): SystemUser | undefined {
  let text: string | undefined;
  try {
    text = execFileSync('getent', ['passwd', key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number | null };
    // getent present: exit 2 is "not found"; anything else falls back to the file as well.
    if (e.code !== 'ENOENT' && e.status === 2) return undefined;
    text = undefined;
  }
  if (text === undefined) {
    try {
      text = readFileSync('/etc/passwd', 'utf8');
    } catch {
      return undefined;
    }
  }
  for (const line of text.split('\n')) {
    const user = passwdEntry(line);
    if (user !== undefined && (user.name === key || String(user.uid) === key)) return user;
  }
  return undefined;
}

/**
 * One line of a passwd(5) file (`name:password:UID:GID:gecos:home:shell`) as a name and uid, or
 * undefined for a line that is no entry: blank, too few fields, a uid that is not a decimal number,
 * an empty name, or glibc's NIS compat lines (`+name`, `-name`: nss_compat, not names of their own).
 */
function passwdEntry(line: string): SystemUser | undefined {
  const f = line.split(':');
  if (f.length < 4 || !/^\d+$/.test(f[2]!)) return undefined;
  const name = f[0]!;
  if (name === '' || name.startsWith('+') || name.startsWith('-')) return undefined;
  return { name, uid: Number(f[2]) };
}

/**
 * The names of a passwd(5) file's text by uid (for a user database that is not this machine's, e.g.
 * the /etc/passwd of a mounted system image: the audit's --root). The first entry of a uid wins, as
 * getpwuid(3) reads the files database (glibc nss/nss_files, first match). Pure: no I/O.
 */
export function passwdNames(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    const user = passwdEntry(line);
    if (user !== undefined && !names.has(user.uid)) names.set(user.uid, user.name);
  }
  return names;
}

/** The largest uid Linux takes (uid_t is 32 bits; (uid_t)-1 means "no change" to chown(2)). */
const MAX_UID = 2 ** 32 - 2;

/**
 * The uid of `plan --php-user`: a number is taken as a uid (also one without a passwd entry, as in
 * many containers), a name is looked up (lookupUser).
 * @throws UserFacingError for an empty value, an unknown name or a number out of range
 */
export function resolvePhpUser(user: string): number {
  const given = user.trim();
  if (/^\d+$/.test(given)) {
    const uid = Number(given);
    if (!Number.isSafeInteger(uid) || uid > MAX_UID) throw new UserFacingError(`--php-user ${given}: not a valid uid`);
    return uid;
  }
  if (given === '') throw new UserFacingError('--php-user is empty: give the user PHP runs as (e.g. www-data) or its uid');
  const found = lookupUser(given);
  if (found === undefined)
    throw new UserFacingError(
      `--php-user ${printable(given)}: no such user in the system's user database (getent passwd); give the user PHP runs as (e.g. www-data) or its uid`,
    );
  return found.uid;
}

/** `33 (www-data)`, or `33` when the uid has no passwd entry (this machine's user database: lookupUser). */
export function describeUid(uid: number): string {
  const found = lookupUser(String(uid));
  return uidWithName(uid, found !== undefined && found.uid === uid ? found.name : undefined);
}

/**
 * `33 (www-data)` from a map of names by uid (passwdNames), or `33` when it has none for the uid.
 * The name is made printable (a hostile passwd file cannot move the cursor: common printable).
 */
export function describeUidFrom(uid: number, names: ReadonlyMap<number, string>): string {
  return uidWithName(uid, names.get(uid));
}

/** The one way a uid is named: the uid, then its user name in parentheses when there is one. */
function uidWithName(uid: number, name: string | undefined): string {
  return name === undefined ? String(uid) : `${uid} (${printable(name)})`;
}

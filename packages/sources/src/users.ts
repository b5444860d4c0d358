/**
 * The system's user database, for `plan --php-user NAME|UID` and for naming a uid in plan's output:
 * `getent passwd KEY` (NSS: /etc/passwd, LDAP, sssd alike; getent(1) exits 2 when KEY is not found),
 * else /etc/passwd itself (passwd(5): `name:password:UID:GID:gecos:home:shell`) where getent is missing.
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
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!)) continue;
    if (f[0] === key || f[2] === key) return { name: f[0]!, uid: Number(f[2]) };
  }
  return undefined;
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

/** `33 (www-data)`, or `33` when the uid has no passwd entry. */
export function describeUid(uid: number): string {
  const found = lookupUser(String(uid));
  return found !== undefined && found.uid === uid ? `${uid} (${found.name})` : String(uid);
}

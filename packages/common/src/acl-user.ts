/**
 * The one check of a Redis ACL user name given on the command line (`--handler-user`) or read back from
 * a plan or from generate php's recorded choices. Here rather than in @session-migrate/redis so that
 * the CLI checks it without loading a Redis client.
 */
import { UserFacingError } from './errors.ts';

/**
 * Checks a Redis ACL user name. Redis refuses a user name with whitespace or a NUL byte
 * (redis src/acl.c, `ACL SETUSER`: "Usernames can't contain spaces or null characters",
 * ACLStringHasSpaces); the other control characters Redis would take are refused too, since they
 * cannot be printed, nor written safely into the generated PHP. An empty name is no user.
 * @param what how the option is named in the error, e.g. `--handler-user`
 * @returns the name, unchanged.
 * @throws UserFacingError (one line) for an empty name or one with whitespace or control characters;
 *   the message does not repeat the name (it may be a password typed in the wrong place).
 */
export function checkAclUserName(name: string, what: string): string {
  if (name === '') throw new UserFacingError(`${what}: empty; give the name of a Redis ACL user`);
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f-\x9f]/u.test(name))
    throw new UserFacingError(
      `${what}: a Redis ACL user name cannot contain spaces or control characters (redis ACL SETUSER refuses them)`,
    );
  return name;
}

/**
 * The one home of the CLI's "option X needs option Y" rule and its message. An option that means
 * something only with another one (plan's --fpm-pool-name without --fpm-pool, --php-version without
 * --php-ini, --key-command-timeout without --key-command, ...) is a usage error, not silently ignored:
 * ignoring it would hide a mistyped or forgotten option.
 *
 * A rule that also guards a library function (a use case called without the CLI) lives in that
 * function only, and the CLI does not repeat it: --tls-cert-file / --tls-key-file (normalizeTlsFiles,
 * packages/redis/src/tls.ts), audit's --scan-dir needs --ini (runAudit, packages/audit/src/use-case.ts),
 * generate iac's --replicas-per-shard needs --cluster-shards and --prefix only with --auth rbac
 * (renderIac, packages/generate/src/iac.ts), rollback's --ids-from needs --to and --to-sources needs
 * --plan (packages/migrate/src/use-cases/rollback.ts).
 */
import { UserFacingError } from '@session-migrate/common';

/**
 * Refuses options given without the option they need, naming only the ones given:
 * "--a needs --b", "--a and --c need --b", "--a, --c and --d need --b" (in the order of `options`).
 * An option counts as given when its parsed value is neither undefined nor false (a boolean left at
 * its default false, or given as `--no-x`, is not); `needed` counts as given when its value is not
 * undefined.
 * @param args the command's parsed arguments (yargs' result, kebab-case keys)
 * @param options the names (kebab-case, without `--`) of the options that need `needed`
 * @param needed the name of the option they need (kebab-case, without `--`)
 * @param shown how the message writes `needed` (default `--<needed>`; e.g. `--php-ini FILE`)
 * @throws UserFacingError (exit 2, one line) when `needed` is not given and one of `options` is
 */
export function checkOptionNeeds<A extends object>(
  args: A,
  options: ReadonlyArray<keyof A & string>,
  needed: keyof A & string,
  shown = `--${needed}`,
): void {
  const value = (name: string): unknown => (args as Record<string, unknown>)[name];
  if (value(needed) !== undefined) return;
  const given = options.filter((o) => value(o) !== undefined && value(o) !== false).map((o) => `--${o}`);
  if (given.length === 0) return;
  const names = given.length === 1 ? given[0] : `${given.slice(0, -1).join(', ')} and ${given.at(-1)}`;
  throw new UserFacingError(`${names} ${given.length === 1 ? 'needs' : 'need'} ${shown}`);
}

/**
 * yargs 18 renders the running command's whole help text on every run, right after it starts the
 * command's handler (yargs build/lib/command.js handleValidationAndGetResult: `if (!isDefaultCommand)
 * yargs.getInternalMethods().getUsageInstance().cacheHelpMessage()`; build/lib/usage.js
 * cacheHelpMessage is `cachedHelpMessage = this.help()`). The cache only serves a help text asked for
 * after the handler started (yargs' showHelp() or getHelp() from a handler, or its default fail output
 * for an async handler's error): the CLI does neither (its handlers never see the yargs instance, and
 * main.ts's own .fail() throws, so yargs prints no help on failure). Rendering it (cliui, string-width
 * for every line of the command's options) was about a third of the CPU of a short command.
 */

/** The part of yargs' usage instance (build/lib/usage.js) this touches; @types/yargs does not type it. */
interface UsageInstance {
  cacheHelpMessage?: unknown;
}

/**
 * Makes yargs skip rendering the running command's help text after starting its handler (the cache
 * above is never read by this CLI); `--help` is unaffected: it renders the help when asked
 * (yargs-factory.js showHelp, usage.js help()).
 * @param parser a yargs instance, before parsing
 * @returns true when the hook was found and replaced; false when yargs no longer has it (nothing is
 *   changed then, and packages/cli/test/help-cache.test.ts fails so the upgrade is noticed)
 */
export function skipHelpCaching(parser: unknown): boolean {
  const internal = (parser as { getInternalMethods?: () => { getUsageInstance?: () => UsageInstance } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.();
  if (usage === undefined || typeof usage.cacheHelpMessage !== 'function') return false;
  usage.cacheHelpMessage = () => {};
  return true;
}

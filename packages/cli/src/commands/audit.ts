/**
 * `session-migrate audit [action]`: find the effective PHP session configuration and what is unsafe.
 * The handler loads the audit (../commands-audit.ts, @session-migrate/audit) only when it runs.
 */
import { SEVERITIES, VERSION } from '@session-migrate/common';
import type { Argv } from 'yargs';
import type { AuditArgs } from '../commands-audit.ts';
import { checkOptionNeeds } from '../option-needs.ts';
import { defineCommand, type CommandFactory, type OptionArgs } from './context.ts';

/** --fail-on values: the one severity scale (common/src/finding.ts), and none. */
export const FAIL_ON = [...SEVERITIES, 'none'] as const;

/** audit's positional action and options, in --help's order. */
function auditOptions(y: Argv) {
  return y
    .positional('action', {
      type: 'string',
      choices: ['collect-script'],
      describe: 'collect-script: print the POSIX sh script that gathers a host for --from-collected',
    })
    .option('ini', { type: 'string', describe: 'audit exactly what `php -n -c FILE` loads' })
    .option('scan-dir', { type: 'string', describe: 'with --ini: PHP_INI_SCAN_DIR (\':\'-joined; "" = none)' })
    .option('root', { type: 'string', describe: 'audit a mounted or copied filesystem (nothing outside it is read)' })
    .option('docroot', {
      type: 'string',
      array: true,
      describe: 'document root to search for .user.ini / .htaccess (repeatable); its PHP code is read as with --app',
    })
    .option('app', {
      type: 'string',
      array: true,
      describe:
        'application directory whose PHP code is read for run-time session settings: ini_set(), session_save_path(), session_set_cookie_params(), ... (repeatable)',
    })
    .option('host', {
      type: 'string',
      describe: 'SERVER_NAME for the docroot variants: applies php.ini [HOST=NAME] sections (FPM/CGI)',
    })
    .option('from-collected', { type: 'string', array: true, describe: 'analyse documents written by the collect script' })
    .option('fleet', { type: 'boolean', default: false, describe: 'with --from-collected: one summary table for all hosts' })
    .option('php', { type: 'string', default: 'php', describe: 'php binary to ask on the live host' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
    .option('sarif', { type: 'boolean', default: false, describe: 'print SARIF 2.1.0' })
    .option('fail-on', {
      type: 'string',
      choices: FAIL_ON,
      default: 'high',
      describe: 'exit 1 when a finding is at or above this severity',
    });
}

/**
 * The end of `audit --help`: how to audit a host without Node, with the collect script (its source:
 * packages/audit/src/collect-script.sh, printed by `audit collect-script`; docs/audit.md, "A fleet").
 * The script takes the document roots as arguments and prints one JSON document on stdout.
 */
export const AUDIT_EPILOG = [
  'A host without Node (docs/audit.md, "A fleet: the collect script and --from-collected"):',
  '  session-migrate audit collect-script > collect.sh         # the collect script (POSIX sh)',
  '  umask 077; sh collect.sh /var/www/html > host.json        # on each host; arguments: its document roots',
  "  umask 077; ssh web-1 'sh -s /var/www/html' < collect.sh > web-1.json   # the same over ssh",
  '  session-migrate audit --from-collected host.json web-1.json [--fleet]',
  'AUDIT_ROOT=/mnt/img sh collect.sh collects a mounted image instead of the live host. A collected document',
  "holds the host's ini files as they are (Redis passwords in session.save_path too): keep it like a secret (umask 077: mode 0600).",
].join('\n');

/**
 * audit's arguments from its parsed options (a list not given is empty; the others stay absent).
 * @throws UserFacingError (checkOptionNeeds) for --fleet without --from-collected: the CLI's rule (the
 *   fleet summary is the CLI's way of printing). The audit's other option rules (--scan-dir needs
 *   --ini, one of --ini/--from-collected/--root, ...) protect runAudit's library callers too, so they
 *   live in runAudit only (packages/audit/src/use-case.ts checkOptions), not here.
 */
function auditArgsFromOptions(a: OptionArgs<typeof auditOptions>): AuditArgs {
  checkOptionNeeds(a, ['fleet'], 'from-collected', '--from-collected FILE...');
  return {
    ...(a.ini !== undefined ? { ini: a.ini } : {}),
    ...(a['scan-dir'] !== undefined ? { scanDir: a['scan-dir'] } : {}),
    ...(a.root !== undefined ? { root: a.root } : {}),
    ...(a.host !== undefined ? { host: a.host } : {}),
    docroot: a.docroot ?? [],
    app: a.app ?? [],
    fromCollected: a['from-collected'] ?? [],
    fleet: a.fleet,
    json: a.json,
    sarif: a.sarif,
    failOn: a['fail-on'] as (typeof FAIL_ON)[number],
    php: a.php,
    version: VERSION,
  };
}

export const auditModule: CommandFactory = ({ run, print }) =>
  defineCommand({
    command: 'audit [action]',
    describe: 'find the effective PHP session configuration (per SAPI, FPM pool, docroot) and what is unsafe',
    builder: (y) => auditOptions(y).epilog(AUDIT_EPILOG),
    handler: (a) =>
      run(async () => {
        const { auditCollectScript, auditCommand } = await import('../commands-audit.ts');
        if (a.action === 'collect-script') return auditCollectScript(print);
        return auditCommand(auditArgsFromOptions(a), print);
      })(),
  });

/**
 * Entry point of the `session-migrate` CLI: parses arguments with yargs and runs one command.
 * Exit codes: 0 success, 1 a check failed, 2 usage, input or connection error (one line on stderr).
 */
import yargs, { type Argv } from 'yargs';
import { DEFAULT_GC_MAXLIFETIME, UserFacingError, VERSION, printable } from '@session-migrate/common';
import { SERIALIZE_HANDLERS, type SerializeHandler } from '@session-migrate/php-session';
import {
  DEFAULT_ARTIFACTS_DIR, DEFAULT_MAX_SESSION_BYTES, DEFAULT_PLAN_FILE, DEFAULT_PREFIX,
  applyCommand, keysGenerate, planCommand, verifyCommand,
} from './commands.ts';
import { demoCommand } from './demo.ts';
import { keyProviderFromArgs, keyProviderOptions } from './key-options.ts';
import { keysId, keysRingAdd, keysRingInit, keysRingRetire, keysRingRotate } from './commands-keys.ts';
import { rotateCommand } from './commands-rotate.ts';
import { codemodPhpModule } from './commands-codemod-php.ts';
import { codemodCdkModule } from './commands-codemod-cdk.ts';
import { generateIacModule } from './commands-generate-iac.ts';
import { rollbackCommand } from './commands-rollback.ts';
import { purgeCommand } from './commands-purge.ts';
import { generateCommand } from './commands-generate.ts';
import { handlerChoicesFromArgs, handlerOptions } from './handler-options.ts';
import { FAIL_ON, auditCollectScript, auditCommand } from './commands-audit.ts';
import { allTlsOptions, tlsFilesFromArgs, tlsOptions } from './redis-options.ts';
import { checkSpellings, checkValues, optionTableOf, positionalsOf, type OptionTable } from './argv.ts';


const HANDLERS = SERIALIZE_HANDLERS;

const print = (line: string) => process.stdout.write(line + '\n');

/** Joins a multi-line message (yargs writes some on several lines) into one printable line. */
function oneLine(message: string): string {
  return printable(message.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' '));
}

function keyOptions<T>(y: Argv<T>) {
  return keyProviderOptions(y)
    .option('prefix', { type: 'string', default: DEFAULT_PREFIX, describe: 'Redis key prefix' });
}

function phpOptions<T>(y: Argv<T>) {
  return y
    .option('gc-maxlifetime', { type: 'number', default: DEFAULT_GC_MAXLIFETIME, describe: "session.gc_maxlifetime in seconds, as in the PHP application's php.ini" })
    .option('serialize-handler', { type: 'string', choices: HANDLERS, default: 'php', describe: "session.serialize_handler, as in the application's php.ini" });
}

/**
 * Test hook: `inspect` sees what yargs parsed and the option table of the command (after the spelling
 * checks and yargs' own validation: strict names, required options, choices; or, with
 * `beforeValidation`, before yargs' validation), and nothing runs.
 */
export interface MainHooks {
  inspect?: (args: Record<string, unknown>, table: OptionTable) => void;
  beforeValidation?: boolean;
}

/** Thrown by the inspect hook's middleware to stop before the command runs. */
class Inspected extends Error {}

let exitCode = 0;
let epipeHandled = false;

/**
 * Runs the CLI.
 * @param argv arguments without `node` and the script path.
 * @param hooks tests only: `inspect` receives what yargs parsed, and no command runs (returns 0).
 * @returns the exit code.
 */
export async function main(argv: string[], hooks: MainHooks = {}): Promise<number> {
  exitCode = 0;
  // Output piped into `head` and closed early is not an error of ours: stop quietly.
  if (!epipeHandled) {
    epipeHandled = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(exitCode);
      throw err;
    });
  }
  const run = (fn: () => Promise<number> | number) => async () => {
    exitCode = await fn();
  };
  const parser = yargs(argv)
    .scriptName('session-migrate')
    // yargs is the only parser: its result is what commands read. What it accepts but cannot show in
    // its result (--dry-run=yes, an option given twice, --no-<string>) is refused from the words as
    // typed, against yargs' own option table of the command (argv.ts).
    .middleware((a: Record<string, unknown>, y?: unknown) => {
      const table = optionTableOf(y);
      checkSpellings(argv, table, positionalsOf(y));
      checkValues(a, table);
    }, true)
    .usage('$0 <command> [options]\n\nMove PHP sessions from plaintext files into encrypted Redis.')
    .command('keys', 'manage master keys', (y) =>
      y
        .command('generate', 'write a new random 32-byte master key (base64, mode 0600); never overwrites', (g) =>
          g.option('out', { type: 'string', demandOption: true, describe: 'file to create' }),
        (a) => run(() => keysGenerate({ out: a.out }, print))())
        .command('id', 'print the key ID of a key, or the lookup ID and key IDs of a key ring (safe to print)', (g) =>
          keyProviderOptions(g).option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
        (a) => run(() => keysId({ key: keyProviderFromArgs(a, true)!, json: a.json }, print))())
        .command('ring', 'manage a key ring file (docs/keys.md)', (r) =>
          r
            .command('init', 'create a key ring (mode 0600) from a key or ring (keeps its lookup key), or from a new key', (g) =>
              keyProviderOptions(g).option('out', { type: 'string', demandOption: true, describe: 'key ring file to create' }),
            (a) => run(() => {
              const key = keyProviderFromArgs(a, false);
              return keysRingInit({ out: a.out, ...(key !== undefined ? { key } : {}) }, print);
            })())
            .command('add', 'add a new random master key as a previous key (opens, does not seal yet)', (g) =>
              g.option('key-ring', { type: 'string', demandOption: true, describe: 'key ring file to update' }),
            (a) => run(() => keysRingAdd({ ring: a['key-ring'] }, print))())
            .command('rotate', 'make a new random key (or --to a previous key) current; the old current key becomes previous', (g) =>
              g.option('key-ring', { type: 'string', demandOption: true, describe: 'key ring file to update' })
                .option('to', { type: 'string', describe: 'key ID of a previous key to make current (from keys ring add)' }),
            (a) => run(() => keysRingRotate({ ring: a['key-ring'], ...(a.to !== undefined ? { to: a.to } : {}) }, print))())
            .command('retire', 'remove a previous key from the ring (after verify --require-key-id)', (g) =>
              g.option('key-ring', { type: 'string', demandOption: true, describe: 'key ring file to update' })
                .option('key-id', { type: 'string', demandOption: true, describe: 'key ID to remove' }),
            (a) => run(() => keysRingRetire({ ring: a['key-ring'], keyId: a['key-id'] }, print))())
            .demandCommand(1, 'name a keys ring command: init, add, rotate or retire'))
        .demandCommand(1, 'name a keys command: generate, id or ring'),
    )
    .command('plan', 'scan the source and target and write a plan file', (y) =>
      handlerOptions(allTlsOptions(phpOptions(keyOptions(y))))
        .option('source', { type: 'string', array: true, demandOption: true, describe: "repeatable: several directories, or files plus a Redis source. files:DIR (DIR may be a save_path like '2;/var/lib/php/sessions'), or redis:URL for plaintext phpredis sessions (redis[s]://[USER@]host:port/db?prefix=P, redis[s]+sentinel://host:port/MASTER/db?prefix=P, or tcp://host:port?auth=..&prefix=..&database=..; a cluster is detected; TLS: --source-tls-*; password: SESSION_MIGRATE_SOURCE_REDIS_PASSWORD)" })
        .option('target', { type: 'string', demandOption: true, describe: 'redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...; a cluster is detected (password: SESSION_MIGRATE_REDIS_PASSWORD; sentinels: SESSION_MIGRATE_SENTINEL_PASSWORD)' })
        .option('out', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file to write' })
        .option('artifacts-dir', { type: 'string', default: DEFAULT_ARTIFACTS_DIR, describe: 'where apply writes the PHP class and ini fragment' })
        .option('install-dir', { type: 'string', describe: 'where the PHP files will live on the PHP hosts (default: the artifacts dir)' })
        .option('max-session-bytes', { type: 'number', default: DEFAULT_MAX_SESSION_BYTES, describe: 'larger session files are reported, not migrated' })
        .option('read-through', { type: 'boolean', default: false, describe: 'generate the handler in read-through (migrating) mode: a Redis miss reads the old session file (docs/runbook.md)' })
        .option('json', { type: 'boolean', default: false, describe: 'print the plan as JSON' }),
    (a) => run(() => planCommand({
      source: a.source, target: a.target, key: keyProviderFromArgs(a, true)!, prefix: a.prefix, out: a.out,
      gcMaxlifetime: a['gc-maxlifetime'], serializeHandler: a['serialize-handler'] as SerializeHandler,
      maxSessionBytes: a['max-session-bytes'], artifactsDir: a['artifacts-dir'],
      ...(a['install-dir'] !== undefined ? { installDir: a['install-dir'] } : {}), readThrough: a['read-through'], json: a.json,
      tls: tlsFilesFromArgs(a, 'target'), sourceTls: tlsFilesFromArgs(a, 'source'),
      handler: handlerChoicesFromArgs(a),
    }, print))())
    .command('apply', 'carry out a plan: generate the PHP artifacts and copy live sessions into Redis', (y) =>
      allTlsOptions(keyProviderOptions(y))
        .option('plan', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file from plan' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'count and show, write nothing' })
        .option('workers', { type: 'number', describe: 'worker threads that read and encrypt sessions; 0 = none (default: automatic, from 100,000 sessions)' })
        .option('retries', { type: 'number', describe: 'retries of a failed Redis batch (restart, dropped connection) before apply stops, exit 1; re-run to finish (default 8)' })
        .option('retry-delay-ms', { type: 'number', describe: 'first retry pause in ms, doubled each retry up to 5 s (default 250)' })
        .option('min-replicas', { type: 'number', describe: 'replicas that must acknowledge each batch (WAIT); fewer in time exits 1 (default: the replicas each master has now, from INFO replication)' })
        .option('wait-timeout-ms', { type: 'number', describe: 'WAIT timeout per batch in ms (default 2000)' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' }),
    (a) => run(() => {
      const key = keyProviderFromArgs(a, false);
      return applyCommand({
        plan: a.plan, dryRun: a['dry-run'], json: a.json, ...(a.workers !== undefined ? { workers: a.workers } : {}),
        ...(a.retries !== undefined ? { retries: a.retries } : {}), ...(a['retry-delay-ms'] !== undefined ? { retryDelayMs: a['retry-delay-ms'] } : {}),
        ...(a['min-replicas'] !== undefined ? { minReplicas: a['min-replicas'] } : {}), ...(a['wait-timeout-ms'] !== undefined ? { waitTimeoutMs: a['wait-timeout-ms'] } : {}),
        tls: tlsFilesFromArgs(a, 'target'), sourceTls: tlsFilesFromArgs(a, 'source'),
        ...(key !== undefined ? { key } : {}),
      }, print);
    })())
    .command('verify', 'check no plaintext session is left anywhere in the database and every value under the prefix (on every master) is an authentic envelope with a TTL', (y) =>
      allTlsOptions(keyProviderOptions(y))
        .option('plan', { type: 'string', describe: 'take target, key file, prefix, gc_maxlifetime and serialize_handler from this plan' })
        .option('target', { type: 'string', describe: 'redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...; a cluster is detected (password: SESSION_MIGRATE_REDIS_PASSWORD; sentinels: SESSION_MIGRATE_SENTINEL_PASSWORD)' })
        .option('require-key-id', { type: 'string', describe: 'fail when any value is sealed under another key ID (after rotate)' })
        .option('prefix', { type: 'string', describe: `Redis key prefix (default ${DEFAULT_PREFIX})` })
        .option('gc-maxlifetime', { type: 'number', describe: `session.gc_maxlifetime in seconds (default ${DEFAULT_GC_MAXLIFETIME})` })
        .option('serialize-handler', { type: 'string', choices: HANDLERS, describe: 'session.serialize_handler (default php)' })
        .option('source', { type: 'string', array: true, describe: 'files:DIR or redis:URL (repeatable): also check every live session of each is in Redis, byte for byte (default with --plan: the presence of every source of the plan); a redis: source also fails while plaintext keys remain under its prefix' })
        .option('plaintext-prefix', { type: 'string', describe: 'fail while keys remain under this prefix on the target server (plaintext phpredis sessions, e.g. PHPREDIS_SESSION:)' })
        .option('prefix-only', { type: 'boolean', default: false, describe: 'classify only the keys under the prefix (a database shared with other applications); default: every key of the database, so a plaintext session anywhere fails' })
        .option('presence', { type: 'boolean', default: true, describe: "with --plan and no --source: every live session of the plan's source must be in Redis (--no-presence after the switch to strict mode, when logouts leave no tombstone)" })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' }),
    (a) => run(() => verifyCommand({
      presence: a.presence, prefixOnly: a['prefix-only'], tls: tlsFilesFromArgs(a, 'target'), sourceTls: tlsFilesFromArgs(a, 'source'),
      ...(a.plan !== undefined ? { plan: a.plan } : {}),
      ...(a.target !== undefined ? { target: a.target } : {}),
      ...((k) => (k !== undefined ? { key: k } : {}))(keyProviderFromArgs(a, false)),
      ...(a['require-key-id'] !== undefined ? { requireKeyId: a['require-key-id'] } : {}),
      ...(a.prefix !== undefined ? { prefix: a.prefix } : {}),
      ...(a['gc-maxlifetime'] !== undefined ? { gcMaxlifetime: a['gc-maxlifetime'] } : {}),
      ...(a['serialize-handler'] !== undefined ? { serializeHandler: a['serialize-handler'] as SerializeHandler } : {}),
      ...(a.source !== undefined ? { source: a.source } : {}),
      ...(a['plaintext-prefix'] !== undefined ? { plaintextPrefix: a['plaintext-prefix'] } : {}),
      json: a.json,
    }, print))())
    .command('rotate', 'online: re-encrypt every session under the key ring\'s current key (compare-and-set, TTLs kept)', (y) =>
      tlsOptions(keyProviderOptions(y), 'target')
        .option('target', { type: 'string', demandOption: true, describe: 'redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...; a cluster is detected (password: SESSION_MIGRATE_REDIS_PASSWORD; sentinels: SESSION_MIGRATE_SENTINEL_PASSWORD)' })
        .option('prefix', { type: 'string', default: DEFAULT_PREFIX, describe: 'Redis key prefix' })
        .option('scan-count', { type: 'number', default: 500, describe: 'SCAN COUNT hint and batch size' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' }),
    (a) => run(() => rotateCommand({ target: a.target, key: keyProviderFromArgs(a, true)!, prefix: a.prefix, json: a.json, scanCount: a['scan-count'], tls: tlsFilesFromArgs(a, 'target') }, print))())
    .command('codemod', 'rewrite application code as a reviewed diff', (y) =>
      y
        .command(codemodPhpModule(run, print))
        .command(codemodCdkModule(run, print))
        .demandCommand(1, 'name a codemod: php or cdk'),
    )
    .command('generate', "write a plan's PHP artifacts (php) or infrastructure templates for the Redis side (iac)", (y) =>
      y
        .command('php', "write only the plan's PHP artifacts (read-through or strict mode), copy nothing", (g) =>
          handlerOptions(g)
            .option('plan', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file from plan' })
            .option('read-through', { type: 'boolean', describe: 'read-through (migrating) mode, whatever the plan says' })
            .option('strict', { type: 'boolean', describe: 'strict mode (sessions only in Redis), whatever the plan says' })
            .option('dry-run', { type: 'boolean', default: false, describe: 'show which files would change, write nothing' })
            .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' })
            .conflicts('read-through', 'strict'),
        (a) => run(() => generateCommand({
          plan: a.plan, dryRun: a['dry-run'], json: a.json, ...handlerChoicesFromArgs(a),
          ...(a['read-through'] === true ? { mode: 'read-through' as const } : a.strict === true ? { mode: 'strict' as const } : {}),
        }, print))())
        .command(generateIacModule(run, print))
        .demandCommand(1, 'name what to generate: php or iac'),
    )
    .command('purge', 'delete the plaintext session files proven in Redis (same or newer); refuses while any is not', (y) =>
      allTlsOptions(keyProviderOptions(y))
        .option('plan', { type: 'string', describe: 'take source, target, key file, prefix and gc_maxlifetime from this plan' })
        .option('source', { type: 'string', array: true, describe: 'files:DIR (DIR may be a save_path like \'2;/var/lib/php/sessions\') or redis:URL, repeatable (default: every source of the plan)' })
        .option('target', { type: 'string', describe: 'redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...; a cluster is detected (password: SESSION_MIGRATE_REDIS_PASSWORD; sentinels: SESSION_MIGRATE_SENTINEL_PASSWORD)' })
        .option('prefix', { type: 'string', describe: `Redis key prefix (default ${DEFAULT_PREFIX})` })
        .option('gc-maxlifetime', { type: 'number', describe: `session.gc_maxlifetime in seconds (default ${DEFAULT_GC_MAXLIFETIME})` })
        .option('dry-run', { type: 'boolean', default: false, describe: 'list what would be deleted, delete nothing' })
        .option('allow-partial', { type: 'boolean', default: false, describe: 'delete the proven files even while others are not proven (still exits 1)' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' }),
    (a) => run(() => purgeCommand({
      ...(keyProviderFromArgs(a, false) !== undefined ? { key: keyProviderFromArgs(a, false)! } : {}),
      ...(a.plan !== undefined ? { plan: a.plan } : {}),
      ...(a.source !== undefined ? { source: a.source } : {}),
      ...(a.target !== undefined ? { target: a.target } : {}),
      ...(a.prefix !== undefined ? { prefix: a.prefix } : {}),
      ...(a['gc-maxlifetime'] !== undefined ? { gcMaxlifetime: a['gc-maxlifetime'] } : {}),
      dryRun: a['dry-run'], allowPartial: a['allow-partial'], json: a.json,
      tls: tlsFilesFromArgs(a, 'target'), sourceTls: tlsFilesFromArgs(a, 'source'),
    }, print))())
    .command('rollback', 'the way back: write the Redis sessions back as plaintext files (--to, or --to-sources for every source of the plan), or remove the migrated keys (--remove-keys)', (y) =>
      tlsOptions(keyProviderOptions(y), 'target')
        .option('plan', { type: 'string', describe: 'take target, key file, prefix and gc_maxlifetime from this plan' })
        .option('target', { type: 'string', describe: 'redis://host:port/db, rediss://..., redis+sentinel://host:port[,host:port]/MASTER[/db] or rediss+sentinel://...; a cluster is detected (password: SESSION_MIGRATE_REDIS_PASSWORD; sentinels: SESSION_MIGRATE_SENTINEL_PASSWORD)' })
        .option('prefix', { type: 'string', describe: `Redis key prefix (default ${DEFAULT_PREFIX})` })
        .option('gc-maxlifetime', { type: 'number', describe: `session.gc_maxlifetime in seconds (default ${DEFAULT_GC_MAXLIFETIME})` })
        .option('to', { type: 'string', describe: "files:SAVE_PATH to write the sessions back to (e.g. 'files:2;0600;/var/lib/php/sessions')" })
        .option('ids-from', { type: 'string', describe: 'files:DIR whose sess_<id> names give the session IDs to restore (default: the --to directory)' })
        .option('to-sources', { type: 'boolean', default: false, describe: "with --plan: write the sessions back to every files: source of the plan, each to its own save_path with the IDs it lists" })
        .option('remove-keys', { type: 'boolean', default: false, describe: 'delete the migrated keys instead (users with sessions only in Redis are logged out)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'count and show, change nothing' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' }),
    (a) => run(() => rollbackCommand({
      ...(keyProviderFromArgs(a, false) !== undefined ? { key: keyProviderFromArgs(a, false)! } : {}),
      ...(a.plan !== undefined ? { plan: a.plan } : {}),
      ...(a.target !== undefined ? { target: a.target } : {}),
      ...(a.prefix !== undefined ? { prefix: a.prefix } : {}),
      ...(a['gc-maxlifetime'] !== undefined ? { gcMaxlifetime: a['gc-maxlifetime'] } : {}),
      ...(a.to !== undefined ? { to: a.to } : {}),
      ...(a['ids-from'] !== undefined ? { idsFrom: a['ids-from'] } : {}),
      removeKeys: a['remove-keys'], toSources: a['to-sources'], dryRun: a['dry-run'], json: a.json, tls: tlsFilesFromArgs(a, 'target'),
    }, print))())
    .command('audit [action]', 'find the effective PHP session configuration (per SAPI, FPM pool, docroot) and what is unsafe', (y) =>
      y
        .positional('action', { type: 'string', choices: ['collect-script'], describe: 'collect-script: print the POSIX sh script that gathers a host for --from-collected' })
        .option('ini', { type: 'string', describe: 'audit exactly what `php -n -c FILE` loads' })
        .option('scan-dir', { type: 'string', describe: "with --ini: PHP_INI_SCAN_DIR (':'-joined; \"\" = none)" })
        .option('root', { type: 'string', describe: 'audit a mounted or copied filesystem (nothing outside it is read)' })
        .option('docroot', { type: 'string', array: true, describe: 'document root to search for .user.ini / .htaccess (repeatable); its PHP code is read as with --app' })
        .option('app', { type: 'string', array: true, describe: 'application directory whose PHP code is read for run-time session settings: ini_set(), session_save_path(), session_set_cookie_params(), ... (repeatable)' })
        .option('host', { type: 'string', describe: 'SERVER_NAME for the docroot variants: applies php.ini [HOST=NAME] sections (FPM/CGI)' })
        .option('from-collected', { type: 'string', array: true, describe: 'analyse documents written by the collect script' })
        .option('fleet', { type: 'boolean', default: false, describe: 'with --from-collected: one summary table for all hosts' })
        .option('php', { type: 'string', default: 'php', describe: 'php binary to ask on the live host' })
        .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
        .option('sarif', { type: 'boolean', default: false, describe: 'print SARIF 2.1.0' })
        .option('fail-on', { type: 'string', choices: FAIL_ON, default: 'high', describe: 'exit 1 when a finding is at or above this severity' }),
    (a) => run(() => (a.action === 'collect-script' ? auditCollectScript(print) : auditCommand({
      ...(a.ini !== undefined ? { ini: a.ini } : {}),
      ...(a['scan-dir'] !== undefined ? { scanDir: a['scan-dir'] } : {}),
      ...(a.root !== undefined ? { root: a.root } : {}),
      ...(a.host !== undefined ? { host: a.host } : {}),
      docroot: a.docroot ?? [], app: a.app ?? [], fromCollected: a['from-collected'] ?? [], fleet: a.fleet,
      json: a.json, sarif: a.sarif, failOn: a['fail-on'] as (typeof FAIL_ON)[number], php: a.php, version: VERSION,
    }, print)))())
    .command('demo', 'run the whole flow on a throwaway sandbox: real PHP sessions, a local redis-server', (y) =>
      y
        .option('users', { type: 'number', default: 5, describe: 'simulated users who log in before the migration' })
        .option('keep', { type: 'boolean', default: false, describe: 'keep the sandbox directory afterwards' }),
    (a) => run(() => demoCommand({ users: a.users, keep: a.keep }, print))())
    .demandCommand(1, 'name a command: audit, keys, plan, apply, verify, rotate, codemod, generate or demo')
    .epilog('Exit codes: 0 success; 1 a check failed (verify, audit), sessions conflicted or failed (apply, rotate), or a codemod left something to decide by hand; 2 usage, input or connection error.')
    .strict()
    .help()
    .version(VERSION)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .middleware((a: Record<string, unknown>, y?: unknown) => {
      if (hooks.inspect === undefined || hooks.beforeValidation !== true) return;
      hooks.inspect(a, optionTableOf(y));
      throw new Inspected();
    }, true)
    .middleware((a: Record<string, unknown>, y?: unknown) => {
      if (hooks.inspect === undefined || hooks.beforeValidation === true) return;
      hooks.inspect(a, optionTableOf(y));
      throw new Inspected();
    }, false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserFacingError(`${msg} (see --help)`);
    });
  try {
    await parser.parseAsync();
    return exitCode;
  } catch (err) {
    if (err instanceof Inspected) return 0;
    const exitCode = (err as { exitCode?: unknown }).exitCode;
    if (err instanceof UserFacingError || (err instanceof Error && typeof exitCode === 'number')) {
      process.stderr.write(`session-migrate: ${oneLine(err.message)}\n`);
      return typeof exitCode === 'number' ? exitCode : 2;
    }
    const e = err as Error;
    process.stderr.write(`session-migrate: unexpected error: ${oneLine(e.message ?? String(e))}\n`);
    return 2;
  }
}

/**
 * Entry point of the `session-migrate` CLI: parses arguments with yargs and runs one command.
 * Exit codes: 0 success, 1 a check failed, 2 usage, input or connection error (one line on stderr).
 */
import yargs, { type Argv } from 'yargs';
import { UserFacingError, printable } from '@session-migrate/common';
import type { SerializeHandler } from '@session-migrate/php-session';
import {
  DEFAULT_ARTIFACTS_DIR, DEFAULT_MAX_SESSION_BYTES, DEFAULT_PLAN_FILE, DEFAULT_PREFIX,
  applyCommand, keysGenerate, planCommand, verifyCommand,
} from './commands.ts';
import { demoCommand } from './demo.ts';
import { FAIL_ON, auditCollectScript, auditCommand, repeatedOption } from './commands-audit.ts';

const VERSION = '0.1.0';

const HANDLERS: SerializeHandler[] = ['php', 'php_binary', 'php_serialize', 'igbinary'];

const print = (line: string) => process.stdout.write(line + '\n');

/** Joins a multi-line message (yargs writes some on several lines) into one printable line. */
function oneLine(message: string): string {
  return printable(message.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' '));
}

function keyOptions<T>(y: Argv<T>) {
  return y
    .option('key-file', { type: 'string', demandOption: true, describe: 'master key file (base64, mode 0600), from keys generate' })
    .option('prefix', { type: 'string', default: DEFAULT_PREFIX, describe: 'Redis key prefix' });
}

function phpOptions<T>(y: Argv<T>) {
  return y
    .option('gc-maxlifetime', { type: 'number', default: 1440, describe: "session.gc_maxlifetime in seconds, as in the PHP application's php.ini" })
    .option('serialize-handler', { type: 'string', choices: HANDLERS, default: 'php', describe: "session.serialize_handler, as in the application's php.ini" });
}

/**
 * Runs the CLI.
 * @param argv arguments without `node` and the script path.
 * @returns the exit code.
 */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  // Output piped into `head` and closed early is not an error of ours: stop quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(code);
    throw err;
  });
  // yargs reads `--dry-run=yes` as false: a typo must not turn a dry run into a real one.
  for (const arg of argv) {
    const m = /^--(dry-run|json|keep|help|sarif|fleet)=(.*)$/s.exec(arg);
    if (m !== null && m[2] !== 'true' && m[2] !== 'false') {
      process.stderr.write(`session-migrate: --${m[1]} takes no value, or =true / =false (got "${printable(m[2] ?? '')}")\n`);
      return 2;
    }
  }
  const run = (fn: () => Promise<number> | number) => async () => {
    code = await fn();
  };
  const parser = yargs(argv)
    .scriptName('session-migrate')
    // An option given twice takes its last value, as most CLIs do (yargs would make it an array).
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .usage('$0 <command> [options]\n\nMove PHP sessions from plaintext files into encrypted Redis.')
    .command('keys', 'manage master keys', (y) =>
      y
        .command('generate', 'write a new random 32-byte master key (base64, mode 0600); never overwrites', (g) =>
          g.option('out', { type: 'string', demandOption: true, describe: 'file to create' }),
        (a) => run(() => keysGenerate({ out: a.out }, print))())
        .demandCommand(1, 'name a keys command: generate'),
    )
    .command('plan', 'scan the source and target and write a plan file', (y) =>
      phpOptions(keyOptions(y))
        .option('source', { type: 'string', demandOption: true, describe: "files:DIR (DIR may be a save_path like '2;/var/lib/php/sessions')" })
        .option('target', { type: 'string', demandOption: true, describe: 'redis://host:port/db or rediss://... (password: SESSION_MIGRATE_REDIS_PASSWORD)' })
        .option('out', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file to write' })
        .option('artifacts-dir', { type: 'string', default: DEFAULT_ARTIFACTS_DIR, describe: 'where apply writes the PHP class and ini fragment' })
        .option('install-dir', { type: 'string', describe: 'where the PHP files will live on the PHP hosts (default: the artifacts dir)' })
        .option('max-session-bytes', { type: 'number', default: DEFAULT_MAX_SESSION_BYTES, describe: 'larger session files are reported, not migrated' })
        .option('json', { type: 'boolean', default: false, describe: 'print the plan as JSON' }),
    (a) => run(() => planCommand({
      source: a.source, target: a.target, keyFile: a['key-file'], prefix: a.prefix, out: a.out,
      gcMaxlifetime: a['gc-maxlifetime'], serializeHandler: a['serialize-handler'] as SerializeHandler,
      maxSessionBytes: a['max-session-bytes'], artifactsDir: a['artifacts-dir'],
      ...(a['install-dir'] !== undefined ? { installDir: a['install-dir'] } : {}), json: a.json,
    }, print))())
    .command('apply', 'carry out a plan: generate the PHP artifacts and copy live sessions into Redis', (y) =>
      y
        .option('plan', { type: 'string', default: DEFAULT_PLAN_FILE, describe: 'plan file from plan' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'count and show, write nothing' })
        .option('workers', { type: 'number', describe: 'worker threads that read and encrypt sessions; 0 = none (default: automatic, from 100,000 sessions)' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' }),
    (a) => run(() => applyCommand({ plan: a.plan, dryRun: a['dry-run'], json: a.json, ...(a.workers !== undefined ? { workers: a.workers } : {}) }, print))())
    .command('verify', 'check every value under the prefix is an authentic envelope with a TTL', (y) =>
      y
        .option('plan', { type: 'string', describe: 'take target, key file, prefix, gc_maxlifetime and serialize_handler from this plan' })
        .option('target', { type: 'string', describe: 'redis://host:port/db or rediss://... (password: SESSION_MIGRATE_REDIS_PASSWORD)' })
        .option('key-file', { type: 'string', describe: 'master key file (base64, mode 0600)' })
        .option('prefix', { type: 'string', describe: `Redis key prefix (default ${DEFAULT_PREFIX})` })
        .option('gc-maxlifetime', { type: 'number', describe: 'session.gc_maxlifetime in seconds (default 1440)' })
        .option('serialize-handler', { type: 'string', choices: HANDLERS, describe: 'session.serialize_handler (default php)' })
        .option('source', { type: 'string', describe: 'files:DIR: also check every live source session is in Redis, byte for byte' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' }),
    (a) => run(() => verifyCommand({
      ...(a.plan !== undefined ? { plan: a.plan } : {}),
      ...(a.target !== undefined ? { target: a.target } : {}),
      ...(a['key-file'] !== undefined ? { keyFile: a['key-file'] } : {}),
      ...(a.prefix !== undefined ? { prefix: a.prefix } : {}),
      ...(a['gc-maxlifetime'] !== undefined ? { gcMaxlifetime: a['gc-maxlifetime'] } : {}),
      ...(a['serialize-handler'] !== undefined ? { serializeHandler: a['serialize-handler'] as SerializeHandler } : {}),
      ...(a.source !== undefined ? { source: a.source } : {}),
      json: a.json,
    }, print))())
    .command('audit [action]', 'find the effective PHP session configuration (per SAPI, FPM pool, docroot) and what is unsafe', (y) =>
      y
        .positional('action', { type: 'string', choices: ['collect-script'], describe: 'collect-script: print the POSIX sh script that gathers a host for --from-collected' })
        .option('ini', { type: 'string', describe: 'audit exactly what `php -n -c FILE` loads' })
        .option('scan-dir', { type: 'string', describe: "with --ini: PHP_INI_SCAN_DIR (':'-joined; \"\" = none)" })
        .option('root', { type: 'string', describe: 'audit a mounted or copied filesystem (nothing outside it is read)' })
        .option('docroot', { type: 'string', array: true, default: [], describe: 'document root to search for .user.ini / .htaccess (repeatable)' })
        .option('from-collected', { type: 'string', array: true, default: [], describe: 'analyse documents written by the collect script' })
        .option('fleet', { type: 'boolean', default: false, describe: 'with --from-collected: one summary table for all hosts' })
        .option('php', { type: 'string', default: 'php', describe: 'php binary to ask on the live host' })
        .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
        .option('sarif', { type: 'boolean', default: false, describe: 'print SARIF 2.1.0' })
        .option('fail-on', { type: 'string', choices: FAIL_ON, default: 'high', describe: 'exit 1 when a finding is at or above this severity' }),
    (a) => run(() => (a.action === 'collect-script' ? auditCollectScript(print) : auditCommand({
      ...(a.ini !== undefined ? { ini: a.ini } : {}),
      ...(a['scan-dir'] !== undefined ? { scanDir: a['scan-dir'] } : {}),
      ...(a.root !== undefined ? { root: a.root } : {}),
      docroot: repeatedOption(argv, 'docroot'), fromCollected: repeatedOption(argv, 'from-collected'), fleet: a.fleet,
      json: a.json, sarif: a.sarif, failOn: a['fail-on'] as (typeof FAIL_ON)[number], php: a.php, version: VERSION,
    }, print)))())
    .command('demo', 'run the whole flow on a throwaway sandbox: real PHP sessions, a local redis-server', (y) =>
      y
        .option('users', { type: 'number', default: 5, describe: 'simulated users who log in before the migration' })
        .option('keep', { type: 'boolean', default: false, describe: 'keep the sandbox directory afterwards' }),
    (a) => run(() => demoCommand({ users: a.users, keep: a.keep }, print))())
    .demandCommand(1, 'name a command: keys, plan, apply, verify or demo')
    .epilog('Exit codes: 0 success; 1 a check failed (verify) or sessions conflicted or failed (apply); 2 usage, input or connection error.')
    .strict()
    .help()
    .version(VERSION)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserFacingError(`${msg} (see --help)`);
    });
  try {
    await parser.parseAsync();
    return code;
  } catch (err) {
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

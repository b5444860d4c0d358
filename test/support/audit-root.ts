/**
 * A system image for the audit's `--root` and the collect script's AUDIT_ROOT: a CLI php.ini whose
 * files save_path is `dir`, an optional /etc/passwd, and session files in `dir` (mode 1733, as
 * Debian's /var/lib/php/sessions) owned by the uids given, one file each. Needs root (chown).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The session directory of the images (the Debian default). */
export const AUDIT_ROOT_SESSION_DIR = '/var/lib/php/sessions';

/**
 * Writes the image in `work/name` and returns its path.
 * @param passwd the text of its /etc/passwd (passwd(5)), or undefined for none
 * @param owners the uid of each session file, in order (`sess_owner<index, 20 digits>`)
 */
export function makeAuditRoot(work: string, name: string, passwd: string | undefined, owners: readonly number[]): string {
  const root = join(work, name);
  const dir = AUDIT_ROOT_SESSION_DIR;
  const put = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  put('/etc/php/8.2/cli/php.ini', `[Session]\nsession.save_handler = files\nsession.save_path = "${dir}"\n`);
  if (passwd !== undefined) put('/etc/passwd', passwd);
  mkdirSync(join(root, dir), { recursive: true });
  chmodSync(join(root, dir), 0o1733);
  owners.forEach((uid, i) => {
    const p = join(root, dir, `sess_owner${String(i).padStart(20, '0')}`);
    writeFileSync(p, 'n|i:1;', { mode: 0o600 });
    chownSync(p, uid, uid);
  });
  return root;
}

/** The programs the collect script runs (packages/audit/src/collect-script.sh), base64 aside. */
export const COLLECT_SCRIPT_TOOLS = [
  'tr',
  'od',
  'sed',
  'stat',
  'awk',
  'ls',
  'readlink',
  'find',
  'head',
  'hostname',
  'uname',
  'date',
  'cat',
  'sort',
  'grep',
  'cut',
] as const;

/** Where this machine has `tool` (`command -v`), '' when it has none. */
export function whichTool(tool: string): string {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
}

/**
 * A directory `dir` (created) of links to this machine's COLLECT_SCRIPT_TOOLS and base64, `skip`
 * left out, plus `extra` scripts by name: a PATH for the collect script with chosen tools missing or
 * replaced. Returns `dir`.
 */
export function collectToolsDir(dir: string, skip: readonly string[] = [], extra: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  for (const t of [...COLLECT_SCRIPT_TOOLS, 'base64']) {
    const where = whichTool(t);
    if (!skip.includes(t) && where !== '') symlinkSync(where, join(dir, t));
  }
  for (const [t, text] of Object.entries(extra)) writeFileSync(join(dir, t), text, { mode: 0o755 });
  return dir;
}

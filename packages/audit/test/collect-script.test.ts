/**
 * The collect script (packages/audit/src/collect-script.sh) writes the same document as before its
 * process count was cut: the reference copy (fixtures-collect/collect-script-v2-reference.sh) and the
 * current script run on one image (AUDIT_ROOT) with odd names — spaces, `|`, a newline, a non-UTF-8
 * byte, glob characters, a leading dash, links in and out of the image (relative, absolute, dangling,
 * a target with a newline, a quote, a non-ASCII byte), a file of mode 000, one larger than
 * AUDIT_MAX_BYTES, a FIFO, nested session files — and their outputs must be equal byte for byte
 * (collected_at aside). Under dash with this machine's tools (GNU: `base64 -w 0`, the batched
 * `stat -c … %N`), with a base64 that has no -w (`base64 | tr`) and no stat (the `ls -ldn` way),
 * without base64 (hex through od), and under busybox sh with busybox's own applets when busybox is
 * installed (`'NAME' -> 'TARGET'` from its stat). A count of the processes shows the point of it.
 * No PHP: with AUDIT_ROOT the script never asks php.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { collectScript, parseCollected } from '@session-migrate/audit';
import { COLLECT_SCRIPT_TOOLS, collectToolsDir, whichTool } from '../../../test/support/audit-root.ts';

const SLOW = 60_000;
const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'audit-collect-script-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const which = whichTool;
const DASH = which('dash');
const BUSYBOX = which('busybox');

const oldScript = join(here, 'fixtures-collect/collect-script-v2-reference.sh');
const newScript = join(work, 'collect.sh');
writeFileSync(newScript, collectScript());

/** A directory of links to this machine's tools (`skip` left out), plus `extra` scripts by name. */
function toolsDir(name: string, skip: string[], extra: Record<string, string> = {}): string {
  return collectToolsDir(join(work, name), skip, extra);
}

/**
 * An image with odd names in every place the script looks; returns its path. `small`: a few of them
 * only (the fallback ways of the script run a process or three per string: seconds for the full one).
 */
function makeImage(name: string, small = false): string {
  const root = join(work, name);
  const put = (path: string | Buffer, text: string | Buffer, mode = 0o644) => {
    const full = Buffer.concat([Buffer.from(root), Buffer.from(path)]);
    mkdirSync(dirname(join(root, path.toString('latin1'))), { recursive: true });
    writeFileSync(full, text);
    chmodSync(full, mode);
  };
  const link = (target: string | Buffer, path: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    symlinkSync(target, join(root, path));
  };
  const ff = Buffer.from([0xff]);
  const cli = '/etc/php/8.2/cli/conf.d';
  const mods = '/etc/php/8.2/mods-available';
  put('/etc/php/8.2/cli/php.ini', '[Session]\nsession.save_path = "/var/lib/php/custom"\n');
  const s0 = '/var/lib/php/custom';
  put(`${mods}/redis.ini`, 'extension=redis.so\n');
  put(`${mods}/rel.ini`, 'extension=rel.so\n');
  put(`${mods}/it's here.ini`, 'extension=quote.so\n');
  put(Buffer.concat([Buffer.from(`${mods}/hi`), ff, Buffer.from('.ini')]), 'extension=ff.so\n');
  link(`${mods}/redis.ini`, `${cli}/20-redis.ini`);
  link('../../mods-available/rel.ini', `${cli}/21-rel.ini`);
  link("../../mods-available/it's here.ini", `${cli}/22-quote.ini`);
  link(Buffer.concat([Buffer.from('../../mods-available/hi'), ff, Buffer.from('.ini')]), `${cli}/23-ff.ini`);
  put(`${cli}/30 space|pipe.ini`, 'a=1\n');
  put(`${cli}/31-new\nline.ini`, 'b=2\n');
  put(Buffer.concat([Buffer.from(`${cli}/32-`), ff, Buffer.from('.ini')]), Buffer.from([0x63, 0x3d, 0xfe, 0x0a]));
  put('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  put(`${s0}/sess_aaaa`, 'SECRET', 0o600);
  put(`${s0}/sess_b\nc`, 'SECRET', 0o600);
  put(`${s0}/a/sess_nested`, 'SECRET', 0o600);
  chmodSync(join(root, s0), 0o1733);
  put('/srv/www/p|q/.user.ini', 'session.gc_maxlifetime = 80\n');
  // A link target with a newline that forges the stat line of the next name: this listing's batched
  // stat has one line too many and is dropped whole, so no line passes for another path's.
  const fpm = '/etc/php/8.2/fpm';
  put(`${fpm}/conf.d/10-a.ini`, 'i=9\n');
  link(`line one\nregular file|600|1|2|3|${root}${fpm}/conf.d/20-redis.ini|forged`, `${fpm}/conf.d/11-nl-target.ini`);
  link('../../mods-available/redis.ini', `${fpm}/conf.d/20-redis.ini`);
  if (small) return root;
  link('/nonexistent/outside.ini', `${cli}/24-dangling.ini`);
  link('../../../../../../../../../../etc/hostname', `${cli}/25-out.ini`);
  link('/etc/php/8.2/mods-available', `${cli}/26-dirlink`);
  put(`${cli}/[33]*?.ini`, 'c=3\n');
  put(`${cli}/34 back\\slash.ini`, 'd=4\n');
  put(`${cli}/-35-dash.ini`, 'e=5\n');
  put(`${cli}/.36-hidden.ini`, 'f=6\n');
  put(`${cli}/37-big.ini`, 'g=7\n'.repeat(40));
  put(`${cli}/38-locked.ini`, 'h=8\n', 0o000); // "permission denied" unless the tests run as root
  put(`${cli}/39-empty.ini`, '');
  spawnSync('mkfifo', [join(root, cli, '40-fifo')]);
  put('/etc/php/8.2/fpm/pool.d/www.conf', '[www]\nphp_admin_value[session.save_path] = /srv/sessions\n', 0o640);
  put('/etc/php.ini', 'session.save_path = "/tmp/x;/var/lib/php/custom"\n');
  put('/usr/lib/php/20220829/redis.so', 'ELF');
  put('/usr/lib/php/sessionclean', '#!/bin/sh\n', 0o755);
  put('/etc/apache2/conf-available/php8.2-fpm.conf', '<FilesMatch ".+\\.ph(ar|p|tml)$">\n</FilesMatch>\n');
  put('/etc/apache2/conf-available/other.txt', 'not a conf\n');
  link('/etc/passwd', `${s0}/sess_link`);
  put('/srv/sessions/sess_aaaa', 'SECRET', 0o600);
  put('/srv/sessions/sess_b\nc', 'SECRET', 0o600);
  put('/srv/sessions/a/sess_nested', 'SECRET', 0o600);
  put('/srv/sessions/b/c/sess_deep', 'SECRET', 0o600);
  link('/etc/passwd', '/srv/sessions/sess_link');
  put('/srv/www/.htaccess', 'php_value session.gc_maxlifetime 60\n');
  put('/srv/www/sub dir/.user.ini', 'session.gc_maxlifetime = 70\n');
  put('/srv/with space/.user.ini', 'session.gc_maxlifetime = 90\n');
  return root;
}

const image = makeImage('image');
const small = makeImage('small', true);
const DOCROOTS = ['/srv/www', '/srv/with space', '/srv/missing'];

/** Runs `script` with `shell` on the image; returns stdout, collected_at blanked. */
function collect(shell: string[], script: string, path: string, root = image): string {
  const r = spawnSync(shell[0]!, [...shell.slice(1), script, ...DOCROOTS], {
    encoding: 'latin1',
    env: { PATH: path, AUDIT_ROOT: root, AUDIT_MAX_BYTES: '100', AUDIT_SAMPLE: '4' },
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout.replace(/"collected_at":"[^"]*"/, '"collected_at":""');
}

/** Both scripts, same shell and PATH: the documents must be equal; returns the current one. */
function same(shell: string[], path: string, root = image): string {
  const now = collect(shell, newScript, path, root);
  expect(now).toBe(collect(shell, oldScript, path, root));
  return now;
}

describe('collect script: the same document as the reference, with far fewer processes', () => {
  it(
    'dash with this machine tools: same document, and every odd name is in it',
    () => {
      const doc = same([DASH], process.env.PATH ?? '');
      const c = parseCollected(doc, 'image.json');
      const paths = JSON.parse(doc).files.map((f: { path: string }) => Buffer.from(f.path, 'base64').toString('latin1')) as string[];
      for (const p of [
        '/etc/php/8.2/cli/conf.d/30 space|pipe.ini',
        '/etc/php/8.2/cli/conf.d/31-new\nline.ini',
        '/etc/php/8.2/cli/conf.d/32-\xff.ini',
        '/etc/php/8.2/cli/conf.d/-35-dash.ini',
        '/etc/php/8.2/cli/conf.d/40-fifo',
        '/etc/php/8.2/fpm/conf.d/11-nl-target.ini',
        "/etc/php/8.2/cli/conf.d/../../mods-available/it's here.ini",
        '/srv/www/p|q/.user.ini',
        '/srv/sessions/sess_b\nc',
      ])
        expect(paths).toContain(p);
      expect(c.fs.lstat('/etc/php/8.2/fpm/conf.d/11-nl-target.ini')).toMatchObject({ type: 'symlink' });
      expect(doc).not.toContain(Buffer.from('SECRET').toString('base64'));
    },
    SLOW,
  );

  it(
    'dash with a base64 without -w and no stat, and with no base64 at all: same documents',
    () => {
      const noW = toolsDir('no-w', ['base64', 'stat'], {
        base64: `#!/bin/sh\ncase "$*" in *-w*) exit 1 ;; esac\nexec ${which('base64')} "$@"\n`,
      });
      expect(same([DASH], noW, small)).toContain('"collector_version":2');
      const hex = same([DASH], toolsDir('no-base64', ['base64']), small);
      expect(hex).toContain('"path":"hex:');
    },
    SLOW,
  );

  it.skipIf(BUSYBOX === '')(
    "busybox sh with busybox's applets: same document (its stat writes 'NAME' -> 'TARGET')",
    () => {
      const dir = join(work, 'busybox');
      mkdirSync(dir);
      const applets = new Set(spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n'));
      for (const t of [...COLLECT_SCRIPT_TOOLS, 'base64']) if (applets.has(t)) symlinkSync(BUSYBOX, join(dir, t));
      same([BUSYBOX, 'sh'], dir, small);
    },
    SLOW,
  );

  it.skipIf(which('strace') === '')(
    'processes: one stat per listing (and one for its links targets), no readlink where stat read the targets, no tr',
    () => {
      const log = join(work, 'trace');
      const r = spawnSync(which('strace'), ['-f', '-z', '-qq', '-e', 'trace=execve', '-o', log, DASH, newScript, ...DOCROOTS], {
        env: { PATH: process.env.PATH ?? '', AUDIT_ROOT: image },
      });
      expect(r.status).toBe(0);
      const progs = readFileSync(log, 'utf8').match(/execve\("[^"]*"/g) ?? [];
      const n = (p: string) => progs.filter((x) => x.endsWith(`/${p}"`)).length;
      // The reference: 2 readlink a link, a stat, base64 and tr a string: 4 to 6 processes a path.
      // Now: readlink only for the links of the listing whose batch was dropped (the newline
      // target); stat for a listing, its link targets, and the paths outside listings or with a
      // newline; base64 for contents and strings with a byte outside printable ASCII; the one tr
      // of the save_path pipeline.
      const doc = JSON.parse(r.stdout.toString()) as { files: Array<Record<string, string>> };
      const contents = doc.files.filter((f) => f.content !== undefined).length;
      const strings = doc.files.flatMap((f) => [f.path, f.target].filter((x) => x !== undefined));
      const unprintable = strings.filter((x) => !/^[\x20-\x7e]*$/.test(Buffer.from(x!, 'base64').toString('latin1'))).length;
      expect(n('readlink')).toBeLessThanOrEqual(2);
      expect(n('tr')).toBe(1);
      expect(n('stat')).toBeLessThan(doc.files.length / 2);
      // `base64 -w 0` probed, the shell's encoder checked, then one per content and unprintable string.
      expect(n('base64')).toBe(2 + contents + unprintable);
    },
    SLOW,
  );
});

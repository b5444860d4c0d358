/**
 * The collect script (packages/audit/src/collect-script.sh) under dash gathers the user names of the
 * uids it records, and only those, as `users: [{uid, name}]` (name base64, never another passwd field):
 * from AUDIT_ROOT's own /etc/passwd for an image (not when it is a symbolic link: it could lead to this
 * machine's users), from `getent passwd UID` on the live host, else from /etc/passwd; then
 * `audit --from-collected` names the owners of session files with them (`uid 33 (name)`), a hostile
 * name made printable. The reader's side on hand-made documents: packages/audit/test/collected-users.test.ts.
 * Root only for the chowned session files.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectScript } from '@session-migrate/audit';
import { BIN } from './support/migrate-cli.ts';
import { AUDIT_ROOT_SESSION_DIR, collectToolsDir, makeAuditRoot } from './support/audit-root.ts';

const SLOW = 120_000;
const isRoot = process.getuid?.() === 0;
const DIR = AUDIT_ROOT_SESSION_DIR;
const work = mkdtempSync(join(tmpdir(), 'audit-collect-users-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const script = join(work, 'collect.sh');
/** dash by its path: the tests below run the script with a PATH of their own. */
const DASH = spawnSync('sh', ['-c', 'command -v dash'], { encoding: 'utf8' }).stdout.trim();
writeFileSync(script, collectScript());

// The image's users: uid 33 has a hostile name (an escape sequence, a quote, a backslash and a
// command substitution that must never run) and secrets in its other fields; the NIS compat line
// before it names nobody; 1000 owns no recorded path, so its name is not gathered.
const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '+nisuser::33:33:::',
  `ev"il\\\u001b[2J$(touch ${work}/ran):$6$SECRETHASH:33:33:SECRETGECOS:/var/www:/bin/sh`,
  'second:x:33:33:::',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  'unrelated:x:1000:1000:::',
  '',
].join('\n');

/** A root with a CLI php.ini on DIR and session files of uid 33 (5), 65534 (1) and 4242 (1). */
function makeRoot(name: string, passwd: string | undefined): string {
  return makeAuditRoot(work, name, passwd, [33, 33, 33, 33, 33, 65534, 4242]);
}

interface Collected {
  collector_version: number;
  users?: Array<{ uid: number; name: string }>;
}

/** Runs the collect script with dash; returns the document's text. */
function collect(env: Record<string, string>): string {
  const r = spawnSync(DASH, [script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 64 * 1024 * 1024 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** The document's users as [uid, decoded name] pairs. */
function users(text: string): Array<[number, string]> {
  const d = JSON.parse(text) as Collected;
  return (d.users ?? []).map((u) => [u.uid, Buffer.from(u.name, 'base64').toString('utf8')]);
}

function foreignOwner(docText: string, name: string): string {
  const file = join(work, `${name}.json`);
  writeFileSync(file, docText);
  const r = spawnSync(process.execPath, [BIN, 'audit', '--from-collected', file, '--json', '--fail-on', 'none'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as { hosts: { findings: { rule_id: string; message: string }[] }[] };
  return doc.hosts[0]!.findings.find((f) => f.rule_id === 'session-file-foreign-owner')!.message;
}

describe.skipIf(!isRoot)('collect script: user names of the recorded uids', () => {
  it(
    'an image (AUDIT_ROOT): names from its /etc/passwd, recorded uids only, name and uid only; --from-collected names the owners',
    () => {
      const root = makeRoot('image', PASSWD);
      const text = collect({ AUDIT_ROOT: root });
      const d = JSON.parse(text) as Collected;
      expect(d.collector_version).toBe(2);
      // 0 (the php.ini), 33 and 65534 (session files); 4242 has no entry, 1000 owns nothing recorded.
      expect(users(text).sort((a, b) => a[0] - b[0])).toEqual([
        [0, 'root'],
        [33, `ev"il\\\u001b[2J$(touch ${work}/ran)`],
        [65534, 'nobody'],
      ]);
      expect(Object.keys(d.users![0]!).sort()).toEqual(['name', 'uid']);
      for (const secret of ['SECRETHASH', 'SECRETGECOS', 'unrelated', '/var/www', 'nologin']) expect(text).not.toContain(secret);
      expect(spawnSync('test', ['-e', join(work, 'ran')]).status).toBe(1);
      expect(foreignOwner(text, 'image')).toBe(
        `2 of the 7 session files in ${DIR} are owned by another user than uid 33 (ev"il\\\\\\x1b[2J$(touch ${work}/ran)) (the owner of most of them, taken as the user PHP runs as) and root: uid 4242: 1, uid 65534 (nobody): 1; PHP's files handler does not read them, and session-migrate does not migrate them (foreign-owner)`,
      );
    },
    SLOW,
  );

  it(
    'an image without /etc/passwd, or whose /etc/passwd is a symbolic link, gives no names (never this machine users)',
    () => {
      expect(users(collect({ AUDIT_ROOT: makeRoot('no-passwd', undefined) }))).toEqual([]);
      const linked = makeRoot('linked-passwd', undefined);
      symlinkSync('/etc/passwd', join(linked, 'etc/passwd'));
      const text = collect({ AUDIT_ROOT: linked });
      expect(users(text)).toEqual([]);
      expect(foreignOwner(text, 'linked')).toContain('than uid 33 (the owner of most of them');
    },
    SLOW,
  );

  it(
    'the live host: getent passwd names the uids, name and uid only; without getent on the PATH, /etc/passwd does',
    () => {
      // The live collect always records /tmp (a usual session directory), root's. A getent that
      // answers with another name (in getent's passwd(5) line format) shows it is asked first, and
      // that only the name and uid fields are kept; a PATH without getent falls back to /etc/passwd
      // (this machine's: root is root). Two live collects: each takes seconds (a few hundred paths).
      const bin = join(work, 'bin');
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, 'getent'), '#!/bin/sh\n[ "$2" = 0 ] && echo "fromgetent:x:0:0:SECRETGECOS:/root:/bin/sh"\n', { mode: 0o755 });
      const tools = collectToolsDir(join(work, 'tools'));
      const viaGetent = collect({ PATH: `${bin}:${tools}` });
      expect(users(viaGetent).find(([uid]) => uid === 0)).toEqual([0, 'fromgetent']);
      expect(viaGetent).not.toContain('SECRETGECOS');
      expect(users(collect({ PATH: tools })).find(([uid]) => uid === 0)).toEqual([0, 'root']);
    },
    SLOW,
  );
});

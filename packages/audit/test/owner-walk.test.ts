/**
 * The owner walk of a session directory (rules.ts sessionFileWalk): done once per directory and audit
 * run however many configurations name it, and its uids named as plan and verify name them
 * (packages/sources users.ts describeUid: `33 (www-data)`) where the host's user database is ours.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CollectedFs, RootFs, auditHost, defaultEngine, foreignOwnerMessage, type CollectedEntry } from '@session-migrate/audit';

const engine = defaultEngine();
const DIR = '/var/lib/php/sessions';
const ini = `[Session]\nsession.save_handler = files\nsession.save_path = "${DIR}"\n`;

/** A collected Debian host: CLI and FPM (two pools) all on DIR; 5 files of uid 33, one of 4242. */
function entries(): CollectedEntry[] {
  const file = (path: string, text: string): CollectedEntry => ({
    path,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: text.length,
    content: Buffer.from(text),
  });
  const pool = (name: string) => `[${name}]\nuser = www-data\nlisten = /run/php/${name}.sock\n`;
  const sessions: CollectedEntry[] = ['a', 'b', 'c', 'd', 'e', 'f'].map((c, i) => ({
    path: `${DIR}/sess_${c.repeat(26)}`,
    type: 'file',
    mode: 0o600,
    uid: i === 5 ? 4242 : 33,
    gid: 33,
    size: 10,
  }));
  return [
    file('/etc/php/8.2/cli/php.ini', ini),
    file('/etc/php/8.2/fpm/php.ini', ini),
    file('/etc/php/8.2/fpm/php-fpm.conf', 'include=/etc/php/8.2/fpm/pool.d/*.conf\n'),
    file('/etc/php/8.2/fpm/pool.d/one.conf', pool('one')),
    file('/etc/php/8.2/fpm/pool.d/two.conf', pool('two')),
    { path: DIR, type: 'dir', mode: 0o1733, uid: 0, gid: 0, size: 0 },
    ...sessions,
  ];
}

/** The collected host's user names (the document's `users`): `user<uid>`. */
const users = new Map([
  [33, 'user33'],
  [4242, 'user4242'],
]);

/** CollectedFs counting lstat calls on session files. */
class CountingFs extends CollectedFs {
  sessionLstats = 0;
  override lstat(path: string) {
    if (path.startsWith(`${DIR}/sess_`)) this.sessionLstats++;
    return super.lstat(path);
  }
}

describe('session directory owner walk', () => {
  it('walks a directory named by several configurations once', () => {
    const fs = new CountingFs('web-1', entries());
    const r = auditHost({ fs, engine, host: 'web-1', env: {}, docroots: [] });
    const foreign = r.findings.filter((f) => f.id === 'session-file-foreign-owner');
    // cli, fpm:one, fpm:two: one finding each, from one walk of six files.
    expect(new Set(foreign.map((f) => f.config)).size).toBeGreaterThanOrEqual(3);
    expect(fs.sessionLstats).toBe(6);
  });

  it("names the owners through the filesystem's describeUid (a collected host's users)", () => {
    const fs = new CountingFs('web-1', entries(), users);
    const r = auditHost({ fs, engine, host: 'web-1', env: {}, docroots: [] });
    const m = r.findings.find((f) => f.id === 'session-file-foreign-owner')?.message;
    expect(m).toBe(
      `1 of the 6 session files in ${DIR} are owned by another user than uid 33 (user33) (the owner of most of them, taken as the user PHP runs as) and root: uid 4242 (user4242): 1; PHP's files handler does not read them, and session-migrate does not migrate them (foreign-owner)`,
    );
  });

  it('foreignOwnerMessage names uids with the describer given, also for owners in similar numbers', () => {
    const name = (uid: number) => `${uid} (${uid === 33 ? 'www-data' : 'nobody'})`;
    expect(
      foreignOwnerMessage(
        DIR,
        new Map([
          [33, 4],
          [65534, 3],
        ]),
        false,
        name,
      ),
    ).toMatch(/^session files in \S+ belong to several users \(uid 33 \(www-data\): 4, uid 65534 \(nobody\): 3;/);
  });
});

describe('RootFs.describeUid', () => {
  const work = mkdtempSync(join(tmpdir(), 'audit-uid-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  it("the live host names a uid with its user (plan's describeUid); a copied root gives the bare uid", () => {
    expect(new RootFs('/').describeUid(0)).toBe('0 (root)');
    expect(new RootFs(work).describeUid(0)).toBe('0');
  });
});

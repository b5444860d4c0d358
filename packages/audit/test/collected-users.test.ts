/**
 * `audit --from-collected`: the owners of session files are named from the collected host's own user
 * names (the document's `users`, gathered by the collect script: collected.ts collectedUsers), through
 * describeUidFrom as `--root` does (packages/sources users.ts); a document without `users` (an older
 * collect script, collector_version 1) still loads and gives bare uids. Pure: documents built here.
 * The collect script that writes `users` is run under dash in test/audit-collect-users.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { auditHost, defaultEngine, parseCollected, renderJson } from '@session-migrate/audit';

const DIR = '/var/lib/php/sessions';
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A collected document: a CLI php.ini on DIR, session files of uid 33 (5), 65534 (1), 4242 (1). */
function doc(users?: unknown): Record<string, unknown> {
  const ini = `[Session]\nsession.save_handler = files\nsession.save_path = "${DIR}"\n`;
  const sess = (i: number, uid: number) => ({
    path: b64(`${DIR}/sess_${String(i).repeat(26)}`),
    type: 'file',
    mode: '600',
    uid,
    gid: uid,
    size: 6,
  });
  return {
    format: 'session-migrate-collect/1',
    collector_version: users === undefined ? 1 : 2,
    host: b64('web-1'),
    collected_at: '2025-01-01T00:00:00Z',
    root: '',
    php: null,
    docroots: [],
    files: [
      { path: b64('/etc/php/8.2/cli/php.ini'), type: 'file', mode: '644', uid: 0, gid: 0, size: ini.length, content: b64(ini) },
      { path: b64(DIR), type: 'dir', mode: '1733', uid: 0, gid: 0, size: 4096 },
      sess(1, 33),
      sess(2, 33),
      sess(3, 33),
      sess(6, 33),
      sess(7, 33),
      sess(4, 65534),
      sess(5, 4242),
    ],
    ...(users === undefined ? {} : { users }),
  };
}

function foreignMessage(d: Record<string, unknown>): string | undefined {
  const c = parseCollected(JSON.stringify(d), 'web-1.json');
  const r = auditHost({ fs: c.fs, engine: defaultEngine(), host: c.host, env: {}, docroots: c.docroots, probe: c.probe });
  return r.findings.find((f) => f.id === 'session-file-foreign-owner')?.message;
}

describe('--from-collected names owners from the document users', () => {
  it('names each uid as the host did; a uid without a name stays a number; the JSON report says the same', () => {
    const users = [
      { uid: 0, name: b64('root') },
      { uid: 33, name: b64('www-data') },
      { uid: 65534, name: b64('nobody') },
    ];
    expect(foreignMessage(doc(users))).toBe(
      `2 of the 7 session files in ${DIR} are owned by another user than uid 33 (www-data) (the owner of most of them, taken as the user PHP runs as) and root: uid 4242: 1, uid 65534 (nobody): 1; PHP's files handler does not read them, and session-migrate does not migrate them (foreign-owner)`,
    );
    const c = parseCollected(JSON.stringify(doc(users)), 'web-1.json');
    expect(c.fs.describeUid(0)).toBe('0 (root)');
    const json = renderJson([auditHost({ fs: c.fs, engine: defaultEngine(), host: c.host, env: {}, docroots: [] })]);
    expect(json).toContain('uid 65534 (nobody): 1');
  });

  it('a document of an older collect script (no users) loads and gives bare uids, never this machine names', () => {
    const m = foreignMessage(doc());
    expect(m).toContain('than uid 33 (the owner of most of them');
    expect(m).toContain('root: uid 4242: 1, uid 65534: 1;');
    expect(parseCollected(JSON.stringify(doc()), 'old.json').fs.describeUid(0)).toBe('0');
  });

  it('a hostile name is printed printable; the first entry of a uid wins; an empty name is no name', () => {
    const users = [
      { uid: 33, name: b64('evil\u001b[2J\r') },
      { uid: 33, name: b64('second') },
      { uid: 65534, name: '' },
      { uid: 4242, name: `hex:${Buffer.from('hexuser').toString('hex')}` },
    ];
    const m = foreignMessage(doc(users));
    expect(m).toContain('than uid 33 (evil\\x1b[2J\\x0d) (the owner');
    expect(m).toContain('root: uid 4242 (hexuser): 1, uid 65534: 1;');
    expect(m).not.toContain('\u001b');
  });

  it('malformed users: one line naming the file and the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /users is not an array/],
      [[null], /users\[0\] is not an object/],
      [[{ uid: -1, name: b64('x') }], /users\[0\]\.uid is not a uid/],
      [[{ uid: 1.5, name: b64('x') }], /users\[0\]\.uid is not a uid/],
      [[{ uid: '33', name: b64('x') }], /users\[0\]\.uid is not a uid/],
      [[{ uid: 33, name: 5 }], /users\[0\]\.name is not a string/],
      [[{ uid: 33, name: '!!' }], /users\[0\]\.name is not valid base64/],
    ];
    for (const [users, pattern] of cases) {
      let message = '';
      try {
        parseCollected(JSON.stringify(doc(users)), 'web-1.json');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, JSON.stringify(users)).toMatch(pattern);
      expect(message).toMatch(/^web-1\.json: not a session-migrate collect document \(/);
      expect(message.split('\n')).toHaveLength(1);
    }
  });
});

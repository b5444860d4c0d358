/**
 * `audit --root`: the owners of session files are named from the root's own /etc/passwd (a mounted
 * system image's users are not this machine's), read once, as `uid 33 (www-data)`; a uid without a
 * name there stays a number (vfs.ts RootFs.describeUid, packages/sources users.ts passwdNames).
 * Real files in a temporary root, chowned (root only).
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { RootFs, auditHost, defaultEngine, renderJson, renderTable, runAudit } from '@session-migrate/audit';
import { describeUidFrom, passwdNames } from '@session-migrate/sources';
import { AUDIT_ROOT_SESSION_DIR, makeAuditRoot } from '../../../test/support/audit-root.ts';

const isRoot = process.getuid?.() === 0;
const DIR = AUDIT_ROOT_SESSION_DIR;
const work = mkdtempSync(join(tmpdir(), 'audit-root-passwd-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The image's users: uid 33 is `imgweb` there (www-data on this Debian host), 65534 `nobody`; a
// later entry of uid 33 does not win (getpwuid reads the first), a NIS compat line names nobody;
// uid 4242 has no entry.
const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  '+nisuser::4242:4242:::',
  'imgweb:x:33:33:web:/var/www:/usr/sbin/nologin',
  'second:x:33:33:::',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  '',
].join('\n');

/** A root with a CLI php.ini on DIR and session files of uid 33 (5), 65534 (1), 4242 (1) and root (1). */
function makeRoot(name: string, passwd: string | undefined): string {
  return makeAuditRoot(work, name, passwd, [33, 33, 33, 33, 33, 65534, 4242, 0]);
}

function audit(fs: RootFs) {
  return auditHost({ fs, engine: defaultEngine(), host: 'img', env: {}, docroots: [] });
}

describe.skipIf(!isRoot)('audit --root names owners from the root /etc/passwd', () => {
  it('names each uid as the image does, a uid without an entry stays a number, and reads the file once', () => {
    const fs = new RootFs(makeRoot('image', PASSWD));
    const reads = vi.spyOn(fs, 'readFile');
    const r = audit(fs);
    const m = r.findings.find((f) => f.id === 'session-file-foreign-owner')?.message;
    expect(m).toBe(
      `2 of the 8 session files in ${DIR} are owned by another user than uid 33 (imgweb) (the owner of most of them, taken as the user PHP runs as) and root: uid 4242: 1, uid 65534 (nobody): 1; PHP's files handler does not read them, and session-migrate does not migrate them (foreign-owner)`,
    );
    expect(reads.mock.calls.filter(([p]) => p === '/etc/passwd')).toHaveLength(1);
    // --json: the message keeps `uid N` and adds the name beside it; the text report says the same.
    expect(renderJson([r])).toContain('uid 33 (imgweb)');
    expect(renderTable([r])).toContain('uid 65534 (nobody): 1');
  });

  it('runAudit with root (audit --root DIR --json): the JSON message names the image users', async () => {
    const { reports } = await runAudit({
      root: makeRoot('use-case', PASSWD),
      docroot: [],
      app: [],
      fromCollected: [],
      php: 'php',
    });
    const doc = JSON.parse(renderJson(reports)) as { hosts: { findings: { rule_id: string; message: string }[] }[] };
    const m = doc.hosts[0]!.findings.find((f) => f.rule_id === 'session-file-foreign-owner')!.message;
    expect(m).toContain('than uid 33 (imgweb) (the owner of most of them');
    expect(m).toContain('root: uid 4242: 1, uid 65534 (nobody): 1;');
  });

  it('a root without /etc/passwd, or whose /etc/passwd leads outside it, gives bare uids (never this host names)', () => {
    const bare = new RootFs(makeRoot('no-passwd', undefined));
    expect(audit(bare).findings.find((f) => f.id === 'session-file-foreign-owner')?.message).toContain(
      'than uid 33 (the owner of most of them',
    );
    const linked = makeRoot('linked-passwd', undefined);
    symlinkSync('/etc/passwd', join(linked, 'etc/passwd')); // inside the root: itself, a loop
    expect(new RootFs(linked).describeUid(0)).toBe('0');
    expect(new RootFs('/').describeUid(0)).toBe('0 (root)');
  });
});

describe('passwdNames and describeUidFrom', () => {
  it('first entry of a uid, no NIS compat or malformed lines, printable names', () => {
    const names = passwdNames(PASSWD + 'evil\u001b[2J:x:4343:1:::\nbad:x:notanumber:1:::\nshort:x:7\n');
    expect([...names]).toEqual([
      [0, 'root'],
      [33, 'imgweb'],
      [65534, 'nobody'],
      [4343, 'evil\u001b[2J'],
    ]);
    expect(describeUidFrom(33, names)).toBe('33 (imgweb)');
    expect(describeUidFrom(4242, names)).toBe('4242');
    expect(describeUidFrom(4343, names)).toBe('4343 (evil\\x1b[2J)');
  });
});

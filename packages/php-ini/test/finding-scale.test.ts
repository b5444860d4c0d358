/**
 * The save_path findings use the one Finding shape and severity scale of @session-migrate/common
 * (packages/common/src/finding.ts): what makes PHP fail is SAVE_PATH_FAILS_AT (`high`).
 */
import { describe, expect, it } from 'vitest';
import { SEVERITIES, isAtLeast } from '@session-migrate/common';
import { SAVE_PATH_FAILS_AT, parseFilesSavePath, parseRedisClusterSavePath, parseRedisSavePath } from '../src/index.ts';

describe('save_path findings on the one severity scale', () => {
  const findings = [
    ...['', 'x;/tmp', '-1;/tmp', '0660;/tmp', '1;77777;/tmp', '1;'].flatMap((v) => parseFilesSavePath(v).findings),
    ...['tcp://h:1?auth=ab,cd', 'tcp://h:1?auth=a+b', 'tcp://h:1?auth=a&b=c', 'tcp://h:1', 'nonsense'].flatMap(
      (v) => parseRedisSavePath(v).findings,
    ),
    ...['auth=x', 'seed[]=h:1&auth=a+b'].flatMap((v) => parseRedisClusterSavePath(v).findings),
  ];
  it('every severity is one of SEVERITIES, and every finding has an id and a message', () => {
    expect(findings.length).toBeGreaterThan(10);
    for (const f of findings) {
      expect(SEVERITIES).toContain(f.severity);
      expect(f.id).toMatch(/^save-path-/);
      expect(f.message).not.toBe('');
    }
  });
  it('what PHP fails on is at least SAVE_PATH_FAILS_AT; advice is below it', () => {
    const fails = (id: string) => findings.filter((f) => f.id === id).every((f) => isAtLeast(f.severity, SAVE_PATH_FAILS_AT));
    for (const id of [
      'save-path-invalid-depth',
      'save-path-depth-looks-like-mode',
      'save-path-invalid-mode',
      'save-path-empty-directory',
      'save-path-comma-splits-hosts',
      'save-path-plus-is-space',
      'save-path-ampersand-splits-query',
      'save-path-unparsable-host',
    ]) {
      expect(
        findings.some((f) => f.id === id),
        id,
      ).toBe(true);
      expect(fails(id), id).toBe(true);
    }
    for (const f of findings.filter((x) =>
      ['save-path-non-numeric-depth', 'save-path-empty', 'save-path-no-auth', 'save-path-no-tls'].includes(x.id),
    )) {
      expect(isAtLeast(f.severity, SAVE_PATH_FAILS_AT), f.id).toBe(false);
    }
  });
});

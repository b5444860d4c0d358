/**
 * docs/redis.md prints the minimal ACL rule of every command: it must be exactly what aclRuleFor
 * gives (the rules test/acl-rules.test.ts runs every command under).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACL_COMMANDS, aclRuleFor, handlerAclRule, type AclCommand } from '../src/index.ts';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/redis.md'), 'utf8');

describe('ACL rules', () => {
  it('docs/redis.md lists every command with exactly its rule', () => {
    for (const command of Object.keys(ACL_COMMANDS) as AclCommand[]) {
      const rule = aclRuleFor(command, command.startsWith('source') ? 'PHPREDIS_SESSION:' : 'smsess:');
      expect(doc, command).toContain(`\`${rule}\``);
    }
  });
  it('docs/redis.md names the commands whose cluster rule has no +cluster|nodes (they do not SCAN)', () => {
    const noScan = (Object.keys(ACL_COMMANDS) as AclCommand[]).filter((c) => !ACL_COMMANDS[c].includes('scan'));
    expect(noScan).toEqual(['apply', 'purge']);
    for (const c of Object.keys(ACL_COMMANDS) as AclCommand[]) {
      expect(aclRuleFor(c, 'smsess:', 'cluster').includes('+cluster|nodes'), c).toBe(!noScan.includes(c));
    }
    expect(doc.replace(/\s+/g, ' ')).toContain(
      'for the commands that SCAN (all but `apply` and `purge` of the target) `+cluster|nodes` too',
    );
  });
  it('docs/redis.md names the commands whose cluster rule has +asking (they read or write keys: ioredis follows ASK with ASKING)', () => {
    const keyless = (Object.keys(ACL_COMMANDS) as AclCommand[]).filter((c) => !aclRuleFor(c, 'smsess:', 'cluster').includes('+asking'));
    expect(keyless).toEqual(['plan']);
    expect(aclRuleFor('apply', 'smsess:', 'cluster')).toMatch(/ \+asking$/);
    expect(aclRuleFor('plan', 'smsess:')).not.toContain('+asking');
    expect(doc.replace(/\s+/g, ' ')).toContain('for every command but `plan` of the target `+asking`');
    expect(handlerAclRule('smsess:', 'cluster')).toBe(
      'resetkeys ~smsess:* -@all +eval +evalsha +get +set +del +exists +expire +cluster|slots +echo +asking',
    );
  });
  it('adds SELECT for a database other than 0 and the CLUSTER subcommands on a cluster; escapes glob characters', () => {
    expect(aclRuleFor('plan', 'a*b:', 'cluster', 3)).toBe(
      'resetkeys ~a\\*b:* -@all +ping +info +select +scan +cluster|slots +cluster|info +cluster|myid +client|setname +cluster|nodes',
    );
  });
  it("the handler's rule reaches the old phpredis keys a read-through handler reads (escaped, full ~: a script's keys are checked read-write)", () => {
    expect(handlerAclRule('smsess:', 'standalone', 0, ['PHPREDIS_SESSION:', 'old*'])).toBe(
      'resetkeys ~smsess:* ~PHPREDIS_SESSION:* ~old\\** -@all +eval +evalsha +get +set +del +exists +expire',
    );
    expect(handlerAclRule('smsess:')).toBe('resetkeys ~smsess:* -@all +eval +evalsha +get +set +del +exists +expire');
  });
});

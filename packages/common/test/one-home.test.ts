/**
 * Shared defaults and small helpers have one home (issue 14, "one home per rule"): the packages that
 * name them re-export the very same value, so changing the home changes every command and generated file.
 */
import { describe, expect, it } from 'vitest';
import * as common from '../src/index.ts';
import * as generate from '@session-migrate/generate';
import * as envelope from '@session-migrate/envelope';
import * as migrate from '@session-migrate/migrate';
import * as phpSession from '@session-migrate/php-session';
import * as sources from '@session-migrate/sources';
import { phpString as codemodPhpString } from '../../../codemods/php/src/php-ast.ts';

describe('one home', () => {
  it('defaults: the key prefixes, gc_maxlifetime, the serialize_handlers', () => {
    expect(generate.DEFAULT_PREFIX).toBe(common.DEFAULT_PREFIX);
    expect(envelope.DEFAULT_PREFIX).toBe(common.DEFAULT_PREFIX);
    expect(sources.PHPREDIS_DEFAULT_PREFIX).toBe(common.PHPREDIS_DEFAULT_PREFIX);
    expect(common.DEFAULT_GC_MAXLIFETIME).toBe(1440);
    expect(migrate.SERIALIZE_HANDLERS).toBe(phpSession.SERIALIZE_HANDLERS);
  });

  it('the lifecycle policy and the TTL rule', () => {
    expect(migrate.isNewerInRedis).toBe(common.isNewerInRedis);
    expect(migrate.NEWER_MARGIN_MS).toBe(common.NEWER_MARGIN_MS);
    expect(migrate.PURGE_NEWER_MARGIN_MS).toBe(common.NEWER_MARGIN_MS);
    expect(migrate.remainingTtlSeconds).toBe(common.remainingTtlSeconds);
  });

  it("the NOT DONE sentence: apply's source failure says it as purge, rotate and rollback do (stoppedRun)", () => {
    const reason =
      'source Redis at redis://127.0.0.1:1/0 failed while reading: the connection closed during SCAN of 127.0.0.1:1 (a restart or fail-over?): keys may have been skipped; run again';
    const rerun = 'the sessions written are complete and valid: run apply again to copy the rest (it writes only what is missing)';
    const sentence = migrate.sourceFailureNotDone({ message: reason, written: 7 });
    // apply's wording kept, the source's own "run again" dropped (the sentence ends with how to finish).
    expect(sentence).toBe(`7 session(s) written, then the source failed: ${reason.replace(/; run again$/, '')}; ${rerun}`);
    const same = { reason, done: 7, what: 'session(s) written', stoppedBy: ', then the source failed', rerun };
    expect(sentence).toBe(common.notDoneSentence(same));
    expect(common.stoppedRun({ command: 'apply', nothing: '', ...same }).message).toBe(`apply NOT DONE: ${sentence}`);
  });

  it('phpString: one PHP single-quoted literal for the generator and codemod php', () => {
    expect(codemodPhpString).toBe(common.phpString);
    const table: Array<[string, string]> = [
      ['', "''"],
      ['/opt/sm/bootstrap.php', "'/opt/sm/bootstrap.php'"],
      ["it's", "'it\\'s'"],
      ['C:\\php\\', "'C:\\\\php\\\\'"],
      ["\\'", "'\\\\\\''"],
      ['$x {$y} \n', "'$x {$y} \n'"],
    ];
    for (const [value, literal] of table) expect(common.phpString(value), value).toBe(literal);
  });
});

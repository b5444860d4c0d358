import { describe, expect, it } from 'vitest';
import { classifyRedisError, CLOSED_UNDER_COMMANDS, isConnectionLost, redactedMessage } from '../src/index.ts';

describe('redactedMessage', () => {
  it('masks the password where it stands alone, on the first line only', () => {
    expect(redactedMessage('ERR bad password s3cr3t!+x given\nmore', 's3cr3t!+x')).toBe('ERR bad password *** given');
    expect(redactedMessage('ERR "hunter2"', 'hunter2')).toBe('ERR "***"');
  });
  it('does not garble words that merely contain a short password', () => {
    expect(redactedMessage('WRONGPASS invalid username-password pair or user is disabled.', 'b')).toBe(
      'WRONGPASS invalid username-password pair or user is disabled.',
    );
  });
  it('leaves messages alone without a password', () => {
    expect(redactedMessage('ERR x', undefined)).toBe('ERR x');
    expect(redactedMessage('ERR x', '')).toBe('ERR x');
  });
});

describe('classifyRedisError', () => {
  const err = (m: string) => Object.assign(new Error(m), { name: 'ReplyError' });
  it('never retries permanent errors, and says what to fix', () => {
    const noperm = classifyRedisError(err("NOPERM this user has no permissions to run the 'evalsha' command"), {
      username: 'app',
      aclRule: '~s:* +evalsha',
    });
    expect(noperm).toMatchObject({ kind: 'permanent', code: 'NOPERM' });
    expect(noperm.fix).toMatch(/ACL rule of user "app" lacks EVALSHA \(\+evalsha\); the minimal rule is ~s:\* \+evalsha/);
    expect(classifyRedisError(err('NOPERM this user has no permissions to access one of the keys used as arguments')).fix).toMatch(
      /does not allow keys under the prefix/,
    );
    // The script's error: NOPERM, without Redis's script SHA and Lua line (they tell an operator nothing).
    expect(
      classifyRedisError(
        err("ERR The user executing the script can't run this command or subcommand script: 872b0e5f, on @user_script:4."),
      ),
    ).toMatchObject({ code: 'NOPERM', message: "ERR The user executing the script can't run this command or subcommand" });
    expect(classifyRedisError(err("READONLY You can't write against a read only replica."), { topology: 'standalone' })).toMatchObject({
      kind: 'permanent',
      fix: expect.stringMatching(/this node is a replica/),
    });
    expect(classifyRedisError(err('WRONGTYPE Operation against a key holding the wrong kind of value')).kind).toBe('permanent');
    expect(classifyRedisError(err("CROSSSLOT Keys in request don't hash to the same slot")).kind).toBe('permanent');
    expect(classifyRedisError(err("OOM command not allowed when used memory > 'maxmemory'.")).fix).toMatch(/maxmemory/);
    expect(classifyRedisError(err('WRONGPASS invalid username-password pair or user is disabled.'), { role: 'source' }).fix).toMatch(
      /SESSION_MIGRATE_SOURCE_REDIS_PASSWORD/,
    );
    expect(classifyRedisError(err("ERR unknown command 'EVALSHA', with args beginning with:")).kind).toBe('permanent');
  });
  it('retries transient ones: connection loss, loading, resharding, failover', () => {
    for (const m of [
      'LOADING Redis is loading the dataset in memory',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'CLUSTERDOWN The cluster is down',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
      'MOVED 3999 127.0.0.1:6381',
      'ASK 3999 127.0.0.1:6381',
      'BUSY Redis is busy running a script',
    ]) {
      expect(classifyRedisError(err(m)).kind, m).toBe('transient');
    }
    expect(classifyRedisError(new Error('Connection is closed.')).kind).toBe('transient');
    expect(classifyRedisError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })).code).toBe('ECONNRESET');
    const gaveUp = classifyRedisError(
      new Error('Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.'),
    );
    // ioredis's wording names its option; the operator gets what happened.
    expect(gaveUp).toEqual({
      kind: 'transient',
      code: 'CONNECTION',
      message: 'the connection to Redis is down: no answer after 2 reconnects',
    });
    expect(isConnectionLost(gaveUp)).toBe(true);
    expect(isConnectionLost(classifyRedisError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))).toBe(true);
    expect(isConnectionLost(classifyRedisError(err('LOADING Redis is loading the dataset in memory')))).toBe(false);
    // ioredis's Cluster client that ended (every node gone; keepConnected connects it again): a lost
    // connection, as its "None of startup nodes is available" (https://github.com/redis/ioredis
    // lib/cluster/index.ts sendCommand, handleCloseEvent).
    for (const m of ['Cluster is ended.', 'None of startup nodes is available'])
      expect(classifyRedisError(Object.assign(new Error(m), { name: 'AbortError' })), m).toEqual({
        kind: 'transient',
        code: 'CONNECTION',
        message: 'the connection to Redis is down: no node of the Redis Cluster answers',
      });
    // One wording of a lost connection on every topology: a Redis Cluster's node client fails its
    // commands at a close with "Connection is closed." where a single node's reconnects ran out.
    expect(classifyRedisError(new Error('Connection is closed.'))).toEqual({
      kind: 'transient',
      code: 'CONNECTION',
      message: 'the connection to Redis is down: it closed',
    });
    // A connection Redis closed at the same commands each time (connection.ts failRepeatedResends):
    // permanent, a lost connection, and the fix says where the cause is written.
    const closedUnder = classifyRedisError(new Error(`${CLOSED_UNDER_COMMANDS} 3 times while the same commands waited for their replies`));
    expect(closedUnder).toMatchObject({ kind: 'permanent', code: 'CONNECTION', fix: expect.stringMatching(/client-output-buffer-limit/) });
    expect(isConnectionLost(closedUnder)).toBe(true);
    // A reply of the server is never that (ReplyError: it answered).
    expect(classifyRedisError(Object.assign(new Error(`${CLOSED_UNDER_COMMANDS} x`), { name: 'ReplyError' })).code).not.toBe('CONNECTION');
    // READONLY behind Sentinel or in a cluster: the client follows the new master.
    expect(classifyRedisError(err("READONLY You can't write against a read only replica."), { topology: 'sentinel' }).kind).toBe(
      'transient',
    );
  });
  it('masks the password in the message', () => {
    expect(classifyRedisError(err('ERR bad pw hunter2'), { password: 'hunter2' }).message).toBe('ERR bad pw ***');
  });
});

describe('classifyRedisError message length', () => {
  it("keeps Redis 7's longest reply whole and cuts a longer message visibly", () => {
    // Redis 7.0's reply to HELLO without AUTH (helloCommand, src/networking.c), 205 characters: it was cut at 200.
    const noauth =
      'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time';
    expect(classifyRedisError(Object.assign(new Error(noauth), { name: 'ReplyError' })).message).toBe(noauth);
    const long = `ERR ${'x'.repeat(400)}`;
    const cut = classifyRedisError(new Error(long)).message;
    expect(cut).toHaveLength(300);
    expect(cut.endsWith('…')).toBe(true);
    expect(long.startsWith(cut.slice(0, -1))).toBe(true);
  });
});

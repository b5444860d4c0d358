/**
 * replicasAtOffset: which replicas of an INFO replication answer hold a master offset
 * (`slaveN:ip=..,port=..,state=online,offset=..,lag=..`, https://redis.io/docs/latest/commands/info/).
 */
import { describe, expect, it } from 'vitest';
import { parseInfo, replicasAtOffset } from '../src/index.ts';

const info = (lines: string[]): Map<string, string> =>
  parseInfo(['# Replication', 'role:master', `connected_slaves:${lines.length}`, ...lines, 'master_repl_offset:5000', ''].join('\r\n'));

describe('replicasAtOffset', () => {
  it('counts online replicas at or beyond the offset', () => {
    const i = info([
      'slave0:ip=127.0.0.1,port=7001,state=online,offset=5000,lag=0',
      'slave1:ip=127.0.0.1,port=7002,state=online,offset=5100,lag=0',
      'slave2:ip=127.0.0.1,port=7003,state=online,offset=4999,lag=1',
    ]);
    expect(replicasAtOffset(i, 5000)).toBe(2);
    expect(replicasAtOffset(i, 4999)).toBe(3);
    expect(replicasAtOffset(i, 5101)).toBe(0);
  });

  it('a replica still syncing (not online) or without an offset does not count', () => {
    const i = info([
      'slave0:ip=127.0.0.1,port=7001,state=wait_bgsave,offset=0,lag=0',
      'slave1:ip=127.0.0.1,port=7002,state=send_bulk,offset=9000,lag=0',
      'slave2:ip=127.0.0.1,port=7003,state=online,lag=0',
    ]);
    expect(replicasAtOffset(i, 0)).toBe(0);
  });

  it('no replica lines: 0 (slave_read_only and the like are not replica lines)', () => {
    const i = parseInfo('role:master\r\nconnected_slaves:0\r\nslave_read_only:1\r\nslave_repl_offset:9\r\nmaster_repl_offset:10\r\n');
    expect(replicasAtOffset(i, 0)).toBe(0);
  });
});

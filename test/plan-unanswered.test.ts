/**
 * `plan --target` at a port that accepts the TCP connection and never answers (another service that
 * waits for its client to speak first, a load balancer with no healthy target, a hung server): plan
 * must say so in one line, soon, and write nothing; it waited 30 s and printed "Command timed out".
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from './support/migrate-cli.ts';

const scratch = mkdtempSync(join(tmpdir(), 'sm-plan-unanswered-'));
const sockets: Socket[] = [];
let server: Server | undefined;
afterAll(() => {
  for (const s of sockets) s.destroy();
  server?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A loopback port that accepts connections, reads what comes, and never writes a byte. */
function silentPort(): Promise<number> {
  return new Promise((resolve) => {
    server = createServer((s) => {
      sockets.push(s);
      s.on('data', () => undefined);
      s.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port));
  });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: scratch });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let ms = 0;
    child.once('exit', () => (ms = Date.now() - started));
    // Resolved at 'close', after the pipes' last data ('exit' may come first on a loaded machine).
    child.once('close', (code) => resolve({ code, stdout, stderr, ms }));
  });
}

describe('plan against a port that never answers', () => {
  it('one line naming the URL and what to check, exit 2, within the probe timeout, no plan file', async () => {
    const port = await silentPort();
    const sessions = join(scratch, 'sessions');
    const key = join(scratch, 'master.key');
    writeFileSync(key, Buffer.alloc(32, 1).toString('base64') + '\n', { mode: 0o600 });
    mkdirSync(sessions);
    const r = await run([
      'plan',
      '--source',
      `files:${sessions}`,
      '--target',
      `redis://127.0.0.1:${port}/0`,
      '--key-file',
      key,
      '--out',
      'p.json',
    ]);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `session-migrate: cannot connect to Redis at redis://127.0.0.1:${port}/0: connected, but no Redis reply within 10 s: check that 127.0.0.1:${port} is a Redis server\n`,
    );
    expect(r.code).toBe(2);
    expect(r.ms).toBeLessThan(20_000);
    expect(existsSync(join(scratch, 'p.json'))).toBe(false);
  }, 60_000);
});

/**
 * A real PHP process holding a session file half-written under its exclusive flock (test/php/stalled-write.php):
 * the exact on-disk state a reader meets when PHP's files handler is descheduled between ftruncate
 * and pwrite (php-src ext/session/mod_files.c, ps_files_write), held for as long as a test needs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = join(import.meta.dirname, '../php/stalled-write.php');

export interface StalledWriter {
  /** Lets PHP finish the write (the whole new data at offset 0) and waits until it has exited. */
  finish(): Promise<void>;
}

/**
 * Starts PHP on `file` and resolves once the file is in the stalled state.
 * @param mode `truncate`: 0 bytes, locked; `partial`: the first half of `data`, locked.
 * @param data the version PHP is writing (written whole by finish()).
 */
export async function stallPhpWrite(file: string, mode: 'truncate' | 'partial', data: string): Promise<StalledWriter> {
  const signals = mkdtempSync(join(tmpdir(), 'sm-stall-'));
  const ready = join(signals, 'ready');
  const go = join(signals, 'go');
  const php: ChildProcess = spawn('php', [SCRIPT, file, mode, data, ready, go], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  php.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => php.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 20_000;
  while (!existsSync(ready)) {
    if (gone || Date.now() > deadline) {
      php.kill('SIGKILL');
      rmSync(signals, { recursive: true, force: true });
      throw new Error(`stalled-write.php did not reach its state: ${stderr.trim() || 'timeout'}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return {
    async finish() {
      writeFileSync(go, '');
      const code = await exited;
      rmSync(signals, { recursive: true, force: true });
      if (code !== 0) throw new Error(`stalled-write.php exited ${String(code)}: ${stderr.trim()}`);
    },
  };
}

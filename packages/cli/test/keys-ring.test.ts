/**
 * `keys id` and `keys ring init | add | rotate | retire` (docs/keys.md), run in-process on real
 * files: the lookup ID never changes, keys move between current and previous as documented, files
 * stay mode 0600, and concurrent or invalid changes are refused with one-line errors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSodium, parseKeyText, keyRingIds, generateKeyFile } from '@session-migrate/envelope';
import { UserFacingError } from '@session-migrate/common';
import { keysId, keysRingAdd, keysRingInit, keysRingRetire, keysRingRotate } from '../src/commands-keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'sm-keys-ring-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sodium = await loadSodium();
const idsOf = (path: string) => keyRingIds(sodium, parseKeyText(sodium, readFileSync(path, 'latin1'), path));
const quiet = () => undefined;

describe('keys ring', () => {
  it('init keeps the lookup ID of the key it starts from; add, rotate --to, rotate and retire move keys as documented', async () => {
    const keyFile = join(dir, 'master.key');
    generateKeyFile(keyFile);
    const single = idsOf(keyFile);
    const ring = join(dir, 'ring');
    expect(await keysRingInit({ key: { kind: 'file', path: keyFile }, out: ring }, quiet)).toBe(0);
    expect(idsOf(ring)).toEqual(single);
    await expect(keysRingInit({ key: { kind: 'file', path: keyFile }, out: ring }, quiet)).rejects.toThrow(
      /already exists; refusing to overwrite/,
    );

    const lines: string[] = [];
    await keysRingAdd({ ring }, (l) => lines.push(l));
    const added = /added key ID ([0-9a-f]{16})/.exec(lines[0]!)![1]!;
    expect(idsOf(ring)).toEqual({ ...single, previousKeyIds: [added] });
    await keysRingRotate({ ring, to: added }, quiet);
    expect(idsOf(ring)).toEqual({ lookupId: single.lookupId, currentKeyId: added, previousKeyIds: [single.currentKeyId] });
    await keysRingRotate({ ring }, quiet);
    const after = idsOf(ring);
    expect(after.lookupId).toBe(single.lookupId);
    expect(after.previousKeyIds).toEqual([added, single.currentKeyId]);
    await keysRingRetire({ ring, keyId: single.currentKeyId }, quiet);
    expect(idsOf(ring)).toEqual({ ...after, previousKeyIds: [added] });
    expect(statSync(ring).mode & 0o777).toBe(0o600);

    const out: string[] = [];
    await keysId({ key: { kind: 'ring', path: ring }, json: true }, (l) => out.push(l));
    expect(JSON.parse(out.join('\n'))).toEqual({ form: 'ring', ...idsOf(ring) });
    expect(out.join('\n')).not.toContain(readFileSync(ring, 'latin1').match(/^current (\S+)$/m)![1]!);
  });

  it('refuses: retiring the current key or an unknown one, rotate --to an unknown ID, a single key file, a locked ring', async () => {
    const ring = join(dir, 'ring2');
    await keysRingInit({ out: ring }, quiet);
    const ids = idsOf(ring);
    await expect(keysRingRetire({ ring, keyId: ids.currentKeyId }, quiet)).rejects.toThrow(
      /is the current key of .*; rotate to another key first/,
    );
    await expect(keysRingRetire({ ring, keyId: 'ffffffffffffffff' }, quiet)).rejects.toThrow(/key ID ffffffffffffffff is not in/);
    await expect(keysRingRetire({ ring, keyId: 'FFFF' }, quiet)).rejects.toThrow(/--key-id must be a key ID/);
    await expect(keysRingRotate({ ring, to: 'ffffffffffffffff' }, quiet)).rejects.toThrow(/is not in/);
    await expect(keysRingRotate({ ring, to: ids.currentKeyId }, quiet)).rejects.toThrow(/is already the current key/);
    const single = join(dir, 'single.key');
    generateKeyFile(single);
    await expect(keysRingRotate({ ring: single }, quiet)).rejects.toThrow(
      /is a single key, not a key ring; make a ring from it with 'session-migrate keys ring init --key-file/,
    );
    writeFileSync(`${ring}.lock`, '');
    await expect(keysRingAdd({ ring }, quiet)).rejects.toThrow(
      /is locked by .*ring2\.lock: another keys ring command is running; if none is, remove/,
    );
    rmSync(`${ring}.lock`);
    chmodSync(ring, 0o640);
    await expect(keysRingAdd({ ring }, quiet)).rejects.toThrow(/fix with 'chmod 600/);
    expect(idsOf(ring)).toEqual(ids);
  });
});

describe('keys ring through a symlink', () => {
  it('add, rotate and retire refuse a ring path that is a symlink, name the real path, and change nothing', async () => {
    const real = join(dir, 'real-ring');
    await keysRingInit({ out: real }, quiet);
    await keysRingAdd({ ring: real }, quiet);
    const before = readFileSync(real, 'latin1');
    const ids = idsOf(real);
    const link = join(dir, 'ringlink');
    symlinkSync(real, link);
    const realPath = realpathSync(real);
    const attempts: Array<[string, () => Promise<number>]> = [
      ['add', () => keysRingAdd({ ring: link }, quiet)],
      ['rotate', () => keysRingRotate({ ring: link }, quiet)],
      ['rotate --to', () => keysRingRotate({ ring: link, to: ids.previousKeyIds[0]! }, quiet)],
      ['retire', () => keysRingRetire({ ring: link, keyId: ids.previousKeyIds[0]! }, quiet)],
    ];
    for (const [name, attempt] of attempts) {
      let message = '';
      try {
        await attempt();
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, name).toBe(
        `key ring ${link} is a symlink; refusing to replace it (the link would become a file and ${realPath} would stay unchanged): give the real path ${realPath}`,
      );
      expect(lstatSync(link).isSymbolicLink(), name).toBe(true);
      expect(readlinkSync(link)).toBe(real);
      expect(readFileSync(real, 'latin1'), name).toBe(before);
      expect(existsSync(`${link}.lock`), name).toBe(false);
    }
    // The real path, as the message says, works.
    expect(await keysRingRotate({ ring: realPath }, quiet)).toBe(0);
    expect(idsOf(link).previousKeyIds[0]).toBe(ids.currentKeyId);
  });

  it('a dangling ring symlink is refused too', async () => {
    const link = join(dir, 'dangling-ring');
    symlinkSync(join(dir, 'no-such-ring'), link);
    await expect(keysRingAdd({ ring: link }, quiet)).rejects.toThrow(
      /is a symlink whose target does not exist; refusing to write through it/,
    );
    expect(existsSync(join(dir, 'no-such-ring'))).toBe(false);
  });

  it('keys generate --out and keys ring init --out refuse an existing symlink (live or dangling) and leave its target alone', async () => {
    const target = join(dir, 'gen-target.key');
    generateKeyFile(target);
    const before = readFileSync(target, 'latin1');
    const live = join(dir, 'gen-live-link');
    const dangling = join(dir, 'gen-dangling-link');
    symlinkSync(target, live);
    symlinkSync(join(dir, 'gen-nothing'), dangling);
    for (const out of [live, dangling]) {
      expect(() => generateKeyFile(out)).toThrow(/already exists; refusing to overwrite it/);
      await expect(keysRingInit({ out }, quiet)).rejects.toThrow(/already exists; refusing to overwrite it/);
      expect(lstatSync(out).isSymbolicLink()).toBe(true);
    }
    expect(readFileSync(target, 'latin1')).toBe(before);
    expect(existsSync(join(dir, 'gen-nothing'))).toBe(false);
  });
});

describe('key provider options', async () => {
  const { keyProviderFromArgs } = await import('../src/key-options.ts');
  it('takes exactly one provider, and refuses a key pasted as a path or a variable name without echoing it', () => {
    expect(keyProviderFromArgs({ 'key-file': '/etc/sm/key' }, true)).toEqual({ kind: 'file', path: '/etc/sm/key' });
    expect(keyProviderFromArgs({ 'key-command': 'vault read x', 'key-command-timeout': 3 }, true)).toEqual({
      kind: 'command',
      command: 'vault read x',
      timeoutSeconds: 3,
    });
    expect(keyProviderFromArgs({}, false)).toBeUndefined();
    expect(() => keyProviderFromArgs({}, true)).toThrow(/give the key with one of --key-file, --key-ring, --key-env or --key-command/);
    expect(() => keyProviderFromArgs({ 'key-file': 'a', 'key-env': 'B' }, true)).toThrow(/give only one of/);
    // --key-command-timeout means nothing without --key-command: a usage error, not silently ignored.
    for (const a of [{ 'key-file': '/etc/sm/key' }, { 'key-ring': '/etc/sm/ring' }, { 'key-env': 'SM_KEY' }, {}]) {
      let error: unknown;
      try {
        keyProviderFromArgs({ ...a, 'key-command-timeout': 3 }, false);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(a)).toBeInstanceOf(UserFacingError);
      expect((error as UserFacingError).message).toBe('--key-command-timeout needs --key-command');
      expect((error as UserFacingError).exitCode).toBe(2);
    }
    expect(keyProviderFromArgs({ 'key-command': 'vault read x' }, true)).toEqual({
      kind: 'command',
      command: 'vault read x',
      timeoutSeconds: 10,
    });
    const key = Buffer.alloc(32, 0xfa);
    for (const [option, value] of [
      ['key-file', key.toString('base64')],
      ['key-ring', key.toString('base64url')],
      ['key-env', key.toString('hex')],
      ['key-env', 'session-migrate-keyring 1'],
    ] as const) {
      let message = '';
      try {
        keyProviderFromArgs({ [option]: value }, true);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, option).toMatch(/looks like key material \(not shown\); keys never come from the command line/);
      expect(message).not.toContain(value.slice(0, 12));
    }
  });
});

describe('a key on the command line is refused and never repeated (docs/keys.md, "Where keys come from")', async () => {
  const { keyProviderFromArgs, redactKeyText, containsKeyText } = await import('../src/key-options.ts');
  const { main } = await import('../src/main.ts');
  const { vi } = await import('vitest');
  const key = Buffer.from('fb'.repeat(4) + '3f'.repeat(20) + 'c0'.repeat(8), 'hex'); // base64 with '+', '/', digits, both cases
  const b64 = key.toString('base64');
  const variants = [b64, b64.slice(0, 43), key.toString('base64url'), key.toString('hex')];
  /** Runs the CLI in-process; returns its exit code and what it wrote to stderr. */
  const cli = async (argv: string[]) => {
    let stderr = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    try {
      return { code: await main(argv), stderr };
    } finally {
      spy.mockRestore();
    }
  };

  it('--key-command with the key written into it is refused without echoing it; a command that fetches one is not', () => {
    for (const command of [`echo ${b64}`, `printf '%s' "${key.toString('base64url')}"`, "printf 'session-migrate-keyring 1\\n...'"]) {
      let error: unknown;
      try {
        keyProviderFromArgs({ 'key-command': command }, true);
      } catch (err) {
        error = err;
      }
      expect(error, command).toBeInstanceOf(UserFacingError);
      expect((error as Error).message).toMatch(/^--key-command contains what looks like key material \(not shown\)/);
      expect((error as Error).message).not.toContain(b64.slice(4, 20));
    }
    for (const command of [
      'vault kv get -field=ring secret/session-migrate',
      'aws secretsmanager get-secret-value --secret-id arn:aws:secretsmanager:eu-west-1:123456789012:secret:sm-AbCdEf --query SecretString --output text',
      `cat /run/secrets/sm.key # sha256-${createHash('sha256').update('x').digest('base64')}`,
    ]) {
      expect(containsKeyText(command), command).toBe(false);
      expect(keyProviderFromArgs({ 'key-command': command }, true)).toMatchObject({ kind: 'command', command });
    }
  });

  it('a URL-safe key without a digit (about one key in 1,500) is key text too (the key-leak test met one)', () => {
    for (const k of ['vAHQwJdzvlCYxQbcGEVtFmYNzBtZgHwjhVotTolWbIE', 'yYNdMDaZqmQAuWVNwkc-ToUCAcbSuVVOqVLHJtwdFFM']) {
      expect(Buffer.from(k, 'base64url')).toHaveLength(32);
      expect(containsKeyText(`echo ${k}`), k).toBe(true);
      expect(redactKeyText(`Unknown argument: ${k}`)).toBe('Unknown argument: <redacted>');
    }
  });

  it('redactKeyText hides key words and leaves paths, key IDs, digests in key names and sha256- hashes alone', () => {
    for (const v of variants)
      expect(redactKeyText(`Unknown argument: ${v} (see --help)`)).toBe('Unknown argument: <redacted> (see --help)');
    expect(redactKeyText(`--json takes no value (got "${b64}")`)).toBe('--json takes no value (got "<redacted>")');
    const keep = [
      'key file /etc/session-migrate/master.key: no such file or directory',
      `key ID 0123456789abcdef is not in /etc/sm/ring; value smsess:{${'ab'.repeat(32)}} left alone`,
      `integrity sha256-${createHash('sha256').update('x').digest('base64')}`,
    ];
    for (const m of keep) expect(redactKeyText(m)).toBe(m);
  });

  it('the CLI refuses a key typed as a word or an option value with exit 2 and one stderr line that does not contain it', async () => {
    for (const v of variants) {
      for (const argv of [
        ['keys', 'id', v, '--key-file', '/nonexistent/k'],
        ['keys', 'id', '--key-file=/nonexistent/k', `--json=${v}`],
        ['keys', 'ring', 'rotate', '--key-ring', join(dir, 'no-ring'), '--to', v],
        ['keys', 'id', '--key-command', `echo ${v}`],
      ]) {
        const r = await cli(argv);
        expect(r.code, argv.join(' ')).toBe(2);
        expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).not.toContain(v.slice(0, 40));
      }
    }
  });
});

describe('one rule for key text on the command line (containsKeyText), hex keys included', async () => {
  const { containsKeyText, keyProviderFromArgs } = await import('../src/key-options.ts');
  const { main } = await import('../src/main.ts');
  const { vi } = await import('vitest');
  const { spawnSync } = await import('node:child_process');
  const BIN = join(import.meta.dirname, '../bin/session-migrate.js');
  /**
   * The CLI as a process (the tsx bin: about 1 s of CPU a start), for the first command line of each
   * case below; the others go through the same main() in-process (inProcess), which is all the bin runs.
   */
  const spawned = (argv: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...argv], { cwd: dir, encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** main() in-process, run in `dir` as the bin would be: its exit code and what it wrote to stdout and stderr. */
  const inProcess = async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const cwd = process.cwd();
    const spies = [
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)),
      vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)),
      vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (stdout += a.join(' ') + '\n')),
      vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (stderr += a.join(' ') + '\n')),
    ];
    process.chdir(dir);
    try {
      const status = await main(argv);
      return { status, stdout, stderr };
    } finally {
      process.chdir(cwd);
      for (const s of spies) s.mockRestore();
    }
  };
  /** The first command line as a process, the rest in-process. */
  const runAll = async (argvs: string[][]) => {
    const out = [];
    for (const [i, argv] of argvs.entries()) out.push({ argv, ...(i === 0 ? spawned(argv) : await inProcess(argv)) });
    return out;
  };
  const key = Buffer.from('fb'.repeat(4) + '3f'.repeat(20) + 'c0'.repeat(8), 'hex');
  const hex = key.toString('hex');
  // Every spelling of a 32-byte key the rule covers: what key files accept (standard padded base64)
  // and what people paste (unpadded, URL-safe with and without a digit, hex in both cases).
  const spellings = [
    key.toString('base64'),
    key.toString('base64').slice(0, 43),
    key.toString('base64url'),
    'vAHQwJdzvlCYxQbcGEVtFmYNzBtZgHwjhVotTolWbIE',
    hex,
    hex.toUpperCase(),
  ];

  it('finds each spelling as a word, an =value, a path component and inside a command; leaves digests and names alone', () => {
    for (const k of spellings) {
      for (const w of [k, `--out=${k}`, `echo ${k}`, `printf '%s' "${k}"`]) expect(containsKeyText(w), w).toBe(true);
      // An unpadded standard-base64 key holds '/': inside a path it is a path (documented).
      if (!k.includes('/') || k.endsWith('='))
        for (const w of [`/tmp/${k}`, `/tmp/${k}/plan.json`]) expect(containsKeyText(w), w).toBe(true);
      for (const option of ['key-file', 'key-ring', 'key-env', 'key-command'] as const) {
        let message = '';
        try {
          keyProviderFromArgs({ [option]: option === 'key-command' ? `echo ${k}` : k }, true);
        } catch (err) {
          message = (err as Error).message;
        }
        expect(message, `${option} ${k}`).toMatch(/looks like key material \(not shown\)/);
        expect(message).not.toContain(k.slice(0, 12));
      }
    }
    for (const w of [
      `smsess:{${hex}}`,
      `sha256:${hex}`,
      `rediss://default:${hex}@127.0.0.1:6379/0`,
      hex.slice(0, 63),
      hex + 'ab',
      '0123456789abcdef',
      'vault kv get -field=ring secret/session-migrate',
      '/var/lib/php/sessions',
    ])
      expect(containsKeyText(w), w).toBe(false);
    // A key made by hand (32 equal bytes, no upper case letter) counts where a key's path or name
    // belongs; elsewhere a word of a key's length without a key's mix of letters is a name.
    const handMade = Buffer.alloc(32, 0xfa).toString('base64url');
    const dirName = 'php-sessions-of-shop-2026-12-05-production1';
    expect(dirName).toHaveLength(43);
    expect(containsKeyText(handMade, true)).toBe(true);
    expect(containsKeyText(`--key-ring=${handMade}`)).toBe(true);
    expect(containsKeyText(dirName, true)).toBe(true);
    expect(containsKeyText(dirName)).toBe(false);
    expect(containsKeyText(`--out=${dirName}`)).toBe(false);
  });

  it('the CLI refuses a hex key as a word, as --out, and inside --key-command, exit 2, one line that does not hold it', async () => {
    const out = join(dir, 'hex-out');
    for (const { argv, ...r } of await runAll([
      // First, as a process: a relative --out that, if it were taken, would write in the process's cwd.
      ['keys', 'generate', '--out', hex],
      ['keys', 'id', hex, '--key-file', '/nonexistent/k'],
      ['keys', 'generate', `--out=${join(out, hex.toUpperCase())}`],
      ['keys', 'id', '--key-command', `echo ${hex}`],
      ['keys', 'id', '--key-env', hex],
    ])) {
      expect(r.status, `${argv.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(
        /^session-migrate: word \d of the command line looks like key material \(not shown\); keys never come from the command line/,
      );
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stdout + r.stderr).not.toContain(hex.slice(10, 30));
      expect((r.stdout + r.stderr).toLowerCase()).not.toContain(hex.slice(40, 60));
    }
    // A directory name of a key's length is no key: --out takes it.
    const named = await inProcess(['keys', 'generate', '--out', join(dir, 'php-sessions-of-shop-2026-12-05-production1')]);
    expect(named.status, named.stderr).toBe(0);
    // Nothing was written under a name made of the key.
    expect(existsSync(join(dir, hex))).toBe(false);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('refuses a key beside --help or --version before yargs answers them: the one-line refusal only, exit 2', async () => {
    for (const { argv, ...r } of await runAll([
      ['--version', hex],
      ['--help', hex],
      ['-h', hex],
      [hex, '--version'],
      ['plan', '--help', hex],
      ['keys', '--version', hex],
      ['keys', 'id', '--help', `--key-file=${key.toString('base64url')}`],
    ])) {
      expect(r.status, `${argv.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stdout, argv.join(' ')).toBe('');
      expect(r.stderr, argv.join(' ')).toMatch(
        /^session-migrate: word \d of the command line looks like key material \(not shown\); keys never come from the command line[^\n]*\n$/,
      );
      expect(r.stderr).not.toContain(hex.slice(10, 30));
      expect(r.stderr).not.toContain(key.toString('base64url').slice(10, 30));
    }
    // Without a key, --help and --version still answer on stdout, exit 0.
    for (const { argv, ...r } of await runAll([['--version'], ['plan', '--help']])) {
      expect(r.status, argv.join(' ')).toBe(0);
      expect(r.stdout).not.toBe('');
      expect(r.stderr).toBe('');
    }
  }, 60_000);
});

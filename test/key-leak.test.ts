/**
 * Proof that key material never leaks (issue 5): every CLI command that touches keys runs with known
 * keys, on its success and its error paths, and everything the tool produced is searched for every
 * master key, lookup key and derived subkey, in raw bytes, standard base64 (with and without
 * padding), URL-safe base64 and hex (both cases), whole and as 20-character fragments: stdout,
 * stderr, plan files, generated PHP and ini files, JSON reports, and Redis itself (names and values).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveKeys, loadSodium, parseKeyText } from '@session-migrate/envelope';
import { startRedis, type RedisServer } from './support/servers.ts';
import { BIN } from './support/migrate-cli.ts';

interface Run {
  args: string[];
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('latin1');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('latin1');
    });
    child.on('close', (status) => resolve({ args, status, stdout, stderr }));
  });
}

let redis: RedisServer;
let root: string;
const runs: Run[] = [];
const keyTexts: string[] = []; // every key or ring text the commands were given or wrote (the needles come from these)

const sodium = await loadSodium();

beforeAll(async () => {
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'sm-leak-'));
  for (const d of ['secrets', 'out', 'sessions']) mkdirSync(join(root, d), { mode: 0o700 });
});
afterAll(async () => {
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Every key in every text, and every key derived from them. */
function secretsOf(texts: string[]): Buffer[] {
  const keys: Buffer[] = [];
  for (const text of texts) {
    let ring;
    try {
      ring = parseKeyText(sodium, text, 'needle');
    } catch {
      continue; // malformed inputs: their real keys are needles through the good texts they came from
    }
    keys.push(ring.lookupKey);
    for (const master of [ring.current, ...ring.previous]) {
      const d = deriveKeys(sodium, master);
      keys.push(master, Buffer.from(d.encryptionKey), Buffer.from(d.lookupKey));
    }
  }
  return keys;
}

function needles(key: Buffer): Array<{ form: string; bytes: Buffer }> {
  const b64 = key.toString('base64');
  const url = key.toString('base64url');
  const hex = key.toString('hex');
  const forms: Record<string, string> = {
    base64: b64,
    'base64-unpadded': b64.replace(/=+$/, ''),
    base64url: url,
    hex,
    HEX: hex.toUpperCase(),
    'base64 fragment': b64.slice(10, 30),
    'base64url fragment': url.slice(10, 30),
    'hex fragment': hex.slice(20, 40),
  };
  return [
    { form: 'raw', bytes: key },
    { form: 'raw fragment', bytes: key.subarray(8, 24) },
    ...Object.entries(forms).map(([form, text]) => ({ form, bytes: Buffer.from(text, 'latin1') })),
  ];
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

describe('no command leaks key material', () => {
  it('runs every key command, success and failure paths, and finds no key anywhere in what they produced', async () => {
    const S = (name: string) => join(root, 'secrets', name);
    const O = (name: string) => join(root, 'out', name);
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const r = await cli(args, env);
      runs.push(r);
      return r;
    };
    const secretFile = (name: string, text: string, mode = 0o600) => {
      writeFileSync(S(name), text);
      chmodSync(S(name), mode);
      keyTexts.push(text);
      return S(name);
    };

    // Sessions to migrate.
    for (let i = 0; i < 5; i++) {
      const p = join(root, 'sessions', `sess_leak${i}abcdefghijklmnopqrstu`);
      writeFileSync(p, `uid|i:${i};name|s:3:"leo";`);
    }

    // keys generate / id
    expect((await run(['keys', 'generate', '--out', S('k0')])).status).toBe(0);
    const k0Text = readFileSync(S('k0'), 'latin1');
    keyTexts.push(k0Text);
    const k0 = parseKeyText(sodium, k0Text, 'k0').current;
    // Runs that only read and write nothing another run reads go at once (each is its own process).
    const ids0 = await Promise.all([
      run(['keys', 'id', '--key-file', S('k0')]),
      run(['keys', 'id', '--key-file', S('k0'), '--json']),
      run(['keys', 'id', '--key-env', 'LEAK_KEY'], { LEAK_KEY: k0Text }),
      run(['keys', 'id', '--key-command', `cat ${S('k0')}`]),
    ]);
    for (const r of ids0) expect(r.status, r.args.join(' ')).toBe(0);

    // plan / apply / verify with every provider
    const planFile = O('plan.json');
    const plan = await run([
      'plan',
      '--source',
      `files:${join(root, 'sessions')}`,
      '--target',
      redis.url,
      '--key-file',
      S('k0'),
      '--out',
      planFile,
      '--artifacts-dir',
      O('artifacts'),
      '--json',
    ]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(
      (
        await run(
          [
            'plan',
            '--source',
            `files:${join(root, 'sessions')}`,
            '--target',
            redis.url,
            '--key-env',
            'LEAK_KEY',
            '--out',
            O('plan-env.json'),
            '--artifacts-dir',
            O('artifacts'),
          ],
          { LEAK_KEY: k0Text },
        )
      ).status,
    ).toBe(0);
    expect((await run(['apply', '--plan', planFile, '--dry-run', '--json'])).status).toBe(0);
    const apply = await run(['apply', '--plan', planFile, '--json']);
    expect(apply.status, apply.stderr).toBe(0);
    expect((await run(['apply', '--plan', planFile])).status).toBe(0);
    expect((await run(['apply', '--plan', O('plan-env.json')], { LEAK_KEY: k0Text })).status).toBe(0);
    const verified = await Promise.all([
      run(['verify', '--plan', planFile, '--source', `files:${join(root, 'sessions')}`, '--json']),
      run(['verify', '--target', redis.url, '--key-command', `cat ${S('k0')}`]),
    ]);
    for (const r of verified) expect(r.status, r.args.join(' ')).toBe(0);

    // key ring: init, add, rotate --to, rotate, id; rotate the data; verify; retire
    const ring = S('ring');
    expect((await run(['keys', 'ring', 'init', '--key-file', S('k0'), '--out', ring])).status).toBe(0);
    keyTexts.push(readFileSync(ring, 'latin1'));
    const added = await run(['keys', 'ring', 'add', '--key-ring', ring]);
    expect(added.status).toBe(0);
    keyTexts.push(readFileSync(ring, 'latin1'));
    const addedId = /added key ID ([0-9a-f]{16})/.exec(added.stdout)![1]!;
    expect((await run(['keys', 'ring', 'rotate', '--key-ring', ring, '--to', addedId])).status).toBe(0);
    keyTexts.push(readFileSync(ring, 'latin1'));
    expect((await run(['keys', 'ring', 'rotate', '--key-ring', ring])).status).toBe(0);
    keyTexts.push(readFileSync(ring, 'latin1'));
    const ids = JSON.parse((await run(['keys', 'id', '--key-ring', ring, '--json'])).stdout) as {
      currentKeyId: string;
      previousKeyIds: string[];
    };
    const rotate = await run(['rotate', '--target', redis.url, '--key-ring', ring, '--json']);
    expect(rotate.status, rotate.stderr).toBe(0);
    expect((await run(['rotate', '--target', redis.url, '--key-ring', ring])).status).toBe(0);
    expect((await run(['verify', '--target', redis.url, '--key-ring', ring, '--require-key-id', ids.currentKeyId, '--json'])).status).toBe(
      0,
    );
    expect((await run(['keys', 'ring', 'retire', '--key-ring', ring, '--key-id', addedId])).status).toBe(0);
    keyTexts.push(readFileSync(ring, 'latin1'));

    // Error paths: each must fail with one line and leak nothing.
    const b64 = k0.toString('base64');
    const fail = async (args: string[], code: number, pattern: RegExp, env: Record<string, string> = {}) => {
      const r = await run(args, env);
      expect(r.status, `${args.join(' ')}\n${r.stderr}`).toBe(code);
      expect(r.stderr + r.stdout).toMatch(pattern);
      return r;
    };
    const other = S('other');
    expect((await run(['keys', 'generate', '--out', other])).status).toBe(0);
    keyTexts.push(readFileSync(other, 'latin1'));
    await fail(['apply', '--plan', planFile, '--key-file', other], 2, /no longer matches: .*lookup ID/);
    await fail(['verify', '--target', redis.url, '--key-file', other, '--json'], 1, /unknown-key-id/);
    const ringText = readFileSync(ring, 'latin1');
    const current = /^current (\S+)$/m.exec(ringText)![1]!;
    // Independent of each other: run six at a time (each is a separate CLI process).
    const errorPaths: Array<() => Promise<Run>> = [
      () => fail(['keys', 'id', '--key-file', secretFile('truncated', b64.slice(0, 30))], 2, /not a session-migrate key/),
      () =>
        fail(
          ['keys', 'id', '--key-file', secretFile('long', Buffer.concat([k0, Buffer.from([7])]).toString('base64'))],
          2,
          /not a session-migrate key/,
        ),
      () =>
        fail(['keys', 'id', '--key-file', secretFile('urlsafe', k0.toString('base64url'))], 2, /URL-safe or unpadded base64 is refused/),
      () => fail(['keys', 'id', '--key-file', secretFile('open', b64, 0o644)], 2, /chmod 600/),
      () =>
        fail(['keys', 'id', '--key-ring', secretFile('dup', ringText.replace('\nend', `\nprevious ${current}\nend`))], 2, /appears twice/),
      () =>
        fail(['keys', 'id', '--key-ring', secretFile('cut', ringText.slice(0, ringText.indexOf('\nend')))], 2, /truncated: no 'end' line/),
      () => fail(['keys', 'ring', 'rotate', '--key-ring', S('k0')], 2, /is a single key, not a key ring/),
      () => fail(['keys', 'id', '--key-command', `cat ${ring}; cat ${S('k0')} >&2; exit 3`], 2, /--key-command exited with status 3/),
      // The URL-safe key comes from a file: written into the command itself it is a key on the
      // command line, refused before the command runs (next).
      () =>
        fail(
          ['keys', 'id', '--key-command', `cat ${secretFile('urlsafe-cmd', k0.toString('base64url'))}`],
          2,
          /the output of --key-command: not a session-migrate key/,
        ),
      () =>
        fail(
          ['keys', 'id', '--key-command', `echo ${k0.toString('base64url')}`],
          2,
          /word 4 of the command line looks like key material \(not shown\)/,
        ),
      () => fail(['keys', 'id', b64, '--key-file', S('k0')], 2, /word 3 of the command line looks like key material \(not shown\)/),
      // A key inside a longer word (a path made of a pasted key): refused before an error could name a
      // directory that is a piece of it, and before generate iac made directories named after it.
      () => fail(['keys', 'generate', '--out', b64], 2, /word 4 of the command line looks like key material \(not shown\)/),
      () => fail(['keys', 'generate', '--out', join(root, 'out', b64)], 2, /word 4 of the command line looks like key material/),
      () =>
        fail(
          ['generate', 'iac', '--format', 'terraform', '--out', join(root, 'out', 'iac', b64)],
          2,
          /word 6 of the command line looks like key material/,
        ),
      () =>
        fail(
          ['keys', 'generate', '--out', join(root, 'out', k0.toString('base64url'))],
          2,
          /word 4 of the command line looks like key material/,
        ),
      () =>
        fail(['keys', 'id', '--key-command', `cat ${S('k0')}; sleep 20`, '--key-command-timeout', '0.5'], 2, /did not finish within 0.5 s/),
      () =>
        fail(['keys', 'id', '--key-env', 'LEAK_KEY'], 2, /environment variable LEAK_KEY: not a session-migrate key/, {
          LEAK_KEY: k0.toString('base64url'),
        }),
      () => fail(['keys', 'id', '--key-env', b64], 2, /looks like key material \(not shown\)/),
      () => fail(['keys', 'id', '--key-env', k0.toString('hex')], 2, /looks like key material \(not shown\)/),
      () => fail(['verify', '--target', redis.url, '--key-file', b64], 2, /looks like key material \(not shown\)/),
      // `=`: a base64url key may start with '-', which as its own argument reads as an option (1 run in 64 failed).
      () => fail(['rotate', '--target', redis.url, `--key-ring=${k0.toString('base64url')}`], 2, /looks like key material \(not shown\)/),
      () => fail(['keys', 'ring', 'retire', '--key-ring', ring, '--key-id', ids.currentKeyId], 2, /is the current key/),
    ];
    for (let i = 0; i < errorPaths.length; i += 6) await Promise.all(errorPaths.slice(i, i + 6).map((f) => f()));

    // Everything produced: every run's output, every file outside secrets/, and Redis.
    const haystacks: Array<{ where: string; bytes: Buffer }> = [];
    for (const r of runs) {
      haystacks.push({ where: `stdout of ${r.args.join(' ')}`, bytes: Buffer.from(r.stdout, 'latin1') });
      haystacks.push({ where: `stderr of ${r.args.join(' ')}`, bytes: Buffer.from(r.stderr, 'latin1') });
    }
    const produced = filesUnder(join(root, 'out'));
    expect(produced.map((p) => p.slice(root.length))).toEqual(
      expect.arrayContaining([
        '/out/plan.json',
        '/out/artifacts/src/EncryptedRedisSessionHandler.php',
        '/out/artifacts/autoload.php',
        '/out/artifacts/session-migrate-bootstrap.php',
        '/out/artifacts/99-session-migrate.ini',
      ]),
    );
    for (const p of produced) haystacks.push({ where: p, bytes: readFileSync(p) });
    for (const p of filesUnder(join(root, 'secrets'))) expect(statSync(p).mode & 0o077, p).toBe(p.endsWith('open') ? 0o044 : 0);
    for (const k of await redis.client.keysBuffer('*')) {
      haystacks.push({ where: `Redis key name ${k.toString('latin1')}`, bytes: k });
      haystacks.push({ where: `Redis value of ${k.toString('latin1')}`, bytes: (await redis.client.getBuffer(k))! });
    }
    expect(await redis.client.dbsize()).toBe(5);

    const secrets = secretsOf(keyTexts);
    expect(secrets.length).toBeGreaterThanOrEqual(4 * 3 + 2); // k0, other, three ring keys and their subkeys, lookup keys
    const leaks: string[] = [];
    for (const [i, key] of secrets.entries()) {
      for (const n of needles(key)) {
        for (const h of haystacks) if (h.bytes.includes(n.bytes)) leaks.push(`secret #${i} (${n.form}) in ${h.where}`);
      }
    }
    expect(leaks).toEqual([]);
    // The search itself works: a key text is found where it is known to be.
    expect(needles(k0).some((n) => Buffer.from(k0Text, 'latin1').includes(n.bytes))).toBe(true);
  }, 600_000);
});

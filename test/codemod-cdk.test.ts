/**
 * `session-migrate codemod cdk DIR` end to end, through the CLI binary, on a small CDK app written
 * for the test: dry run (diff, nothing written), real run (atomic rewrite, mode kept), second run (no
 * change), skipped directories, symbolic links out of DIR, exit codes and --json.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCdkCodemod } from '@session-migrate/codemod-cdk';
import { BIN, SOURCE_BIN } from './support/migrate-cli.ts';

const FIXTURES = join(import.meta.dirname, '../codemods/cdk/test/fixtures');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fixture's input.ts, or what the codemod makes of it: output.ts, or the input itself when the case must not change (no output.ts). */
const fixture = (name: string, file: 'input.ts' | 'output.ts') =>
  readFileSync(join(FIXTURES, name, file === 'output.ts' && !existsSync(join(FIXTURES, name, 'output.ts')) ? 'input.ts' : file), 'utf8');

/** Every file below dir (following nothing), path -> contents. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(p, readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

/** A CDK app: two stacks to fix, one compliant, and copies that must not be touched. */
function makeApp(): { root: string; app: string; outside: string } {
  const root = mkdtempSync(join(tmpdir(), 'cdk-app-'));
  const app = join(root, 'app');
  const outside = join(root, 'outside');
  mkdirSync(join(app, 'lib'), { recursive: true });
  mkdirSync(join(app, 'bin'));
  mkdirSync(join(app, 'node_modules', 'some-construct-lib'), { recursive: true });
  mkdirSync(join(app, 'cdk.out'));
  mkdirSync(outside);
  writeFileSync(join(app, 'lib', 'session-stack.ts'), fixture('namespace-import', 'input.ts'));
  chmodSync(join(app, 'lib', 'session-stack.ts'), 0o640);
  writeFileSync(join(app, 'lib', 'crlf-stack.ts'), fixture('crlf', 'input.ts'));
  writeFileSync(join(app, 'lib', 'compliant-stack.ts'), fixture('already-compliant', 'input.ts'));
  writeFileSync(join(app, 'bin', 'app.ts'), "import * as cdk from 'aws-cdk-lib';\nnew cdk.App();\n");
  writeFileSync(join(app, 'lib', 'types.d.ts'), fixture('namespace-import', 'input.ts'));
  writeFileSync(join(app, 'node_modules', 'some-construct-lib', 'index.ts'), fixture('namespace-import', 'input.ts'));
  writeFileSync(join(app, 'cdk.out', 'asset.ts'), fixture('namespace-import', 'input.ts'));
  // Links that lead out of the app: never followed, never written through, reported as skipped.
  writeFileSync(join(outside, 'stack.ts'), fixture('namespace-import', 'input.ts'));
  symlinkSync(join(outside, 'stack.ts'), join(app, 'lib', 'linked-stack.ts'));
  symlinkSync(outside, join(app, 'lib', 'linked-dir'));
  return { root, app, outside };
}

describe('codemod cdk (CLI)', () => {
  it('--dry-run prints a unified diff and writes nothing', () => {
    const { root, app } = makeApp();
    const before = snapshot(root);
    const r = cli(['codemod', 'cdk', app, '--dry-run']);
    expect(r.stderr).toBe('');
    // The two links out of the app are reported, not followed: nobody looked at them (exit 1).
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('--- a/lib/session-stack.ts\n+++ b/lib/session-stack.ts\n@@ -13,6 +13,9 @@');
    expect(r.stdout).toContain("+      authToken: cdk.SecretValue.secretsManager('session-migrate/redis-auth-token').unsafeUnwrap(),\n");
    expect(r.stdout).toContain('would change lib/session-stack.ts');
    expect(r.stdout).toContain('would change lib/crlf-stack.ts');
    expect(r.stdout).not.toMatch(/node_modules|cdk\.out|[ab]\/lib\/linked|change lib\/linked|types\.d\.ts|compliant-stack/);
    expect(r.stdout).toContain(
      'skipped lib/linked-dir: symbolic link: not followed\nskipped lib/linked-stack.ts: symbolic link: not followed\n',
    );
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('incomplete: review the high and medium findings above, and any skipped file');
    expect(snapshot(root)).toEqual(before);
  });

  it('rewrites exactly the files below DIR, atomically with their mode; a second run changes nothing', () => {
    const { root, app, outside } = makeApp();
    const before = snapshot(root);
    const r = cli(['codemod', 'cdk', app]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1); // the links out of the app, reported as skipped
    expect(r.stdout).toContain(
      'changed lib/session-stack.ts: transitEncryptionEnabled added (line 10), atRestEncryptionEnabled added (line 10), authToken added (line 10)',
    );
    expect(r.stdout).toMatch(/3 ElastiCache construct\(s\) in 4 TypeScript file\(s\); changed 2 file\(s\)/);
    const after = snapshot(root);
    const changed = [...after.keys()].filter((p) => after.get(p) !== before.get(p)).sort();
    expect(changed).toEqual([join(app, 'lib', 'crlf-stack.ts'), join(app, 'lib', 'session-stack.ts')]);
    expect(after.get(join(app, 'lib', 'session-stack.ts'))).toBe(fixture('namespace-import', 'output.ts'));
    expect(after.get(join(app, 'lib', 'crlf-stack.ts'))).toBe(fixture('crlf', 'output.ts'));
    expect(statSync(join(app, 'lib', 'session-stack.ts')).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(outside, 'stack.ts'), 'utf8')).toBe(fixture('namespace-import', 'input.ts'));
    // No temporary files left behind.
    expect(readdirSync(join(app, 'lib')).filter((n) => n.endsWith('.tmp'))).toEqual([]);

    const again = cli(['codemod', 'cdk', app]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('changed 0 file(s)');
    expect(snapshot(root)).toEqual(after);
  });

  it('exits 1 and reports what it cannot change; --json gives the same report', () => {
    const { app } = makeApp();
    writeFileSync(join(app, 'lib', 'cache-cluster.ts'), fixture('cache-cluster', 'input.ts'));
    writeFileSync(join(app, 'lib', 'computed.ts'), fixture('computed-values', 'input.ts'));
    const text = cli(['codemod', 'cdk', app, '--dry-run']);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('high: lib/cache-cluster.ts:7:5: cache-cluster-no-encryption: ');
    expect(text.stdout).toContain(
      'medium: lib/computed.ts:14:7: computed-value: transitEncryptionEnabled is computed at run time (a conditional expression)',
    );
    expect(text.stdout).toContain('incomplete: review the high and medium findings above');

    const json = cli(['codemod', 'cdk', app, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as {
      incomplete: boolean;
      dryRun: boolean;
      files: { path: string; changed: boolean; findings: { id: string }[]; diff?: string }[];
    };
    expect(report.incomplete).toBe(true);
    expect(report.dryRun).toBe(false);
    const byPath = new Map(report.files.map((f) => [f.path, f]));
    expect(byPath.get('lib/cache-cluster.ts')!.findings.map((f) => f.id)).toEqual(['cache-cluster-no-encryption', 'engine-not-redis']);
    expect(byPath.get('lib/cache-cluster.ts')!.changed).toBe(false);
    expect(byPath.get('lib/session-stack.ts')!.changed).toBe(true);
    expect(byPath.get('lib/session-stack.ts')!.diff).toContain('+      transitEncryptionEnabled: true,');
    // Reported files are left as they were.
    expect(readFileSync(join(app, 'lib', 'cache-cluster.ts'), 'utf8')).toBe(fixture('cache-cluster', 'input.ts'));
    expect(readFileSync(join(app, 'lib', 'computed.ts'), 'utf8')).toBe(fixture('computed-values', 'input.ts'));
  });

  it('an AUTH token written as a string is never printed: the diff shows it redacted (context lines, --dry-run and --json)', () => {
    // The auth-token-literal fixture: a literal token two lines below the changed line; and a const
    // token right above a construct the codemod changes: both in the diff's context. The files keep them.
    const { app } = makeApp();
    writeFileSync(join(app, 'lib', 'token.ts'), fixture('auth-token-literal', 'input.ts'));
    writeFileSync(
      join(app, 'lib', 'const-token.ts'),
      [
        "import * as cdk from 'aws-cdk-lib';",
        "import * as ec from 'aws-cdk-lib/aws-elasticache';",
        'export class S extends cdk.Stack {',
        '  constructor(scope: cdk.App, id: string) {',
        '    super(scope, id);',
        "    const TOKEN = 'correct-horse-battery-staple';",
        "    new ec.CfnReplicationGroup(this, 'A', { replicationGroupDescription: 'a', transitEncryptionEnabled: false, atRestEncryptionEnabled: true, authToken: TOKEN });",
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const dry = cli(['codemod', 'cdk', app, '--dry-run']);
    const json = cli(['codemod', 'cdk', app, '--dry-run', '--json']);
    for (const r of [dry, json]) {
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).not.toMatch(/hunter2|correct-horse/);
    }
    expect(dry.stdout).toContain("      authToken: '<redacted len=21>',");
    expect(dry.stdout).toContain("    const TOKEN = '<redacted len=28>';");
    expect(dry.stdout).toContain('high: lib/token.ts:13:7: auth-token-in-code: ');
    expect(readFileSync(join(app, 'lib', 'token.ts'), 'utf8')).toBe(fixture('auth-token-literal', 'input.ts'));
    expect(readFileSync(join(app, 'lib', 'const-token.ts'), 'utf8')).toContain('correct-horse-battery-staple');
  });

  it('--auth-secret-name names the secret; a name that is not a secret name is exit 2 and writes nothing', () => {
    const { root, app } = makeApp();
    const before = snapshot(root);
    const bad = cli(['codemod', 'cdk', app, '--auth-secret-name', "x'); evil('"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^session-migrate: --auth-secret-name: /);
    expect(snapshot(root)).toEqual(before);
    const ok = cli(['codemod', 'cdk', app, '--auth-secret-name', 'prod/shop/redis-auth']);
    expect(ok.code).toBe(1); // the links out of the app, reported as skipped
    expect(readFileSync(join(app, 'lib', 'session-stack.ts'), 'utf8')).toContain(
      "cdk.SecretValue.secretsManager('prod/shop/redis-auth').unsafeUnwrap()",
    );
  });

  it('DIR that is missing or a file is exit 2 with one line', () => {
    const { app } = makeApp();
    for (const dir of [join(app, 'nope'), join(app, 'bin', 'app.ts')]) {
      const r = cli(['codemod', 'cdk', dir]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('codemod cdk (CLI start-up)', () => {
  it('other commands do not load ts-morph (the TypeScript compiler takes seconds to load)', () => {
    // ts-morph is CommonJS: NODE_DEBUG=module lists every CommonJS module the process loads. The
    // clone's tsx bin (SOURCE_BIN): the built one bundles every module (the build checks its start-up
    // chunks for heavy packages itself: scripts/package/build.ts checkBundle).
    const r = spawnSync(process.execPath, [SOURCE_BIN, '--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_DEBUG: 'module' },
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('MODULE'); // the debug output is there, so its silence below means something
    expect(r.stderr).not.toMatch(/ts-morph|typescript[\\/]lib[\\/]typescript\.js/);
  });
});

describe('codemod cdk (runner)', () => {
  it('refuses a hard-linked file: the run stops naming it, and nothing is written (the one rewrite rule, common/rewrite-files.ts)', () => {
    const { root, app } = makeApp();
    linkSync(join(app, 'lib', 'session-stack.ts'), join(root, 'hardlink.ts'));
    const before = snapshot(root);
    expect(() => runCdkCodemod(app)).toThrow(/^cannot write lib\/session-stack\.ts: has 2 hard links .*: nothing was changed$/);
    expect(snapshot(root)).toEqual(before);
    expect(readFileSync(join(root, 'hardlink.ts'), 'utf8')).toBe(fixture('namespace-import', 'input.ts'));
    // --dry-run shows the diff, then refuses as the real run does: the same line, exit 2
    const real = cli(['codemod', 'cdk', app]);
    expect(real.code, real.stderr).toBe(2);
    const dry = cli(['codemod', 'cdk', app, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(2);
    expect(dry.stderr).toBe(real.stderr);
    expect(dry.stderr).toMatch(/^session-migrate: cannot write lib\/session-stack\.ts: has 2 hard links .*: nothing was changed\n$/);
    expect(dry.stdout).toContain('+++ b/lib/session-stack.ts');
    expect(dry.stdout).not.toContain('complete: nothing left to decide by hand');
    // it ends with a verdict line as every run does (incomplete: a file is left for a person)
    expect(dry.stdout.trimEnd().split('\n').at(-1)).toBe('incomplete: refused: the real run would change nothing (the reason follows)');
    expect(snapshot(root)).toEqual(before);
  });

  it('rejects a bad secret name before touching any file', () => {
    const { root, app } = makeApp();
    const before = snapshot(root);
    expect(() => runCdkCodemod(app, { authSecretName: 'a b' })).toThrow(/secret name/);
    expect(snapshot(root)).toEqual(before);
  });

  it('reports a file that mentions ElastiCache but is not UTF-8, and does not touch it', () => {
    const { app } = makeApp();
    const bytes = Buffer.concat([Buffer.from(fixture('namespace-import', 'input.ts')), Buffer.from([0xff, 0xfe, 0x0a])]);
    writeFileSync(join(app, 'lib', 'latin1.ts'), bytes);
    const report = runCdkCodemod(app);
    expect(report.files.find((x) => x.path === 'lib/latin1.ts')!.skipped).toBe('not valid UTF-8');
    expect(readFileSync(join(app, 'lib', 'latin1.ts')).equals(bytes)).toBe(true);
  });

  it('keeps a UTF-8 BOM', () => {
    const { app } = makeApp();
    writeFileSync(join(app, 'lib', 'bom.ts'), '\ufeff' + fixture('named-import-alias', 'input.ts'));
    runCdkCodemod(app);
    expect(readFileSync(join(app, 'lib', 'bom.ts'), 'utf8')).toBe('\ufeff' + fixture('named-import-alias', 'output.ts'));
  });

  it('works on a copy of every fixture at once, and a second pass is a no-op', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdk-all-'));
    cpSync(FIXTURES, dir, { recursive: true });
    runCdkCodemod(dir);
    // Cases with an options.json ran with other options than the default ones used here.
    for (const c of readdirSync(FIXTURES).filter((x) => !existsSync(join(FIXTURES, x, 'options.json')))) {
      expect(readFileSync(join(dir, c, 'input.ts'), 'utf8'), c).toBe(fixture(c, 'output.ts'));
    }
    const second = runCdkCodemod(dir);
    expect(second.files.filter((f) => f.changed)).toEqual([]);
  });
});

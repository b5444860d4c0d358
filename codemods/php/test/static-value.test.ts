/**
 * static-value.ts against real PHP: a small app defines constants (const, define, namespaced, use
 * const), classes with constants (self, parent, static, interfaces), and one file lists expressions;
 * PHP prints each value (json), the evaluator must give the same, or UNRESOLVED where PHP's value
 * depends on the request.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePhpAst, type PhpNode } from '../src/source.ts';
import {
  PhpSymbols,
  UNRESOLVED,
  globalScope,
  phpDirname,
  phpFloatToString,
  phpToString,
  walkScoped,
  type PhpValue,
} from '../src/static-value.ts';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'static-value-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILES: Record<string, string> = {
  'app/config/constants.php': `<?php
namespace App\\Config;
const BASE = __DIR__ . '/var';
const LIFETIME = 60 * 60 * 24 * 30;
define('APP_ROOT', dirname(__DIR__, 2));
define('App\\Config\\DEFINED_NS', 'ns-value');
defined('GUARDED') or define('GUARDED', APP_ROOT . '/guarded');
interface Named { const NAME = 'SHOPSESSID'; }
class Base { const DIR = APP_ROOT . DIRECTORY_SEPARATOR . 'data'; const OVERRIDE = 'base'; }
class Paths extends Base implements Named {
    const SESSIONS = self::DIR . '/sessions';
    const FROM_PARENT = parent::OVERRIDE . '-child';
    const OVERRIDE = 'child';
}
`,
  'app/public/index.php': `<?php
namespace App\\Web;
use App\\Config\\Paths;
use App\\Config\\Paths as P;
use const App\\Config\\BASE;
require __DIR__ . '/../config/constants.php';
$values = [
    'dir' => __DIR__,
    'dirname2' => dirname(__DIR__, 2),
    'dirname9' => dirname(__FILE__, 9),
    'concat' => __DIR__ . '/../sessions',
    'base' => BASE,
    'fq' => \\App\\Config\\LIFETIME,
    'lifetime' => \\App\\Config\\LIFETIME * 2,
    'define' => APP_ROOT,
    'define_ns' => \\App\\Config\\DEFINED_NS,
    'guarded' => GUARDED,
    'class_const' => Paths::SESSIONS,
    'alias' => P::DIR,
    'interface' => Paths::NAME,
    'parent' => Paths::FROM_PARENT,
    'class' => Paths::class,
    'constant_fn' => constant('App\\Config\\Paths::SESSIONS'),
    'num' => 0x1F + 1_000 + 017,
    'float' => 0.1 + 0.2,
    'bigfloat' => 1e20 . '',
    'bool' => true . '|' . false . '|' . null,
    'ternary' => PHP_EOL === "\\n" ? 'lf' : 'crlf',
    'cast' => (string) 3.0,
    'array' => ['lifetime' => 3, 'x', 5 => 'y', 'z', '7' => 'seven'],
    'heredoc' => <<<EOT
        text
        EOT,
    'magic_ns' => __NAMESPACE__,
];
echo json_encode($values, JSON_UNESCAPED_SLASHES);
`,
};

for (const [rel, text] of Object.entries(FILES)) {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

/** The entries of the `$values = [...]` array: key -> expression node, and the scope they are in. */
function expressions(): { items: Map<string, PhpNode>; symbols: PhpSymbols; scope: ReturnType<typeof globalScope> } {
  const symbols = new PhpSymbols();
  const asts = new Map<string, PhpNode>();
  for (const rel of Object.keys(FILES)) {
    const file = join(dir, rel);
    const ast = parsePhpAst(readFileSync(file, 'latin1'), rel);
    asts.set(file, ast);
    symbols.addFile(ast, file);
  }
  const index = join(dir, 'app/public/index.php');
  const items = new Map<string, PhpNode>();
  let at = globalScope(index);
  walkScoped(asts.get(index)!, globalScope(index), (node, scope) => {
    if (node.kind !== 'assign' || (node.left as PhpNode).name !== 'values') return;
    at = scope;
    for (const e of (node.right as PhpNode).items as PhpNode[]) items.set(String((e.key as PhpNode).value), e.value as PhpNode);
  });
  return { items, symbols, scope: at };
}

/** A PhpValue as PHP's json_encode shows it (arrays with 0..n-1 keys are lists). */
function asJson(v: PhpValue): unknown {
  if (v === null || typeof v !== 'object') return v;
  const list = v.entries.every(([k], i) => k === i);
  return list ? v.entries.map(([, x]) => asJson(x)) : Object.fromEntries(v.entries.map(([k, x]) => [String(k), asJson(x)]));
}

describe('static values, with PHP as the oracle', () => {
  it('every expression evaluates to what PHP prints', () => {
    const r = spawnSync('php', ['-n', join(dir, 'app/public/index.php')], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const php = JSON.parse(r.stdout) as Record<string, unknown>;
    const { items, symbols, scope } = expressions();
    expect([...items.keys()].sort()).toEqual(Object.keys(php).sort());
    for (const [key, node] of items) {
      const v = symbols.evaluate(node, scope);
      expect(v, key).not.toBe(UNRESOLVED);
      expect(asJson(v as PhpValue), key).toEqual(php[key]);
    }
  });

  it('what depends on the request is unresolved', () => {
    const { symbols, scope } = expressions();
    for (const code of [
      '$x',
      'getenv("HOME")',
      'sys_get_temp_dir()',
      'UNDEFINED_CONST',
      '"a{$x}"',
      '[...$a]',
      'dirname($x)',
      '$a ? 1 : 2',
    ]) {
      const ast = parsePhpAst(`<?php $r = ${code};`, 'x.php');
      const expr = ((ast.children as PhpNode[])[0]!.expression as PhpNode).right as PhpNode;
      expect(symbols.evaluate(expr, scope), code).toBe(UNRESOLVED);
    }
  });

  it('a constant defined twice with different values is unresolved; with the same value it is not', () => {
    const symbols = new PhpSymbols();
    for (const [f, code] of [
      ['/a.php', "<?php define('X', 'one'); define('SAME', 1);"],
      ['/b.php', "<?php define('X', 'two'); define('SAME', 1);"],
    ] as const) {
      symbols.addFile(parsePhpAst(code, f), f);
    }
    expect(symbols.constantValue('X')).toBe(UNRESOLVED);
    expect(symbols.constantValue('SAME')).toBe(1);
  });

  it('dirname() and float-to-string follow PHP on edge cases', () => {
    const cases: Array<[string, number]> = [
      ['/a/b/c', 2],
      ['/', 1],
      ['a', 1],
      ['', 1],
      ['//a', 1],
      ['/a/b/', 1],
      ['/a', 5],
      ['a/b', 3],
      ['/a//b//', 1],
      ['.', 1],
      ['a/', 1],
    ];
    // 123456789012345678 on purpose: PHP and JavaScript must both round it to the same double.
    // eslint-disable-next-line no-loss-of-precision -- the rounding is what is tested
    const floats = [0.1 + 0.2, 1e14, 1e15, 123456789012345678, 0.00001, -0, 1.5, 100, 1e-4, 2 ** 53];
    const code = `echo json_encode([${cases.map(([p, l]) => `dirname(${JSON.stringify(p)}, ${l})`).join(',')}]), "\\n", json_encode([${floats.map((f) => `(string)(float)${Object.is(f, -0) ? '-0.0' : f.toExponential()}`).join(',')}]);`;
    const r = spawnSync('php', ['-n', '-r', code], { encoding: 'utf8' });
    const [dirs, strs] = r.stdout.split('\n').map((l) => JSON.parse(l) as string[]);
    expect(cases.map(([p, l]) => phpDirname(p, l))).toEqual(dirs);
    expect(floats.map(phpFloatToString)).toEqual(strs);
    expect(phpDirname('/a', 0)).toBeNull();
    expect(phpToString(true)).toBe('1');
    expect(phpToString(false)).toBe('');
  });
});

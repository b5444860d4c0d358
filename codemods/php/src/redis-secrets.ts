/**
 * The PHP codemod's one rule of which literals in an application's PHP code are Redis passwords,
 * and how a diff for people to read hides them (`<redacted len=N>`, @session-migrate/php-ini
 * redactedSecret, the product's one form of a hidden password; codemod cdk hides its AUTH tokens
 * the same way). The files the codemod writes are never redacted: only the printed diff is.
 *
 * Where phpredis takes credentials, from its README (https://github.com/phpredis/phpredis,
 * README.md "auth", "connect, open", "Class Redis"; cluster.md; sentinel.md; arrays.md) and its
 * stubs (redis.stub.php, redis_cluster.stub.php, which mark these parameters #[\SensitiveParameter]):
 *
 * - `$redis->auth($credentials)`: the first argument (named `credentials`);
 * - `new RedisCluster($name, $seeds, $timeout, $read_timeout, $persistent, $auth, $context)`: the
 *   sixth argument (named `auth`);
 * - `new RedisSentinel($host, $port, $timeout, $persistent, $retry_interval, $read_timeout, $auth)`
 *   before phpredis 6: the seventh argument (named `auth`);
 * - an array entry keyed `'auth'`, wherever the array is written: phpredis 6 options of `new
 *   Redis([...])` and `new RedisSentinel([...])`, the options of `new RedisArray($hosts, [...])`,
 *   the context of `connect()`/`pconnect()` (7th argument), and the same arrays built before the call;
 * - `ini_set('redis.clusters.auth' | 'redis.arrays.auth', $value)` (also ini_alter): the value
 *   (`mycluster=password`; phpredis redis.c PHP_INI_ENTRY list); other `redis.*` settings
 *   (`redis.session.locking_enabled`...) hold no secret.
 *
 * A credential is a string, or an array of one or two elements (phpredis library.c
 * redis_extract_auth_info): `['pass']`, `['user', 'pass']`, `['user' => u, 'pass' => p]`,
 * `['pass' => p]`. Every string literal in it is a secret but the user name (key `'user'`, or the
 * first of two elements without keys): more hidden, never less. A literal is a single- or
 * double-quoted string (also `b'...'`, and interpolated), a heredoc or nowdoc, and the literals of a
 * `.` concatenation, `??` or `?:` around them. Method and class names match in any case, as PHP's do,
 * and whatever the namespace (`new \Foo\Redis(...)` too: more hidden, never less).
 *
 * A password held in a variable or constant is followed within the file (simple data flow, in
 * any order): a symbol read where phpredis takes credentials (`$redis->auth($pw)`, `auth(PW)`,
 * `auth(self::PW)`, `auth($this->pw)`, `['auth' => $opts]`, `new RedisCluster(..., $pw)`,
 * `ini_set('redis.arrays.auth', $v)`, also inside a credential array or a `.`/`??`/`?:`) is a
 * secret, and so is every string literal given to it: `$pw = '...'`, `$pw .= '...'`, `define('PW',
 * '...')`, `const PW = '...'`, a class constant, a property's default or assignment, a parameter's
 * default, `static $pw = '...'`, `'pw' => '...'` / `$a['pw'] = '...'` for `$a['pw']`; a symbol given
 * a secret symbol passes it on (`$k = PW; auth($k)`), either way (`$pw = $_ENV['REDIS_PASSWORD'] ??
 * $default`: `$default`'s literals too). Symbols are matched by name only (RedisSecretFinder):
 * `$pw` in one function is `$pw` in every other, `self::PW` is any class's `PW`, `$a->pw` any
 * object's: more hidden, never less.
 *
 * And, without any auth() in sight, a name that looks like a secret (secretLookingName: contains
 * `pass`, `pwd`, `secret`, `auth`, `token` or `credential`, in any case, but not in `author`,
 * `passage`, `passenger`, `passive`, `compass`) is treated as read where phpredis takes credentials:
 * `$redis_pass = '...'`, `'password' => '...'`, `define('REDIS_AUTH', '...')`, `getenv('REDIS_PASSWORD')
 * ?: '...'`. The reason: the password of a Redis (or of anything else) often sits in a config file
 * the codemod's change is near, passed to phpredis from another file, which this rule cannot follow;
 * its name is what says what it is. A substring test, so that `$redispass` and `DBPASSWD` match;
 * `key` is not a fragment (cache and session keys are no secrets and a reviewer needs to see them).
 *
 * Not seen: a password passed through a function's return value or a call (`auth(trim($pw))` hides
 * nothing of `$pw`), across files (but by its name), held in an array element without a name
 * (`$cfg[0]`), destructured (`[$u, $p] = [...]`), or read at run time: the diff shows what the code
 * names there, not the value.
 */
import { redactedSecret } from '@session-migrate/php-ini';
import type { TextEdit } from '@session-migrate/common';
import { argument, isNode, walk } from './php-ast.ts';
import type { PhpNode } from './source.ts';

/** A byte range [start, end) of a file's text (a binary string) that holds a Redis password. */
export interface SecretRange {
  start: number;
  end: number;
}

/** Methods whose argument is a credential: lower-case name → position and parameter name (redis.stub.php). */
const AUTH_METHOD_ARGUMENTS: ReadonlyMap<string, { index: number; name: string }> = new Map([['auth', { index: 0, name: 'credentials' }]]);

/** Classes whose constructor takes a credential as a positional argument: lower-case name → position and parameter name. */
const AUTH_CONSTRUCTOR_ARGUMENTS: ReadonlyMap<string, { index: number; name: string }> = new Map([
  ['rediscluster', { index: 5, name: 'auth' }],
  ['redissentinel', { index: 6, name: 'auth' }],
]);

/** The array key of a credential in phpredis options and stream contexts (compared in lower case). */
const AUTH_KEY = 'auth';

/** php.ini settings of phpredis whose value holds passwords (redis.c PHP_INI_ENTRY). */
const AUTH_INI_SETTINGS: ReadonlySet<string> = new Set(['redis.clusters.auth', 'redis.arrays.auth']);

/** Functions that set a php.ini setting at run time (name, value). */
const INI_SETTERS: ReadonlySet<string> = new Set(['ini_set', 'ini_alter']);

/**
 * Fragments of a name (compared in lower case) that make the strings it is given secrets (the
 * second rule of the module comment): `pass` (also passwd, password, passphrase), `pwd`, `secret`,
 * `auth`, `token`, `credential`.
 */
const SECRET_NAME_FRAGMENTS: readonly string[] = ['pass', 'pwd', 'secret', 'auth', 'token', 'credential'];

/**
 * Words that hold a fragment of SECRET_NAME_FRAGMENTS but name no secret, taken out of a name
 * before it is matched: `author` (but not `authoriz`/`authoris`: an Authorization header is one),
 * `passage`, `passenger`, `passive`, `compass`.
 */
const NOT_SECRET_WORDS = /author(?!i[sz])|passage|passenger|passive|compass/g;

/**
 * Whether a variable, property, constant or array key named `name` (without `$`; any case) looks
 * like it holds a secret: it contains one of SECRET_NAME_FRAGMENTS once the words of
 * NOT_SECRET_WORDS are taken out (`$redis_pass`, `'Password'`, `REDIS_AUTH`, `$apiToken`; not
 * `$author`, `$host`). A substring test, not a word test, so that `$redispass` and `DBPASSWD`
 * match too: more hidden, never less.
 */
export function secretLookingName(name: string): boolean {
  const words = name.toLowerCase().replace(NOT_SECRET_WORDS, ' ');
  return SECRET_NAME_FRAGMENTS.some((f) => words.includes(f));
}

/**
 * What a file says about Redis passwords, collected node by node during the one walk of its AST
 * (analyze.ts analyzeFile hands it every node; redisSecretRanges walks for callers without one),
 * then turned into byte ranges by ranges(). Symbols are named `var:x` (any `$x` of the file,
 * whatever its function: more hidden, never less), `prop:x` (`->x`, `::$x`, declarations),
 * `const:X` (`define`, `const`, class constants, `X`, `\NS\X`, `Foo::X`, `self::X`) and `key:x`
 * (an array key, `$a['x']`, `$_ENV['x']`, `getenv('x')`).
 */
export class RedisSecretFinder {
  /** Expressions phpredis takes as credentials (credentialParts of each argument or entry). */
  private readonly credentials: PhpNode[] = [];
  /** Expressions assigned to each symbol, in source order. */
  private readonly assigned = new Map<string, PhpNode[]>();

  /** Reads one node of the walk (any order; each node once). */
  visit(node: PhpNode): void {
    switch (node.kind) {
      case 'call':
        this.credentials.push(...callSecrets(node));
        this.define(node);
        break;
      case 'new':
        this.credentials.push(...constructorSecrets(node));
        break;
      case 'entry':
        if (isNode(node.key) && isNode(node.value)) {
          if (lowerLiteral(node.key) === AUTH_KEY) this.credentials.push(...credentialParts(node.value));
          if (node.key.kind === 'string' && typeof node.key.value === 'string') this.assign(`key:${node.key.value}`, node.value);
        }
        break;
      case 'assign':
        if (isNode(node.left) && isNode(node.right)) this.assign(symbolOf(node.left), node.right);
        break;
      case 'constant':
        this.assign(`const:${identifierOf(node.name)}`, node.value);
        break;
      case 'property':
        this.assign(`prop:${identifierOf(node.name)}`, node.value);
        break;
      case 'parameter':
        this.assign(`var:${identifierOf(node.name)}`, node.value);
        // A promoted constructor parameter (flags: its visibility) is a property as well.
        if (typeof node.flags === 'number' && node.flags !== 0) this.assign(`prop:${identifierOf(node.name)}`, node.value);
        break;
      case 'staticvariable':
        if (isNode(node.variable)) this.assign(symbolOf(node.variable), node.defaultValue);
        break;
      case 'namedargument':
        // `f(password: '...')`: the callee's parameter (var:) of that name.
        this.assign(`var:${String(node.name)}`, node.value);
        break;
    }
  }

  /**
   * The byte ranges of `text` (the binary string the walked AST was parsed from) that hold a Redis
   * password, by the rules of the module comment: the inside of each string literal found (its
   * quotes kept), or the whole of a heredoc or nowdoc. Sorted by start, not overlapping.
   */
  ranges(text: string): SecretRange[] {
    const found = this.credentials.flatMap(leaves).filter(isLiteral);
    for (const key of this.secretSymbols())
      for (const v of this.assigned.get(key) ?? []) found.push(...credentialParts(v).flatMap(leaves).filter(isLiteral));
    const ranges = found.flatMap((n) => literalRange(n, text) ?? []).sort((a, b) => a.start - b.start || b.end - a.end);
    const out: SecretRange[] = [];
    for (const r of ranges) {
      const last = out[out.length - 1];
      if (last !== undefined && r.start < last.end) last.end = Math.max(last.end, r.end);
      else out.push({ ...r });
    }
    return out;
  }

  /**
   * The symbols that hold a password: those read where phpredis takes credentials and those with a
   * secretLookingName; then, until nothing changes, the symbols a secret one is given (`$pw = $k`:
   * `$k`, through the credential's array) and those given a secret (`$pw = $_ENV['REDIS_PASSWORD'] ??
   * $default`: `$pw`, then `$default`). Each edge followed once (a work list).
   */
  private secretSymbols(): Set<string> {
    const gives = new Map<string, Set<string>>();
    const readers = new Map<string, Set<string>>();
    const add = (m: Map<string, Set<string>>, k: string, v: string) => (m.get(k) ?? m.set(k, new Set()).get(k)!).add(v);
    for (const [key, values] of this.assigned) {
      for (const v of values) {
        for (const r of credentialParts(v).flatMap(leaves).flatMap(readSymbol)) add(gives, key, r);
        for (const r of leaves(v).flatMap(readSymbol)) add(readers, r, key);
      }
    }
    const secret = new Set(this.credentials.flatMap(leaves).flatMap(readSymbol));
    for (const key of [...this.assigned.keys(), ...readers.keys()]) if (secretLookingName(key.slice(key.indexOf(':') + 1))) secret.add(key);
    const queue = [...secret];
    for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
      for (const next of [...(gives.get(key) ?? []), ...(readers.get(key) ?? [])]) {
        if (!secret.has(next)) {
          secret.add(next);
          queue.push(next);
        }
      }
    }
    return secret;
  }

  /** Records an expression given to a symbol (nothing when either is missing). */
  private assign(key: string | null, value: unknown): void {
    if (key === null || key.endsWith(':') || !isNode(value)) return;
    (this.assigned.get(key) ?? this.assigned.set(key, []).get(key)!).push(value);
  }

  /** `define('NAME', value)`: a constant (its name's last segment, as `\NS\NAME` reads it). */
  private define(call: PhpNode): void {
    const what = call.what as PhpNode;
    if (what.kind !== 'name' || lastSegment(String(what.name)) !== 'define') return;
    const args = (call.arguments as PhpNode[] | undefined) ?? [];
    const name = argument(args, 0, 'constant_name');
    if (name?.kind === 'string' && typeof name.value === 'string')
      this.assign(`const:${name.value.slice(name.value.lastIndexOf('\\') + 1)}`, argument(args, 1, 'value'));
  }
}

/**
 * The byte ranges of `text` (a binary string; `ast` its php-parser AST with positions) that hold a
 * Redis password: RedisSecretFinder over one walk of `ast` (for a caller that does not walk it
 * already: analyzeFile feeds the finder its own walk).
 */
export function redisSecretRanges(ast: PhpNode, text: string): SecretRange[] {
  const finder = new RedisSecretFinder();
  walk(ast, null, (node) => finder.visit(node));
  return finder.ranges(text);
}

/** `$x->auth(...)` and `ini_set('redis.clusters.auth', ...)`: the expressions of the credential. */
function callSecrets(call: PhpNode): PhpNode[] {
  const what = call.what as PhpNode;
  const args = (call.arguments as PhpNode[] | undefined) ?? [];
  if ((what.kind === 'propertylookup' || what.kind === 'nullsafepropertylookup') && isNode(what.offset)) {
    const name = what.offset.kind === 'identifier' ? String(what.offset.name).toLowerCase() : null;
    const at = name !== null ? AUTH_METHOD_ARGUMENTS.get(name) : undefined;
    const arg = at !== undefined ? argument(args, at.index, at.name) : undefined;
    return arg !== undefined ? credentialParts(arg) : [];
  }
  if (what.kind === 'name' && INI_SETTERS.has(lastSegment(String(what.name)))) {
    const setting = argument(args, 0, 'option');
    const value = argument(args, 1, 'value');
    if (setting !== undefined && value !== undefined && AUTH_INI_SETTINGS.has(lowerLiteral(setting) ?? '')) return [value];
  }
  return [];
}

/** `new RedisCluster(..., $auth)`, `new RedisSentinel(..., $auth)` (before phpredis 6): the expressions of the credential. */
function constructorSecrets(node: PhpNode): PhpNode[] {
  const what = node.what as PhpNode;
  if (what.kind !== 'name') return [];
  const at = AUTH_CONSTRUCTOR_ARGUMENTS.get(lastSegment(String(what.name)));
  const arg = at !== undefined ? argument((node.arguments as PhpNode[] | undefined) ?? [], at.index, at.name) : undefined;
  return arg !== undefined ? credentialParts(arg) : [];
}

/** A credential (redis_extract_auth_info): a string's expression, or every element of an array but the user name. */
function credentialParts(value: PhpNode): PhpNode[] {
  if (value.kind !== 'array') return [value];
  const entries = ((value.items as unknown[] | undefined) ?? []).filter(isNode);
  const keyOf = (e: PhpNode) => (e.kind === 'entry' && isNode(e.key) ? lowerLiteral(e.key) : null);
  const valueOf = (e: PhpNode) => (e.kind === 'entry' ? (isNode(e.value) ? e.value : undefined) : e);
  let user = entries.findIndex((e) => keyOf(e) === 'user');
  if (user < 0 && entries.length === 2 && entries[0]!.kind === 'entry' && entries[0]!.key === null) user = 0;
  return entries.flatMap((e, i) => {
    const v = valueOf(e);
    return i === user || v === undefined ? [] : [v];
  });
}

/**
 * What an expression's value is made of: `.`, `??`, `?:` (its test too when it is `a ?: b`) and
 * casts looked through; an interpolated string is itself and the expressions it interpolates.
 */
function leaves(node: PhpNode): PhpNode[] {
  switch (node.kind) {
    case 'bin':
      return [node.left, node.right].filter(isNode).flatMap(leaves);
    case 'retif':
      return [isNode(node.trueExpr) ? node.trueExpr : node.test, node.falseExpr].filter(isNode).flatMap(leaves);
    case 'cast':
      return isNode(node.expr) ? leaves(node.expr) : [];
    case 'encapsed': {
      const parts = ((node.value as unknown[] | undefined) ?? []).filter(isNode);
      const inner = parts.flatMap((p) => (isNode(p.expression) && p.expression.kind !== 'string' ? leaves(p.expression) : []));
      return [node, ...inner];
    }
    default:
      return [node];
  }
}

/** A string literal: single- or double-quoted (interpolated too), heredoc, nowdoc. */
function isLiteral(node: PhpNode): boolean {
  return node.kind === 'string' || node.kind === 'nowdoc' || node.kind === 'encapsed';
}

/** The symbol an expression writes to (an assignment's left side), else null. */
function symbolOf(node: PhpNode): string | null {
  switch (node.kind) {
    case 'variable':
      return typeof node.name === 'string' ? `var:${node.name}` : null;
    case 'propertylookup':
    case 'nullsafepropertylookup':
      return isNode(node.offset) && node.offset.kind === 'identifier' ? `prop:${String(node.offset.name)}` : null;
    case 'staticlookup':
      if (!isNode(node.offset)) return null;
      if (node.offset.kind === 'variable' && typeof node.offset.name === 'string') return `prop:${node.offset.name}`;
      return node.offset.kind === 'identifier' ? `const:${String(node.offset.name)}` : null;
    case 'offsetlookup':
      return isNode(node.offset) && node.offset.kind === 'string' && typeof node.offset.value === 'string'
        ? `key:${node.offset.value}`
        : null;
    default:
      return null;
  }
}

/** The symbols a leaf (leaves) reads: symbolOf, a constant `X` / `\NS\X`, `getenv('X')` (as `$_ENV['X']`). */
function readSymbol(node: PhpNode): string[] {
  if (node.kind === 'name') return [`const:${String(node.name).slice(String(node.name).lastIndexOf('\\') + 1)}`];
  if (node.kind === 'call' && isNode(node.what) && node.what.kind === 'name' && lastSegment(String(node.what.name)) === 'getenv') {
    const name = argument((node.arguments as PhpNode[] | undefined) ?? [], 0, 'name');
    return name?.kind === 'string' && typeof name.value === 'string' ? [`key:${name.value}`] : [];
  }
  const s = symbolOf(node);
  return s !== null ? [s] : [];
}

/** The name of a declaration (an identifier node, or a string in older ASTs); '' when absent. */
function identifierOf(name: unknown): string {
  if (isNode(name)) return typeof name.name === 'string' ? name.name : '';
  return typeof name === 'string' ? name : '';
}

/** The bytes a literal's value is written in: inside its quotes (`'..'`, `".."`, `b'..'`), or the whole heredoc/nowdoc. */
function literalRange(node: PhpNode, text: string): SecretRange | null {
  const start = node.loc?.start.offset;
  const end = node.loc?.end.offset;
  if (start === undefined || end === undefined || start < 0 || end > text.length || end <= start) return null;
  const src = text.slice(start, end);
  const open = /^[bB]?(['"])/.exec(src);
  if (open !== null && src.length >= open[0].length + 1 && src.endsWith(open[1]!)) {
    const inner = { start: start + open[0].length, end: end - 1 };
    return inner.end > inner.start ? inner : null;
  }
  return { start, end };
}

/** The lower-case value of a string literal, else null. */
function lowerLiteral(node: PhpNode): string | null {
  return node.kind === 'string' && typeof node.value === 'string' ? node.value.toLowerCase() : null;
}

/** `\Foo\Bar` → `bar`: a class or function name's last segment, lower case. */
function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('\\') + 1).toLowerCase();
}

/**
 * `text` with each range replaced by `<redacted len=N>` (redactedSecret; N the bytes hidden), line
 * by line: a range over several lines (a heredoc) becomes one mark per line, so the text keeps its
 * lines and a diff of it its line numbers. `ranges` sorted and not overlapping (redisSecretRanges).
 */
export function redactRanges(text: string, ranges: readonly SecretRange[]): string {
  let out = '';
  let at = 0;
  for (const r of ranges) {
    out += text.slice(at, r.start);
    out += text
      .slice(r.start, r.end)
      .split(/(\r?\n)/)
      .map((part, i) => (i % 2 === 1 || part === '' ? part : redactedSecret(part)))
      .join('');
    at = r.end;
  }
  return out + text.slice(at);
}

/**
 * The texts before and after `edits` (common's TextEdit, as applyEdits applies them to `before`),
 * each with the Redis passwords `secrets` (ranges of `before`, redisSecretRanges) replaced by
 * `<redacted len=N>` (redactRanges), for a diff people read. A password an edit touches (none of
 * the codemod's edits splices inside a literal, but one may remove a statement holding one) is
 * hidden in the text after by its value, line by line.
 */
export function redactedTexts(
  before: string,
  after: string,
  secrets: readonly SecretRange[],
  edits: readonly TextEdit[],
): { before: string; after: string } {
  const { mapped, lost } = rangesAfterEdits(secrets, edits);
  let redactedAfter = redactRanges(after, mapped);
  const lines = lost.flatMap((r) => before.slice(r.start, r.end).split(/\r?\n/)).filter((l) => l !== '');
  for (const line of lines.sort((a, b) => b.length - a.length)) redactedAfter = redactedAfter.split(line).join(redactedSecret(line));
  return { before: redactRanges(before, secrets), after: redactedAfter };
}

/**
 * The ranges of the text before `edits` (common's TextEdit: replace [start, end) with `text`,
 * applyEdits) where they are in the text after them. A range that an edit touches is not mapped:
 * it is returned in `lost`.
 */
function rangesAfterEdits(ranges: readonly SecretRange[], edits: readonly TextEdit[]): { mapped: SecretRange[]; lost: SecretRange[] } {
  const mapped: SecretRange[] = [];
  const lost: SecretRange[] = [];
  for (const r of ranges) {
    let shift = 0;
    let touched = false;
    for (const e of edits) {
      if (e.end <= r.start) shift += e.text.length - (e.end - e.start);
      else if (e.start < r.end) touched = true;
    }
    (touched ? lost : mapped).push(touched ? r : { start: r.start + shift, end: r.end + shift });
  }
  return { mapped, lost };
}

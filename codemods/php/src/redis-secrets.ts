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
 * Not seen: a password held in a variable or constant (`$redis->auth($pw)`, `auth(PASSWORD)`), or
 * read at run time: the diff shows what the code names there, not the value.
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
 * The byte ranges of `text` (a binary string; `ast` its php-parser AST with positions) that hold a
 * Redis password, by the rule of the module comment: the inside of each string literal found (its
 * quotes kept), or the whole of a heredoc or nowdoc. Sorted by start, not overlapping.
 */
export function redisSecretRanges(ast: PhpNode, text: string): SecretRange[] {
  const found: PhpNode[] = [];
  walk(ast, null, (node) => {
    if (node.kind === 'call') found.push(...callSecrets(node));
    else if (node.kind === 'new') found.push(...constructorSecrets(node));
    else if (node.kind === 'entry' && isNode(node.key) && lowerLiteral(node.key) === AUTH_KEY && isNode(node.value)) {
      found.push(...credentialLiterals(node.value));
    }
  });
  const ranges = found.flatMap((n) => literalRange(n, text) ?? []).sort((a, b) => a.start - b.start || b.end - a.end);
  const out: SecretRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start < last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** `$x->auth(...)` and `ini_set('redis.clusters.auth', ...)`: the literals of the credential. */
function callSecrets(call: PhpNode): PhpNode[] {
  const what = call.what as PhpNode;
  const args = (call.arguments as PhpNode[] | undefined) ?? [];
  if ((what.kind === 'propertylookup' || what.kind === 'nullsafepropertylookup') && isNode(what.offset)) {
    const name = what.offset.kind === 'identifier' ? String(what.offset.name).toLowerCase() : null;
    const at = name !== null ? AUTH_METHOD_ARGUMENTS.get(name) : undefined;
    const arg = at !== undefined ? argument(args, at.index, at.name) : undefined;
    return arg !== undefined ? credentialLiterals(arg) : [];
  }
  if (what.kind === 'name' && INI_SETTERS.has(lastSegment(String(what.name)))) {
    const setting = argument(args, 0, 'option');
    const value = argument(args, 1, 'value');
    if (setting !== undefined && value !== undefined && AUTH_INI_SETTINGS.has(lowerLiteral(setting) ?? '')) return stringLiterals(value);
  }
  return [];
}

/** `new RedisCluster(..., $auth)`, `new RedisSentinel(..., $auth)` (before phpredis 6): the literals of the credential. */
function constructorSecrets(node: PhpNode): PhpNode[] {
  const what = node.what as PhpNode;
  if (what.kind !== 'name') return [];
  const at = AUTH_CONSTRUCTOR_ARGUMENTS.get(lastSegment(String(what.name)));
  const arg = at !== undefined ? argument((node.arguments as PhpNode[] | undefined) ?? [], at.index, at.name) : undefined;
  return arg !== undefined ? credentialLiterals(arg) : [];
}

/** A credential (redis_extract_auth_info): every literal of a string or array but the user name. */
function credentialLiterals(value: PhpNode): PhpNode[] {
  if (value.kind !== 'array') return stringLiterals(value);
  const entries = ((value.items as unknown[] | undefined) ?? []).filter(isNode);
  const keyOf = (e: PhpNode) => (e.kind === 'entry' && isNode(e.key) ? lowerLiteral(e.key) : null);
  const valueOf = (e: PhpNode) => (e.kind === 'entry' ? (isNode(e.value) ? e.value : undefined) : e);
  let user = entries.findIndex((e) => keyOf(e) === 'user');
  if (user < 0 && entries.length === 2 && entries[0]!.kind === 'entry' && entries[0]!.key === null) user = 0;
  return entries.flatMap((e, i) => {
    const v = valueOf(e);
    return i === user || v === undefined ? [] : stringLiterals(v);
  });
}

/** The string literals an expression is made of (`.`, `??`, `?:` and casts looked through). */
function stringLiterals(node: PhpNode): PhpNode[] {
  switch (node.kind) {
    case 'string':
    case 'nowdoc':
    case 'encapsed':
      return [node];
    case 'bin':
      return [node.left, node.right].filter(isNode).flatMap(stringLiterals);
    case 'retif':
      return [node.trueExpr, node.falseExpr].filter(isNode).flatMap(stringLiterals);
    case 'cast':
      return isNode(node.expr) ? stringLiterals(node.expr) : [];
    default:
      return [];
  }
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

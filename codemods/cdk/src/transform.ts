/**
 * The CDK codemod's pure core: finds ElastiCache L1 constructs in one TypeScript source text and
 * computes minimal text edits that turn on encryption in transit, encryption at rest and AUTH.
 *
 * ts-morph (the TypeScript compiler API) is used for analysis only; edits are spliced into the
 * original text at AST positions, so comments, quotes, indentation, trailing commas and line endings
 * (LF or CRLF) elsewhere in the file stay exactly as they were.
 *
 * Rules, from the CloudFormation resource reference (AWS::ElastiCache::ReplicationGroup and
 * AWS::ElastiCache::CacheCluster) and the ElastiCache user guide ("Authenticating with the Valkey and
 * Redis OSS AUTH command", "ElastiCache in-transit encryption"):
 * - a replication group (`CfnReplicationGroup`, engine redis or valkey, the default redis) gets
 *   `transitEncryptionEnabled: true`, `atRestEncryptionEnabled: true` and an `authToken` read from
 *   Secrets Manager through a CloudFormation dynamic reference (the token never lands in the
 *   synthesized template). AUTH requires transit encryption, so the token is added only when transit
 *   encryption is (or becomes) a literal `true`.
 * - `AtRestEncryptionEnabled` cannot be changed on an existing replication group (CloudFormation
 *   replaces it), so every change is reported with a note to review `cdk diff`.
 * - `CfnCacheCluster` has no AtRestEncryptionEnabled and no AuthToken, and its TransitEncryptionEnabled
 *   is for Memcached 1.6.12+ only: a Redis/Valkey cache cluster is reported (migrate it to a
 *   replication group), never edited.
 * - Whatever is not a literal (a props variable, a spread, a call, `cond ? true : false`) is reported,
 *   not guessed. An `authToken` given as a string literal is reported as a secret in source code.
 */
import { Node, Project, SyntaxKind, ts, type ObjectLiteralExpression, type SourceFile } from 'ts-morph';
import { applyEdits, type Finding as CommonFinding, type Severity, type TextEdit } from '@session-migrate/common';
import { DEFAULT_AUTH_SECRET_NAME, isValidSecretName } from './names.ts';

export { DEFAULT_AUTH_SECRET_NAME, isValidSecretName };

/**
 * How serious a finding is, on the one scale of @session-migrate/common (common/finding.ts); this
 * codemod uses high, medium, low and info. High and medium mean a construct is still not compliant
 * (isBlocking, exit 1).
 */
export type { Severity };

/** Finding codes (stable, for --json consumers). */
export type FindingCode =
  | 'syntax-error'
  | 'props-not-literal'
  | 'spread-props'
  | 'computed-value'
  | 'auth-token-in-code'
  | 'auth-token-plaintext'
  | 'engine-not-redis'
  | 'cache-cluster-no-encryption'
  | 'transit-mode-preferred'
  | 'import-conflict'
  | 'replaced-on-deploy'
  | 'deploy-review'
  | 'rbac-user-groups'
  | 'changed-after-construction';

/** The L1 constructs this codemod knows. */
export type ConstructKind = 'CfnReplicationGroup' | 'CfnCacheCluster';

/**
 * Something the codemod found and did not (or could not) fix, or must tell about a fix:
 * @session-migrate/common's Finding with the position in the file (FileReport.path names the file)
 * and the construct and property concerned.
 */
export interface Finding extends CommonFinding {
  id: FindingCode;
  /** 1-based line of the construct (or property) in the input text. */
  line: number;
  /** 1-based column (UTF-16 code units). */
  column: number;
  construct?: ConstructKind;
  /** The construct property concerned, e.g. `transitEncryptionEnabled`. */
  property?: string;
}

/** One change the codemod made. */
export interface Change {
  /** 1-based line of the construct in the input text. */
  line: number;
  construct: ConstructKind;
  property: 'transitEncryptionEnabled' | 'atRestEncryptionEnabled' | 'authToken';
  /** `replaced`: an `authToken: undefined` (or `null`), which sets no token, now reads the secret. */
  action: 'added' | 'set-true' | 'replaced';
}

/** Result of transforming one source text. */
export interface TransformResult {
  /** The new text; identical to the input when nothing changed. */
  output: string;
  changed: boolean;
  changes: Change[];
  findings: Finding[];
  /** Number of ElastiCache L1 constructs found. */
  constructs: number;
  /**
   * The AUTH tokens written as strings in this file (`auth-token-in-code`), as they appear in its
   * text (the literal between its quotes, and its value): what a printed diff must not show.
   */
  secrets: string[];
}

/** Options of transformSource. */
export interface TransformOptions {
  /**
   * Name or ARN of the Secrets Manager secret whose SecretString is the AUTH token, for
   * `SecretValue.secretsManager(...)`. Default DEFAULT_AUTH_SECRET_NAME.
   */
  authSecretName?: string;
}

/** Cheap test whether a text can contain an ElastiCache import at all (files without it are not parsed). */
export function mayContainElastiCache(text: string): boolean {
  return /aws[-_]elasticache/.test(text);
}

const ELASTICACHE_MODULES = new Set(['aws-cdk-lib/aws-elasticache', '@aws-cdk/aws-elasticache', 'monocdk/aws-elasticache']);
/** Root modules of each CDK flavour, and where SecretValue lives for each. */
const ROOT_MODULES = new Set(['aws-cdk-lib', 'monocdk', '@aws-cdk/core']);
const CONSTRUCTS: readonly ConstructKind[] = ['CfnReplicationGroup', 'CfnCacheCluster'];

type Resolved =
  | { kind: 'construct'; construct: ConstructKind; module: string }
  | { kind: 'elasticache-ns'; module: string }
  | { kind: 'root-ns'; module: string }
  | { kind: 'secret-value' };

type Edit = TextEdit;

/**
 * Transforms one TypeScript source text (pure: no file is read or written).
 *
 * @param text the file's contents, as decoded UTF-8 (a BOM, if any, is kept).
 * @param fileName used only to choose the parser's script kind (`.ts`, `.mts`, `.cts`).
 * @throws Error when authSecretName is not a valid secret name or ARN, or (a bug) when the edited
 *   text would not parse; the edited text is then not returned.
 */
export function transformSource(text: string, fileName: string, options: TransformOptions = {}): TransformResult {
  const secretName = options.authSecretName ?? DEFAULT_AUTH_SECRET_NAME;
  if (!isValidSecretName(secretName)) throw new Error('authSecretName: must be a Secrets Manager secret name or ARN');
  // A BOM is kept but not parsed (ts-morph drops it, which would shift every position by one).
  if (text.startsWith('\ufeff')) {
    const inner = transformSource(text.slice(1), fileName, options);
    return { ...inner, output: '\ufeff' + inner.output };
  }
  const result: TransformResult = { output: text, changed: false, changes: [], findings: [], constructs: 0, secrets: [] };
  if (!mayContainElastiCache(text)) return result;

  const sf = parse(text, fileName);
  const syntax = syntaxErrors(sf);
  if (syntax !== undefined) {
    result.findings.push({
      id: 'syntax-error',
      severity: 'medium',
      line: syntax.line,
      column: syntax.column,
      message: `not changed: the TypeScript parser reports a syntax error here (${syntax.message})`,
    });
    return result;
  }
  const ctx = new FileContext(sf, text, secretName);
  for (const expr of sf.getDescendantsOfKind(SyntaxKind.NewExpression)) {
    const resolved = ctx.resolve(expr.getExpression(), 0);
    if (resolved?.kind !== 'construct') continue;
    result.constructs++;
    ctx.visitConstruct(expr, resolved.construct, resolved.module);
  }
  if (result.constructs > 0) ctx.visitLaterChanges();
  result.findings.push(...ctx.findings);
  result.changes.push(...ctx.changes);
  result.secrets.push(...new Set(ctx.secrets));
  if (ctx.edits.length > 0) {
    const output = applyEdits(text, [...ctx.edits, ...ctx.importEdits()]);
    const check = syntaxErrors(parse(output, fileName));
    if (check !== undefined) throw new Error(`internal error: the edited file would not parse (${check.message}); nothing written`);
    result.output = output;
    result.changed = output !== text;
  }
  result.findings.sort((a, b) => a.line - b.line || a.column - b.column);
  return result;
}

function parse(text: string, fileName: string): SourceFile {
  const project = new Project({
    useInMemoryFileSystem: true,
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    compilerOptions: { noLib: true, noResolve: true, types: [], target: ts.ScriptTarget.ES2022 },
  });
  const ext = /\.(m|c)ts$/i.exec(fileName)?.[0].toLowerCase() ?? '.ts';
  return project.createSourceFile(`/input${ext}`, text, { overwrite: true });
}

function syntaxErrors(sf: SourceFile): { line: number; column: number; message: string } | undefined {
  const diagnostics = sf.getProject().getProgram().compilerObject.getSyntacticDiagnostics(sf.compilerNode);
  const first = diagnostics[0];
  if (first === undefined) return undefined;
  const pos = sf.getLineAndColumnAtPos(first.start ?? 0);
  const message = ts.flattenDiagnosticMessageText(first.messageText, ' ');
  return { line: pos.line, column: pos.column, message: message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) };
}

/** Unwraps `(x)`, `x as T`, `x satisfies T`, `<T>x` and `x!`. */
function unwrap(node: Node): Node {
  let n = node;
  for (;;) {
    if (
      Node.isParenthesizedExpression(n) ||
      Node.isAsExpression(n) ||
      Node.isSatisfiesExpression(n) ||
      Node.isTypeAssertion(n) ||
      Node.isNonNullExpression(n)
    ) {
      n = n.getExpression();
    } else {
      return n;
    }
  }
}

/** The module name of `require('x')`, or undefined. */
function requiredModule(node: Node | undefined): string | undefined {
  if (node === undefined) return undefined;
  const n = unwrap(node);
  if (!Node.isCallExpression(n)) return undefined;
  const callee = n.getExpression();
  const arg = n.getArguments()[0];
  if (!Node.isIdentifier(callee) || callee.getText() !== 'require' || n.getArguments().length !== 1) return undefined;
  return arg !== undefined && Node.isStringLiteral(arg) ? arg.getLiteralValue() : undefined;
}

/** What a name exported by `module` is, or undefined when it is nothing we track. */
function memberOf(module: string, name: string): Resolved | undefined {
  if (ELASTICACHE_MODULES.has(module) && (CONSTRUCTS as readonly string[]).includes(name)) {
    return { kind: 'construct', construct: name as ConstructKind, module };
  }
  if (ROOT_MODULES.has(module) && name === 'aws_elasticache' && module !== '@aws-cdk/core') {
    return { kind: 'elasticache-ns', module: `${module}/aws-elasticache` };
  }
  if (ROOT_MODULES.has(module) && name === 'SecretValue') return { kind: 'secret-value' };
  return undefined;
}

/** What a whole module is when imported as a namespace. */
function namespaceOf(module: string): Resolved | undefined {
  if (ELASTICACHE_MODULES.has(module)) return { kind: 'elasticache-ns', module };
  if (ROOT_MODULES.has(module)) return { kind: 'root-ns', module };
  return undefined;
}

/** Property name of an object literal member or binding element, without quotes. */
function propertyName(node: Node | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (Node.isIdentifier(node) || Node.isPrivateIdentifier(node)) return node.getText();
  if (Node.isStringLiteral(node) || Node.isNoSubstitutionTemplateLiteral(node)) return node.getLiteralValue();
  // `['atRestEncryptionEnabled']: false` names the property as plainly as `atRestEncryptionEnabled: false`
  if (Node.isComputedPropertyName(node)) {
    const e = unwrap(node.getExpression());
    if (Node.isStringLiteral(e) || Node.isNoSubstitutionTemplateLiteral(e)) return e.getLiteralValue();
  }
  return undefined;
}

type Prop = 'transitEncryptionEnabled' | 'atRestEncryptionEnabled' | 'authToken';

/** A replication group's props as read by readMembers: known values, members hiding theirs, the last spread. */
type Members = { values: Map<string, Node>; unknown: Map<string, Node>; spread: Node | undefined };

/** What a replication group's props say about one property the codemod sets (FileContext.propState). */
type PropState =
  | { kind: 'true' }
  | { kind: 'false'; value: Node }
  | { kind: 'missing' }
  | { kind: 'empty'; value: Node }
  | { kind: 'computed'; node: Node }
  | { kind: 'literal-secret'; node: Node }
  | { kind: 'plaintext'; node: Node }
  | { kind: 'set'; node: Node };

/** Per-file state: findings, edits, and how to name SecretValue. */
class FileContext {
  readonly findings: Finding[] = [];
  /** The string AUTH tokens met (TransformResult.secrets). */
  readonly secrets: string[] = [];
  readonly changes: Change[] = [];
  readonly edits: Edit[] = [];
  private readonly newline: string;
  private readonly quote: string;
  /** Import edits are computed once, when the first auth token is added. */
  private secretValueRef: { expr: string; edits: Edit[] } | null | undefined;
  /** CDK flavour of the first construct found: decides the root module for SecretValue. */
  private rootModule = 'aws-cdk-lib';

  constructor(
    private readonly sf: SourceFile,
    private readonly text: string,
    private readonly secretName: string,
  ) {
    this.newline = text.includes('\r\n') ? '\r\n' : '\n';
    const firstImport = sf.getImportDeclarations()[0]?.getModuleSpecifier().getText();
    this.quote = firstImport?.startsWith('"') === true ? '"' : "'";
  }

  /** Resolves an expression to a tracked import (through aliases, namespaces and const re-bindings). */
  resolve(node: Node, depth: number): Resolved | undefined {
    if (depth > 8) return undefined;
    const n = unwrap(node);
    if (Node.isPropertyAccessExpression(n)) {
      const base = this.resolve(n.getExpression(), depth + 1);
      if (base === undefined) return undefined;
      if (base.kind === 'elasticache-ns' || base.kind === 'root-ns') return memberOf(base.module, n.getName());
      return undefined;
    }
    if (Node.isElementAccessExpression(n)) {
      const arg = n.getArgumentExpression();
      const base = this.resolve(n.getExpression(), depth + 1);
      const name = arg !== undefined && Node.isStringLiteral(arg) ? arg.getLiteralValue() : undefined;
      if (base === undefined || name === undefined) return undefined;
      if (base.kind === 'elasticache-ns' || base.kind === 'root-ns') return memberOf(base.module, name);
      return undefined;
    }
    if (!Node.isIdentifier(n)) return undefined;
    const decl = n.getSymbol()?.getDeclarations()[0];
    if (decl === undefined) return undefined;
    return this.resolveDeclaration(decl, depth);
  }

  private resolveDeclaration(decl: Node, depth: number): Resolved | undefined {
    // A type-only import names no value: it can be neither constructed nor called.
    const importDecl = decl.getFirstAncestorByKind(SyntaxKind.ImportDeclaration);
    if (importDecl?.isTypeOnly() === true || (Node.isImportSpecifier(decl) && decl.isTypeOnly())) return undefined;
    if (Node.isNamespaceImport(decl)) {
      const mod = decl.getFirstAncestorByKind(SyntaxKind.ImportDeclaration)?.getModuleSpecifierValue();
      return mod === undefined ? undefined : namespaceOf(mod);
    }
    if (Node.isImportClause(decl)) {
      // `import ec from 'aws-cdk-lib/aws-elasticache'` (esModuleInterop): the default is the namespace.
      const mod = decl.getFirstAncestorByKind(SyntaxKind.ImportDeclaration)?.getModuleSpecifierValue();
      return mod === undefined ? undefined : namespaceOf(mod);
    }
    if (Node.isImportSpecifier(decl)) {
      const mod = decl.getImportDeclaration().getModuleSpecifierValue();
      return memberOf(mod, decl.getName());
    }
    if (Node.isImportEqualsDeclaration(decl)) {
      const ref = decl.getModuleReference();
      if (Node.isExternalModuleReference(ref)) {
        const e = ref.getExpression();
        return e !== undefined && Node.isStringLiteral(e) ? namespaceOf(e.getLiteralValue()) : undefined;
      }
      return this.resolve(ref, depth + 1);
    }
    if (Node.isVariableDeclaration(decl)) {
      if (decl.getVariableStatement()?.getDeclarationKind() !== 'const' && decl.getParent()?.getText().startsWith('const') !== true)
        return undefined;
      const init = decl.getInitializer();
      if (init === undefined) return undefined;
      const mod = requiredModule(init);
      if (mod !== undefined) return namespaceOf(mod);
      return this.resolve(init, depth + 1);
    }
    if (Node.isBindingElement(decl)) {
      // const { CfnReplicationGroup: RG } = require('aws-cdk-lib/aws-elasticache') / = ec / = cdk
      const pattern = decl.getParent();
      const varDecl = pattern?.getParent();
      if (!Node.isObjectBindingPattern(pattern) || !Node.isVariableDeclaration(varDecl)) return undefined;
      if (decl.getDotDotDotToken() !== undefined) return undefined;
      const name = propertyName(decl.getPropertyNameNode()) ?? decl.getName();
      const init = varDecl.getInitializer();
      if (init === undefined) return undefined;
      const mod = requiredModule(init);
      const base = mod !== undefined ? namespaceOf(mod) : this.resolve(init, depth + 1);
      if (base?.kind === 'elasticache-ns' || base?.kind === 'root-ns') return memberOf(base.module, name);
      return undefined;
    }
    return undefined;
  }

  private pos(node: Node): { line: number; column: number } {
    return this.sf.getLineAndColumnAtPos(node.getStart());
  }

  private report(node: Node, f: Omit<Finding, 'line' | 'column'>): void {
    this.findings.push({ ...this.pos(node), ...f });
  }

  /**
   * What undoes the props after construction, in a file that creates a construct: an assignment
   * `rg.transitEncryptionEnabled = false` (an L1 construct's properties are writable, and the last
   * value is synthesized), `rg.addPropertyOverride('TransitEncryptionEnabled', false)`,
   * `addOverride('Properties.AuthToken', ...)` and the deletion overrides (aws-cdk-lib CfnResource,
   * "Escape hatches": https://docs.aws.amazon.com/cdk/v2/guide/cfn_layer.html). Not changed
   * (reported, medium): a boolean set to the literal `true` and a token that is not empty are fine.
   */
  visitLaterChanges(): void {
    const CFN: Record<string, Prop> = {
      TransitEncryptionEnabled: 'transitEncryptionEnabled',
      AtRestEncryptionEnabled: 'atRestEncryptionEnabled',
      AuthToken: 'authToken',
    };
    const undoes = (prop: Prop, value: Node | undefined): boolean => {
      if (value === undefined) return true; // a deletion
      const v = unwrap(value);
      if (prop !== 'authToken') return v.getKind() !== SyntaxKind.TrueKeyword;
      return (Node.isIdentifier(v) && v.getText() === 'undefined') || v.getKind() === SyntaxKind.NullKeyword || Node.isStringLiteral(v);
    };
    const flag = (node: Node, prop: Prop, how: string): void =>
      this.report(node, {
        id: 'changed-after-construction',
        severity: 'medium',
        construct: 'CfnReplicationGroup',
        property: prop,
        message: `${prop} is changed after the construct is created (${how}), which overrides its props; set it in the props and remove this`,
      });
    for (const bin of this.sf.getDescendantsOfKind(SyntaxKind.BinaryExpression)) {
      if (!/^(=|\?\?=|\|\|=|&&=)$/.test(bin.getOperatorToken().getText())) continue;
      const left = unwrap(bin.getLeft());
      let name: string | undefined;
      if (Node.isPropertyAccessExpression(left)) name = left.getName();
      else if (Node.isElementAccessExpression(left)) {
        const arg = left.getArgumentExpression();
        if (arg !== undefined && (Node.isStringLiteral(arg) || Node.isNoSubstitutionTemplateLiteral(arg))) name = arg.getLiteralValue();
      }
      const prop = Object.values(CFN).find((p) => p === name);
      if (prop !== undefined && undoes(prop, bin.getRight())) flag(bin, prop, 'an assignment');
    }
    for (const call of this.sf.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const callee = call.getExpression();
      if (!Node.isPropertyAccessExpression(callee)) continue;
      const method = callee.getName();
      const [first, second] = call.getArguments();
      const key = first === undefined ? undefined : unwrap(first);
      if (key === undefined || !(Node.isStringLiteral(key) || Node.isNoSubstitutionTemplateLiteral(key))) continue;
      let path = key.getLiteralValue();
      if (method === 'addOverride' || method === 'addDeletionOverride') {
        if (!path.startsWith('Properties.')) continue;
        path = path.slice('Properties.'.length);
      } else if (method !== 'addPropertyOverride' && method !== 'addPropertyDeletionOverride') continue;
      const prop = CFN[path];
      if (prop === undefined) continue;
      if (undoes(prop, method.includes('Deletion') ? undefined : second)) flag(call, prop, method);
    }
  }

  /** Checks one `new CfnReplicationGroup(...)` / `new CfnCacheCluster(...)` and plans its edits. */
  visitConstruct(expr: Node & { getArguments(): Node[] }, construct: ConstructKind, module: string): void {
    if (module.startsWith('@aws-cdk/')) this.rootModule = '@aws-cdk/core';
    else if (module.startsWith('monocdk')) this.rootModule = 'monocdk';
    const propsArg = expr.getArguments()[2];
    const props = propsArg === undefined ? undefined : unwrap(propsArg);
    if (props === undefined || !Node.isObjectLiteralExpression(props)) {
      const shape =
        props === undefined
          ? 'missing'
          : Node.isIdentifier(props)
            ? `the variable ${props.getText()}`
            : Node.isCallExpression(props)
              ? 'a function call'
              : 'not an object literal';
      this.report(propsArg ?? expr, {
        id: 'props-not-literal',
        severity: 'medium',
        construct,
        message: `${construct} props are ${shape}; set transitEncryptionEnabled, atRestEncryptionEnabled and authToken where the props are built`,
      });
      return;
    }
    const members = this.readMembers(props);
    if (construct === 'CfnCacheCluster') {
      this.visitCacheCluster(expr, props, members);
      return;
    }
    this.visitReplicationGroup(expr, props, members);
  }

  private readMembers(props: ObjectLiteralExpression): { values: Map<string, Node>; unknown: Map<string, Node>; spread: Node | undefined } {
    // Later members win (JavaScript semantics); a spread hides what it sets, so only members after
    // the last spread are known.
    const values = new Map<string, Node>();
    const unknown = new Map<string, Node>();
    let spread: Node | undefined;
    for (const m of props.getProperties()) {
      if (Node.isSpreadAssignment(m)) {
        spread = m;
        values.clear();
        unknown.clear();
        continue;
      }
      if (Node.isPropertyAssignment(m)) {
        const name = propertyName(m.getNameNode());
        if (name === undefined) continue; // computed key: cannot be one of ours by name
        unknown.delete(name);
        values.set(name, m);
      } else if (
        Node.isShorthandPropertyAssignment(m) ||
        Node.isMethodDeclaration(m) ||
        Node.isGetAccessorDeclaration(m) ||
        Node.isSetAccessorDeclaration(m)
      ) {
        const name = propertyName(m.getNameNode());
        if (name === undefined) continue;
        values.delete(name);
        unknown.set(name, m);
      }
    }
    return { values, unknown, spread };
  }

  private engineOf(members: ReturnType<FileContext['readMembers']>): { literal: string } | { computed: Node } | undefined {
    const engine = members.values.get('engine');
    if (engine === undefined) {
      const u = members.unknown.get('engine');
      return u === undefined ? undefined : { computed: u };
    }
    const init = unwrap((engine as Node & { getInitializerOrThrow(): Node }).getInitializerOrThrow());
    if (Node.isStringLiteral(init) || Node.isNoSubstitutionTemplateLiteral(init)) return { literal: init.getLiteralValue() };
    return { computed: engine };
  }

  private visitCacheCluster(expr: Node, _props: ObjectLiteralExpression, members: ReturnType<FileContext['readMembers']>): void {
    const engine = this.engineOf(members);
    if (engine !== undefined && 'literal' in engine && !/^(redis|valkey)$/i.test(engine.literal)) {
      this.report(expr, {
        id: 'engine-not-redis',
        severity: 'info',
        construct: 'CfnCacheCluster',
        property: 'engine',
        message: `CfnCacheCluster with engine "${printableLiteral(engine.literal)}" is not a Redis/Valkey session store; left alone`,
      });
      return;
    }
    this.report(expr, {
      id: 'cache-cluster-no-encryption',
      severity: 'high',
      construct: 'CfnCacheCluster',
      message:
        'CfnCacheCluster cannot have encryption at rest or an AUTH token for Redis/Valkey (its transitEncryptionEnabled is for Memcached only); replace it with a CfnReplicationGroup (numCacheClusters: 1 for a single node) and run this codemod again',
    });
  }

  private visitReplicationGroup(expr: Node, props: ObjectLiteralExpression, members: Members): void {
    const construct: ConstructKind = 'CfnReplicationGroup';
    const line = this.pos(expr).line;
    const engine = this.engineOf(members);
    if (engine !== undefined && 'literal' in engine && !/^(redis|valkey)$/i.test(engine.literal)) {
      this.report(expr, {
        id: 'engine-not-redis',
        severity: 'low',
        construct,
        property: 'engine',
        message: `CfnReplicationGroup with engine "${printableLiteral(engine.literal)}" (not redis or valkey); left alone`,
      });
      return;
    }
    const transit = this.propState(members, 'transitEncryptionEnabled');
    const atRest = this.propState(members, 'atRestEncryptionEnabled');
    const auth = this.propState(members, 'authToken');
    const needsWork =
      transit.kind !== 'true' ||
      atRest.kind !== 'true' ||
      ((auth.kind === 'missing' || auth.kind === 'empty') && !members.values.has('userGroupIds'));
    if (members.spread !== undefined && needsWork) {
      this.report(members.spread, {
        id: 'spread-props',
        severity: 'medium',
        construct,
        message:
          'CfnReplicationGroup props use a spread that may set (or unset) transitEncryptionEnabled, atRestEncryptionEnabled or authToken; set them explicitly after the spread',
      });
      return;
    }
    const inserts: string[] = [];
    const added: Prop[] = [];
    this.turnOnEncryption(line, transit, atRest, inserts, added);
    this.secureAuthToken(expr, line, members, transit, auth, inserts, added);
    this.checkTransitMode(members);
    if (inserts.length > 0) {
      this.edits.push(...listInsertion(this.text, props.getStart() + 1, props.getProperties(), props.getEnd() - 1, inserts, this.newline));
      for (const p of added) this.changes.push({ line, construct, property: p, action: 'added' });
    }
    this.reportDeployImpact(expr, line, transit, atRest, added);
  }

  /** What a replication group's props say about one of the properties this codemod sets. */
  private propState(members: Members, name: Prop): PropState {
    const u = members.unknown.get(name);
    if (u !== undefined) return { kind: 'computed', node: u };
    const m = members.values.get(name);
    if (m === undefined) return { kind: 'missing' };
    const init = (m as Node & { getInitializerOrThrow(): Node }).getInitializerOrThrow();
    const v = unwrap(init);
    if (name === 'authToken') {
      // `authToken: undefined` / `null` / `void 0` sets no token: CloudFormation gets none
      if ((Node.isIdentifier(v) && v.getText() === 'undefined') || v.getKind() === SyntaxKind.NullKeyword || Node.isVoidExpression(v))
        return { kind: 'empty', value: init };
      if (Node.isStringLiteral(v) || Node.isNoSubstitutionTemplateLiteral(v) || this.isConstStringLiteral(v))
        return { kind: 'literal-secret', node: m };
      if (/\bprocess\.env\b/.test(v.getText())) return { kind: 'plaintext', node: m };
      return { kind: 'set', node: m };
    }
    if (v.getKind() === SyntaxKind.TrueKeyword) return { kind: 'true' };
    if (v.getKind() === SyntaxKind.FalseKeyword) return { kind: 'false', value: init };
    return { kind: 'computed', node: m };
  }

  /** transitEncryptionEnabled and atRestEncryptionEnabled: `false` becomes `true`, a missing one is inserted, a computed one reported. */
  private turnOnEncryption(line: number, transit: PropState, atRest: PropState, inserts: string[], added: Prop[]): void {
    const construct: ConstructKind = 'CfnReplicationGroup';
    for (const [name, s] of [
      ['transitEncryptionEnabled', transit],
      ['atRestEncryptionEnabled', atRest],
    ] as const) {
      if (s.kind === 'false') {
        this.edits.push({ start: s.value.getStart(), end: s.value.getEnd(), text: 'true' });
        this.changes.push({ line, construct, property: name, action: 'set-true' });
      } else if (s.kind === 'missing') {
        inserts.push(`${name}: true`);
        added.push(name);
      } else if (s.kind === 'computed') {
        this.report(s.node, {
          id: 'computed-value',
          severity: 'medium',
          construct,
          property: name,
          message: `${name} is computed at run time (${shapeOf(s.node)}); make it the literal true`,
        });
      }
    }
  }

  /**
   * authToken: a missing or empty one becomes a Secrets Manager reference (when transit encryption
   * will be on, and no RBAC user groups replace it); a token in the source or from the environment
   * at synth time is reported.
   */
  private secureAuthToken(
    expr: Node,
    line: number,
    members: Members,
    transit: PropState,
    auth: PropState,
    inserts: string[],
    added: Prop[],
  ): void {
    // RBAC user groups replace the AUTH token (ElastiCache takes one or the other).
    const usesRbac = members.values.has('userGroupIds') || members.unknown.has('userGroupIds');
    if (auth.kind === 'missing' || auth.kind === 'empty') {
      if (usesRbac) this.reportRbacInsteadOfToken(expr);
      else this.addAuthToken(expr, line, transit, auth, inserts, added);
    } else {
      this.reportTokenSource(auth);
    }
  }

  /** No authToken added where RBAC user groups authenticate: an info finding says why. */
  private reportRbacInsteadOfToken(expr: Node): void {
    this.report(expr, {
      id: 'rbac-user-groups',
      severity: 'info',
      construct: 'CfnReplicationGroup',
      property: 'authToken',
      message:
        'no authToken added: this replication group authenticates with RBAC user groups (userGroupIds), which replace the AUTH token',
    });
  }

  /**
   * A missing authToken is inserted, an empty one replaced, as a Secrets Manager reference; when
   * transit encryption is computed at run time (AUTH needs it) nothing is added and that is reported.
   */
  private addAuthToken(
    expr: Node,
    line: number,
    transit: PropState,
    auth: { kind: 'missing' } | { kind: 'empty'; value: Node },
    inserts: string[],
    added: Prop[],
  ): void {
    const transitWillBeTrue = transit.kind === 'true' || transit.kind === 'false' || transit.kind === 'missing';
    if (!transitWillBeTrue) {
      this.report(expr, {
        id: 'computed-value',
        severity: 'medium',
        construct: 'CfnReplicationGroup',
        property: 'authToken',
        message: 'authToken not added: AUTH needs transit encryption, which is computed at run time here',
      });
      return;
    }
    const ref = this.secretValue(expr);
    if (ref !== undefined && auth.kind === 'empty') {
      this.edits.push({ start: auth.value.getStart(), end: auth.value.getEnd(), text: ref });
      this.changes.push({ line, construct: 'CfnReplicationGroup', property: 'authToken', action: 'replaced' });
    } else if (ref !== undefined) {
      inserts.push(`authToken: ${ref}`);
      added.push('authToken');
    }
  }

  /** An authToken given as a string in the source, or read from the environment at synth time: reported. */
  private reportTokenSource(auth: PropState): void {
    if (auth.kind === 'literal-secret') {
      this.secrets.push(...this.literalTexts(unwrap((auth.node as Node & { getInitializerOrThrow(): Node }).getInitializerOrThrow())));
      this.report(auth.node, {
        id: 'auth-token-in-code',
        severity: 'high',
        construct: 'CfnReplicationGroup',
        property: 'authToken',
        message:
          'authToken is a string in source code (a secret in the repository and in the synthesized template); rotate it and read it from Secrets Manager, e.g. SecretValue.secretsManager(name).unsafeUnwrap()',
      });
    } else if (auth.kind === 'plaintext') {
      this.report(auth.node, {
        id: 'auth-token-plaintext',
        severity: 'medium',
        construct: 'CfnReplicationGroup',
        property: 'authToken',
        message:
          'authToken comes from the environment at synth time and is written into the template in plain text; read it from Secrets Manager instead',
      });
    }
  }

  /** transitEncryptionMode 'preferred' still accepts plaintext clients: reported. */
  private checkTransitMode(members: Members): void {
    const mode = members.values.get('transitEncryptionMode');
    if (mode === undefined) return;
    const v = unwrap((mode as Node & { getInitializerOrThrow(): Node }).getInitializerOrThrow());
    if ((Node.isStringLiteral(v) || Node.isNoSubstitutionTemplateLiteral(v)) && v.getLiteralValue().toLowerCase() === 'preferred') {
      this.report(mode, {
        id: 'transit-mode-preferred',
        severity: 'medium',
        construct: 'CfnReplicationGroup',
        property: 'transitEncryptionMode',
        message:
          "transitEncryptionMode 'preferred' still accepts plaintext connections; set 'required' once every client connects with TLS",
      });
    }
  }

  /** What a deployed replication group goes through when the change is deployed: a replacement (encryption at rest), or an in-place change to review. */
  private reportDeployImpact(expr: Node, line: number, transit: PropState, atRest: PropState, added: readonly Prop[]): void {
    const construct: ConstructKind = 'CfnReplicationGroup';
    const touchedAtRest = atRest.kind === 'false' || atRest.kind === 'missing';
    const touchedTransit = transit.kind === 'false' || transit.kind === 'missing';
    if (touchedAtRest) {
      this.report(expr, {
        id: 'replaced-on-deploy',
        severity: 'info',
        construct,
        message:
          'if this replication group is already deployed, CloudFormation replaces it to turn on encryption at rest (an empty new cache); review `cdk diff` and migrate sessions to the new endpoint',
      });
    } else if (touchedTransit || added.includes('authToken') || this.changes.some((c) => c.line === line && c.action === 'replaced')) {
      this.report(expr, {
        id: 'deploy-review',
        severity: 'info',
        construct,
        message:
          'if this replication group is already deployed, turning on transit encryption in place needs Valkey or Redis OSS 7.0.5+ (via transitEncryptionMode preferred) and TLS-capable clients first; review `cdk diff`',
      });
    }
  }

  /**
   * The texts of a string literal (or of the const it names) as the file holds them: its source
   * text between the quotes and its value (they differ when it has escapes). Empty ones are left out.
   */
  private literalTexts(v: Node): string[] {
    let lit: Node | undefined = v;
    if (Node.isIdentifier(v)) {
      const decl = v.getSymbol()?.getDeclarations()[0];
      const init = decl !== undefined && Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
      lit = init === undefined ? undefined : unwrap(init);
    }
    if (lit === undefined || !(Node.isStringLiteral(lit) || Node.isNoSubstitutionTemplateLiteral(lit))) return [];
    return [lit.getText().slice(1, -1), lit.getLiteralValue()].filter((t) => t !== '');
  }

  private isConstStringLiteral(v: Node): boolean {
    if (!Node.isIdentifier(v)) return false;
    const decl = v.getSymbol()?.getDeclarations()[0];
    if (decl === undefined || !Node.isVariableDeclaration(decl) || decl.getVariableStatement()?.getDeclarationKind() !== 'const')
      return false;
    const init = decl.getInitializer();
    return init !== undefined && (Node.isStringLiteral(unwrap(init)) || Node.isNoSubstitutionTemplateLiteral(unwrap(init)));
  }

  /**
   * The expression for the AUTH token, importing SecretValue if the file has no binding for it.
   * Returns undefined (with a finding) when no safe name is available.
   */
  private secretValue(at: Node): string | undefined {
    if (this.secretValueRef === undefined) this.secretValueRef = this.planSecretValue();
    if (this.secretValueRef === null) {
      this.report(at, {
        id: 'import-conflict',
        severity: 'medium',
        construct: 'CfnReplicationGroup',
        property: 'authToken',
        message: 'authToken not added: the name SecretValue is already used in this file for something else; add the token by hand',
      });
      return undefined;
    }
    // unsafeUnwrap() is CDK v2's name; v1 and monocdk used toString() for the same token.
    const unwrapCall = this.rootModule === 'aws-cdk-lib' ? 'unsafeUnwrap' : 'toString';
    return `${this.secretValueRef.expr}.secretsManager(${this.quote}${this.secretName}${this.quote}).${unwrapCall}()`;
  }

  /** Edits that add the SecretValue import, if one is needed. */
  importEdits(): Edit[] {
    return this.secretValueRef?.edits ?? [];
  }

  /**
   * How the file can name SecretValue: an existing top-level binding (1.), else, when the name is free
   * (2.), SecretValue with the edits that import it (3.); null when the name is taken or nothing anchors an import.
   */
  private planSecretValue(): { expr: string; edits: Edit[] } | null {
    const existing = this.existingSecretValue();
    if (existing !== undefined) return { expr: existing, edits: [] };
    // 2. The name SecretValue must be free.
    if (this.sf.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => id.getText() === 'SecretValue')) return null;
    const edits = this.secretValueImport();
    return edits === null ? null : { expr: 'SecretValue', edits };
  }

  /**
   * 1. An existing binding: `import { SecretValue as SV } from 'aws-cdk-lib'`, `import * as cdk from
   * 'aws-cdk-lib'`, or the require forms. The expression that names SecretValue, or undefined.
   */
  private existingSecretValue(): string | undefined {
    const root = this.rootModule;
    let namespace: string | undefined;
    for (const id of this.sf.getDescendantsOfKind(SyntaxKind.Identifier)) {
      const parent = id.getParent();
      const isBinding = Node.isImportSpecifier(parent)
        ? parent.getAliasNode() === id || (parent.getAliasNode() === undefined && parent.getNameNode() === id)
        : Node.isNamespaceImport(parent) ||
          Node.isImportClause(parent) ||
          Node.isImportEqualsDeclaration(parent) ||
          Node.isBindingElement(parent) ||
          Node.isVariableDeclaration(parent);
      if (
        !isBinding ||
        (Node.isVariableDeclaration(parent) && parent.getNameNode() !== id) ||
        (Node.isBindingElement(parent) && parent.getNameNode() !== id)
      )
        continue;
      const decl = id.getSymbol()?.getDeclarations()[0];
      if (decl === undefined) continue;
      const r = this.resolveDeclaration(decl, 0);
      if (r?.kind === 'secret-value' && isTopLevel(decl)) return id.getText();
      if (r?.kind === 'root-ns' && r.module === root && isTopLevel(decl)) namespace ??= id.getText();
    }
    return namespace === undefined ? undefined : `${namespace}.SecretValue`;
  }

  /**
   * 3. The edits that add SecretValue to a named import from the root module, or an import (or
   * require) line; null when the file has neither imports nor CDK requires to anchor it.
   */
  private secretValueImport(): Edit[] | null {
    const root = this.rootModule;
    // Add it to a named import from the root module, or add an import (or require) line.
    const rootImport = this.sf
      .getImportDeclarations()
      .find((d) => d.getModuleSpecifierValue() === root && d.getNamedImports().length > 0 && !d.isTypeOnly());
    if (rootImport !== undefined) {
      const named = rootImport.getImportClauseOrThrow().getNamedBindingsOrThrow();
      return listInsertion(
        this.text,
        named.getStart() + 1,
        rootImport.getNamedImports(),
        named.getEnd() - 1,
        ['SecretValue'],
        this.newline,
      );
    }
    const imports = this.sf.getImportDeclarations();
    const q = this.quote;
    const last = imports[imports.length - 1];
    if (last !== undefined) {
      const at = endOfLine(this.text, last.getEnd());
      return [{ start: at, end: at, text: `${this.newline}import { SecretValue } from ${q}${root}${q};` }];
    }
    // CommonJS style: after the last top-level statement that requires a CDK module.
    const requires = this.sf.getStatements().filter(
      (s) =>
        Node.isVariableStatement(s) &&
        s.getDeclarations().some((d) => {
          const mod = requiredModule(d.getInitializer());
          return mod !== undefined && (ROOT_MODULES.has(mod) || ELASTICACHE_MODULES.has(mod));
        }),
    );
    const anchor = requires[requires.length - 1];
    if (anchor === undefined) return null;
    const at = endOfLine(this.text, anchor.getEnd());
    return [{ start: at, end: at, text: `${this.newline}const { SecretValue } = require(${q}${root}${q});` }];
  }
}

function isTopLevel(decl: Node): boolean {
  const stmt = decl.getFirstAncestor((a) => Node.isStatement(a) || Node.isImportDeclaration(a));
  return stmt !== undefined && Node.isSourceFile(stmt.getParent());
}

function shapeOf(node: Node): string {
  const v = Node.isPropertyAssignment(node) ? unwrap(node.getInitializerOrThrow()) : node;
  if (Node.isShorthandPropertyAssignment(node)) return 'a shorthand property';
  if (Node.isConditionalExpression(v)) return 'a conditional expression';
  if (Node.isIdentifier(v)) return `the variable ${v.getText()}`;
  if (Node.isCallExpression(v)) return 'a function call';
  if (Node.isPropertyAccessExpression(v)) return 'a property access';
  return 'an expression';
}

/** A literal from the input, made safe and short for a one-line message. */
function printableLiteral(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]|["\\]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}...` : clean;
}

/**
 * End of the line holding `pos`, if the rest of that line is only whitespace and comments; else `pos`.
 * Inserting there keeps a trailing `// comment` on the line it belongs to.
 */
function endOfLine(text: string, pos: number): number {
  let i = pos;
  let contentEnd = pos;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) return contentEnd;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      const nl = text.indexOf('\n', i);
      const stop = nl === -1 ? text.length : text[nl - 1] === '\r' ? nl - 1 : nl;
      return stop;
    }
    if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      if (close === -1 || /[\r\n]/.test(text.slice(i, close))) return pos;
      i = close + 2;
      contentEnd = i;
      continue;
    }
    return pos;
  }
  return contentEnd;
}

/** Skips whitespace and comments from `pos`; returns the position of the next token. */
function skipTrivia(text: string, pos: number): number {
  let i = pos;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
    else if (c === '/' && text[i + 1] === '/') {
      const nl = text.indexOf('\n', i);
      i = nl === -1 ? text.length : nl + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      i = close === -1 ? text.length : close + 2;
    } else break;
  }
  return i;
}

function lineStart(text: string, pos: number): number {
  const nl = text.lastIndexOf('\n', pos - 1);
  return nl + 1;
}

/**
 * Edits that append `items` to a comma-separated list between an opening brace (content starts at
 * `openEnd`) and a closing brace at `closeStart`, in the list's own style: one item per line with the
 * last element's indentation when the list is laid out that way, inline otherwise; a trailing comma
 * exactly when the list had one.
 */
function listInsertion(text: string, openEnd: number, elements: readonly Node[], closeStart: number, items: string[], nl: string): Edit[] {
  const last = elements[elements.length - 1];
  if (last === undefined) {
    const inner = text.slice(openEnd, closeStart);
    if (/^\s*$/.test(inner) && !/[\r\n]/.test(inner)) return [{ start: openEnd, end: closeStart, text: ` ${items.join(', ')} ` }];
    const indent = (/^[ \t]*/.exec(text.slice(lineStart(text, closeStart), closeStart))?.[0] ?? '') + '  ';
    return [{ start: closeStart, end: closeStart, text: items.map((i) => `${indent}${i},${nl}`).join('') }];
  }
  const afterLast = skipTrivia(text, last.getEnd());
  const hasTrailingComma = text[afterLast] === ',';
  const anchor = hasTrailingComma ? afterLast + 1 : last.getEnd();
  const closeOnOwnLine = /[\r\n]/.test(text.slice(anchor, closeStart));
  const before = text.slice(lineStart(text, last.getStart()), last.getStart());
  const ownLine = /^[ \t]*$/.test(before);
  if (closeOnOwnLine && ownLine) {
    const at = endOfLine(text, anchor);
    const body = items.map((i) => `${nl}${before}${i}`).join(',') + (hasTrailingComma ? ',' : '');
    const edits: Edit[] = [];
    if (!hasTrailingComma) edits.push({ start: last.getEnd(), end: last.getEnd(), text: ',' });
    edits.push({ start: at, end: at, text: body });
    return edits;
  }
  if (hasTrailingComma) return [{ start: anchor, end: anchor, text: items.map((i) => ` ${i},`).join('') }];
  return [{ start: last.getEnd(), end: last.getEnd(), text: items.map((i) => `, ${i}`).join('') }];
}

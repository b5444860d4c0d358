/**
 * A reader for the HCL subset the generated Terraform uses (blocks, attributes, strings with ${},
 * comments; https://github.com/hashicorp/hcl/blob/main/hclsyntax/spec.md), enough to check the
 * structure without terraform, which a fresh clone does not have. Used by test/generate-iac*.test.ts.
 */
export interface HclBlock {
  type: string;
  labels: string[];
  /** Attribute name -> raw expression text (trimmed). */
  attrs: Map<string, string>;
  blocks: HclBlock[];
}

/** Reads blocks and attributes; throws on unbalanced braces or an unterminated string. */
export function readHcl(text: string): HclBlock[] {
  let i = 0;
  const skipSpace = (newlines: boolean) => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) i++;
      else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
        while (i < text.length && text[i] !== '\n') i++;
      } else if (c === '/' && text[i + 1] === '*') {
        const end = text.indexOf('*/', i + 2);
        if (end < 0) throw new Error('unterminated comment');
        i = end + 2;
      } else return;
    }
  };
  const readString = (): string => {
    const start = i;
    i++; // opening quote
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === '\\') i += 2;
      else if (c === '$' && text[i + 1] === '{') {
        depth++;
        i += 2;
      } else if (c === '}' && depth > 0) {
        depth--;
        i++;
      } else if (c === '"' && depth === 0) {
        i++;
        return text.slice(start, i);
      } else if (c === '\n' && depth === 0) throw new Error(`newline in string at ${start}`);
      else i++;
    }
    throw new Error('unterminated string');
  };
  /** Reads an expression up to the end of the line, balancing brackets across lines. */
  const readExpr = (): string => {
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        readString();
        continue;
      }
      if (c === '{' || c === '[' || c === '(') depth++;
      if (c === '}' || c === ']' || c === ')') {
        if (depth === 0) break;
        depth--;
      }
      if (c === '\n' && depth === 0) break;
      if (c === '#' && depth === 0) break;
      i++;
    }
    return text.slice(start, i).trim();
  };
  const readBody = (closing: boolean): HclBlock[] => {
    const blocks: HclBlock[] = [];
    for (;;) {
      skipSpace(true);
      if (i >= text.length) {
        if (closing) throw new Error('unbalanced braces: missing }');
        return blocks;
      }
      if (text[i] === '}') {
        if (!closing) throw new Error(`unbalanced braces: stray } at ${i}`);
        i++;
        return blocks;
      }
      const ident = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i))?.[0];
      if (ident === undefined) throw new Error(`unexpected ${JSON.stringify(text.slice(i, i + 20))}`);
      i += ident.length;
      skipSpace(false);
      if (text[i] === '=') {
        i++;
        skipSpace(false);
        const expr = readExpr();
        (blocks as unknown as { attrs?: Map<string, string> }).attrs ??= new Map();
        const attrs = (blocks as unknown as { attrs: Map<string, string> }).attrs;
        if (attrs.has(ident)) throw new Error(`duplicate attribute ${ident}`);
        attrs.set(ident, expr);
        continue;
      }
      const labels: string[] = [];
      while (text[i] === '"') {
        labels.push(JSON.parse(readString()) as string);
        skipSpace(false);
      }
      if (text[i] !== '{') throw new Error(`expected { after ${ident}`);
      i++;
      const inner = readBody(true);
      blocks.push({ type: ident, labels, attrs: (inner as unknown as { attrs?: Map<string, string> }).attrs ?? new Map(), blocks: inner });
    }
  };
  return readBody(false);
}

/**
 * Rule `codeigniter4-config`: CodeIgniter 4's session driver `FileHandler` (the `$sessionDriver`
 * property, or `$driver` of app/Config/Session.php). CodeIgniter registers its own handler class,
 * which replaces the encrypted Redis handler: reported, never changed.
 */
import { identifierName } from '../php-ast.ts';
import type { PhpNode } from '../source.ts';
import type { Rule } from './rule.ts';

export const codeigniter4Config: Rule = {
  name: 'codeigniter4-config',
  description: 'CodeIgniter 4 session driver FileHandler: CodeIgniter registers its own handler; reported',
  findings: ['framework-config'],
  nodeKinds: ['propertystatement'],
  visitNode(node, _parent, file) {
    for (const prop of (node.properties as PhpNode[] | undefined) ?? []) {
      const propName = identifierName(prop.name);
      const isDriver = propName === 'sessionDriver' || (propName === 'driver' && /(^|\/)Config\/Session\.php$/.test(file.rel));
      if (!isDriver || prop.value === null || prop.value === undefined) continue;
      const start = prop.loc!.start.offset;
      const valueText = file.text.slice(start, prop.loc!.end.offset);
      if (!/FileHandler/.test(valueText)) continue;
      file.find(
        start,
        'framework-config',
        'medium',
        'CodeIgniter 4 session driver FileHandler: CodeIgniter registers its own handler class, which replaces the encrypted Redis handler',
        "CodeIgniter's Session class calls session_set_save_handler() itself; the codemod does not change it",
      );
    }
  },
};

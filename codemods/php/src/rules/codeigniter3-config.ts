/**
 * Rule `codeigniter3-config`: CodeIgniter 3's `$config['sess_driver'] = '...'` (application/config/
 * config.php). CodeIgniter registers its own session handler class, which replaces the encrypted
 * Redis handler: reported (medium for the files driver, else info), never changed.
 */
import { literal } from '../php-ast.ts';
import type { PhpNode } from '../source.ts';
import type { Rule } from './rule.ts';

export const codeigniter3Config: Rule = {
  name: 'codeigniter3-config',
  description: "CodeIgniter 3 $config['sess_driver']: CodeIgniter registers its own handler; reported",
  findings: ['framework-config'],
  nodeKinds: ['assign'],
  visitNode(node, _parent, file) {
    const left = node.left as PhpNode;
    if (left.kind !== 'offsetlookup') return;
    const what = left.what as PhpNode;
    const offset = literal(left.offset as PhpNode | undefined);
    if (what.kind !== 'variable' || what.name !== 'config' || offset !== 'sess_driver') return;
    const value = literal(node.right as PhpNode);
    const start = node.loc!.start.offset;
    file.find(
      start,
      'framework-config',
      value === 'files' ? 'medium' : 'info',
      `CodeIgniter 3 sess_driver is ${value === null ? 'computed' : `'${value}'`}: CodeIgniter registers its own session handler class, which replaces the encrypted Redis handler`,
      "CodeIgniter's session library calls session_set_save_handler() itself; keep the driver's storage or move it to a driver you have reviewed, the codemod does not change it",
    );
  },
};

/**
 * Rule `laravel-config`: the `'driver'` entry of Laravel's config/session.php (a literal, or
 * `env('SESSION_DRIVER', '<default>')`). Laravel stores sessions through its own driver and never
 * calls PHP's save handler, so the encrypted Redis handler does not apply: reported, never changed.
 */
import { argument, functionName, literal } from '../php-ast.ts';
import type { PhpNode } from '../source.ts';
import type { Rule } from './rule.ts';

export const laravelConfig: Rule = {
  name: 'laravel-config',
  description: "Laravel config/session.php 'driver': Laravel's own session storage, not PHP's save handler; reported",
  findings: ['framework-config'],
  nodeKinds: ['entry'],
  visitNode(node, _parent, file) {
    if (!/(^|\/)config\/session\.php$/.test(file.rel)) return;
    if (literal(node.key as PhpNode | undefined) !== 'driver') return;
    const valueNode = node.value as PhpNode;
    let value = literal(valueNode);
    if (value === null && valueNode.kind === 'call' && functionName(valueNode.what as PhpNode) === 'env') {
      value = literal(argument(valueNode.arguments as PhpNode[], 1, 'default'));
    }
    const start = node.loc!.start.offset;
    file.find(
      start,
      'framework-config',
      value === 'file' ? 'medium' : 'info',
      `Laravel session driver ${value === null ? '(computed)' : `'${value}'`}: Laravel stores sessions through its own driver and never calls PHP's save handler, so the encrypted Redis handler does not apply`,
      "Laravel sessions are not PHP native sessions: migrate them with Laravel's own session configuration (SESSION_DRIVER), the codemod does not change it",
    );
  },
};

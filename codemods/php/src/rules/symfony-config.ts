/**
 * Rule `symfony-config`: `handler_id` of framework.session in Symfony's YAML configuration
 * (YAML files below config/packages/). Null (`~`) means Symfony uses PHP's registered save handler, so the
 * encrypted Redis handler applies (info); a service ID means Symfony registers that handler itself,
 * which replaces it (medium). Never changed. A configuration-file rule: it reads text, not PHP.
 */
import type { Finding } from '../model.ts';
import type { ConfigFileRule } from './rule.ts';

/**
 * Findings for a Symfony YAML configuration file (config/packages/*.yaml): `handler_id` of
 * framework.session. Line-based: only `handler_id:` lines are read.
 */
export function analyzeSymfonyYaml(text: string, rel: string): Finding[] {
  const findings: Finding[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const m = /^\s*handler_id\s*:\s*(.*?)\s*(#.*)?$/.exec(line.replace(/\r$/, ''));
    if (m === null) return;
    const value = (m[1] ?? '').replace(/^['"]|['"]$/g, '');
    const usesNative = value === '~' || value === 'null' || value === '';
    findings.push({
      file: rel,
      line: i + 1,
      id: 'framework-config',
      severity: usesNative ? 'info' : 'medium',
      message: usesNative
        ? "Symfony framework.session.handler_id is null: Symfony uses PHP's registered save handler, so the encrypted Redis handler applies"
        : `Symfony framework.session.handler_id is '${value}': Symfony registers that handler itself, which replaces the encrypted Redis handler`,
      ...(usesNative
        ? {}
        : { fix: "set framework.session.handler_id: null to use the handler registered by session-migrate's bootstrap (review first)" }),
    });
  });
  return findings;
}

export const symfonyConfig: ConfigFileRule = {
  name: 'symfony-config',
  description: 'Symfony framework.session.handler_id: null uses the encrypted handler, a service replaces it; reported',
  findings: ['framework-config'],
  matches: (rel) => /\.ya?ml$/.test(rel) && /(^|\/)config\/packages\//.test(rel),
  analyze: analyzeSymfonyYaml,
};

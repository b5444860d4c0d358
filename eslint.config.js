// ESLint flat configuration (https://eslint.org/docs/latest/use/configure/configuration-files) with
// typescript-eslint's recommended rules (https://typescript-eslint.io/getting-started). Formatting is
// Prettier's job (.prettierrc.json), so no stylistic rules here. Run by `npm test` through `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: [
      'build/**',
      'dist/**',
      'node_modules/**',
      '**/node_modules/**',
      'test/fixtures/**',
      'test/golden/**',
      '**/test/fixtures/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_`-prefixed names are deliberately unused (interface methods, destructuring that drops a field).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `x.n += await f()` reads x.n before the await: a count another task adds to meanwhile loses
      // that addition (it lost unconfirmed sessions in apply once: commit 4ff9554).
      'no-restricted-syntax': [
        'error',
        {
          selector: 'AssignmentExpression[operator=/^(\\+|-|\\*|\\/|%|\\*\\*)=$/] AwaitExpression',
          message: 'compound assignment with await: the left side is read before the await; await into a const first',
        },
      ],
    },
  },
);

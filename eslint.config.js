// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

/**
 * The rooms of src/ and the only directions imports may go (ARCHITECTURE.md): graphql -> domain -> erp; nothing
 * imports server/ (the composition root) or simulator/ (the fake ERP); configuration is read only in server/ and the
 * entry points. test/lint-architecture.test.ts feeds a wrong import in each direction through these rules.
 */
const SIMULATOR = ['**/simulator/**'];
const SERVER = ['**/server/**'];
const CONFIG = ['**/config', '**/config.js'];
const ENTRY = ['**/main', '**/probe'];
const room = (patterns, why) => ({ 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message: why }] }] });

module.exports = tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'src/graphql/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-restricted-imports': 'off',
    },
  },
  {
    // The simulator stands in for the ERP: it must not lean on the code it tests.
    files: ['src/simulator/**/*.ts'],
    rules: room(['**/erp/**', '**/domain/**', '**/graphql/**', ...SERVER, ...CONFIG, ...ENTRY], 'the simulator imports nothing of the subgraph'),
  },
  {
    // The ERP client knows nothing of the domain, GraphQL, the server or the configuration (it takes options).
    files: ['src/erp/**/*.ts'],
    rules: room(['**/domain/**', '**/graphql/**', ...SERVER, ...SIMULATOR, ...CONFIG, ...ENTRY], 'erp/ is the bottom room: it imports only itself'),
  },
  {
    files: ['src/domain/**/*.ts'],
    rules: room(['**/graphql/**', ...SERVER, ...SIMULATOR, ...CONFIG, ...ENTRY], 'domain/ may import erp/ only'),
  },
  {
    files: ['src/graphql/**/*.ts'],
    rules: room([...SERVER, ...SIMULATOR, ...CONFIG, ...ENTRY], 'graphql/ may import domain/ (and erp/ types) only'),
  },
  {
    files: ['src/server/**/*.ts'],
    rules: room([...SIMULATOR, ...ENTRY], 'server/ is the composition root: the simulator is started by main.ts, not wired here'),
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

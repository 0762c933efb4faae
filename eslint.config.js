// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

/**
 * The rooms of src/ and the only directions imports may go (ARCHITECTURE.md): graphql -> domain -> erp; nothing
 * imports server/ (the composition root) or simulator/ (the fake ERP); fleet/ (the Redis-backed adapters) implements
 * erp/ and domain/ ports and is wired only by server/ and the entry points; configuration is read only in server/ and
 * the entry points. test/lint-architecture.test.ts feeds a wrong import in each direction through these rules.
 */
const SIMULATOR = ['**/simulator/**'];
// Relative paths into src/server, not packages such as @apollo/server.
const SERVER = ['**/server/**', '!@apollo/server/**'];
const FLEET = ['**/fleet/**'];
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
    rules: room(['**/erp/**', '**/domain/**', '**/graphql/**', ...SERVER, ...FLEET, ...CONFIG, ...ENTRY], 'the simulator imports nothing of the subgraph'),
  },
  {
    // The ERP client knows nothing of the domain, GraphQL, the server or the configuration (it takes options).
    files: ['src/erp/**/*.ts'],
    rules: room(['**/domain/**', '**/graphql/**', ...SERVER, ...SIMULATOR, ...FLEET, ...CONFIG, ...ENTRY], 'erp/ is the bottom room: it imports only itself'),
  },
  {
    files: ['src/domain/**/*.ts'],
    rules: room(['**/graphql/**', ...SERVER, ...SIMULATOR, ...FLEET, ...CONFIG, ...ENTRY], 'domain/ may import erp/ only'),
  },
  {
    files: ['src/graphql/**/*.ts'],
    rules: room([...SERVER, ...SIMULATOR, ...FLEET, ...CONFIG, ...ENTRY], 'graphql/ may import domain/ (and erp/ types) only'),
  },
  {
    // Redis-backed implementations of erp/ and domain/ ports: they take options, never the configuration.
    files: ['src/fleet/**/*.ts'],
    rules: room(['**/graphql/**', ...SERVER, ...SIMULATOR, ...CONFIG, ...ENTRY], 'fleet/ may import erp/ and domain/ only'),
  },
  {
    files: ['src/server/**/*.ts'],
    rules: room([...SIMULATOR, ...ENTRY], 'server/ is the composition root: the simulator is started by main.ts, not wired here'),
  },
  {
    // Type-aware rules where a mistake is silent at run time: a promise nobody awaits or handles (an unhandled
    // rejection, or work that outlives its request), and a promise passed where a plain value or callback is expected.
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

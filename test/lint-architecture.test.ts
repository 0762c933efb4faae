import { join } from 'node:path';
import { ESLint, type Linter } from 'eslint';

/**
 * The room arrows are held by lint (eslint.config.js): a wrong import in each direction is fed through the project's
 * own configuration as if it were a file in that room, and must be an error; the allowed directions must pass.
 */
// The config array itself, so ESLint need not import the file (jest's module system has no dynamic import).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const config = require('../eslint.config.js') as ESLint.Options['overrideConfig'];
// The probes are virtual files no tsconfig knows: the type-aware rules (which need the project) are switched off for
// them; the room rules under test need no types.
const untyped: Linter.Config = {
  files: ['**/*.ts'],
  languageOptions: { parserOptions: { projectService: false, project: null } },
  rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off' },
};
const base: Linter.Config[] = Array.isArray(config) ? (config as Linter.Config[]) : [];
const eslint = new ESLint({ cwd: join(__dirname, '..'), overrideConfigFile: true, overrideConfig: [...base, untyped] });

async function importErrors(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${source}\nexport const probe = value;\n`, { filePath: join(__dirname, '..', file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('lint holds the architecture', () => {
  it.each<[string, string, string]>([
    ['simulator -> erp', 'src/simulator/probe-a.ts', "import { value } from '../erp/client';"],
    ['simulator -> server', 'src/simulator/probe-b.ts', "import { value } from '../server/app';"],
    ['simulator -> config', 'src/simulator/probe-c.ts', "import { value } from '../config';"],
    ['erp -> domain', 'src/erp/probe-d.ts', "import { value } from '../domain/model';"],
    ['erp -> graphql', 'src/erp/layers/probe-e.ts', "import { value } from '../../graphql/errors';"],
    ['erp -> config', 'src/erp/probe-f.ts', "import { value } from '../config';"],
    ['erp -> simulator', 'src/erp/probe-g.ts', "import { value } from '../simulator/server';"],
    ['domain -> graphql', 'src/domain/probe-h.ts', "import { value } from '../graphql/context';"],
    ['domain -> server', 'src/domain/probe-i.ts', "import { value } from '../server/metrics';"],
    ['domain -> config', 'src/domain/probe-j.ts', "import { value } from '../config';"],
    ['graphql -> server', 'src/graphql/resolvers/probe-k.ts', "import { value } from '../../server/errors';"],
    ['graphql -> simulator', 'src/graphql/probe-l.ts', "import { value } from '../simulator/dataset';"],
    ['graphql -> config', 'src/graphql/probe-m.ts', "import { value } from '../config';"],
    ['server -> simulator', 'src/server/probe-n.ts', "import { value } from '../simulator/server';"],
    ['domain -> fleet', 'src/domain/probe-u.ts', "import { value } from '../fleet/idempotency';"],
  ])('%s is refused', async (_name, file, source) => {
    expect(await importErrors(file, source)).toHaveLength(1);
  });

  it.each<[string, string, string]>([
    ['graphql -> domain', 'src/graphql/probe-o.ts', "import { value } from '../domain/model';"],
    ['domain -> erp', 'src/domain/probe-p.ts', "import { value } from '../erp/client';"],
    ['server -> graphql', 'src/server/probe-q.ts', "import { value } from '../graphql/schema';"],
    ['server -> config', 'src/server/probe-r.ts', "import { value } from '../config';"],
    ['simulator -> itself', 'src/simulator/probe-s.ts', "import { value } from './server';"],
    ['graphql -> the @apollo/server package (not src/server)', 'src/graphql/probe-t.ts', "import { value } from '@apollo/server/errors';"],
    ['server -> fleet', 'src/server/probe-w.ts', "import { value } from '../fleet/redis';"],
  ])('%s is allowed', async (_name, file, source) => {
    expect(await importErrors(file, source)).toEqual([]);
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { mergeTypeDefs } from '@graphql-tools/merge';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers';

/** The SDL lives in schema/*.graphql (schema-first); this finds it from src/ and from dist/ alike. */
export const SCHEMA_DIR = join(__dirname, '..', '..', 'schema');

export function loadTypeDefs(dir = SCHEMA_DIR) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.graphql')).sort();
  return mergeTypeDefs(files.map((f) => readFileSync(join(dir, f), 'utf8')));
}

export function buildSchema(): GraphQLSchema {
  return buildSubgraphSchema([{ typeDefs: loadTypeDefs(), resolvers: resolvers as GraphQLResolverMap<unknown> }]);
}

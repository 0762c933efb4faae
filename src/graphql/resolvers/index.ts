import { GraphQLScalarType, Kind } from 'graphql';
import type { Resolvers } from '../generated/resolvers-types';
import { userInputError } from '../errors';
import { Contract, Customer, Product, Project } from './entities';
import { Mutation } from './mutation';
import { AfterSaleServiceOptions } from './options';
import { Query } from './query';
import { AfterSaleService } from './service';
import { Subscription } from './subscription';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** DateTime is output-only in practice; as input it accepts ISO 8601 with an offset. */
const DateTime = new GraphQLScalarType<string, string>({
  name: 'DateTime',
  serialize: (v) => String(v),
  parseValue: (v) => {
    if (typeof v !== 'string' || !ISO.test(v)) throw userInputError('DateTime must be ISO 8601 with an offset');
    return v;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING || !ISO.test(ast.value)) throw userInputError('DateTime must be ISO 8601 with an offset');
    return ast.value;
  },
});

export const resolvers: Resolvers = {
  DateTime,
  Query,
  Mutation,
  Subscription,
  AfterSaleService,
  AfterSaleServicePage: {
    items: (p) => p.items,
    pageInfo: (p) => p,
  },
  AfterSaleServicePageInfo: {
    hasNextPage: (p) => p.page < p.totalPages,
  },
  // The domain keeps the ERP's name (`id`); the API calls it `key` so no client cache takes it for an identity.
  AfterSaleErpField: {
    key: (f) => f.id,
  },
  AfterSaleServiceOptions,
  Customer,
  Contract,
  Product,
  Project,
};

import type { GraphQLContext } from '../context';
import type { QueryResolvers } from '../generated/resolvers-types';
import { listInput } from './list-args';

export const Query: QueryResolvers<GraphQLContext> = {
  afterSaleServices: (_root, args, ctx) => ctx.services.services.list(listInput(args)),
  afterSaleService: (_root, { id }, ctx) => ctx.services.services.byId(id),
  afterSaleServiceOptions: (_root, _args, ctx) => ctx.services.options(),
};

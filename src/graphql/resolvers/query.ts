import type { GraphQLContext } from '../context';
import { guarded } from '../errors';
import type { QueryResolvers } from '../generated/resolvers-types';
import { afterSaleServiceOptions } from './options';
import { listQuery } from './paging';

export const Query: QueryResolvers<GraphQLContext> = {
  afterSaleServices: (_root, args, ctx) => guarded(() => {
    const query = listQuery(args, ctx.maxPageSize);
    return ctx.erpSlots(() => ctx.repository.list(ctx.erp, query));
  }),
  afterSaleService: (_root, { id }, ctx) => guarded(() => ctx.serviceLoader.load(id)),
  afterSaleServiceOptions,
};

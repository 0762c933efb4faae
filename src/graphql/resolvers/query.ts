import type { GraphQLContext } from '../context';
import type { QueryResolvers } from '../generated/resolvers-types';
import { itemSelection } from '../selection';
import { listInput } from './list-args';

export const Query: QueryResolvers<GraphQLContext> = {
  afterSaleServices: (_root, args, ctx, info) => ctx.services.services.list(listInput(args), undefined, itemSelection(info)),
  afterSaleService: (_root, { id }, ctx) => ctx.services.services.byId(id),
  afterSaleServiceOptions: (_root, _args, ctx) => ctx.services.options(),
};

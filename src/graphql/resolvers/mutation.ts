import type { GraphQLContext } from '../context';
import type { MutationResolvers } from '../generated/resolvers-types';

export const Mutation: MutationResolvers<GraphQLContext> = {
  handleService: (_root, { input }, ctx) => ctx.services.handle(input),
};

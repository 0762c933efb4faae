import { IdempotencyConflictError } from '../../domain/idempotency';
import type { GraphQLContext } from '../context';
import { guarded, userInputError } from '../errors';
import type { MutationResolvers } from '../generated/resolvers-types';

export const Mutation: MutationResolvers<GraphQLContext> = {
  handleService: (_root, { input }, ctx) =>
    guarded(async () => {
      const { idempotencyKey, ...fields } = input;
      if (idempotencyKey !== undefined && idempotencyKey !== null && (idempotencyKey.length < 1 || idempotencyKey.length > 200)) {
        throw userInputError('idempotencyKey must be 1 to 200 characters', { field: 'idempotencyKey' });
      }
      try {
        return await ctx.handler.handle(ctx.erp, fields, idempotencyKey);
      } catch (e) {
        if (e instanceof IdempotencyConflictError) throw userInputError(e.message, { field: 'idempotencyKey' });
        throw e;
      }
    }),
};

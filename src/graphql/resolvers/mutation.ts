import { GraphQLError } from 'graphql';
import {
  IdempotencyConflictError,
  IdempotencyKeyInUseError,
  IdempotencyKeyInvalidError,
  IdempotencyStoreFullError,
} from '../../domain/idempotency';
import type { GraphQLContext } from '../context';
import { ErrorCode, guarded, userInputError } from '../errors';
import type { MutationResolvers } from '../generated/resolvers-types';

/** The idempotency layer's errors in GraphQL terms; `retryable` tells a client that the same call may succeed later. */
function fromIdempotency(e: unknown): unknown {
  if (e instanceof IdempotencyConflictError || e instanceof IdempotencyKeyInvalidError) return userInputError(e.message, { field: 'idempotencyKey' });
  if (e instanceof IdempotencyKeyInUseError) return new GraphQLError(e.message, { extensions: { code: ErrorCode.IdempotencyKeyInUse, retryable: true } });
  if (e instanceof IdempotencyStoreFullError) return new GraphQLError(e.message, { extensions: { code: ErrorCode.IdempotencyStoreFull, retryable: true } });
  return e;
}

export const Mutation: MutationResolvers<GraphQLContext> = {
  handleService: (_root, { input }, ctx) =>
    guarded(async () => {
      const { idempotencyKey, ...fields } = input;
      try {
        return await ctx.handler.handle(ctx.erp, fields, idempotencyKey);
      } catch (e) {
        throw fromIdempotency(e);
      }
    }),
};

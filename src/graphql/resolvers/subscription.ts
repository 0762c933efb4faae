import { ApolloServerErrorCode } from '@apollo/server/errors';
import { GraphQLError } from 'graphql';
import type { ServiceChange } from '../../domain/feed';
import type { GraphQLContext } from '../context';
import { ErrorCode } from '../errors';
import type { SubscriptionResolvers } from '../generated/resolvers-types';

const notHere = () =>
  new GraphQLError(
    'Subscriptions are served at /graphql over WebSocket (graphql-transport-ws), over SSE (Accept: text/event-stream) and on Apollo Router\'s HTTP callback protocol.',
    { extensions: { code: ApolloServerErrorCode.BAD_REQUEST } },
  );

/**
 * The change feed, one line as every resolver: the filter goes to the domain as it came (the domain checks it with the
 * list's own rules). A subscriber without a usable ERP identity is refused before any poller starts, as an HTTP
 * operation that needs the ERP is (401 there).
 */
export const Subscription: SubscriptionResolvers<GraphQLContext> = {
  afterSaleServiceChanged: {
    subscribe: (_root, { filter }, ctx) => {
      if (ctx.unauthenticated) throw new GraphQLError(ctx.unauthenticated, { extensions: { code: ErrorCode.Unauthenticated } });
      if (!ctx.feed) throw notHere();
      return ctx.feed.changes(filter ?? null);
    },
    // Each event is the domain's ServiceChange itself. Without one, the operation was executed as a plain request (a
    // subscription POSTed to an HTTP endpoint with no subscription transport): say where subscriptions are served.
    resolve: (change: ServiceChange | undefined) => {
      if (!change) throw notHere();
      return change;
    },
  },
};

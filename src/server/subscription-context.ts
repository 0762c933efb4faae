import { subscriptionScope, type ChangeFeed } from '../domain/feed';
import type { RequestServicesFactory } from '../domain/request-scope';
import type { CallContext } from '../erp/client';
import type { GraphQLContext } from '../graphql/context';
import { identityOf, type HeaderRecord, type IdentityOptions } from './identity';

/**
 * Builds one subscription's GraphQL context from the headers its transport has (graphql-ws: the upgrade request's
 * plus `connection_init`'s, see identity.ts `connectionHeaders`; SSE: the request's; callback: the router's request's).
 * Every transport calls this and nothing else, so identity, services and the feed are the same whichever carries
 * the events.
 */
export type SubscriptionContextFactory = (headers: HeaderRecord, requestId: string) => GraphQLContext;

export function subscriptionContexts(deps: {
  feed: Pick<ChangeFeed, 'subscribe'>;
  servicesFor: RequestServicesFactory;
  identity: IdentityOptions;
  /** Each event's detail reads get this long (ZB_REQUEST_DEADLINE_MS), from the event's first read. */
  deadlineMs: number;
}): SubscriptionContextFactory {
  return (headers, requestId) => {
    // The same rule as HTTP: x-zb-session, else the service account (unless required); a blank or conflicting value
    // is refused, never replaced by the service account.
    const identity = identityOf(headers, deps.identity);
    const call: CallContext = { auth: identity.auth, principal: identity.principal, requestId };
    const scope = subscriptionScope({ feed: deps.feed, servicesFor: deps.servicesFor, call, deadlineMs: deps.deadlineMs });
    return {
      requestId,
      ...(identity.refused ? { unauthenticated: identity.refused } : {}),
      services: scope.services,
      // Admission's byte budget is per HTTP operation; a subscription's events are bounded by the feed's buffers.
      reserve: () => true,
      feed: scope.feed,
    };
  };
}

import type { FeedAccess } from '../domain/feed';
import type { RequestServices } from '../domain/request-scope';

/** What every resolver of one GraphQL request shares. Built fresh per request (server/app.ts): nothing here crosses requests. */
export interface GraphQLContext {
  requestId: string;
  /** Why this request has no usable ERP identity (missing or blank session header); operations needing the ERP are refused. */
  unauthenticated?: string;
  /**
   * This request's services, already bound to its ERP identity, deadline and abort signal, its share of ERP call slots
   * and its detail loader (domain/request-scope.ts). Resolvers call them, one line each.
   */
  services: RequestServices;
  /** Reserves this request's estimated retained bytes from the process budget; false when it does not fit. */
  reserve(bytes: number): boolean;
  /**
   * The change feed, on the contexts subscription transports build (server/subscription-context.ts): the subscription
   * resolver starts its events here. Absent on a plain HTTP request.
   */
  feed?: FeedAccess;
}

import type { CallContext } from '../../erp/client';
import type { ServiceFilter } from '../filter';
import type { RequestServices, RequestServicesFactory } from '../request-scope';
import type { ChangeFeed } from './feed';
import type { ServiceChange } from './model';

/** What a subscription's resolvers reach the feed through (the GraphQL context's `feed`). */
export interface FeedAccess {
  /** The subscription's events; throws InputError (bad filter) or FeedLimitError before anything starts. */
  changes(filter: ServiceFilter | null | undefined): AsyncIterableIterator<ServiceChange>;
}

export interface SubscriptionScope {
  /** The request services every event's resolvers use: a fresh scope per event (its own detail loader and deadline). */
  services: RequestServices;
  feed: FeedAccess;
}

/**
 * One subscription's services. A request scope lives as long as its request; a subscription lives for hours, so one
 * detail loader would serve an event the detail it cached for an earlier one. Here every event gets a fresh request
 * scope (built on first use, by the same factory as an HTTP request's), with its own deadline of `deadlineMs`; the
 * events of one subscription are executed one after the other, so an event's resolvers all see its own scope. Detail
 * reads still in flight when the subscription ends are aborted.
 */
export function subscriptionScope(options: { feed: Pick<ChangeFeed, 'subscribe'>; servicesFor: RequestServicesFactory; call: CallContext; deadlineMs: number }): SubscriptionScope {
  const { feed, servicesFor, call, deadlineMs } = options;
  const ended = new AbortController();
  let current: RequestServices | undefined;
  // An event says the service changed: its details are read from the ERP, never from a read cache filled before.
  const scope = () => (current ??= servicesFor({ ...call, signal: ended.signal, deadline: Date.now() + deadlineMs, fresh: true }));
  const services: RequestServices = {
    services: {
      list: (input, parent) => scope().services.list(input, parent),
      byId: (id) => scope().services.byId(id),
    },
    handle: (request) => scope().handle(request),
    options: () => scope().options(),
  };
  return {
    services,
    feed: {
      changes(filter) {
        const events = feed.subscribe(call.auth, filter);
        const finish = async () => {
          ended.abort();
          return events.return?.() ?? { value: undefined, done: true as const };
        };
        const iterator: AsyncIterableIterator<ServiceChange> = {
          next: async () => {
            const result = await events.next();
            // The next event starts with a new scope: nothing cached for the previous one is served to it.
            current = undefined;
            if (result.done) ended.abort();
            return result;
          },
          return: finish,
          throw: finish,
          [Symbol.asyncIterator]: () => iterator,
        };
        return iterator;
      },
    },
  };
}

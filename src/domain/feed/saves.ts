import type { IdempotentHandler } from '../idempotency';
import type { ChangeFeed } from './feed';

type Handler = Pick<IdempotentHandler, 'handle'>;

/**
 * handleService through this subgraph, announced to the feed: a SAVED service reports UPDATED at once to the keys of
 * the saving identity whose window holds it (their pollers then poll early, so a service that no longer matches the
 * filter reports REMOVED next). The save's own outcome is untouched.
 */
export function announcingSaves(handler: Handler, feed: Pick<ChangeFeed, 'touched'>): Handler {
  return {
    handle: async (call, input, idempotencyKey) => {
      const result = await handler.handle(call, input, idempotencyKey);
      if (result.outcome === 'SAVED' && result.service) feed.touched(call.auth.identity, result.service.id);
      return result;
    },
  };
}

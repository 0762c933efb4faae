/**
 * Why a subscription ends or is refused, as the feed says it. The GraphQL layer's one classifier (graphql/errors.ts)
 * turns each into its `extensions.code`; the messages are public (no client input, no ERP text, no token).
 */

/** The subscriber did not take its events fast enough: its bounded buffer filled, so the subscription ends. */
export class FeedOverflowError extends Error {
  constructor(readonly limit: { events: number; bytes: number }) {
    super(`The subscription fell too far behind (more than ${limit.events} events or ${limit.bytes} bytes waiting) and was ended; subscribe again.`);
    this.name = new.target.name;
  }
}

export type FeedLimit = 'subscriptions' | 'subscriptionsPerIdentity' | 'pollers' | 'pollersPerIdentity';

const LIMIT_TEXT: Record<FeedLimit, string> = {
  subscriptions: 'subscriptions on this server',
  subscriptionsPerIdentity: 'subscriptions of one ERP identity',
  pollers: 'distinct filters watched on this server',
  pollersPerIdentity: 'distinct filters watched for one ERP identity',
};

/** A subscription refused at its start by one of the feed's bounds (ZB_FEED_MAX_*). */
export class FeedLimitError extends Error {
  constructor(
    readonly limit: FeedLimit,
    readonly max: number,
  ) {
    super(`At most ${max} ${LIMIT_TEXT[limit]}; try again later.`);
    this.name = new.target.name;
  }
}

/** The ERP refused the subscription's own session (expired, revoked): the feed never falls back to another identity. */
export class FeedUnauthenticatedError extends Error {
  constructor() {
    super('The ERP session is not valid; sign in to the ERP again and subscribe again.');
    this.name = new.target.name;
  }
}

/** The server is shutting down: no new subscription starts here (a client reconnects, through the gateway, elsewhere). */
export class FeedClosedError extends Error {
  constructor() {
    super('The server is shutting down; subscribe again.');
    this.name = new.target.name;
  }
}

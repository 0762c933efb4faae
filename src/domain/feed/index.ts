/** The change feed of after-sales services (README "Live updates"): what the composition root and transports use. */
export { ChangeFeed, feedKey, type ChangeFeedOptions, type FeedLimits } from './feed';
export { FeedClosedError, FeedLimitError, FeedOverflowError, FeedUnauthenticatedError, type FeedLimit } from './errors';
export { InProcessBus, InProcessLease } from './memory';
export type { ChangeKind, FeedMessage, ListRow, RowChange, ServiceChange, WindowRow } from './model';
export type { BusListener, BusSubscription, FeedBus, FeedLease, FeedObserver, PollOutcome } from './ports';
export { announcingSaves } from './saves';
export { subscriptionScope, type FeedAccess, type SubscriptionScope } from './scope';
export { ListWindow, type WindowRead, type WindowSource } from './source';

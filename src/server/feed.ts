import type { Logger } from 'pino';
import type { Config } from '../config';
import { ChangeFeed, ListWindow, type FeedBus, type FeedLease, type FeedObserver } from '../domain/feed';
import type { ListRules } from '../domain/filter';
import type { ServiceMapper } from '../domain/mapping';
import type { ErpClient } from '../erp/client';
import type { ErpObserver } from '../erp/observer';
import type { Metrics } from './metrics';

/**
 * How busy the process-wide ERP call slots are, from the limiter's own reports (ErpObserver.queue): the feed polls
 * only when no call waits for a slot and at least one request's share (ZB_DETAIL_CONCURRENCY) is free. That is how
 * polls yield to user requests without a priority in the limiter (a poll that does start still queues FIFO with them).
 */
export class ErpLoad {
  private active = 0;
  private pending = 0;

  constructor(private readonly maxConcurrent: number, private readonly reserve: number) {}

  /** The ERP observer, reporting the load here as well. */
  observe(observer: ErpObserver): ErpObserver {
    return {
      ...observer,
      queue: (active, pending) => {
        this.active = active;
        this.pending = pending;
        observer.queue?.(active, pending);
      },
    };
  }

  headroom(): boolean {
    return this.pending === 0 && this.active <= Math.max(0, this.maxConcurrent - this.reserve);
  }
}

function feedObserver(logger: Logger, metrics: Metrics): FeedObserver {
  return {
    poll(outcome, detail) {
      metrics.feedPolls.inc({ outcome });
      // The key is a hash; filters, identities and tokens never reach a log line.
      if (outcome === 'error') logger.warn({ msg: 'feed poll failed; backing off', code: detail?.code, durationMs: detail?.durationMs });
    },
    events(kind, count) {
      metrics.feedEvents.inc({ kind }, count);
    },
    gauges(subscriptions, pollers) {
      metrics.feedSubscriptions.set(subscriptions);
      metrics.feedPollers.set(pollers);
    },
    ended(reason) {
      metrics.feedEnded.inc({ reason });
      if (reason !== 'shutdown') logger.info({ msg: 'feed subscription ended', reason });
    },
    refused(limit) {
      metrics.feedRefused.inc({ limit });
      logger.warn({ msg: 'feed subscription refused', limit });
    },
  };
}

/**
 * The change feed as configured (ZB_FEED_*): one process-wide ChangeFeed over the same ERP client, mapper and list
 * rules as the list. `lease` and `bus` are the fleet's when given (src/fleet), else in process.
 */
export function createChangeFeed(deps: {
  config: Config;
  client: ErpClient;
  mapper: ServiceMapper;
  rules: ListRules;
  load: ErpLoad;
  logger: Logger;
  metrics: Metrics;
  lease?: FeedLease;
  bus?: FeedBus;
}): ChangeFeed {
  const { config } = deps;
  return new ChangeFeed({
    source: new ListWindow(deps.client, deps.mapper),
    rules: deps.rules,
    intervalMs: config.ZB_FEED_POLL_MS,
    maxRows: config.ZB_FEED_MAX_ROWS,
    buffer: { events: config.ZB_FEED_BUFFER_EVENTS, bytes: config.ZB_FEED_BUFFER_BYTES },
    limits: {
      subscriptions: config.ZB_FEED_MAX_SUBSCRIPTIONS,
      subscriptionsPerIdentity: config.ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY,
      pollers: config.ZB_FEED_MAX_POLLERS,
      pollersPerIdentity: config.ZB_FEED_MAX_POLLERS_PER_IDENTITY,
    },
    pollTimeoutMs: config.ZB_REQUEST_DEADLINE_MS,
    // A quarter of the process's ERP call slots at most: the rest stays for user requests.
    maxConcurrentPolls: Math.max(1, Math.floor(config.ZB_MAX_CONCURRENT_CALLS / 4)),
    headroom: () => deps.load.headroom(),
    observer: feedObserver(deps.logger.child({ component: 'feed' }), deps.metrics),
    ...(deps.lease ? { lease: deps.lease } : {}),
    ...(deps.bus ? { bus: deps.bus } : {}),
  });
}

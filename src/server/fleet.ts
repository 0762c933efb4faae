import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config';
import type { FeedBus, FeedLease } from '../domain/feed';
import { RedisFeedBus } from '../fleet/feed-bus';
import { RedisFeedLease } from '../fleet/feed-lease';
import { RedisIdempotencyStore } from '../fleet/idempotency';
import type { FleetObserver } from '../fleet/observer';
import { FleetPermits } from '../fleet/permits';
import { RedisReadCacheStore } from '../fleet/read-cache';
import { FleetRedis } from '../fleet/redis';
import { RedisSessionStore } from '../fleet/session';

/**
 * The fleet's shared state (README "Running several replicas"), built from ZB_REDIS_* and ZB_FLEET_*: one Redis
 * connection and the adapters over it. Absent (undefined) without ZB_REDIS_URL: everything stays in process.
 */
export interface Fleet {
  redis: FleetRedis;
  session: RedisSessionStore;
  idempotency: RedisIdempotencyStore;
  /** ZB_FLEET_MAX_CONCURRENT_CALLS set: the wire layer that takes a fleet permit per ERP call. */
  permits: FleetPermits | undefined;
  /** ZB_CACHE_TTL_MS > 0: the shared read cache store. */
  cacheStore: RedisReadCacheStore | undefined;
  /** The change feed's lease (one poller per key across the fleet) and bus (Redis pub/sub), for createChangeFeed. */
  feed: { lease: FeedLease; bus: FeedBus };
  /** For /health/ready: 'ok', or why Redis is not usable (never the URL). */
  redisStatus(): string;
  close(): Promise<void>;
}

/** Metrics of the fleet adapters, on the app's registry. Labels are command names and outcomes: never keys or tokens. */
export function fleetMetrics(registry: Registry) {
  const r = [registry];
  return {
    redisCommands: new Counter({ name: 'zb_redis_commands_total', help: 'Redis commands and scripts, by operation and outcome (ok, error, timeout, skipped)', labelNames: ['op', 'outcome'], registers: r }),
    redisLatency: new Histogram({
      name: 'zb_redis_command_duration_seconds', help: 'Redis command latency (permits.acquire includes waiting for a permit)', labelNames: ['op'], registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    redisUp: new Gauge({ name: 'zb_redis_up', help: '1 while the Redis connection is ready', registers: r }),
    permitsHeld: new Gauge({ name: 'zb_fleet_permits_held', help: 'Fleet ERP call permits this replica holds', registers: r }),
    permitsWaiting: new Gauge({ name: 'zb_fleet_permits_waiting', help: 'ERP calls of this replica waiting for a fleet permit', registers: r }),
    permitEvents: new Counter({ name: 'zb_fleet_permit_events_total', help: 'Fleet permit events: fallback (per-replica share used), lost, timeout', labelNames: ['event'], registers: r }),
    sharedCache: new Counter({ name: 'zb_fleet_cache_total', help: 'Shared read cache lookups: hit, miss, error', labelNames: ['result'], registers: r }),
    singleFlight: new Counter({ name: 'zb_fleet_single_flight_total', help: 'Cold reads across the fleet: lead, joined (served what another replica read), gave-up', labelNames: ['outcome'], registers: r }),
    session: new Counter({ name: 'zb_fleet_session_total', help: 'Service session: adopted (the fleet token), login (for the fleet), local (Redis unreachable)', labelNames: ['event'], registers: r }),
    idempotency: new Counter({ name: 'zb_fleet_idempotency_total', help: 'Keyed saves: claimed, replayed, waited, recovered, unavailable', labelNames: ['event'], registers: r }),
    feed: new Counter({ name: 'zb_fleet_feed_total', help: 'Change feed over Redis: lease-taken, lease-lost, bus-gap (subscriber connection back: re-synchronised), bus-oversize (message refused: snapshot sent instead), bus-invalid', labelNames: ['event'], registers: r }),
  };
}

function fleetObserver(logger: Logger, metrics: ReturnType<typeof fleetMetrics>): FleetObserver {
  return {
    redisCommand(op, outcome, ms) {
      metrics.redisCommands.inc({ op, outcome });
      if (outcome !== 'skipped') metrics.redisLatency.observe({ op }, ms / 1000);
    },
    redisState(up, reason) {
      metrics.redisUp.set(up ? 1 : 0);
      if (up) logger.info({ msg: 'redis connected' });
      else logger.warn({ msg: 'redis unavailable: shared state degraded (see README "Running several replicas")', reason });
    },
    permits(held, waiting) {
      metrics.permitsHeld.set(held);
      metrics.permitsWaiting.set(waiting);
    },
    permitEvent(event) {
      metrics.permitEvents.inc({ event });
      if (event === 'lost') logger.warn({ msg: 'fleet permit lost while its ERP call was in flight' });
    },
    sharedCache: (result) => metrics.sharedCache.inc({ result }),
    singleFlight: (outcome) => metrics.singleFlight.inc({ outcome }),
    session(event) {
      metrics.session.inc({ event });
      // Never the token: only what happened.
      logger.info({ msg: 'fleet service session', event });
    },
    idempotency: (event) => metrics.idempotency.inc({ event }),
    feedLease: (event) => metrics.feed.inc({ event: `lease-${event}` }),
    feedBus(event) {
      metrics.feed.inc({ event: `bus-${event}` });
      if (event === 'oversize') logger.warn({ msg: 'feed message over the bus bound: a snapshot is sent instead' });
      if (event === 'gap') logger.info({ msg: 'feed bus reconnected: subscribers re-synchronise' });
    },
  };
}

/**
 * The largest feed message on Redis pub/sub: far above a snapshot of the default window (200 rows), below Redis's
 * pub/sub output buffer limits (8 MB soft, 32 MB hard), past which Redis would drop a subscriber connection.
 */
const FEED_MESSAGE_MAX_BYTES = 4 * 1024 * 1024;

export function createFleet(config: Config, logger: Logger, registry: Registry): Fleet | undefined {
  if (!config.ZB_REDIS_URL) return undefined;
  const observer = fleetObserver(logger.child({ component: 'fleet' }), fleetMetrics(registry));
  const redis = new FleetRedis({ url: config.ZB_REDIS_URL, keyPrefix: config.ZB_REDIS_KEY_PREFIX, commandTimeoutMs: config.ZB_REDIS_COMMAND_TIMEOUT_MS, observer });
  // A save and its confirming re-read take at most 2 x ZB_TIMEOUT_MS on the wire; the lease is a bit above, and refreshed.
  const leaseMs = 2 * config.ZB_TIMEOUT_MS + 2000;
  // The longest one read may take with its retries (the request deadline ends any caller's wait sooner).
  const maxReadMs = (config.ZB_RETRIES + 1) * config.ZB_TIMEOUT_MS + config.ZB_RETRIES * config.ZB_RETRY_MAX_MS;
  const permits = config.ZB_FLEET_MAX_CONCURRENT_CALLS === undefined
    ? undefined
    : new FleetPermits(redis, { limit: config.ZB_FLEET_MAX_CONCURRENT_CALLS, leaseMs: config.ZB_FLEET_PERMIT_LEASE_MS, maxWaitMs: config.ZB_QUEUE_TIMEOUT_MS, observer });
  const cacheStore = config.ZB_CACHE_TTL_MS > 0
    ? new RedisReadCacheStore(redis, {
        flightMs: config.ZB_TIMEOUT_MS,
        maxReadMs,
        entryLifeMs: config.ZB_CACHE_TTL_MS + config.ZB_CACHE_STALE_MS,
        maxEntryBytes: Math.min(1024 * 1024, config.ZB_CACHE_MAX_BYTES),
        observer,
      })
    : undefined;
  const idempotency = new RedisIdempotencyStore(redis, {
    ttlMs: config.ZB_IDEMPOTENCY_TTL_MS,
    leaseMs,
    maxWaitMs: config.ZB_REQUEST_DEADLINE_MS,
    maxPending: config.ZB_MAX_INFLIGHT_REQUESTS,
    observer,
  });
  // A dead holder's keys are taken over within the lease: a few polls' time, at least 3 s (renewal round trips and a
  // busy event loop must not cost a live holder its key).
  const feedLeaseMs = Math.max(3000, 3 * config.ZB_FEED_POLL_MS);
  // The longest a live poller goes between two acquires: its longest back-off (16 intervals, 60 s unless the interval
  // is longer; domain/feed/poller.ts) plus one poll's deadline and an interval's jitter.
  const feedStaleMs = Math.max(config.ZB_FEED_POLL_MS, Math.min(16 * config.ZB_FEED_POLL_MS, 60_000)) + config.ZB_REQUEST_DEADLINE_MS + 2 * config.ZB_FEED_POLL_MS;
  const feedLease = new RedisFeedLease(redis, { leaseMs: feedLeaseMs, staleMs: feedStaleMs, observer });
  const feedBus = new RedisFeedBus(redis, { maxMessageBytes: FEED_MESSAGE_MAX_BYTES, observer });
  return {
    redis,
    feed: { lease: feedLease, bus: feedBus },
    session: new RedisSessionStore(redis, { lockMs: config.ZB_TIMEOUT_MS + 2000, observer }),
    idempotency,
    permits,
    cacheStore,
    redisStatus: () => {
      const status = redis.status();
      if (!status.up) return `unavailable (${status.reason ?? 'down'})`;
      const bus = feedBus.status();
      return bus.up ? 'ok' : `unavailable (feed bus: ${bus.reason ?? 'down'})`;
    },
    close: async () => {
      // After the feed has stopped (app.ts closes it first): free any key still held so another replica takes over now.
      await feedLease.close();
      await feedBus.close();
      permits?.close();
      cacheStore?.close();
      idempotency.close();
      await redis.close();
    },
  };
}

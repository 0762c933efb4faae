import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics at GET /metrics. One registry per app instance, so tests can run several apps side by side. */
export function createMetrics() {
  const registry = new Registry();
  // ERP calls in flight and queued, as the client last reported them (every call start and end): read at scrape time,
  // so a report is two number writes instead of two gauge updates per call.
  const erpQueue = { active: 0, pending: 0 };
  // The same for the GraphQL admission budget (admission.ts reports on every request's entry, reservation and exit).
  const graphqlAdmission = { operations: 0, bytes: 0 };
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    erpCalls: new Counter({ name: 'zb_erp_calls_total', help: 'ERP calls on the wire, by endpoint and outcome', labelNames: ['endpoint', 'outcome'], registers: r }),
    erpLatency: new Histogram({
      name: 'zb_erp_call_duration_seconds', help: 'ERP call latency', labelNames: ['endpoint'], registers: r,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    erpRetries: new Counter({ name: 'zb_erp_retries_total', help: 'ERP read retries', labelNames: ['endpoint'], registers: r }),
    erpLogins: new Counter({ name: 'zb_erp_logins_total', help: 'ERP logins of the service account', labelNames: ['outcome'], registers: r }),
    breakerState: new Gauge({ name: 'zb_erp_breaker_open', help: '1 open, 0.5 half-open, 0 closed', registers: r }),
    coalesced: new Counter({ name: 'zb_erp_coalesced_total', help: 'ERP reads that joined an identical call in flight', labelNames: ['endpoint'], registers: r }),
    cache: new Counter({ name: 'zb_erp_cache_total', help: 'ERP read cache lookups', labelNames: ['endpoint', 'result'], registers: r }),
    erpQueue,
    inFlight: new Gauge({
      name: 'zb_erp_in_flight', help: 'ERP calls in flight', registers: r,
      collect() {
        this.set(erpQueue.active);
      },
    }),
    queued: new Gauge({
      name: 'zb_erp_queued', help: 'ERP calls waiting for a slot', registers: r,
      collect() {
        this.set(erpQueue.pending);
      },
    }),
    graphqlAdmission,
    graphqlInFlight: new Gauge({
      name: 'zb_graphql_in_flight', help: 'GraphQL operations being executed', registers: r,
      collect() {
        this.set(graphqlAdmission.operations);
      },
    }),
    graphqlShed: new Counter({ name: 'zb_graphql_shed_total', help: 'GraphQL requests refused with 503 SERVER_BUSY (ZB_MAX_INFLIGHT_REQUESTS or ZB_INFLIGHT_BUDGET_BYTES)', registers: r }),
    graphqlRefused: new Counter({
      name: 'zb_graphql_refused_total', help: 'GraphQL requests refused before execution, by reason (cost, budget, unauthenticated, body_timeout, body_too_large)',
      labelNames: ['reason'], registers: r,
    }),
    graphqlBudgetBytes: new Gauge({
      name: 'zb_graphql_inflight_budget_bytes', help: 'Estimated bytes reserved by the operations executing (of ZB_INFLIGHT_BUDGET_BYTES)', registers: r,
      collect() {
        this.set(graphqlAdmission.bytes);
      },
    }),
    graphqlDuration: new Histogram({
      name: 'zb_graphql_request_duration_seconds', help: 'GraphQL request duration', labelNames: ['operation', 'status'], registers: r,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    // Live updates (README "Live updates"): labels are outcomes, kinds and limits, never keys, filters or identities.
    feedSubscriptions: new Gauge({ name: 'zb_feed_subscriptions', help: 'Active subscriptions to the change feed', registers: r }),
    feedPollers: new Gauge({ name: 'zb_feed_pollers', help: 'Keys (ERP identity + filter) with subscribers in this process, each with its poller', registers: r }),
    feedPolls: new Counter({
      name: 'zb_feed_polls_total', help: 'Feed poll attempts by outcome: ok, error, unstable (list moved while paging), deferred (yielded to user requests), standby (another replica polls)',
      labelNames: ['outcome'], registers: r,
    }),
    feedEvents: new Counter({ name: 'zb_feed_events_total', help: 'Change events handed to subscribers, by kind (one per subscriber)', labelNames: ['kind'], registers: r }),
    feedEnded: new Counter({ name: 'zb_feed_subscriptions_ended_total', help: 'Subscriptions ended by the server, by reason (overflow, unauthenticated, shutdown)', labelNames: ['reason'], registers: r }),
    feedRefused: new Counter({ name: 'zb_feed_refused_total', help: 'Subscriptions refused at their start by a limit (ZB_FEED_MAX_*)', labelNames: ['limit'], registers: r }),
    wsConnections: new Gauge({ name: 'zb_feed_ws_connections', help: 'Open graphql-ws (WebSocket) connections', registers: r }),
    // Beside zb_feed_subscriptions (all transports, as the feed counts them): what each HTTP transport holds open.
    transportSubscriptions: new Gauge({
      name: 'zb_feed_transport_subscriptions', help: 'Open subscriptions by HTTP transport: sse (event streams), callback (Apollo Router callback mode)',
      labelNames: ['transport'], registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

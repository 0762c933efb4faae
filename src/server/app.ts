import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { announcingSaves, type ChangeFeed } from '../domain/feed';
import { loadFieldMap, type FieldMap } from '../domain/field-map';
import { IdempotentHandler, MemoryIdempotencyStore } from '../domain/idempotency';
import { ServiceMapper } from '../domain/mapping';
import { OptionLookupService } from '../domain/options';
import { SaveRecovery } from '../domain/recovery';
import { AfterSaleRepository } from '../domain/repository';
import { requestScope, type RequestServicesFactory, type SharedServices } from '../domain/request-scope';
import type { CallContext } from '../erp/client';
import type { Credentials } from '../erp/layers/session';
import { createErpStack, type ErpStack } from '../erp/stack';
import { erpStackOptions } from './erp-options';
import type { GraphQLContext } from '../graphql/context';
import { buildSchema } from '../graphql/schema';
import { Admission, admissionPlugin } from './admission';
import { documentCache, queryTextCache } from './document-cache';
import { errorFormatter } from './errors';
import { createHttpServer } from './http';
import { graphqlEndpoint } from './graphql-endpoint';
import { identityOf } from './identity';
import { createLogger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { createChangeFeed, ErpLoad } from './feed';
import { createFleet } from './fleet';
import { erpObserver } from './observer';
import { errorCapPlugin, requestLogPlugin } from './plugins';
import { inlineTraceWhenAsked } from './inline-trace';
import { operationTracePlugin } from './tracing-plugin';
import { readiness } from './readiness';
import { router } from './routes';
import { subscriptionContexts } from './subscription-context';
import { attachGraphqlWs } from './subscriptions-ws';
import { sseSubscriptions } from './subscriptions-sse';
import { subscriptionCallback } from './subscription-callback';

export interface AppOptions {
  config: Config;
  /** Where the ERP is: ZB_BASE_URL, or the embedded simulator's URL. */
  erpBaseUrl: string;
  /** The service account; absent when every request must bring its own ERP session. */
  credentials?: Credentials;
  logger?: Logger;
  fieldMap?: FieldMap;
  /**
   * How each request's services are built from the process-wide ones: `requestScope(shared)` unless given. An
   * extension point for code that embeds the app (benchmarks, tests), not reachable from configuration: a benchmark
   * passes `(shared) => requestScope(shared, { detailLoader })` with a detail loader of its own (bench/).
   */
  requestServices?: (shared: SharedServices) => RequestServicesFactory;
}

export interface App {
  url: string;
  port: number;
  stack: ErpStack;
  metrics: Metrics;
  /** The change feed behind Subscription.afterSaleServiceChanged (README "Live updates"). */
  feed: ChangeFeed;
  /** Readiness turns 503 at once; requests in flight go on. Called first on SIGTERM. */
  beginShutdown(): void;
  /** Stops taking connections, lets requests in flight finish (up to ZB_SHUTDOWN_TIMEOUT_MS), closes the ERP client. */
  close(): Promise<void>;
}

/**
 * The composition root: ERP client, domain, GraphQL server and the HTTP routes, wired from the configuration. It is
 * the one place where settings become objects; the HTTP edge (http.ts), the GraphQL endpoint (graphql-endpoint.ts),
 * identity (identity.ts), admission (admission.ts), readiness and routes live in their own modules.
 */
export async function startApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.ZB_LOG_LEVEL);
  const metrics = createMetrics();
  // The limiter's load is also what the change feed's polls yield to (feed.ts).
  const load = new ErpLoad(config.ZB_MAX_CONCURRENT_CALLS, config.ZB_DETAIL_CONCURRENCY);
  const observer = load.observe(erpObserver(logger, metrics));
  // ZB_REDIS_URL: the service session, idempotency keys, read cache and ERP budget are shared with the other replicas.
  const fleet = createFleet(config, logger, metrics.registry);
  const erpOptions = erpStackOptions(config, options.erpBaseUrl, options.credentials);
  // The stack builds the read cache itself from the options (ZB_CACHE_*), behind the write fence coalescing honours too.
  const stack = createErpStack(
    fleet
      ? {
          ...erpOptions,
          session: { ...erpOptions.session, shared: fleet.session },
          ...(fleet.cacheStore ? { cacheStore: fleet.cacheStore } : {}),
          ...(fleet.permits ? { wireLayers: [fleet.permits] } : {}),
        }
      : erpOptions,
    observer,
  );
  const fieldMap = options.fieldMap ?? loadFieldMap(config.ZB_FIELD_MAP);
  const mapper = new ServiceMapper(fieldMap, config.ZB_TIMEZONE);
  const repository = new AfterSaleRepository(stack.client, mapper, {
    saveSuccess: new RegExp(config.ZB_SAVE_SUCCESS_PATTERN),
    notFound: new RegExp(config.ZB_NOT_FOUND_PATTERN),
  }, stack.serviceCache);
  const handler = fleet
    ? new IdempotentHandler(repository, fleet.idempotency, new SaveRecovery(repository, stack.serviceCache))
    : new IdempotentHandler(repository, new MemoryIdempotencyStore({
      ttlMs: config.ZB_IDEMPOTENCY_TTL_MS,
      maxKeys: config.ZB_IDEMPOTENCY_MAX_KEYS,
      maxBytes: config.ZB_IDEMPOTENCY_MAX_BYTES,
      maxPending: config.ZB_MAX_INFLIGHT_REQUESTS,
    }));
  // Option lists per ERP identity, kept 10 minutes (the domain default: no setting yet).
  const optionLookups = new OptionLookupService(stack.client, fieldMap);
  // The change feed reads the list as the list does: same client, mapper, and the list's own input rules.
  const feed = createChangeFeed({
    config,
    client: stack.client,
    mapper,
    rules: { maxPageSize: config.ZB_MAX_PAGE_SIZE, sortable: (field) => repository.canSortBy(field) },
    load,
    logger,
    metrics,
    ...fleet?.feed,
  });
  const servicesFor = (options.requestServices ?? requestScope)({
    repository,
    // A save through this subgraph reports UPDATED at once to the saver's subscriptions that show the service.
    handler: announcingSaves(handler, feed),
    optionLookups,
    maxPageSize: config.ZB_MAX_PAGE_SIZE,
    erpCallsPerRequest: config.ZB_DETAIL_CONCURRENCY,
  });

  const production = config.NODE_ENV === 'production';
  const introspection = config.ZB_INTROSPECTION;
  const armor = new ApolloArmor({
    maxDepth: { n: config.ZB_MAX_DEPTH, ignoreIntrospection: true },
    maxAliases: { n: config.ZB_MAX_ALIASES },
    costLimit: { maxCost: config.ZB_MAX_COST },
    // Token limits are enforced by graphql-js's own parser (parseOptions below): a syntax error then stays a 400
    // GRAPHQL_PARSE_FAILED instead of the plugin's 500.
    maxTokens: { enabled: false },
    maxDirectives: { n: config.ZB_MAX_DIRECTIVES },
    blockFieldSuggestion: { enabled: production },
  }).protect();

  const admissionLimits = {
    maxInflight: config.ZB_MAX_INFLIGHT_REQUESTS,
    budgetBytes: config.ZB_INFLIGHT_BUDGET_BYTES,
    maxErpCalls: config.ZB_MAX_ERP_CALLS_PER_OPERATION,
    maxItems: config.ZB_MAX_ITEMS_PER_OPERATION,
    maxRepresentations: config.ZB_MAX_REPRESENTATIONS,
  };
  const admission = new Admission(
    admissionLimits,
    // Read at scrape time (metrics.ts): two number writes per change instead of two gauge updates.
    (operations, bytes) => {
      metrics.graphqlAdmission.operations = operations;
      metrics.graphqlAdmission.bytes = bytes;
    },
  );
  const estimateRules = {
    onListRow: (field: Parameters<ServiceMapper['listColumn']>[0]) => mapper.listColumn(field) !== undefined,
    defaultPageSize: 20,
    optionLookupCalls: optionLookups.maxErpCalls,
  };

  const httpServer = createHttpServer({
    bodyLimitBytes: config.ZB_BODY_LIMIT_BYTES,
    bodyTimeoutMs: config.ZB_BODY_TIMEOUT_MS,
    keepAliveTimeoutMs: config.ZB_KEEP_ALIVE_TIMEOUT_MS,
    maxConnections: config.ZB_MAX_CLIENT_CONNECTIONS,
    longestRequestMs: Math.max(config.ZB_REQUEST_DEADLINE_MS, 2 * config.ZB_TIMEOUT_MS),
  });
  const documentBytes = config.ZB_DOCUMENT_CACHE_BYTES;
  const schema = buildSchema();
  const formatError = errorFormatter({ hideSuggestions: production });

  // Who a request acts as (identity.ts): the same rule for HTTP and every subscription transport, whose contexts all
  // come from one factory (subscription-context.ts).
  const identityRules = { required: config.ZB_SESSION_HEADER_REQUIRED, service: stack.serviceSession, trustUserHeader: config.ZB_TRUST_USER_HEADER };
  const subscriptionContext = subscriptionContexts({ feed, servicesFor, identity: identityRules, deadlineMs: config.ZB_REQUEST_DEADLINE_MS });
  // Subscriptions over SSE (GET/POST /graphql with Accept: text/event-stream), taken by the router before Apollo.
  const sse = sseSubscriptions<GraphQLContext>({
    schema,
    formatError,
    validationRules: armor.validationRules,
    logger: logger.child({ component: 'sse' }),
    limits: {
      maxStreams: config.ZB_FEED_SSE_MAX_STREAMS,
      maxUrlBytes: 8 * 1024,
      bodyLimitBytes: config.ZB_BODY_LIMIT_BYTES,
      bodyTimeoutMs: config.ZB_BODY_TIMEOUT_MS,
      maxTokens: config.ZB_MAX_TOKENS,
      // Below the server's own idle timeout (http.ts) and the usual proxies' 30-60 s.
      heartbeatMs: Math.min(15_000, Math.floor(httpServer.timeout / 2)),
      closeGraceMs: 5_000,
    },
    // A refused identity is the resolver's UNAUTHENTICATED error event, as over graphql-ws.
    context: (req, requestId) => subscriptionContext(req.headers, requestId),
    onStreamsChange: (open) => metrics.transportSubscriptions.set({ transport: 'sse' }, open),
  });
  // Apollo Router's callback mode (POST /graphql with extensions.subscription), as an Apollo plugin; off (every such
  // request refused BAD_REQUEST) unless ZB_FEED_CALLBACK_URLS names the router's callback URLs.
  const callback = subscriptionCallback<GraphQLContext>({
    logger,
    formatError,
    limits: {
      callbackUrls: config.ZB_FEED_CALLBACK_URLS,
      maxSubscriptions: config.ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS,
      fetchTimeoutMs: 5_000,
      heartbeatMinMs: 1_000,
      heartbeatMaxMs: 5_000,
      retries: 3,
      retryMinMs: 100,
      retryMaxMs: 1_000,
      maxConsecutiveHeartbeatFailures: 5,
    },
    onSubscriptionsChange: (open) => metrics.transportSubscriptions.set({ transport: 'callback' }, open),
  });
  metrics.transportSubscriptions.set({ transport: 'sse' }, 0);
  metrics.transportSubscriptions.set({ transport: 'callback' }, 0);
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    logger: logger.child({ component: 'apollo' }),
    introspection,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    allowBatchedHttpRequests: false,
    // Client-sent text retained across requests, bounded by the bytes it really keeps (document-cache.ts).
    documentStore: documentBytes > 0 ? documentCache(documentBytes) : null,
    cache: queryTextCache(64 * 1024),
    persistedQueries: documentBytes > 0 ? { cache: queryTextCache(documentBytes) } : false,
    validationRules: armor.validationRules,
    parseOptions: { maxTokens: config.ZB_MAX_TOKENS },
    formatError,
    plugins: [
      ...armor.plugins,
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.ZB_SHUTDOWN_TIMEOUT_MS }),
      // The schema declares no cache hints (ERP data is live), so the per-field hint bookkeeping would be pure cost.
      ApolloServerPluginCacheControlDisabled(),
      introspection ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      admissionPlugin(
        admissionLimits,
        estimateRules,
        metrics,
      ),
      requestLogPlugin(logger, metrics),
      errorCapPlugin(),
      operationTracePlugin(),
      // Their drainServer ends every SSE stream and callback subscription with `complete` on apollo.stop().
      sse.plugin,
      callback.plugin,
      // Federated tracing (ftv1) only for a gateway that asks for it, in place of Apollo's own plugin (inline-trace.ts).
      ApolloServerPluginInlineTraceDisabled(),
      inlineTraceWhenAsked(),
    ],
  });
  await apollo.start();

  const graphql = graphqlEndpoint({
    apollo,
    admission,
    metrics,
    limits: { bodyLimitBytes: config.ZB_BODY_LIMIT_BYTES, bodyTimeoutMs: config.ZB_BODY_TIMEOUT_MS, maxInflight: config.ZB_MAX_INFLIGHT_REQUESTS },
    // Who the request acts as and until when: taken once, here, by the request's services.
    context: (req, requestId, signal, ticket) => {
      const identity = identityOf(req.headers, identityRules);
      const call: CallContext = { auth: identity.auth, principal: identity.principal, signal, deadline: Date.now() + config.ZB_REQUEST_DEADLINE_MS, requestId };
      return {
        requestId,
        ...(identity.refused ? { unauthenticated: identity.refused } : {}),
        services: servicesFor(call),
        reserve: (bytes) => ticket.reserve(bytes),
      };
    },
    requestDeadlineMs: config.ZB_REQUEST_DEADLINE_MS,
    // A callback subscription outlives the router's POST: its context is a subscription's (identity by the same rule,
    // services made per event), not the request's, whose signal and deadline end when the POST is answered.
    callbackContext: (req, requestId, ticket) => ({ ...subscriptionContext(req.headers, requestId), reserve: (bytes) => ticket.reserve(bytes) }),
  });

  // Subscriptions over graphql-ws at /graphql on the same server (subscriptions-ws.ts), with the same context factory.
  const ws = attachGraphqlWs({
    server: httpServer,
    path: '/graphql',
    schema,
    context: subscriptionContext,
    validationRules: armor.validationRules,
    formatError,
    limits: {
      maxConnections: config.ZB_FEED_WS_MAX_CONNECTIONS,
      initTimeoutMs: config.ZB_FEED_WS_INIT_TIMEOUT_MS,
      maxPayloadBytes: config.ZB_BODY_LIMIT_BYTES,
      keepAliveMs: 12_000,
      maxTokens: config.ZB_MAX_TOKENS,
    },
    production,
    logger: logger.child({ component: 'ws' }),
    onConnections: (open) => metrics.wsConnections.set(open),
  });

  let shuttingDown = false;
  const ready = readiness({ stack, shuttingDown: () => shuttingDown, ...(fleet ? { redisStatus: fleet.redisStatus } : {}) });

  httpServer.on('request', router({ graphql, sse, ready, metrics, logger }));

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.PORT, config.HOST, () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;

  // Log in ahead of the first request, so readiness turns green and the first query pays no login.
  stack.serviceSession?.ensureLogin();

  return {
    url: `http://${host}:${port}/graphql`,
    port,
    stack,
    metrics,
    feed,
    beginShutdown: () => {
      shuttingDown = true;
    },
    close: async () => {
      shuttingDown = true;
      // Subscriptions first: each ends with `complete`, then its connection closes with 1001 (going away), so clients
      // reconnect elsewhere; only then can the HTTP server drain (it waits for every socket, upgraded ones too).
      ws.refuseNew();
      await feed.close();
      // SSE streams have their `complete` by now; any opened since are ended, and new ones refused (503). Callback
      // subscriptions got theirs from the feed too; the callback plugin's drain (apollo.stop) refuses new ones.
      await sse.close();
      await ws.close(Math.min(5000, Math.floor(config.ZB_SHUTDOWN_TIMEOUT_MS / 4)));
      await apollo.stop();
      await stack.close();
      await fleet?.close();
    },
  };
}

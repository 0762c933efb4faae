import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { loadFieldMap, type FieldMap } from '../domain/field-map';
import { IdempotentHandler, MemoryIdempotencyStore } from '../domain/idempotency';
import { ServiceMapper } from '../domain/mapping';
import { OptionLookupService } from '../domain/options';
import { SaveRecovery } from '../domain/recovery';
import { AfterSaleRepository } from '../domain/repository';
import { requestScope, type RequestServicesFactory, type SharedServices } from '../domain/request-scope';
import type { CallContext } from '../erp/client';
import type { Credentials } from '../erp/layers/session';
import { deadline } from '../erp/deadline';
import { createErpStack, type ErpStack } from '../erp/stack';
import { erpStackOptions } from './erp-options';
import type { GraphQLContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { buildSchema } from '../graphql/schema';
import { Admission, admissionPlugin, type Ticket } from './admission';
import { documentCache, queryTextCache } from './document-cache';
import { errorFormatter } from './errors';
import { BodyTimeoutError, BodyTooLargeError, createHttpServer, readBody, requestErrorBody, sendJson } from './http';
import { identityOf } from './identity';
import { createLogger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { createFleet } from './fleet';
import { erpObserver } from './observer';
import { errorCapPlugin, requestLogPlugin } from './plugins';
import { operationTracePlugin, traceOperation } from './tracing-plugin';
import { readiness } from './readiness';

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
  /** Readiness turns 503 at once; requests in flight go on. Called first on SIGTERM. */
  beginShutdown(): void;
  /** Stops taking connections, lets requests in flight finish (up to ZB_SHUTDOWN_TIMEOUT_MS), closes the ERP client. */
  close(): Promise<void>;
}

/** A client-sent request id is echoed only when it is short and plain; otherwise we make one. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

/**
 * The composition root: ERP client, domain, GraphQL server and the HTTP routes, wired from the configuration. Over 300
 * lines on purpose: it is the one place where settings become objects, and each piece's wiring reads best beside the
 * others (the rules themselves live in their rooms: ARCHITECTURE.md).
 */
export async function startApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.ZB_LOG_LEVEL);
  const metrics = createMetrics();
  const observer = erpObserver(logger, metrics);
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
  const servicesFor = (options.requestServices ?? requestScope)({
    repository,
    handler,
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

  const admission = new Admission(
    {
      maxInflight: config.ZB_MAX_INFLIGHT_REQUESTS,
      budgetBytes: config.ZB_INFLIGHT_BUDGET_BYTES,
      maxErpCalls: config.ZB_MAX_ERP_CALLS_PER_OPERATION,
      maxItems: config.ZB_MAX_ITEMS_PER_OPERATION,
      maxRepresentations: config.ZB_MAX_REPRESENTATIONS,
    },
    (operations, bytes) => {
      metrics.graphqlInFlight.set(operations);
      metrics.graphqlBudgetBytes.set(bytes);
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
  const apollo = new ApolloServer<GraphQLContext>({
    schema: buildSchema(),
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
    formatError: errorFormatter({ hideSuggestions: production }),
    plugins: [
      ...armor.plugins,
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.ZB_SHUTDOWN_TIMEOUT_MS }),
      // The schema declares no cache hints (ERP data is live), so the per-field hint bookkeeping would be pure cost.
      ApolloServerPluginCacheControlDisabled(),
      introspection ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      admissionPlugin(
        {
          maxInflight: config.ZB_MAX_INFLIGHT_REQUESTS,
          budgetBytes: config.ZB_INFLIGHT_BUDGET_BYTES,
          maxErpCalls: config.ZB_MAX_ERP_CALLS_PER_OPERATION,
          maxItems: config.ZB_MAX_ITEMS_PER_OPERATION,
          maxRepresentations: config.ZB_MAX_REPRESENTATIONS,
        },
        estimateRules,
        metrics,
      ),
      requestLogPlugin(logger, metrics),
      errorCapPlugin(),
      operationTracePlugin(),
    ],
  });
  await apollo.start();

  async function execute(req: IncomingMessage, res: ServerResponse, requestId: string, body: unknown, ticket: Ticket): Promise<void> {
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const httpGraphQLRequest: HTTPGraphQLRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      headers,
      search: new URL(req.url ?? '/', 'http://localhost').search,
      body,
    };
    // One signal for the request: the deadline, or the client going away. Released as soon as the response ends.
    const limit = deadline(config.ZB_REQUEST_DEADLINE_MS);
    res.on('close', () => {
      if (!res.writableFinished) limit.abort();
      limit.dispose();
    });
    // Inside the operation's trace span (a child of the caller's traceparent), which the ERP calls and log lines join.
    const response = await traceOperation(httpGraphQLRequest, requestId, () => apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest,
      context: async () => {
        const identity = identityOf(req, { required: config.ZB_SESSION_HEADER_REQUIRED, service: stack.serviceSession, trustUserHeader: config.ZB_TRUST_USER_HEADER });
        // Who the request acts as and until when: taken once, here, by the request's services.
        const call: CallContext = {
          auth: identity.auth,
          principal: identity.principal,
          signal: limit.signal,
          deadline: Date.now() + config.ZB_REQUEST_DEADLINE_MS,
          requestId,
        };
        const context: GraphQLContext = {
          requestId,
          ...(identity.refused ? { unauthenticated: identity.refused } : {}),
          services: servicesFor(call),
          reserve: (bytes) => ticket.reserve(bytes),
        };
        return context;
      },
    }));
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.setHeader('x-request-id', requestId);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  }

  /**
   * The body is read before a slot is taken, within ZB_BODY_TIMEOUT_MS, so clients that trickle bytes hold no slot;
   * then the request takes one of ZB_MAX_INFLIGHT_REQUESTS slots (503 when none is free) and, once its operation is
   * known, reserves its estimated bytes (admission.ts).
   */
  async function graphql(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    let body: unknown;
    if (req.method === 'POST') {
      let text: string;
      try {
        text = await readBody(req, config.ZB_BODY_LIMIT_BYTES, config.ZB_BODY_TIMEOUT_MS);
      } catch (e) {
        if (e instanceof BodyTooLargeError) {
          metrics.graphqlRefused.inc({ reason: 'body_too_large' });
          sendJson(res, 413, requestErrorBody(`Request body exceeds ${config.ZB_BODY_LIMIT_BYTES} bytes`, ApolloServerErrorCode.BAD_REQUEST), { connection: 'close' });
          return;
        }
        if (e instanceof BodyTimeoutError) {
          metrics.graphqlRefused.inc({ reason: 'body_timeout' });
          sendJson(res, 408, requestErrorBody(`Request body not received within ${config.ZB_BODY_TIMEOUT_MS} ms`, ApolloServerErrorCode.BAD_REQUEST), { connection: 'close' });
          return;
        }
        throw e;
      }
      const type = String(req.headers['content-type'] ?? '');
      if (type.includes('json')) {
        try {
          body = text === '' ? {} : JSON.parse(text);
        } catch {
          sendJson(res, 400, requestErrorBody('Request body is not valid JSON', ApolloServerErrorCode.BAD_REQUEST));
          return;
        }
      } else body = text;
    }
    const ticket = admission.enter();
    if (!ticket) {
      metrics.graphqlShed.inc();
      const message = `The service is at its limit of ${config.ZB_MAX_INFLIGHT_REQUESTS} operations in flight; try again shortly.`;
      sendJson(res, 503, requestErrorBody(message, ErrorCode.ServerBusy), { 'retry-after': '1' });
      return;
    }
    try {
      await execute(req, res, requestId, body, ticket);
    } finally {
      ticket.release();
    }
  }

  let shuttingDown = false;
  const ready = readiness({ stack, shuttingDown: () => shuttingDown, ...(fleet ? { redisStatus: fleet.redisStatus } : {}) });

  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdOf(req);
    const path = (req.url ?? '/').split('?')[0];
    const route = async () => {
      if (path === '/graphql') return graphql(req, res, requestId);
      if (req.method === 'GET' && path === '/health/live') return sendJson(res, 200, { status: 'ok' });
      if (req.method === 'GET' && path === '/health/ready') {
        const report = ready();
        return sendJson(res, report.ready ? 200 : 503, report.body);
      }
      if (req.method === 'GET' && path === '/metrics') {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
        return;
      }
      sendJson(res, 404, { error: 'not found', routes: ['/graphql', '/health/live', '/health/ready', '/metrics'] });
    };
    route().catch((err: unknown) => {
      logger.error({ msg: 'request failed', requestId, err });
      if (!res.headersSent) sendJson(res, 500, requestErrorBody('Internal server error', ApolloServerErrorCode.INTERNAL_SERVER_ERROR));
      else res.destroy();
    });
  });

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
    beginShutdown: () => {
      shuttingDown = true;
    },
    close: async () => {
      shuttingDown = true;
      await apollo.stop();
      await stack.close();
      await fleet?.close();
    },
  };
}

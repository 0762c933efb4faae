import { createHash, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { loadFieldMap, type FieldMap } from '../domain/field-map';
import { IdempotentHandler, MemoryIdempotencyStore } from '../domain/idempotency';
import { ServiceMapper } from '../domain/mapping';
import { AfterSaleRepository } from '../domain/repository';
import type { SessionSource } from '../erp/call';
import type { CallContext } from '../erp/client';
import { ForwardedSession, type Credentials } from '../erp/layers/session';
import { MemoryReadCacheStore, readCache } from '../erp/layers/cache';
import { deadline } from '../erp/deadline';
import { createErpStack, type ErpStack } from '../erp/stack';
import { erpStackOptions } from './erp-options';
import type { GraphQLContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { createServiceLoader } from '../graphql/loaders';
import { buildSchema } from '../graphql/schema';
import { formatError } from './errors';
import { createLogger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { erpObserver } from './observer';
import { requestLogPlugin } from './plugins';

export interface AppOptions {
  config: Config;
  /** Where the ERP is: ZB_BASE_URL, or the embedded simulator's URL. */
  erpBaseUrl: string;
  /** The service account; absent when every request must bring its own ERP session. */
  credentials?: Credentials;
  logger?: Logger;
  fieldMap?: FieldMap;
  /**
   * Bench-only: resolve like a naive subgraph, one ERP detail call per field access (no batching, no per-request
   * cache). Not reachable from configuration; `bench/` uses it to show what the loader and coalescing save.
   */
  naiveDetailLoads?: boolean;
}

export interface App {
  url: string;
  port: number;
  stack: ErpStack;
  metrics: Metrics;
  close(): Promise<void>;
}

const SESSION_HEADER = 'x-zb-session';

class BodyTooLargeError extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLargeError());
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function requestErrorBody(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}

/** A client-sent request id is echoed only when it is short and plain; otherwise we make one. */
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

export async function startApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.ZB_LOG_LEVEL);
  const metrics = createMetrics();
  const observer = erpObserver(logger, metrics);
  const cache = config.ZB_CACHE_TTL_MS > 0
    ? readCache({ ttlMs: config.ZB_CACHE_TTL_MS, staleMs: config.ZB_CACHE_STALE_MS }, observer, new MemoryReadCacheStore(config.ZB_CACHE_MAX_ENTRIES))
    : undefined;
  const stack = createErpStack(erpStackOptions(config, options.erpBaseUrl, options.credentials, cache ? [cache.layer] : []), observer);
  const mapper = new ServiceMapper(options.fieldMap ?? loadFieldMap(config.ZB_FIELD_MAP), config.ZB_TIMEZONE);
  const repository = new AfterSaleRepository(stack.client, mapper, {
    saveSuccess: new RegExp(config.ZB_SAVE_SUCCESS_PATTERN),
    notFound: new RegExp(config.ZB_NOT_FOUND_PATTERN),
  }, cache ? { afterSave: (id) => cache.invalidateService(id) } : undefined);
  const handler = new IdempotentHandler(repository, new MemoryIdempotencyStore({ ttlMs: config.ZB_IDEMPOTENCY_TTL_MS, maxKeys: config.ZB_IDEMPOTENCY_MAX_KEYS }));

  const production = config.NODE_ENV === 'production';
  const introspection = config.ZB_INTROSPECTION ?? !production;
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

  const httpServer = http.createServer();
  const apollo = new ApolloServer<GraphQLContext>({
    schema: buildSchema(),
    logger: logger.child({ component: 'apollo' }),
    introspection,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    allowBatchedHttpRequests: false,
    validationRules: armor.validationRules,
    parseOptions: { maxTokens: config.ZB_MAX_TOKENS },
    formatError,
    plugins: [
      ...armor.plugins,
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // The schema declares no cache hints (ERP data is live), so the per-field hint bookkeeping would be pure cost.
      ApolloServerPluginCacheControlDisabled(),
      introspection ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      requestLogPlugin(logger, metrics),
    ],
  });
  await apollo.start();

  function identityOf(req: IncomingMessage): SessionSource {
    const forwarded = req.headers[SESSION_HEADER];
    if (typeof forwarded === 'string' && forwarded.trim() !== '') {
      const token = forwarded.trim();
      // The identity key is a hash: caches and logs never hold the token.
      return new ForwardedSession(token, createHash('sha256').update(token).digest('hex').slice(0, 24));
    }
    if (config.ZB_SESSION_HEADER_REQUIRED || !stack.serviceSession) {
      throw new GraphQLError(`This endpoint requires the ${SESSION_HEADER} header (an ERP session token).`, {
        extensions: { code: ErrorCode.Unauthenticated, http: { status: 401 } },
      });
    }
    return stack.serviceSession;
  }

  async function graphql(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    let body: unknown;
    if (req.method === 'POST') {
      let text: string;
      try {
        text = await readBody(req, config.ZB_BODY_LIMIT_BYTES);
      } catch (e) {
        if (e instanceof BodyTooLargeError) {
          sendJson(res, 413, requestErrorBody(`Request body exceeds ${config.ZB_BODY_LIMIT_BYTES} bytes`, 'BAD_REQUEST'), { connection: 'close' });
          return;
        }
        throw e;
      }
      const type = String(req.headers['content-type'] ?? '');
      if (type.includes('json')) {
        try {
          body = text === '' ? {} : JSON.parse(text);
        } catch {
          sendJson(res, 400, requestErrorBody('Request body is not valid JSON', 'BAD_REQUEST'));
          return;
        }
      } else body = text;
    }
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
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest,
      context: async () => {
        const auth = identityOf(req);
        const erp: CallContext = {
          auth,
          signal: limit.signal,
          deadline: Date.now() + config.ZB_REQUEST_DEADLINE_MS,
          requestId,
        };
        return {
          requestId,
          erp,
          repository,
          handler,
          serviceLoader: createServiceLoader(repository, erp, config.ZB_DETAIL_CONCURRENCY, options.naiveDetailLoads ? { naive: true } : undefined),
          maxPageSize: config.ZB_MAX_PAGE_SIZE,
        };
      },
    });
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

  async function ready(): Promise<boolean> {
    const session = stack.serviceSession;
    if (!session) return stack.breaker.state !== 'open';
    if (session.hasSession) return true;
    try {
      await session.login({ deadline: Date.now() + 3000 });
      return true;
    } catch {
      return false;
    }
  }

  // Load shedding: every operation in execution holds its partial results, so the bound on operations is what keeps
  // memory bounded when clients arrive faster than the ERP answers (queued ERP calls wait up to ZB_QUEUE_TIMEOUT_MS).
  // Beyond it a request is refused at once, before its body is read, with a status a gateway or client can retry on.
  let inFlight = 0;
  async function admitted(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    if (inFlight >= config.ZB_MAX_INFLIGHT_REQUESTS) {
      metrics.graphqlShed.inc();
      const message = `The service is at its limit of ${config.ZB_MAX_INFLIGHT_REQUESTS} operations in flight; try again shortly.`;
      sendJson(res, 503, requestErrorBody(message, ErrorCode.ServerBusy), { 'retry-after': '1' });
      return;
    }
    inFlight++;
    metrics.graphqlInFlight.set(inFlight);
    try {
      await graphql(req, res, requestId);
    } finally {
      inFlight--;
      metrics.graphqlInFlight.set(inFlight);
    }
  }

  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdOf(req);
    const path = (req.url ?? '/').split('?')[0];
    const route = async () => {
      if (path === '/graphql') return admitted(req, res, requestId);
      if (req.method === 'GET' && path === '/health/live') return sendJson(res, 200, { status: 'ok' });
      if (req.method === 'GET' && path === '/health/ready') {
        const ok = await ready();
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'unavailable', erp: ok ? 'ok' : 'no ERP session' });
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
      if (!res.headersSent) sendJson(res, 500, requestErrorBody('Internal server error', 'INTERNAL_SERVER_ERROR'));
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
  if (stack.serviceSession) {
    stack.serviceSession.login().catch((err: unknown) => logger.warn({ msg: 'initial ERP login failed', code: (err as { code?: string }).code }));
  }

  return {
    url: `http://${host}:${port}/graphql`,
    port,
    stack,
    metrics,
    close: async () => {
      await apollo.stop();
      await stack.close();
    },
  };
}

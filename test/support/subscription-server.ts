import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { GraphQLError } from 'graphql';
import type { RequestServices } from '../../src/domain/request-scope';
import type { GraphQLContext } from '../../src/graphql/context';
import { Admission } from '../../src/server/admission';
import { errorFormatter } from '../../src/server/errors';
import { graphqlEndpoint } from '../../src/server/graphql-endpoint';
import { createHttpServer, type HttpLimits } from '../../src/server/http';
import { createLogger } from '../../src/server/logger';
import { createMetrics } from '../../src/server/metrics';
import { router } from '../../src/server/routes';
import { subscriptionCallback, type CallbackLimits, type SubscriptionCallback } from '../../src/server/subscription-callback';
import { sseSubscriptions, type SseLimits, type SseSubscriptions } from '../../src/server/subscriptions-sse';
import { LogCapture } from '../helpers';
import { Sources, testSchema } from './subscriptions';

/** The app's context, plus (not in its type) who the request said it was (`x-test-who`), which `Tick.who` shows. */
export type TestContext = GraphQLContext;

const unused = () => Promise.reject(new Error('the test schema calls no ERP service'));
const noServices: RequestServices = { services: { list: unused, byId: unused }, handle: unused, options: unused };

export const SSE_LIMITS: SseLimits = {
  maxStreams: 16,
  maxUrlBytes: 4096,
  bodyLimitBytes: 8 * 1024,
  bodyTimeoutMs: 2000,
  maxTokens: 200,
  heartbeatMs: 10_000,
  closeGraceMs: 2000,
};

export const CALLBACK_LIMITS: Omit<CallbackLimits, 'callbackUrls'> = {
  maxSubscriptions: 16,
  fetchTimeoutMs: 2000,
  heartbeatMinMs: 10,
  heartbeatMaxMs: 10_000,
  retries: 1,
  retryMinMs: 10,
  retryMaxMs: 20,
  maxConsecutiveHeartbeatFailures: 3,
};

export interface SubscriptionServer {
  url: string;
  sources: Sources;
  logs: LogCapture;
  sse: SseSubscriptions | undefined;
  callback: SubscriptionCallback<TestContext> | undefined;
  /** apollo.stop(), as the app's close(): the drain hooks end SSE streams and callback subscriptions. */
  close(): Promise<void>;
}

/**
 * A real subgraph-shaped server for the subscription transports: createHttpServer, the app's router (routes.ts), its
 * GraphQL endpoint and Apollo Server with the app's error formatter, plus the transports under test wired as the app
 * wires them. Only the schema is the test's (tests/support/subscriptions.ts), so that events are pushed by the test.
 * A request with `x-test-refuse` is refused in didResolveOperation, as the admission plugin refuses (401).
 */
export async function startSubscriptionServer(options: {
  sse?: Partial<SseLimits>;
  callback?: Partial<CallbackLimits> & { callbackUrls: readonly string[] };
  http?: Partial<HttpLimits>;
}): Promise<SubscriptionServer> {
  const sources = new Sources();
  const schema = testSchema(sources);
  const logs = new LogCapture();
  const logger = createLogger('debug', logs);
  const metrics = createMetrics();
  const formatError = errorFormatter({ hideSuggestions: false });
  const httpServer = createHttpServer({
    bodyLimitBytes: 8 * 1024,
    bodyTimeoutMs: 2000,
    keepAliveTimeoutMs: 5000,
    maxConnections: 64,
    longestRequestMs: 5000,
    ...options.http,
  });

  const sse = options.sse
    ? sseSubscriptions<{ who?: string }>({
        schema,
        limits: { ...SSE_LIMITS, ...options.sse },
        logger,
        formatError,
        context: (req) => {
          const who = req.headers['x-test-who'];
          if (who === 'nobody') throw new GraphQLError('This endpoint requires the x-zb-session header.', { extensions: { code: 'UNAUTHENTICATED' } });
          return typeof who === 'string' ? { who } : {};
        },
      })
    : undefined;
  const callback = options.callback ? subscriptionCallback<TestContext>({ limits: { ...CALLBACK_LIMITS, ...options.callback }, logger, formatError }) : undefined;

  const refuse: ApolloServerPlugin<TestContext> = {
    async requestDidStart({ request }) {
      if (!request.http?.headers.get('x-test-refuse')) return;
      return {
        async didResolveOperation() {
          throw new GraphQLError('This endpoint requires the x-zb-session header.', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
        },
      };
    },
  };
  const apollo = new ApolloServer<TestContext>({
    schema,
    logger: logger.child({ component: 'apollo' }),
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    formatError,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: 3000 }),
      refuse,
      ...(callback ? [callback.plugin] : []),
      ...(sse ? [sse.plugin] : []),
    ],
  });
  await apollo.start();
  const admission = new Admission({ maxInflight: 32, budgetBytes: 64 * 1024 * 1024, maxErpCalls: 100, maxItems: 1000, maxRepresentations: 100 });
  const graphql = graphqlEndpoint({
    apollo,
    admission,
    metrics,
    limits: { bodyLimitBytes: 8 * 1024, bodyTimeoutMs: 2000, maxInflight: 32 },
    requestDeadlineMs: 5000,
    context: (req, requestId, _signal, ticket) => {
      const who = req.headers['x-test-who'];
      const context: GraphQLContext = { requestId, services: noServices, reserve: (bytes) => ticket.reserve(bytes) };
      return Object.assign(context, typeof who === 'string' ? { who } : {});
    },
  });
  httpServer.on('request', router({ graphql, ...(sse ? { sse } : {}), ready: () => ({ ready: true, body: { status: 'ready', erp: 'not used' } }), metrics, logger }));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = (httpServer.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    sources,
    logs,
    sse,
    callback,
    close: () => apollo.stop(),
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import type { CallSignal } from '../erp/abort';
import { deadlines } from '../erp/deadline';
import type { GraphQLContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import type { Admission, Ticket } from './admission';
import { readBodyOrRefuse, requestErrorBody, sendJson } from './http';
import type { Metrics } from './metrics';
import { traceOperation } from './tracing-plugin';

export interface GraphQLEndpointDeps {
  apollo: ApolloServer<GraphQLContext>;
  admission: Admission;
  metrics: Metrics;
  limits: { bodyLimitBytes: number; bodyTimeoutMs: number; maxInflight: number };
  requestDeadlineMs: number;
  /** The request's GraphQL context: identity, its services, and its share of the admission budget. */
  context(req: IncomingMessage, requestId: string, signal: CallSignal, ticket: Ticket): GraphQLContext;
  /**
   * The context of a subscription request on Apollo's HTTP callback protocol (a POST carrying
   * `extensions.subscription`, subscription-callback.ts): the subscription outlives this request, so its context must
   * not be bound to the request's signal or deadline. Built by the transports' shared factory; its share of the
   * admission budget is still the request's ticket (held until the router's POST is answered).
   */
  callbackContext?(req: IncomingMessage, requestId: string, ticket: Ticket): GraphQLContext;
}

/** A POST of Apollo's callback protocol: a JSON object body whose `extensions` carries `subscription`. */
function isCallbackRequest(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const extensions = (body as { extensions?: unknown }).extensions;
  return typeof extensions === 'object' && extensions !== null && 'subscription' in extensions;
}

/**
 * `/graphql` over node:http: the body is read before a slot is taken, within ZB_BODY_TIMEOUT_MS, so clients that
 * trickle bytes hold no slot; then the request takes one of ZB_MAX_INFLIGHT_REQUESTS slots (503 when none is free)
 * and, once its operation is known, reserves its estimated bytes (admission.ts). One signal per request: the deadline,
 * or the client going away.
 */
export function graphqlEndpoint(deps: GraphQLEndpointDeps): (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<void> {
  const { apollo, admission, metrics, limits } = deps;
  // Every request's time limit (ZB_REQUEST_DEADLINE_MS), kept by one timer.
  const deadline = deadlines(deps.requestDeadlineMs);

  async function execute(req: IncomingMessage, res: ServerResponse, requestId: string, body: unknown, ticket: Ticket): Promise<void> {
    const headers = new HeaderMap();
    const given = req.headers;
    for (const key in given) {
      const value = given[key];
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const url = req.url ?? '/';
    const httpGraphQLRequest: HTTPGraphQLRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      headers,
      // A POST's URL rarely has a query string: only then is it worth a URL object (which normalises it).
      search: url.includes('?') ? new URL(url, 'http://localhost').search : '',
      body,
    };
    // Released as soon as the response ends.
    const limit = deadline();
    res.on('close', () => {
      if (!res.writableFinished) limit.abort();
      limit.dispose();
    });
    // Inside the operation's trace span (a child of the caller's traceparent), which the ERP calls and log lines join.
    const response = await traceOperation(httpGraphQLRequest, requestId, () =>
      apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest,
        context: async () =>
          deps.callbackContext && isCallbackRequest(body) ? deps.callbackContext(req, requestId, ticket) : deps.context(req, requestId, limit.signal, ticket),
      }),
    );
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

  return async (req, res, requestId) => {
    let body: unknown;
    if (req.method === 'POST') {
      const text = await readBodyOrRefuse(req, res, limits, (reason) => metrics.graphqlRefused.inc({ reason }));
      if (text === undefined) return;
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
      const message = `The service is at its limit of ${limits.maxInflight} operations in flight; try again shortly.`;
      sendJson(res, 503, requestErrorBody(message, ErrorCode.ServerBusy), { 'retry-after': '1' });
      return;
    }
    try {
      await execute(req, res, requestId, body, ticket);
    } finally {
      ticket.release();
    }
  };
}

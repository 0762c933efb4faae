import type { ApolloServerPlugin, HeaderMap, HTTPGraphQLRequest } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { context, isSpanContextValid, propagation, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter } from '@opentelemetry/api';
import type { GraphQLContext } from '../graphql/context';
import { registeredTracer } from '../erp/layers/trace';
import { classifyError } from '../graphql/errors';
import { clip } from './log-fields';

/**
 * One SERVER span per GraphQL operation, child of the caller's trace (W3C `traceparent`/`tracestate`, or whatever
 * OTEL_PROPAGATORS names), active while the operation runs, so the ERP client's spans (erp/layers/trace.ts) and every
 * log line of the request (logger.ts) belong to it. `traceOperation` opens it around the execution (app.ts) and
 * `operationTracePlugin` names it once the operation is known and records how it ended. Recorded: operation type and
 * name, request id, outcome, error codes, HTTP status; never the document, the variables or any header.
 */
export const GRAPHQL_TRACER = 'zb-aftersale-subgraph/graphql';

export const OperationAttr = {
  type: 'graphql.operation.type',
  name: 'graphql.operation.name',
  requestId: 'zb.request_id',
  /** 'ok' (no errors), 'partial' (data and errors) or 'error' (no data). */
  outcome: 'zb.graphql.outcome',
  /** The distinct `extensions.code`s of the response's errors (at most 10), as the request log has them. */
  errorCodes: 'zb.graphql.error_codes',
  httpStatus: 'http.response.status_code',
} as const;

/** Apollo's HeaderMap keeps names in lower case. */
const headers: TextMapGetter<HeaderMap> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key.toLowerCase()),
};

// The operation's span by the HTTP request Apollo is handed: the plugin finds it there (requestContext.request.http).
const operations = new WeakMap<HTTPGraphQLRequest, Span>();

/** Runs `execute` (Apollo's executeHTTPGraphQLRequest for `request`) inside the operation's span. */
export async function traceOperation<T>(request: HTTPGraphQLRequest, requestId: string, execute: () => Promise<T>): Promise<T> {
  // Tracing off: nothing to start, extract or carry.
  const tracer = registeredTracer(GRAPHQL_TRACER);
  if (!tracer) return execute();
  const active = context.active();
  // An HTTP server span someone else made active is the parent; otherwise the caller's context from the headers.
  const parent = trace.getSpan(active) ? active : propagation.extract(active, request.headers, headers);
  const span = tracer.startSpan('GraphQL Operation', { kind: SpanKind.SERVER, attributes: { [OperationAttr.requestId]: requestId } }, parent);
  // A no-op span (this trace not sampled at all) has no ids, so there is nothing to make active.
  if (!isSpanContextValid(span.spanContext())) return execute();
  operations.set(request, span);
  try {
    return await context.with(trace.setSpan(parent, span), execute);
  } finally {
    operations.delete(request);
    span.end();
  }
}

// One resolved promise for every request with nothing to trace: Apollo awaits each plugin's requestDidStart.
const NOTHING: Promise<void> = Promise.resolve();

export function operationTracePlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    requestDidStart({ request }) {
      const span = request.http ? operations.get(request.http) : undefined;
      if (!span?.isRecording()) return NOTHING;
      return Promise.resolve({
        async didResolveOperation({ operation, operationName }) {
          if (!operation) return;
          const type = operation.operation;
          // Span names stay short: the name is the client's, the attribute keeps up to 200 characters of it.
          span.updateName(operationName ? `${type} ${clip(operationName, 64)}` : type);
          span.setAttribute(OperationAttr.type, type);
          if (operationName) span.setAttribute(OperationAttr.name, clip(operationName) ?? '');
        },
        async willSendResponse({ response, errors }) {
          const codes = [...new Set((errors ?? []).map((e) => classifyError(unwrapResolverError(e)).code))].slice(0, 10);
          const data = response.body.kind === 'single' ? response.body.singleResult.data : undefined;
          const outcome = codes.length === 0 ? 'ok' : data ? 'partial' : 'error';
          span.setAttributes({ [OperationAttr.outcome]: outcome, [OperationAttr.httpStatus]: response.http.status ?? 200 });
          if (codes.length === 0) return;
          span.setAttribute(OperationAttr.errorCodes, codes);
          span.setStatus({ code: SpanStatusCode.ERROR, message: codes.join(',') });
        },
      });
    },
  };
}

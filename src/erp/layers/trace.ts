import { context, createContextKey, ProxyTracerProvider, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { ErpCall, ErpLayer } from '../call';
import { ErpErrorCode, ErpHeaderStatusError, ErpHttpStatusError, isErpError } from '../errors';
import type { ErpObserver } from '../observer';
import type { WireObserver } from '../transport';

/**
 * (Over 200 lines on purpose: the call, attempt, queue and login spans share one vocabulary of attributes, which reads
 * best in one file.)
 * OpenTelemetry spans of the ERP client, through the API alone: with no SDK registered the API's no-op tracer answers,
 * every span is non-recording, and each layer here passes the call straight on. Spans start in the active context, so
 * a call made while a GraphQL operation's span is active (server/tracing-plugin.ts) hangs under it:
 *
 *   erp <endpoint>               one call as its caller made it (top of the stack); events: cache, coalesced, retry,
 *    |                           login, breaker; attempts made
 *    +- erp login                 a login this call had to wait for (itself a call, with its own attempt)
 *    +- erp queue                 waiting for a process-wide call slot, when all were taken
 *    +- erp <endpoint> attempt    one attempt on the wire: attempt number, outcome, ERP status, HTTP status, bytes
 *
 * What a call IS goes into attributes, never what it carries: no datas value (filter texts, ids, handling notes), no
 * session token, no credentials, no ERP message text. Nothing here reads `call.datas` or `call.session`.
 */
export const ERP_TRACER = 'zb-aftersale-subgraph/erp';

/** Attribute keys: ours under `zb.`, the HTTP and server ones from OpenTelemetry's semantic conventions. */
export const ErpAttr = {
  endpoint: 'zb.erp.endpoint',
  kind: 'zb.erp.kind',
  requestId: 'zb.request_id',
  /** 'ok' or the ErpError code. */
  outcome: 'zb.erp.outcome',
  /** On an attempt: its number within the call (1 first; retries and the repeat after a relogin count on). */
  attempt: 'zb.erp.attempt',
  /** On a call: how many attempts reached the wire (0: answered by the cache or by another caller's call). */
  attempts: 'zb.erp.attempts',
  /** The ERP's own header status (0 = success), when a reply was read. */
  erpStatus: 'zb.erp.status',
  cache: 'zb.erp.cache',
  coalesced: 'zb.erp.coalesced',
  retryDelayMs: 'zb.erp.retry.delay_ms',
  errorCode: 'zb.erp.error_code',
  breakerState: 'zb.erp.breaker.state',
  retryAt: 'zb.erp.login.retry_at',
  httpStatus: 'http.response.status_code',
  bodySize: 'http.response.body.size',
  method: 'http.request.method',
  urlPath: 'url.path',
  serverAddress: 'server.address',
  serverPort: 'server.port',
} as const;

/** Event names on a call's span. */
export const ErpEvent = {
  retry: 'erp.retry',
  login: 'erp.login',
  breaker: 'erp.breaker',
  breakerRejected: 'erp.breaker.rejected',
  cache: 'erp.cache',
  cacheDropped: 'erp.cache.dropped',
  coalesced: 'erp.coalesced',
} as const;

/** Attempts of one call so far; kept in the call's context so copies of the call (session, retry) share it. */
class AttemptCount {
  n = 0;
}
const ATTEMPTS = createContextKey('zb.erp.attempts');

/**
 * The named tracer of the registered tracing SDK; undefined while none is registered. Asked per call (a test or the
 * SDK may register at any time), and cheap when the answer is no: the API's own `getTracer` would hand out a fresh
 * proxy tracer, and `startSpan` a fresh non-recording span, for every ERP call of a process that traces nothing.
 */
export function registeredTracer(name: string): Tracer | undefined {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider ? provider.getDelegateTracer(name) : provider.getTracer(name);
}

const codeOf = (e: unknown): string => (isErpError(e) ? e.code : 'UNEXPECTED');

/** The span to add events to: the active one, when it records. */
function recording(): Span | undefined {
  const span = trace.getActiveSpan();
  return span?.isRecording() ? span : undefined;
}

function failed(span: Span, e: unknown): string {
  const code = codeOf(e);
  span.setAttribute(ErpAttr.outcome, code);
  // The code only: an ErpError's message may carry the ERP's own text.
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  return code;
}

/** The top of the stack: one span per call as its caller made it, active while the call travels the layers below. */
export function traceCalls(): ErpLayer {
  return {
    wrap: (next) => (call) => {
      // Tracing off: the call goes on as it is, with nothing made for it.
      const tracer = registeredTracer(ERP_TRACER);
      if (!tracer) return next(call);
      const parent = context.active();
      const span = tracer.startSpan(`erp ${call.endpoint}`, { kind: SpanKind.INTERNAL }, parent);
      // This trace not sampled: nothing to record, nothing to carry. Attributes are built only past this point.
      if (!span.isRecording()) return next(call);
      span.setAttributes({ [ErpAttr.endpoint]: call.endpoint, [ErpAttr.kind]: call.kind });
      if (call.requestId) span.setAttribute(ErpAttr.requestId, call.requestId);
      const attempts = new AttemptCount();
      const active = trace.setSpan(parent, span).setValue(ATTEMPTS, attempts);
      return context.with(active, () => next(call)).then(
        (reply) => {
          span.setAttributes({ [ErpAttr.outcome]: 'ok', [ErpAttr.attempts]: attempts.n });
          span.end();
          return reply;
        },
        (e: unknown) => {
          span.setAttribute(ErpAttr.attempts, attempts.n);
          if (failed(span, e) === ErpErrorCode.CircuitOpen) span.addEvent(ErpEvent.breakerRejected);
          span.end();
          throw e;
        },
      );
    },
  };
}

export interface AttemptTracer extends ErpLayer, WireObserver {}

/**
 * Just above the transport: one CLIENT span per attempt on the wire. The transport reports each reply's HTTP status
 * and size through `reply` (it is handed this object as its WireObserver).
 */
export function traceAttempts(erpBaseUrl?: string): AttemptTracer {
  // Where the ERP is, without any user info a URL could carry.
  const server: Attributes = {};
  if (erpBaseUrl) {
    const url = new URL(erpBaseUrl);
    server[ErpAttr.serverAddress] = url.hostname;
    server[ErpAttr.serverPort] = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  }
  // The attempt on the wire for each call object the transport is handed (attempts of one call are sequential).
  const onWire = new WeakMap<ErpCall, Span>();
  return {
    wrap: (next) => (call) => {
      const tracer = registeredTracer(ERP_TRACER);
      if (!tracer) return next(call);
      const parent = context.active();
      const span = tracer.startSpan(`erp ${call.endpoint} attempt`, { kind: SpanKind.CLIENT }, parent);
      if (!span.isRecording()) return next(call);
      const count = parent.getValue(ATTEMPTS);
      const attempt = count instanceof AttemptCount ? ++count.n : 1;
      span.setAttributes(server);
      span.setAttributes({ [ErpAttr.endpoint]: call.endpoint, [ErpAttr.attempt]: attempt, [ErpAttr.method]: 'POST', [ErpAttr.urlPath]: call.path });
      onWire.set(call, span);
      return context.with(trace.setSpan(parent, span), () => next(call)).then(
        (reply) => {
          onWire.delete(call);
          span.setAttributes({ [ErpAttr.outcome]: 'ok', [ErpAttr.erpStatus]: reply.header.status });
          span.end();
          return reply;
        },
        (e: unknown) => {
          onWire.delete(call);
          failed(span, e);
          if (e instanceof ErpHeaderStatusError) span.setAttribute(ErpAttr.erpStatus, e.status);
          if (e instanceof ErpHttpStatusError) span.setAttribute(ErpAttr.httpStatus, e.statusCode);
          span.end();
          throw e;
        },
      );
    },
    reply: (call, status, text, contentLength) => {
      const span = onWire.get(call);
      if (!span) return;
      const declared = typeof contentLength === 'string' ? Number(contentLength) : NaN;
      span.setAttributes({ [ErpAttr.httpStatus]: status, [ErpAttr.bodySize]: Number.isInteger(declared) ? declared : Buffer.byteLength(text) });
    },
  };
}

/**
 * `observer` plus span events: what the layers report (retries, logins, the breaker, cache answers, coalesced joins)
 * lands on the active span, which is the call's own when the report is made inside the stack; a wait for a call slot
 * becomes an `erp queue` span. Only codes, counts and states: the login's reason text is not recorded.
 */
export function traceEvents(observer: ErpObserver): ErpObserver {
  return {
    ...observer,
    retry(call, attempt, delayMs, code) {
      observer.retry?.(call, attempt, delayMs, code);
      recording()?.addEvent(ErpEvent.retry, { [ErpAttr.attempt]: attempt, [ErpAttr.retryDelayMs]: delayMs, [ErpAttr.errorCode]: code });
    },
    login(identity, outcome, detail) {
      observer.login?.(identity, outcome, detail);
      const attributes: Attributes = { [ErpAttr.outcome]: outcome };
      if (detail?.retryAt !== undefined) attributes[ErpAttr.retryAt] = new Date(detail.retryAt).toISOString();
      recording()?.addEvent(ErpEvent.login, attributes);
    },
    breaker(state) {
      observer.breaker?.(state);
      recording()?.addEvent(ErpEvent.breaker, { [ErpAttr.breakerState]: state });
    },
    coalesced(call) {
      observer.coalesced?.(call);
      const span = recording();
      span?.setAttribute(ErpAttr.coalesced, true);
      span?.addEvent(ErpEvent.coalesced);
    },
    cache(call, result) {
      observer.cache?.(call, result);
      const span = recording();
      span?.setAttribute(ErpAttr.cache, result);
      span?.addEvent(ErpEvent.cache, { [ErpAttr.cache]: result });
    },
    cacheDropped(call, code) {
      observer.cacheDropped?.(call, code);
      recording()?.addEvent(ErpEvent.cacheDropped, { [ErpAttr.errorCode]: code });
    },
    waiting(call) {
      const done = observer.waiting?.(call);
      const tracer = registeredTracer(ERP_TRACER);
      if (!tracer) return done;
      const span = tracer.startSpan('erp queue', {}, context.active());
      if (!span.isRecording()) return done;
      span.setAttribute(ErpAttr.endpoint, call.endpoint);
      return (outcome) => {
        if (done) done(outcome);
        span.setAttribute(ErpAttr.outcome, outcome);
        if (outcome !== 'slot') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
        span.end();
      };
    },
  };
}

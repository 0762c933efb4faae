import { randomBytes } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { postJson, SIM_PASSWORD, startStack, until, type TestStack } from './helpers';

/**
 * Traces of one GraphQL operation, in process, exported to memory: the operation's span continues the caller's
 * `traceparent`/`tracestate`, the ERP calls and their attempts hang under it, logins, retries, queueing, coalescing,
 * cache answers and breaker refusals show as spans or events where they happened, every log line of the request
 * carries the trace id, and no secret (session token, password, a datas value such as a filter text) is recorded.
 */
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
// The global tracer provider, the AsyncLocalStorage context manager and the W3C propagators, as the SDK registers them.
provider.register();
afterAll(() => provider.shutdown());

type Span = ReadableSpan;
const idOf = (s: Span) => s.spanContext().spanId;
const childrenOf = (spans: Span[], parent: Span) => spans.filter((s) => s.parentSpanContext?.spanId === idOf(parent));
const named = (spans: Span[], name: string) => spans.filter((s) => s.name === name);
const events = (s: Span) => s.events.map((e) => e.name);
const inTrace = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

interface Caller {
  traceId: string;
  parentId: string;
  headers: Record<string, string>;
}
function caller(tracestate?: string): Caller {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  return { traceId, parentId, headers: { traceparent: `00-${traceId}-${parentId}-01`, ...(tracestate ? { tracestate } : {}) } };
}

/** Everything a span records that an exporter would send, as one text to search for secrets. */
function recorded(spans: Span[]): string {
  return JSON.stringify(
    spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      links: s.links,
      status: s.status,
      resource: s.resource.attributes,
      scope: s.instrumentationScope,
    })),
  );
}

function opSpan(spans: Span[]): Span {
  const ops = spans.filter((s) => s.kind === SpanKind.SERVER);
  expect(ops).toHaveLength(1);
  return ops[0]!;
}

async function gql(t: TestStack, query: string, variables: Record<string, unknown>, headers: Record<string, string>) {
  const r = await postJson(t.app.url, { query, variables }, headers);
  return { status: r.status, body: r.json as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> }, requestId: r.headers.get('x-request-id') ?? '' };
}

describe('one operation with a traceparent: the span tree, the log lines, no secrets', () => {
  let t: TestStack;
  beforeAll(async () => {
    t = await startStack({ env: { ZB_RETRY_BASE_MS: '1', ZB_RETRY_MAX_MS: '2' } });
  });
  afterAll(() => t.close());

  it('continues the caller trace: operation > ERP calls > attempts, with the retry and the relogin it took', async () => {
    // A customer name as the filter: a datas value sent to the ERP that must not be recorded.
    const first = await t.gql<{ afterSaleServices: { items: Array<{ customerName: string }> } }>('{ afterSaleServices(pageSize: 1) { items { customerName } } }');
    const filter = first.data!.afterSaleServices.items[0]!.customerName;
    expect(filter.length).toBeGreaterThan(3);
    const tokenBefore = t.sim.sessions.tokens();
    exporter.reset();
    // The list fails once with HTTP 500 (retried); the first detail finds its session revoked (relogin, repeat).
    t.sim.faults.inject({ kind: 'http500', endpoint: 'list' });
    t.sim.faults.inject({ kind: 'session10', endpoint: 'detail' });

    const from = caller('zb=t1,other=x');
    const r = await gql(t, 'query Services($name: String) { afterSaleServices(filter: { customerName: $name }, pageSize: 3) { items { id title content } } }', { name: filter }, from.headers);
    expect(r.status).toBe(200);
    expect(r.body.errors).toBeUndefined();
    const spans = inTrace(from.traceId);

    // The operation: a SERVER span, child of the caller's span, keeping its tracestate.
    const op = opSpan(spans);
    expect(op.name).toBe('query Services');
    expect(op.parentSpanContext?.spanId).toBe(from.parentId);
    expect(op.parentSpanContext?.isRemote).toBe(true);
    expect(op.spanContext().traceState?.serialize()).toBe('zb=t1,other=x');
    expect(op.attributes).toEqual(expect.objectContaining({
      'graphql.operation.type': 'query', 'graphql.operation.name': 'Services', 'zb.request_id': r.requestId, 'zb.graphql.outcome': 'ok', 'http.response.status_code': 200,
    }));
    expect(op.status.code).toBe(SpanStatusCode.UNSET);

    // The ERP calls: one list and the details of its rows, all children of the operation.
    const calls = childrenOf(spans, op);
    const items = (r.body.data as { afterSaleServices: { items: unknown[] } }).afterSaleServices.items;
    expect(items.length).toBeGreaterThan(0);
    expect(calls.map((s) => s.name).sort()).toEqual(['erp list', ...items.map(() => 'erp detail')].sort());
    for (const call of calls) {
      expect(call.kind).toBe(SpanKind.INTERNAL);
      expect(call.attributes).toEqual(expect.objectContaining({ 'zb.erp.kind': 'read', 'zb.erp.outcome': 'ok', 'zb.request_id': r.requestId }));
    }

    // The list: attempt 1 got HTTP 500, a retry event, attempt 2 answered.
    const list = named(calls, 'erp list')[0]!;
    expect(list.attributes['zb.erp.attempts']).toBe(2);
    const retry = list.events.find((e) => e.name === 'erp.retry');
    expect(retry?.attributes).toEqual(expect.objectContaining({ 'zb.erp.attempt': 1, 'zb.erp.error_code': 'ERP_HTTP_STATUS' }));
    const listAttempts = childrenOf(spans, list).sort((a, b) => Number(a.attributes['zb.erp.attempt']) - Number(b.attributes['zb.erp.attempt']));
    expect(listAttempts.map((s) => [s.name, s.kind, s.attributes['zb.erp.attempt'], s.attributes['zb.erp.outcome'], s.attributes['http.response.status_code']])).toEqual([
      ['erp list attempt', SpanKind.CLIENT, 1, 'ERP_HTTP_STATUS', 500],
      ['erp list attempt', SpanKind.CLIENT, 2, 'ok', 200],
    ]);
    expect(listAttempts[1]!.attributes).toEqual(expect.objectContaining({
      'zb.erp.endpoint': 'list', 'zb.erp.status': 0, 'http.request.method': 'POST', 'url.path': '/sysa/mobilephone/salesmanage/service/list.asp', 'server.address': '127.0.0.1',
    }));
    expect(listAttempts[1]!.attributes['http.response.body.size']).toBeGreaterThan(100);
    expect(listAttempts[0]!.status.code).toBe(SpanStatusCode.ERROR);

    // The relogin: one login, under the detail call that found its session revoked, which then repeated its attempt.
    const logins = named(spans, 'erp login');
    expect(logins).toHaveLength(1);
    const relogged = calls.find((c) => idOf(c) === logins[0]!.parentSpanContext?.spanId)!;
    expect(relogged.name).toBe('erp detail');
    expect(relogged.events.find((e) => e.name === 'erp.login')?.attributes).toEqual({ 'zb.erp.outcome': 'ok' });
    expect(childrenOf(spans, logins[0]!).map((s) => [s.name, s.attributes['zb.erp.outcome']])).toEqual([['erp login attempt', 'ok']]);
    const detailAttempts = named(childrenOf(spans, relogged), 'erp detail attempt').sort((a, b) => Number(a.attributes['zb.erp.attempt']) - Number(b.attributes['zb.erp.attempt']));
    expect(detailAttempts.map((s) => [s.attributes['zb.erp.attempt'], s.attributes['zb.erp.outcome'], s.attributes['zb.erp.status']])).toEqual([
      [1, 'ERP_SESSION', 10],
      [2, 'ok', 0],
    ]);

    // Nothing of this request's outside its trace; nothing secret inside it.
    const ofRequest = exporter.getFinishedSpans().filter((s) => s.attributes['zb.request_id'] === r.requestId);
    expect(ofRequest.every((s) => s.spanContext().traceId === from.traceId)).toBe(true);
    const text = recorded(exporter.getFinishedSpans());
    const tokens = [...new Set([...tokenBefore, ...t.sim.sessions.tokens()])];
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    for (const secret of [...tokens, SIM_PASSWORD, filter]) expect(text).not.toContain(secret);

    // Every log line of the request carries its trace id.
    const lines = t.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === r.requestId);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['graphql request', 'erp call', 'erp retry']));
    for (const line of lines) expect(line.trace_id).toBe(from.traceId);
    const loginLine = t.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'erp login' && l.trace_id === from.traceId);
    expect(loginLine).toBeDefined();
  });

  it('without a traceparent the operation starts a trace of its own', async () => {
    exporter.reset();
    const r = await gql(t, '{ afterSaleServices(pageSize: 2) { items { id } } }', {}, {});
    expect(r.status).toBe(200);
    const op = opSpan(exporter.getFinishedSpans());
    expect(op.name).toBe('query');
    expect(op.parentSpanContext).toBeUndefined();
    expect(childrenOf(exporter.getFinishedSpans(), op).map((s) => s.name)).toEqual(['erp list']);
  });
});

/** Polls an async condition (metrics are read asynchronously), bounded. */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const give = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > give) throw new Error(`never reached: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
const metricTotal = async (t: TestStack, name: 'queued' | 'coalesced') => (await t.app.metrics[name].get()).values.reduce((n, v) => n + v.value, 0);

describe('waiting: a coalesced join and a queued call stay in their own traces', () => {
  let t: TestStack;
  // One process-wide call slot: a second distinct read waits for it.
  beforeAll(async () => {
    t = await startStack({ env: { ZB_MAX_CONCURRENT_CALLS: '1', ZB_DETAIL_CONCURRENCY: '1' } });
  });
  afterAll(() => t.close());

  it('B joins A\'s call (event, no attempt of its own); C queues for the slot (span) and makes its own attempt', async () => {
    exporter.reset();
    const held = t.sim.faults.hold({ endpoint: 'list' });
    const [a, b, c] = [caller(), caller(), caller()];
    const list = (n: number) => `{ afterSaleServices(pageSize: ${n}) { items { id } } }`;
    const ra = gql(t, list(2), {}, a.headers);
    await until(() => held.held === 1, 'A reaches the ERP');
    const rb = gql(t, list(2), {}, b.headers);
    await eventually(async () => (await metricTotal(t, 'coalesced')) === 1, 'B joins A');
    const rc = gql(t, list(3), {}, c.headers);
    await eventually(async () => (await metricTotal(t, 'queued')) === 1, 'C waits for the slot');
    held.release();
    for (const r of await Promise.all([ra, rb, rc])) expect(r.body.errors).toBeUndefined();

    const [sa, sb, sc] = [inTrace(a.traceId), inTrace(b.traceId), inTrace(c.traceId)];
    // A: its call and its one attempt.
    const callA = childrenOf(sa, opSpan(sa))[0]!;
    expect(childrenOf(sa, callA).map((s) => s.name)).toEqual(['erp list attempt']);
    // B: a call answered by A's, marked as such.
    const callB = childrenOf(sb, opSpan(sb))[0]!;
    expect(events(callB)).toContain('erp.coalesced');
    expect(callB.attributes).toEqual(expect.objectContaining({ 'zb.erp.coalesced': true, 'zb.erp.attempts': 0 }));
    expect(childrenOf(sb, callB)).toEqual([]);
    // C: the wait for the slot, then its own attempt, both in C's trace although A's call freed the slot.
    const callC = childrenOf(sc, opSpan(sc))[0]!;
    expect(childrenOf(sc, callC).map((s) => [s.name, s.attributes['zb.erp.outcome']]).sort()).toEqual([['erp list attempt', 'ok'], ['erp queue', 'slot']]);
    // Nothing of C's landed in A's trace (the slot was handed over from A's call) nor in B's.
    expect(named(sa, 'erp list attempt')).toHaveLength(1);
    expect([...sa, ...sb].filter((s) => s.name === 'erp queue')).toEqual([]);
  });
});

describe('answers without the wire: cache hits and breaker refusals', () => {
  it('a cached answer is an event on the call, with no attempt', async () => {
    const t = await startStack({ env: { ZB_CACHE_TTL_MS: '60000' } });
    try {
      exporter.reset();
      const [first, second] = [caller(), caller()];
      await gql(t, '{ afterSaleServices(pageSize: 2) { items { id } } }', {}, first.headers);
      await gql(t, '{ afterSaleServices(pageSize: 2) { items { id } } }', {}, second.headers);
      const miss = childrenOf(inTrace(first.traceId), opSpan(inTrace(first.traceId)))[0]!;
      const hit = childrenOf(inTrace(second.traceId), opSpan(inTrace(second.traceId)))[0]!;
      expect([miss.attributes['zb.erp.cache'], miss.attributes['zb.erp.attempts']]).toEqual(['miss', 1]);
      expect([hit.attributes['zb.erp.cache'], hit.attributes['zb.erp.attempts']]).toEqual(['hit', 0]);
      expect(hit.events.find((e) => e.name === 'erp.cache')?.attributes).toEqual({ 'zb.erp.cache': 'hit' });
      expect(childrenOf(inTrace(second.traceId), hit)).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a call the open breaker refuses has the refusal event, and the operation its error code', async () => {
    const t = await startStack({ env: { ZB_BREAKER_VOLUME: '1', ZB_BREAKER_ERROR_PERCENT: '1', ZB_RETRIES: '0' } });
    try {
      exporter.reset();
      t.sim.faults.inject({ kind: 'http500', endpoint: 'list' });
      const [failing, refused] = [caller(), caller()];
      await gql(t, '{ afterSaleServices(pageSize: 2) { items { id } } }', {}, failing.headers);
      expect(inTrace(failing.traceId).some((s) => s.events.some((e) => e.name === 'erp.breaker' && e.attributes?.['zb.erp.breaker.state'] === 'open'))).toBe(true);
      const r = await gql(t, '{ afterSaleServices(pageSize: 2) { items { id } } }', {}, refused.headers);
      expect(r.body.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
      const spans = inTrace(refused.traceId);
      const op = opSpan(spans);
      expect(op.attributes).toEqual(expect.objectContaining({ 'zb.graphql.outcome': 'error', 'zb.graphql.error_codes': ['UPSTREAM_UNAVAILABLE'] }));
      expect(op.status).toEqual({ code: SpanStatusCode.ERROR, message: 'UPSTREAM_UNAVAILABLE' });
      const call = childrenOf(spans, op)[0]!;
      expect(events(call)).toContain('erp.breaker.rejected');
      expect(call.attributes).toEqual(expect.objectContaining({ 'zb.erp.outcome': 'ERP_CIRCUIT_OPEN', 'zb.erp.attempts': 0 }));
      expect(childrenOf(spans, call)).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

import { eventually, postJson, startStack, until } from './helpers';

/** Process-wide bound on ERP calls, the per-request deadline, and retries through the GraphQL layer. */
const LIST = '{ afterSaleServices(pageSize: 3) { items { id } } }';

it('a full call bound answers UPSTREAM_BUSY after the maximum queue wait', async () => {
  const s = await startStack({ env: { ZB_MAX_CONCURRENT_CALLS: '1', ZB_QUEUE_TIMEOUT_MS: '50', ZB_TIMEOUT_MS: '1500', ZB_RETRIES: '0' } });
  try {
    s.sim.faults.inject({ kind: 'stall', endpoint: 'list' });
    const stalled = s.gql(LIST);
    // The stalled call holds the only slot once the simulator has it.
    await until(() => s.sim.calls.count('list') === 1, 'the stalled list call reached the simulator');
    const busy = await s.gql('{ afterSaleServices(pageSize: 4) { items { id } } }');
    expect(busy.errors?.[0]?.extensions?.code).toBe('UPSTREAM_BUSY');
    expect(s.sim.calls.count('list')).toBe(1);
    expect((await stalled).errors?.[0]?.extensions?.code).toBe('UPSTREAM_TIMEOUT');
  } finally {
    await s.close();
  }
});

it('beyond ZB_MAX_INFLIGHT_REQUESTS a request is refused at once with 503 SERVER_BUSY, and the slot is given back', async () => {
  const s = await startStack({ env: { ZB_MAX_INFLIGHT_REQUESTS: '2', ZB_REQUEST_DEADLINE_MS: '1000', ZB_RETRIES: '0' } });
  try {
    s.sim.faults.inject({ kind: 'stall', endpoint: 'list', times: 2 });
    // Two different lists, so coalescing does not fold them into one ERP call.
    const held = [s.gql(LIST), s.gql('{ afterSaleServices(pageSize: 4) { items { id } } }')];
    await until(() => s.sim.calls.count('list') === 2, 'both stalled list calls reached the simulator');
    const refused = await postJson(s.app.url, { query: LIST });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.json).toEqual({ errors: [{ message: expect.stringContaining('2 operations in flight'), extensions: { code: 'SERVER_BUSY' } }] });
    // Refused before any work: no ERP call of its own.
    expect(s.sim.calls.count('list')).toBe(2);
    // The held operations end (at their deadline, as errors) and give their slots back.
    for (const r of await Promise.all(held)) expect(r.errors?.[0]?.extensions?.code).toBe('UPSTREAM_TIMEOUT');
    expect((await s.gql(LIST)).errors).toBeUndefined();
    const metrics = await (await fetch(s.app.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(/^zb_graphql_shed_total 1$/m);
    expect(metrics).toMatch(/^zb_graphql_in_flight 0$/m);
  } finally {
    await s.close();
  }
});

it('a stalled ERP ends at the request deadline with UPSTREAM_TIMEOUT, and the server keeps serving', async () => {
  const s = await startStack({ env: { ZB_REQUEST_DEADLINE_MS: '200', ZB_TIMEOUT_MS: '10000' } });
  try {
    s.sim.faults.inject({ kind: 'stall', endpoint: 'list' });
    const r = await s.gql(LIST);
    expect(r.errors?.[0]?.extensions?.code).toBe('UPSTREAM_TIMEOUT');
    expect((await s.gql(LIST)).errors).toBeUndefined();
  } finally {
    await s.close();
  }
});

it.each(['html', 'status11', 'drop', 'http500', 'badJson'] as const)('a transient %s fault on a read is retried and the query succeeds', async (kind) => {
  const s = await startStack();
  try {
    s.sim.faults.inject({ kind, endpoint: 'detail', times: 1, delayMs: 30 });
    const r = await s.gql('{ afterSaleService(id: "1001") { title } }');
    expect(r.errors).toBeUndefined();
    expect(s.sim.calls.count('detail')).toBe(2);
  } finally {
    await s.close();
  }
});

it('a kicked or expired service session is renewed once, transparently', async () => {
  const s = await startStack();
  try {
    for (const token of s.sim.sessions.tokens()) s.sim.sessions.revoke(token, 1);
    expect((await s.gql(LIST)).errors).toBeUndefined();
    s.sim.advanceClock(30 * 60000);
    expect((await s.gql(LIST)).errors).toBeUndefined();
    expect(s.sim.calls.count('login')).toBe(2);
  } finally {
    await s.close();
  }
});

it('a client that goes away mid-request aborts its ERP call at once and gives its slot back', async () => {
  const s = await startStack({ env: { ZB_REQUEST_DEADLINE_MS: '60000', ZB_TIMEOUT_MS: '60000', ZB_RETRIES: '0' } });
  const metric = async (line: RegExp) => line.test(await (await fetch(s.app.url.replace('/graphql', '/metrics'))).text());
  try {
    s.sim.faults.inject({ kind: 'stall', endpoint: 'list' });
    const gone = new AbortController();
    const request = fetch(s.app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: LIST }), signal: gone.signal });
    await until(() => s.sim.calls.count('list') === 1, 'the stalled list call reached the simulator');
    expect(await metric(/^zb_graphql_in_flight 1$/m)).toBe(true);
    gone.abort();
    await expect(request).rejects.toThrow();
    // Long before any time limit: the request's abort reached the call on the wire.
    await eventually(() => metric(/^zb_erp_calls_total\{endpoint="list",outcome="ERP_ABORTED"\} 1$/m), 'the stalled call reported ERP_ABORTED', 5000, 10);
    // The request's admission ticket is given back once Apollo has answered: right after, not necessarily before.
    await eventually(() => metric(/^zb_graphql_in_flight 0$/m), 'no GraphQL operation in flight', 5000, 10);
    expect((await s.gql('{ afterSaleServices(pageSize: 4) { items { id } } }')).errors).toBeUndefined();
  } finally {
    await s.close();
  }
});

import { startStack, postJson, SIM_PASSWORD, type TestStack } from './helpers';

/** Identity isolation, GraphQL limits, hostile input, and secrets that must never leak. */
let t: TestStack;
beforeAll(async () => {
  t = await startStack();
});
afterAll(() => t.close());
beforeEach(() => {
  t.sim.calls.clear();
  t.sim.faults.reset();
});

async function userToken(user: string, password: string, serial: string): Promise<string> {
  const r = await postJson(`${t.sim.url}/webapi/v3/ov1/login`, { datas: [{ id: 'user', val: `txt:${user}` }, { id: 'password', val: `txt:${password}` }, { id: 'serialnum', val: `txt:${serial}` }] });
  return (r.json as { header: { session: string } }).header.session;
}

describe('per-user ERP sessions (x-zb-session)', () => {
  it('concurrent requests with two tokens: every ERP call carries its own request\'s token', async () => {
    const zhang = await userToken('zhangwei', 'zhangwei-pass', 'iso-1');
    const lina = await userToken('lina', 'lina-pass', 'iso-2');
    t.sim.calls.clear();
    const q = '{ afterSaleServices(pageSize: 10) { pageInfo { totalCount } items { id content } } }';
    const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => t.gql<{ afterSaleServices: { pageInfo: { totalCount: number } } }>(q, {}, { 'x-zb-session': i % 2 ? zhang : lina })));
    const counts = new Set(runs.map((r) => r.data!.afterSaleServices.pageInfo.totalCount));
    expect(counts.size).toBe(2);
    const calls = t.sim.calls.all();
    expect(calls.every((c) => c.session === zhang || c.session === lina)).toBe(true);
    expect(calls.filter((c) => c.endpoint === 'login')).toHaveLength(0);
    // Coalescing and loaders are per identity: each token did its own list calls.
    expect(calls.filter((c) => c.endpoint === 'list' && c.session === zhang).length).toBeGreaterThan(0);
    expect(calls.filter((c) => c.endpoint === 'list' && c.session === lina).length).toBeGreaterThan(0);
  });

  it('a refused user session is UNAUTHENTICATED, with no relogin', async () => {
    const r = await t.gql('{ afterSaleServices { items { id } } }', {}, { 'x-zb-session': 'EXPIRED-OR-FAKE' });
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.sim.calls.all().map((c) => c.endpoint)).toEqual(['list']);
  });

  it('ZB_SESSION_HEADER_REQUIRED refuses requests without the header', async () => {
    const s = await startStack({ env: { ZB_SESSION_HEADER_REQUIRED: 'true' } });
    try {
      const r = await s.gql('{ afterSaleServices { items { id } } }');
      expect(r.status).toBe(401);
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(s.sim.calls.count('list')).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe('GraphQL limits and hostile input', () => {
  it('refuses an alias bomb', async () => {
    const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: afterSaleService(id: "1001") { id }`).join(' ');
    const r = await t.gql(`{ ${aliases} }`);
    expect(r.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(t.sim.calls.count()).toBe(0);
  });

  it('refuses a deep query', async () => {
    let sel = 'id';
    for (let i = 0; i < 12; i++) sel = `customer { afterSaleServices { items { ${sel} } } }`;
    const r = await t.gql(`{ afterSaleService(id: "1001") { ${sel} } }`);
    expect(r.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses an oversize body with 413 and keeps serving', async () => {
    const r = await postJson(t.app.url, { query: '{ __typename }', variables: { x: 'x'.repeat(200 * 1024) } });
    expect(r.status).toBe(413);
    expect((await t.gql('{ __typename }')).data).toEqual({ __typename: 'Query' });
  });

  it('answers wrong types and junk with typed errors', async () => {
    const wrong = await t.gql('query($p: Int) { afterSaleServices(pageSize: $p) { items { id } } }', { p: 'ten' });
    expect(wrong.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const junk = await postJson(t.app.url, '{not json');
    expect(junk.status).toBe(400);
    const syntax = await t.gql('{ afterSaleServices( }');
    expect(syntax.status).toBe(400);
    expect(syntax.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  it('passes injection-like text filters up to the length limit to the ERP unchanged, as data', async () => {
    const evil = "'; exec xp_cmdshell 'dir';-- <script>alert(1)</script> %' OR '1'='1";
    const r = await t.gql('query($f: AfterSaleServiceFilter) { afterSaleServices(filter: $f) { items { id } } }', { f: { title: evil, search: '长'.repeat(200) } });
    expect(r.errors).toBeUndefined();
    expect(t.sim.calls.of('list')[0]!.datas).toEqual(expect.objectContaining({ title: evil, searchKey: '长'.repeat(200) }));
  });

  it('filter texts and id lists are bounded: longer ones are BAD_USER_INPUT before any ERP call, without echoing the input', async () => {
    const q = 'query($f: AfterSaleServiceFilter) { afterSaleServices(filter: $f) { items { id } } }';
    const text = await t.gql(q, { f: { search: '长'.repeat(201) } });
    expect(text.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'search' }));
    const ids = await t.gql(q, { f: { urgencyIds: Array.from({ length: 101 }, (_, i) => String(i + 1)) } });
    expect(ids.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'urgencyIds' }));
    const long = await t.gql('query($id: ID!) { afterSaleService(id: $id) { id } }', { id: '9'.repeat(60_000) });
    expect(long.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(long.errors).length).toBeLessThan(1000);
    expect(t.sim.calls.count()).toBe(0);
  });

  it('refuses GET queries without a CSRF preflight header', async () => {
    const res = await fetch(`${t.app.url}?query=${encodeURIComponent('{ __typename }')}`);
    expect(res.status).toBe(400);
  });

  it('serves health, readiness and metrics beside /graphql', async () => {
    const base = t.app.url.replace('/graphql', '');
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    await t.gql('{ afterSaleServices(pageSize: 2) { items { id } } }');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/zb_erp_calls_total\{endpoint="list",outcome="ok"\} \d+/);
    expect(metrics).toMatch(/zb_graphql_request_duration_seconds_count/);
  });

  it('is not ready while the ERP refuses the service account', async () => {
    const s = await startStack({ sim: { password: 'something-else' } });
    try {
      expect((await fetch(s.app.url.replace('/graphql', '/health/ready'))).status).toBe(503);
    } finally {
      await s.close();
    }
  });
});

describe('secrets', () => {
  it('never logs or returns the ERP password or any session token', async () => {
    const user = await userToken('zhangwei', 'zhangwei-pass', 'sec');
    await t.gql('{ afterSaleServices(pageSize: 3) { items { content } } }');
    await t.gql('{ afterSaleServices(pageSize: 3) { items { id } } }', {}, { 'x-zb-session': user });
    await t.gql('{ afterSaleServices { items { id } } }', {}, { 'x-zb-session': 'BAD-TOKEN-123' });
    t.sim.faults.inject({ kind: 'status11', endpoint: 'list', times: 5 });
    const failed = await t.gql('{ afterSaleServices { items { id } } }');
    const tokens = new Set(t.sim.calls.all().map((c) => c.session).filter(Boolean));
    expect(tokens.size).toBeGreaterThan(1);
    const logs = t.logs.text;
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toContain('erp call');
    for (const secret of [SIM_PASSWORD, 'zhangwei-pass', ...tokens, 'BAD-TOKEN-123']) {
      expect(logs).not.toContain(secret);
      expect(JSON.stringify(failed)).not.toContain(secret);
    }
    // The ERP's internal error text (SQL provider) stays out of the response.
    expect(JSON.stringify(failed)).not.toContain('OLE DB');
  });
});

describe('token limit', () => {
  it('refuses a query over ZB_MAX_TOKENS as a parse failure (400)', async () => {
    const fields = Array.from({ length: 2500 }, () => 'id').join(' ');
    const r = await t.gql(`{ afterSaleService(id: "1") { ${fields} } }`);
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(r.errors?.[0]?.message).toMatch(/contains more th\w+ 2000 tokens/);
  });
});

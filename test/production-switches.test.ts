import { startSubgraph, stopAllSubgraphs, type ChildEnv, type ChildSubgraph } from './support/spawn-subgraph';

/**
 * "Production switches do not switch": the shipped process (`node <npm start flags> dist/main.js`) configured only by
 * environment variables, as a deployment sets them. ZB_BASE_URL is unset, so each child runs its embedded simulator.
 */
interface GqlError {
  message: string;
  extensions?: Record<string, unknown>;
}
interface GqlBody {
  data?: Record<string, unknown> | null;
  errors?: GqlError[];
}
interface Reply {
  status: number;
  body: GqlBody;
}

const SESSION = { 'x-zb-session': 'any-token' }; // never reaches the ERP in the requests that carry it here
const INTROSPECTION = '{ __schema { types { name } } }';
const LIST = '{ afterSaleServices { items { id } } }';

async function post(s: ChildSubgraph, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${s.base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, ...(variables ? { variables } : {}) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body: GqlBody;
  try {
    body = JSON.parse(text) as GqlBody;
  } catch {
    throw new Error(`not JSON (${res.status}): ${text.slice(0, 300)}`);
  }
  return { status: res.status, body };
}

async function get(s: ChildSubgraph, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${s.base}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

const landingPage = (s: ChildSubgraph) => get(s, '/graphql', { accept: 'text/html' });
const isHtml = (r: { type: string; text: string }) => r.type.includes('text/html') || /<html|<!doctype/i.test(r.text);

function codes(r: Reply): unknown[] {
  return (r.body.errors ?? []).map((e) => e.extensions?.code);
}

function expectNoStacktrace(r: Reply): void {
  for (const e of r.body.errors ?? []) expect(e.extensions ?? {}).not.toHaveProperty('stacktrace');
}

function expectNoSuggestion(r: Reply): void {
  expect(r.body.errors?.length ?? 0).toBeGreaterThan(0);
  for (const e of r.body.errors ?? []) expect(e.message).not.toMatch(/did you mean/i);
  expectNoStacktrace(r);
}

/** One child per block, started in beforeAll and killed in afterAll whatever happened. */
function withSubgraph(env: ChildEnv): () => ChildSubgraph {
  let child: ChildSubgraph | undefined;
  beforeAll(async () => {
    child = await startSubgraph(env);
  }, 150_000); // may include building dist/ once
  afterAll(async () => {
    await child?.stop();
  }, 20_000);
  return () => {
    if (!child) throw new Error('subgraph did not start');
    return child;
  };
}

afterAll(() => stopAllSubgraphs(), 20_000);

describe('Production switches do not switch', () => {
  describe('NODE_ENV=production', () => {
    const s = withSubgraph({ NODE_ENV: 'production' });

    it('refuses introspection with GRAPHQL_VALIDATION_FAILED', async () => {
      const r = await post(s(), INTROSPECTION, undefined, SESSION);
      expect(r.status).toBe(400);
      expect(codes(r)).toContain('GRAPHQL_VALIDATION_FAILED');
      expect(r.body.data ?? undefined).toBeUndefined();
      expectNoStacktrace(r);
    });

    it('serves no landing page', async () => {
      const r = await landingPage(s());
      expect(isHtml(r)).toBe(false);
    });

    it('gives no "Did you mean" for a misspelt field', async () => {
      const r = await post(s(), '{ afterSaleServices { itemz { id } } }', undefined, SESSION);
      expect(codes(r)).toContain('GRAPHQL_VALIDATION_FAILED');
      expectNoSuggestion(r);
    });

    it('gives no "Did you mean" for a misspelt enum value in a variable', async () => {
      const r = await post(s(), 'query($r: AfterSaleRemind) { afterSaleServices(filter: {remind: $r}) { items { id } } }', { r: 'PENDNG' }, SESSION);
      expect(r.status).toBe(400);
      expect(codes(r)).toContain('BAD_USER_INPUT');
      expectNoSuggestion(r);
    });

    it('gives no "Did you mean" for a misspelt enum literal', async () => {
      const r = await post(s(), '{ afterSaleServices(filter: {remind: PENDNG}) { items { id } } }', undefined, SESSION);
      expect(codes(r)).toContain('GRAPHQL_VALIDATION_FAILED');
      expectNoSuggestion(r);
    });

    it('requires x-zb-session by default: a query without it is HTTP 401 UNAUTHENTICATED', async () => {
      const r = await post(s(), LIST);
      expect(r.status).toBe(401);
      expect(codes(r)).toEqual(['UNAUTHENTICATED']);
      expectNoStacktrace(r);
    });

    it('serves `_service { sdl }` without the header (gateways fetch the SDL)', async () => {
      const r = await post(s(), '{ _service { sdl } }');
      expect(r.body.errors).toBeUndefined();
      expect(r.status).toBe(200);
      expect((r.body.data?._service as { sdl?: unknown } | undefined)?.sdl).toEqual(expect.stringContaining('afterSaleServices'));
    });

    it('serves `{ __typename }` without the header', async () => {
      const r = await post(s(), '{ __typename }');
      expect(r.body.errors).toBeUndefined();
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({ __typename: 'Query' });
    });

    it('answers GET /health/live and /metrics without the header', async () => {
      expect((await get(s(), '/health/live')).status).toBe(200);
      const metrics = await get(s(), '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(/^# (HELP|TYPE) /m);
    });
  });

  describe('NODE_ENV=production ZB_INTROSPECTION=true', () => {
    const s = withSubgraph({ NODE_ENV: 'production', ZB_INTROSPECTION: 'true' });

    it('answers introspection', async () => {
      const r = await post(s(), INTROSPECTION, undefined, SESSION);
      expect(r.body.errors).toBeUndefined();
      expect(r.status).toBe(200);
      const types = (r.body.data?.__schema as { types: Array<{ name: string }> }).types.map((t) => t.name);
      expect(types).toContain('AfterSaleService');
    });

    it('serves the landing page', async () => {
      const r = await landingPage(s());
      expect(r.status).toBe(200);
      expect(isHtml(r)).toBe(true);
    });

    it('still requires the session header', async () => {
      expect((await post(s(), LIST)).status).toBe(401);
    });
  });

  describe('NODE_ENV unset (development)', () => {
    const s = withSubgraph({ NODE_ENV: undefined });

    it('answers introspection without a session header', async () => {
      const r = await post(s(), INTROSPECTION);
      expect(r.body.errors).toBeUndefined();
      expect(r.status).toBe(200);
      expect((r.body.data?.__schema as { types: unknown[] }).types.length).toBeGreaterThan(0);
    });

    it('serves the landing page', async () => {
      const r = await landingPage(s());
      expect(r.status).toBe(200);
      expect(isHtml(r)).toBe(true);
    });

    it('uses the service account when the header is absent', async () => {
      const r = await post(s(), LIST);
      expect(r.body.errors).toBeUndefined();
      expect(r.status).toBe(200);
    });
  });

  describe('NODE_ENV=production ZB_SESSION_HEADER_REQUIRED=false', () => {
    const s = withSubgraph({ NODE_ENV: 'production', ZB_SESSION_HEADER_REQUIRED: 'false' });

    it('answers a query without the header with the service account', async () => {
      const r = await post(s(), LIST);
      expect(r.body.errors).toBeUndefined();
      expect(r.status).toBe(200);
      const items = (r.body.data?.afterSaleServices as { items: unknown[] }).items;
      expect(items.length).toBeGreaterThan(0);
    });

    it('keeps introspection off', async () => {
      const r = await post(s(), INTROSPECTION);
      expect(codes(r)).toContain('GRAPHQL_VALIDATION_FAILED');
    });
  });
});

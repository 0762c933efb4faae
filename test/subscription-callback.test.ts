import { ErpSessionError } from '../src/erp/errors';
import { postJson, until } from './helpers';
import { FakeRouter } from './support/fake-router';
import { startSubscriptionServer, type SubscriptionServer } from './support/subscription-server';
import { ERP_TEXT } from './support/subscriptions';

/**
 * Apollo's HTTP callback protocol (src/server/subscription-callback.ts) against a fake Apollo Router (a real local
 * HTTP server, test/support/fake-router.ts). The subgraph is a real Apollo Server behind the app's router and GraphQL
 * endpoint; a test-driven source stands in for the change feed.
 */

interface GraphQLBody {
  data?: unknown;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

let server: SubscriptionServer | undefined;
let router: FakeRouter | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await router?.close();
  router = undefined;
});

async function start(limits: Record<string, number> = {}): Promise<{ s: SubscriptionServer; r: FakeRouter }> {
  router = await new FakeRouter().start();
  server = await startSubscriptionServer({ callback: { callbackUrls: [router.url], ...limits } });
  return { s: server, r: router };
}

function callback(s: SubscriptionServer) {
  if (!s.callback) throw new Error('no callback transport');
  return s.callback;
}

const SUBSCRIPTION = 'subscription { ticks(label: "cb") { n label who } }';

/** What Apollo Router sends in callback mode: a POST with the subscription extension and its Accept header. */
async function subscribe(
  s: SubscriptionServer,
  r: FakeRouter,
  id: string,
  options: { query?: string; heartbeatIntervalMs?: number; callbackUrl?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: GraphQLBody }> {
  const subscription = {
    callbackUrl: options.callbackUrl ?? r.callbackUrl(id),
    subscriptionId: id,
    verifier: `verifier-${id}`,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5000,
  };
  const { status, json } = await postJson(
    s.url,
    { query: options.query ?? SUBSCRIPTION, extensions: { subscription } },
    { accept: 'application/json;callbackSpec=1.0', 'x-test-who': 'router-client', ...options.headers },
  );
  return { status, body: json as GraphQLBody };
}

describe('callback protocol: the exchange with the router', () => {
  test('check first, then one next per event, heartbeats at the requested interval, complete when the source ends', async () => {
    const { s, r } = await start();
    const answer = await subscribe(s, r, 'sub-1', { heartbeatIntervalMs: 40 });
    expect(answer).toEqual({ status: 200, body: { data: null } });
    // The first check is made before the subscription request is answered.
    expect(r.of('sub-1')).toHaveLength(1);
    const first = r.of('sub-1')[0];
    expect(first).toMatchObject({ kind: 'subscription', action: 'check', id: 'sub-1', verifier: 'verifier-sub-1', protocol: 'callback/1.0' });
    await until(() => s.sources.list.length === 1, 'the source made');
    expect(callback(s).open).toBe(1);

    s.sources.last.push({ n: 1, label: 'cb' });
    await until(() => r.of('sub-1', 'next').length === 1, 'the first next');
    s.sources.last.push({ n: 2, label: 'cb' });
    await until(() => r.of('sub-1', 'next').length === 2, 'the second next');
    expect(r.of('sub-1', 'next').map((m) => m.payload)).toEqual([
      { data: { ticks: { n: 1, label: 'cb', who: 'router-client' } } },
      { data: { ticks: { n: 2, label: 'cb', who: 'router-client' } } },
    ]);
    expect(r.of('sub-1', 'next')[0]).toMatchObject({ kind: 'subscription', verifier: 'verifier-sub-1' });

    // Heartbeats are the same check message; the k-th cannot come before k intervals after the first check.
    await until(() => r.of('sub-1', 'check').length >= 4, 'three heartbeats');
    const checks = r.of('sub-1', 'check');
    checks.slice(1, 4).forEach((beat, i) => {
      expect(beat.protocol).toBe('callback/1.0');
      expect(beat.at - (first?.at ?? 0)).toBeGreaterThanOrEqual((i + 1) * 40 - 2);
    });

    s.sources.last.end();
    await until(() => r.of('sub-1', 'complete').length === 1, 'complete');
    expect(r.of('sub-1', 'complete')[0]).toEqual(expect.objectContaining({ kind: 'subscription', action: 'complete', id: 'sub-1', verifier: 'verifier-sub-1' }));
    expect(r.of('sub-1', 'complete')[0]?.errors).toBeUndefined();
    expect(callback(s).open).toBe(0);
  });

  test('the heartbeat interval is clamped: none asked (0) becomes heartbeatMaxMs, too frequent becomes heartbeatMinMs', async () => {
    router = await new FakeRouter().start();
    server = await startSubscriptionServer({ callback: { callbackUrls: [`${router.url}/`], heartbeatMinMs: 30, heartbeatMaxMs: 60 } });
    const [s, r] = [server, router];
    await subscribe(s, r, 'none', { heartbeatIntervalMs: 0 });
    await subscribe(s, r, 'fast', { heartbeatIntervalMs: 1 });
    await until(() => r.of('none', 'check').length >= 3 && r.of('fast', 'check').length >= 3, 'heartbeats on both');
    for (const [id, interval] of [['none', 60], ['fast', 30]] as const) {
      const checks = r.of(id, 'check');
      expect((checks[2]?.at ?? 0) - (checks[0]?.at ?? 0)).toBeGreaterThanOrEqual(2 * interval - 2);
    }
  });

  test('a 404 from the router to a heartbeat ends the subscription: the source is returned', async () => {
    const { s, r } = await start();
    await subscribe(s, r, 'sub-hb', { heartbeatIntervalMs: 30 });
    await until(() => s.sources.list.length === 1, 'the source made');
    r.forgotten.add('sub-hb');
    await until(() => s.sources.last.returned, "the source's return()");
    expect(callback(s).open).toBe(0);
    expect(r.of('sub-hb', 'complete')).toHaveLength(0);
  });

  test('a 404 from the router to a next ends the subscription: the source is returned', async () => {
    const { s, r } = await start();
    await subscribe(s, r, 'sub-next');
    await until(() => s.sources.list.length === 1, 'the source made');
    r.forgotten.add('sub-next');
    s.sources.last.push({ n: 1 });
    await until(() => s.sources.last.returned, "the source's return()");
    expect(r.of('sub-next', 'next')).toHaveLength(1);
    expect(callback(s).open).toBe(0);
  });

  test('a 404 to the first check: the subscription ends before its source is made', async () => {
    const { s, r } = await start();
    r.forgotten.add('sub-gone');
    await subscribe(s, r, 'sub-gone', { heartbeatIntervalMs: 10_000 });
    await until(() => callback(s).open === 0, 'no open subscription');
    expect(s.sources.list).toHaveLength(0);
    // The plugin still says complete (the router answers 404 to it): nothing is left running, no heartbeat timer.
    await until(() => r.of('sub-gone', 'complete').length === 1, 'complete');
  });

  test('a router that hangs: each POST times out (fetchTimeoutMs), the retries end, the subscription ends', async () => {
    // 1 s: far above a loopback answer even on a loaded machine (the first check uses the same timeout).
    const { s, r } = await start({ fetchTimeoutMs: 1000, retries: 1 });
    await subscribe(s, r, 'sub-hang');
    await until(() => s.sources.list.length === 1, 'the source made');
    r.hung.add('sub-hang');
    s.sources.last.push({ n: 1 });
    await until(() => s.sources.last.returned, "the source's return() after the timed-out next and its one retry", 10_000);
    // At most one try and one retry reached the router.
    expect(r.of('sub-hang', 'next').length).toBeGreaterThanOrEqual(1);
    expect(r.of('sub-hang', 'next').length).toBeLessThanOrEqual(2);
    expect(callback(s).open).toBe(0);
  });
});

describe('callback protocol: errors are formatted as over HTTP', () => {
  test("errors inside an event: internal ones masked, ERP ones translated, the ERP's text never sent", async () => {
    const { s, r } = await start();
    await subscribe(s, r, 'sub-err', { query: 'subscription { ticks { n secret erp } }' });
    await until(() => s.sources.list.length === 1, 'the source made');
    s.sources.last.push({ n: 1 });
    await until(() => r.of('sub-err', 'next').length === 1, 'the next');
    const payload = r.of('sub-err', 'next')[0]?.payload;
    expect(payload?.data).toEqual({ ticks: { n: 1, secret: null, erp: null } });
    expect(payload?.errors?.map((e) => e.extensions?.code).sort()).toEqual(['INTERNAL_SERVER_ERROR', 'UPSTREAM_BUSY']);
    expect(r.raw).not.toContain('postgres://');
    expect(r.raw).not.toContain('OLE DB');
  });

  test('a source that fails ends with complete carrying the public error', async () => {
    const { s, r } = await start();
    await subscribe(s, r, 'sub-fail');
    await until(() => s.sources.list.length === 1, 'the source made');
    s.sources.last.fail(new ErpSessionError(ERP_TEXT, 15));
    await until(() => r.of('sub-fail', 'complete').length === 1, 'complete');
    expect(r.of('sub-fail', 'complete')[0]?.errors).toEqual([
      { message: 'The ERP session is not valid; sign in to the ERP again.', extensions: { code: 'UNAUTHENTICATED', erpCode: 'ERP_SESSION' } },
    ]);
    expect(r.raw).not.toContain('OLE DB');
    expect(callback(s).open).toBe(0);
  });

  test('a subscription refused when it subscribes ends with complete carrying the public error', async () => {
    const { s, r } = await start();
    await subscribe(s, r, 'sub-refused', { query: 'subscription { ticks(label: "refuse") { n } }' });
    await until(() => r.of('sub-refused', 'complete').length === 1, 'complete');
    expect(r.of('sub-refused', 'complete')[0]?.errors?.[0]).toMatchObject({ message: 'The ERP session is not valid; sign in to the ERP again.', extensions: { code: 'UNAUTHENTICATED' } });
    expect(r.raw).not.toContain('OLE DB');
    expect(callback(s).open).toBe(0);
  });
});

describe('callback protocol: refused before anything is sent to the callback URL', () => {
  test.each([
    ['a callback URL outside the allowed prefixes', { callbackUrl: 'http://127.0.0.1:9/elsewhere/x' }, 400, 'BAD_REQUEST'],
    ['a query (the protocol is for subscriptions)', { query: '{ ok }' }, 400, 'BAD_REQUEST'],
    ['an operation that fails validation', { query: 'subscription { nope }' }, 400, 'GRAPHQL_VALIDATION_FAILED'],
    ['an operation another plugin refuses (admission: 401)', { headers: { 'x-test-refuse': '1' } }, 401, 'UNAUTHENTICATED'],
  ])('%s', async (_what, options, status, code) => {
    const { s, r } = await start();
    const answer = await subscribe(s, r, 'sub-x', options);
    expect(answer.status).toBe(status);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe(code);
    // The plugin would have checked before answering: nothing was sent, nothing subscribed.
    expect(r.messages).toHaveLength(0);
    expect(s.sources.list).toHaveLength(0);
    expect(callback(s).open).toBe(0);
  });

  test('a callback URL that only shares the allowed prefix as text (not as a path) is refused', async () => {
    const { s, r } = await start();
    const answer = await subscribe(s, r, 'sub-y', { callbackUrl: `${r.url}-elsewhere/sub-y` });
    expect(answer.status).toBe(400);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(answer.body.errors?.[0]?.message).not.toContain('elsewhere');
    expect(s.sources.list).toHaveLength(0);
  });

  test('a second subscription on a callback URL already active is refused (400)', async () => {
    const { s, r } = await start();
    expect((await subscribe(s, r, 'sub-dup')).status).toBe(200);
    const again = await subscribe(s, r, 'sub-dup');
    expect(again.status).toBe(400);
    expect(again.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(r.of('sub-dup', 'check')).toHaveLength(1);
    expect(s.sources.list).toHaveLength(1);
  });

  test('at maxSubscriptions the next is refused 503 SERVER_BUSY; one ending frees its slot', async () => {
    const { s, r } = await start({ maxSubscriptions: 2 });
    await subscribe(s, r, 'a');
    await subscribe(s, r, 'b');
    const refused = await subscribe(s, r, 'c');
    expect(refused.status).toBe(503);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('SERVER_BUSY');
    expect(r.of('c')).toHaveLength(0);
    s.sources.list[0]?.end();
    await until(() => callback(s).open === 1, 'one ended');
    expect((await subscribe(s, r, 'd')).status).toBe(200);
    expect(callback(s).open).toBe(2);
  });
});

describe('callback protocol: shutdown', () => {
  test('apollo.stop() (the plugin drain) sends complete for every open subscription and returns the sources', async () => {
    const { s, r } = await start();
    await subscribe(s, r, 'x1');
    await subscribe(s, r, 'x2');
    await until(() => s.sources.list.length === 2, 'two sources');
    await s.close();
    server = undefined;
    expect(r.of('x1', 'complete')).toHaveLength(1);
    expect(r.of('x2', 'complete')).toHaveLength(1);
    expect(s.sources.list.every((source) => source.returned)).toBe(true);
    expect(callback(s).open).toBe(0);
  });
});

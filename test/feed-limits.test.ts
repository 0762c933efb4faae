import WebSocket from 'ws';
import { postJson, startStack, until, type TestStack } from './helpers';
import { EventStreamReader, hiveGetUrl } from './support/event-stream';
import { FakeRouter } from './support/fake-router';
import { wsClient, wsUrl, type TestWsClient } from './support/ws-client';

/**
 * Every bound of the WebSocket transport and of the feed, attacked, each configured from the environment: connections,
 * the connection_init wait, the message size, subscriptions per identity and per process, filters per identity.
 */
let t: TestStack;
const clients: TestWsClient[] = [];
const sockets: WebSocket[] = [];
const streams: AbortController[] = [];
let router: FakeRouter;
const QUERY = 'subscription($filter: AfterSaleServiceFilter) { afterSaleServiceChanged(filter: $filter) { kind id } }';

beforeAll(async () => {
  router = await new FakeRouter().start();
  t = await startStack({
    env: {
      ZB_FEED_POLL_MS: '1000',
      ZB_FEED_WS_MAX_CONNECTIONS: '3',
      ZB_FEED_WS_INIT_TIMEOUT_MS: '200',
      ZB_BODY_LIMIT_BYTES: '4096',
      ZB_FEED_MAX_SUBSCRIPTIONS: '4',
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: '3',
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: '2',
      ZB_FEED_SSE_MAX_STREAMS: '2',
      ZB_FEED_CALLBACK_URLS: router.url,
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: '1',
    },
  });
});
afterAll(async () => {
  await t.close();
  await router.close();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
  for (const s of sockets.splice(0)) s.terminate();
  for (const c of streams.splice(0)) c.abort();
  await until(() => t.app.feed.stats().subscriptions === 0, 'subscriptions gone');
});

function client(options: Parameters<typeof wsClient>[1] = {}): TestWsClient {
  const c = wsClient(t.app.url, options);
  clients.push(c);
  return c;
}

/** Opens a raw socket; resolves with its upgrade status (101, or the refusal's HTTP status) and the socket. */
function open(): Promise<{ socket: WebSocket; status: number; closed: Promise<{ code: number; reason: string }> }> {
  const socket = new WebSocket(wsUrl(t.app.url), 'graphql-transport-ws');
  sockets.push(socket);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve) => {
    socket.once('open', () => resolve({ socket, status: 101, closed }));
    socket.once('unexpected-response', (_req, res) => resolve({ socket, status: res.statusCode ?? 0, closed }));
    socket.once('error', () => undefined);
  });
}

it('ZB_FEED_WS_MAX_CONNECTIONS: the connection past the bound is refused with 503 before the upgrade', async () => {
  const opened = await Promise.all([open(), open(), open()]);
  expect(opened.map((o) => o.status)).toEqual([101, 101, 101]);
  expect((await open()).status).toBe(503);
  opened[0]!.socket.close();
  await opened[0]!.closed;
  let open_ = -1;
  await until(() => {
    void t.app.metrics.wsConnections.get().then((m) => (open_ = m.values[0]?.value ?? -1));
    return open_ === 2;
  }, 'the closed connection counted out');
  expect((await open()).status).toBe(101);
});

it('ZB_FEED_WS_INIT_TIMEOUT_MS: a socket that never sends connection_init is closed with 4408', async () => {
  const { closed } = await open();
  expect(await closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
});

it('ZB_BODY_LIMIT_BYTES: a message over the limit closes the socket (1009) and is never held', async () => {
  const printed = jest.spyOn(console, 'error');
  try {
    const { socket, closed } = await open();
    socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(8192) } }));
    expect((await closed).code).toBe(1009);
    // Logged once, structured, with ws's code: not printed to stderr by graphql-ws.
    await until(() => t.logs.text.includes('websocket closed: client protocol error'), 'the log line');
    expect(t.logs.lines.filter((l) => l.includes('"code":"WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"'))).toHaveLength(1);
    expect(printed).not.toHaveBeenCalled();
  } finally {
    printed.mockRestore();
  }
});

it('subscriptions per identity and per process, and filters per identity, are refused with FEED_LIMIT_REACHED', async () => {
  const c = client();
  const mine = [c.subscribe(QUERY), c.subscribe(QUERY), c.subscribe(QUERY, { filter: { pendingOnly: true } })];
  await until(() => t.app.feed.stats().subscriptions === 3, 'three subscriptions');
  // A third filter of the same identity, then a fourth subscription of it.
  const thirdFilter = c.subscribe(QUERY, { filter: { urgencyIds: ['1'] } });
  await until(() => thirdFilter.errors.length > 0, 'refused');
  expect(thirdFilter.errors[0]?.extensions).toMatchObject({ code: 'FEED_LIMIT_REACHED', limit: 'subscriptionsPerIdentity', retryable: true });
  // Another identity: one more fits the process bound (4), the next does not.
  const other = client({ headers: { 'x-zb-session': 'other-user' } });
  const fourth = other.subscribe(QUERY);
  await until(() => t.app.feed.stats().subscriptions === 4, 'four');
  const fifth = other.subscribe(QUERY);
  await until(() => fifth.errors.length > 0, 'refused');
  expect(fifth.errors[0]?.extensions).toMatchObject({ code: 'FEED_LIMIT_REACHED', limit: 'subscriptions', max: 4 });
  expect(mine.every((s) => s.errors.length === 0) && fourth.errors.length === 0).toBe(true);
});

it('filters per identity: a third distinct filter is refused while two are watched', async () => {
  const c = client({ headers: { 'x-zb-session': 'filters-user' } });
  c.subscribe(QUERY, { filter: { urgencyIds: ['1'] } });
  c.subscribe(QUERY, { filter: { urgencyIds: ['2'] } });
  await until(() => t.app.feed.stats().pollers === 2, 'two filters');
  const third = c.subscribe(QUERY, { filter: { urgencyIds: ['3'] } });
  await until(() => third.errors.length > 0, 'refused');
  expect(third.errors[0]?.extensions).toMatchObject({ code: 'FEED_LIMIT_REACHED', limit: 'pollersPerIdentity', max: 2 });
});

/** A subscription as Hive Gateway sends it over SSE (GET, query in the URL). */
async function sseStream(): Promise<{ status: number; stream?: EventStreamReader; json?: unknown; retryAfter?: string | null }> {
  const controller = new AbortController();
  streams.push(controller);
  const res = await fetch(hiveGetUrl(t.app.url, { query: QUERY, variables: { filter: { urgencyIds: ['3'] } } }), { headers: { accept: 'text/event-stream' }, signal: controller.signal });
  if (res.status !== 200) return { status: res.status, json: await res.json(), retryAfter: res.headers.get('retry-after') };
  return { status: res.status, stream: new EventStreamReader(res) };
}

it('ZB_FEED_SSE_MAX_STREAMS: the stream past the bound is refused 503 SERVER_BUSY with Retry-After', async () => {
  const first = await sseStream();
  const second = await sseStream();
  expect([first.status, second.status]).toEqual([200, 200]);
  await until(() => t.app.feed.stats().subscriptions === 2, 'two SSE subscriptions');
  const third = await sseStream();
  expect(third.status).toBe(503);
  expect(third.json).toMatchObject({ errors: [{ extensions: { code: 'SERVER_BUSY' } }] });
  expect(third.retryAfter).toBe('1');
  expect(t.app.feed.stats().subscriptions).toBe(2);
});

it('ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: the callback subscription past the bound is refused 503 SERVER_BUSY', async () => {
  const subscribe = (id: string) =>
    postJson(
      t.app.url,
      { query: QUERY, extensions: { subscription: { callbackUrl: router.callbackUrl(id), subscriptionId: id, verifier: `v-${id}`, heartbeatIntervalMs: 1000 } } },
      { accept: 'application/json;callbackSpec=1.0' },
    );
  expect((await subscribe('cb-1')).status).toBe(200);
  const refused = await subscribe('cb-2');
  expect(refused.status).toBe(503);
  expect(refused.json).toMatchObject({ errors: [{ extensions: { code: 'SERVER_BUSY' } }] });
  expect(router.of('cb-2')).toEqual([]);
  // The router forgets the first: its next heartbeat gets 404 and the subscription ends.
  router.forgotten.add('cb-1');
  await until(() => t.app.feed.stats().subscriptions === 0, 'the forgotten subscription ended', 5000);
});

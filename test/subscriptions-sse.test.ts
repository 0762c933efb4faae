import net from 'node:net';
import { createClient, NetworkError, type ExecutionResult } from 'graphql-sse';
import { ErpSessionError } from '../src/erp/errors';
import { postJson, until } from './helpers';
import { EventStreamReader, hiveGetUrl, type ServerSentEvent } from './support/event-stream';
import { startSubscriptionServer, type SubscriptionServer } from './support/subscription-server';
import { ERP_TEXT } from './support/subscriptions';

/**
 * GraphQL over SSE (src/server/subscriptions-sse.ts) over real HTTP: the app's router sends `text/event-stream`
 * requests to it before Apollo; a test-driven source stands in for the change feed, so every event is pushed by the
 * test and must arrive. Both kinds of client: graphql-sse's own (POST, distinct connections) and a raw fetch doing what
 * Hive Gateway's subgraph executor does (GET, query in the URL, `Accept: text/event-stream` and nothing else).
 */

const SUBSCRIPTION = 'subscription Ticks($label: String) { ticks(label: $label) { n label who } }';

interface ErrorBody {
  errors: Array<{ message: string; extensions?: { code?: string } }>;
}

let server: SubscriptionServer | undefined;
const readers: AbortController[] = [];

afterEach(async () => {
  for (const controller of readers.splice(0)) controller.abort();
  await server?.close();
  server = undefined;
});

async function start(options: Parameters<typeof startSubscriptionServer>[0] = { sse: {} }): Promise<SubscriptionServer> {
  server = await startSubscriptionServer(options);
  return server;
}

/** A GET exactly as Hive Gateway sends a subscription to a subgraph. */
async function hiveGet(
  s: SubscriptionServer,
  request: Parameters<typeof hiveGetUrl>[1],
  headers: Record<string, string> = {},
): Promise<{ res: Response; stream: EventStreamReader }> {
  const controller = new AbortController();
  readers.push(controller);
  const res = await fetch(hiveGetUrl(s.url, request), { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  return { res, stream: new EventStreamReader(res) };
}

function errorsOf(event: unknown): ErrorBody['errors'] {
  return (event as ErrorBody).errors;
}

function sse(s: SubscriptionServer) {
  if (!s.sse) throw new Error('no SSE transport');
  return s.sse;
}

describe('GraphQL over SSE: delivery', () => {
  test("graphql-sse's client (POST, distinct connections): each pushed event arrives in order; the source's end completes the subscription", async () => {
    const s = await start();
    const client = createClient({ url: s.url, retryAttempts: 0, headers: { 'x-test-who': 'ana' } });
    const received: ExecutionResult[] = [];
    let completed = false;
    let failed: unknown;
    client.subscribe(
      { query: SUBSCRIPTION, variables: { label: 'a' } },
      { next: (r) => void received.push(r as ExecutionResult), error: (e) => (failed = e), complete: () => (completed = true) },
    );
    await until(() => s.sources.list.length === 1, 'the subscription reached the schema');
    expect(s.sources.last.args).toEqual({ label: 'a' });
    expect(sse(s).open).toBe(1);

    s.sources.last.push({ n: 1, label: 'a' });
    await until(() => received.length === 1, 'the first event');
    expect(received[0]).toEqual({ data: { ticks: { n: 1, label: 'a', who: 'ana' } } });
    s.sources.last.push({ n: 2, label: 'a' });
    s.sources.last.push({ n: 3, label: 'a' });
    await until(() => received.length === 3, 'two more events');
    expect(received.map((r) => (r.data as { ticks: { n: number } }).ticks.n)).toEqual([1, 2, 3]);

    s.sources.last.end();
    await until(() => completed, 'complete');
    expect(failed).toBeUndefined();
    await until(() => sse(s).open === 0, 'the stream closed');
    client.dispose();
  });

  test('GET with the query in the URL and only Accept: text/event-stream (what Hive Gateway sends): events arrive; the client leaving returns the source', async () => {
    const s = await start();
    const { res, stream } = await hiveGet(s, { query: SUBSCRIPTION, variables: { label: 'hive' }, operationName: 'Ticks', extensions: {} }, { 'x-test-who': 'gateway' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    await until(() => s.sources.list.length === 1, 'the subscription reached the schema');

    s.sources.last.push({ n: 7, label: 'hive' });
    await until(() => stream.nexts.length === 1, 'the event');
    expect(stream.nexts[0]).toEqual({ data: { ticks: { n: 7, label: 'hive', who: 'gateway' } } });

    // The gateway drops the subscription: the server notices the closed connection and lets go of the source.
    readers[0]?.abort();
    await until(() => s.sources.last.returned, "the source's return()");
    await until(() => sse(s).open === 0, 'the stream closed');
  });

  test('requests that are not event streams still reach Apollo', async () => {
    const s = await start();
    const query = await postJson(s.url, { query: '{ ok }' });
    expect(query.status).toBe(200);
    expect(query.json).toEqual({ data: { ok: true } });
    expect(sse(s).open).toBe(0);
  });
});

describe('GraphQL over SSE: errors are GraphQL errors with extensions.code', () => {
  /** Opens a GET stream and waits for it to end: the one `next` it carried, and whether `complete` followed. */
  async function errorEvent(s: SubscriptionServer, request: Parameters<typeof hiveGetUrl>[1], headers: Record<string, string> = {}): Promise<{ status: number; events: ServerSentEvent[]; raw: string }> {
    const { res, stream } = await hiveGet(s, request, headers);
    await until(() => stream.done, 'the stream ended');
    return { status: res.status, events: stream.events, raw: stream.raw };
  }

  test.each([
    ['a syntax error', { query: 'subscription {' }, 'GRAPHQL_PARSE_FAILED'],
    ['an unknown field', { query: 'subscription { nope }' }, 'GRAPHQL_VALIDATION_FAILED'],
    ['a query (only subscriptions are served here)', { query: '{ ok }' }, 'BAD_REQUEST'],
    ['a mutation', { query: 'mutation { touch }' }, 'BAD_REQUEST'],
    ['a variable of the wrong type', { query: 'subscription S($from: Int) { ticks(from: $from) { n } }', variables: { from: 'x' } }, 'BAD_USER_INPUT'],
    ['an unknown operation name', { query: SUBSCRIPTION, operationName: 'Other' }, 'OPERATION_RESOLUTION_FAILURE'],
    ['too many tokens', { query: `subscription { ticks { ${'n '.repeat(300)} } }` }, 'GRAPHQL_PARSE_FAILED'],
  ])('%s: an accepted stream with one error event, then complete; nothing subscribed', async (_what, request, code) => {
    const s = await start();
    const { status, events } = await errorEvent(s, request);
    expect(status).toBe(200);
    expect(events.map((e) => e.event)).toEqual(['next', 'complete']);
    expect(errorsOf(events[0]?.data)[0]?.extensions?.code).toBe(code);
    expect(s.sources.list).toHaveLength(0);
  });

  test('a refused identity (the context builder throws) is UNAUTHENTICATED', async () => {
    const s = await start();
    const { events } = await errorEvent(s, { query: SUBSCRIPTION }, { 'x-test-who': 'nobody' });
    expect(errorsOf(events[0]?.data)).toEqual([{ message: 'This endpoint requires the x-zb-session header.', extensions: { code: 'UNAUTHENTICATED' } }]);
    expect(s.sources.list).toHaveLength(0);
  });

  test("a subscription the source refuses (an ERP session error) is UNAUTHENTICATED with the public message, never the ERP's text", async () => {
    const s = await start();
    const { events, raw } = await errorEvent(s, { query: 'subscription { ticks(label: "refuse") { n } }' });
    expect(events.map((e) => e.event)).toEqual(['next', 'complete']);
    expect(errorsOf(events[0]?.data)[0]).toMatchObject({ message: 'The ERP session is not valid; sign in to the ERP again.', extensions: { code: 'UNAUTHENTICATED' } });
    expect(raw).not.toContain('OLE DB');
  });

  test('errors inside an event are formatted as over HTTP: internal ones masked, ERP ones translated', async () => {
    const s = await start();
    const { stream } = await hiveGet(s, { query: 'subscription { ticks { n secret erp } }' });
    await until(() => s.sources.list.length === 1, 'subscribed');
    s.sources.last.push({ n: 1 });
    await until(() => stream.nexts.length === 1, 'the event');
    const event = stream.nexts[0] as { data: unknown; errors: ErrorBody['errors'] };
    expect(event.data).toEqual({ ticks: { n: 1, secret: null, erp: null } });
    expect(event.errors.map((e) => e.extensions?.code).sort()).toEqual(['INTERNAL_SERVER_ERROR', 'UPSTREAM_BUSY']);
    expect(stream.raw).not.toContain('postgres://');
    expect(stream.raw).not.toContain('OLE DB');
  });

  test('a source that fails mid-stream ends it with an error event and complete, not a cut connection', async () => {
    const s = await start();
    const { stream } = await hiveGet(s, { query: SUBSCRIPTION });
    await until(() => s.sources.list.length === 1, 'subscribed');
    s.sources.last.push({ n: 1 });
    await until(() => stream.nexts.length === 1, 'the first event');
    s.sources.last.fail(new ErpSessionError(ERP_TEXT, 15));
    await until(() => stream.done, 'the stream ended');
    expect(stream.events.map((e) => e.event)).toEqual(['next', 'next', 'complete']);
    expect(errorsOf(stream.nexts[1])[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(stream.raw).not.toContain('OLE DB');
    // An expected end (the feed's overflow or a refused session), not the handler's last-resort path for bugs.
    expect(s.logs.text).not.toContain('SSE stream failed');
  });

  test('requests that are not GraphQL requests are 4xx JSON answers with a code', async () => {
    const s = await start();
    const noQuery = await fetch(s.url, { headers: { accept: 'text/event-stream' } });
    expect(noQuery.status).toBe(400);
    expect(((await noQuery.json()) as ErrorBody).errors[0]).toEqual({ message: 'Missing query', extensions: { code: 'BAD_REQUEST' } });

    const post = (body: string, type: string) => fetch(s.url, { method: 'POST', headers: { accept: 'text/event-stream', 'content-type': type }, body });
    const badJson = await post('{"query": "subscr', 'application/json');
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as ErrorBody).errors[0]?.extensions?.code).toBe('BAD_REQUEST');
    const notJson = await post('subscription { ticks { n } }', 'text/plain');
    expect(notJson.status).toBe(415);
    expect(((await notJson.json()) as ErrorBody).errors[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(s.sources.list).toHaveLength(0);
    expect(sse(s).open).toBe(0);
  });
});

describe('GraphQL over SSE: bounds', () => {
  test('a GET URL over maxUrlBytes is 414 and a POST body over the limit is 413, before anything is parsed', async () => {
    const s = await start({ sse: { maxUrlBytes: 1024, bodyLimitBytes: 2048 } });
    const long = `subscription { ticks(label: "${'x'.repeat(1100)}") { n } }`;
    const get = await fetch(hiveGetUrl(s.url, { query: long }), { headers: { accept: 'text/event-stream' } });
    expect(get.status).toBe(414);
    expect(((await get.json()) as ErrorBody).errors[0]?.extensions?.code).toBe('BAD_REQUEST');

    const body = JSON.stringify({ query: `subscription { ticks(label: "${'x'.repeat(3000)}") { n } }` });
    const post = await fetch(s.url, { method: 'POST', headers: { accept: 'text/event-stream', 'content-type': 'application/json' }, body });
    expect(post.status).toBe(413);
    expect(((await post.json()) as ErrorBody).errors[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(s.sources.list).toHaveLength(0);
  });

  test('a POST body that never completes within bodyTimeoutMs is 408 and the connection is closed, nothing subscribed', async () => {
    const s = await start({ sse: { bodyTimeoutMs: 200 } });
    const url = new URL(s.url);
    const socket = net.connect(Number(url.port), url.hostname);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    let closed = false;
    socket.once('close', () => (closed = true));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // Announces 100 bytes and sends 10: the rest never comes.
    socket.write(`POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":`);
    await until(() => answer.includes('\r\n\r\n{'), 'an answer', 5000);
    await until(() => closed, 'the server closed the connection', 5000);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"code":"BAD_REQUEST"');
    expect(answer).toContain('not received within 200 ms');
    expect(s.sources.list).toHaveLength(0);
  });

  test('at maxStreams the next stream is refused 503 SERVER_BUSY (graphql-sse sees a retryable NetworkError); a freed slot is taken again', async () => {
    const s = await start({ sse: { maxStreams: 2 } });
    await hiveGet(s, { query: SUBSCRIPTION });
    await hiveGet(s, { query: SUBSCRIPTION });
    await until(() => s.sources.list.length === 2, 'two streams open');

    const refused = await fetch(hiveGetUrl(s.url, { query: SUBSCRIPTION }), { headers: { accept: 'text/event-stream' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as ErrorBody).errors[0]?.extensions?.code).toBe('SERVER_BUSY');

    const client = createClient({ url: s.url, retryAttempts: 0 });
    const failure = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: SUBSCRIPTION }, { next: () => undefined, error: resolve, complete: () => resolve(undefined) });
    });
    expect(failure).toBeInstanceOf(NetworkError);
    expect((failure as NetworkError<Response>).response?.status).toBe(503);
    client.dispose();
    expect(s.sources.list).toHaveLength(2);

    readers[0]?.abort();
    await until(() => sse(s).open === 1, 'one stream left');
    const { res } = await hiveGet(s, { query: SUBSCRIPTION });
    expect(res.status).toBe(200);
    await until(() => s.sources.list.length === 3, 'the freed slot taken');
  });

  test("heartbeat comments keep an idle stream open past the server's own socket inactivity timeout", async () => {
    // createHttpServer: server.timeout (socket inactivity) = longestRequestMs + bodyTimeoutMs = 600 ms here.
    const s = await start({ sse: { heartbeatMs: 40 }, http: { bodyTimeoutMs: 500, longestRequestMs: 100 } });
    const { res, stream } = await hiveGet(s, { query: SUBSCRIPTION });
    expect(res.status).toBe(200);
    await until(() => s.sources.list.length === 1, 'subscribed');
    // 30 heartbeats take at least 1.2 s: twice the inactivity timeout that would otherwise destroy the socket.
    await until(() => stream.comments >= 30, '30 heartbeats', 15_000);
    expect(stream.done).toBe(false);
    s.sources.last.push({ n: 1 });
    await until(() => stream.nexts.length === 1, 'an event after the idle period');
  });

  test('a client that stops reading: the next event waits for the socket to drain, the source keeps the rest; all arrive once it reads again', async () => {
    const s = await start();
    const url = new URL(hiveGetUrl(s.url, { query: 'subscription { ticks { n big } }' }));
    const socket = net.connect(Number(url.port), url.hostname);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
    socket.pause();
    await until(() => s.sources.list.length === 1, 'subscribed');
    const source = s.sources.last;

    // 64 KiB events until the kernel's buffers are full and the response reports backpressure (at most 256 MiB).
    const big = 'x'.repeat(64 * 1024);
    let pushed = 0;
    while (sse(s).waitingForDrain === 0) {
      if (pushed >= 4096) throw new Error('never saw backpressure');
      source.push({ n: pushed++, big });
      await until(() => source.buffered === 0 || sse(s).waitingForDrain === 1, 'the event taken or backpressure');
    }
    // The event pushed last may still be in the source: the stream took the one before, whose write filled the socket,
    // and had not yet marked itself waiting when the loop looked (a race of the loop's check, not of the stream).
    const before = source.buffered;
    expect(before).toBeLessThanOrEqual(1);
    // Blocked: more events stay in the source's own (bounded, in the feed) buffer; none is pulled while blocked.
    for (let i = 0; i < 20; i++) source.push({ n: pushed++, big });
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(sse(s).waitingForDrain).toBe(1);
    expect(source.buffered).toBe(before + 20);
    expect(source.nextPending).toBe(false);

    let text = '';
    let count = 0;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      let at: number;
      while ((at = text.indexOf('event: next')) >= 0) {
        count++;
        text = text.slice(at + 11);
      }
      // Keep only a tail that may hold a split marker.
      if (text.length > 16) text = text.slice(-16);
    });
    socket.resume();
    await until(() => count === pushed, `all ${pushed} events delivered`, 20_000);
    expect(source.buffered).toBe(0);
    socket.destroy();
    await until(() => source.returned, "the source's return()");
  });
});

describe('GraphQL over SSE: shutdown', () => {
  test("apollo.stop() (the plugin's drainServer) ends every stream with complete, returns the sources, and refuses new streams", async () => {
    const s = await start();
    const { stream } = await hiveGet(s, { query: SUBSCRIPTION });
    const client = createClient({ url: s.url, retryAttempts: 0 });
    let completed = false;
    let failed: unknown;
    client.subscribe({ query: SUBSCRIPTION }, { next: () => undefined, error: (e) => (failed = e), complete: () => (completed = true) });
    await until(() => s.sources.list.length === 2, 'two streams open');
    s.sources.list[0]?.push({ n: 1 });
    await until(() => stream.nexts.length === 1, 'an event before shutdown');

    const closing = s.close();
    await until(() => stream.done && completed, 'both streams ended');
    await closing;
    server = undefined;
    expect(stream.events.map((e) => e.event)).toEqual(['next', 'complete']);
    expect(failed).toBeUndefined();
    expect(s.sources.list.every((source) => source.returned)).toBe(true);
    expect(sse(s).open).toBe(0);
    client.dispose();
  });

  test('close() refuses streams that arrive while shutting down (503), and a closed transport takes none', async () => {
    const s = await start();
    await sse(s).close();
    const res = await fetch(hiveGetUrl(s.url, { query: SUBSCRIPTION }), { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorBody).errors[0]?.extensions?.code).toBe('SERVER_BUSY');
    expect(s.sources.list).toHaveLength(0);
  });
});

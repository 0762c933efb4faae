import WebSocket from 'ws';
import { startStack, until, type TestStack } from './helpers';
import { wsClient, wsUrl, type TestWsClient } from './support/ws-client';

/**
 * A subscriber that stops reading while the ERP keeps changing: its buffer is bounded in events and bytes, and past
 * the bound its subscription ends with a typed, retriable FEED_OVERFLOW; what it had buffered is dropped at once.
 */
const BUFFER_BYTES = 262144;
const QUERY = 'subscription { afterSaleServiceChanged { kind id service { id title } } }';
let t: TestStack;

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A raw graphql-transport-ws client, so the test decides when (and whether) it reads. */
async function rawSubscriber(query: string): Promise<{ socket: WebSocket; messages: Message[] }> {
  const socket = new WebSocket(wsUrl(t.app.url), 'graphql-transport-ws');
  const messages: Message[] = [];
  socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8')) as Message));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await until(() => messages.some((m) => m.type === 'connection_ack'), 'ack');
  socket.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query } }));
  return { socket, messages };
}

async function count(metric: 'feedPolls' | 'feedEnded', value: string): Promise<number> {
  const m = await t.app.metrics[metric].get();
  return m.values.filter((v) => Object.values(v.labels).includes(value)).reduce((n, v) => n + v.value, 0);
}

beforeAll(async () => {
  t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '100', ZB_FEED_BUFFER_BYTES: String(BUFFER_BYTES), ZB_FEED_BUFFER_EVENTS: '1000' } });
});
let reader: TestWsClient | undefined;
afterAll(async () => {
  await reader?.dispose();
  await t.close();
});

it('a subscriber that never reads ends with FEED_OVERFLOW, its buffer never above ZB_FEED_BUFFER_BYTES; one that reads goes on', async () => {
  // The same events reach a subscriber that reads: it must keep up, so what ends the other is not reading.
  reader = wsClient(t.app.url);
  const reading = reader.subscribe<{ afterSaleServiceChanged: { kind: string; id: string } }>(QUERY);
  const { socket, messages } = await rawSubscriber(QUERY);
  await until(() => t.app.feed.stats().subscriptions === 2, 'subscribed');
  expect(t.app.feed.stats().pollers).toBe(1);
  let seen = 0;
  const pollsOk = async () => (seen = await count('feedPolls', 'ok'));
  await until(() => {
    void pollsOk();
    return seen >= 2;
  }, 'baseline');
  // From here on the client reads nothing: the kernel's socket buffers fill, then the subscription's own buffer.
  socket.pause();
  const window = t.sim.world.liveServices().sort((a, b) => b.ord - a.ord).slice(0, 10);
  let round = 0;
  let peak = 0;
  let overflowed = 0;
  const deadline = Date.now() + 60_000;
  while (overflowed === 0 && Date.now() < deadline) {
    round++;
    // Ten services change, with long titles: ten events of about 12 KB on the wire (about 20 KB counted) per poll,
    // well within the buffer of a subscriber that reads.
    for (const s of window) t.sim.world.edit(s.ord, { title: `第${round}轮`.padEnd(4000, '长') });
    const before = await pollsOk();
    await until(() => {
      void pollsOk();
      peak = Math.max(peak, t.app.feed.stats().bufferedBytes);
      return seen >= before + 1;
    }, 'the next poll', 10_000);
    overflowed = await count('feedEnded', 'overflow');
  }
  expect(overflowed).toBe(1);
  expect(peak).toBeLessThanOrEqual(BUFFER_BYTES);
  // Nothing is kept for it any more; the reader is still subscribed and has every event.
  expect(t.app.feed.stats()).toMatchObject({ subscriptions: 1, pollers: 1 });
  await until(() => reading.data.length >= round * 10, 'the reader has every event', 20_000);
  expect(reading.errors).toEqual([]);
  expect(reading.completed).toBe(false);
  console.log(`overflow after ${round} rounds of 10 changes (${round * 10} events); peak buffered ${peak} bytes (bound ${BUFFER_BYTES})`);

  // Once the client reads again, the last thing of that subscription is the typed, retriable error.
  socket.resume();
  await until(() => messages.some((m) => m.type === 'error'), 'the error message', 20_000);
  const error = messages.find((m) => m.type === 'error')!;
  expect(error.id).toBe('1');
  expect(error.payload).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'FEED_OVERFLOW', retryable: true }) })]);
  socket.close();
}, 90_000);

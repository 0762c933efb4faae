import WebSocket from 'ws';
import { startStack, until, type TestStack } from './helpers';
import { wsClient, wsUrl } from './support/ws-client';

/**
 * Graceful shutdown with live subscriptions: every subscription ends with `complete`, then its connection closes with
 * 1001 (going away), a code graphql-ws clients reconnect on; a client that stopped reading cannot hold the shutdown.
 */
let t: TestStack;

beforeAll(async () => {
  // A 1 s grace for the WebSocket close (a quarter of ZB_SHUTDOWN_TIMEOUT_MS, at most 5 s).
  t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_TIMEOUT_MS: '1000', ZB_SHUTDOWN_TIMEOUT_MS: '4000' } });
});
afterAll(() => t.sim.close());

it('subscriptions end with complete and connections close with 1001 going away; a stalled client is dropped', async () => {
  // The server closes the sockets: the clients do not close their own when their subscriptions complete.
  const first = wsClient(t.app.url, { keepOpen: true });
  const second = wsClient(t.app.url, { headers: { 'x-zb-session': 'some-user-token' }, keepOpen: true });
  const query = 'subscription { afterSaleServiceChanged { kind id } }';
  const subs = [first.subscribe(query), first.subscribe('subscription { afterSaleServiceChanged(filter: { pendingOnly: true }) { kind id } }'), second.subscribe(query)];
  // A client that stopped reading (a frozen tab, a dead network path).
  const stalled = new WebSocket(wsUrl(t.app.url), 'graphql-transport-ws');
  await new Promise((resolve) => stalled.once('open', resolve));
  stalled.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise((resolve) => stalled.once('message', resolve));
  stalled.send(JSON.stringify({ type: 'subscribe', id: 's', payload: { query } }));
  await until(() => t.app.feed.stats().subscriptions === 4, 'four subscriptions');
  stalled.pause();

  const started = Date.now();
  await t.app.close();
  const closedIn = Date.now() - started;

  await until(() => subs.every((s) => s.completed), 'every subscription completed');
  await until(() => first.closes.length > 0 && second.closes.length > 0, 'both connections closed');
  expect(first.closes[0]).toEqual({ code: 1001, reason: 'Going away' });
  expect(second.closes[0]?.code).toBe(1001);
  for (const s of subs) expect(s.errors).toEqual([]);
  expect(t.app.feed.stats()).toMatchObject({ subscriptions: 0, pollers: 0 });
  // Nothing is left open on the server: the stalled socket, which never answered the close, was dropped.
  expect((await t.app.metrics.wsConnections.get()).values[0]?.value).toBe(0);
  console.log(`shutdown with ${subs.length + 1} subscriptions (one client stalled) took ${closedIn} ms`);
  stalled.resume();
  await until(() => stalled.readyState === WebSocket.CLOSED, 'the stalled client sees its socket closed');
  await Promise.all([first.dispose(), second.dispose()]);
});

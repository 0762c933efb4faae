import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import type { CallRecord } from '../src/simulator/call-log';
import { postJson, startStack, until, type TestStack } from './helpers';
import { EventStreamReader } from './support/event-stream';
import { createGatewayRuntime, type HiveGateway, type HiveGatewayConfig } from './support/hive-gateway';

/**
 * Hive Gateway (`@graphql-hive/gateway-runtime`, in process over a node http server) in front of this subgraph: a
 * client subscribes at the gateway (its own /graphql, over SSE) and receives a change the simulator makes out of band,
 * (i) over the gateway's default subgraph transport (HTTP: the subscription travels to us as SSE) and (ii) over
 * graphql-ws, with `transportEntries` as README "Live updates" shows. The session header reaches the subgraph as the
 * README's configuration says: `propagateHeaders` for the default transport, `connectionParams` for ws.
 */
const CHANGES = 'subscription { afterSaleServiceChanged(filter: { urgencyIds: ["3"] }) { kind id service { id title } } }';

interface Change {
  afterSaleServiceChanged: { kind: string; id: string; service: { id: string; title: string | null } | null };
}

let t: TestStack;
let supergraph: string;
const opened: Array<{ gateway: HiveGateway; server: http.Server }> = [];
const aborts: AbortController[] = [];

async function serveGateway(options: Omit<HiveGatewayConfig, 'supergraph'>): Promise<string> {
  const gateway = createGatewayRuntime({ supergraph, logging: false, ...options });
  const server = http.createServer(gateway);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push({ gateway, server });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

/** A client of the gateway: a POST with Accept: text/event-stream (the gateway's own SSE endpoint). */
async function subscribeAt(gatewayUrl: string, headers: Record<string, string> = {}): Promise<EventStreamReader> {
  const controller = new AbortController();
  aborts.push(controller);
  const res = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { accept: 'text/event-stream', 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: CHANGES }),
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  return new EventStreamReader(res);
}

const changesIn = (stream: EventStreamReader) =>
  stream.events.map((e) => (e.data as { data?: Change } | null)?.data?.afterSaleServiceChanged).filter((c): c is Change['afterSaleServiceChanged'] => c !== undefined);

async function userToken(user: string, password: string, serial: string): Promise<string> {
  const reply = await postJson(`${t.sim.url}/webapi/v3/ov1/login`, {
    datas: [{ id: 'user', val: `txt:${user}` }, { id: 'password', val: `txt:${password}` }, { id: 'serialnum', val: `txt:${serial}` }],
  });
  return (reply.json as { header: { session: string } }).header.session;
}

/** The feed's list calls (newest first) made with `session`. */
const feedCallsWith = (session: string) => t.sim.calls.of('list').filter((r: CallRecord) => r.datas._rpt_sort === '-ord' && r.session === session);

/** Waits for the poller's baseline plus one poll with `session`: later changes are diffs. */
async function baseline(session: string): Promise<void> {
  await until(() => t.app.feed.stats().pollers === 1, 'the subgraph has the subscription');
  // About 110 urgent services: two list pages a poll.
  const start = feedCallsWith(session).length;
  await until(() => feedCallsWith(session).length >= start + 4, 'two polls', 10_000);
}

beforeAll(async () => {
  // Callers must bring their session: what reaches the subgraph is the gateway's propagation, not the service account.
  t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '200', ZB_SESSION_HEADER_REQUIRED: 'true' } });
  const sdl = await postJson(t.app.url, { query: '{ _service { sdl } }' }, { 'x-zb-session': 'any' });
  const composition = composeServices([{ name: 'aftersale', url: t.app.url, typeDefs: parse((sdl.json as { data: { _service: { sdl: string } } }).data._service.sdl) }]);
  if (composition.errors) throw new Error(composition.errors.map((e) => e.message).join('\n'));
  supergraph = composition.supergraphSdl;
});

afterEach(async () => {
  for (const c of aborts.splice(0)) c.abort();
  for (const { gateway, server } of opened.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await gateway.dispose();
  }
  await until(() => t.app.feed.stats().subscriptions === 0, 'the subgraph let go of the subscription', 10_000);
});

afterAll(() => t.close());

it('default transport: the gateway subscribes over SSE; a change reaches the gateway client, with the caller\'s session', async () => {
  const token = await userToken('zhangwei', 'zhangwei-pass', 'hive-sse');
  const gatewayUrl = await serveGateway({
    // README "Live updates": the session header travels to the subgraph (HTTP and SSE).
    propagateHeaders: { fromClientToSubgraphs: ({ request }) => ({ 'x-zb-session': request.headers.get('x-zb-session') }) },
  });
  const stream = await subscribeAt(gatewayUrl, { 'x-zb-session': token });
  await baseline(token);
  // The gateway came to us over SSE (the SSE streams gauge), not WebSocket.
  const sse = (await t.app.metrics.transportSubscriptions.get()).values.find((v) => v.labels.transport === 'sse')?.value;
  expect(sse).toBe(1);
  expect((await t.app.metrics.wsConnections.get()).values[0]?.value ?? 0).toBe(0);

  const target = t.sim.world.liveServices().filter((s) => s.great1 === 3).sort((a, b) => b.ord - a.ord)[0]!;
  t.sim.world.edit(target.ord, { title: 'through Hive over SSE' });
  await until(() => changesIn(stream).length > 0, 'the change through the gateway', 10_000);
  expect(changesIn(stream)[0]).toEqual({ kind: 'UPDATED', id: String(target.ord), service: { id: String(target.ord), title: 'through Hive over SSE' } });
  expect(feedCallsWith(token).length).toBe(t.sim.calls.of('list').filter((r) => r.datas._rpt_sort === '-ord').length);
});

it('ws transport (transportEntries): the gateway subscribes over graphql-ws; a change reaches the gateway client, with the caller\'s session', async () => {
  const token = await userToken('zhangwei', 'zhangwei-pass', 'hive-ws');
  const gatewayUrl = await serveGateway({
    transportEntries: {
      aftersale: {
        options: {
          subscriptions: {
            kind: 'ws',
            location: '/graphql',
            // README "Live updates": the session in connection_init, one subgraph connection per distinct session.
            options: { connectionParams: { 'x-zb-session': '{context.headers.x-zb-session}' } },
          },
        },
      },
    },
  });
  const stream = await subscribeAt(gatewayUrl, { 'x-zb-session': token });
  await baseline(token);
  expect((await t.app.metrics.wsConnections.get()).values[0]?.value).toBe(1);

  const target = t.sim.world.liveServices().filter((s) => s.great1 === 3).sort((a, b) => b.ord - a.ord)[0]!;
  t.sim.world.edit(target.ord, { title: 'through Hive over ws' });
  await until(() => changesIn(stream).length > 0, 'the change through the gateway', 10_000);
  expect(changesIn(stream)[0]).toEqual({ kind: 'UPDATED', id: String(target.ord), service: { id: String(target.ord), title: 'through Hive over ws' } });
});

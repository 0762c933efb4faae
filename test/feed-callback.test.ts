import type { CallRecord } from '../src/simulator/call-log';
import { postJson, startStack, until, type TestStack } from './helpers';
import { FakeRouter, type CallbackMessage } from './support/fake-router';

/**
 * The change feed on Apollo Router's HTTP callback protocol, end to end: a fake router (a real HTTP server answering
 * as apollo-router does) subscribes on POST /graphql; the subgraph checks, then POSTs a `next` for each out-of-band
 * change (ADDED, UPDATED, REMOVED) and heartbeats; a 404 from the router ends that subscription and, with no other
 * subscriber, its poller (the filter's list calls stop). The app's close sends `complete`. Without
 * ZB_FEED_CALLBACK_URLS callback mode is off: such a request is refused BAD_REQUEST and nothing polls.
 */
const CHANGES = `
  subscription Changes($filter: AfterSaleServiceFilter) {
    afterSaleServiceChanged(filter: $filter) { kind id service { id title } }
  }`;

interface Change {
  afterSaleServiceChanged: { kind: string; id: string; service: { id: string; title: string | null } | null };
}

let t: TestStack;
let router: FakeRouter;

/** The feed's list calls (newest first) for one urgency. */
const pollsOf = (urgency: string) => t.sim.calls.of('list').filter((r: CallRecord) => r.datas._rpt_sort === '-ord' && r.datas.great1 === urgency).length;

/** What Apollo Router sends in callback mode. */
async function subscribe(id: string, filter: Record<string, unknown>, headers: Record<string, string> = {}) {
  const { status, json } = await postJson(
    t.app.url,
    {
      query: CHANGES,
      variables: { filter },
      extensions: { subscription: { callbackUrl: router.callbackUrl(id), subscriptionId: id, verifier: `verifier-${id}`, heartbeatIntervalMs: 1000 } },
    },
    { accept: 'application/json;callbackSpec=1.0', ...headers },
  );
  return { status, body: json as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> } };
}

const kinds = (messages: CallbackMessage[]) =>
  messages.map((m) => (m.payload?.data as Change | undefined)?.afterSaleServiceChanged).map((c) => `${c?.kind}:${c?.id}`);

async function callbackGauge(): Promise<number> {
  const metric = await t.app.metrics.transportSubscriptions.get();
  return metric.values.find((v) => v.labels.transport === 'callback')?.value ?? -1;
}

describe('callback mode (ZB_FEED_CALLBACK_URLS) with a fake router', () => {
  let appClosed = false;
  beforeAll(async () => {
    router = await new FakeRouter().start();
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '200', ZB_FEED_CALLBACK_URLS: router.url } });
  });
  afterAll(async () => {
    if (!appClosed) await t.app.close();
    await t.sim.close();
    await router.close();
  });

  it('check, then a next for each kind of change, heartbeats; a change outside the filter reaches nobody', async () => {
    const answer = await subscribe('sub-changes', { urgencyIds: ['3'] });
    expect(answer).toEqual({ status: 200, body: { data: null } });
    expect(router.of('sub-changes')[0]).toMatchObject({ action: 'check', verifier: 'verifier-sub-changes', protocol: 'callback/1.0' });
    await until(() => t.app.feed.stats().subscriptions === 1, 'the feed subscription');
    expect(await callbackGauge()).toBe(1);
    // The subscription outlived the router's POST: it polls with its own context (baseline, then diffs).
    await until(() => pollsOf('3') >= 4, 'baseline and one more poll');

    const calm = t.sim.world.liveServices().filter((s) => s.great1 === 1).sort((a, b) => b.ord - a.ord)[0]!;
    t.sim.world.edit(calm.ord, { title: 'outside the filter' });
    const before = pollsOf('3');
    await until(() => pollsOf('3') >= before + 4, 'two polls after the outside change');
    expect(router.of('sub-changes', 'next')).toEqual([]);

    const added = t.sim.world.add({ great1: 3, title: '回调 新的' });
    await until(() => kinds(router.of('sub-changes', 'next')).includes(`ADDED:${added.ord}`), 'ADDED');
    const [target, doomed] = t.sim.world.liveServices().filter((s) => s.great1 === 3 && s.ord !== added.ord).sort((a, b) => b.ord - a.ord);
    t.sim.world.edit(target!.ord, { title: '回调 改了' });
    await until(() => kinds(router.of('sub-changes', 'next')).includes(`UPDATED:${target!.ord}`), 'UPDATED');
    t.sim.world.remove(doomed!.ord);
    await until(() => kinds(router.of('sub-changes', 'next')).includes(`REMOVED:${doomed!.ord}`), 'REMOVED');
    expect(kinds(router.of('sub-changes', 'next'))).toEqual([`ADDED:${added.ord}`, `UPDATED:${target!.ord}`, `REMOVED:${doomed!.ord}`]);
    const nexts = router.of('sub-changes', 'next');
    expect((nexts[0]!.payload?.data as Change).afterSaleServiceChanged.service).toEqual({ id: String(added.ord), title: '回调 新的' });
    expect(nexts.every((m) => m.verifier === 'verifier-sub-changes' && !m.payload?.errors)).toBe(true);

    // Heartbeats: further checks, about every heartbeatIntervalMs (1000, the lowest allowed).
    await until(() => router.of('sub-changes', 'check').length >= 3, 'two heartbeats', 5000);
    const checks = router.of('sub-changes', 'check').map((m) => m.at);
    expect(checks[2]! - checks[1]!).toBeGreaterThanOrEqual(900);
  });

  it('a 404 from the router ends that subscription and, with no other subscriber, its poller: the list calls stop', async () => {
    const answer = await subscribe('sub-forgotten', { urgencyIds: ['2'] });
    expect(answer.status).toBe(200);
    await until(() => pollsOf('2') >= 2, 'its poller runs');
    expect(t.app.feed.stats().pollers).toBe(2);

    router.forgotten.add('sub-forgotten');
    // The next event (or heartbeat) gets the 404.
    t.sim.world.add({ great1: 2, title: 'the router forgot' });
    await until(() => router.of('sub-forgotten', 'next').length + router.of('sub-forgotten', 'check').length >= 2, 'a 404 answered');
    await until(() => t.app.feed.stats().pollers === 1, 'its poller stopped');
    expect(await callbackGauge()).toBe(1);
    const after = pollsOf('2');
    // Several intervals of the other poller (urgency 3, two pages a poll) pass: not one more list call for urgency 2.
    const other = pollsOf('3');
    await until(() => pollsOf('3') >= other + 10, 'five more polls of the other filter');
    expect(pollsOf('2')).toBe(after);
    expect(router.of('sub-forgotten', 'complete')).toEqual([]);
  });

  it('app.close() sends complete to the router for every open subscription', async () => {
    appClosed = true;
    await t.app.close();
    expect(router.of('sub-changes', 'complete')).toHaveLength(1);
    expect(await callbackGauge()).toBe(0);
    expect(t.app.feed.stats().subscriptions).toBe(0);
  });
});

describe('callback mode off, and identity', () => {
  beforeAll(async () => {
    router = await new FakeRouter().start();
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_SESSION_HEADER_REQUIRED: 'true' } });
  });
  afterAll(async () => {
    await t.close();
    await router.close();
  });

  it('without ZB_FEED_CALLBACK_URLS a callback request is refused BAD_REQUEST; nothing is sent, nothing polls', async () => {
    const answer = await subscribe('sub-off', {}, { 'x-zb-session': 'some-token' });
    expect(answer.status).toBe(400);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(answer.body.errors?.[0]?.message).toMatch(/callback protocol are not enabled/);
    expect(router.messages).toEqual([]);
    expect(t.sim.calls.count('list')).toBe(0);
  });
});

describe('callback identity (ZB_SESSION_HEADER_REQUIRED)', () => {
  beforeAll(async () => {
    router = await new FakeRouter().start();
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_SESSION_HEADER_REQUIRED: 'true', ZB_FEED_CALLBACK_URLS: router.url } });
  });
  afterAll(async () => {
    await t.close();
    await router.close();
  });

  it('a router request without x-zb-session is refused 401 UNAUTHENTICATED by admission; nothing is sent, nothing polls', async () => {
    const answer = await subscribe('sub-anon', {});
    expect(answer.status).toBe(401);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(router.messages).toEqual([]);
    expect(t.sim.calls.count('list')).toBe(0);
  });
});

import { startStack, until, type TestStack } from './helpers';
import { wsClient, type Received, type TestWsClient } from './support/ws-client';

/**
 * The change feed over graphql-ws, end to end: the simulator's out-of-band changes (as someone in the ERP's own UI
 * would make them) reach a `createClient` subscriber on /graphql of the same HTTP server as ADDED, UPDATED and
 * REMOVED; what the filter does not match reaches nobody; a save through handleService reports UPDATED at once.
 */
const CHANGES = `
  subscription Changes($filter: AfterSaleServiceFilter) {
    afterSaleServiceChanged(filter: $filter) {
      kind id cursor
      service { id title urgency { name } }
    }
  }`;

interface Change {
  afterSaleServiceChanged: { kind: string; id: string; cursor: string; service: { id: string; title: string | null; urgency: { name: string } | null } | null };
}

const URGENT = { urgencyIds: ['3'] };

let t: TestStack;
const clients: TestWsClient[] = [];

function client(options: Parameters<typeof wsClient>[1] = {}): TestWsClient {
  const c = wsClient(t.app.url, options);
  clients.push(c);
  return c;
}

async function pollsOk(): Promise<number> {
  const metric = await t.app.metrics.feedPolls.get();
  return metric.values.filter((v) => v.labels.outcome === 'ok').reduce((n, v) => n + v.value, 0);
}

/** Resolves once the feed has taken its baseline (its first poll) and one more poll, so later changes are diffs. */
async function baseline(polls = 2): Promise<void> {
  let seen = 0;
  await until(() => {
    void pollsOk().then((n) => (seen = n));
    return seen >= polls;
  }, `${polls} feed polls`);
}

/** The newest live services with urgency 3 (the window of the URGENT filter, newest first). */
function urgentServices() {
  return t.sim.world.liveServices().filter((s) => s.great1 === 3).sort((a, b) => b.ord - a.ord);
}

const kinds = (r: Received<Change>) => r.data.map((d) => `${d.afterSaleServiceChanged.kind}:${d.afterSaleServiceChanged.id}`);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
});

describe('graphql-ws subscriber, out-of-band ERP changes', () => {
  beforeAll(async () => {
    // A window larger than the filter's whole result (about 110 urgent services: two list pages per poll).
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '200' } });
  });
  afterAll(() => t.close());

  it('receives ADDED, UPDATED and REMOVED, in order, with distinct ordered cursors; a change outside the filter reaches nobody', async () => {
    const c = client();
    const sub = c.subscribe<Change>(CHANGES, { filter: URGENT });
    await baseline();
    expect(sub.data).toEqual([]);

    // Outside the filter first (urgency 1): it must not have arrived by the time the in-filter changes have.
    const calm = t.sim.world.liveServices().filter((s) => s.great1 === 1).sort((a, b) => b.ord - a.ord)[0]!;
    t.sim.world.edit(calm.ord, { title: 'outside the filter' });
    const outside = t.sim.world.add({ great1: 1, title: 'new but not urgent' });

    const added = t.sim.world.add({ great1: 3, title: '新的紧急售后' });
    await until(() => kinds(sub).includes(`ADDED:${added.ord}`), 'ADDED');
    const [target, doomed, calmed] = urgentServices().filter((s) => s.ord !== added.ord);
    t.sim.world.edit(target!.ord, { title: '标题改了' });
    await until(() => kinds(sub).includes(`UPDATED:${target!.ord}`), 'UPDATED');
    t.sim.world.remove(doomed!.ord);
    // No longer urgent: it leaves the filter, which is REMOVED too.
    t.sim.world.edit(calmed!.ord, { great1: 1 });
    await until(() => kinds(sub).includes(`REMOVED:${doomed!.ord}`) && kinds(sub).includes(`REMOVED:${calmed!.ord}`), 'REMOVED');

    expect(kinds(sub)).toEqual([`ADDED:${added.ord}`, `UPDATED:${target!.ord}`, `REMOVED:${doomed!.ord}`, `REMOVED:${calmed!.ord}`]);
    const events = sub.data.map((d) => d.afterSaleServiceChanged);
    // The service as the list shows it now; null when removed.
    expect(events[0]!.service).toEqual({ id: String(added.ord), title: '新的紧急售后', urgency: { name: '非常紧急' } });
    expect(events[1]!.service?.title).toBe('标题改了');
    expect(events[2]!.service).toBeNull();
    const cursors = events.map((e) => e.cursor);
    expect(new Set(cursors).size).toBe(cursors.length);
    expect([...cursors].sort()).toEqual(cursors);
    expect(kinds(sub).some((k) => k.endsWith(`:${calm.ord}`) || k.endsWith(`:${outside.ord}`))).toBe(false);
    expect(sub.errors).toEqual([]);
  });

  it('two subscribers of one filter share its poller and both get every event; detail fields come through the loader', async () => {
    const c = client();
    const a = c.subscribe<Change>(CHANGES, { filter: URGENT });
    const b = client().subscribe<{ afterSaleServiceChanged: { kind: string; id: string; service: { id: string; content: string | null; handlingContent: string | null } | null } }>(
      `subscription { afterSaleServiceChanged(filter: { urgencyIds: ["3"] }) { kind id service { id content handlingContent } } }`,
    );
    await until(() => t.app.feed.stats().subscriptions === 2, 'two subscriptions');
    expect(t.app.feed.stats().pollers).toBe(1);
    await baseline(await pollsOk() + 2);
    const added = t.sim.world.add({ great1: 3, introts: '详情里的售后内容' });
    await until(() => a.data.length > 0 && b.data.length > 0, 'both subscribers');
    expect(a.data[0]!.afterSaleServiceChanged.id).toBe(String(added.ord));
    // `content` is not a list column: the event's own detail read, through the loader, with the subscriber's identity.
    expect(b.data[0]!.afterSaleServiceChanged.service).toEqual({ id: String(added.ord), content: '详情里的售后内容', handlingContent: null });
  });

  it('every event reads detail fields afresh: a later event of the same service never gets the detail an earlier one loaded', async () => {
    const sub = client().subscribe<{ afterSaleServiceChanged: { kind: string; id: string; service: { title: string | null; content: string | null } | null } }>(
      `subscription { afterSaleServiceChanged(filter: { urgencyIds: ["3"] }) { kind id service { title content } } }`,
    );
    await baseline(await pollsOk() + 2);
    const target = urgentServices()[0]!;
    t.sim.world.edit(target.ord, { title: '第一次', introts: '内容一' });
    await until(() => sub.data.length >= 1, 'first UPDATED');
    t.sim.world.edit(target.ord, { title: '第二次', introts: '内容二' });
    await until(() => sub.data.length >= 2, 'second UPDATED');
    expect(sub.data.map((d) => d.afterSaleServiceChanged.service)).toEqual([
      { title: '第一次', content: '内容一' },
      { title: '第二次', content: '内容二' },
    ]);
  });

  it('a filter the list refuses is refused the same way, before any poller starts', async () => {
    const c = client();
    const bad = c.subscribe(CHANGES, { filter: { urgencyIds: ['1; drop table tousu'] } });
    const long = c.subscribe(CHANGES, { filter: { title: 'x'.repeat(201) } });
    await until(() => bad.completed && long.completed, 'both refused');
    expect(bad.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'urgencyIds' });
    expect(long.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'title' });
    expect(t.app.feed.stats()).toMatchObject({ subscriptions: 0, pollers: 0 });
  });

  it('serves subscriptions only: queries and mutations go through POST /graphql and its admission', async () => {
    const c = client();
    const query = c.subscribe('{ afterSaleServices { items { id } } }');
    await until(() => query.completed || query.errors.length > 0, 'query refused');
    expect(query.errors[0]?.extensions?.code).toBe('BAD_REQUEST');
    const invalid = c.subscribe('subscription { afterSaleServiceChanged { nope } }');
    await until(() => invalid.errors.length > 0, 'invalid refused');
    expect(invalid.errors[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

describe('the watched window (ZB_FEED_MAX_ROWS)', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '5' } });
  });
  afterAll(() => t.close());

  it('only the newest rows are compared: a service pushed out of the window reads as REMOVED, one coming back as ADDED', async () => {
    const sub = client().subscribe<Change>(CHANGES, { filter: URGENT });
    await baseline();
    const [, , , , fifth] = urgentServices();
    const added = t.sim.world.add({ great1: 3 });
    await until(() => sub.data.length >= 2, 'the new one and the one it pushed out');
    expect(kinds(sub)).toEqual([`ADDED:${added.ord}`, `REMOVED:${fifth!.ord}`]);
    // A change beyond the window is not seen at all.
    const beyond = urgentServices()[10]!;
    t.sim.world.edit(beyond.ord, { title: 'beyond the window' });
    t.sim.world.remove(added.ord);
    await until(() => sub.data.length >= 4, 'the removal and the one coming back');
    expect(kinds(sub).slice(2)).toEqual([`ADDED:${fifth!.ord}`, `REMOVED:${added.ord}`]);
  });
});

describe('handleService through this subgraph', () => {
  beforeAll(async () => {
    // Polls a minute apart: anything that arrives within the test's bound came at once, not from a poll.
    t = await startStack({ env: { ZB_FEED_POLL_MS: '60000', ZB_FEED_MAX_ROWS: '40' } });
  });
  afterAll(() => t.close());

  it('a SAVED service reports UPDATED at once to that identity\'s subscriptions that show it; its poller then polls early', async () => {
    const sub = client().subscribe<Change>(CHANGES, { filter: URGENT });
    await baseline(1);
    const target = urgentServices().find((s) => s.result1 === 1)!;
    const saved = await t.gql<{ handleService: { outcome: string } }>(
      `mutation { handleService(input: { id: "${target.ord}", assigneeId: "2", note: "换了滚轮", salespersonId: "5", result: "已解决" }) { outcome } }`,
    );
    expect(saved.data?.handleService.outcome).toBe('SAVED');
    await until(() => sub.data.length >= 2, 'UPDATED at once, then the early poll');
    const [first, second] = sub.data.map((d) => d.afterSaleServiceChanged);
    expect(first).toMatchObject({ kind: 'UPDATED', id: String(target.ord) });
    // The early poll's list row shows the new handling state.
    expect(second).toMatchObject({ kind: 'UPDATED', id: String(target.ord) });
    // Baseline, then the one early poll: no scheduled poll has run (the next is a minute away).
    expect(await pollsOk()).toBe(2);
  });
});

describe('a subscription sent as a plain HTTP request', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50' } });
  });
  afterAll(() => t.close());

  it('is answered BAD_REQUEST, saying where subscriptions are served, and starts nothing', async () => {
    const r = await t.gql('subscription { afterSaleServiceChanged { kind id } }');
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(r.errors?.[0]?.message).toMatch(/WebSocket/);
    expect(t.app.feed.stats().pollers).toBe(0);
    expect(t.sim.calls.count('list')).toBe(0);
  });
});

import type { CallRecord } from '../src/simulator/call-log';
import { postJson, startStack, until, type TestStack } from './helpers';
import { wsClient, type Received, type TestWsClient } from './support/ws-client';

/**
 * What the change feed costs the ERP, and as whom it reads, from the simulator's call log: one poller per identity
 * and filter however many subscribe, no polls once nobody listens, each identity's polls with its own session, an
 * outage that loses nothing, and a refused user session that ends its subscription without the service account
 * ever reading for it.
 */
const CHANGES = `
  subscription Changes($filter: AfterSaleServiceFilter) {
    afterSaleServiceChanged(filter: $filter) { kind id cursor service { id title } }
  }`;

interface Change {
  afterSaleServiceChanged: { kind: string; id: string; cursor: string; service: { id: string; title: string | null } | null };
}

let t: TestStack;
const clients: TestWsClient[] = [];

function client(options: Parameters<typeof wsClient>[1] = {}): TestWsClient {
  const c = wsClient(t.app.url, options);
  clients.push(c);
  return c;
}

/** The feed's list calls (it asks for the newest first, `_rpt_sort=-ord`; user queries here never do). */
function feedCalls(filter: (r: CallRecord) => boolean = () => true): CallRecord[] {
  return t.sim.calls.of('list').filter((r) => r.datas._rpt_sort === '-ord' && filter(r));
}
const urgency = (id: string) => (r: CallRecord) => r.datas.great1 === id;

async function polls(outcome: string): Promise<number> {
  const metric = await t.app.metrics.feedPolls.get();
  return metric.values.filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
}

/** Waits until the feed has made `n` polls with `outcome` in all (a counter read on every turn of the event loop). */
async function untilPolls(outcome: string, n: number): Promise<void> {
  let seen = 0;
  await until(() => {
    void polls(outcome).then((v) => (seen = v));
    return seen >= n;
  }, `${n} feed polls (${outcome})`, 15_000);
}

async function userToken(user: string, password: string, serial: string): Promise<string> {
  const reply = await postJson(`${t.sim.url}/webapi/v3/ov1/login`, {
    datas: [{ id: 'user', val: `txt:${user}` }, { id: 'password', val: `txt:${password}` }, { id: 'serialnum', val: `txt:${serial}` }],
  });
  return (reply.json as { header: { session: string } }).header.session;
}

const kinds = <T extends Change>(r: Received<T>) => r.data.map((d) => `${d.afterSaleServiceChanged.kind}:${d.afterSaleServiceChanged.id}`);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
  await until(() => t.app.feed.stats().pollers === 0, 'every poller stopped');
  t.sim.faults.reset();
});

describe('pollers, not per-client loops', () => {
  beforeAll(async () => {
    // One list page per poll (40 rows, page size 40).
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '40' } });
  });
  afterAll(() => t.close());

  it('6 subscribers of one identity and filter cost the same list calls as 1: one per poll', async () => {
    const measure = async (subscribers: number) => {
      // Each on its own connection, as separate browsers or gateway connections would be.
      const subs = Array.from({ length: subscribers }, () => client().subscribe<Change>(CHANGES, { filter: { urgencyIds: ['2'] } }));
      await until(() => t.app.feed.stats().subscriptions === subscribers, `${subscribers} subscriptions`);
      expect(t.app.feed.stats().pollers).toBe(1);
      // From the baseline on, over 10 polls.
      await untilPolls('ok', (await polls('ok')) + 1);
      const [calls0, polls0] = [feedCalls(urgency('2')).length, await polls('ok')];
      await untilPolls('ok', polls0 + 10);
      const [calls1, polls1] = [feedCalls(urgency('2')).length, await polls('ok')];
      for (const s of subs) s.stop();
      await until(() => t.app.feed.stats().pollers === 0, 'poller stopped');
      return { calls: calls1 - calls0, polls: polls1 - polls0 };
    };
    const one = await measure(1);
    const six = await measure(6);
    // One list call per poll (a poll in flight at either end of the count may shift it by one), whoever listens.
    for (const m of [one, six]) expect(Math.abs(m.calls - m.polls)).toBeLessThanOrEqual(1);
    expect(Math.abs(six.calls - one.calls)).toBeLessThanOrEqual(2);
    console.log(`feed list calls: 1 subscriber ${one.calls} over ${one.polls} polls; 6 subscribers ${six.calls} over ${six.polls} polls`);
  });

  it('with no subscribers the polls stop: no more list calls for that filter while another filter keeps polling', async () => {
    const c = client();
    const gone = [c.subscribe(CHANGES, { filter: { urgencyIds: ['1'] } }), c.subscribe(CHANGES, { filter: { urgencyIds: ['1'] } })];
    const witness = c.subscribe(CHANGES, { filter: { urgencyIds: ['3'] } });
    await until(() => feedCalls(urgency('1')).length >= 3 && feedCalls(urgency('3')).length >= 3, 'both filters polling');
    for (const s of gone) s.stop();
    await until(() => t.app.feed.stats().pollers === 1, 'the first poller stopped');
    const stoppedAt = feedCalls(urgency('1')).length;
    // Time passes as the other filter's poller sees it: three more of its polls, i.e. more than two intervals.
    const witnessAt = feedCalls(urgency('3')).length;
    await until(() => feedCalls(urgency('3')).length >= witnessAt + 3, 'three more polls of the other filter');
    // At most a call that was already on its way when the last subscriber left; nothing after.
    expect(feedCalls(urgency('1')).length).toBeLessThanOrEqual(stoppedAt + 1);
    expect(witness.errors).toEqual([]);
  });

  it('two identities poll with their own sessions, and each sees only what its session may see', async () => {
    const zhang = await userToken('zhangwei', 'zhangwei-pass', 'feed-z');
    const lina = await userToken('lina', 'lina-pass', 'feed-l');
    t.sim.calls.clear();
    // One identity through the upgrade request's header (a gateway), the other through connection_init (a browser).
    const z = client({ headers: { 'x-zb-session': zhang } }).subscribe<Change>(CHANGES);
    const l = client({ connectionParams: { 'x-zb-session': lina } }).subscribe<Change>(CHANGES);
    await until(() => t.app.feed.stats().pollers === 2, 'two pollers');
    await until(() => feedCalls((r) => r.session === zhang).length >= 2 && feedCalls((r) => r.session === lina).length >= 2, 'both baselines');
    // Person 2 is zhangwei, person 3 lina (simulator users): each new service is visible to one of them only.
    const forLina = t.sim.world.add({ cateid: [3], addcate: 1, cate: 4, sharedWith: [] });
    const forZhang = t.sim.world.add({ cateid: [2], addcate: 1, cate: 4, sharedWith: [] });
    await until(() => kinds(z).includes(`ADDED:${forZhang.ord}`) && kinds(l).includes(`ADDED:${forLina.ord}`), 'each user its own');
    expect(kinds(z)).not.toContain(`ADDED:${forLina.ord}`);
    expect(kinds(l)).not.toContain(`ADDED:${forZhang.ord}`);
    // Every feed read was made with one of the two user sessions: never the service account's.
    expect(new Set(feedCalls().map((r) => r.session))).toEqual(new Set([zhang, lina]));
  });
});

describe('ERP errors for a while', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '40', ZB_BREAKER_RESET_MS: '100' } });
  });
  afterAll(() => t.close());

  it('the subscription stays open, polls back off, and a change made during the outage arrives once the ERP answers', async () => {
    const sub = client().subscribe<Change>(CHANGES);
    await untilPolls('ok', 2);
    t.sim.faults.configure({ errorRate: 1, randomKinds: ['http500', 'html', 'status11'] });
    const failedBefore = await polls('error');
    await untilPolls('error', failedBefore + 2);
    const newest = t.sim.world.liveServices().sort((a, b) => b.ord - a.ord)[0]!;
    t.sim.world.edit(newest.ord, { title: '停机期间改的' });
    const added = t.sim.world.add({ title: '停机期间新增' });
    await untilPolls('error', failedBefore + 4);
    expect(sub.data).toEqual([]);
    t.sim.faults.configure({ errorRate: 0 });
    await until(() => kinds(sub).includes(`UPDATED:${newest.ord}`) && kinds(sub).includes(`ADDED:${added.ord}`), 'the outage\'s changes', 15_000);
    expect(sub.errors).toEqual([]);
    expect(sub.completed).toBe(false);
  });
});

describe('with the read cache on (ZB_CACHE_TTL_MS)', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '40', ZB_CACHE_TTL_MS: '600000', ZB_CACHE_STALE_MS: '600000' } });
  });
  afterAll(() => t.close());

  it('every poll reads the ERP, and an event reads the changed service from the ERP, not from what the cache kept', async () => {
    const newest = t.sim.world.liveServices().sort((a, b) => b.ord - a.ord)[0]!;
    const DETAIL = 'query($id: ID!) { afterSaleService(id: $id) { id content } }';
    // A user's read fills the cache with the service's detail as it is now.
    const before = await t.gql<{ afterSaleService: { content: string } }>(DETAIL, { id: String(newest.ord) });
    expect(before.errors).toBeUndefined();
    const oldContent = before.data!.afterSaleService.content;
    const details = t.sim.calls.count('detail');
    expect((await t.gql(DETAIL, { id: String(newest.ord) })).errors).toBeUndefined();
    expect(t.sim.calls.count('detail')).toBe(details);

    const sub = client().subscribe<{ afterSaleServiceChanged: { kind: string; id: string; service: { title: string; content: string } | null } }>(`
      subscription { afterSaleServiceChanged { kind id service { title content } } }`);
    await untilPolls('ok', 2);
    // Each poll is a list call at the ERP, however long the cache would keep its page.
    const pollsNow = await polls('ok');
    const listCalls = feedCalls().length;
    await untilPolls('ok', pollsNow + 3);
    expect(feedCalls().length - listCalls).toBeGreaterThanOrEqual(3);

    // Changed in the ERP's own UI: seen at the next poll, with the detail as it is now.
    t.sim.world.edit(newest.ord, { title: '缓存开着也看得到', introts: '改过的内容' });
    await until(() => sub.data.some((d) => d.afterSaleServiceChanged.kind === 'UPDATED' && d.afterSaleServiceChanged.id === String(newest.ord)), 'the UPDATED event', 15_000);
    const event = sub.data.find((d) => d.afterSaleServiceChanged.kind === 'UPDATED')!.afterSaleServiceChanged;
    expect(event.service).toEqual({ title: '缓存开着也看得到', content: '改过的内容' });
    expect(oldContent).not.toBe('改过的内容');
    expect(sub.errors).toEqual([]);
  });
});

describe('a user session the ERP refuses', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '40' } });
  });
  afterAll(() => t.close());

  it('ends the subscription with UNAUTHENTICATED; the service account never reads for it', async () => {
    t.sim.calls.clear();
    const sub = client({ headers: { 'x-zb-session': 'BAD-TOKEN-123' } }).subscribe<Change>(CHANGES);
    await until(() => sub.errors.length > 0, 'UNAUTHENTICATED');
    expect(sub.errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(sub.errors[0]?.message).not.toContain('BAD-TOKEN-123');
    await until(() => t.app.feed.stats().pollers === 0, 'its poller stopped');
    expect(feedCalls().length).toBeGreaterThan(0);
    expect(feedCalls().every((r) => r.session === 'BAD-TOKEN-123')).toBe(true);
  });

  it('a session revoked while subscribed ends its subscription the same way', async () => {
    const token = await userToken('zhangwei', 'zhangwei-pass', 'feed-revoked');
    t.sim.calls.clear();
    const sub = client({ connectionParams: { 'x-zb-session': token } }).subscribe<Change>(CHANGES);
    await until(() => feedCalls((r) => r.session === token).length >= 2, 'baseline with the user session');
    t.sim.sessions.revoke(token, 9);
    await until(() => sub.errors.length > 0, 'UNAUTHENTICATED');
    expect(sub.errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(feedCalls().every((r) => r.session === token)).toBe(true);
  });

  it('a blank or conflicting x-zb-session is refused before any poll, never replaced by the service account', async () => {
    t.sim.calls.clear();
    const blank = client({ headers: { 'x-zb-session': ' ' } }).subscribe(CHANGES);
    const conflicting = client({ headers: { 'x-zb-session': 'A' }, connectionParams: { 'x-zb-session': 'B' } }).subscribe(CHANGES);
    const notText = client({ connectionParams: { 'x-zb-session': 42 } }).subscribe(CHANGES);
    await until(() => [blank, conflicting, notText].every((s) => s.errors.length > 0), 'all refused');
    for (const s of [blank, conflicting, notText]) expect(s.errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.sim.calls.count('list')).toBe(0);
  });
});

describe('ZB_SESSION_HEADER_REQUIRED', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_SESSION_HEADER_REQUIRED: 'true' } });
  });
  afterAll(() => t.close());

  it('a subscriber without x-zb-session is refused (UNAUTHENTICATED) and nothing polls', async () => {
    const sub = client().subscribe(CHANGES);
    await until(() => sub.errors.length > 0, 'refused');
    expect(sub.errors[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.app.feed.stats().pollers).toBe(0);
    expect(t.sim.calls.count('list')).toBe(0);
  });
});

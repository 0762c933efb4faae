import { createClient, type ExecutionResult } from 'graphql-sse';
import type { CallRecord } from '../src/simulator/call-log';
import { startStack, until, type TestStack } from './helpers';
import { EventStreamReader, hiveGetUrl } from './support/event-stream';

/**
 * The change feed over SSE, end to end against the simulator: a raw GET exactly as Hive Gateway's default subgraph
 * transport sends it (query in the URL, Accept: text/event-stream) and graphql-sse's own client (POST) receive ADDED,
 * UPDATED and REMOVED for the simulator's out-of-band changes; a change outside the filter reaches nobody; the app's
 * close ends both streams with `complete`. Identity as on HTTP: ZB_SESSION_HEADER_REQUIRED refuses a stream without
 * x-zb-session before anything polls.
 */
const CHANGES = `
  subscription Changes($filter: AfterSaleServiceFilter) {
    afterSaleServiceChanged(filter: $filter) { kind id cursor service { id title } }
  }`;
const URGENT = { urgencyIds: ['3'] };

interface Change {
  afterSaleServiceChanged: { kind: string; id: string; cursor: string; service: { id: string; title: string | null } | null };
}

let t: TestStack;
let appClosed = false;
const aborts: AbortController[] = [];

/** The feed's list calls (newest first, `_rpt_sort=-ord`) for urgency 3. */
const urgentPolls = () => t.sim.calls.of('list').filter((r: CallRecord) => r.datas._rpt_sort === '-ord' && r.datas.great1 === '3').length;

async function pollsOk(): Promise<number> {
  const metric = await t.app.metrics.feedPolls.get();
  return metric.values.filter((v) => v.labels.outcome === 'ok').reduce((n, v) => n + v.value, 0);
}

async function polled(atLeast: number): Promise<void> {
  let seen = 0;
  await until(() => {
    void pollsOk().then((n) => (seen = n));
    return seen >= atLeast;
  }, `${atLeast} feed polls`);
}

async function hiveGet(headers: Record<string, string> = {}): Promise<{ res: Response; stream: EventStreamReader }> {
  const controller = new AbortController();
  aborts.push(controller);
  const res = await fetch(hiveGetUrl(t.app.url, { query: CHANGES, variables: { filter: URGENT }, operationName: 'Changes' }), {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  return { res, stream: new EventStreamReader(res) };
}

async function sseGauge(): Promise<number> {
  const metric = await t.app.metrics.transportSubscriptions.get();
  return metric.values.find((v) => v.labels.transport === 'sse')?.value ?? -1;
}

const kindsOf = (results: readonly unknown[]) =>
  results.map((r) => (r as ExecutionResult<Change>).data?.afterSaleServiceChanged).map((c) => `${c?.kind}:${c?.id}`);

afterEach(() => {
  for (const c of aborts.splice(0)) c.abort();
});

describe('SSE subscribers (Hive Gateway GET and graphql-sse POST), out-of-band ERP changes', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_FEED_MAX_ROWS: '200' } });
  });
  afterAll(async () => {
    if (!appClosed) await t.app.close();
    await t.sim.close();
  });

  it('both receive ADDED, UPDATED and REMOVED; a change outside the filter reaches nobody; app.close() completes both', async () => {
    const { res, stream: get } = await hiveGet();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);

    const client = createClient({ url: t.app.url, retryAttempts: 0 });
    const posted: unknown[] = [];
    let postCompleted = false;
    let postFailed: unknown;
    client.subscribe({ query: CHANGES, variables: { filter: URGENT } }, {
      next: (r) => void posted.push(r),
      error: (e) => (postFailed = e),
      complete: () => (postCompleted = true),
    });
    await until(() => t.app.feed.stats().subscriptions === 2, 'two SSE subscriptions');
    // One identity and filter: one poller for both streams.
    expect(t.app.feed.stats().pollers).toBe(1);
    expect(await sseGauge()).toBe(2);
    await polled(2);

    // Outside the filter (urgency 1): the poller runs over it (list calls seen), and nothing is sent.
    const calm = t.sim.world.liveServices().filter((s) => s.great1 === 1).sort((a, b) => b.ord - a.ord)[0]!;
    t.sim.world.edit(calm.ord, { title: 'outside the filter' });
    const outside = t.sim.world.add({ great1: 1, title: 'new but not urgent' });
    const before = urgentPolls();
    await until(() => urgentPolls() >= before + 4, 'two more polls of the filter after the outside change');
    expect(get.nexts).toEqual([]);
    expect(posted).toEqual([]);

    const added = t.sim.world.add({ great1: 3, title: 'SSE 新的紧急售后' });
    await until(() => kindsOf(get.nexts).includes(`ADDED:${added.ord}`) && kindsOf(posted).includes(`ADDED:${added.ord}`), 'ADDED on both');
    const [target, doomed] = t.sim.world.liveServices().filter((s) => s.great1 === 3 && s.ord !== added.ord).sort((a, b) => b.ord - a.ord);
    t.sim.world.edit(target!.ord, { title: 'SSE 标题改了' });
    await until(() => kindsOf(get.nexts).includes(`UPDATED:${target!.ord}`) && kindsOf(posted).includes(`UPDATED:${target!.ord}`), 'UPDATED on both');
    t.sim.world.remove(doomed!.ord);
    await until(() => kindsOf(get.nexts).includes(`REMOVED:${doomed!.ord}`) && kindsOf(posted).includes(`REMOVED:${doomed!.ord}`), 'REMOVED on both');

    const expected = [`ADDED:${added.ord}`, `UPDATED:${target!.ord}`, `REMOVED:${doomed!.ord}`];
    expect(kindsOf(get.nexts)).toEqual(expected);
    expect(kindsOf(posted)).toEqual(expected);
    const events = get.nexts.map((r) => (r as ExecutionResult<Change>).data!.afterSaleServiceChanged);
    expect(events[0]!.service).toEqual({ id: String(added.ord), title: 'SSE 新的紧急售后' });
    expect(events[1]!.service?.title).toBe('SSE 标题改了');
    expect(events[2]!.service).toBeNull();
    expect([calm.ord, outside.ord].some((ord) => get.raw.includes(`"id":"${ord}"`))).toBe(false);
    expect(postFailed).toBeUndefined();

    // Graceful shutdown: each stream ends with `complete`, then the response ends.
    appClosed = true;
    await t.app.close();
    await until(() => get.completed && get.done && postCompleted, 'both streams completed');
    expect(get.events.at(-1)?.event).toBe('complete');
    expect(get.events.filter((e) => e.event === 'next' && (e.data as ExecutionResult).errors)).toEqual([]);
    expect(postFailed).toBeUndefined();
  });
});

describe('SSE identity (ZB_SESSION_HEADER_REQUIRED)', () => {
  beforeAll(async () => {
    t = await startStack({ env: { ZB_FEED_POLL_MS: '50', ZB_SESSION_HEADER_REQUIRED: 'true' } });
    appClosed = false;
  });
  afterAll(() => t.close());

  it('a stream without x-zb-session gets UNAUTHENTICATED then complete, and nothing polls', async () => {
    const { res, stream } = await hiveGet();
    expect(res.status).toBe(200);
    await until(() => stream.completed, 'refused and completed');
    expect((stream.nexts[0] as ExecutionResult).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.app.feed.stats().pollers).toBe(0);
    expect(t.sim.calls.count('list')).toBe(0);
  });
});

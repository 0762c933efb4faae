import Redis from 'ioredis';
import type { CallRecord } from '../src/simulator/call-log';
import { until } from './helpers';
import { startFleet, type FleetUnderTest } from './support/fleet';
import { describeWithRedis } from './support/redis-server';
import { wsClient, type Received, type TestWsClient } from './support/ws-client';

/**
 * The change feed across a fleet: two replicas of dist/main.js on one real Redis (ZB_REDIS_URL), graphql-ws
 * subscribers spread over both. One poller per identity and filter for the whole fleet (the simulator's call log and
 * each replica's poll metrics are the evidence), every subscriber served through Redis pub/sub, a SIGKILLed poller
 * taken over within the lease, and changes made while pub/sub was cut delivered once it is back.
 */
const CHANGES = `
  subscription Changes($filter: AfterSaleServiceFilter) {
    afterSaleServiceChanged(filter: $filter) { kind id cursor service { id title } }
  }`;
interface Change {
  afterSaleServiceChanged: { kind: string; id: string; service: { id: string; title: string | null } | null };
}
const POLL_MS = 200;
// ZB_FEED_POLL_MS 200: the lease is max(3 s, 3 polls) = 3 s (src/server/fleet.ts).
const LEASE_MS = 3000;

describeWithRedis('the change feed over a fleet of two replicas (Redis lease and pub/sub)', () => {
  let fleet: FleetUnderTest;
  const clients: TestWsClient[] = [];
  const subs: Array<{ replica: number; received: Received<Change> }> = [];

  const feedCalls = () => fleet.sim.calls.of('list').filter((r: CallRecord) => r.datas._rpt_sort === '-ord' && r.datas.great1 === '2').length;
  const kinds = (r: Received<Change>) => r.data.map((d) => `${d.afterSaleServiceChanged.kind}:${d.afterSaleServiceChanged.id}`);
  async function okPolls(replica: number): Promise<number> {
    const text = await (await fetch(`${fleet.replicas[replica]!.base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const m = /^zb_feed_polls_total\{outcome="ok"\} (\d+)/m.exec(text);
    return m ? Number(m[1]) : 0;
  }
  /** Waits, bounded, until `check` (async) holds. */
  async function eventually(check: () => Promise<boolean>, what: string, boundMs: number): Promise<void> {
    let ok = false;
    let pending = false;
    await until(() => {
      if (!pending) {
        pending = true;
        void check().then((v) => { ok = v; }, () => undefined).finally(() => { pending = false; });
      }
      return ok;
    }, what, boundMs);
  }
  const served = (replica: number) => subs.filter((s) => s.replica === replica);

  beforeAll(async () => {
    fleet = await startFleet({
      replicas: 2,
      env: { ZB_FEED_POLL_MS: String(POLL_MS), ZB_FEED_MAX_ROWS: '40', ZB_REDIS_KEY_PREFIX: 'feedfleet:' },
    });
    // Four subscribers of one identity (the service account) and one filter, two per replica, each on its own socket.
    for (let i = 0; i < 4; i++) {
      const c = wsClient(`${fleet.replicas[i % 2]!.base}/graphql`);
      clients.push(c);
      subs.push({ replica: i % 2, received: c.subscribe<Change>(CHANGES, { filter: { urgencyIds: ['2'] } }) });
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose().catch(() => undefined)));
    await fleet?.stop();
  });

  it('4 subscribers over 2 replicas cost one poller: list calls follow one replica\'s polls, the other stands by; all 4 get a change', async () => {
    // Both replicas have their key (their first poll is done somewhere): measure from there, over 10 polls.
    await eventually(async () => (await okPolls(0)) + (await okPolls(1)) >= 2, 'first polls', 15_000);
    const [ok0, ok1, calls0] = [await okPolls(0), await okPolls(1), feedCalls()];
    await eventually(async () => (await okPolls(0)) + (await okPolls(1)) >= ok0 + ok1 + 10, '10 more polls', 15_000);
    const [ok0b, ok1b, calls1] = [await okPolls(0), await okPolls(1), feedCalls()];
    // One list page per poll (40 rows): the fleet's list calls are exactly the polls of one replica; the other made none.
    expect([ok0b - ok0 === 0, ok1b - ok1 === 0].filter(Boolean)).toHaveLength(1);
    const polled = ok0b - ok0 + (ok1b - ok1);
    expect(calls1 - calls0).toBeGreaterThanOrEqual(polled - 1);
    expect(calls1 - calls0).toBeLessThanOrEqual(polled + 1);
    console.log(`fleet feed: ${calls1 - calls0} list calls for ${polled} polls of one poller, 4 subscribers on 2 replicas`);

    const added = fleet.sim.world.add({ great1: 2, title: '舰队新增' });
    await until(() => subs.every((s) => kinds(s.received).includes(`ADDED:${added.ord}`)), 'ADDED at all four subscribers', 10_000);
    const edited = fleet.sim.world.add({ great1: 1, title: 'not urgent' });
    fleet.sim.world.edit(edited.ord, { great1: 2 });
    await until(() => subs.every((s) => kinds(s.received).includes(`ADDED:${edited.ord}`)), 'a service entering the filter', 10_000);
    // Each subscriber gets each change once.
    for (const s of subs) expect(kinds(s.received).filter((k) => k === `ADDED:${added.ord}`)).toHaveLength(1);
  }, 60_000);

  it('Redis pub/sub connections killed (CLIENT KILL TYPE pubsub), and Redis restarted empty: changes meanwhile arrive late, not never', async () => {
    const admin = new Redis(fleet.redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      const killed = Number(await admin.client('KILL', 'TYPE', 'pubsub'));
      expect(killed).toBeGreaterThanOrEqual(2);
      const target = fleet.sim.world.add({ great1: 2, title: 'right after the pub/sub cut' });
      await until(() => subs.every((s) => kinds(s.received).includes(`ADDED:${target.ord}`)), 'delivered after the pub/sub reconnect', 15_000);
    } finally {
      admin.disconnect();
    }

    // Redis gone: the change made while it is down is delivered once it is back (a fresh, empty Redis: new lease).
    await fleet.redis.kill();
    const during = fleet.sim.world.add({ great1: 2, title: 'while Redis was down' });
    const downAt = Date.now();
    await fleet.redis.restart();
    await until(() => subs.every((s) => kinds(s.received).includes(`ADDED:${during.ord}`)), 'delivered after Redis came back', 20_000);
    console.log(`fleet feed: change made during a Redis outage delivered ${Date.now() - downAt} ms after the outage began`);
    for (const s of subs) {
      expect(kinds(s.received).filter((k) => k === `ADDED:${during.ord}`)).toHaveLength(1);
      expect(s.received.completed).toBe(false);
      expect(s.received.errors).toEqual([]);
    }
  }, 60_000);

  it('the poller\'s replica is SIGKILLed: the other replica takes the key over within the lease and its subscribers keep being served', async () => {
    // Who polls now (after the restart above the lease may have moved): the replica whose ok polls grow.
    const [a0, a1] = [await okPolls(0), await okPolls(1)];
    await eventually(async () => (await okPolls(0)) - a0 + (await okPolls(1)) - a1 >= 3, 'polls go on', 15_000);
    const holder = (await okPolls(0)) > a0 ? 0 : 1;
    const survivor = 1 - holder;
    const callsBefore = feedCalls();
    await fleet.replicas[holder]!.kill();
    const killedAt = Date.now();
    const change = fleet.sim.world.add({ great1: 2, title: 'after the poller died' });
    await until(() => served(survivor).every((s) => kinds(s.received).includes(`ADDED:${change.ord}`)), 'delivered by the new poller', LEASE_MS + 10 * POLL_MS + 5000);
    const tookMs = Date.now() - killedAt;
    console.log(`fleet feed: takeover after SIGKILL of the poller, change delivered in ${tookMs} ms (lease ${LEASE_MS} ms, poll ${POLL_MS} ms)`);
    expect(feedCalls()).toBeGreaterThan(callsBefore);
    expect(await okPolls(survivor)).toBeGreaterThan(survivor === 0 ? a0 : a1);
    for (const s of served(survivor)) {
      expect(kinds(s.received).filter((k) => k === `ADDED:${change.ord}`)).toHaveLength(1);
      expect(s.received.completed).toBe(false);
    }
  }, 60_000);
});

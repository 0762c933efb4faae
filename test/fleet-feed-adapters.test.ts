import type { FeedMessage } from '../src/domain/feed';
import { FeedMessageTooLargeError, RedisFeedBus } from '../src/fleet/feed-bus';
import { RedisFeedLease } from '../src/fleet/feed-lease';
import type { FleetObserver } from '../src/fleet/observer';
import type { FleetRedis } from '../src/fleet/redis';
import { until } from './helpers';
import { describeWithRedis, redisConnections } from './support/redis-server';

/**
 * The change feed's fleet adapters (src/fleet/feed-lease.ts, feed-bus.ts) against a real redis-server, each "replica"
 * its own connection and adapter in this process: lease exclusivity, renewal, takeover, release; bus fan-out across
 * replicas, refcounted SUBSCRIBE, oversize refusal, and re-synchronisation after the subscriber connection drops.
 */
describeWithRedis('change feed adapters on a real Redis', () => {
  const { connect: replicas } = redisConnections('ff');
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  function lease(redis: FleetRedis, leaseMs = 300, staleMs = 60_000): RedisFeedLease {
    const l = new RedisFeedLease(redis, { leaseMs, staleMs });
    closers.push(() => l.close());
    return l;
  }
  function bus(redis: FleetRedis, observer: FleetObserver = {}, maxMessageBytes = 64 * 1024): RedisFeedBus {
    const b = new RedisFeedBus(redis, { maxMessageBytes, observer });
    closers.push(() => b.close());
    return b;
  }
  /** The channels a Redis server has subscribers on (PUBSUB CHANNELS), under `prefix`. */
  async function channels(admin: FleetRedis, prefix: string): Promise<string[]> {
    return ((await admin.client.pubsub('CHANNELS', `${prefix}*`)) as string[]).sort();
  }
  const pttl = (redis: FleetRedis, key: string) => redis.client.pttl(redis.key('feed', 'lease', key));

  it('lease: one holder among three replicas, renewed by each acquire, freed by release for the next', async () => {
    const [a, b, c] = await replicas(3);
    const leases = [lease(a!, 2000), lease(b!, 2000), lease(c!, 2000)];
    const first = await Promise.all(leases.map((l) => l.acquire('k1')));
    expect(first.filter(Boolean)).toHaveLength(1);
    const holder = leases[first.indexOf(true)]!;
    const others = leases.filter((l) => l !== holder);
    // Renewal: the holder keeps it, the others keep standing by.
    for (let i = 0; i < 5; i++) {
      expect(await holder.acquire('k1')).toBe(true);
      for (const o of others) expect(await o.acquire('k1')).toBe(false);
    }
    expect(await pttl(a!, 'k1')).toBeGreaterThan(1000);
    // Another key is independent.
    expect(await others[0]!.acquire('k2')).toBe(true);
    // Release frees it at once (no wait for the TTL), and only the holder can.
    await others[1]!.release('k1');
    expect(await others[1]!.acquire('k1')).toBe(false);
    await holder.release('k1');
    expect(await others[1]!.acquire('k1')).toBe(true);
    expect(await holder.acquire('k1')).toBe(false);
  });

  it('lease: a holder that dies (stops renewing) is taken over after the lease time; a live holder keeps it between acquires', async () => {
    const [a, b] = await replicas(2);
    const LEASE = 1000;
    const live = lease(a!, LEASE);
    const other = lease(b!, LEASE);
    expect(await live.acquire('alive')).toBe(true);
    // The holder's timer renews it while its poll loop backs off: after several lease times it is still held.
    const heldSince = Date.now();
    await until(() => Date.now() - heldSince > 3 * LEASE, 'three lease times', 3 * LEASE + 2000);
    expect(await other.acquire('alive')).toBe(false);
    expect(live.holding()).toEqual(['alive']);

    // A dead holder: its lease entry stays in Redis with nobody renewing (its timers stopped without a release).
    const dead = new RedisFeedLease(a!, { leaseMs: LEASE, staleMs: 60_000 });
    expect(await dead.acquire('orphan')).toBe(true);
    (dead as unknown as { forget(key: string): void }).forget('orphan');
    expect(await other.acquire('orphan')).toBe(false);
    const died = Date.now();
    let taken = false;
    await until(() => {
      void other.acquire('orphan').then((v) => (taken ||= v));
      return taken;
    }, 'takeover', 3 * LEASE);
    const takeoverMs = Date.now() - died;
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE - 200);
    expect(takeoverMs).toBeLessThan(2 * LEASE);
  });

  it('lease: a poll loop that stopped asking (stale) gives its key up; Redis unreachable means stand by', async () => {
    const [a, b] = await replicas(2);
    const stale = lease(a!, 300, 400);
    const other = lease(b!, 300);
    expect(await stale.acquire('s')).toBe(true);
    let taken = false;
    await until(() => {
      void other.acquire('s').then((v) => (taken ||= v));
      return taken;
    }, 'taken after the holder went stale', 3000);
    expect(stale.holding()).toEqual([]);

    // A replica whose Redis does not answer stands by rather than poll.
    const [c] = await replicas(1);
    const cut = lease(c!, 300);
    c!.client.disconnect();
    await until(() => !c!.available, 'connection down');
    expect(await cut.acquire('s2')).toBe(false);
  });

  it('bus: messages reach every replica with listeners of the key, SUBSCRIBE/UNSUBSCRIBE follow the listeners (refcounted)', async () => {
    const [a, b, admin] = await replicas(3);
    const prefix = a!.key('feed', '');
    const ba = bus(a!);
    const bb = bus(b!);
    await until(() => ba.status().up && bb.status().up, 'subscriber connections up');
    const got: Record<string, FeedMessage[]> = { a1: [], a2: [], b1: [] };
    const a1 = ba.subscribe('k', { message: (m) => got.a1!.push(m) });
    const a2 = ba.subscribe('k', { message: (m) => got.a2!.push(m) });
    const b1 = bb.subscribe('k', { message: (m) => got.b1!.push(m) });
    // Two replicas on one channel, one SUBSCRIBE each (numsub counts connections).
    let numsub = 0;
    await until(() => {
      void admin!.client.pubsub('NUMSUB', `${prefix}k`).then((r) => (numsub = Number((r as unknown[])[1])));
      return numsub === 2;
    }, 'two subscriber connections on the channel');

    await ba.publish({ type: 'touched', key: 'k', id: '7' });
    await bb.publish({ type: 'sync', key: 'k' });
    await until(() => got.a1!.length === 2 && got.a2!.length === 2 && got.b1!.length === 2, 'both messages everywhere');
    expect(got.a1).toEqual([{ type: 'touched', key: 'k', id: '7' }, { type: 'sync', key: 'k' }]);
    expect(got.b1).toEqual(got.a1);

    // One of two listeners leaves: still subscribed; the last leaves: unsubscribed; the other replica still is.
    await a1.close();
    expect(await channels(admin!, prefix)).toEqual([`${prefix}k`]);
    await a2.close();
    await until(() => {
      void admin!.client.pubsub('NUMSUB', `${prefix}k`).then((r) => (numsub = Number((r as unknown[])[1])));
      return numsub === 1;
    }, 'one subscriber connection left');
    await b1.close();
    await until(() => {
      void admin!.client.pubsub('NUMSUB', `${prefix}k`).then((r) => (numsub = Number((r as unknown[])[1])));
      return numsub === 0;
    }, 'none left');
    expect(ba.keys()).toEqual([]);
  });

  it('bus: a message over the byte bound is refused and counted (the poller then sends a snapshot), smaller ones pass; junk is dropped', async () => {
    const [a, admin] = await replicas(2);
    const events: string[] = [];
    const b = bus(a!, { feedBus: (e) => events.push(e) }, 4096);
    await until(() => b.status().up, 'subscriber connection up');
    const got: FeedMessage[] = [];
    b.subscribe('big', { message: (m) => got.push(m) });
    const rows = Array.from({ length: 100 }, (_, i) => ({ id: String(i), row: { ord: String(i), title: 'x'.repeat(100) } }));
    const huge: FeedMessage = { type: 'snapshot', key: 'big', epoch: 'e', seq: 1, rows };
    await expect(b.publish(huge)).rejects.toBeInstanceOf(FeedMessageTooLargeError);
    expect(events).toEqual(['oversize']);
    await admin!.client.publish(a!.key('feed', 'big'), 'not json');
    await admin!.client.publish(a!.key('feed', 'big'), JSON.stringify({ type: 'sync', key: 'another' }));
    await b.publish({ type: 'snapshot', key: 'big', epoch: 'e', seq: 2, rows: rows.slice(0, 3) });
    await until(() => got.length === 1, 'the small snapshot');
    expect(got[0]).toMatchObject({ type: 'snapshot', seq: 2 });
    expect(events).toEqual(['oversize', 'invalid', 'invalid']);
  });

  it('bus: after the subscriber connection is killed, it subscribes again and every listener hears gap(); later messages arrive', async () => {
    const [a, admin] = await replicas(2);
    const events: string[] = [];
    const b = bus(a!, { feedBus: (e) => events.push(e) });
    await until(() => b.status().up, 'subscriber connection up');
    const gaps: string[] = [];
    const got: FeedMessage[] = [];
    b.subscribe('r1', { message: (m) => got.push(m), gap: () => gaps.push('r1') });
    b.subscribe('r2', { message: (m) => got.push(m), gap: () => gaps.push('r2') });
    await b.publish({ type: 'touched', key: 'r1', id: '1' });
    await until(() => got.length === 1, 'before the kill');
    await admin!.client.client('KILL', 'TYPE', 'pubsub');
    await until(() => gaps.length === 2, 'gap() on every listener after the reconnect', 10_000);
    expect(gaps.sort()).toEqual(['r1', 'r2']);
    expect(events).toContain('gap');
    // Published from the shared connection; the publish waits for the re-SUBSCRIBE, so it is heard.
    await b.publish({ type: 'touched', key: 'r2', id: '2' });
    await until(() => got.length === 2, 'after the reconnect');
    expect(got[1]).toEqual({ type: 'touched', key: 'r2', id: '2' });
    expect(b.status().up).toBe(true);
  });
});

import { setTimeout as delay } from 'node:timers/promises';
import type { CachedReply } from '../src/erp/cache-store';
import type { ErpCall } from '../src/erp/call';
import { ErpBusyError } from '../src/erp/errors';
import type { HandleResult } from '../src/domain/handle';
import { IdempotencyStoreUnavailableError } from '../src/domain/recovery';
import { RedisIdempotencyStore } from '../src/fleet/idempotency';
import { FleetPermits } from '../src/fleet/permits';
import { RedisReadCacheStore } from '../src/fleet/read-cache';
import { FleetRedis } from '../src/fleet/redis';
import { RedisSessionStore } from '../src/fleet/session';
import { describeWithRedis, redisConnections } from './support/redis-server';

/**
 * The fleet adapters (src/fleet/) against a real redis-server, each "replica" being its own connection and adapter
 * instance in this process: the protocol of each shared guarantee, without child processes.
 */
describeWithRedis('fleet adapters on a real Redis', () => {
  /** `n` replicas' connections under one fresh prefix (tests do not see each other's keys). */
  const { connect: replicas, track } = redisConnections('t');

  it('one login for three replicas, and exactly one more when the fleet token is refused', async () => {
    const conns = await replicas(3);
    const stores = conns.map((r) => new RedisSessionStore(r, { lockMs: 2000, pollMs: 10 }));
    let logins = 0;
    const login = async () => {
      logins++;
      await delay(50);
      return `token-${logins}`;
    };
    const first = await Promise.all(stores.flatMap((s) => [s.acquire('service:admin', undefined, login), s.acquire('service:admin', undefined, login)]));
    expect(logins).toBe(1);
    expect(new Set(first)).toEqual(new Set(['token-1']));
    // Every replica finds its token refused at once.
    const renewed = await Promise.all(stores.map((s) => s.acquire('service:admin', 'token-1', login)));
    expect(logins).toBe(2);
    expect(new Set(renewed)).toEqual(new Set(['token-2']));
    // A replica that starts later (same prefix) takes the fleet's token instead of logging in.
    const late = new RedisSessionStore(conns[0]!, { lockMs: 2000 });
    await expect(late.acquire('service:admin', undefined, login)).resolves.toBe('token-2');
    expect(logins).toBe(2);
  });

  it('idempotency: one claim, waiters get its payload, a different input is refused, an expired claim is recovered', async () => {
    const [a, b, c] = await replicas(3);
    const options = { ttlMs: 60_000, leaseMs: 400, maxWaitMs: 3000, pollMs: 20 };
    const stores = [a!, b!, c!].map((r) => new RedisIdempotencyStore(r, options));
    const result: HandleResult = { outcome: 'SAVED', message: 'ok', userErrors: [], service: null };

    const claims = await Promise.all(stores.map((s) => s.claim('k1', 'fp')));
    expect(claims.map((x) => x.kind).sort()).toEqual(['claimed', 'pending', 'pending']);
    const owner = stores[claims.findIndex((x) => x.kind === 'claimed')]!;
    await owner.complete('k1', result);
    for (const x of claims) if (x.kind === 'pending') await expect(x.result).resolves.toMatchObject({ outcome: 'SAVED', message: 'ok' });
    await expect(stores[2]!.claim('k1', 'other')).resolves.toMatchObject({ kind: 'done', fingerprint: 'fp' });

    // The holder dies (no complete, no heartbeat): after its lease the same input recovers it, another input does not.
    expect((await stores[0]!.claim('k2', 'fp')).kind).toBe('claimed');
    stores[0]!.close();
    await delay(600);
    await expect(stores[1]!.claim('k2', 'other')).resolves.toMatchObject({ kind: 'pending', fingerprint: 'fp' });
    expect((await stores[1]!.claim('k2', 'fp')).kind).toBe('recovered');
    // A recovered claim released (its re-read failed) stays recoverable: never simply freed.
    await stores[1]!.release('k2', new Error('re-read failed'));
    expect((await stores[2]!.claim('k2', 'fp')).kind).toBe('recovered');

    // A live holder's lease is refreshed: nobody recovers it while it runs.
    expect((await stores[1]!.claim('k3', 'fp')).kind).toBe('claimed');
    await delay(900);
    expect((await stores[2]!.claim('k3', 'fp')).kind).toBe('pending');
    await stores[1]!.release('k3', new Error('never sent'));
    expect((await stores[2]!.claim('k3', 'fp')).kind).toBe('claimed');
    for (const s of stores) s.close();
  });

  it('idempotency fails closed when Redis cannot be reached', async () => {
    const dead = new FleetRedis({ url: 'redis://127.0.0.1:1/0', keyPrefix: 'x:', commandTimeoutMs: 200 });
    track(dead);
    const store = new RedisIdempotencyStore(dead, { ttlMs: 60_000, leaseMs: 400, maxWaitMs: 1000 });
    // Right after start a command waits for the first connection, bounded (1 s here); later ones fail at once.
    let started = Date.now();
    await expect(store.claim('k', 'fp')).rejects.toBeInstanceOf(IdempotencyStoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(1500);
    started = Date.now();
    await expect(store.claim('k', 'fp')).rejects.toBeInstanceOf(IdempotencyStoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(100);
  });

  const detail = (ord: string): ErpCall => ({ endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: ord }] });
  const entry = (tags: string[], text: string): CachedReply => ({
    reply: { header: { status: 0, message: text }, body: undefined },
    freshUntil: Date.now() + 10_000,
    staleUntil: Date.now() + 10_000,
    tags,
  });

  it('shared read cache: one replica reads a cold key while the others wait for it; a drop on any replica wins over a read that raced it', async () => {
    const made = await replicas(3);
    const stores = made.map((r) => new RedisReadCacheStore(r, { flightMs: 2000, maxReadMs: 5000, entryLifeMs: 10_000, pollMs: 10 }));
    void detail;
    // Cold: exactly one replica is told "miss" (it reads the ERP); the others wait and get its entry.
    const lookups = stores.map((s) => s.get('k'));
    await delay(50);
    const results = await Promise.race([Promise.all(lookups), delay(100).then(() => 'waiting' as const)]);
    expect(results).toBe('waiting');
    const leader = await Promise.race(lookups.map((p, i) => p.then((v) => (v === undefined ? i : -1))));
    expect(leader).toBeGreaterThanOrEqual(0);
    await stores[leader]!.set('k', entry(['detail:1'], 'v1'));
    const all = await Promise.all(lookups);
    expect(all.filter((v) => v === undefined)).toHaveLength(1);
    expect(all.filter((v) => v?.reply.header.message === 'v1')).toHaveLength(2);

    // A read starts on replica 0, a save on replica 1 drops the tag, the read's answer is not stored.
    expect(await stores[0]!.get('k2')).toBeUndefined();
    await stores[1]!.dropTagged(['detail:2']);
    await stores[0]!.set('k2', entry(['detail:2'], 'old'));
    const after = stores[2]!.get('k2');
    // Nothing stored: replica 2 leads the next read itself.
    await expect(Promise.race([after, delay(1000).then(() => 'waited')])).resolves.toBeUndefined();

    // An entry stored, then dropped elsewhere: gone for everyone.
    await stores[2]!.set('k2', entry(['detail:2'], 'new'));
    await expect(stores[0]!.get('k2')).resolves.toMatchObject({ reply: { header: { message: 'new' } } });
    await stores[1]!.dropTagged(['detail:2']);
    await expect(stores[0]!.get('k2')).resolves.toBeUndefined();
    for (const s of stores) s.close();
  });

  it('fleet permits: the budget holds across replicas, and a replica that stops refreshing gives its permits back', async () => {
    const made = await replicas(3);
    const permits = made.map((r) => new FleetPermits(r, { limit: 3, leaseMs: 600, maxWaitMs: 5000 }));
    let inFlight = 0;
    let peak = 0;
    const call: ErpCall = detail('1');
    const send = permits.map((p) =>
      p.wrap(async () => {
        peak = Math.max(peak, ++inFlight);
        await delay(30);
        inFlight--;
        return { header: { status: 0, message: 'ok' }, body: undefined };
      }),
    );
    await Promise.all(Array.from({ length: 45 }, (_, i) => send[i % 3]!(call)));
    expect(peak).toBe(3);

    // Permits held by a "replica" that vanished (taken, never released nor refreshed) expire after the lease.
    const { Semaphore } = await import('redis-semaphore');
    for (let i = 0; i < 3; i++) {
      const orphan = new Semaphore(made[0]!.client, made[0]!.key('permits'), 3, { lockTimeout: 600, refreshInterval: 0 });
      expect(await orphan.tryAcquire()).toBe(true);
    }
    const busy = new FleetPermits(made[1]!, { limit: 3, leaseMs: 600, maxWaitMs: 100 });
    await expect(busy.wrap(() => Promise.resolve({ header: { status: 0, message: '' }, body: undefined }))(call)).rejects.toBeInstanceOf(ErpBusyError);
    const started = Date.now();
    await send[2]!(call);
    expect(Date.now() - started).toBeLessThan(2000);
    for (const p of [...permits, busy]) p.close();
  });
});

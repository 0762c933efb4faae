import { drive, poll, unexpected } from './support/attack';
import { DETAIL, gql, handled, HANDLE, saves, startFleet, type FleetUnderTest } from './support/fleet';
import { describeWithRedis } from './support/redis-server';

/**
 * The fleet's ERP budget, and what the replicas do when Redis is frozen or killed: proven from the simulator's peak
 * concurrency and call log, with replicas of dist/main.js as separate processes.
 */
const FLEET_CAP = 4;

describeWithRedis('fleet budget and Redis outages', () => {
  let fleet: FleetUnderTest;
  let n = 0;
  const input = (over: Record<string, unknown> = {}) => ({ id: '1100', assigneeId: '2', note: `outage note ${++n}`, salespersonId: '5', result: '已解决', ...over });
  // Distinct pages: each a cache miss, so every request reaches the ERP.
  let pageSeq = 0;
  const listBody = () => JSON.stringify({ query: `{ afterSaleServices(page: ${1 + (++pageSeq % 60)}, pageSize: ${3 + (pageSeq % 7)}) { items { id } } }` });

  beforeAll(async () => {
    fleet = await startFleet({
      replicas: 3,
      env: {
        ZB_REDIS_KEY_PREFIX: 'outage:',
        ZB_FLEET_MAX_CONCURRENT_CALLS: String(FLEET_CAP),
        ZB_FLEET_PERMIT_LEASE_MS: '1500',
        ZB_MAX_CONCURRENT_CALLS: '8',
        ZB_DETAIL_CONCURRENCY: '8',
        ZB_QUEUE_TIMEOUT_MS: '10000',
        ZB_CACHE_TTL_MS: '1',
        ZB_REDIS_COMMAND_TIMEOUT_MS: '300',
      },
      simulator: { faults: { latencyMs: 60 } },
    });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it(`the ERP never sees more than ZB_FLEET_MAX_CONCURRENT_CALLS (${FLEET_CAP}) calls at once, also after a replica holding permits is SIGKILLed`, async () => {
    fleet.sim.calls.clear();
    const [a, b, c] = fleet.replicas;
    const load = (base: string, durationMs: number) => drive({ base, clients: 8, durationMs, body: listBody, timeoutMs: 15_000 });
    // Each call holds its permit for 250 ms, so 24 clients keep the budget full even when the replicas are starved of
    // CPU by other suites: the peak shows the cap was reached, not merely approached.
    fleet.sim.faults.configure({ latencyMs: 250 });
    const first = await Promise.all([a!, b!, c!].map((r) => load(r.base, 1500)));
    fleet.sim.faults.configure({ latencyMs: 60 });
    for (const t of first) expect(unexpected(t, ['200:data'])).toEqual({});
    expect(fleet.sim.calls.peak()).toBe(FLEET_CAP);

    // A is killed while it holds permits; B and C go on (A's permits come back within the lease, 1.5 s).
    const during = [b!, c!].map((r) => load(r.base, 4000));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await a!.kill();
    const rest = await Promise.all(during);
    for (const t of rest) expect(unexpected(t, ['200:data'])).toEqual({});
    expect(fleet.sim.calls.peak()).toBeLessThanOrEqual(FLEET_CAP);
    // Served after the kill: the survivors were not starved of permits.
    const after = await Promise.all([b!, c!].map((r) => gql(r.base, `{ afterSaleServices(page: 77, pageSize: 2) { items { id } } }`)));
    expect(after.every((r) => r.status === 200 && r.ms < 3000)).toBe(true);
  }, 40_000);

  it('Redis frozen (SIGSTOP): reads answer within seconds, keyed saves fail closed before anything is sent, unkeyed saves work', async () => {
    const [, b, c] = fleet.replicas;
    fleet.redis.freeze();
    try {
      for (const r of [b!, c!]) {
        const read = await gql(r.base, DETAIL('1110'));
        expect(read.status).toBe(200);
        expect(read.body?.errors).toBeUndefined();
        expect(read.ms).toBeLessThan(3000);
      }
      const before = saves(fleet.sim);
      const keyed = await gql(b!.base, HANDLE, { input: input({ idempotencyKey: 'frozen-key' }) });
      expect(keyed.body?.errors?.[0]?.extensions).toMatchObject({ code: 'IDEMPOTENCY_STORE_UNAVAILABLE', retryable: true });
      expect(keyed.ms).toBeLessThan(3000);
      expect(saves(fleet.sim)).toBe(before);
      const unkeyed = await gql(c!.base, HANDLE, { input: input() });
      expect(handled(unkeyed.body)?.outcome).toBe('SAVED');
      const ready = await fetch(`${b!.base}/health/ready`).then(async (r) => ({ status: r.status, body: (await r.json()) as { redis?: string } }));
      expect(ready.status).toBe(200);
      expect(ready.body.redis).toMatch(/^unavailable/);
    } finally {
      fleet.redis.thaw();
    }
  }, 30_000);

  it('Redis killed and restarted: the replicas reconnect by themselves and nothing crashes', async () => {
    const [, b, c] = fleet.replicas;
    await fleet.redis.kill();
    const read = await gql(b!.base, DETAIL('1120'));
    expect(read.status).toBe(200);
    await fleet.redis.restart();
    for (const r of [b!, c!]) {
      await poll(
        async () => ((await fetch(`${r.base}/health/ready`).then((x) => x.json())) as { redis?: string }).redis === 'ok',
        'readiness reports Redis ok again',
        10_000,
        100,
      );
    }
    // The restarted Redis is empty: the fleet session is published again by one login at most; keyed saves work.
    const keyed = await gql(c!.base, HANDLE, { input: input({ idempotencyKey: 'after-restart' }) });
    expect(handled(keyed.body)?.outcome).toBe('SAVED');
    for (const r of [b!, c!]) expect(r.exit()).toBeUndefined();
  }, 30_000);
});

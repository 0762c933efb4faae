import { poll } from './support/attack';
import { DETAIL, gql, handled, HANDLE, saves, startFleet, type FleetUnderTest } from './support/fleet';
import { describeWithRedis } from './support/redis-server';

/**
 * Three replicas of dist/main.js sharing one real Redis, in front of one simulator that kicks an account's older
 * sessions on every new login (as the protocol notes say a real ERP can). Every claim is proven from the simulator's
 * call log.
 */
describeWithRedis('a fleet of three replicas keeps every guarantee (Redis shared state)', () => {
  let fleet: FleetUnderTest;
  const base = (i: number) => fleet.replicas[i % fleet.replicas.length]!.base;
  let n = 0;
  const input = (over: Record<string, unknown> = {}) => ({ id: '1010', assigneeId: '2', note: `fleet note ${++n}`, salespersonId: '5', result: '已解决', ...over });

  beforeAll(async () => {
    fleet = await startFleet({ replicas: 3, env: { ZB_CACHE_TTL_MS: '60000', ZB_REDIS_KEY_PREFIX: 'replicas:' }, simulator: { faults: { latencyMs: 20 } } });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('one login for three replicas under load, and exactly one more after a fleet-wide expiry', async () => {
    expect(fleet.sim.calls.count('login')).toBe(1);
    // `from` picks the page sizes: each round reads pages no earlier round cached.
    const page = (i: number) => `{ afterSaleServices(page: ${1 + (i % 15)}, pageSize: ${5 + Math.floor(i / 100) * 3 + (i % 3)}) { items { id } } }`;
    const load = async (from: number) => {
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => gql(base(i), page(from + i))));
      return results.filter((r) => r.status !== 200 || r.body?.errors).map((r) => JSON.stringify(r.body).slice(0, 200));
    };
    expect(await load(0)).toEqual([]);
    expect(fleet.sim.calls.count('login')).toBe(1);

    fleet.sim.sessions.expireAll();
    // Fresh pages: every replica meets the expired token on the ERP, not in the cache.
    expect(await load(100)).toEqual([]);
    expect(fleet.sim.calls.count('login')).toBe(2);
  }, 30_000);

  it('exactly one save for 30 concurrent calls with one key over three replicas; another input with that key is refused everywhere', async () => {
    const first = input({ id: '1020' });
    const key = 'fleet-key-30';
    const before = saves(fleet.sim, '1020');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => gql(base(i), HANDLE, { input: { ...first, idempotencyKey: key } })));
    expect(saves(fleet.sim, '1020') - before).toBe(1);
    const outcomes = results.map((r) => handled(r.body)?.outcome ?? r.body?.errors?.[0]?.extensions?.code);
    // Every caller got the first payload, or a retriable "in use" while it was running: never a second save.
    expect(outcomes.every((o) => o === 'SAVED' || o === 'IDEMPOTENCY_KEY_IN_USE')).toBe(true);
    expect(outcomes.filter((o) => o === 'SAVED').length).toBeGreaterThan(20);

    for (let i = 0; i < 3; i++) {
      const other = await gql(base(i), HANDLE, { input: { ...first, note: 'another input', idempotencyKey: key } });
      expect(other.body?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const replay = await gql(base(i), HANDLE, { input: { ...first, idempotencyKey: key } });
      expect(handled(replay.body)?.outcome).toBe('SAVED');
    }
    expect(saves(fleet.sim, '1020') - before).toBe(1);
  }, 30_000);

  it('a cold burst of 30 identical detail reads over three replicas makes one ERP call', async () => {
    const detailsOf = (ord: string) => fleet.sim.calls.of('detail').filter((c) => c.datas.ord === ord).length;
    expect(detailsOf('1050')).toBe(0);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => gql(base(i), DETAIL('1050'))));
    expect(results.every((r) => r.status === 200 && !r.body?.errors)).toBe(true);
    expect(detailsOf('1050')).toBe(1);
  }, 30_000);

  it('read-after-write across replicas: a save on one replica is what the others serve next', async () => {
    const id = '1060';
    const warm = await Promise.all([0, 1, 2].map((i) => gql(base(i), DETAIL(id))));
    expect(warm.every((r) => r.status === 200)).toBe(true);
    const change = input({ id, note: 'changed on replica 1' });
    expect(handled((await gql(base(0), HANDLE, { input: change })).body)?.outcome).toBe('SAVED');
    for (const i of [1, 2]) {
      const read = await gql(base(i), DETAIL(id));
      expect((read.body?.data as { afterSaleService: { handlingContent: string } }).afterSaleService.handlingContent).toBe('changed on replica 1');
    }
  }, 30_000);

  it('the key owner is SIGKILLed after the ERP stored its save: a retry on another replica answers from the record, no second save', async () => {
    const id = '1070';
    const save = input({ id, note: 'saved, then the replica died', idempotencyKey: 'fleet-owner-dies' });
    const before = saves(fleet.sim, id);
    // The ERP stores the save on arrival and never answers it.
    const held = fleet.sim.faults.hold({ endpoint: 'process' });
    const owner = fleet.replicas[0]!;
    const lost = gql(owner.base, HANDLE, { input: save }).catch(() => undefined);
    await poll(() => held.held === 1, 'the save reached the ERP', 10_000);
    await owner.kill();
    await lost;
    expect(saves(fleet.sim, id) - before).toBe(1);

    // While the dead owner's claim lives, the key is in use (retriable), never saved again.
    const early = await gql(base(1), HANDLE, { input: save });
    expect(early.body?.errors?.[0]?.extensions).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE', retryable: true });
    let answer: ReturnType<typeof handled>;
    await poll(
      async () => {
        answer = handled((await gql(base(2), HANDLE, { input: save })).body);
        return answer !== undefined;
      },
      'the retry is answered once the dead owner claim expired',
      15_000,
      250,
    );
    expect(answer!.outcome).toBe('SAVED');
    expect(answer!.service?.handlingContent).toBe('saved, then the replica died');
    expect(saves(fleet.sim, id) - before).toBe(1);
    held.release();
  }, 40_000);
});

import { poll } from './support/attack';
import { DETAIL, gql, handled, HANDLE, startFleet, type FleetUnderTest } from './support/fleet';
import { describeWithRedis } from './support/redis-server';

/**
 * Read-after-write across replicas while a read of the saved service is already in flight on another replica (issue
 * "Run as a fleet", item 4): the write epochs kept in Redis per fence tag move every replica's write fence, so a read
 * that starts after the save's reply joins no flight and is served no answer computed before the save. Proven from the
 * simulator's call log; the race is fixed by `hold` (the held read's answer is computed on arrival, before the save).
 */
// Far below ZB_TIMEOUT_MS: a read that waited for the held one would not answer within it.
const AFTER_SAVE_BOUND_MS = 5000;

describeWithRedis('read-after-write holds fleet-wide while an older read is in flight (Redis write epochs)', () => {
  let fleet: FleetUnderTest;
  const base = (i: number) => fleet.replicas[i]!.base;
  const content = (r: Awaited<ReturnType<typeof gql>>) => (r.body?.data as { afterSaleService: { handlingContent: string | null } } | undefined)?.afterSaleService.handlingContent;
  const detailCalls = (ord: string) => fleet.sim.calls.of('detail').filter((c) => c.datas.ord === ord);

  beforeAll(async () => {
    // A held read must outlast the test (no timeout and retry on its own), and so would a fleet flight it leads.
    fleet = await startFleet({ replicas: 3, env: { ZB_CACHE_TTL_MS: '60000', ZB_REDIS_KEY_PREFIX: 'raw:', ZB_TIMEOUT_MS: '20000' } });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a read on B after a save on A neither joins B\'s older flight nor lets its answer be kept', async () => {
    const id = '1010';
    const note = 'saved on A while B was reading';
    // B's read reaches the ERP and its (pre-save) answer is held there.
    const held = fleet.sim.faults.hold({ endpoint: 'detail' });
    const oldRead = gql(base(1), DETAIL(id));
    await poll(() => held.held === 1, 'B\'s detail read reached the ERP', 10_000);
    const heldSeq = detailCalls(id).at(-1)!.seq;

    const saved = await gql(base(0), HANDLE, { input: { id, assigneeId: '2', note, salespersonId: '5', result: '已解决' } });
    expect(handled(saved.body)?.outcome).toBe('SAVED');
    const processSeq = fleet.sim.calls.of('process').filter((c) => c.stored && c.datas.ord === id).at(-1)!.seq;
    expect(processSeq).toBeGreaterThan(heldSeq);
    const detailsBefore = detailCalls(id).length;

    // A's confirming re-read (after the process call) is what the fleet now serves.
    expect(detailsBefore).toBeGreaterThan(1);
    expect(detailCalls(id).at(-1)!.seq).toBeGreaterThan(processSeq);

    // Still held: a read on B that joined B's flight, or waited for it, would not answer until the release.
    const after = await gql(base(1), DETAIL(id), undefined, AFTER_SAVE_BOUND_MS);
    expect(content(after)).toBe(note);
    expect(held.held).toBe(1);

    held.release();
    // The held read answers its own caller with what it read (before the save), and is not kept.
    expect(content(await oldRead)).not.toBe(note);

    const detailsNow = detailCalls(id).length;
    for (const i of [2, 1, 0]) expect(content(await gql(base(i), DETAIL(id)))).toBe(note);
    // Served from the shared cache: B's post-save answer was kept, the older one was not.
    expect(detailCalls(id).length).toBe(detailsNow);
  }, 40_000);

  it('a list read on B after a save on A makes its own ERP call (the save dropped every page), and only its answer is kept', async () => {
    const id = '1011';
    const page = '{ afterSaleServices(page: 1, pageSize: 7) { items { id } } }';
    const lists = () => fleet.sim.calls.of('list').filter((c) => Object.values(c.datas).includes('7'));
    const held = fleet.sim.faults.hold({ endpoint: 'list' });
    const oldRead = gql(base(1), page);
    await poll(() => held.held === 1, 'B\'s list read reached the ERP', 10_000);
    const heldCalls = lists().length;

    const saved = await gql(base(0), HANDLE, { input: { id, assigneeId: '2', note: 'list fenced fleet-wide', salespersonId: '5', result: '已解决' } });
    expect(handled(saved.body)?.outcome).toBe('SAVED');
    const processSeq = fleet.sim.calls.of('process').filter((c) => c.stored && c.datas.ord === id).at(-1)!.seq;

    // Answered while the older read is still held: its own call, sent after the save.
    const after = await gql(base(1), page, undefined, AFTER_SAVE_BOUND_MS);
    expect(after.status).toBe(200);
    expect(after.body?.errors).toBeUndefined();
    expect(lists()).toHaveLength(heldCalls + 1);
    expect(lists().at(-1)!.seq).toBeGreaterThan(processSeq);
    expect(held.held).toBe(1);

    held.release();
    expect((await oldRead).status).toBe(200);
    for (const i of [2, 0, 1]) expect((await gql(base(i), page)).body?.errors).toBeUndefined();
    // Every replica is served B's post-save page from the shared cache.
    expect(lists()).toHaveLength(heldCalls + 1);
  }, 40_000);
});

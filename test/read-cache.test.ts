import { startStack, type TestStack } from './helpers';

/** The optional read cache (ZB_CACHE_TTL_MS): hits by identity, invalidated by handleService. */
let t: TestStack;
beforeAll(async () => {
  t = await startStack({ env: { ZB_CACHE_TTL_MS: '600000', ZB_CACHE_STALE_MS: '0' } });
});
afterAll(() => t.close());
beforeEach(() => t.sim.calls.clear());

const DETAIL = '{ afterSaleService(id: "1020") { title handlingContent } }';

it('serves repeated reads from the cache, per identity', async () => {
  await t.gql(DETAIL);
  await t.gql(DETAIL);
  await t.gql('{ afterSaleServices(pageSize: 5) { items { id } } }');
  await t.gql('{ afterSaleServices(pageSize: 5) { items { id } } }');
  expect(t.sim.calls.count('detail')).toBe(1);
  expect(t.sim.calls.count('list')).toBe(1);
  const token = t.sim.sessions.tokens()[0]!;
  await t.gql(DETAIL, {}, { 'x-zb-session': token });
  // Another identity never shares an entry, even with the same ERP answer.
  expect(t.sim.calls.count('detail')).toBe(2);
});

it('handleService invalidates the service detail and the lists', async () => {
  await t.gql(DETAIL);
  await t.gql('{ afterSaleServices(pageSize: 5) { items { id } } }');
  t.sim.calls.clear();
  const r = await t.gql<{ handleService: { outcome: string; service: { handlingContent: string } } }>(
    'mutation { handleService(input: { id: "1020", assigneeId: "2", note: "cache note", salespersonId: "5", result: "已解决" }) { outcome service { handlingContent } } }',
  );
  expect(r.data!.handleService).toEqual({ outcome: 'SAVED', service: { handlingContent: 'cache note' } });
  await t.gql('{ afterSaleServices(pageSize: 5) { items { id } } }');
  const after = await t.gql<{ afterSaleService: { handlingContent: string } }>(DETAIL);
  expect(after.data!.afterSaleService.handlingContent).toBe('cache note');
  // process, the confirming re-read (a miss), then the list again (a miss); the detail after it is a hit.
  expect(t.sim.calls.all().map((c) => c.endpoint)).toEqual(['process', 'detail', 'list']);
});

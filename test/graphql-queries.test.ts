import { startStack, type TestStack } from './helpers';

/** The subgraph over HTTP against the simulator: filters, paging, sort, detail, not-found, DataLoader counts. */
let t: TestStack;
beforeAll(async () => {
  t = await startStack({ sim: { faults: { latencyMs: 0 } } });
});
afterAll(() => t.close());
beforeEach(() => {
  t.sim.calls.clear();
  t.sim.faults.reset();
});

type Page = { afterSaleServices: { items: Array<Record<string, unknown>>; pageInfo: Record<string, unknown> } };
const LIST = `query L($filter: AfterSaleServiceFilter, $page: Int, $pageSize: Int, $sort: AfterSaleServiceSort) {
  afterSaleServices(filter: $filter, page: $page, pageSize: $pageSize, sort: $sort) {
    pageInfo { page pageSize totalCount totalPages hasNextPage }
    items { id code title customerName acceptedAt category { id name } }
  }
}`;

describe('filter -> list.asp datas', () => {
  it('sends every filter field as its ERP parameter, exactly', async () => {
    const filter = {
      remind: 'PENDING', pendingOnly: true, relatedTo: { kind: 'PROJECT', id: '9004' },
      assigneeDepartmentIds: ['1', '3'], assigneeIds: ['2'], urgencyIds: ['1', '2', '2'], resultIds: ['1'], categoryIds: ['3'],
      title: '卡纸', code: 'SH2024', content: '保修', handlingContent: '上门', remark: '备件',
      customerCategoryIds: ['2'], customerValueIds: ['1'], areaIds: ['4'], customerName: '科技', productName: "O'Brien \"x\" <b>", search: "'; DROP TABLE tousu;--",
    };
    const r = await t.gql(LIST, { filter, page: 2, pageSize: 7, sort: { field: 'ACCEPTED_AT', direction: 'DESC' } });
    expect(r.errors).toBeUndefined();
    const [call] = t.sim.calls.of('list');
    expect(call!.cmdkey).toBe('refresh');
    expect(call!.datas).toEqual({
      remind: '22', stype: '1', datatype: 'chance', ord: '9004', catetype: '1,3', cateid: '2', great1: '1,2', result1: '1', sort1: '3',
      title: '卡纸', shid: 'SH2024', introts: '保修', introN: '上门', introb: '备件', telsort: '2', teljz: '1', area: '4',
      TelName: '科技', ProName: "O'Brien \"x\" <b>", searchKey: "'; DROP TABLE tousu;--", _rpt_sort: '-date1', pagesize: '7', pageindex: '2',
    });
  });

  it.each([
    [{ relatedTo: { kind: 'CUSTOMER', id: '505' } }, { datatype: 'tel', ord: '505' }],
    [{ relatedTo: { kind: 'CONTRACT', id: '7001' } }, { datatype: 'contract', ord: '7001' }],
    [{ relatedTo: { kind: 'PRODUCT', id: '301' } }, { datatype: 'product', ord: '301' }],
    [{ remind: 'LATEST' }, { remind: '137' }],
    [{ remind: 'SHARED' }, { remind: '202' }],
    [{ pendingOnly: false }, { stype: '0' }],
  ])('%p -> %p', async (filter, datas) => {
    await t.gql(LIST, { filter });
    expect(t.sim.calls.of('list')[0]!.datas).toEqual({ ...datas, pagesize: '20', pageindex: '1' });
  });

  it('filters real data: results match the ERP filter semantics', async () => {
    const r = await t.gql<Page>(LIST, { filter: { relatedTo: { kind: 'CUSTOMER', id: '505' } }, pageSize: 100 });
    const want = t.sim.world.liveServices().filter((s) => s.company === 505).length;
    expect(r.data!.afterSaleServices.pageInfo.totalCount).toBe(want);
  });

  it('refuses non-numeric ids and out-of-range paging before any ERP call', async () => {
    for (const vars of [{ filter: { urgencyIds: ['1 or 1=1'] } }, { pageSize: 101 }, { pageSize: 0 }, { page: 0 }, { filter: { relatedTo: { kind: 'CUSTOMER', id: 'x' } } }]) {
      const r = await t.gql(LIST, vars);
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect(t.sim.calls.count()).toBe(0);
  });
});

describe('paging and sort', () => {
  it('maps page info and the empty-result quirk', async () => {
    const total = t.sim.world.liveServices().length;
    const r = await t.gql<Page>(LIST, { page: 2, pageSize: 50 });
    expect(r.data!.afterSaleServices.pageInfo).toEqual({ page: 2, pageSize: 50, totalCount: total, totalPages: Math.ceil(total / 50), hasNextPage: true });
    expect(r.data!.afterSaleServices.items).toHaveLength(50);
    const empty = await t.gql<Page>(LIST, { filter: { title: 'zzz-nothing' } });
    expect(empty.data!.afterSaleServices).toEqual({ items: [], pageInfo: { page: 1, pageSize: 20, totalCount: 0, totalPages: 0, hasNextPage: false } });
  });

  it('sorts through _rpt_sort and serves ISO dates with the zone offset', async () => {
    const r = await t.gql<Page>(LIST, { sort: { field: 'ID', direction: 'ASC' }, pageSize: 5 });
    const ids = r.data!.afterSaleServices.items.map((i) => Number(i.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(t.sim.calls.of('list')[0]!.datas._rpt_sort).toBe('ord');
    for (const item of r.data!.afterSaleServices.items) expect(item.acceptedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
  });
});

describe('detail', () => {
  it('reads one service with detail fields, labels with ids, relations and raw ERP fields', async () => {
    const s = t.sim.world.service(1001)!;
    const r = await t.gql<{ afterSaleService: Record<string, unknown> }>(`{ afterSaleService(id: "1001") {
      id code title content handlingContent remark contactPerson phone mobile fee acceptedAt
      urgency { __typename id name } category { __typename id name } customer { id } contract { id } product { id } project { id }
      erpFields { key caption group type text value } } }`);
    expect(r.errors).toBeUndefined();
    const got = r.data!.afterSaleService;
    expect(got).toEqual(expect.objectContaining({
      id: '1001', code: s.shid, title: s.title, content: s.introts, contactPerson: s.person, phone: s.phone,
      urgency: { __typename: 'AfterSaleUrgency', id: String(s.great1), name: expect.any(String) },
      category: { __typename: 'AfterSaleCategory', id: String(s.sort1), name: expect.any(String) }, customer: { id: String(s.company) },
      product: s.product ? { id: String(s.product) } : null, fee: s.money1,
    }));
    expect((got.erpFields as unknown[]).length).toBeGreaterThan(15);
    expect((got.erpFields as unknown[])[0]).toEqual(expect.objectContaining({ key: expect.any(String) }));
    expect(t.sim.calls.all().map((c) => c.endpoint)).toEqual(['detail']);
  });

  it('is null for a missing or deleted service', async () => {
    const deleted = t.sim.world.data.services.find((s) => s.del)!;
    const r = await t.gql(`{ a: afterSaleService(id: "999999") { id } b: afterSaleService(id: "${deleted.ord}") { id } }`);
    expect(r.errors).toBeUndefined();
    expect(r.data).toEqual({ a: null, b: null });
  });
});

describe('DataLoader', () => {
  it('20 list items with a detail field = 1 list + 20 detail calls', async () => {
    const r = await t.gql<Page>('{ afterSaleServices(pageSize: 20) { items { id title content } } }');
    expect(r.data!.afterSaleServices.items.every((i) => typeof i.content === 'string')).toBe(true);
    expect(t.sim.calls.count('list')).toBe(1);
    expect(t.sim.calls.count('detail')).toBe(20);
    expect(new Set(t.sim.calls.of('detail').map((c) => c.datas.ord)).size).toBe(20);
  });

  it('list-column fields only = 0 detail calls', async () => {
    await t.gql('{ afterSaleServices(pageSize: 20) { items { id code title category { name } urgency { name } result { name } customer { id } customerName productName assignee acceptedAt createdBy fee } } }');
    expect(t.sim.calls.count('list')).toBe(1);
    expect(t.sim.calls.count('detail')).toBe(0);
  });

  it('a detail field through a fragment, or kept by @include, reads the details; one under @skip reads none', async () => {
    const query = `query($skip: Boolean!) { afterSaleServices(pageSize: 5) { items { id ...Detail title remark @skip(if: $skip) } } }
      fragment Detail on AfterSaleService { ... @include(if: false) { handlingContent } }`;
    const skipped = await t.gql<Page>(query, { skip: true });
    expect(skipped.errors).toBeUndefined();
    expect(t.sim.calls.count('detail')).toBe(0);
    t.sim.calls.clear();
    const kept = await t.gql<{ afterSaleServices: { items: Array<{ id: string; remark: string | null }> } }>(query, { skip: false });
    expect(kept.errors).toBeUndefined();
    expect(kept.data!.afterSaleServices.items.map((i) => 'remark' in i)).toEqual([true, true, true, true, true]);
    expect(t.sim.calls.count('list')).toBe(1);
    expect(t.sim.calls.count('detail')).toBe(5);
    t.sim.calls.clear();
    await t.gql('{ afterSaleServices(pageSize: 5) { items { ... on AfterSaleService { content } } } }');
    expect(t.sim.calls.count('detail')).toBe(5);
  });

  it('the details read with their page: one failing fails that item\'s detail field only, the rest is served', async () => {
    const s = await startStack({ env: { ZB_RETRIES: '0' } });
    try {
      // The ERP's script error on the first detail call, whichever service it reads.
      s.sim.faults.inject({ kind: 'status11', endpoint: 'detail' });
      const r = await s.gql<{ afterSaleServices: { items: Array<{ id: string; title: string; content: string | null }> } }>(
        '{ afterSaleServices(pageSize: 5) { items { id title content } } }',
      );
      expect(s.sim.calls.count('detail')).toBe(5);
      const failed = s.sim.calls.of('detail')[0]!.datas.ord;
      const items = r.data!.afterSaleServices.items;
      expect(items.map((i) => typeof i.title)).toEqual(['string', 'string', 'string', 'string', 'string']);
      expect(items.filter((i) => i.content === null).map((i) => i.id)).toEqual([failed]);
      expect(r.errors!.map((e) => [e.path!.join('.'), e.extensions!.code])).toEqual([[`afterSaleServices.items.${items.findIndex((i) => i.id === failed)}.content`, 'UPSTREAM_ERROR']]);
    } finally {
      await s.close();
    }
  });

  it('the same id through three aliases = 1 detail call', async () => {
    await t.gql('{ a: afterSaleService(id: "1005") { title } b: afterSaleService(id: "1005") { content } c: afterSaleService(id: " 1005") { remark } }');
    expect(t.sim.calls.count('detail')).toBe(1);
  });

  it('never runs more detail calls at once than ZB_DETAIL_CONCURRENCY', async () => {
    const s = await startStack({ sim: { faults: { latencyMs: 15 } }, env: { ZB_DETAIL_CONCURRENCY: '3' } });
    try {
      await s.gql('{ afterSaleServices(pageSize: 20) { items { content } } }');
      expect(s.sim.calls.count('detail')).toBe(20);
      expect(s.sim.calls.peak('detail')).toBe(3);
    } finally {
      await s.close();
    }
  });

  it('keeps per-item failures per item: partial data survives', async () => {
    // No retries here, so the one injected fault decides one item's fate.
    const s = await startStack({ env: { ZB_RETRIES: '0' } });
    try {
      s.sim.faults.inject({ kind: 'html', endpoint: 'detail', times: 1 });
      const r = await s.gql<Page>('{ afterSaleServices(pageSize: 3, sort: {field: ID}) { items { id content } } }');
      const items = r.data!.afterSaleServices.items;
      expect(items).toHaveLength(3);
      expect(items.filter((i) => i.content === null)).toHaveLength(1);
      expect(items.filter((i) => typeof i.content === 'string')).toHaveLength(2);
      expect(r.errors).toHaveLength(1);
      expect(r.errors![0]!.extensions!.code).toBe('UPSTREAM_BAD_RESPONSE');
      expect(r.errors![0]!.path).toEqual(['afterSaleServices', 'items', expect.any(Number), 'content']);
    } finally {
      await s.close();
    }
  });
});

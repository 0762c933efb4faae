import { parse, type OperationDefinitionNode } from 'graphql';
import { DEFAULT_FIELD_MAP, type FieldMap } from '../src/domain/field-map';
import { OptionLookupService, readPicker, type OptionLookups } from '../src/domain/options';
import type { CallContext, ErpClient } from '../src/erp/client';
import { ErpBusyError, ErpScriptError } from '../src/erp/errors';
import type { ErpBill, ErpData, ErpDetail, ErpField, ErpTable } from '../src/erp/types';
import { estimateOperation } from '../src/graphql/cost';
import { postJson, startStack, type TestStack } from './helpers';

/** Query.afterSaleServiceOptions: option lists learned from the ERP's forms, kept per identity, single-flight. */

const OPTIONS = `{ afterSaleServiceOptions {
  categories { id name } urgencies { id name } handlingStates { id name } acceptanceChannels { id name }
  people { id name } departments { id name } partialLists sampledServices learnedAt
} }`;

interface Opt {
  id: string | null;
  name: string | null;
}
interface OptionsData {
  afterSaleServiceOptions: {
    categories: Opt[];
    urgencies: Opt[];
    handlingStates: Opt[];
    acceptanceChannels: Opt[];
    people: Opt[];
    departments: Opt[];
    partialLists: string[];
    sampledServices: number;
    learnedAt: string;
  };
}

const asOptions = (list: Array<{ id: number; name: string }>) => list.map((o) => ({ id: String(o.id), name: o.name }));
const erpCalls = (t: TestStack, session?: string) =>
  t.sim.calls.all().filter((c) => (c.endpoint === 'list' || c.endpoint === 'detail') && (session === undefined || c.session === session));

describe('over HTTP, against the simulator', () => {
  let t: TestStack;
  /** A fresh user session: a new token is a new ERP identity. */
  async function userToken(user = 'zhangwei', password = 'zhangwei-pass'): Promise<string> {
    // The same serial number for every login of a user: a login from another "device" would end the older tokens.
    const r = await postJson(`${t.sim.url}/webapi/v3/ov1/login`, {
      datas: [{ id: 'user', val: `txt:${user}` }, { id: 'password', val: `txt:${password}` }, { id: 'serialnum', val: `txt:opt-${user}` }],
    });
    return (r.json as { header: { session: string } }).header.session;
  }

  beforeAll(async () => {
    t = await startStack();
  });
  afterAll(() => t.close());
  beforeEach(() => {
    t.sim.calls.clear();
    t.sim.faults.reset();
  });

  it('first call: the ERP calls made stay within the estimate (1 list + 10 details); a second call makes none', async () => {
    const doc = parse(OPTIONS);
    const estimate = estimateOperation(doc, doc.definitions[0] as OperationDefinitionNode, {}, {
      onListRow: (f) => f in DEFAULT_FIELD_MAP.list,
      defaultPageSize: 20,
    });
    expect(estimate.erpCalls).toBe(11);
    const first = await t.gql<OptionsData>(OPTIONS);
    expect(first.errors).toBeUndefined();
    const calls = erpCalls(t);
    expect(calls.length).toBeLessThanOrEqual(estimate.erpCalls);
    expect(calls.filter((c) => c.endpoint === 'list')).toHaveLength(1);
    // The newest page: sorted by record id, descending, one page of 10.
    expect(calls[0]!.datas).toEqual(expect.objectContaining({ _rpt_sort: '-ord', pagesize: '10', pageindex: '1' }));
    expect(calls.filter((c) => c.endpoint === 'detail')).toHaveLength(first.data!.afterSaleServiceOptions.sampledServices);
    expect(first.data!.afterSaleServiceOptions.sampledServices).toBe(10);

    t.sim.calls.clear();
    const second = await t.gql<OptionsData>(OPTIONS);
    expect(t.sim.calls.count()).toBe(0);
    expect(second.data).toEqual(first.data);
  });

  it('option lists equal the ERP form option sets, with ids and names', async () => {
    const r = await t.gql<OptionsData>(OPTIONS);
    const o = r.data!.afterSaleServiceOptions;
    const data = t.sim.world.data;
    expect(o.categories).toEqual(asOptions(data.categories));
    expect(o.urgencies).toEqual(asOptions(data.urgencies));
    expect(o.handlingStates).toEqual(asOptions(data.results));
    expect(o.acceptanceChannels).toEqual(asOptions(data.ways));
    // Select lists are the forms' own full lists; people and departments only what the sample showed.
    expect(o.partialLists).toEqual(['PEOPLE', 'DEPARTMENTS']);
    expect(Number.isNaN(Date.parse(o.learnedAt))).toBe(false);
  });

  it('people are those on the 10 newest services, ids zipped with the simulator\'s names; departments likewise', async () => {
    const o = (await t.gql<OptionsData>(OPTIONS)).data!.afterSaleServiceOptions;
    const w = t.sim.world;
    const newest = w.liveServices().sort((a, b) => b.ord - a.ord).slice(0, 10);
    const personIds = [...new Set(newest.flatMap((s) => [...s.cateid, s.cate]))].sort((a, b) => a - b);
    expect(o.people).toEqual(personIds.map((id) => ({ id: String(id), name: w.person(id)!.name })));
    const deptIds = [...new Set(personIds.map((id) => w.person(id)!.dept))].sort((a, b) => a - b);
    expect(o.departments).toEqual(deptIds.map((id) => ({ id: String(id), name: null })));
    expect(o.people.length).toBeGreaterThan(0);
  });

  it('every id returned is accepted by its filter', async () => {
    const o = (await t.gql<OptionsData>(OPTIONS)).data!.afterSaleServiceOptions;
    type Page = { afterSaleServices: { pageInfo: { totalCount: number }; items: Array<{ urgency: Opt; category: Opt; result: Opt; assignee: string }> } };
    const q = `query Q($f: AfterSaleServiceFilter) { afterSaleServices(filter: $f, pageSize: 100) {
      pageInfo { totalCount } items { urgency { name } category { name } result { name } assignee } } }`;
    const run = async (filter: Record<string, unknown>) => {
      const r = await t.gql<Page>(q, { f: filter });
      expect(r.errors).toBeUndefined();
      return r.data!.afterSaleServices;
    };
    const byUrgency = await run({ urgencyIds: [o.urgencies[0]!.id] });
    expect(byUrgency.pageInfo.totalCount).toBeGreaterThan(0);
    expect(byUrgency.items.every((s) => s.urgency.name === o.urgencies[0]!.name)).toBe(true);
    for (const c of o.categories) expect((await run({ categoryIds: [c.id] })).items.every((s) => s.category.name === c.name)).toBe(true);
    for (const h of o.handlingStates) expect((await run({ resultIds: [h.id] })).items.every((s) => s.result.name === h.name)).toBe(true);
    // People come from the pickers of real services: the assignees among them are found by `assigneeIds`.
    const person = o.people.find((p) => t.sim.world.liveServices().some((s) => s.cateid.includes(Number(p.id))))!;
    const byPerson = await run({ assigneeIds: [person.id] });
    expect(byPerson.pageInfo.totalCount).toBeGreaterThan(0);
    expect(byPerson.items.every((s) => s.assignee.split(' ').includes(person.name!))).toBe(true);
    expect((await run({ assigneeDepartmentIds: o.departments.map((d) => d.id) })).pageInfo.totalCount).toBeGreaterThan(0);
  });

  it('handleService takes the people ids as assigneeId and salespersonId', async () => {
    const o = (await t.gql<OptionsData>(OPTIONS)).data!.afterSaleServiceOptions;
    const [a, b] = [o.people[0]!, o.people[o.people.length - 1]!];
    const r = await t.gql<{ handleService: { outcome: string; service: { assignee: string; salesperson: string } } }>(
      `mutation H($i: HandleServiceInput!) { handleService(input: $i) { outcome service { assignee salesperson } } }`,
      { i: { id: '1010', assigneeId: a.id, salespersonId: b.id, note: 'options test', result: '已解决' } },
    );
    expect(r.data!.handleService).toEqual({ outcome: 'SAVED', service: { assignee: a.name, salesperson: b.name } });
  });

  it('is kept per identity: another session learns its own, then is kept too', async () => {
    await t.gql(OPTIONS); // the service account's answer is kept
    const zhang = await userToken();
    t.sim.calls.clear();
    const mine = await t.gql<OptionsData>(OPTIONS, {}, { 'x-zb-session': zhang });
    expect(mine.errors).toBeUndefined();
    expect(erpCalls(t).every((c) => c.session === zhang)).toBe(true);
    expect(erpCalls(t, zhang).filter((c) => c.endpoint === 'list')).toHaveLength(1);
    // The user sees only their own services (ERP permissions), so learns from them.
    const w = t.sim.world;
    const visible = w.liveServices().filter((s) => s.cateid.includes(2) || s.addcate === 2 || s.sharedWith.includes(2) || s.cate === 2);
    expect(mine.data!.afterSaleServiceOptions.sampledServices).toBe(Math.min(10, visible.length));
    t.sim.calls.clear();
    await t.gql(OPTIONS, {}, { 'x-zb-session': zhang });
    await t.gql(OPTIONS);
    expect(t.sim.calls.count()).toBe(0);
  });

  it('concurrent first calls of one identity share one learning pass', async () => {
    const token = await userToken('lina', 'lina-pass');
    t.sim.calls.clear();
    const runs = await Promise.all(Array.from({ length: 6 }, () => t.gql<OptionsData>(OPTIONS, {}, { 'x-zb-session': token })));
    expect(runs.every((r) => r.errors === undefined)).toBe(true);
    expect(new Set(runs.map((r) => JSON.stringify(r.data))).size).toBe(1);
    expect(t.sim.calls.count('list')).toBe(1);
    expect(t.sim.calls.count('detail')).toBe(runs[0]!.data!.afterSaleServiceOptions.sampledServices);
  });

  it('counts against the per-operation ERP call limit before any call', async () => {
    const token = await userToken();
    t.sim.calls.clear();
    // 5 aliases x 11 calls = 55 > ZB_MAX_ERP_CALLS_PER_OPERATION (50), though one pass would serve them all.
    const q = `{ ${Array.from({ length: 5 }, (_, i) => `a${i}: afterSaleServiceOptions { sampledServices }`).join(' ')} }`;
    const r = await t.gql(q, {}, { 'x-zb-session': token });
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.extensions?.code).toBe('COST_ESTIMATED_TOO_EXPENSIVE');
    expect(t.sim.calls.count()).toBe(0);
  });

  it('a blank session header is refused before any ERP call', async () => {
    const r = await t.gql(OPTIONS, {}, { 'x-zb-session': ' ' });
    expect(r.status).toBe(401);
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.sim.calls.count()).toBe(0);
  });

  it('an ERP failure is a typed error and is not kept: the next call learns again', async () => {
    const token = await userToken();
    t.sim.calls.clear();
    t.sim.faults.inject({ kind: 'status11', endpoint: 'list', times: 5 });
    const failed = await t.gql(OPTIONS, {}, { 'x-zb-session': token });
    expect(failed.errors?.[0]?.extensions?.code).toBe('UPSTREAM_ERROR');
    t.sim.faults.reset();
    t.sim.calls.clear();
    const ok = await t.gql<OptionsData>(OPTIONS, {}, { 'x-zb-session': token });
    expect(ok.errors).toBeUndefined();
    expect(t.sim.calls.count('list')).toBe(1);
  });
});

// ---- The domain service alone, over a fake ERP client ----

const FIELD = (id: string, over: Partial<ErpField> = {}): ErpField => ({ id, caption: id, dbtype: 'string', type: 'text', text: '', value: '', ...over });
const select = (id: string, chosen: string, options: Array<[string, string]> | undefined): ErpField =>
  FIELD(id, { type: 'select', text: options?.find(([v]) => v === chosen)?.[1] ?? `opt${chosen}`, value: chosen, ...(options ? { options: options.map(([value, name]) => ({ name, value })) } : {}) });

function bill(ord: number, over: { withOptions?: boolean; names?: string; value?: string; map?: FieldMap } = {}): ErpBill {
  const d = (over.map ?? DEFAULT_FIELD_MAP).detail;
  const opts = over.withOptions === false ? undefined : ([['1', '维修'], ['2', '安装']] as Array<[string, string]>);
  return {
    id: 'service_bill', caption: '售后详情', value: String(ord),
    groups: [{
      id: 'base', caption: '', fields: [
        select(d.category!, '2', opts),
        select(d.urgency!, '1', opts && [['1', '一般'], ['3', '非常紧急']]),
        select(d.result!, '1', opts && [['1', '未处理']]),
        select(d.acceptedVia!, '4', opts && [['1', '电话']]),
        FIELD(d.assignee!, { type: 'source', text: over.names ?? `人${ord} 人${ord + 1}`, value: over.value ?? `7|8|${ord},${ord + 1}` }),
        FIELD(d.salesperson!, { type: 'source', text: '销售', value: '9||5' }),
      ],
    }],
  };
}

interface Fake {
  client: Pick<ErpClient, 'list' | 'detail'>;
  lists: Array<{ ctx: CallContext; datas: ErpData[] }>;
  details: Array<{ ctx: CallContext; ord: string }>;
}

/** A fake ERP: `rows` newest services; `gate`, when given, holds every list reply until it resolves. */
function fakeErp(options: { rows?: number; gate?: Promise<void>; bills?: (ord: number) => ErpBill; failList?: boolean } = {}): Fake {
  const fake: Fake = {
    lists: [],
    details: [],
    client: {
      list: async (ctx, datas): Promise<ErpTable> => {
        fake.lists.push({ ctx, datas });
        await options.gate;
        if (options.failList) throw new ErpScriptError('boom');
        const rows = Array.from({ length: options.rows ?? 3 }, (_, i) => ({ ord: String(100 - i) }));
        return { page: { recordCount: rows.length, pageSize: 10, pageCount: 1, pageIndex: 1 }, columns: [{ id: 'ord', dbtype: 'int' }], rows };
      },
      detail: async (ctx, ord): Promise<ErpDetail> => {
        fake.details.push({ ctx, ord });
        return { kind: 'bill', bill: (options.bills ?? bill)(Number(ord)) };
      },
    },
  };
  return fake;
}

const ctxOf = (identity: string, signal?: AbortSignal): CallContext => ({
  auth: { identity, token: () => Promise.resolve('t') },
  ...(signal ? { signal } : {}),
});

function gate(): { promise: Promise<void>; open(): void } {
  let open = () => undefined as void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('OptionLookupService', () => {
  it('learns selects (full lists) and pickers (ids zipped with names) from the field map\'s detail ids', async () => {
    const fake = fakeErp({ rows: 2 });
    const o = await new OptionLookupService(fake.client, DEFAULT_FIELD_MAP).lookups(ctxOf('a'));
    expect(o.categories).toEqual([{ id: '1', name: '维修' }, { id: '2', name: '安装' }]);
    expect(o.urgencies).toEqual([{ id: '1', name: '一般' }, { id: '3', name: '非常紧急' }]);
    // A chosen value the form's list lacks (a retired option) is still a value the filter takes.
    expect(o.acceptanceChannels).toEqual([{ id: '1', name: '电话' }, { id: '4', name: 'opt4' }]);
    expect(o.people).toEqual([{ id: '5', name: '销售' }, { id: '99', name: '人99' }, { id: '100', name: '人100' }, { id: '101', name: '人101' }]);
    expect(o.departments).toEqual([{ id: '7', name: null }, { id: '8', name: null }, { id: '9', name: null }]);
    expect(o.partialLists).toEqual(['people', 'departments']);
    expect(o.sampledServices).toBe(2);
    expect(fake.details.map((d) => d.ord)).toEqual(['100', '99']);
  });

  it('follows a field map override, and falls back to chosen values (partial) when no form sent its options', async () => {
    const map: FieldMap = { list: { ...DEFAULT_FIELD_MAP.list, id: 'rid' }, detail: { ...DEFAULT_FIELD_MAP.detail, category: 'fenlei' } };
    const fake = fakeErp({ rows: 1, bills: (ord) => bill(ord, { withOptions: false, map }) });
    const client: Fake['client'] = {
      list: async (ctx, datas) => {
        const t = await fake.client.list(ctx, datas);
        return { ...t, rows: t.rows.map((r) => ({ rid: r.ord! })) };
      },
      detail: fake.client.detail,
    };
    const o = await new OptionLookupService(client, map).lookups(ctxOf('a'));
    expect(fake.lists[0]!.datas).toEqual(expect.arrayContaining([{ id: '_rpt_sort', val: '-rid' }]));
    expect(o.categories).toEqual([{ id: '2', name: 'opt2' }]);
    expect(o.partialLists).toEqual(['categories', 'urgencies', 'handlingStates', 'acceptanceChannels', 'people', 'departments']);
  });

  it('reads person pickers only where ids and names pair up', () => {
    expect(readPicker({ value: '1|2|3', text: 'Mary Ann' })).toEqual({ people: [{ id: '3', name: 'Mary Ann' }], departmentIds: ['1', '2'] });
    expect(readPicker({ value: '||3,4', text: 'Mary Ann Lee' }).people).toEqual([]);
    expect(readPicker({ value: '||3,4', text: '张伟  李娜' }).people).toEqual([{ id: '3', name: '张伟' }, { id: '4', name: '李娜' }]);
    expect(readPicker({ value: '3,4', text: '张伟 李娜' })).toEqual({ people: [], departmentIds: [] });
    expect(readPicker({ value: '1;drop|x|', text: '' })).toEqual({ people: [], departmentIds: [] });
  });

  it('concurrent callers share one pass, which the first caller leaving does not cut short', async () => {
    const g = gate();
    const fake = fakeErp({ gate: g.promise });
    const service = new OptionLookupService(fake.client, DEFAULT_FIELD_MAP);
    const first = new AbortController();
    const a = service.lookups(ctxOf('u', first.signal));
    const rest = Array.from({ length: 4 }, () => service.lookups(ctxOf('u', new AbortController().signal)));
    first.abort();
    g.open();
    const answers = await Promise.all([a, ...rest]);
    expect(fake.lists).toHaveLength(1);
    expect(fake.details).toHaveLength(3);
    // Detached: no call of the shared pass carries a caller's abort signal.
    expect([...fake.lists, ...fake.details].every((c) => c.ctx.signal === undefined)).toBe(true);
    expect(new Set(answers.map((x) => JSON.stringify(x))).size).toBe(1);
    await service.lookups(ctxOf('u'));
    expect(fake.lists).toHaveLength(1);
  });

  it('keeps an answer for the TTL only', async () => {
    let now = 1_000_000;
    const fake = fakeErp();
    const service = new OptionLookupService(fake.client, DEFAULT_FIELD_MAP, { now: () => now });
    const first = await service.lookups(ctxOf('u'));
    expect(first.learnedAt).toBe(new Date(1_000_000).toISOString());
    now += 10 * 60 * 1000 - 1;
    await service.lookups(ctxOf('u'));
    expect(fake.lists).toHaveLength(1);
    now += 2;
    await service.lookups(ctxOf('u'));
    expect(fake.lists).toHaveLength(2);
  });

  it('does not keep a failed pass (all joiners get the error) or an empty sample', async () => {
    const failing = fakeErp({ failList: true });
    const service = new OptionLookupService(failing.client, DEFAULT_FIELD_MAP);
    await expect(Promise.all([service.lookups(ctxOf('u')), service.lookups(ctxOf('u'))])).rejects.toBeInstanceOf(ErpScriptError);
    expect(failing.lists).toHaveLength(1);
    await expect(service.lookups(ctxOf('u'))).rejects.toBeInstanceOf(ErpScriptError);
    expect(failing.lists).toHaveLength(2);

    const empty = fakeErp({ rows: 0 });
    const s2 = new OptionLookupService(empty.client, DEFAULT_FIELD_MAP);
    const o: OptionLookups = await s2.lookups(ctxOf('u'));
    expect(o.sampledServices).toBe(0);
    expect(o.partialLists).toHaveLength(6);
    await s2.lookups(ctxOf('u'));
    expect(empty.lists).toHaveLength(2);
    expect(empty.details).toHaveLength(0);
  });

  it('stays bounded in identities and in bytes whatever the number of identities', async () => {
    const fake = fakeErp();
    const service = new OptionLookupService(fake.client, DEFAULT_FIELD_MAP, { maxIdentities: 50, maxBytes: 64 * 1024 });
    for (let i = 0; i < 400; i++) await service.lookups(ctxOf(`user:${i}`));
    expect(service.keptCount).toBe(50);
    expect(service.keptBytes).toBeLessThanOrEqual(64 * 1024);
    // The most recent identities are the ones kept.
    await service.lookups(ctxOf('user:399'));
    expect(fake.lists).toHaveLength(400);

    // Big answers (long names from a hostile or odd ERP) hit the byte bound before the count.
    const big = fakeErp({ bills: (ord) => bill(ord, { names: 'x'.repeat(20_000), value: `||${ord}` }) });
    const bounded = new OptionLookupService(big.client, DEFAULT_FIELD_MAP, { maxIdentities: 256, maxBytes: 200 * 1024 });
    for (let i = 0; i < 100; i++) await bounded.lookups(ctxOf(`user:${i}`));
    expect(bounded.keptBytes).toBeLessThanOrEqual(200 * 1024);
    expect(bounded.keptCount).toBeLessThan(20);
  });

  it('bounds the passes in flight at once', async () => {
    const g = gate();
    const fake = fakeErp({ gate: g.promise });
    const service = new OptionLookupService(fake.client, DEFAULT_FIELD_MAP, { maxIdentities: 2 });
    const running = [service.lookups(ctxOf('a')), service.lookups(ctxOf('b'))];
    await expect(service.lookups(ctxOf('c'))).rejects.toBeInstanceOf(ErpBusyError);
    g.open();
    await Promise.all(running);
    await expect(service.lookups(ctxOf('c'))).resolves.toEqual(expect.objectContaining({ sampledServices: 3 }));
  });
});

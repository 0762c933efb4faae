import type { CallContext } from '../src/erp/client';
import { parseListInput, type ServiceListQuery, type ValidListQuery } from '../src/domain/filter';
import { parseHandleInput } from '../src/domain/handle';
import { InputError, type ServiceId } from '../src/domain/input';
import { MappedService, type AfterSaleService, type ServicePage } from '../src/domain/model';
import { requestScope, type SharedServices } from '../src/domain/request-scope';

/** The request scope: input parsed once at the boundary, one CallContext per request, one detail read per id. */

const call: CallContext = { auth: { identity: 'u', token: () => Promise.resolve('t') }, requestId: 'r' };
const rules = { maxPageSize: 100, sortable: (field: string) => field !== 'fee' };
const page = (input: Partial<ServiceListQuery>): ServiceListQuery => ({ page: 1, pageSize: 20, ...input });

/**
 * A repository over fixed data: list pages hold `rows` (list rows carry `title` only), details carry `content`; the
 * detail of an id in `failing` fails, of one in `gone` is not there.
 */
function fakeShared(data: { rows?: string[]; failing?: string[]; gone?: string[] } = {}) {
  const gets: Array<{ ctx: CallContext; id: ServiceId }> = [];
  const lists: Array<{ ctx: CallContext; query: ValidListQuery }> = [];
  const shared: SharedServices = {
    repository: {
      canSortBy: (field) => rules.sortable(field),
      onListRow: (field) => field === 'title',
      get: async (ctx, id) => {
        gets.push({ ctx, id });
        if (data.failing?.includes(id)) throw new Error(`detail ${id} failed`);
        if (data.gone?.includes(id)) return null;
        return new MappedService(id, 'detail', data.rows ? { title: `detail title ${id}`, content: `content ${id}` } : {}, data.rows ? undefined : []) satisfies AfterSaleService;
      },
      list: async (ctx, query) => {
        lists.push({ ctx, query });
        const items = (data.rows ?? []).map((id) => new MappedService(id, 'list', { title: `list title ${id}` }));
        return { items, page: query.page, pageSize: query.pageSize, totalCount: items.length, totalPages: 1 } satisfies ServicePage;
      },
    },
    handler: { handle: () => Promise.reject(new Error('not used')) },
    optionLookups: { lookups: () => Promise.reject(new Error('not used')) },
    maxPageSize: 100,
    erpCallsPerRequest: 2,
  };
  return { shared, gets, lists };
}

describe('parseListInput', () => {
  it('trims, checks and deduplicates ids once; keeps texts as data; drops blank ones', () => {
    const q = parseListInput(page({ filter: { urgencyIds: [' 2', '2', '3 '], relatedTo: { kind: 'CUSTOMER', id: ' 505 ' }, title: "O'Brien ", remark: '  ' } }), rules);
    expect(q.filter).toEqual({ urgencyIds: ['2', '3'], relatedTo: { kind: 'CUSTOMER', id: '505' }, title: "O'Brien " });
  });

  it.each<[string, Partial<ServiceListQuery>, string]>([
    ['page 0', { page: 0 }, 'page'],
    ['pageSize over the maximum', { pageSize: 101 }, 'pageSize'],
    ['a non-numeric id', { filter: { categoryIds: ['1 or 1=1'] } }, 'categoryIds'],
    ['101 ids', { filter: { areaIds: Array.from({ length: 101 }, (_, i) => String(i + 1)) } }, 'areaIds'],
    ['201 characters', { filter: { search: '长'.repeat(201) } }, 'search'],
    ['a sort with no list column', { sort: { field: 'fee', direction: 'ASC' } }, 'sort.field'],
  ])('%s is an InputError on its field', (_name, input, field) => {
    expect(() => parseListInput(page(input), rules)).toThrow(expect.objectContaining({ constructor: InputError, field }));
  });

  it('a parent record sets relatedTo, and refuses one from the filter', () => {
    expect(parseListInput(page({}), rules, { kind: 'PROJECT', id: '9004' }).filter?.relatedTo).toEqual({ kind: 'PROJECT', id: '9004' });
    expect(() => parseListInput(page({ filter: { relatedTo: { kind: 'CUSTOMER', id: '1' } } }), rules, { kind: 'PROJECT', id: '9004' }))
      .toThrow(expect.objectContaining({ field: 'filter.relatedTo' }));
  });
});

it('parseHandleInput returns the input normalised: id trimmed, person ids without whitespace', () => {
  const parsed = parseHandleInput({ id: ' 1010 ', assigneeId: '2, 3', note: ' n ', salespersonId: ' 5', result: 'ok' });
  expect(parsed).toEqual({ kind: 'valid', input: { id: '1010', assigneeId: '2,3', note: ' n ', salespersonId: '5', result: 'ok' } });
});

describe('requestScope', () => {
  it('byId: one detail read per distinct id, with the normalised id and the request\'s CallContext', async () => {
    const { shared, gets } = fakeShared();
    const services = requestScope(shared)(call).services;
    const read = await Promise.all([services.byId('1005'), services.byId(' 1005'), services.byId('1006 ')]);
    expect(read.map((s) => s?.id)).toEqual(['1005', '1005', '1006']);
    expect(gets.map((g) => g.id)).toEqual(['1005', '1006']);
    expect(gets.every((g) => g.ctx === call)).toBe(true);
  });

  it('refused input rejects before any ERP call', async () => {
    const { shared, gets, lists } = fakeShared();
    const services = requestScope(shared)(call).services;
    await expect(services.byId('9'.repeat(60_000))).rejects.toBeInstanceOf(InputError);
    await expect(services.list(page({ pageSize: 0 }))).rejects.toBeInstanceOf(InputError);
    expect(gets.length + lists.length).toBe(0);
  });

  it('a detail loader handed in replaces the default (benchmarks): every access is a read', async () => {
    const { shared, gets } = fakeShared();
    const services = requestScope(shared, { detailLoader: (read) => ({ load: read }) })(call).services;
    await Promise.all([services.byId('1005'), services.byId('1005')]);
    expect(gets).toHaveLength(2);
  });

  it('a page whose items are asked for a field the list rows lack brings every detail along, one read each, through the loader', async () => {
    const { shared, gets, lists } = fakeShared({ rows: ['1005', '1006', '1007'] });
    const services = requestScope(shared)(call).services;
    const got = await services.list(page({}), undefined, { fields: ['title', 'content'], erpFields: false });
    expect(lists).toHaveLength(1);
    expect(gets.map((g) => g.id)).toEqual(['1005', '1006', '1007']);
    // Every field now answers at once: list columns from the row, the rest from the detail.
    expect(got.items.every((s) => s.has('content') && s.has('remark'))).toBe(true);
    expect(got.items.map((s) => [s.id, s.source, s.get('title'), s.get('content'), s.get('remark')])).toEqual([
      ['1005', 'list', 'list title 1005', 'content 1005', null],
      ['1006', 'list', 'list title 1006', 'content 1006', null],
      ['1007', 'list', 'list title 1007', 'content 1007', null],
    ]);
    // A field asked again later (another alias) reads no detail again: the loader remembers it.
    await services.byId('1006');
    expect(gets).toHaveLength(3);
  });

  it('list columns only, or no selection: no detail is read', async () => {
    const { shared, gets } = fakeShared({ rows: ['1005', '1006'] });
    const services = requestScope(shared)(call).services;
    const listed = await services.list(page({}), undefined, { fields: ['title'], erpFields: false });
    await services.list(page({}));
    expect(gets).toEqual([]);
    expect(listed.items.map((s) => [s.has('content'), s.get('title')])).toEqual([[false, 'list title 1005'], [false, 'list title 1006']]);
  });

  it('erpFields alone need the details too', async () => {
    const { shared, gets } = fakeShared({ rows: ['1005'] });
    const got = await requestScope(shared)(call).services.list(page({}), undefined, { fields: [], erpFields: true });
    expect(gets.map((g) => g.id)).toEqual(['1005']);
    expect(got.items[0]!.erpFields()).toEqual([]);
  });

  it('a failed detail fails that item\'s detail fields only; a detail that is gone leaves them null', async () => {
    const { shared } = fakeShared({ rows: ['1005', '1006', '1007'], failing: ['1006'], gone: ['1007'] });
    const got = await requestScope(shared)(call).services.list(page({}), undefined, { fields: ['content'], erpFields: false });
    const [ok, failed, gone] = got.items;
    expect(ok!.get('content')).toBe('content 1005');
    expect(failed!.get('title')).toBe('list title 1006');
    expect(() => failed!.get('content')).toThrow('detail 1006 failed');
    expect(() => failed!.erpFields()).toThrow('detail 1006 failed');
    expect([gone!.get('title'), gone!.get('content'), gone!.erpFields()]).toEqual(['list title 1007', null, []]);
  });

  it('a loader handed in is asked field by field: the page brings no details along (the benchmark\'s naive set)', async () => {
    const { shared, gets } = fakeShared({ rows: ['1005'] });
    const services = requestScope(shared, { detailLoader: (read) => ({ load: read }) })(call).services;
    const got = await services.list(page({}), undefined, { fields: ['content'], erpFields: false });
    expect(gets).toEqual([]);
    expect(got.items[0]!.has('content')).toBe(false);
  });

  it('each request gets its own loader: nothing is shared across requests', async () => {
    const { shared, gets } = fakeShared();
    const factory = requestScope(shared);
    await factory(call).services.byId('1005');
    await factory({ ...call, requestId: 'r2' }).services.byId('1005');
    expect(gets.map((g) => g.ctx.requestId)).toEqual(['r', 'r2']);
  });
});

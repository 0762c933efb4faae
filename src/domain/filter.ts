import type { ErpData } from '../erp/types';
import { InputError, parseErpId } from './input';
import type { ServiceField } from './model';

/**
 * The list query in our terms: `parseListInput` checks and normalises a client's, `listDatas` compiles it to
 * list.asp's 24 parameters (ERP-PROTOCOL.md §8). The parameter ids are the vendor's and fixed; only the sort columns
 * depend on the field map.
 */
export type Remind = 'PENDING' | 'LATEST' | 'SHARED';
export type RelationKind = 'CUSTOMER' | 'CONTRACT' | 'PRODUCT' | 'PROJECT';

export interface ServiceFilter {
  remind?: Remind | null;
  pendingOnly?: boolean | null;
  relatedTo?: Relation | null;
  assigneeDepartmentIds?: readonly string[] | null;
  assigneeIds?: readonly string[] | null;
  urgencyIds?: readonly string[] | null;
  resultIds?: readonly string[] | null;
  categoryIds?: readonly string[] | null;
  title?: string | null;
  code?: string | null;
  content?: string | null;
  handlingContent?: string | null;
  remark?: string | null;
  customerCategoryIds?: readonly string[] | null;
  customerValueIds?: readonly string[] | null;
  areaIds?: readonly string[] | null;
  customerName?: string | null;
  productName?: string | null;
  search?: string | null;
}

export interface ServiceSort {
  field: ServiceField | 'id';
  direction: 'ASC' | 'DESC';
}

export interface ServiceListQuery {
  filter?: ServiceFilter | null;
  page: number;
  pageSize: number;
  sort?: ServiceSort | null;
}

export const REMIND_CODES: Record<Remind, string> = { PENDING: '22', LATEST: '137', SHARED: '202' };
export const RELATION_DATATYPES: Record<RelationKind, string> = { CUSTOMER: 'tel', CONTRACT: 'contract', PRODUCT: 'product', PROJECT: 'chance' };

type MultiKey = 'assigneeDepartmentIds' | 'assigneeIds' | 'urgencyIds' | 'resultIds' | 'categoryIds' | 'customerCategoryIds' | 'customerValueIds' | 'areaIds';
type TextKey = 'title' | 'code' | 'content' | 'handlingContent' | 'remark' | 'customerName' | 'productName' | 'search';

/** Multi-select parameters: our filter key -> ERP id. Values travel comma-separated. */
const MULTI: ReadonlyArray<[MultiKey, string]> = [
  ['assigneeDepartmentIds', 'catetype'],
  ['assigneeIds', 'cateid'],
  ['urgencyIds', 'great1'],
  ['resultIds', 'result1'],
  ['categoryIds', 'sort1'],
  ['customerCategoryIds', 'telsort'],
  ['customerValueIds', 'teljz'],
  ['areaIds', 'area'],
];

/** Fuzzy text parameters: passed through unchanged, as data. */
const TEXT: ReadonlyArray<[TextKey, string]> = [
  ['title', 'title'],
  ['code', 'shid'],
  ['content', 'introts'],
  ['handlingContent', 'introN'],
  ['remark', 'introb'],
  ['customerName', 'TelName'],
  ['productName', 'ProName'],
  ['search', 'searchKey'],
];

/** Longest fuzzy filter text; the ERP matches with LIKE, and nobody types more into a search box. */
export const MAX_FILTER_TEXT = 200;
/** Most ids in one multi-select filter. */
export const MAX_FILTER_IDS = 100;

/** A record a list is scoped to: a parent entity (`Customer.afterSaleServices`) or `filter.relatedTo`. */
export interface Relation {
  kind: RelationKind;
  id: string;
}

/** The bounds a list query is checked against. */
export interface ListRules {
  /** Largest `pageSize` (ZB_MAX_PAGE_SIZE). */
  maxPageSize: number;
  /** Whether the field map has a list column to sort by this field. */
  sortable(field: ServiceSort['field']): boolean;
}

declare const parsed: unique symbol;
/** A list query that passed `parseListInput`: ids trimmed, checked and deduplicated, texts bounded, paging in range. */
export type ValidListQuery = ServiceListQuery & { readonly [parsed]: true };

/**
 * `afterSaleServices` (and the same field on a parent entity): the list arguments, in domain terms, checked and
 * normalised before any ERP call. Throws InputError on the first field at fault.
 */
export function parseListInput(input: ServiceListQuery, rules: ListRules, parent?: Relation): ValidListQuery {
  if (!Number.isInteger(input.page) || input.page < 1) throw new InputError('page', 'page must be 1 or more');
  if (!Number.isInteger(input.pageSize) || input.pageSize < 1 || input.pageSize > rules.maxPageSize) {
    throw new InputError('pageSize', `pageSize must be between 1 and ${rules.maxPageSize}`);
  }
  const given = input.filter ?? {};
  if (parent && given.relatedTo) throw new InputError('filter.relatedTo', 'filter.relatedTo cannot be used here: the parent record already sets it');
  const filter: ServiceFilter = {};
  if (given.remind) filter.remind = given.remind;
  if (given.pendingOnly !== undefined && given.pendingOnly !== null) filter.pendingOnly = given.pendingOnly;
  const relatedTo = parent ?? given.relatedTo;
  if (relatedTo) filter.relatedTo = { kind: relatedTo.kind, id: parseErpId('relatedTo.id', relatedTo.id) };
  for (const [key] of MULTI) {
    const list = given[key];
    if (!list || list.length === 0) continue;
    if (list.length > MAX_FILTER_IDS) throw new InputError(key, `at most ${MAX_FILTER_IDS} ids (got ${list.length})`);
    filter[key] = [...new Set(list.map((v) => parseErpId(key, v)))];
  }
  for (const [key] of TEXT) {
    const text = given[key];
    if (text === undefined || text === null || text.trim() === '') continue;
    const length = [...text].length;
    if (length > MAX_FILTER_TEXT) throw new InputError(key, `at most ${MAX_FILTER_TEXT} characters (got ${length})`);
    filter[key] = text;
  }
  const sort = input.sort ?? null;
  if (sort && !rules.sortable(sort.field)) {
    throw new InputError('sort.field', `sorting by ${sort.field} is not available on this ERP (no list column mapped)`);
  }
  return { filter, page: input.page, pageSize: input.pageSize, sort } as ValidListQuery;
}

/** The list query as list.asp's datas. Client queries come through `parseListInput`: nothing is checked here. */
export function listDatas(query: ServiceListQuery, sortColumn: (field: ServiceSort['field']) => string | undefined): ErpData[] {
  const datas: ErpData[] = [];
  const f = query.filter ?? {};
  if (f.remind) datas.push({ id: 'remind', val: REMIND_CODES[f.remind] });
  if (f.pendingOnly !== undefined && f.pendingOnly !== null) datas.push({ id: 'stype', val: f.pendingOnly ? '1' : '0' });
  if (f.relatedTo) {
    datas.push({ id: 'datatype', val: RELATION_DATATYPES[f.relatedTo.kind] });
    datas.push({ id: 'ord', val: f.relatedTo.id });
  }
  for (const [key, id] of MULTI) {
    const list = f[key];
    if (list && list.length > 0) datas.push({ id, val: list.join(',') });
  }
  for (const [key, id] of TEXT) {
    const text = f[key];
    if (text) datas.push({ id, val: text });
  }
  if (query.sort) {
    const col = sortColumn(query.sort.field);
    // parseListInput refuses such a sort: reaching here is a bug, not a client error.
    if (!col) throw new Error(`no list column mapped to sort by ${query.sort.field}`);
    datas.push({ id: '_rpt_sort', val: query.sort.direction === 'DESC' ? `-${col}` : col });
  }
  datas.push({ id: 'pagesize', val: String(query.pageSize) });
  datas.push({ id: 'pageindex', val: String(query.page) });
  return datas;
}

import type { ErpData } from '../erp/types';
import type { ServiceField } from './model';

/**
 * The list query in our terms, compiled to list.asp's 24 parameters (ERP-PROTOCOL.md §8). The parameter ids are the
 * vendor's and fixed; only the sort columns depend on the field map.
 */
export type Remind = 'PENDING' | 'LATEST' | 'SHARED';
export type RelationKind = 'CUSTOMER' | 'CONTRACT' | 'PRODUCT' | 'PROJECT';

export interface ServiceFilter {
  remind?: Remind | null;
  pendingOnly?: boolean | null;
  relatedTo?: { kind: RelationKind; id: string } | null;
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

/** Multi-select parameters: our filter key -> ERP id. Values travel comma-separated. */
const MULTI: Array<[keyof ServiceFilter, string]> = [
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
const TEXT: Array<[keyof ServiceFilter, string]> = [
  ['title', 'title'],
  ['code', 'shid'],
  ['content', 'introts'],
  ['handlingContent', 'introN'],
  ['remark', 'introb'],
  ['customerName', 'TelName'],
  ['productName', 'ProName'],
  ['search', 'searchKey'],
];

export class FilterError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** ERP ids are integers; the ERP splices them into SQL, so anything else is refused here, before any call. */
const ERP_ID = /^\d{1,10}$/;
/** Longest fuzzy filter text; the ERP matches with LIKE, and nobody types more into a search box. */
export const MAX_FILTER_TEXT = 200;
/** Most ids in one multi-select filter. */
export const MAX_FILTER_IDS = 100;

/** A client value quoted in an error message, cut short: an error must not echo a 60 KB input back. */
function quote(value: string): string {
  return value.length <= 24 ? `'${value}'` : `'${value.slice(0, 24)}...' (${value.length} characters)`;
}

export function checkErpId(field: string, id: string): string {
  const t = id.trim();
  if (!ERP_ID.test(t)) throw new FilterError(field, `${quote(id)} is not an ERP id (a positive integer)`);
  return t;
}

export function listDatas(query: ServiceListQuery, sortColumn: (field: ServiceSort['field']) => string | undefined): ErpData[] {
  const datas: ErpData[] = [];
  const f = query.filter ?? {};
  if (f.remind) datas.push({ id: 'remind', val: REMIND_CODES[f.remind] });
  if (f.pendingOnly !== undefined && f.pendingOnly !== null) datas.push({ id: 'stype', val: f.pendingOnly ? '1' : '0' });
  if (f.relatedTo) {
    datas.push({ id: 'datatype', val: RELATION_DATATYPES[f.relatedTo.kind] });
    datas.push({ id: 'ord', val: checkErpId('relatedTo.id', f.relatedTo.id) });
  }
  for (const [key, id] of MULTI) {
    const list = f[key] as readonly string[] | null | undefined;
    if (!list || list.length === 0) continue;
    if (list.length > MAX_FILTER_IDS) throw new FilterError(key, `at most ${MAX_FILTER_IDS} ids (got ${list.length})`);
    datas.push({ id, val: [...new Set(list.map((v) => checkErpId(key, v)))].join(',') });
  }
  for (const [key, id] of TEXT) {
    const text = f[key] as string | null | undefined;
    if (text === undefined || text === null || text.trim() === '') continue;
    if ([...text].length > MAX_FILTER_TEXT) throw new FilterError(key, `at most ${MAX_FILTER_TEXT} characters (got ${[...text].length})`);
    datas.push({ id, val: text });
  }
  if (query.sort) {
    const col = sortColumn(query.sort.field);
    if (!col) throw new FilterError('sort.field', `sorting by ${query.sort.field} is not available on this ERP (no list column mapped)`);
    datas.push({ id: '_rpt_sort', val: query.sort.direction === 'DESC' ? `-${col}` : col });
  }
  datas.push({ id: 'pagesize', val: String(query.pageSize) });
  datas.push({ id: 'pageindex', val: String(query.page) });
  return datas;
}

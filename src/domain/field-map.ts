import { readFileSync } from 'node:fs';
import type { ServiceField } from './model';

/**
 * Which ERP column (list.asp) and field (add.asp) ids feed each of our fields. The ids are guesses from the protocol
 * notes (§8): a real install will differ, so this table is the one place to change, and `ZB_FIELD_MAP` names a JSON
 * file that overrides any part of it. `npm run probe` prints what an install actually sends beside this map.
 */
export interface FieldMap {
  /** Our field -> list column id. The `id` entry is required: it is the record key (`ord`). */
  list: Partial<Record<ServiceField | 'id', string>>;
  /** Our field -> detail (bill) field id. */
  detail: Partial<Record<ServiceField, string>>;
}

export const DEFAULT_FIELD_MAP: FieldMap = {
  list: {
    id: 'ord',
    code: 'shid',
    title: 'title',
    customerName: 'khmc',
    customer: 'company',
    productName: 'ProName',
    category: 'sort1',
    urgency: 'great1',
    result: 'result1',
    assignee: 'cateid',
    acceptedAt: 'date1',
    createdBy: 'addcate',
    fee: 'money1',
  },
  detail: {
    code: 'shid',
    title: 'title',
    customer: 'company',
    customerName: 'company',
    product: 'product',
    productName: 'product',
    category: 'sort1',
    urgency: 'great1',
    result: 'result1',
    assignee: 'cateid',
    acceptedAt: 'date1',
    createdBy: 'addcate',
    fee: 'money1',
    content: 'introts',
    handlingContent: 'introN',
    remark: 'introb',
    contactPerson: 'person',
    phone: 'phone',
    mobile: 'mobile',
    contract: 'contract',
    project: 'chance',
    acceptedVia: 'way1',
    salesperson: 'cate',
    handlingResult: 'intro',
  },
};

/** How each of our fields is read from the ERP's display text and edit value. */
export type FieldKind = 'text' | 'display' | 'label' | 'ref' | 'date' | 'number';

export const FIELD_KINDS: Record<ServiceField, FieldKind> = {
  code: 'text',
  title: 'text',
  category: 'label',
  urgency: 'label',
  result: 'label',
  customer: 'ref',
  customerName: 'display',
  productName: 'display',
  assignee: 'display',
  acceptedAt: 'date',
  createdBy: 'display',
  fee: 'number',
  content: 'text',
  handlingContent: 'text',
  remark: 'text',
  contactPerson: 'text',
  phone: 'text',
  mobile: 'text',
  contract: 'ref',
  project: 'ref',
  product: 'ref',
  acceptedVia: 'label',
  salesperson: 'display',
  handlingResult: 'text',
};

export const SERVICE_FIELDS = Object.keys(FIELD_KINDS) as ServiceField[];

/** Every field: what a detail read carries (a field the bill does not carry is known to be empty). */
export const EVERY_FIELD: ReadonlySet<ServiceField> = new Set(SERVICE_FIELDS);

function checkSection(name: string, section: unknown, allowId: boolean): Record<string, string> {
  if (section === undefined) return {};
  if (section === null || typeof section !== 'object' || Array.isArray(section)) throw new Error(`field map: '${name}' must be an object`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(section)) {
    if (!(key in FIELD_KINDS) && !(allowId && key === 'id')) throw new Error(`field map: '${name}.${key}' is not a field we know`);
    if (typeof value !== 'string' || value === '') throw new Error(`field map: '${name}.${key}' must be a non-empty ERP id`);
    out[key] = value;
  }
  return out;
}

/** The default map with the overrides of a JSON file merged in; a mistake in the file stops start-up. */
export function loadFieldMap(path: string | undefined): FieldMap {
  if (!path) return DEFAULT_FIELD_MAP;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`ZB_FIELD_MAP: cannot read '${path}': ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object') throw new Error('ZB_FIELD_MAP: the file must hold an object');
  const { list, detail } = raw as { list?: unknown; detail?: unknown };
  const map: FieldMap = {
    list: { ...DEFAULT_FIELD_MAP.list, ...checkSection('list', list, true) },
    detail: { ...DEFAULT_FIELD_MAP.detail, ...checkSection('detail', detail, false) },
  };
  return map;
}

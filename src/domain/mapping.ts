import type { ErpBill, ErpField } from '../erp/types';
import { UnreachableCaseError } from '../erp/unreachable';
import { parseErpDateTime, parseErpNumber } from '../erp/values';
import { localToIso } from './datetime';
import { FIELD_KINDS, SERVICE_FIELDS, type FieldKind, type FieldMap } from './field-map';
import type { AfterSaleService, ServiceField, ServiceFields } from './model';

/** ERP rows and bills -> AfterSaleService, driven by the field map. */

interface Cell {
  text: string;
  value: string;
}

type FieldValue = ServiceFields[ServiceField];

function read(kind: FieldKind, cell: Cell, zone: string): FieldValue {
  const text = cell.text.trim();
  const value = cell.value.trim();
  switch (kind) {
    case 'text': {
      // "value when non-empty, else text" (ERP-PROTOCOL.md §6); the raw string keeps its inner newlines.
      const v = cell.value !== '' ? cell.value : cell.text;
      return v === '' ? null : v;
    }
    case 'display':
      return text === '' ? null : text;
    case 'label':
      return text === '' && value === '' ? null : { id: value === '' ? null : value, name: text };
    case 'ref': {
      // A list column holds the bare id as text; a detail picker holds the id in value and the name in text.
      const id = value !== '' ? value : /^\d+$/.test(text) ? text : '';
      if (id === '' || id === '0') return null;
      return { id, name: value !== '' && text !== '' ? text : null };
    }
    case 'date': {
      const t = parseErpDateTime(value || text);
      return t ? localToIso(t, zone) : null;
    }
    case 'number':
      return parseErpNumber(value || text);
    default:
      throw new UnreachableCaseError(kind);
  }
}

export class ServiceMapper {
  constructor(
    private readonly map: FieldMap,
    private readonly zone: string,
  ) {}

  /** The list column that holds the record id. */
  get idColumn(): string {
    return this.map.list.id ?? 'ord';
  }

  listColumn(field: ServiceField | 'id'): string | undefined {
    return this.map.list[field];
  }

  fromRow(row: Record<string, string>): AfterSaleService | null {
    const id = (row[this.idColumn] ?? '').trim();
    if (id === '') return null;
    const fields: Partial<ServiceFields> = {};
    const known = new Set<ServiceField>();
    for (const field of SERVICE_FIELDS) {
      const col = this.map.list[field];
      if (col === undefined || !(col in row)) continue;
      const text = row[col] ?? '';
      (fields as Record<ServiceField, FieldValue>)[field] = read(FIELD_KINDS[field], { text, value: '' }, this.zone);
      known.add(field);
    }
    return { id, source: 'list', known, fields };
  }

  fromBill(bill: ErpBill, requestedId: string): AfterSaleService {
    const byId = new Map<string, ErpField>();
    const erpFields = [];
    for (const group of bill.groups) {
      for (const f of group.fields) {
        if (!byId.has(f.id)) byId.set(f.id, f);
        erpFields.push({ id: f.id, caption: f.caption, group: group.id, type: f.type, text: f.text, value: f.value });
      }
    }
    const fields: Partial<ServiceFields> = {};
    const known = new Set<ServiceField>();
    for (const field of SERVICE_FIELDS) {
      const id = this.map.detail[field];
      const f = id === undefined ? undefined : byId.get(id);
      // A field the bill does not carry is known to be empty: the detail is the whole record.
      (fields as Record<ServiceField, FieldValue>)[field] = f ? read(FIELD_KINDS[field], f, this.zone) : null;
      known.add(field);
    }
    return { id: bill.value.trim() || requestedId, source: 'detail', known, fields, erpFields };
  }
}

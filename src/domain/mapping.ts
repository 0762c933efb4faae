import type { ErpBill, ErpField, ErpTable } from '../erp/types';
import { UnreachableCaseError } from '../erp/unreachable';
import { parseErpDateTime, parseErpNumber } from '../erp/values';
import { localToIso } from './datetime';
import { EVERY_FIELD, FIELD_KINDS, SERVICE_FIELDS, type FieldKind, type FieldMap } from './field-map';
import type { AfterSaleService, RawField, ServiceField, ServiceFields } from './model';

/**
 * ERP rows and bills -> AfterSaleService, driven by the field map, lazily: a service keeps the row or the bill it came
 * from and maps a field the first time a resolver asks for it (then keeps the value). What is the same for every
 * service is computed once: the field map's inverse (ERP field id -> our fields) per mapper, a table's columns per
 * table shape. A query that selects two fields of a detail maps two fields, and builds `erpFields` only when it
 * selects them.
 */

type FieldValue = ServiceFields[ServiceField];

/** Our fields by position: a service's mapped values live in an array indexed by these. */
const FIELD_INDEX = Object.fromEntries(SERVICE_FIELDS.map((f, i) => [f, i])) as Record<ServiceField, number>;
const KINDS: readonly FieldKind[] = SERVICE_FIELDS.map((f) => FIELD_KINDS[f]);

function read(kind: FieldKind, text: string, value: string, zone: string): FieldValue {
  switch (kind) {
    case 'text': {
      // "value when non-empty, else text" (ERP-PROTOCOL.md §6); the raw string keeps its inner newlines.
      const v = value !== '' ? value : text;
      return v === '' ? null : v;
    }
    case 'display': {
      const t = text.trim();
      return t === '' ? null : t;
    }
    case 'label': {
      const t = text.trim();
      const v = value.trim();
      return t === '' && v === '' ? null : { id: v === '' ? null : v, name: t };
    }
    case 'ref': {
      // A list column holds the bare id as text; a detail picker holds the id in value and the name in text.
      const t = text.trim();
      const v = value.trim();
      const id = v !== '' ? v : /^\d+$/.test(t) ? t : '';
      if (id === '' || id === '0') return null;
      return { id, name: v !== '' && t !== '' ? t : null };
    }
    case 'date': {
      const t = parseErpDateTime(value.trim() || text.trim());
      return t ? localToIso(t, zone) : null;
    }
    case 'number':
      return parseErpNumber(value.trim() || text.trim());
    default:
      throw new UnreachableCaseError(kind);
  }
}

/** What every row of a list table shares: which of our fields it carries, and from which column. */
interface TableShape {
  /** The list columns' ids, joined: a reply with the same columns reuses the shape. */
  readonly signature: string;
  readonly known: ReadonlySet<ServiceField>;
  /** By field position, the column the table has for it. */
  readonly columns: ReadonlyArray<string | undefined>;
}

/** A row of a list table; `row` is the table's own zip of the row (decode.ts), read field by field on demand. */
class RowService implements AfterSaleService {
  readonly source = 'list';
  private values: FieldValue[] | undefined;

  constructor(
    readonly id: string,
    private readonly row: Readonly<Record<string, string>>,
    private readonly shape: TableShape,
    private readonly zone: string,
  ) {}

  get known(): ReadonlySet<ServiceField> {
    return this.shape.known;
  }

  has(field: ServiceField): boolean {
    return this.shape.known.has(field);
  }

  get<K extends ServiceField>(field: K): ServiceFields[K] | null {
    const i = FIELD_INDEX[field];
    const values = (this.values ??= new Array<FieldValue>(SERVICE_FIELDS.length));
    let v = values[i];
    if (v === undefined) {
      const column = this.shape.columns[i];
      v = values[i] = column === undefined ? null : read(KINDS[i]!, this.row[column] ?? '', '', this.zone);
    }
    return v as ServiceFields[K] | null;
  }

  erpFields(): undefined {
    return undefined;
  }
}

/** The field map's inverse, once per mapper: a detail field id -> the positions of our fields it feeds. */
interface DetailIndex {
  readonly byId: ReadonlyMap<string, readonly number[]>;
  readonly zone: string;
}

/** One pass over the bill: by our field's position, the first ERP field with the id the map names. */
function slotsOf(bill: ErpBill, byId: DetailIndex['byId']): Array<ErpField | undefined> {
  const slots = new Array<ErpField | undefined>(SERVICE_FIELDS.length);
  for (const group of bill.groups) {
    for (const f of group.fields) {
      const fed = byId.get(f.id);
      if (fed) for (const i of fed) slots[i] ??= f;
    }
  }
  return slots;
}

/** A detail read: the bill as decoded, its fields found in one pass the first time one is asked for. */
class BillService implements AfterSaleService {
  readonly source = 'detail';
  private slots: Array<ErpField | undefined> | undefined;
  private values: FieldValue[] | undefined;
  private raw: RawField[] | undefined;

  constructor(
    readonly id: string,
    private readonly bill: ErpBill,
    private readonly index: DetailIndex,
  ) {}

  get known(): ReadonlySet<ServiceField> {
    return EVERY_FIELD;
  }

  has(): boolean {
    return true;
  }

  get<K extends ServiceField>(field: K): ServiceFields[K] | null {
    const i = FIELD_INDEX[field];
    const values = (this.values ??= new Array<FieldValue>(SERVICE_FIELDS.length));
    let v = values[i];
    if (v === undefined) {
      const f = (this.slots ??= slotsOf(this.bill, this.index.byId))[i];
      v = values[i] = f ? read(KINDS[i]!, f.text, f.value, this.index.zone) : null;
    }
    return v as ServiceFields[K] | null;
  }

  erpFields(): RawField[] {
    if (this.raw) return this.raw;
    const raw: RawField[] = [];
    for (const group of this.bill.groups) {
      for (const f of group.fields) raw.push({ id: f.id, caption: f.caption, group: group.id, type: f.type, text: f.text, value: f.value });
    }
    return (this.raw = raw);
  }
}

export class ServiceMapper {
  private readonly detail: DetailIndex;
  /** The last list table shape seen: every page of the list comes with the same columns. */
  private shape: TableShape | undefined;

  constructor(
    private readonly map: FieldMap,
    private readonly zone: string,
  ) {
    const byId = new Map<string, number[]>();
    SERVICE_FIELDS.forEach((field, i) => {
      const id = map.detail[field];
      if (id === undefined) return;
      const fed = byId.get(id);
      if (fed) fed.push(i);
      else byId.set(id, [i]);
    });
    this.detail = { byId, zone };
  }

  /** The list column that holds the record id. */
  get idColumn(): string {
    return this.map.list.id ?? 'ord';
  }

  listColumn(field: ServiceField | 'id'): string | undefined {
    return this.map.list[field];
  }

  /** The table's rows as services; a row without an id is left out. */
  fromTable(table: ErpTable): AfterSaleService[] {
    const shape = this.shapeOf(table.columns);
    const idColumn = this.idColumn;
    const services: AfterSaleService[] = [];
    for (const row of table.rows) {
      const id = (row[idColumn] ?? '').trim();
      if (id !== '') services.push(new RowService(id, row, shape, this.zone));
    }
    return services;
  }

  /** One row kept apart from its table (the change feed keeps raw rows): its own keys are its columns. */
  fromRow(row: Readonly<Record<string, string>>): AfterSaleService | null {
    const id = (row[this.idColumn] ?? '').trim();
    if (id === '') return null;
    return new RowService(id, row, this.shapeOf(Object.keys(row).map((id) => ({ id }))), this.zone);
  }

  fromBill(bill: ErpBill, requestedId: string): AfterSaleService {
    return new BillService(bill.value.trim() || requestedId, bill, this.detail);
  }

  private shapeOf(columns: ReadonlyArray<{ id: string }>): TableShape {
    let signature = '';
    for (const c of columns) signature += `${c.id}\u0000`;
    if (this.shape?.signature === signature) return this.shape;
    const present = new Set(columns.map((c) => c.id));
    const known = new Set<ServiceField>();
    const byField = SERVICE_FIELDS.map((field) => {
      const column = this.map.list[field];
      if (column === undefined || !present.has(column)) return undefined;
      known.add(field);
      return column;
    });
    this.shape = { signature, known, columns: byField };
    return this.shape;
  }
}

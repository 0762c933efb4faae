import { EVERY_FIELD } from './field-map';

/** The after-sales service as the rest of the product sees it, free of the ERP's tables and forms. */

export interface Label {
  /** The ERP option id, when the ERP gave one (detail reads in edit mode); list rows carry only the text. */
  id: string | null;
  name: string;
}

export interface EntityRef {
  id: string;
  name: string | null;
}

export interface RawField {
  id: string;
  caption: string;
  group: string;
  type: string;
  text: string;
  value: string;
}

/** Every field the ERP can give us, by our own names. */
export interface ServiceFields {
  code: string | null;
  title: string | null;
  category: Label | null;
  urgency: Label | null;
  result: Label | null;
  customer: EntityRef | null;
  customerName: string | null;
  productName: string | null;
  assignee: string | null;
  acceptedAt: string | null;
  createdBy: string | null;
  fee: number | null;
  content: string | null;
  handlingContent: string | null;
  remark: string | null;
  contactPerson: string | null;
  phone: string | null;
  mobile: string | null;
  contract: EntityRef | null;
  project: EntityRef | null;
  product: EntityRef | null;
  acceptedVia: Label | null;
  salesperson: string | null;
  handlingResult: string | null;
}

export type ServiceField = keyof ServiceFields;

/**
 * A service as one read carried it: a list row or a detail. A field is taken from the ERP's reply when a resolver
 * first asks for it, and kept (mapping.ts): a query pays for the fields it selects and nothing else.
 */
export interface AfterSaleService {
  readonly id: string;
  readonly source: 'list' | 'detail';
  /**
   * The fields this read carried: a list row has its table's columns (one set for every row of the table), a detail
   * has every field (a field the bill does not carry is known to be empty).
   */
  readonly known: ReadonlySet<ServiceField>;
  /** Whether this read carried `field`; when it did not, the GraphQL layer loads the detail for it. */
  has(field: ServiceField): boolean;
  /** `field` as this read carried it: null when the ERP left it empty, or this read did not carry it. */
  get<K extends ServiceField>(field: K): ServiceFields[K] | null;
  /** Every detail field as the ERP sent it; undefined unless this is a detail read. */
  erpFields(): RawField[] | undefined;
}

/** A service from values already mapped: an idempotency replay, or a test's fixture. */
export class MappedService implements AfterSaleService {
  readonly known: ReadonlySet<ServiceField>;

  constructor(
    readonly id: string,
    readonly source: 'list' | 'detail',
    private readonly fields: Partial<ServiceFields>,
    known: Iterable<ServiceField> = Object.keys(fields) as ServiceField[],
    private readonly raw?: RawField[],
  ) {
    this.known = new Set(known);
  }

  has(field: ServiceField): boolean {
    return this.known.has(field);
  }

  get<K extends ServiceField>(field: K): ServiceFields[K] | null {
    return this.fields[field] ?? null;
  }

  erpFields(): RawField[] | undefined {
    return this.raw;
  }
}

/**
 * A list row whose detail was read along with its page (the query selects a field the list row lacks): list columns
 * come from the row, every other field from the detail, which carries them all. A detail the ERP did not give (the
 * record was deleted meanwhile) leaves them null; a detail read that failed fails each of them with its error, as a
 * field that waited for the detail on its own would have.
 */
export class RowWithDetail implements AfterSaleService {
  readonly source = 'list';

  constructor(
    private readonly row: AfterSaleService,
    private readonly detail: AfterSaleService | null | Error,
  ) {}

  get id(): string {
    return this.row.id;
  }

  get known(): ReadonlySet<ServiceField> {
    return EVERY_FIELD;
  }

  has(): boolean {
    return true;
  }

  get<K extends ServiceField>(field: K): ServiceFields[K] | null {
    if (this.row.has(field)) return this.row.get(field);
    if (this.detail instanceof Error) throw this.detail;
    return this.detail ? this.detail.get(field) : null;
  }

  erpFields(): RawField[] {
    if (this.detail instanceof Error) throw this.detail;
    return this.detail?.erpFields() ?? [];
  }
}

/** The fields `service` carried, as plain values (every one of them mapped now). */
export function fieldValues(service: AfterSaleService): Partial<ServiceFields> {
  const values: Partial<Record<ServiceField, ServiceFields[ServiceField]>> = {};
  for (const field of service.known) values[field] = service.get(field);
  return values as Partial<ServiceFields>;
}

export interface ServicePage {
  items: AfterSaleService[];
  page: number;
  pageSize: number;
  totalCount: number;
  totalPages: number;
}

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
 * A service read from the list or from its detail. `known` says which fields this read actually carried, so the
 * GraphQL layer loads the detail only for a field the list did not have.
 */
export interface AfterSaleService {
  id: string;
  source: 'list' | 'detail';
  known: ReadonlySet<ServiceField>;
  fields: Partial<ServiceFields>;
  /** Every detail field as the ERP sent it; only on detail reads. */
  erpFields?: RawField[];
}

export interface ServicePage {
  items: AfterSaleService[];
  page: number;
  pageSize: number;
  totalCount: number;
  totalPages: number;
}

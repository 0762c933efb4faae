/** The protocol's shapes as the client hands them on (ERP-PROTOCOL.md §2-§7). */

export interface ErpData {
  id: string;
  val: string | number;
}

export interface ErpHeader {
  status: number;
  message: string;
  session?: string;
}

export interface ErpReply {
  header: ErpHeader;
  body: Record<string, unknown> | undefined;
}

export type ErpDbType = 'int' | 'number' | 'date' | 'bool' | 'string';

export interface ErpTable {
  page: { recordCount: number; pageSize: number; pageCount: number; pageIndex: number };
  columns: Array<{ id: string; dbtype: ErpDbType }>;
  /** Each row keyed by column id, never by position. */
  rows: Array<Record<string, string>>;
}

export interface ErpField {
  id: string;
  caption: string;
  dbtype: string;
  type: string;
  text: string;
  value: string;
  options?: Array<{ name: string; value: string }>;
}

export interface ErpBill {
  id: string;
  caption: string;
  /** The record id. */
  value: string;
  groups: Array<{ id: string; caption: string; fields: ErpField[] }>;
}

export interface ErpMessage {
  title: string;
  text: string;
  url: string;
  wait: number;
  target: string;
  uitype: string;
  data: string;
}

/** A detail read: the bill, or the message that said the record is not there. */
export type ErpDetail = { kind: 'bill'; bill: ErpBill } | { kind: 'message'; message: ErpMessage };

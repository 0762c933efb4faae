import { ErpAuthError, ErpBadResponseError, ErpScriptError, ErpSessionError, ErpStatusError } from './errors';
import type { ErpBill, ErpDbType, ErpDetail, ErpField, ErpMessage, ErpReply, ErpTable } from './types';

/**
 * Turns the ERP's reply text into typed values. Everything here is defensive: the ERP is old, several installs differ,
 * and a reply that is not what we expect is an upstream error, never a crash. Each function takes the path of the call
 * whose reply it reads, for the errors it throws.
 */

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** Raw newlines and tabs inside strings break JSON.parse; the ERP writes them unescaped. */
function escapeControlCharsInStrings(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') {
        out += c + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === '"') inString = false;
      else if (c < ' ') {
        out += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
        continue;
      }
    } else if (c === '"') inString = true;
    out += c;
  }
  return out;
}

export function parseReplyText(text: string, path = ''): unknown {
  const trimmed = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).trim();
  if (trimmed.startsWith('<')) throw new ErpBadResponseError('ERP answered an HTML page instead of JSON', 'html', { path });
  try {
    return JSON.parse(trimmed);
  } catch {
    try {
      return JSON.parse(escapeControlCharsInStrings(trimmed));
    } catch {
      throw new ErpBadResponseError('ERP reply is not valid JSON', 'json', { path });
    }
  }
}

const SESSION_STATUSES = new Set([1, 2, 9, 10, 15]);
const AUTH_STATUSES = new Set([4, 5]);

/** Reads the envelope and turns a failure status into its error class (ERP-PROTOCOL.md §3). */
export function readEnvelope(json: unknown, path = ''): ErpReply {
  if (!isObj(json) || !isObj(json.header)) throw new ErpBadResponseError('ERP reply has no header', 'shape', { path });
  const header = json.header;
  // One crash path writes the status as the string "11".
  const status = Number(header.status);
  const message = str(header.message);
  if (!Number.isFinite(status)) throw new ErpBadResponseError('ERP reply has no numeric status', 'shape', { path });
  if (status !== 0) {
    if (status === 11) throw new ErpScriptError(`ERP script error: ${message}`, { path });
    if (SESSION_STATUSES.has(status)) throw new ErpSessionError(`ERP session rejected (status ${status}): ${message}`, status, { path });
    if (AUTH_STATUSES.has(status)) throw new ErpAuthError(`ERP refused the account (status ${status}): ${message}`, status, { path });
    throw new ErpStatusError(`ERP failure status ${status}: ${message}`, status, { path });
  }
  const read: ErpReply['header'] = { status, message };
  if (typeof header.session === 'string' && header.session !== '') read.session = header.session;
  return { header: read, body: isObj(json.body) ? json.body : undefined };
}

function model(reply: ErpReply, path: string): { name: string; value: unknown } {
  const body = reply.body;
  if (!body) throw new ErpBadResponseError('ERP reply has no body', 'shape', { path });
  const name = str(body.model);
  return { name, value: body[name] };
}

const num = (v: unknown): number => {
  const n = Number(str(v).replace(/,/g, ''));
  return Number.isFinite(n) ? n : 0;
};

const DBTYPES = new Set<ErpDbType>(['int', 'number', 'date', 'bool', 'string']);

export function decodeTable(reply: ErpReply, path = ''): ErpTable {
  const m = model(reply, path);
  if (m.name !== 'source' || !isObj(m.value)) {
    throw new ErpBadResponseError(`expected a SourceClass table, got model '${m.name}'`, 'shape', { path });
  }
  const source = m.value;
  const kind = str(source.type ?? source.type_);
  const table = source.table;
  if ((kind !== '' && kind !== 'table') || !isObj(table)) throw new ErpBadResponseError('SourceClass without a table', 'shape', { path });
  const page = isObj(table.page) ? table.page : {};
  const cols = Array.isArray(table.cols) ? table.cols : [];
  const columns = cols.map((c) => {
    const col = isObj(c) ? c : {};
    const dbtype = str(col.dbtype).toLowerCase() as ErpDbType;
    return { id: str(col.id), dbtype: DBTYPES.has(dbtype) ? dbtype : 'string' };
  });
  const rawRows = Array.isArray(table.rows) ? table.rows : [];
  // Each row zipped once, here: the domain reads its cells by column id and never zips it again (mapping.ts).
  const rows: Array<Record<string, string>> = [];
  for (const r of rawRows) {
    // Some installs wrap a row as {value: [...]}.
    const cells: unknown = isObj(r) ? r.value : r;
    if (!Array.isArray(cells)) throw new ErpBadResponseError('table row is not an array', 'shape', { path });
    const row: Record<string, string> = {};
    for (let i = 0; i < columns.length; i++) row[columns[i]!.id] = str(cells[i]);
    rows.push(row);
  }
  const pageSize = num(page.pagesize);
  const recordCount = num(page.recordcount);
  return {
    page: {
      recordCount,
      pageSize,
      pageCount: num(page.pagecount) || (pageSize > 0 ? Math.ceil(recordCount / pageSize) : 0),
      pageIndex: num(page.pageindex),
    },
    columns,
    rows,
  };
}

/** A field that is already what we hand on: its six texts are strings, and it has no option list of its own. */
function isPlain(f: Obj): boolean {
  return (
    typeof f.id === 'string' && typeof f.caption === 'string' && typeof f.dbtype === 'string' && typeof f.type === 'string' &&
    typeof f.text === 'string' && typeof f.value === 'string' && f.source === undefined && f.options === undefined
  );
}

// A detail reply is decoded for every service a page shows (21 replies per page of 20): plain loops, no
// intermediate arrays or spread copies, and most fields (all but the selects) are handed on as parsed, not copied.
function decodeField(f: unknown): ErpField {
  if (isObj(f) && isPlain(f)) return f as unknown as ErpField;
  const field = isObj(f) ? f : {};
  const decoded: ErpField = {
    id: str(field.id),
    caption: str(field.caption),
    dbtype: str(field.dbtype),
    type: str(field.type),
    text: str(field.text),
    value: str(field.value),
  };
  const source = field.source;
  if (isObj(source) && Array.isArray(source.options)) {
    const options: NonNullable<ErpField['options']> = [];
    for (const o of source.options) if (isObj(o)) options.push({ name: str(o.n), value: str(o.v) });
    decoded.options = options;
  }
  return decoded;
}

function decodeBill(value: unknown, path: string): ErpBill {
  if (!isObj(value)) throw new ErpBadResponseError('BillClass missing', 'shape', { path });
  const rawGroups = Array.isArray(value.groups) ? value.groups : [];
  const groups: ErpBill['groups'] = [];
  for (const g of rawGroups) {
    if (!isObj(g)) continue;
    const rawFields = Array.isArray(g.fields) ? g.fields : [];
    const fields: ErpField[] = [];
    for (const f of rawFields) fields.push(decodeField(f));
    groups.push({ id: str(g.id), caption: str(g.caption), fields });
  }
  return { id: str(value.id), caption: str(value.caption), value: str(value.value), groups };
}

function decodeMessageValue(value: unknown): ErpMessage {
  const m = isObj(value) ? value : {};
  return { title: str(m.title), text: str(m.text), url: str(m.url), wait: num(m.wait), target: str(m.target), uitype: str(m.uitype), data: str(m.data) };
}

export function decodeDetail(reply: ErpReply, path = ''): ErpDetail {
  const m = model(reply, path);
  if (m.name === 'bill') return { kind: 'bill', bill: decodeBill(m.value, path) };
  if (m.name === 'message') return { kind: 'message', message: decodeMessageValue(m.value) };
  throw new ErpBadResponseError(`expected a BillClass, got model '${m.name}'`, 'shape', { path });
}

export function decodeMessage(reply: ErpReply, path = ''): ErpMessage {
  const m = model(reply, path);
  if (m.name !== 'message') throw new ErpBadResponseError(`expected a MessageClass, got model '${m.name}'`, 'shape', { path });
  return decodeMessageValue(m.value);
}

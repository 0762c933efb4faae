import { PENDING_RESULT, type Service } from '../dataset';
import { formatDate, formatNumber, ok, failure, STATUS_TEXT, type Reply } from '../protocol';
import type { SimUser } from '../users';
import { optionName, type World } from '../world';
import type { Datas } from './datas';

type DbType = 'int' | 'number' | 'date' | 'bool' | 'string';

interface Column {
  id: string;
  dbtype: DbType;
  /** The typed value used for sorting. */
  sortKey: (s: Service, w: World) => string | number;
  text: (s: Service, w: World) => string;
}

const customerName = (s: Service, w: World) => w.customer(s.company)?.name ?? '';
const productName = (s: Service, w: World) => w.product(s.product)?.name ?? '';

/** The list's columns (ERP-PROTOCOL.md §8 default set, plus the money column `money1`). */
export const LIST_COLUMNS: Column[] = [
  { id: 'ord', dbtype: 'int', sortKey: (s) => s.ord, text: (s) => String(s.ord) },
  { id: 'shid', dbtype: 'string', sortKey: (s) => s.shid, text: (s) => s.shid },
  { id: 'title', dbtype: 'string', sortKey: (s) => s.title, text: (s) => s.title },
  { id: 'khmc', dbtype: 'string', sortKey: customerName, text: customerName },
  { id: 'company', dbtype: 'int', sortKey: (s) => s.company, text: (s) => String(s.company) },
  { id: 'ProName', dbtype: 'string', sortKey: productName, text: productName },
  { id: 'sort1', dbtype: 'string', sortKey: (s) => s.sort1, text: (s, w) => optionName(w.data.categories, s.sort1) },
  { id: 'great1', dbtype: 'string', sortKey: (s) => s.great1, text: (s, w) => optionName(w.data.urgencies, s.great1) },
  { id: 'result1', dbtype: 'string', sortKey: (s) => s.result1, text: (s, w) => optionName(w.data.results, s.result1) },
  { id: 'cateid', dbtype: 'string', sortKey: (s, w) => w.personNames(s.cateid), text: (s, w) => w.personNames(s.cateid) },
  // Every seventh row prints its date the other way, as mixed installs do.
  { id: 'date1', dbtype: 'date', sortKey: (s) => s.date1.getTime(), text: (s) => formatDate(s.date1, s.ord % 7 === 0) },
  { id: 'addcate', dbtype: 'string', sortKey: (s, w) => w.person(s.addcate)?.name ?? '', text: (s, w) => w.person(s.addcate)?.name ?? '' },
  { id: 'money1', dbtype: 'number', sortKey: (s) => s.money1, text: (s) => formatNumber(s.money1) },
];

const LIST_ID = 'salesmanage_service_list';

class FilterError extends Error {}

function ids(value: string): Set<number> {
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const t = part.trim();
    if (t === '') continue;
    // The page splices ids into SQL: anything but digits is a script error, not a filter.
    if (!/^\d+$/.test(t)) throw new FilterError(`'${t}' 附近有语法错误。`);
    out.add(Number(t));
  }
  return out;
}

function fuzzy(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

type Predicate = (s: Service, w: World) => boolean;

/** Compiles the 24 list parameters into one predicate. Empty values mean "no filter", as on the ERP's form. */
function compileFilters(datas: Datas, user: SimUser, w: World): Predicate[] {
  const preds: Predicate[] = [];
  const get = (id: string) => {
    const v = datas.get(id);
    return v === undefined ? '' : v.trim();
  };
  const multi = (id: string, value: (s: Service, w: World) => number | number[]) => {
    const v = get(id);
    if (v === '') return;
    const set = ids(v);
    if (set.size === 0) return;
    preds.push((s, world) => {
      const got = value(s, world);
      return Array.isArray(got) ? got.some((g) => set.has(g)) : set.has(got);
    });
  };
  const text = (id: string, value: (s: Service, w: World) => string) => {
    const v = get(id);
    if (v !== '') preds.push((s, world) => fuzzy(value(s, world), v));
  };

  const remind = get('remind');
  const today = w.data.today.getTime();
  if (remind === '22') preds.push((s) => s.result1 === PENDING_RESULT && s.cateid.includes(user.personId));
  else if (remind === '137') preds.push((s) => s.date1.getTime() >= today - 7 * 86400000);
  else if (remind === '202') preds.push((s) => s.sharedWith.includes(user.personId));

  if (get('stype') === '1') preds.push((s) => s.result1 === PENDING_RESULT);

  const datatype = get('datatype').toLowerCase();
  const ord = get('ord');
  if (datatype !== '' && ord !== '') {
    const target = ids(ord);
    const field: Record<string, (s: Service) => number | null> = {
      tel: (s) => s.company,
      contract: (s) => s.contract,
      product: (s) => s.product,
      chance: (s) => s.chance,
    };
    const pickField = field[datatype];
    if (!pickField) throw new FilterError(`datatype '${datatype}' 无效`);
    preds.push((s) => {
      const v = pickField(s);
      return v !== null && target.has(v);
    });
  }
  // `checktype` only switches the mobile UI to single-selection mode: no effect on data.

  multi('catetype', (s, world) => s.cateid.map((id) => world.person(id)?.dept ?? -1));
  multi('cateid', (s) => s.cateid);
  multi('great1', (s) => s.great1);
  multi('result1', (s) => s.result1);
  multi('sort1', (s) => s.sort1);
  text('title', (s) => s.title);
  text('shid', (s) => s.shid);
  text('introts', (s) => s.introts);
  text('introN', (s) => s.introN);
  text('introb', (s) => s.introb);
  multi('telsort', (s, world) => world.customer(s.company)?.sort ?? -1);
  multi('teljz', (s, world) => world.customer(s.company)?.value ?? -1);
  multi('area', (s, world) => world.customer(s.company)?.area ?? -1);
  text('TelName', customerName);
  text('ProName', productName);
  text('searchKey', (s, world) =>
    [s.title, s.shid, customerName(s, world), productName(s, world), s.introts, s.introN, s.introb, s.person].join('\u0001'),
  );
  return preds;
}

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return fallback;
  const n = Number(value);
  return n >= 1 ? n : fallback;
}

export interface ListOptions {
  /** Rows as `{value: [...]}` objects instead of bare arrays (met by some clients). */
  rowsAsObjects: boolean;
}

export function handleList(cmdkey: string, datas: Datas, user: SimUser, session: string, w: World, options: ListOptions): Reply {
  if (cmdkey !== 'refresh') {
    // Without `refresh` a list page answers only its UI skeleton.
    return ok(session, { model: 'report', action: 'init', report: { id: LIST_ID, caption: '售后列表', searchs: [], tools: [] } });
  }
  let preds: Predicate[];
  try {
    preds = compileFilters(datas, user, w);
  } catch (e) {
    if (e instanceof FilterError) return failure('11', `${STATUS_TEXT.scriptError}${e.message}`);
    throw e;
  }
  let matches = w.liveServices().filter((s) => w.canSee(user, s) && preds.every((p) => p(s, w)));

  const sortParam = (datas.get('_rpt_sort') ?? '').trim();
  const desc = sortParam.startsWith('-');
  const sortId = desc ? sortParam.slice(1) : sortParam;
  const sortCol = sortId === '' ? LIST_COLUMNS.find((c) => c.id === 'date1')! : LIST_COLUMNS.find((c) => c.id === sortId);
  if (!sortCol) return failure('11', `${STATUS_TEXT.scriptError}列名 '${sortId}' 无效。`);
  const direction = sortId === '' ? -1 : desc ? -1 : 1;
  matches = [...matches].sort((a, b) => {
    const ka = sortCol.sortKey(a, w);
    const kb = sortCol.sortKey(b, w);
    const c = ka < kb ? -1 : ka > kb ? 1 : 0;
    return c !== 0 ? c * direction : b.ord - a.ord;
  });

  const pagesize = positiveInt(datas.get('pagesize'), 20);
  const pageindex = positiveInt(datas.get('pageindex'), 1);
  if (matches.length === 0) {
    // The empty-result quirk: no columns, no rows, a page of zeros.
    return ok(session, {
      model: 'source', action: 'table',
      source: { type: 'table', uitype: '', text: LIST_ID, table: { page: { recordcount: 0, pagesize: 0, pagecount: 0, pageindex: 0 }, cols: [], rows: [] } },
    });
  }
  const slice = matches.slice((pageindex - 1) * pagesize, pageindex * pagesize);
  const rows = slice.map((s) => {
    const cells = LIST_COLUMNS.map((c) => c.text(s, w));
    return options.rowsAsObjects ? { value: cells } : cells;
  });
  return ok(session, {
    model: 'source',
    action: 'table',
    source: {
      type: 'table',
      uitype: '',
      text: LIST_ID,
      table: {
        page: { recordcount: matches.length, pagesize, pagecount: Math.ceil(matches.length / pagesize), pageindex },
        cols: LIST_COLUMNS.map((c) => ({ id: c.id, dbtype: c.dbtype })),
        rows,
      },
    },
  });
}

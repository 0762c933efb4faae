import { LRUCache } from 'lru-cache';
import type { CallContext, ErpClient } from '../erp/client';
import { ErpBusyError } from '../erp/errors';
import type { ErpBill, ErpField } from '../erp/types';
import type { FieldMap } from './field-map';
import { listDatas } from './filter';
import { isErpId } from './input';
import type { Label, ServiceField } from './model';
import { detached } from '../erp/call';

/**
 * The option lists a UI needs for the list filters and handleService's person fields, learned from the ERP's own data
 * (ERP-PROTOCOL.md §6, §8). The protocol has no "list the options" call: select fields in edit mode carry their whole
 * option list, and person pickers carry `deptIds|subDeptIds|userIds` with space-separated names. Nothing lists all
 * users or departments, so people and departments are those seen on a bounded sample of recent services.
 *
 * One module on purpose (a little over 250 lines): reading the forms and keeping the answers per identity are one
 * feature, and the reading rules are small functions that make sense only beside the form shapes they read.
 */

export interface Person {
  id: string;
  name: string;
}

export interface Department {
  id: string;
  /** The pickers carry department ids only. */
  name: string | null;
}

export type OptionListName = 'categories' | 'urgencies' | 'handlingStates' | 'acceptanceChannels' | 'people' | 'departments';

export interface OptionLookups {
  readonly categories: readonly Label[];
  readonly urgencies: readonly Label[];
  readonly handlingStates: readonly Label[];
  readonly acceptanceChannels: readonly Label[];
  readonly people: readonly Person[];
  readonly departments: readonly Department[];
  /** Lists that hold only what the sampled services showed (people and departments always). */
  readonly partialLists: readonly OptionListName[];
  /** Details read (bills); a service gone between the list and its detail is not counted. */
  readonly sampledServices: number;
  /** ISO 8601, UTC. */
  readonly learnedAt: string;
}

/** Runs one ERP call; the GraphQL layer passes the request's share of call slots. */
export type RunCall = <T>(work: () => Promise<T>) => Promise<T>;

export interface OptionLookupOptions {
  /** How long a learned answer is kept per identity. */
  ttlMs: number;
  /** Details read per learning pass: the newest services on one list page. */
  sampleSize: number;
  /** Identities kept at most (identities come from client session tokens). */
  maxIdentities: number;
  /** Bytes of kept answers at most, counted as their serialised UTF-8 plus the key. */
  maxBytes: number;
  /** Clock, for the TTL and `learnedAt` (tests). */
  now: () => number;
}

/**
 * Defaults; there is no setting yet (src/config.ts is the lead's). 256 identities x at most 2 MiB in all: a typical
 * answer is 1-3 KB, so the byte bound is what a hostile ERP reply would hit first.
 */
export const DEFAULT_OPTION_LOOKUP: OptionLookupOptions = {
  ttlMs: 10 * 60 * 1000,
  sampleSize: 10,
  maxIdentities: 256,
  maxBytes: 2 * 1024 * 1024,
  now: () => Date.now(),
};

/** Worst-case ERP calls of one learning pass: the list page plus one detail per sampled service. */
export const optionLookupCalls = (sampleSize: number): number => 1 + sampleSize;

/** Which detail fields feed which list: ids come from the field map, never from here. */
const SELECTS: ReadonlyArray<[OptionListName, ServiceField]> = [
  ['categories', 'category'],
  ['urgencies', 'urgency'],
  ['handlingStates', 'result'],
  ['acceptanceChannels', 'acceptedVia'],
];
const PICKERS: readonly ServiceField[] = ['assignee', 'salesperson'];

/** Ids read from the ERP's forms and rows are kept only when they are ERP ids: the filters would refuse anything else. */
const ids = (text: string | undefined): string[] => (text ?? '').split(',').map((s) => s.trim()).filter(isErpId);
const byNumericId = (a: { id: string }, b: { id: string }) => Number(a.id) - Number(b.id);

class SelectList {
  private readonly full = new Map<string, Label>();
  private readonly seen = new Map<string, Label>();

  add(field: ErpField): void {
    for (const o of field.options ?? []) {
      const id = o.value.trim();
      if (id !== '' && !this.full.has(id)) this.full.set(id, { id, name: o.name.trim() });
    }
    // The chosen value counts too: an option retired from the list can still be on old services (and filter them).
    const id = field.value.trim();
    const name = field.text.trim();
    if (id !== '' && name !== '' && !this.seen.has(id)) this.seen.set(id, { id, name });
  }

  /** The forms' own lists in the ERP's order, then values only seen chosen. */
  result(): { labels: Label[]; partial: boolean } {
    const labels = [...this.full.values()];
    for (const [id, label] of this.seen) if (!this.full.has(id)) labels.push(label);
    return { labels, partial: this.full.size === 0 };
  }
}

/**
 * A person picker's edit value `deptIds|subDeptIds|userIds` and its text, names separated by spaces. Ids and names are
 * zipped only when they pair up unambiguously (one user, or as many names as ids): a name with a space in it must not
 * shift every name after it onto the wrong id.
 */
export function readPicker(field: Pick<ErpField, 'text' | 'value'>): { people: Person[]; departmentIds: string[] } {
  const parts = field.value.split('|');
  if (parts.length !== 3) return { people: [], departmentIds: [] };
  const userIds = ids(parts[2]);
  const text = field.text.trim();
  const names = userIds.length === 1 ? [text] : text.split(/\s+/);
  const people = text !== '' && names.length === userIds.length ? userIds.map((id, i) => ({ id, name: names[i]! })) : [];
  return { people, departmentIds: [...ids(parts[0]), ...ids(parts[1])] };
}

/** Everything the sampled bills say, by the field map's detail ids. */
export function learnFromBills(bills: readonly ErpBill[], map: FieldMap, learnedAt: string): OptionLookups {
  const selects = new Map(SELECTS.map(([list]) => [list, new SelectList()]));
  const people = new Map<string, Person>();
  const departments = new Map<string, Department>();
  for (const bill of bills) {
    const byId = new Map<string, ErpField>();
    for (const group of bill.groups) for (const f of group.fields) if (!byId.has(f.id)) byId.set(f.id, f);
    const field = (name: ServiceField) => {
      const id = map.detail[name];
      return id === undefined ? undefined : byId.get(id);
    };
    for (const [list, name] of SELECTS) {
      const f = field(name);
      if (f) selects.get(list)!.add(f);
    }
    for (const name of PICKERS) {
      const f = field(name);
      if (!f) continue;
      const picked = readPicker(f);
      for (const p of picked.people) if (!people.has(p.id)) people.set(p.id, p);
      for (const id of picked.departmentIds) if (!departments.has(id)) departments.set(id, { id, name: null });
    }
  }
  const partialLists: OptionListName[] = [];
  const lists = {} as Record<(typeof SELECTS)[number][0], Label[]>;
  for (const [list] of SELECTS) {
    const { labels, partial } = selects.get(list)!.result();
    lists[list] = labels;
    if (partial) partialLists.push(list);
  }
  partialLists.push('people', 'departments');
  return {
    categories: lists.categories,
    urgencies: lists.urgencies,
    handlingStates: lists.handlingStates,
    acceptanceChannels: lists.acceptanceChannels,
    people: [...people.values()].sort(byNumericId),
    departments: [...departments.values()].sort(byNumericId),
    partialLists,
    sampledServices: bills.length,
    learnedAt,
  };
}

const sizeOf = (key: string, record: string) => Buffer.byteLength(key) + Buffer.byteLength(record);

/**
 * Learns the option lists per ERP identity (`auth.identity`: what that user's session may see), keeps them for
 * `ttlMs`, and lets concurrent callers of one identity share one learning pass. A pass costs at most
 * `maxErpCalls` ERP calls (graphql/cost.ts counts them before admission).
 */
export class OptionLookupService {
  private readonly options: OptionLookupOptions;
  /** Serialised answers: what is counted against `maxBytes` is what is held, and no caller shares a mutable object. */
  private readonly kept: LRUCache<string, string>;
  /** Passes in flight, one per identity; at most `maxIdentities` at once. */
  private readonly learning = new Map<string, Promise<OptionLookups>>();

  constructor(
    private readonly client: Pick<ErpClient, 'list' | 'detail'>,
    private readonly map: FieldMap,
    options: Partial<OptionLookupOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTION_LOOKUP, ...options };
    const now = this.options.now;
    this.kept = new LRUCache<string, string>({
      max: this.options.maxIdentities,
      maxSize: this.options.maxBytes,
      ttl: this.options.ttlMs,
      sizeCalculation: (record, key) => sizeOf(key, record),
      perf: { now },
      // No cached clock reading: an injected clock is read on every check.
      ttlResolution: 0,
    });
  }

  /** ERP calls of one learning pass at most. */
  get maxErpCalls(): number {
    return optionLookupCalls(this.options.sampleSize);
  }

  /** Identities and bytes kept, as counted against the bounds. */
  get keptCount(): number {
    return this.kept.size;
  }

  get keptBytes(): number {
    return this.kept.calculatedSize;
  }

  async lookups(ctx: CallContext, run: RunCall = (work) => work()): Promise<OptionLookups> {
    const key = ctx.auth.identity;
    const kept = this.kept.get(key);
    if (kept !== undefined) return JSON.parse(kept) as OptionLookups;
    let pass = this.learning.get(key);
    if (!pass) {
      if (this.learning.size >= this.options.maxIdentities) {
        throw new ErpBusyError(`${this.learning.size} option lookups are being learned; try again shortly`);
      }
      // The pass is shared: the first caller leaving must not cut it short for the others (its deadline still bounds
      // retries, and every call has its own timeout).
      pass = this.learn(detached(ctx), run)
        .then((answer) => {
          // Nothing sampled (an empty list) is not worth keeping: the next call costs one list call and may find more.
          if (answer.sampledServices > 0) this.kept.set(key, JSON.stringify(answer));
          return answer;
        })
        .finally(() => this.learning.delete(key));
      this.learning.set(key, pass);
    }
    return pass;
  }

  /** One list page of the newest services (by record id, descending), then their details within `run`. */
  private async learn(ctx: CallContext, run: RunCall): Promise<OptionLookups> {
    const size = this.options.sampleSize;
    const datas = listDatas({ filter: null, page: 1, pageSize: size, sort: { field: 'id', direction: 'DESC' } }, (f) => this.map.list[f]);
    const table = await run(() => this.client.list(ctx, datas));
    const idColumn = this.map.list.id ?? 'ord';
    const ords = [...new Set(table.rows.map((r) => (r[idColumn] ?? '').trim()).filter(isErpId))].slice(0, size);
    const details = await Promise.all(ords.map((ord) => run(() => this.client.detail(ctx, ord))));
    // A service deleted (or hidden) since the list was read answers a message: it just is not sampled.
    const bills = details.flatMap((d) => (d.kind === 'bill' ? [d.bill] : []));
    return learnFromBills(bills, this.map, new Date(this.options.now()).toISOString());
  }
}

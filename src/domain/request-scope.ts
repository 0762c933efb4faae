import DataLoader from 'dataloader';
import type { CallContext } from '../erp/client';
import { parseListInput, type ListRules, type Relation, type ServiceListQuery, type ValidListQuery } from './filter';
import type { HandleInput, HandleResult } from './handle';
import type { IdempotentHandler } from './idempotency';
import { parseServiceId, type ServiceId } from './input';
import { RowWithDetail, type AfterSaleService, type ServiceField, type ServicePage } from './model';
import type { OptionLookupService, OptionLookups } from './options';
import type { AfterSaleRepository } from './repository';
import { callSlots } from './slots';

/**
 * One GraphQL request's services, built once per request from its CallContext (identity, deadline, abort signal), so
 * resolvers call them in one line each and never pass the context on (Apollo's subgraph template does the same with
 * its data sources). Everything here lives and dies with the request: the ERP slot limiter and the detail loader are
 * per request, while what they call (repository, idempotent handler, option lookups) is process-wide and shared.
 */

/** What a caller will ask of a page's items (the GraphQL selection under `items`). */
export interface ItemSelection {
  fields: readonly ServiceField[];
  erpFields: boolean;
}

/** After-sales services as one request reads them. */
export interface ServiceReads {
  /**
   * One page of services; `parent` when the record the list hangs off sets `relatedTo` (Customer, Contract, ...). With
   * the `selection` its items will be asked for, a page that needs details (a selected field the list rows lack)
   * brings each item's detail along, read through the request's detail loader as a field would have read it: the same
   * ERP calls, and each item's fields then answer at once.
   */
  list(input: ServiceListQuery, parent?: Relation, selection?: ItemSelection): Promise<ServicePage>;
  /** One service by id, as a client or the ERP gave it (checked and trimmed here); null when the ERP has no such record. */
  byId(id: string): Promise<AfterSaleService | null>;
}

/** handleService's arguments: the input and its optional idempotency key. */
export interface HandleRequest extends HandleInput {
  idempotencyKey?: string | null;
}

export interface RequestServices {
  services: ServiceReads;
  handle(request: HandleRequest): Promise<HandleResult>;
  /** The option lists a UI needs, kept per ERP identity (a learning pass runs within this request's ERP slots). */
  options(): Promise<OptionLookups>;
}

export type RequestServicesFactory = (call: CallContext) => RequestServices;

/** What every request shares: built once by the composition root (server/app.ts). */
export interface SharedServices {
  repository: Pick<AfterSaleRepository, 'list' | 'get' | 'canSortBy' | 'onListRow'>;
  handler: Pick<IdempotentHandler, 'handle'>;
  optionLookups: Pick<OptionLookupService, 'lookups'>;
  /** Largest `pageSize` (ZB_MAX_PAGE_SIZE). */
  maxPageSize: number;
  /**
   * ERP reads of one request at once, lists and details alike (ZB_DETAIL_CONCURRENCY): one request (2,000
   * representations, 30 aliased pages) cannot take the whole process-wide call queue from everyone else.
   */
  erpCallsPerRequest: number;
}

/** Service details of one request by (parsed) id. */
export interface DetailLoader {
  load(id: ServiceId): Promise<AfterSaleService | null>;
}

/** Builds a request's detail loader over `read`: one detail read, already within the request's ERP slots. */
export type DetailLoaderFactory = (read: (id: ServiceId) => Promise<AfterSaleService | null>) => DetailLoader;

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/**
 * The default: one ERP call per distinct id per request, however many fields, aliases or representations ask. The ERP
 * has no batch endpoint, so a batch fans out into single reads; a key's failure stays that key's (DataLoader takes an
 * Error value as that key's rejection) and never fails its neighbours. Ids arrive parsed, so the id is the cache key.
 */
export const batchedDetails: DetailLoaderFactory = (read) =>
  new DataLoader<ServiceId, AfterSaleService | null>((ids) => Promise.all(ids.map((id) => read(id).catch(asError))));

export interface RequestScopeOptions {
  /** How a request's detail reads are shared: `batchedDetails` unless given (benchmarks swap it, bench/). */
  detailLoader?: DetailLoaderFactory;
  /**
   * Whether a page whose selection needs details brings them along (`list`'s `selection`). By default only with the
   * default loader: a loader handed in (the benchmark's naive set, one read per field access) is asked field by field.
   */
  detailsWithPage?: boolean;
}

/** The factory the composition root calls once per request. */
export function requestScope(shared: SharedServices, options: RequestScopeOptions = {}): RequestServicesFactory {
  const { repository, handler, optionLookups } = shared;
  const detailLoader = options.detailLoader ?? batchedDetails;
  const detailsWithPage = options.detailsWithPage ?? options.detailLoader === undefined;
  const rules: ListRules = { maxPageSize: shared.maxPageSize, sortable: (field) => repository.canSortBy(field) };
  const needsDetail = (selection: ItemSelection) => selection.erpFields || selection.fields.some((field) => !repository.onListRow(field));
  return (call) => {
    const slots = callSlots(shared.erpCallsPerRequest);
    const details = detailLoader((id) => slots(() => repository.get(call, id)));
    const byId = (id: string): Promise<AfterSaleService | null> => {
      let parsed: ServiceId;
      try {
        parsed = parseServiceId(id);
      } catch (e) {
        return Promise.reject(e);
      }
      return details.load(parsed);
    };
    // Each item's detail, or the error its read ended with (that item's fields fail with it, no other item's).
    const withDetails = async (page: ServicePage): Promise<ServicePage> => {
      const read = await Promise.all(page.items.map((s) => byId(s.id).catch(asError)));
      return { ...page, items: page.items.map((s, i) => new RowWithDetail(s, read[i]!)) };
    };
    return {
      services: {
        // Refused input rejects like any other failure of the call.
        list: (input, parent, selection) => {
          let query: ValidListQuery;
          try {
            query = parseListInput(input, rules, parent);
          } catch (e) {
            return Promise.reject(e);
          }
          const page = slots(() => repository.list(call, query));
          return detailsWithPage && selection && needsDetail(selection) ? page.then(withDetails) : page;
        },
        byId,
      },
      handle: ({ idempotencyKey, ...input }) => handler.handle(call, input, idempotencyKey),
      options: () => optionLookups.lookups(call, slots),
    };
  };
}

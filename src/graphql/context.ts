import type DataLoader from 'dataloader';
import type { CallContext } from '../erp/client';
import type { IdempotentHandler } from '../domain/idempotency';
import type { AfterSaleService } from '../domain/model';
import type { OptionLookupService } from '../domain/options';
import type { AfterSaleRepository } from '../domain/repository';

/** Runs `work` within the request's share of the process-wide ERP call slots. */
export type ErpSlots = <T>(work: () => Promise<T>) => Promise<T>;

/** What every resolver of one GraphQL request shares. Built fresh per request: nothing here crosses requests. */
export interface GraphQLContext {
  requestId: string;
  /** Identity, deadline and abort signal for every ERP call of this request. */
  erp: CallContext;
  /** Why this request has no usable ERP identity (missing or blank session header); operations needing the ERP are refused. */
  unauthenticated?: string;
  repository: AfterSaleRepository;
  handler: IdempotentHandler;
  /** Option lists per ERP identity, shared across requests (kept and single-flight inside). */
  optionLookups: OptionLookupService;
  /**
   * At most ZB_DETAIL_CONCURRENCY of this request's ERP reads at once, lists and details alike: one request (2,000
   * representations, 30 aliased pages) cannot take the whole process-wide queue from everyone else.
   */
  erpSlots: ErpSlots;
  /** Service details by id: one ERP call per distinct id per request, within `erpSlots`. */
  serviceLoader: DataLoader<string, AfterSaleService | null>;
  maxPageSize: number;
  /** Reserves this request's estimated retained bytes from the process budget; false when it does not fit. */
  reserve(bytes: number): boolean;
}

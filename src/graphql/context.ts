import type DataLoader from 'dataloader';
import type { CallContext } from '../erp/client';
import type { IdempotentHandler } from '../domain/idempotency';
import type { AfterSaleService } from '../domain/model';
import type { AfterSaleRepository } from '../domain/repository';

/** What every resolver of one GraphQL request shares. Built fresh per request: nothing here crosses requests. */
export interface GraphQLContext {
  requestId: string;
  /** Identity, deadline and abort signal for every ERP call of this request. */
  erp: CallContext;
  repository: AfterSaleRepository;
  handler: IdempotentHandler;
  /** Service details by id: one ERP call per distinct id per request, bounded concurrency. */
  serviceLoader: DataLoader<string, AfterSaleService | null>;
  maxPageSize: number;
}

import DataLoader from 'dataloader';
import type { CallContext } from '../erp/client';
import type { AfterSaleService } from '../domain/model';
import type { AfterSaleRepository } from '../domain/repository';
import type { ErpSlots } from './context';

/**
 * Service details for one request. The ERP has no batch endpoint, so a batch fans out into single detail calls within
 * the request's ERP slots. A key's failure or absence stays that key's: it is returned as a value and never fails its
 * neighbours.
 */
export function createServiceLoader(
  repository: AfterSaleRepository,
  ctx: CallContext,
  slots: ErpSlots,
  mode?: { naive: true },
): DataLoader<string, AfterSaleService | null> {
  return new DataLoader<string, AfterSaleService | null>(
    (ids) => Promise.all(ids.map((id) => slots(() => repository.get(ctx, id)).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))))),
    // The naive mode (benchmarks only) turns batching and the per-request cache off: one ERP call per field access.
    mode?.naive ? { batch: false, cache: false } : { cacheKeyFn: (id) => id.trim() },
  );
}

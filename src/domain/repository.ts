import type { CallContext, ErpClient } from '../erp/client';
import { ErpRejectedError, isErpError } from '../erp/errors';
import { listDatas, type ServiceSort, type ValidListQuery } from './filter';
import { confirmsSave, handleDatas, rejectionErrors, type HandleResult, type ValidHandleInput } from './handle';
import type { ServiceId } from './input';
import type { ServiceMapper } from './mapping';
import type { AfterSaleService, ServiceField, ServicePage } from './model';
import type { ServiceCache } from './ports';
import { detached } from '../erp/call';

export interface OutcomeRules {
  /** A save's message text that means success (the real text is unknown: ZB_SAVE_SUCCESS_PATTERN). */
  saveSuccess: RegExp;
  /** A detail message text that means "no such record" (ZB_NOT_FOUND_PATTERN). */
  notFound: RegExp;
}

/**
 * After-sales services over the ERP client: list, detail and processing in our own terms. Process-wide and stateless:
 * each call names its caller (`CallContext`); the request scope (request-scope.ts) passes it, resolvers never do.
 * Input arrives parsed (the types say so): nothing here checks or trims a client value.
 */
export class AfterSaleRepository {
  constructor(
    private readonly client: ErpClient,
    private readonly mapper: ServiceMapper,
    private readonly rules: OutcomeRules,
    /** Told after every save that may have reached the ERP, so the confirming re-read cannot see an older answer. */
    private readonly cache?: ServiceCache,
  ) {}

  /** Whether the field map has a list column to sort by `field` (parseListInput asks). */
  canSortBy(field: ServiceSort['field']): boolean {
    return this.mapper.listColumn(field) !== undefined;
  }

  /** Whether a list row carries `field` (the field map has a list column for it): if not, it takes the detail. */
  onListRow(field: ServiceField): boolean {
    return this.mapper.listColumn(field) !== undefined;
  }

  async list(ctx: CallContext, query: ValidListQuery): Promise<ServicePage> {
    const datas = listDatas(query, (field) => this.mapper.listColumn(field));
    const table = await this.client.list(ctx, datas);
    const items = this.mapper.fromTable(table);
    // The empty-result quirk leaves zeros in `page`: the request is the better source then.
    const totalCount = table.page.recordCount;
    return {
      items,
      page: query.page,
      pageSize: query.pageSize,
      totalCount,
      totalPages: totalCount === 0 ? 0 : Math.ceil(totalCount / query.pageSize),
    };
  }

  /** The service's detail; null when the ERP says the record does not exist (or was deleted). */
  async get(ctx: CallContext, id: ServiceId): Promise<AfterSaleService | null> {
    const detail = await this.client.detail(ctx, id);
    if (detail.kind === 'bill') return this.mapper.fromBill(detail.bill, id);
    if (this.rules.notFound.test(detail.message.text)) return null;
    throw new ErpRejectedError(`ERP refused to show service ${id}: ${detail.message.text}`, { path: this.client.paths.detail });
  }

  /**
   * Processes a service. Only input that passed `parseHandleInput` gets here (the type says so), so invalid input never
   * reaches the ERP. A save is SAVED only when the ERP's answer reads as success and a re-read shows what we wrote; an
   * answer that never came, or a success the record does not show, is UNKNOWN. Nothing here retries a save.
   */
  async handle(ctx: CallContext, input: ValidHandleInput): Promise<HandleResult> {
    let text: string;
    try {
      text = (await this.client.process(ctx, handleDatas(input))).text;
    } catch (e) {
      if (isErpError(e) && e.mayHaveReachedErp) {
        await this.afterSave(input.id);
        return {
          outcome: 'UNKNOWN',
          message: `The ERP did not confirm the save (${e.code}); it may or may not have been stored. Check the service before trying again.`,
          userErrors: [],
          service: null,
        };
      }
      throw e;
    }
    // Whatever the ERP said, reads of this service from before it may be stale: the confirming re-read below must
    // neither be served from the cache nor join a read that was already in flight (the ERP may have run it pre-save).
    await this.afterSave(input.id);
    if (!this.rules.saveSuccess.test(text)) {
      return { outcome: 'REJECTED', message: text, userErrors: rejectionErrors(text), service: null };
    }
    let service: AfterSaleService | null;
    try {
      // The save is done: its confirmation must not be cut short by a client that left.
      service = await this.get(detached(ctx), input.id);
    } catch {
      return { outcome: 'UNKNOWN', message: `${text} (the ERP reported success, but the service could not be re-read to confirm it)`, userErrors: [], service: null };
    }
    if (!service || !confirmsSave(service, input)) {
      return { outcome: 'UNKNOWN', message: `${text} (the ERP reported success, but the re-read service does not show the change)`, userErrors: [], service };
    }
    return { outcome: 'SAVED', message: text, userErrors: [], service };
  }

  private async afterSave(id: ServiceId): Promise<void> {
    try {
      await this.cache?.afterSave(id);
    } catch {
      // The save's outcome stands whatever the hook does; a cache that failed to drop entries ages them out by TTL.
    }
  }
}

import type { CallContext } from '../erp/client';
import type { HandleResult, ValidHandleInput } from './handle';
import type { ServiceCache } from './ports';
import type { AfterSaleRepository } from './repository';
import { detached } from '../erp/call';

/**
 * A keyed save whose earlier claim expired: the replica that held it may have sent the save and died before it could
 * record the payload. Before saving again, the record is re-read (after fencing the caches, whose copy may predate
 * that save): if it already shows the input, that is the answer and nothing is sent.
 */
export class SaveRecovery {
  constructor(
    private readonly repository: Pick<AfterSaleRepository, 'get'>,
    private readonly cache?: ServiceCache,
  ) {}

  /**
   * SAVED when the record shows the note and the result; UNKNOWN when it shows the note but another result (someone
   * changed it since, or the save half-landed: it cannot tell); undefined when the note is not there (the earlier call
   * never got its save through: save now). A failed re-read rejects (the claim stays recoverable; the client retries).
   */
  async answer(ctx: CallContext, input: ValidHandleInput): Promise<HandleResult | undefined> {
    await this.cache?.afterSave(input.id);
    const service = await this.repository.get(detached(ctx), input.id);
    if (!service || service.get('handlingContent') !== input.note) return undefined;
    if (service.get('handlingResult') === input.result) {
      return { outcome: 'SAVED', message: 'An earlier call with this idempotencyKey saved this input; it was not sent again.', userErrors: [], service };
    }
    return {
      outcome: 'UNKNOWN',
      message: 'An earlier call with this idempotencyKey may have saved this input (the service shows its note, not its result); it was not sent again. Check the service.',
      userErrors: [],
      service,
    };
  }
}

/** Retriable: the shared idempotency store (Redis) cannot be reached, so a keyed save is refused before anything is sent. */
export class IdempotencyStoreUnavailableError extends Error {
  readonly retryable = true;
  constructor(options?: { cause?: unknown }) {
    super('The idempotency store is unreachable, so a save with an idempotencyKey cannot be guarded; nothing was sent. Retry later.', options);
  }
}

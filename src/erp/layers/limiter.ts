import pLimit from 'p-limit';
import type { ErpLayer } from '../call';
import { ErpAbortedError, ErpBusyError } from '../errors';
import type { ErpObserver } from '../observer';

export interface LimiterOptions {
  /** ERP calls in flight at once for the whole process. */
  maxConcurrent: number;
  /** How long a call may wait for a slot before it fails with ERP_BUSY. */
  maxWaitMs: number;
}

/**
 * A process-wide bound on concurrent ERP calls (p-limit) with a maximum queue wait. A call that gave up waiting
 * leaves its queue place empty: when its turn comes it returns at once without calling the ERP.
 */
export function concurrencyLimit(options: LimiterOptions, observer: ErpObserver = {}): ErpLayer {
  const limit = pLimit(options.maxConcurrent);
  const report = () => observer.queue?.(limit.activeCount, limit.pendingCount);
  return {
    wrap: (next) => (call) =>
      new Promise((resolve, reject) => {
        let settled = false;
        const giveUp = (error: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          call.signal?.removeEventListener('abort', onAbort);
          reject(error);
        };
        const timer = setTimeout(() => giveUp(new ErpBusyError(`no ERP call slot within ${options.maxWaitMs} ms`, { path: call.path })), options.maxWaitMs);
        const onAbort = () => giveUp(new ErpAbortedError({ phase: 'queued', path: call.path }));
        call.signal?.addEventListener('abort', onAbort, { once: true });
        // The task never rejects (its outcome goes to resolve/reject above), so nothing is left unhandled here.
        void limit(async () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          call.signal?.removeEventListener('abort', onAbort);
          report();
          try {
            resolve(await next(call));
          } catch (e) {
            reject(e);
          }
        }).finally(report);
        report();
      }),
  };
}

import { AsyncResource } from 'node:async_hooks';
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
        // Counted before enqueueing, queued ones too: p-limit starts even a free slot's task a microtask later.
        const waited = limit.activeCount + limit.pendingCount >= options.maxConcurrent ? observer.waiting?.(call) : undefined;
        const giveUp = (error: ErpBusyError | ErpAbortedError) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          call.signal?.removeEventListener('abort', onAbort);
          waited?.(error.code);
          reject(error);
        };
        const timer = setTimeout(() => giveUp(new ErpBusyError(`no ERP call slot within ${options.maxWaitMs} ms`, { path: call.path })), options.maxWaitMs);
        const onAbort = () => giveUp(new ErpAbortedError({ phase: 'queued', path: call.path }));
        call.signal?.addEventListener('abort', onAbort, { once: true });
        // p-limit starts a queued task from whichever task just finished, in that task's async context (another
        // request's): bound, the call runs in its own caller's context, so what it reports (logs, trace spans) is its own.
        const run = AsyncResource.bind(async () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          call.signal?.removeEventListener('abort', onAbort);
          waited?.('slot');
          report();
          try {
            resolve(await next(call));
          } catch (e) {
            reject(e);
          }
        });
        // `run` never rejects: it settles the call's own promise.
        void limit(run).finally(report);
        report();
      }),
  };
}

import { setTimeout as delay } from 'node:timers/promises';
import type { ErpLayer } from '../call';
import { ErpAbortedError, isErpError } from '../errors';
import type { ErpObserver } from '../observer';

export interface RetryOptions {
  /** Extra attempts after the first. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  random?: () => number;
}

/**
 * Retries reads and logins on transient failures, with exponential backoff and full jitter, never past the call's
 * deadline. Writes pass straight through: a save whose outcome is unknown must not be sent again.
 */
export function retry(options: RetryOptions, observer: ErpObserver = {}): ErpLayer {
  const random = options.random ?? Math.random;
  return {
    wrap: (next) => async (call) => {
      if (call.kind === 'write') return next(call);
      for (let attempt = 1; ; attempt++) {
        try {
          return await next(call);
        } catch (e) {
          if (!isErpError(e) || !e.retryable || attempt > options.retries || call.signal?.aborted) throw e;
          const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
          const wait = Math.floor(random() * ceiling);
          if (call.deadline !== undefined && Date.now() + wait >= call.deadline) throw e;
          observer.retry?.(call, attempt, wait, e.code);
          try {
            await delay(wait, undefined, call.signal ? { signal: call.signal } : undefined);
          } catch {
            // Whether the ERP saw the call is what the last attempt's error said.
            throw new ErpAbortedError({ phase: 'retrying', path: call.path, mayHaveReachedErp: e.mayHaveReachedErp });
          }
        }
      }
    },
  };
}

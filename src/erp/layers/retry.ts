import { cancelOf } from '../abort';
import type { ErpCall, ErpLayer } from '../call';
import { ErpAbortedError, isErpError, type ErpError } from '../errors';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

export interface RetryOptions {
  /** Extra attempts after the first. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  random?: () => number;
}

/** Waits `ms`; rejects as soon as the call's caller gives up. Only ever on the retry path. */
function backOff(ms: number, call: ErpCall): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancel = call.signal && cancelOf(call.signal);
    const onAbort = () => {
      clearTimeout(timer);
      reject(call.signal?.reason);
    };
    const timer = setTimeout(() => {
      cancel?.unwatch(onAbort);
      resolve();
    }, ms);
    cancel?.watch(onAbort);
  });
}

/**
 * Retries reads and logins on transient failures, with exponential backoff and full jitter, never past the call's
 * deadline. Writes pass straight through: a save whose outcome is unknown must not be sent again. An attempt that
 * succeeds costs one rejection handler, nothing more.
 */
export function retry(options: RetryOptions, observer: ErpObserver = {}): ErpLayer {
  const random = options.random ?? Math.random;
  return {
    wrap: (next) => {
      if (options.retries <= 0) return next;
      const attempt = (call: ErpCall, n: number): Promise<ErpReply> => next(call).then(undefined, (e: unknown) => again(call, n, e));
      const again = async (call: ErpCall, n: number, e: unknown): Promise<ErpReply> => {
        if (!isErpError(e) || !e.retryable || n > options.retries || call.signal?.aborted) throw e;
        const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (n - 1));
        const wait = Math.floor(random() * ceiling);
        if (call.deadline !== undefined && Date.now() + wait >= call.deadline) throw e;
        observer.retry?.(call, n, wait, e.code);
        try {
          await backOff(wait, call);
        } catch {
          // Whether the ERP saw the call is what the last attempt's error said.
          throw new ErpAbortedError({ phase: 'retrying', path: call.path, mayHaveReachedErp: (e as ErpError).mayHaveReachedErp });
        }
        return attempt(call, n + 1);
      };
      return (call) => (call.kind === 'write' ? next(call) : attempt(call, 1));
    },
  };
}

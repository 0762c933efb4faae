import type { ErpLayer } from '../call';
import { isErpError } from '../errors';
import type { ErpObserver } from '../observer';

/** Reports each attempt that reached the transport, with its duration and outcome. */
export function observeAttempts(observer: ErpObserver): ErpLayer {
  return {
    wrap: (next) => async (call) => {
      const started = performance.now();
      try {
        const reply = await next(call);
        observer.attempt?.(call, 'ok', performance.now() - started);
        return reply;
      } catch (e) {
        observer.attempt?.(call, isErpError(e) ? e.code : 'UNEXPECTED', performance.now() - started);
        throw e;
      }
    },
  };
}

import type { ErpLayer } from '../call';
import { isErpError } from '../errors';
import type { ErpObserver } from '../observer';

/** Reports each attempt that reached the transport, with its duration and outcome; nothing when no one listens. */
export function observeAttempts(observer: ErpObserver): ErpLayer {
  return {
    wrap: (next) => {
      if (!observer.attempt) return next;
      return (call) => {
        const started = performance.now();
        return next(call).then(
          (reply) => {
            observer.attempt?.(call, 'ok', performance.now() - started);
            return reply;
          },
          (e: unknown) => {
            observer.attempt?.(call, isErpError(e) ? e.code : 'UNEXPECTED', performance.now() - started);
            throw e;
          },
        );
      };
    },
  };
}

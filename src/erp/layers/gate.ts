import type { ErpLayer } from '../call';
import { ErpAbortedError, ErpClosedError } from '../errors';

export interface Gate extends ErpLayer {
  /** From now on every call fails with ERP_CLIENT_CLOSED before it is sent. */
  close(): void;
}

/**
 * The front door of the wire: a call is refused before it costs anything when its caller has already given up (a
 * disconnected client's resolvers keep asking for fields) or when the client is shutting down. Without it such calls
 * reach the breaker, where the first is counted and the second surfaces as opossum's untyped ESHUTDOWN.
 */
export function gate(): Gate {
  let closed = false;
  return {
    wrap: (next) => (call) => {
      if (closed) return Promise.reject(new ErpClosedError({ path: call.path }));
      if (call.signal?.aborted) return Promise.reject(new ErpAbortedError({ phase: 'unsent', path: call.path }));
      return next(call);
    },
    close: () => {
      closed = true;
    },
  };
}

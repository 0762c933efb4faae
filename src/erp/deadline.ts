/**
 * An abort signal with a time limit, optionally following a parent signal, that lets go of everything when the work
 * is done. `AbortSignal.timeout()` keeps its timer, and `AbortSignal.any()` its links to long-lived sources, until
 * they fire or are collected; on Node 20 that retains a composite per ERP call for the whole timeout (see
 * nodejs/node#55351, #57736), which under load was most of the subgraph's peak memory. Here `dispose()` clears both
 * the moment the call ends.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True when the time limit (not the parent, not `abort()`) ended it. */
  readonly timedOut: boolean;
  abort(): void;
  dispose(): void;
}

export function deadline(timeoutMs: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  let timedOut = false;
  const onParentAbort = () => controller.abort(parent?.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException('The operation timed out', 'TimeoutError'));
  }, timeoutMs);
  // A pending deadline alone never keeps the process alive.
  timer.unref();
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    abort: () => controller.abort(),
    dispose: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

import type { ErpLayer } from '../call';

/**
 * Gives every call its own abort signal, derived from its caller's signal through ONE listener per caller signal.
 *
 * All ERP calls of a GraphQL request carry the request's signal, and every layer that waits listens to the signal of
 * the call it holds: the limiter while queued, each coalesced waiter, the transport's deadline, retry's backoff. On the
 * request's own signal those listeners piled up, one per layer per call in flight (Node warns from 11 on:
 * `MaxListenersExceededWarning ... abort listeners added to [AbortSignal]`). Here the request's signal gets a single
 * listener however many calls it makes, which fans the abort out to the calls still in flight; the layers below listen
 * on their call's own signal, which at most two of them do at any time. Put it at the top of the stack, so every layer
 * below sees the derived signal.
 */
export function callSignals(): ErpLayer {
  // Caller signal -> the controllers of its calls in flight. Weak: a request's entry goes with its signal.
  const fanouts = new WeakMap<AbortSignal, Set<AbortController>>();

  const callsOf = (parent: AbortSignal): Set<AbortController> => {
    const known = fanouts.get(parent);
    if (known) return known;
    const calls = new Set<AbortController>();
    fanouts.set(parent, calls);
    parent.addEventListener(
      'abort',
      () => {
        fanouts.delete(parent);
        for (const controller of calls) controller.abort(parent.reason);
        calls.clear();
      },
      { once: true },
    );
    return calls;
  };

  return {
    wrap: (next) => (call) => {
      const parent = call.signal;
      // No signal to follow, or already given up (the layers below refuse such a call before it costs anything).
      if (!parent || parent.aborted) return next(call);
      const calls = callsOf(parent);
      const controller = new AbortController();
      calls.add(controller);
      return next({ ...call, signal: controller.signal }).finally(() => calls.delete(controller));
    },
  };
}

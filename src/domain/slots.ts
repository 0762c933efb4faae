import type { RunCall } from './options';

/**
 * At most `size` of one request's ERP calls at once (ZB_DETAIL_CONCURRENCY); the others wait in arrival order. A call
 * that finds a slot free starts at once, in the same tick, with one rejection-safe handler to give the slot back:
 * p-limit 3, used here before, defers every task through an async wrapper and several promise hops, which with 21 ERP
 * calls per operation was measurable. A waiting call starts in the context of the call that freed its slot, which is
 * the same request's.
 */
export function callSlots(size: number): RunCall {
  let active = 0;
  const waiting: Array<() => void> = [];
  const done = () => {
    active--;
    waiting.shift()?.();
  };
  const start = <T>(work: () => Promise<T>): Promise<T> => {
    active++;
    let result: Promise<T>;
    try {
      result = work();
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(done, done);
    return result;
  };
  return <T>(work: () => Promise<T>): Promise<T> => {
    if (active < size) return start(work);
    return new Promise<T>((resolve, reject) => waiting.push(() => start(work).then(resolve, reject)));
  };
}

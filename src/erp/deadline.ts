import { Cancel } from './abort';
import { ExpiryQueue, type Expiring } from './expiry';

/**
 * A request's time limit as a `Cancel` (abort.ts), aborted with a TimeoutError when its time is up, that lets go of
 * everything when the work is done. Every request of a process has the same limit (ZB_REQUEST_DEADLINE_MS) and starts
 * in order, so one timer keeps them all (expiry.ts). Measured on Node 20 (this project's 2-core machine): an
 * AbortController with its own setTimeout, plus the one listener the ERP client puts on its signal, cost ~9 µs per
 * request; a Cancel in a shared queue well under 1 µs. `AbortSignal.timeout()` / `AbortSignal.any()` would also keep
 * their timer and links until they fire or are collected (nodejs/node#55351, #57736); `dispose()` drops the limit the
 * moment the work ends.
 */
export interface Deadline {
  readonly signal: Cancel;
  /** Ends the work now (the client went away): an AbortError, as `AbortController.abort()` gives. */
  abort(): void;
  dispose(): void;
}

class Limit implements Deadline, Expiring {
  expiresAt = 0;
  readonly signal = new Cancel();

  constructor(private readonly queue: ExpiryQueue<Limit>) {}

  expire(): void {
    this.signal.abort(new DOMException('The operation timed out', 'TimeoutError'));
  }

  abort(): void {
    this.signal.abort();
  }

  dispose(): void {
    this.queue.delete(this);
  }
}

/** Deadlines of `timeoutMs` each, from now: one a call, all kept by one timer. */
export function deadlines(timeoutMs: number): () => Deadline {
  const queue = new ExpiryQueue<Limit>(timeoutMs);
  return () => {
    const limit = new Limit(queue);
    queue.add(limit);
    return limit;
  };
}
